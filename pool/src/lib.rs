//! The Stratum side of proofpool.
//!
//! Miners authorize with an EVM address as their Stratum username
//! (`0xAbC…123.rig1`). [`MinerId::parse`] turns that string into a typed
//! [`MinerAddress`](proofpool_primitives::MinerAddress) plus a worker name once,
//! at the boundary, so nothing stringly-typed travels inward. The Stratum V1
//! server, job builder and share validator build on this (see the project's
//! issues for the order).
//!
//! [`Pool`] runs the server. Each connection gets its own vardiff controller
//! ([`Vardiff`]), a share-rate limit, handshake and idle timeouts; addresses
//! are capped and banned by the limits in [`PoolConfig`] (see
//! [`BanThreshold`]); with `metrics_listen` set, Prometheus metrics are
//! served at `/metrics` ([`Pool::render_metrics`] gives the same text).

mod config;
pub mod jd;
mod job;
mod server;
mod session;
mod share;
mod template;
mod username;
mod vardiff;
mod work;

pub use config::{BanThreshold, JdConfig, PoolConfig};
pub use job::{
    Binding, CustomJob, DeclaredError, Job, JobConfig, JobError, MAX_EXTRANONCE1_LEN,
    MAX_EXTRANONCE2_LEN, Requirements, required_outputs, subsidy,
};
pub use proofpool_node::{
    BlockHeaderInfo, BlockchainInfo, NodeAuth, NodeClient, NodeEndpoint, NodeError,
};
pub use server::{FoundBlock, Pool, PoolError, TlsFiles};
pub use session::{Accepted, Channel, MAX_SENT_JOBS, Refusal, SentJob, Solved, Submit, Targeting};
pub use share::{
    MAX_NTIME_AHEAD, MAX_NTIME_BEHIND, ShareError, ShareKey, ShareSubmission, ValidShare,
    rolled_version, validate,
};
pub use template::{BlockTemplate, RawTemplate, RawTemplateTx, TemplateError, TemplateTx};
pub use username::{MAX_WORKER_LEN, MinerId, UsernameError};
pub use vardiff::{Vardiff, VardiffConfig, VardiffConfigError};
pub use work::{JobReceiver, WorkError, WorkSource};

pub use proofpool_stratum::sv2;
