//! The Stratum V2 front end: Noise NX, `SetupConnection`, the mining
//! protocol's standard and extended channels ([`session`]), each channel
//! one session core ([`crate::session::Core`]), and the job declaration
//! protocol ([`jds`]) on the same port.
//!
//! The protocol's building blocks (the authority key, the Noise connection,
//! the setup negotiation, job conversions) are `proofpool-stratum`'s,
//! re-exported here.

mod jds;
mod session;

pub use proofpool_stratum::sv2::*;
pub(crate) use session::serve;
