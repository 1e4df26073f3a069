//! Why a line could not be read or encoded.

use crate::{Id, MAX_LINE_BYTES};

/// Why a received line is not a message we understand.
///
/// Every variant that occurs after the id was read carries it, so a server
/// can answer `[20, reason, null]` to the right request instead of
/// disconnecting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line is empty or whitespace; servers usually skip it.
    #[error("empty line")]
    Empty,
    /// The line exceeds [`MAX_LINE_BYTES`]; it was not parsed.
    #[error("line is {len} bytes, over the {MAX_LINE_BYTES}-byte limit")]
    TooLong {
        /// The length of the line, without its terminator.
        len: usize,
    },
    /// The line is not UTF-8.
    #[error("line is not valid utf-8")]
    NotUtf8,
    /// The line is not JSON.
    #[error("invalid json: {0}")]
    InvalidJson(String),
    /// The JSON is not an object.
    #[error("message is not a json object")]
    NotAnObject,
    /// The `id` is an array, object or boolean.
    #[error("id must be a number, a string or null")]
    InvalidId,
    /// The object has neither a `method` string nor a `result` or `error`.
    #[error("message has no method, result or error")]
    MissingMethod {
        /// The request id.
        id: Id,
    },
    /// The method is known but its params are malformed.
    #[error("bad params for {method}: {reason}")]
    BadParams {
        /// The request id.
        id: Id,
        /// The method name as sent.
        method: String,
        /// What is wrong, e.g. `ntime must be 8 hex digits, got 7 characters`.
        reason: String,
    },
}

impl ParseError {
    /// The id of the offending request, when it could be read.
    pub fn id(&self) -> Option<&Id> {
        match self {
            Self::MissingMethod { id } | Self::BadParams { id, .. } => Some(id),
            Self::Empty
            | Self::TooLong { .. }
            | Self::NotUtf8
            | Self::InvalidJson(_)
            | Self::NotAnObject
            | Self::InvalidId => None,
        }
    }
}

/// A reply's result could not be serialized as JSON.
#[derive(Debug, thiserror::Error)]
#[error("result cannot be encoded as json: {0}")]
pub struct EncodeError(#[from] pub serde_json::Error);
