//! The watcher's own record of every share the pool accepted, in a local
//! SQLite file: the share as evidence (JSON), its hash, when it was
//! accepted, the worker, and what the last check found.

use crate::WatchError;
use crate::evidence::ShareEvidence;
use alloy_primitives::B256;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;

/// What a check found about a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not yet in an epoch file that was checked (its epoch is not settled).
    Pending,
    /// Listed with the miner and target its proof of work commits to.
    Included,
    /// In no epoch file, though a later epoch was published.
    Missing,
    /// Listed with another miner or target.
    Altered,
}

impl Status {
    /// The name in the log and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Included => "included",
            Self::Missing => "missing",
            Self::Altered => "altered",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "included" => Self::Included,
            "missing" => Self::Missing,
            "altered" => Self::Altered,
            _ => Self::Pending,
        }
    }
}

/// One recorded share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// sha256d of its header, internal byte order.
    pub hash: B256,
    /// When the pool's `true` arrived, unix milliseconds.
    pub time_ms: u64,
    /// The worker that submitted it.
    pub worker: String,
    /// The share.
    pub evidence: ShareEvidence,
    /// What the last check found.
    pub status: Status,
    /// The epoch that lists it, once one does.
    pub epoch: Option<u64>,
}

/// The share log file.
#[derive(Debug, Clone)]
pub struct WatchLog {
    db: sqlx::SqlitePool,
}

type Row = (Vec<u8>, i64, String, String, String, Option<i64>);

impl WatchLog {
    /// Opens (creating if needed) the log at `path`.
    pub async fn open(path: &Path) -> Result<Self, WatchError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let db = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS shares (
                hash     BLOB    PRIMARY KEY,
                time_ms  INTEGER NOT NULL,
                worker   TEXT    NOT NULL,
                evidence TEXT    NOT NULL,
                status   TEXT    NOT NULL,
                epoch    INTEGER
            )",
        )
        .execute(&db)
        .await?;
        Ok(Self { db })
    }

    /// Records an accepted share (once per hash).
    pub async fn record(
        &self,
        hash: B256,
        time_ms: u64,
        worker: &str,
        evidence: &ShareEvidence,
    ) -> Result<(), WatchError> {
        sqlx::query(
            "INSERT INTO shares (hash, time_ms, worker, evidence, status) VALUES ($1, $2, $3, $4, 'pending') \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash.as_slice())
        .bind(i64::try_from(time_ms).unwrap_or(i64::MAX))
        .bind(worker)
        .bind(serde_json::to_string(evidence)?)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Records a share the pool just answered `true`, stamped now; returns
    /// its hash.
    pub async fn record_accepted(
        &self,
        worker: &str,
        evidence: &ShareEvidence,
    ) -> Result<B256, WatchError> {
        if let Err(e) = evidence.verify() {
            // The pool accepted a share whose own proof of work binds
            // nothing (its jobs carry no share commitment): recorded all
            // the same, and reported by every check.
            tracing::warn!(%worker, error = %e, "accepted share proves no miner");
        }
        let hash = evidence.share.hash();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.record(hash, now_ms, worker, evidence).await?;
        Ok(hash)
    }

    /// Every recorded share, oldest first.
    pub async fn shares(&self) -> Result<Vec<Recorded>, WatchError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hash, time_ms, worker, evidence, status, epoch FROM shares ORDER BY time_ms, hash",
        )
        .fetch_all(&self.db)
        .await?;
        rows.into_iter()
            .map(|(hash, time_ms, worker, evidence, status, epoch)| {
                Ok(Recorded {
                    hash: B256::try_from(hash.as_slice())
                        .map_err(|_| WatchError::Corrupt("a hash is not 32 bytes".into()))?,
                    time_ms: u64::try_from(time_ms).unwrap_or(0),
                    worker,
                    evidence: serde_json::from_str(&evidence)?,
                    status: Status::parse(&status),
                    epoch: epoch.and_then(|e| u64::try_from(e).ok()),
                })
            })
            .collect()
    }

    /// Files what a check found about a share.
    pub async fn set_status(
        &self,
        hash: B256,
        status: Status,
        epoch: Option<u64>,
    ) -> Result<(), WatchError> {
        sqlx::query("UPDATE shares SET status = $1, epoch = $2 WHERE hash = $3")
            .bind(status.as_str())
            .bind(epoch.and_then(|e| i64::try_from(e).ok()))
            .bind(hash.as_slice())
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// How many shares have each status.
    pub async fn counts(&self) -> Result<Vec<(Status, u64)>, WatchError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM shares GROUP BY status")
                .fetch_all(&self.db)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(s, n)| (Status::parse(&s), u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Closes the file.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
