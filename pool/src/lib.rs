//! The Stratum side of proofpool.
//!
//! Miners authorize with an EVM address as their Stratum username
//! (`0xAbC…123.rig1`). [`MinerId::parse`] turns that string into a typed
//! [`MinerAddress`](proofpool_primitives::MinerAddress) plus a worker name once,
//! at the boundary, so nothing stringly-typed travels inward.
//!
//! The layout:
//! - `session`: the session core, one state machine a channel
//!   ([`Core::handle`]: an [`Event`] in, [`Actions`] out), with no sockets,
//!   no clock and no protocol: jobs and what they commit to, difficulty and
//!   vardiff, every share check, duplicates, the share log's record;
//! - `sv1`: the Stratum V1 front end (JSON lines over TCP or TLS);
//! - [`sv2`]: the Stratum V2 front end (Noise, standard and extended
//!   channels, job declaration);
//! - `server`: the listeners, what connections share (work, the share log,
//!   extranonce leases, bans, metrics), the V1 job fan-out, found blocks,
//!   and shutdown on one cancellation token and task tracker;
//! - `job`, `share`, `template`, `work`: building jobs from templates and
//!   checking proof of work against them.
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
mod sv1;
pub mod sv2;
mod template;
mod username;
mod vardiff;
mod work;

pub use config::{BanThreshold, JdConfig, PoolConfig};
pub use job::{
    Binding, CustomJob, DeclaredError, DeclaredTemplate, Job, JobConfig, JobError,
    MAX_DECLARED_EXTRANONCE, MAX_EXTRANONCE1_LEN, MAX_EXTRANONCE2_LEN, Requirements,
    check_declared_coinbase, declared_coinbase, required_outputs, subsidy,
};
pub use proofpool_node::{
    BlockHeaderInfo, BlockchainInfo, NodeAuth, NodeClient, NodeEndpoint, NodeError,
};
pub use server::{FoundBlock, Pool, PoolError, TlsFiles};
pub use session::{
    Accepted, Action, Actions, Channel, Core, Event, MAX_SENT_JOBS, Refusal, SentJob, Solved,
    Submit, Targeting,
};
pub use share::{
    MAX_NTIME_AHEAD, MAX_NTIME_BEHIND, ShareError, ShareKey, ShareSubmission, ValidShare,
    rolled_version, validate,
};
pub use template::{BlockTemplate, RawTemplate, RawTemplateTx, TemplateError, TemplateTx};
pub use username::{MAX_WORKER_LEN, MinerId, UsernameError};
pub use vardiff::{Vardiff, VardiffConfig, VardiffConfigError};
pub use work::{JobReceiver, WorkError, WorkSource};
