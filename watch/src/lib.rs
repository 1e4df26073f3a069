//! `proofpool watch`: a miner's own check of the pool.
//!
//! A Stratum V1 proxy the miner runs next to its devices ([`proxy`]). It
//! forwards every line unchanged and records every share the pool answered
//! `true`, with the job it was mined on, in a local SQLite file ([`log`]).
//! Each job's coinbase commits to the miner's address and the share target
//! (docs/share-commitment.md), so each recorded share is self-contained
//! evidence ([`evidence`]) of proof of work bound to that miner on the pool's
//! job. [`check`] then reads the published epoch files and finds every
//! recorded share that is missing, or listed with another miner or target,
//! and writes its evidence, which `proofpool watch verify` re-checks for
//! anyone. [`credit`] replays PPLNS over the files and checks each of the
//! watcher's miners' credits against the reward leaf the contract pays.

pub mod check;
pub mod credit;
pub mod evidence;
pub mod log;
pub mod proxy;
pub mod status;

pub use check::{CheckReport, EpochIndex, Problem, check};
pub use credit::{BlockCredit, CreditCheck, EpochCredit, OnChain, credits};
pub use evidence::{Claim, EvidenceError, ShareEvidence, ShareParts, Verified};
pub use log::{Recorded, Status, WatchLog};
pub use status::Stats;

/// What can go wrong while watching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The share log file.
    #[error("share log: {0}")]
    Db(#[from] sqlx::Error),
    /// A socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line longer than [`proxy::MAX_LINE`].
    #[error("a line longer than {} bytes", proxy::MAX_LINE)]
    LineTooLong,
    /// JSON in the log or an evidence file.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The log holds something this code did not write.
    #[error("share log is corrupt: {0}")]
    Corrupt(String),
    /// An epoch file that does not read.
    #[error("epoch file: {0}")]
    Epoch(String),
    /// The distributor.
    #[error("chain: {0}")]
    Chain(String),
    /// The API.
    #[error("api: {0}")]
    Http(#[from] reqwest::Error),
}
