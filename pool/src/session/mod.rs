//! What a miner's session is, whatever protocol it speaks: the jobs it was
//! sent, each with the miner and share target its coinbase commits to, the
//! shares it had accepted on them (for duplicates), and the checks a share
//! passes before the share log gets it ([`Channel`]).
//!
//! No sockets and no clock of its own: the Stratum V1 session (and the
//! Stratum V2 one, issue 24) translate their wire messages into these calls
//! and the answers back into their own replies and error codes.

mod channel;

pub(crate) use channel::{Channel, Checked, Refusal};
