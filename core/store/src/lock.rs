//! The settlement leader lock: one `settle` at a time per store.
//!
//! PostgreSQL: a session-level advisory lock on a dedicated connection (so
//! several hosts can run the cron and exactly one works); it is released
//! when the guard drops and its connection closes, or when the process dies.
//! SQLite: an exclusive OS file lock on `<database>.settle.lock`, released
//! on drop or process death.

use crate::{Db, Store, StoreError};
use sqlx::Connection;

/// The advisory lock key: the first 8 bytes of "proofpool-settle".
const PG_LOCK_KEY: i64 = i64::from_be_bytes(*b"pp-settl");

/// Held while settling.
#[derive(Debug)]
pub struct SettlementLock {
    _inner: LockInner,
}

/// Held only for what dropping it releases.
#[derive(Debug)]
#[allow(dead_code)]
enum LockInner {
    File(std::fs::File),
    Pg(sqlx::PgConnection),
}

impl Store {
    /// Takes the settlement lock, or `None` if another settler holds it.
    pub async fn try_settlement_lock(&self) -> Result<Option<SettlementLock>, StoreError> {
        match &self.db {
            Db::Sqlite(_) => {
                let path = format!("{}.settle.lock", self.sqlite_path());
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| StoreError::Lock(format!("cannot open {path}: {e}")))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(SettlementLock {
                        _inner: LockInner::File(file),
                    })),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => {
                        Err(StoreError::Lock(format!("cannot lock {path}: {e}")))
                    }
                }
            }
            Db::Postgres(_) => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Ok(Some(SettlementLock {
                        _inner: LockInner::Pg(conn),
                    }))
                } else {
                    conn.close().await?;
                    Ok(None)
                }
            }
        }
    }

    fn sqlite_path(&self) -> &str {
        let rest = self
            .url
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        rest.split('?').next().unwrap_or(rest)
    }
}
