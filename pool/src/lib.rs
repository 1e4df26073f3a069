//! The Stratum side of proofpool.
//!
//! Miners authorize with an EVM address as their Stratum username
//! (`0xAbC…123.rig1`). [`MinerId::parse`] turns that string into a typed
//! [`MinerAddress`](proofpool_primitives::MinerAddress) plus a worker name once,
//! at the boundary, so nothing stringly-typed travels inward. The Stratum V1
//! server, job builder and share validator build on this (see the project's
//! issues for the order).

mod username;

pub use username::{MAX_WORKER_LEN, MinerId, UsernameError};
