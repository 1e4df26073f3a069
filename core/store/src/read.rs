//! Queries for settlement, the API and tests.

use crate::model::{
    BlockRecord, BlockStatus, JobRecord, LogPoint, NewShare, StoredShare, WindowShare,
};
use crate::{Store, StoreError, i64_of, u64_of, with_db};
use proofpool_primitives::{Address, B256, U256};

type ShareRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Vec<u8>,
    String,
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
);

const SHARE_SELECT: &str = "SELECT seq, epoch, time_ms, instance, job_id, miner, worker, extranonce1, \
     extranonce2, ntime, nonce, version, hash, share_target, work, network_target FROM shares";

/// seq, miner, work, network target.
type WindowRow = (i64, Vec<u8>, Vec<u8>, Vec<u8>);

type JobRow = (
    i64,
    i64,
    i64,
    i64,
    Vec<u8>,
    i64,
    i64,
    i64,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    i64,
    Vec<u8>,
    Vec<u8>,
);

pub(crate) type BlockRow = (
    Vec<u8>,
    i64,
    i64,
    Vec<u8>,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

pub(crate) const BLOCK_SELECT: &str = "SELECT hash, height, coinbase_value, finder, worker, share_seq, instance, \
     found_ms, status, confirmations, reject_reason, paid_epoch FROM blocks";

pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.into(),
    }
}

pub(crate) fn u256_of(table: &'static str, b: &[u8]) -> Result<U256, StoreError> {
    U256::try_from_be_slice(b)
        .filter(|_| b.len() == 32)
        .ok_or_else(|| {
            corrupt(
                table,
                format!("expected a 32-byte integer, got {} bytes", b.len()),
            )
        })
}

pub(crate) fn b256_of(table: &'static str, b: &[u8]) -> Result<B256, StoreError> {
    B256::try_from(b).map_err(|_| corrupt(table, format!("expected 32 bytes, got {}", b.len())))
}

pub(crate) fn address_of(table: &'static str, b: &[u8]) -> Result<Address, StoreError> {
    Address::try_from(b).map_err(|_| {
        corrupt(
            table,
            format!("expected a 20-byte address, got {}", b.len()),
        )
    })
}

fn u32_of(table: &'static str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(table, format!("{v} is not a u32")))
}

fn u8_of(table: &'static str, v: i64) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| corrupt(table, format!("instance {v} is not a u8")))
}

fn share_of(r: ShareRow) -> Result<StoredShare, StoreError> {
    const T: &str = "shares";
    Ok(StoredShare {
        seq: u64_of(r.0),
        epoch: u64_of(r.1),
        share: NewShare {
            time_ms: u64_of(r.2),
            instance: u8_of(T, r.3)?,
            job_id: u64_of(r.4),
            miner: address_of(T, &r.5)?,
            worker: r.6,
            extranonce1: <[u8; 4]>::try_from(r.7.as_slice())
                .map_err(|_| corrupt(T, "extranonce1 is not 4 bytes"))?,
            extranonce2: r.8,
            ntime: u32_of(T, r.9)?,
            nonce: u32_of(T, r.10)?,
            version: u32_of(T, r.11)?,
            hash: b256_of(T, &r.12)?,
            share_target: u256_of(T, &r.13)?,
            work: u256_of(T, &r.14)?,
            network_target: u256_of(T, &r.15)?,
        },
    })
}

fn job_of(r: JobRow) -> Result<JobRecord, StoreError> {
    const T: &str = "jobs";
    if !r.10.len().is_multiple_of(32) {
        return Err(corrupt(T, "branch is not a multiple of 32 bytes"));
    }
    Ok(JobRecord {
        instance: u8_of(T, r.0)?,
        job_id: u64_of(r.1),
        created_ms: u64_of(r.2),
        height: u64_of(r.3),
        prev_hash: b256_of(T, &r.4)?,
        version: u32_of(T, r.5)?,
        nbits: u32_of(T, r.6)?,
        template_time: u32_of(T, r.7)?,
        coinbase1: r.8,
        coinbase2: r.9,
        branch: r.10.chunks_exact(32).map(B256::from_slice).collect(),
        network_target: u256_of(T, &r.11)?,
        coinbase_value: u64_of(r.12),
        coinbase2_suffix: r.13,
        log_head: b256_of(T, &r.14)?,
    })
}

pub(crate) fn block_of(r: BlockRow) -> Result<BlockRecord, StoreError> {
    const T: &str = "blocks";
    Ok(BlockRecord {
        hash: b256_of(T, &r.0)?,
        height: u64_of(r.1),
        coinbase_value: u64_of(r.2),
        finder: address_of(T, &r.3)?,
        worker: r.4,
        share_seq: u64_of(r.5),
        instance: u8_of(T, r.6)?,
        found_ms: u64_of(r.7),
        status: r.8.parse().map_err(|e: String| corrupt(T, e))?,
        confirmations: u64_of(r.9),
        reject_reason: r.10,
        paid_epoch: r.11.map(u64_of),
    })
}

impl Store {
    /// Up to `limit` shares of `epoch` with `seq > after_seq`, in sequence order.
    pub async fn shares_in_epoch(
        &self,
        epoch: u64,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredShare>, StoreError> {
        self.shares_in_range(epoch, after_seq, u64::MAX, limit)
            .await
    }

    /// Every share of `epoch`, in sequence order, read as `parts` seq ranges
    /// concurrently (each on its own connection, in pages of `page` rows), so
    /// reading a big epoch keeps every core busy decoding rows.
    pub async fn shares_of_epoch(
        &self,
        epoch: u64,
        parts: u32,
        page: u32,
    ) -> Result<Vec<StoredShare>, StoreError> {
        let bounds: (Option<i64>, Option<i64>) = with_db!(self, pool => {
            sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM shares WHERE epoch = $1")
                .bind(i64_of(epoch))
                .fetch_one(pool)
                .await?
        });
        let (Some(lo), Some(hi)) = bounds else {
            return Ok(Vec::new());
        };
        let (lo, hi) = (u64_of(lo), u64_of(hi));
        let parts = u64::from(parts.max(1)).min(hi - lo + 1);
        let span = (hi - lo + 1).div_ceil(parts);
        let mut tasks = tokio::task::JoinSet::new();
        for part in 0..parts {
            // Shares with after < seq <= until.
            let after = lo - 1 + part * span;
            let until = (after + span).min(hi);
            let store = self.clone();
            tasks.spawn(async move {
                let mut out = Vec::new();
                let mut after = after;
                while after < until {
                    let got = store.shares_in_range(epoch, after, until, page).await?;
                    let Some(last) = got.last() else { break };
                    after = last.seq;
                    out.extend(got);
                }
                Ok::<_, StoreError>((part, out))
            });
        }
        let mut pieces = Vec::with_capacity(parts as usize);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(piece) => pieces.push(piece?),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(StoreError::Interrupted(e.to_string())),
            }
        }
        pieces.sort_unstable_by_key(|(part, _)| *part);
        let mut shares = Vec::with_capacity(pieces.iter().map(|(_, p)| p.len()).sum());
        for (_, piece) in pieces {
            shares.extend(piece);
        }
        Ok(shares)
    }

    /// Up to `limit` shares of `epoch` with `after < seq <= until`, in sequence order.
    async fn shares_in_range(
        &self,
        epoch: u64,
        after: u64,
        until: u64,
        limit: u32,
    ) -> Result<Vec<StoredShare>, StoreError> {
        let sql = format!(
            "{SHARE_SELECT} WHERE seq > $1 AND seq <= $2 AND epoch = $3 ORDER BY seq LIMIT $4"
        );
        let rows: Vec<ShareRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64_of(after))
                .bind(i64_of(until))
                .bind(i64_of(epoch))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(share_of).collect()
    }

    /// Up to `limit` shares with `seq > after_seq`, in sequence order.
    pub async fn shares_after(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredShare>, StoreError> {
        let sql = format!("{SHARE_SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows: Vec<ShareRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64_of(after_seq))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(share_of).collect()
    }

    /// The epoch share `seq` was written into, if it exists.
    pub async fn share_epoch(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT epoch FROM shares WHERE seq = $1")
                .bind(i64_of(seq))
                .fetch_optional(pool)
                .await?
        });
        Ok(v.map(u64_of))
    }

    /// Number of shares in `epoch`.
    pub async fn share_count(&self, epoch: u64) -> Result<u64, StoreError> {
        let n: i64 = with_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM shares WHERE epoch = $1")
                .bind(i64_of(epoch))
                .fetch_one(pool)
                .await?
        });
        Ok(u64_of(n))
    }

    /// The PPLNS view of up to `limit` shares with `seq <= from_seq`, newest first.
    pub async fn window_from(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<WindowShare>, StoreError> {
        let rows: Vec<WindowRow> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT seq, miner, work, network_target FROM shares WHERE seq <= $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(i64_of(from_seq))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(seq, miner, work, net)| {
                Ok(WindowShare {
                    seq: u64_of(seq),
                    miner: address_of("shares", &miner)?,
                    work: u256_of("shares", &work)?,
                    network_target: u256_of("shares", &net)?,
                })
            })
            .collect()
    }

    /// The PPLNS view of up to `limit` shares with `seq <= from_seq` in
    /// epochs up to `max_epoch`, newest first. Shares of epochs settled
    /// under PPS or FPPS are left out: they were paid their expected value
    /// when their epoch closed, so no PPLNS window counts them again.
    pub async fn window_upto(
        &self,
        from_seq: u64,
        max_epoch: u64,
        limit: u32,
    ) -> Result<Vec<WindowShare>, StoreError> {
        let rows: Vec<WindowRow> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT seq, miner, work, network_target FROM shares WHERE seq <= $1 AND epoch <= $2 \
                 AND epoch NOT IN (SELECT epoch FROM epochs WHERE scheme <> 'pplns') \
                 ORDER BY seq DESC LIMIT $3",
            )
            .bind(i64_of(from_seq))
            .bind(i64_of(max_epoch))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(seq, miner, work, net)| {
                Ok(WindowShare {
                    seq: u64_of(seq),
                    miner: address_of("shares", &miner)?,
                    work: u256_of("shares", &work)?,
                    network_target: u256_of("shares", &net)?,
                })
            })
            .collect()
    }

    /// The newest share accepted at or before `time_ms` (0 if none): where
    /// PPLNS starts for a block whose solving share was not recorded.
    pub async fn seq_at_time(&self, time_ms: u64) -> Result<u64, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT MAX(seq) FROM shares WHERE time_ms <= $1")
                .bind(i64_of(time_ms))
                .fetch_one(pool)
                .await?
        });
        Ok(v.map_or(0, u64_of))
    }

    /// Every job that a share of `epoch` names, by (instance, job id).
    pub async fn jobs_for_epoch(&self, epoch: u64) -> Result<Vec<JobRecord>, StoreError> {
        let rows: Vec<JobRow> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT j.instance, j.job_id, j.created, j.height, j.prev_hash, j.version, j.nbits, \
                 j.template_time, j.coinbase1, j.coinbase2, j.branch, j.network_target, j.coinbase_value, \
                 j.coinbase2_suffix, j.log_head \
                 FROM jobs j JOIN (SELECT DISTINCT instance, job_id FROM shares WHERE epoch = $1) s \
                 ON j.instance = s.instance AND j.job_id = s.job_id ORDER BY j.instance, j.job_id",
            )
            .bind(i64_of(epoch))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(job_of).collect()
    }

    /// `instance`'s share-log chain just before its share `before_seq`
    /// (after its last share when `None`): from the newest checkpoint
    /// before it, folding the instance's shares written since.
    pub async fn log_point(
        &self,
        instance: u8,
        before_seq: Option<u64>,
    ) -> Result<LogPoint, StoreError> {
        const T: &str = "share_log_heads";
        let before = i64_of(before_seq.unwrap_or(u64::MAX >> 1));
        let checkpoint: Option<(i64, Vec<u8>)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT seq, head FROM share_log_heads WHERE instance = $1 AND seq < $2 \
                 ORDER BY seq DESC LIMIT 1",
            )
            .bind(i64::from(instance))
            .bind(before)
            .fetch_optional(pool)
            .await?
        });
        let mut point = match checkpoint {
            Some((seq, head)) => LogPoint {
                seq: u64_of(seq),
                head: b256_of(T, &head)?,
            },
            None => LogPoint::default(),
        };
        let sql = format!(
            "{SHARE_SELECT} WHERE instance = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4"
        );
        const PAGE: i64 = 10_000;
        loop {
            let rows: Vec<ShareRow> = with_db!(self, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(i64::from(instance))
                    .bind(i64_of(point.seq))
                    .bind(before)
                    .bind(PAGE)
                    .fetch_all(pool)
                    .await?
            });
            let n = rows.len();
            for row in rows {
                point.fold(&share_of(row)?);
            }
            if n < PAGE as usize {
                return Ok(point);
            }
        }
    }

    /// The highest job id `instance` has recorded (0 if none), so a
    /// restarted instance never reuses one.
    pub async fn max_job_id(&self, instance: u8) -> Result<u64, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT MAX(job_id) FROM jobs WHERE instance = $1")
                .bind(i64::from(instance))
                .fetch_one(pool)
                .await?
        });
        Ok(v.map_or(0, u64_of))
    }

    /// Every block, by height.
    pub async fn blocks(&self) -> Result<Vec<BlockRecord>, StoreError> {
        let sql = format!("{BLOCK_SELECT} ORDER BY height, hash");
        let rows: Vec<BlockRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        rows.into_iter().map(block_of).collect()
    }

    /// The orphaned and refused blocks no epoch file lists yet, by height.
    pub async fn unlisted_orphans(&self) -> Result<Vec<BlockRecord>, StoreError> {
        let sql = format!(
            "{BLOCK_SELECT} WHERE status IN ('orphaned', 'rejected') AND orphan_epoch IS NULL ORDER BY height, hash"
        );
        let rows: Vec<BlockRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        rows.into_iter().map(block_of).collect()
    }

    /// Sets a block's status and confirmation count.
    pub async fn set_block_status(
        &self,
        hash: B256,
        status: BlockStatus,
        confirmations: u64,
    ) -> Result<(), StoreError> {
        with_db!(self, pool => {
            sqlx::query("UPDATE blocks SET status = $1, confirmations = $2 WHERE hash = $3")
                .bind(status.as_str())
                .bind(i64_of(confirmations))
                .bind(hash.as_slice())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The newest sequence number written (0 if none).
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT MAX(seq) FROM shares").fetch_one(pool).await?
        });
        Ok(v.map_or(0, u64_of))
    }
}
