//! Read-only aggregates for the public API.
//!
//! Work is stored as 32-byte big-endian blobs that SQL cannot add, so every
//! sum of work groups by the blob itself (`GROUP BY …, work`): shares at one
//! difficulty have the same work, so a time bucket yields a handful of rows
//! `(work, count)` that are multiplied and added here, exactly, in `U256`.
//!
//! There is no index on `shares.time_ms` or `shares.miner`; time-bounded
//! queries also bound `epoch` from below (every share's epoch is at least
//! the epoch its acceptance time falls in), so they scan the
//! `shares_by_epoch` index range instead of the whole table.

use crate::model::{BlockRecord, EpochStatus};
use crate::read::{BLOCK_SELECT, BlockRow, address_of, block_of, u256_of};
use crate::{Store, StoreError, i64_of, u64_of, with_db};
use proofpool_primitives::{Address, U256};
use std::collections::BTreeMap;

/// Work accepted in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkBucket {
    /// Start of the bucket, unix milliseconds (a multiple of the bucket length).
    pub start_ms: u64,
    /// Sum of the work credited to the bucket's shares.
    pub work: U256,
    /// Shares in the bucket.
    pub shares: u64,
}

/// One worker's recent shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerWork {
    /// The account.
    pub miner: Address,
    /// The rig name (may be empty).
    pub worker: String,
    /// Sum of the work credited.
    pub work: U256,
    /// Shares counted.
    pub shares: u64,
    /// The newest of them, unix milliseconds.
    pub last_share_ms: u64,
}

/// A worker as the `workers` table knows it: recorded by the pool with its
/// first accepted share on each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// The account.
    pub miner: Address,
    /// The rig name (may be empty).
    pub worker: String,
    /// Its first connection's first accepted share, unix milliseconds.
    pub first_seen_ms: u64,
    /// Its latest connection's first accepted share, unix milliseconds.
    pub last_seen_ms: u64,
}

/// A miner: its workers, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerRecord {
    /// The account.
    pub miner: Address,
    /// Workers it has authorized.
    pub workers: u64,
    /// Its first authorization, unix milliseconds.
    pub first_seen_ms: u64,
    /// Its latest authorization, unix milliseconds.
    pub last_seen_ms: u64,
}

/// Shares and work in one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochShares {
    /// The epoch.
    pub epoch: u64,
    /// Shares.
    pub shares: u64,
    /// Sum of their work.
    pub work: U256,
}

/// Sats credited to one miner by one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochCredit {
    /// The epoch that paid them.
    pub epoch: u64,
    /// Sats.
    pub sats: u64,
}

/// Row counts for totals and pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    /// Distinct miners with an accepted share (the pool records a worker
    /// with its first one).
    pub miners: u64,
    /// Distinct (miner, worker) pairs with an accepted share.
    pub workers: u64,
    /// Blocks found (any status).
    pub blocks: u64,
    /// Settled epochs.
    pub epochs: u64,
}

/// The network target of the newest share's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkView {
    /// The network target.
    pub target: U256,
    /// The height the job was building, if its job row exists.
    pub height: Option<u64>,
    /// When the share was accepted, unix milliseconds.
    pub time_ms: u64,
}

/// miner, worker, work, count, newest time.
type WorkerWorkRow = (Vec<u8>, String, Vec<u8>, i64, i64);

/// `work · count`, saturating (a real sum never comes near 2^256).
/// Adds `b` to the bucket it starts.
fn merge(out: &mut BTreeMap<u64, WorkBucket>, b: WorkBucket) {
    let into = out.entry(b.start_ms).or_insert(WorkBucket {
        start_ms: b.start_ms,
        work: U256::ZERO,
        shares: 0,
    });
    into.work = into.work.saturating_add(b.work);
    into.shares = into.shares.saturating_add(b.shares);
}

fn times(work: U256, count: i64) -> U256 {
    work.saturating_mul(U256::from(u64_of(count)))
}

impl Store {
    /// The epoch a time falls in, as a lower bound for the epoch of any share
    /// accepted at or after it; `None` while the store has no epoch clock
    /// (and so no shares).
    async fn first_epoch_at(&self, time_ms: u64) -> Result<Option<u64>, StoreError> {
        match self.clock().await {
            Ok(clock) => Ok(Some(clock.epoch_of_ms(time_ms))),
            Err(StoreError::NotInitialised) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Work per `bucket_ms`-long bucket of acceptance time in
    /// `[since_ms, until_ms)`, pool-wide or for one miner. Buckets start at
    /// multiples of `bucket_ms`; empty buckets are left out; ordered by time.
    ///
    /// Whole buckets that end at or before `settled_before_ms` (a time after
    /// which no share can still be written into them) are read from the
    /// `work_rollup` table, and computed from the shares once and stored
    /// there when missing; the rest is computed from the shares each time.
    /// A rollup that cannot be stored (a read-only database) is logged and
    /// the answer is the same.
    pub async fn work_buckets(
        &self,
        since_ms: u64,
        until_ms: u64,
        bucket_ms: u64,
        miner: Option<Address>,
        settled_before_ms: u64,
    ) -> Result<Vec<WorkBucket>, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        // Whole buckets inside the range that can no longer change.
        let rolled_from = since_ms.div_ceil(bucket_ms).saturating_mul(bucket_ms);
        let rolled_to = (until_ms.min(settled_before_ms) / bucket_ms).saturating_mul(bucket_ms);
        let mut out: BTreeMap<u64, WorkBucket> = BTreeMap::new();
        if rolled_from < rolled_to {
            for b in self
                .rolled_buckets(rolled_from, rolled_to, bucket_ms, miner)
                .await?
            {
                out.insert(b.start_ms, b);
            }
            for (from, to) in [(since_ms, rolled_from), (rolled_to, until_ms)] {
                if from < to {
                    for b in self.raw_buckets(from, to, bucket_ms, miner).await? {
                        merge(&mut out, b);
                    }
                }
            }
        } else {
            for b in self
                .raw_buckets(since_ms, until_ms, bucket_ms, miner)
                .await?
            {
                merge(&mut out, b);
            }
        }
        Ok(out.into_values().filter(|b| b.shares > 0).collect())
    }

    /// The whole buckets in `[from_ms, to_ms)` (both multiples of
    /// `bucket_ms`), empty ones included, from the rollup table; those
    /// missing are computed from the shares and stored.
    async fn rolled_buckets(
        &self,
        from_ms: u64,
        to_ms: u64,
        bucket_ms: u64,
        miner: Option<Address>,
    ) -> Result<Vec<WorkBucket>, StoreError> {
        let key: &[u8] = miner.as_ref().map_or(&[], |m| m.as_slice());
        let rows: Vec<(i64, Vec<u8>, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT start_ms, work, shares FROM work_rollup \
                 WHERE bucket_ms = $1 AND miner = $2 AND start_ms >= $3 AND start_ms < $4 \
                 ORDER BY start_ms",
            )
            .bind(i64_of(bucket_ms))
            .bind(key)
            .bind(i64_of(from_ms))
            .bind(i64_of(to_ms))
            .fetch_all(pool)
            .await?
        });
        let mut have: BTreeMap<u64, WorkBucket> = BTreeMap::new();
        for (start, work, shares) in rows {
            let start_ms = u64_of(start);
            have.insert(
                start_ms,
                WorkBucket {
                    start_ms,
                    work: u256_of("work_rollup", &work)?,
                    shares: u64_of(shares),
                },
            );
        }
        let expected = (to_ms - from_ms) / bucket_ms;
        if have.len() as u64 >= expected {
            return Ok(have.into_values().collect());
        }
        // Compute the span that covers every missing bucket in one query.
        let missing: Vec<u64> = (0..expected)
            .map(|i| from_ms + i * bucket_ms)
            .filter(|start| !have.contains_key(start))
            .collect();
        let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) else {
            return Ok(have.into_values().collect());
        };
        let mut computed: BTreeMap<u64, WorkBucket> = BTreeMap::new();
        for b in self
            .raw_buckets(lo, hi + bucket_ms, bucket_ms, miner)
            .await?
        {
            merge(&mut computed, b);
        }
        let fresh: Vec<WorkBucket> = missing
            .iter()
            .map(|&start_ms| {
                computed.get(&start_ms).copied().unwrap_or(WorkBucket {
                    start_ms,
                    work: U256::ZERO,
                    shares: 0,
                })
            })
            .collect();
        if let Err(e) = self.store_rollups(bucket_ms, key, &fresh).await {
            tracing::warn!(error = %e, "hashrate rollups not stored; they are computed again next time");
        }
        for b in fresh {
            have.insert(b.start_ms, b);
        }
        Ok(have.into_values().collect())
    }

    /// Stores computed buckets; one another process stored first is kept
    /// (both were computed from the same immutable shares).
    async fn store_rollups(
        &self,
        bucket_ms: u64,
        key: &[u8],
        buckets: &[WorkBucket],
    ) -> Result<(), StoreError> {
        /// Rows per statement (5 parameters each).
        const CHUNK: usize = 500;
        for chunk in buckets.chunks(CHUNK) {
            with_db!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO work_rollup (bucket_ms, start_ms, miner, work, shares) ",
                );
                q.push_values(chunk, |mut row, b| {
                    row.push_bind(i64_of(bucket_ms))
                        .push_bind(i64_of(b.start_ms))
                        .push_bind(key)
                        .push_bind(b.work.to_be_bytes::<32>().to_vec())
                        .push_bind(i64_of(b.shares));
                });
                q.push(" ON CONFLICT (bucket_ms, miner, start_ms) DO NOTHING");
                q.build().execute(pool).await?;
            });
        }
        Ok(())
    }

    /// Work per bucket computed from the shares accepted in
    /// `[since_ms, until_ms)`; empty buckets are left out.
    async fn raw_buckets(
        &self,
        since_ms: u64,
        until_ms: u64,
        bucket_ms: u64,
        miner: Option<Address>,
    ) -> Result<Vec<WorkBucket>, StoreError> {
        let Some(first_epoch) = self.first_epoch_at(since_ms).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, Vec<u8>, i64)> = match miner {
            None => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT time_ms / $1, work, COUNT(*) FROM shares \
                     WHERE epoch >= $2 AND time_ms >= $3 AND time_ms < $4 GROUP BY 1, 2",
                )
                .bind(i64_of(bucket_ms))
                .bind(i64_of(first_epoch))
                .bind(i64_of(since_ms))
                .bind(i64_of(until_ms))
                .fetch_all(pool)
                .await?
            }),
            Some(miner) => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT time_ms / $1, work, COUNT(*) FROM shares \
                     WHERE epoch >= $2 AND time_ms >= $3 AND time_ms < $4 AND miner = $5 GROUP BY 1, 2",
                )
                .bind(i64_of(bucket_ms))
                .bind(i64_of(first_epoch))
                .bind(i64_of(since_ms))
                .bind(i64_of(until_ms))
                .bind(miner.as_slice())
                .fetch_all(pool)
                .await?
            }),
        };
        let mut buckets: BTreeMap<u64, WorkBucket> = BTreeMap::new();
        for (index, work, count) in rows {
            let work = u256_of("shares", &work)?;
            let start_ms = u64_of(index).saturating_mul(bucket_ms);
            let b = buckets.entry(start_ms).or_insert(WorkBucket {
                start_ms,
                work: U256::ZERO,
                shares: 0,
            });
            b.work = b.work.saturating_add(times(work, count));
            b.shares = b.shares.saturating_add(u64_of(count));
        }
        Ok(buckets.into_values().collect())
    }

    /// Work per worker of the shares accepted at or after `since_ms`,
    /// pool-wide or for one miner, ordered by (miner, worker).
    pub async fn recent_work_by_worker(
        &self,
        since_ms: u64,
        miner: Option<Address>,
    ) -> Result<Vec<WorkerWork>, StoreError> {
        let Some(first_epoch) = self.first_epoch_at(since_ms).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<WorkerWorkRow> = match miner {
            None => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT miner, worker, work, COUNT(*), MAX(time_ms) FROM shares \
                     WHERE epoch >= $1 AND time_ms >= $2 GROUP BY 1, 2, 3",
                )
                .bind(i64_of(first_epoch))
                .bind(i64_of(since_ms))
                .fetch_all(pool)
                .await?
            }),
            Some(miner) => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT miner, worker, work, COUNT(*), MAX(time_ms) FROM shares \
                     WHERE epoch >= $1 AND time_ms >= $2 AND miner = $3 GROUP BY 1, 2, 3",
                )
                .bind(i64_of(first_epoch))
                .bind(i64_of(since_ms))
                .bind(miner.as_slice())
                .fetch_all(pool)
                .await?
            }),
        };
        let mut workers: BTreeMap<(Address, String), WorkerWork> = BTreeMap::new();
        for (miner, worker, work, count, last) in rows {
            let miner = address_of("shares", &miner)?;
            let work = u256_of("shares", &work)?;
            let w = workers
                .entry((miner, worker.clone()))
                .or_insert(WorkerWork {
                    miner,
                    worker,
                    work: U256::ZERO,
                    shares: 0,
                    last_share_ms: 0,
                });
            w.work = w.work.saturating_add(times(work, count));
            w.shares = w.shares.saturating_add(u64_of(count));
            w.last_share_ms = w.last_share_ms.max(u64_of(last));
        }
        Ok(workers.into_values().collect())
    }

    /// Miners with an accepted share, most recently seen first.
    pub async fn miner_records(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<MinerRecord>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, i64, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT miner, COUNT(*), MIN(first_seen), MAX(last_seen) FROM workers \
                 GROUP BY miner ORDER BY 4 DESC, 1 LIMIT $1 OFFSET $2",
            )
            .bind(i64::from(limit))
            .bind(i64_of(offset))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(miner, workers, first, last)| {
                Ok(MinerRecord {
                    miner: address_of("workers", &miner)?,
                    workers: u64_of(workers),
                    first_seen_ms: u64_of(first),
                    last_seen_ms: u64_of(last),
                })
            })
            .collect()
    }

    /// One miner's summary, if it has ever authorized.
    pub async fn miner_record(&self, miner: Address) -> Result<Option<MinerRecord>, StoreError> {
        let row: (i64, Option<i64>, Option<i64>) = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT COUNT(*), MIN(first_seen), MAX(last_seen) FROM workers WHERE miner = $1",
            )
            .bind(miner.as_slice())
            .fetch_one(pool)
            .await?
        });
        Ok(match row {
            (workers, Some(first), Some(last)) if workers > 0 => Some(MinerRecord {
                miner,
                workers: u64_of(workers),
                first_seen_ms: u64_of(first),
                last_seen_ms: u64_of(last),
            }),
            _ => None,
        })
    }

    /// One miner's workers, most recently seen first.
    pub async fn workers_of(
        &self,
        miner: Address,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows: Vec<(String, i64, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT worker, first_seen, last_seen FROM workers WHERE miner = $1 \
                 ORDER BY last_seen DESC, worker LIMIT $2 OFFSET $3",
            )
            .bind(miner.as_slice())
            .bind(i64::from(limit))
            .bind(i64_of(offset))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(worker, first, last)| WorkerRecord {
                miner,
                worker,
                first_seen_ms: u64_of(first),
                last_seen_ms: u64_of(last),
            })
            .collect())
    }

    /// Shares and work per epoch for epochs `>= first_epoch`, pool-wide or
    /// for one miner, newest epoch first.
    pub async fn shares_per_epoch(
        &self,
        first_epoch: u64,
        miner: Option<Address>,
    ) -> Result<Vec<EpochShares>, StoreError> {
        let rows: Vec<(i64, Vec<u8>, i64)> = match miner {
            None => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT epoch, work, COUNT(*) FROM shares WHERE epoch >= $1 GROUP BY 1, 2",
                )
                .bind(i64_of(first_epoch))
                .fetch_all(pool)
                .await?
            }),
            Some(miner) => with_db!(self, pool => {
                sqlx::query_as(
                    "SELECT epoch, work, COUNT(*) FROM shares WHERE epoch >= $1 AND miner = $2 GROUP BY 1, 2",
                )
                .bind(i64_of(first_epoch))
                .bind(miner.as_slice())
                .fetch_all(pool)
                .await?
            }),
        };
        let mut epochs: BTreeMap<u64, EpochShares> = BTreeMap::new();
        for (epoch, work, count) in rows {
            let work = u256_of("shares", &work)?;
            let epoch = u64_of(epoch);
            let e = epochs.entry(epoch).or_insert(EpochShares {
                epoch,
                shares: 0,
                work: U256::ZERO,
            });
            e.work = e.work.saturating_add(times(work, count));
            e.shares = e.shares.saturating_add(u64_of(count));
        }
        Ok(epochs.into_values().rev().collect())
    }

    /// Shares and work in one epoch.
    pub async fn epoch_work(&self, epoch: u64) -> Result<EpochShares, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = with_db!(self, pool => {
            sqlx::query_as("SELECT work, COUNT(*) FROM shares WHERE epoch = $1 GROUP BY 1")
                .bind(i64_of(epoch))
                .fetch_all(pool)
                .await?
        });
        let mut total = EpochShares {
            epoch,
            shares: 0,
            work: U256::ZERO,
        };
        for (work, count) in rows {
            total.work = total
                .work
                .saturating_add(times(u256_of("shares", &work)?, count));
            total.shares = total.shares.saturating_add(u64_of(count));
        }
        Ok(total)
    }

    /// Sats credited to `miner`, per paying epoch, newest first.
    pub async fn credits_of(&self, miner: Address) -> Result<Vec<EpochCredit>, StoreError> {
        let rows: Vec<(i64, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT epoch, CAST(SUM(sats) AS BIGINT) FROM credits WHERE miner = $1 \
                 GROUP BY epoch ORDER BY epoch DESC",
            )
            .bind(miner.as_slice())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(epoch, sats)| EpochCredit {
                epoch: u64_of(epoch),
                sats: u64_of(sats),
            })
            .collect())
    }

    /// The newest epoch with `status` (0 if none).
    pub async fn last_epoch_with_status(&self, status: EpochStatus) -> Result<u64, StoreError> {
        let v: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT MAX(epoch) FROM epochs WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(pool)
                .await?
        });
        Ok(v.map_or(0, u64_of))
    }

    /// Counts of miners, workers, blocks and settled epochs.
    pub async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let (miners, workers, blocks, epochs): (i64, i64, i64, i64) = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COUNT(DISTINCT miner) FROM workers), (SELECT COUNT(*) FROM workers), \
                 (SELECT COUNT(*) FROM blocks), (SELECT COUNT(*) FROM epochs)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(StoreCounts {
            miners: u64_of(miners),
            workers: u64_of(workers),
            blocks: u64_of(blocks),
            epochs: u64_of(epochs),
        })
    }

    /// Blocks, highest first.
    pub async fn blocks_page(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<BlockRecord>, StoreError> {
        let sql = format!("{BLOCK_SELECT} ORDER BY height DESC, hash LIMIT $1 OFFSET $2");
        let rows: Vec<BlockRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(limit))
                .bind(i64_of(offset))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(block_of).collect()
    }

    /// The blocks whose credits `epoch` paid, by height.
    pub async fn blocks_paid_in(&self, epoch: u64) -> Result<Vec<BlockRecord>, StoreError> {
        let sql = format!("{BLOCK_SELECT} WHERE paid_epoch = $1 ORDER BY height, hash");
        let rows: Vec<BlockRow> = with_db!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64_of(epoch))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(block_of).collect()
    }

    /// The network target the newest share was mined against, with its
    /// job's height; `None` before the first share.
    pub async fn latest_network(&self) -> Result<Option<NetworkView>, StoreError> {
        let share: Option<(i64, i64, Vec<u8>, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT instance, job_id, network_target, time_ms FROM shares ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        let Some((instance, job_id, target, time_ms)) = share else {
            return Ok(None);
        };
        let height: Option<i64> = with_db!(self, pool => {
            sqlx::query_scalar("SELECT height FROM jobs WHERE instance = $1 AND job_id = $2")
                .bind(instance)
                .bind(job_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(Some(NetworkView {
            target: u256_of("shares", &target)?,
            height: height.map(u64_of),
            time_ms: u64_of(time_ms),
        }))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _one: i64 = with_db!(self, pool => {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(pool).await?
        });
        Ok(())
    }
}
