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
//! [`Core`] puts them together as one state machine, `handle(event, now)
//! -> actions`, with no sockets and no clock of its own: the Stratum V1
//! session and each Stratum V2 channel translate their wire messages into
//! its events and its actions back into their own messages and error
//! codes.

mod channel;
mod core;
mod target;

pub use self::core::{Action, Actions, Core, Event};
pub use channel::{Accepted, Channel, MAX_SENT_JOBS, Refusal, SentJob, Solved, Submit};
pub use target::Targeting;
