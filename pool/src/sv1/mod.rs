//! The Stratum V1 front end: newline-delimited JSON-RPC over TCP (or TLS),
//! one task a connection ([`session`]). Its lines become the session core's
//! events ([`crate::session::Core`]) and the core's actions become its
//! replies, `mining.set_difficulty` and `mining.notify`.
//!
//! One rule says who writes to the socket: the session's task, except
//! while it is idle, when the job fan-out and the share writer's direct
//! replies may (`crate::server::fanout::Link`); the session files what they
//! wrote before it reads on.

mod lines;
mod session;

pub(crate) use session::{Outlet, serve};
