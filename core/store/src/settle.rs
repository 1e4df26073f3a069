//! Settlement's records: epochs, credits and cumulative balances.

use crate::model::{EpochRecord, EpochStatus};
use crate::read::{address_of, b256_of, corrupt, u256_of};
use crate::{Store, StoreError, i64_of, u64_of, with_db};
use proofpool_primitives::{Address, B256, U256};
use std::collections::BTreeMap;

/// One miner's credit from one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRow {
    /// The block paid.
    pub block_hash: B256,
    /// The miner.
    pub miner: Address,
    /// Sats credited.
    pub sats: u64,
}

/// Everything settlement writes for one epoch, in one transaction.
#[derive(Debug, Clone)]
pub struct SettledEpoch {
    /// The epoch's record.
    pub record: EpochRecord,
    /// Its credits.
    pub credits: Vec<CreditRow>,
    /// Blocks whose credits it pays (marked paid).
    pub paid_blocks: Vec<B256>,
    /// Orphaned or refused blocks its file lists (marked listed).
    pub orphaned_blocks: Vec<B256>,
    /// The payout scheme it was settled under: `pplns`, `pps` or `fpps`.
    pub scheme: &'static str,
    /// The blocks its shares were expected to find, in `2^128` units:
    /// `Σ floor(2^128 · W_share / W_net)` (for the pool's luck).
    pub expected_work: U256,
}

/// The pool's luck over the settled epochs that recorded their expected
/// blocks: the blocks found then against the blocks expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Luck {
    /// The first and last epoch counted.
    pub epochs: (u64, u64),
    /// Blocks found by shares accepted in those epochs (refused ones
    /// excluded, orphaned ones included: the work found them).
    pub blocks_found: u64,
    /// The blocks expected, in `2^128` units.
    pub expected_work: U256,
}

type EpochRow = (
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
);

const EPOCH_SELECT: &str = "SELECT epoch, status, share_count, first_seq, last_seq, share_root, \
     reward_root, total_cumulative, blocks_hash, params_hash, data_hash, prev_epoch_hash, file_name, \
     commit_tx, finalize_tx, updated_ms FROM epochs";

fn epoch_of(r: EpochRow) -> Result<EpochRecord, StoreError> {
    const T: &str = "epochs";
    let opt = |b: Option<Vec<u8>>| b.map(|b| b256_of(T, &b)).transpose();
    Ok(EpochRecord {
        epoch: u64_of(r.0),
        status: r.1.parse().map_err(|e: String| corrupt(T, e))?,
        share_count: u64_of(r.2),
        seq_range: r.3.zip(r.4).map(|(a, b)| (u64_of(a), u64_of(b))),
        share_root: b256_of(T, &r.5)?,
        reward_root: b256_of(T, &r.6)?,
        total_cumulative: u256_of(T, &r.7)?,
        blocks_hash: b256_of(T, &r.8)?,
        params_hash: b256_of(T, &r.9)?,
        data_hash: b256_of(T, &r.10)?,
        prev_epoch_hash: b256_of(T, &r.11)?,
        file_name: r.12,
        commit_tx: opt(r.13)?,
        finalize_tx: opt(r.14)?,
        updated_ms: u64_of(r.15),
    })
}

impl Store {
    /// Writes a settled epoch, its credits and its paid blocks atomically.
    /// Writing the same epoch again is an error (the primary key refuses it).
    pub async fn record_settled_epoch(&self, s: &SettledEpoch) -> Result<(), StoreError> {
        let r = &s.record;
        with_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO epochs (epoch, status, share_count, first_seq, last_seq, share_root, reward_root, \
                 total_cumulative, blocks_hash, params_hash, data_hash, prev_epoch_hash, file_name, commit_tx, \
                 finalize_tx, updated_ms, scheme, expected_work) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            )
            .bind(i64_of(r.epoch))
            .bind(r.status.as_str())
            .bind(i64_of(r.share_count))
            .bind(r.seq_range.map(|(a, _)| i64_of(a)))
            .bind(r.seq_range.map(|(_, b)| i64_of(b)))
            .bind(r.share_root.as_slice())
            .bind(r.reward_root.as_slice())
            .bind(r.total_cumulative.to_be_bytes::<32>().to_vec())
            .bind(r.blocks_hash.as_slice())
            .bind(r.params_hash.as_slice())
            .bind(r.data_hash.as_slice())
            .bind(r.prev_epoch_hash.as_slice())
            .bind(r.file_name.as_str())
            .bind(r.commit_tx.map(|h| h.to_vec()))
            .bind(r.finalize_tx.map(|h| h.to_vec()))
            .bind(i64_of(r.updated_ms))
            .bind(s.scheme)
            .bind(s.expected_work.to_be_bytes::<32>().to_vec())
            .execute(&mut *tx)
            .await?;
            for c in &s.credits {
                sqlx::query("INSERT INTO credits (epoch, block_hash, miner, sats) VALUES ($1, $2, $3, $4)")
                    .bind(i64_of(r.epoch))
                    .bind(c.block_hash.as_slice())
                    .bind(c.miner.as_slice())
                    .bind(i64_of(c.sats))
                    .execute(&mut *tx)
                    .await?;
            }
            for b in &s.paid_blocks {
                sqlx::query("UPDATE blocks SET paid_epoch = $1 WHERE hash = $2 AND paid_epoch IS NULL")
                    .bind(i64_of(r.epoch))
                    .bind(b.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            for b in &s.orphaned_blocks {
                sqlx::query("UPDATE blocks SET orphan_epoch = $1 WHERE hash = $2 AND orphan_epoch IS NULL")
                    .bind(i64_of(r.epoch))
                    .bind(b.as_slice())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// One epoch's record.
    pub async fn epoch(&self, epoch: u64) -> Result<Option<EpochRecord>, StoreError> {
        let sql = format!("{EPOCH_SELECT} WHERE epoch = $1");
        let row: Option<EpochRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(i64_of(epoch)).fetch_optional(pool).await?
        });
        row.map(epoch_of).transpose()
    }

    /// The payout scheme `epoch` was settled under (`None` if it was not).
    pub async fn epoch_scheme(&self, epoch: u64) -> Result<Option<String>, StoreError> {
        Ok(with_db!(self, pool => {
            sqlx::query_scalar("SELECT scheme FROM epochs WHERE epoch = $1")
                .bind(i64_of(epoch))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The pool's luck over the settled epochs that kept their expected
    /// blocks (`None` before any did).
    pub async fn luck(&self) -> Result<Option<Luck>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = with_db!(self, pool => {
            sqlx::query_as("SELECT epoch, expected_work FROM epochs ORDER BY epoch")
                .fetch_all(pool)
                .await?
        });
        let mut expected = U256::ZERO;
        let mut span: Option<(u64, u64)> = None;
        for (epoch, work) in rows {
            if work.is_empty() {
                continue;
            }
            let epoch = u64_of(epoch);
            expected = expected.saturating_add(u256_of("epochs", &work)?);
            span = Some(span.map_or((epoch, epoch), |(first, _)| (first, epoch)));
        }
        let Some((first, last)) = span else {
            return Ok(None);
        };
        let found: i64 = with_db!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM blocks b JOIN shares s ON s.seq = b.share_seq \
                 WHERE b.status <> 'rejected' AND s.epoch >= $1 AND s.epoch <= $2",
            )
            .bind(i64_of(first))
            .bind(i64_of(last))
            .fetch_one(pool)
            .await?
        });
        Ok(Some(Luck {
            epochs: (first, last),
            blocks_found: u64_of(found),
            expected_work: expected,
        }))
    }

    /// Epoch records, newest first.
    pub async fn epochs(&self, offset: u64, limit: u32) -> Result<Vec<EpochRecord>, StoreError> {
        let sql = format!("{EPOCH_SELECT} ORDER BY epoch DESC LIMIT $1 OFFSET $2");
        let rows: Vec<EpochRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(epoch_of).collect()
    }

    /// The newest settled epoch (0 if none).
    pub async fn last_settled_epoch(&self) -> Result<u64, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT MAX(epoch) FROM epochs").fetch_one(pool).await?
        });
        Ok(v.map_or(0, u64_of))
    }

    /// Forgets the settlement of epochs `from` and later, after a veto
    /// rolled them back on-chain: their records and credits go, and the
    /// blocks they paid or listed as orphaned are unpaid and unlisted again,
    /// so the next settlement pass recomputes them. Their shares stay, and
    /// the epochs stay closed to new shares. Returns the records removed.
    pub async fn roll_back_epochs(&self, from: u64) -> Result<u64, StoreError> {
        let e = i64_of(from);
        let removed = with_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM credits WHERE epoch >= $1")
                .bind(e)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE blocks SET paid_epoch = NULL WHERE paid_epoch >= $1")
                .bind(e)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE blocks SET orphan_epoch = NULL WHERE orphan_epoch >= $1")
                .bind(e)
                .execute(&mut *tx)
                .await?;
            let removed = sqlx::query("DELETE FROM epochs WHERE epoch >= $1")
                .bind(e)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            removed
        });
        Ok(removed)
    }

    /// Moves an epoch to `status`, recording the transaction that did it.
    pub async fn set_epoch_status(
        &self,
        epoch: u64,
        status: EpochStatus,
        tx_hash: Option<B256>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let sql = match status {
            EpochStatus::Finalized => {
                "UPDATE epochs SET status = $1, finalize_tx = COALESCE($2, finalize_tx), updated_ms = $3 WHERE epoch = $4"
            }
            _ => {
                "UPDATE epochs SET status = $1, commit_tx = COALESCE($2, commit_tx), updated_ms = $3 WHERE epoch = $4"
            }
        };
        with_db!(self, pool => {
            sqlx::query(sql)
                .bind(status.as_str())
                .bind(tx_hash.map(|h| h.to_vec()))
                .bind(i64_of(now_ms))
                .bind(i64_of(epoch))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Each miner's cumulative credits (sats) over epochs `1..=epoch`.
    pub async fn balances_at(&self, epoch: u64) -> Result<BTreeMap<Address, u64>, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT miner, CAST(SUM(sats) AS BIGINT) FROM credits WHERE epoch <= $1 GROUP BY miner",
            )
            .bind(i64_of(epoch))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(m, s)| Ok((address_of("credits", &m)?, u64_of(s))))
            .collect()
    }

    /// The credits paid in `epoch`.
    pub async fn credits_in(&self, epoch: u64) -> Result<Vec<CreditRow>, StoreError> {
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT block_hash, miner, sats FROM credits WHERE epoch = $1 ORDER BY block_hash, miner",
            )
            .bind(i64_of(epoch))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(b, m, s)| {
                Ok(CreditRow {
                    block_hash: b256_of("credits", &b)?,
                    miner: address_of("credits", &m)?,
                    sats: u64_of(s),
                })
            })
            .collect()
    }
}
