//! proofpool's durable store on SQLite (the embedded default) or PostgreSQL.
//!
//! The share log is append-only and written only through [`ShareLog`], a
//! group-commit writer: accepted shares are batched into one transaction and
//! a share is acknowledged only after its batch has committed. Each share
//! gets a gapless sequence number and its epoch inside that transaction, from
//! the single `pool_state` row, which also serialises writers from several
//! pool instances on one PostgreSQL and fences off epochs that settlement has
//! closed.
//!
//! Both backends run the same queries through [`with_db!`]; each has its own
//! migrations folder because the SQL types differ (`BLOB` vs `BYTEA`).
//!
//! Encodings: integers that can exceed `i64` (targets, work) are 32-byte
//! big-endian blobs, addresses 20 bytes, hashes 32 bytes in internal byte
//! order; `u32` header fields and `u64` counters are stored as `i64`.

pub mod api;
mod lock;
mod model;
mod read;
mod settle;
mod writer;

pub use lock::SettlementLock;
pub use model::{
    BlockRecord, BlockStatus, Committed, EpochClock, EpochRecord, EpochStatus, JobRecord, LogPoint,
    NewShare, StoredShare, WindowShare, WorkerSeen,
};
pub use settle::{CreditRow, Luck, SettledEpoch};
pub use writer::{AckSink, ShareLog, SubmitError, WriteError, WriterConfig, WriterStats};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! with_db {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not `sqlite:` or `postgres:`.
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH (e.g. sqlite://pool.db) or postgres://USER@HOST:PORT/DB"
    )]
    UnsupportedUrl(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The store was created with other epoch settings than the config asks for.
    #[error(
        "the store's epoch clock (genesis {stored_genesis}, epoch_secs {stored_secs}) differs from the configured epoch_secs {configured_secs}; epochs cannot change length once shares exist"
    )]
    EpochClockMismatch {
        /// Genesis stored in the database.
        stored_genesis: u64,
        /// `epoch_secs` stored in the database.
        stored_secs: u64,
        /// `epoch_secs` from the configuration.
        configured_secs: u64,
    },
    /// The store has not been initialised with an epoch clock yet.
    #[error("the store has no epoch clock yet: start the pool once (or run init) first")]
    NotInitialised,
    /// A stored row does not decode.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A concurrent read was cancelled (the runtime is shutting down).
    #[error("store read interrupted: {0}")]
    Interrupted(String),
    /// The settlement lock could not be taken.
    #[error("settlement lock: {0}")]
    Lock(String),
    /// Closing an epoch out of order.
    #[error("cannot close epoch {epoch}: the last closed epoch is {closed}")]
    CloseOutOfOrder {
        /// The epoch asked for.
        epoch: u64,
        /// The newest closed epoch.
        closed: u64,
    },
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, WAL mode.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most pooled connections.
    pub max_connections: u32,
    /// SQLite: fsync the WAL at every commit (`synchronous=FULL`). With
    /// `false` (`NORMAL`) a process crash still loses nothing, but a power
    /// cut may lose the last commits.
    pub sqlite_fsync_each_commit: bool,
    /// How long a connection waits for a lock before failing.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_fsync_each_commit: true,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) url: String,
}

impl Store {
    /// Opens (and for SQLite creates) the database at `url` and runs the
    /// backend's migrations.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let db = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if options.sqlite_fsync_each_commit {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .busy_timeout(options.busy_timeout)
                .foreign_keys(false)
                // The share writer checkpoints in the background (see
                // `writer::checkpoint_wal`); commits only checkpoint
                // themselves if the WAL reaches 64 MiB.
                .pragma("wal_autocheckpoint", "16384")
                .statement_cache_capacity(512);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                // A SQLite connection is a thread and a file, not a socket
                // that can break: pinging it before every use only added a
                // round trip to its thread to each share commit.
                .test_before_acquire(false)
                .acquire_timeout(options.busy_timeout)
                .connect_with(connect)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url)?.statement_cache_capacity(512);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.busy_timeout)
                .connect_with(connect)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Self {
            db,
            url: url.to_owned(),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await);
    }

    /// Sets the epoch clock on first use (genesis = `now_unix`), or checks
    /// that the stored one has the configured `epoch_secs`. Returns the clock.
    pub async fn init_clock(
        &self,
        epoch_secs: u64,
        now_unix: u64,
    ) -> Result<EpochClock, StoreError> {
        let secs = i64::try_from(epoch_secs.max(1)).unwrap_or(i64::MAX);
        let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
        with_db!(self, pool => {
            sqlx::query(
                "INSERT INTO pool_state (id, next_seq, closed_epoch, genesis_unix, epoch_secs) \
                 VALUES (1, 1, 0, $1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(now)
            .bind(secs)
            .execute(pool)
            .await?;
        });
        let clock = self.clock().await?;
        if clock.epoch_secs != epoch_secs.max(1) {
            return Err(StoreError::EpochClockMismatch {
                stored_genesis: clock.genesis_unix,
                stored_secs: clock.epoch_secs,
                configured_secs: epoch_secs,
            });
        }
        Ok(clock)
    }

    /// The stored epoch clock.
    pub async fn clock(&self) -> Result<EpochClock, StoreError> {
        let row: Option<(i64, i64, i64, i64)> = with_db!(self, pool => {
            sqlx::query_as(
                "SELECT genesis_unix, epoch_secs, closed_epoch, next_seq FROM pool_state WHERE id = 1",
            )
            .fetch_optional(pool)
            .await?
        });
        let (genesis, secs, closed, next) = row.ok_or(StoreError::NotInitialised)?;
        Ok(EpochClock {
            genesis_unix: u64_of(genesis),
            epoch_secs: u64_of(secs).max(1),
            closed_epoch: u64_of(closed),
            next_seq: u64_of(next),
        })
    }

    /// Closes `epoch` for settlement: from now on the writer puts no share in
    /// it or any earlier epoch. Epochs close in order; closing the newest
    /// closed epoch again is a no-op. This takes the same row lock as the
    /// share writer, so every batch that committed into `epoch` is visible
    /// once this returns.
    pub async fn close_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        let e = i64_of(epoch);
        let updated = with_db!(self, pool => {
            sqlx::query("UPDATE pool_state SET closed_epoch = $1 WHERE id = 1 AND closed_epoch = $1 - 1")
                .bind(e)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 1 {
            return Ok(());
        }
        let clock = self.clock().await?;
        // Already closed (again, after a veto rolled its record back).
        if clock.closed_epoch >= epoch {
            Ok(())
        } else {
            Err(StoreError::CloseOutOfOrder {
                epoch,
                closed: clock.closed_epoch,
            })
        }
    }
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
