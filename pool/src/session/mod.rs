//! What a miner's session is, whatever protocol it speaks: the jobs it was
//! sent, each with the miner and share target its coinbase commits to, the
//! shares it had accepted on them (for duplicates), and the checks a share
//! passes before the share log gets it ([`Channel`]); the difficulty its
//! next job carries, moved by the miner's requests and by vardiff
//! ([`Targeting`]).
//!
//! A share that passes comes back as the share log's record and, if it
//! solves a block, the block ([`Accepted`]): both protocols account the
//! same way because one function builds both.
//!
//! No sockets and no clock of its own: the Stratum V1 and V2 sessions
//! translate their wire messages into these calls and the answers back into
//! their own replies and error codes.

mod channel;
mod target;

pub use channel::{Accepted, Channel, MAX_SENT_JOBS, Refusal, SentJob, Solved, Submit};
pub use target::Targeting;
