//! Stratum V1, the line protocol between miners and the pool, as typed
//! values. No I/O: callers own the sockets.
//!
//! A connection carries newline-delimited JSON-RPC in both directions.
//!
//! - **Miner → pool.** The server reads a line (at most [`MAX_LINE_BYTES`])
//!   and calls [`parse_line`]. It gets a [`Message`]: either a request, whose
//!   [`ClientMethod`] has its params already checked and hex decoded
//!   (`mining.submit` yields the extranonce2 bytes and the ntime, nonce and
//!   version bits as `u32`; `mining.suggest_difficulty` an exact
//!   [`Difficulty`]), or the miner's reply to a server request. A malformed
//!   line is a [`ParseError`]; when it carries the request id
//!   ([`ParseError::id`]) the server answers with [`reply_error`] and keeps
//!   the connection. Unknown methods parse as [`ClientMethod::Unknown`].
//! - **Pool → miner.** The builders in [`server`] write complete lines, each
//!   ending in `\n`, straight into a `String`: replies ([`reply_true`],
//!   [`reply_error`], [`subscribe_result`], [`configure_result`]) echo the
//!   request's [`Id`]; notifications ([`notify`], [`set_difficulty`], …) use
//!   `"id": null`. A `mining.notify` line is built once per job and sent to
//!   every miner.
//! - **The miner's side**, for the reference miner and tests: the request
//!   builders in [`miner`] ([`miner::subscribe`], [`miner::submit`], …) and
//!   [`parse_server_line`], which reads the pool's lines into
//!   [`ServerMessage`]s.
//!
//! Stratum V2's pieces that the pool and the reference miner share are in
//! [`sv2`]: the authority key, the encrypted connection and
//! `SetupConnection`, on the SRI crates.
//!
//! Difficulties are printed exactly (`0.0001`, never `1e-4` or a float
//! approximation). Received JSON numbers are read exactly when they are
//! integers or have at most 15 significant digits (serde_json reads other
//! numbers as `f64`, whose shortest decimal is then taken); a numeric string
//! is exact at any precision. See [`proofpool_primitives::Difficulty`].

mod client;
mod codes;
mod error;
mod json;
pub mod miner;
mod params;
pub mod server;
pub mod sv2;

pub use client::{ClientMethod, Message, VersionRolling, parse_line, parse_line_general};
pub use codes::ErrorCode;
pub use error::{EncodeError, ParseError};
pub use json::{Id, ReplyError};
pub use miner::{NotifyOwned, ServerMessage, SubscribeReply, parse_server_line};
pub use proofpool_primitives::Difficulty;
pub use server::{
    ConfigureResult, NotifyParams, configure_result, get_version, notify, reconnect,
    reconnect_same_server, reply_error, reply_ok, reply_true, set_difficulty, set_extranonce,
    set_version_mask, show_message, subscribe_result,
};

/// The longest line either side accepts, without its `\n` or `\r\n`.
///
/// Real requests are far shorter (a `mining.submit` is about 150 bytes); the
/// limit bounds the memory a connection can make the server buffer.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
