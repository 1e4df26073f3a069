//! The miner's side: request builders and a parser for server lines.
//!
//! Used by the reference CPU miner and by tests that play a miner against
//! the pool.

use crate::json::{Line, push_hex_u32, push_str};
use crate::params::{Envelope, Params, hex_32, hex_bytes, hex_u32_loose};
use crate::{Id, ParseError, ReplyError};
use proofpool_primitives::Difficulty;
use serde_json::Value;

/// One line from the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// The answer to one of our requests.
    Reply {
        /// The id of our request.
        id: Id,
        /// The `result` member; null when absent.
        result: Value,
        /// The `error` member, if not null.
        error: Option<ReplyError>,
    },
    /// `mining.notify`: a new job.
    Notify(NotifyOwned),
    /// `mining.set_difficulty`.
    SetDifficulty(Difficulty),
    /// `mining.set_version_mask`.
    SetVersionMask(u32),
    /// `mining.set_extranonce`.
    SetExtranonce {
        /// The new extranonce1.
        extranonce1: Vec<u8>,
        /// The new extranonce2 size in bytes.
        extranonce2_size: usize,
    },
    /// `client.reconnect`; missing params mean "the same as now".
    Reconnect {
        /// The host to connect to.
        host: Option<String>,
        /// The port, sent as a number or a numeric string.
        port: Option<u16>,
        /// Seconds to wait before reconnecting.
        wait_secs: Option<u64>,
    },
    /// `client.show_message`.
    ShowMessage(String),
    /// `client.get_version`: answer with the miner's version string.
    GetVersion {
        /// The id to answer.
        id: Id,
    },
    /// Any other method.
    Unknown {
        /// The request id; null for notifications.
        id: Id,
        /// The method name as sent.
        method: String,
    },
}

/// A `mining.notify` job, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOwned {
    /// The job id to echo in `mining.submit`.
    pub job_id: String,
    /// The previous block hash bytes as sent: Stratum's word-swapped order.
    pub prevhash: [u8; 32],
    /// The coinbase bytes before the extranonces.
    pub coinbase1: Vec<u8>,
    /// The coinbase bytes after the extranonces.
    pub coinbase2: Vec<u8>,
    /// The merkle branch of the coinbase, each hash as sent.
    pub merkle_branch: Vec<[u8; 32]>,
    /// The block version.
    pub version: u32,
    /// The compact network target.
    pub nbits: u32,
    /// The header time.
    pub ntime: u32,
    /// Whether earlier jobs are void; false when the param is missing.
    pub clean_jobs: bool,
}

impl NotifyOwned {
    /// The previous block hash in internal byte order: Stratum sends it
    /// with each 4-byte word byte-swapped.
    pub fn previous_block_hash(&self) -> [u8; 32] {
        let mut hash = self.prevhash;
        for word in hash.chunks_exact_mut(4) {
            word.reverse();
        }
        hash
    }
}

/// The useful part of a `mining.subscribe` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeReply {
    /// The extranonce1 the pool assigned.
    pub extranonce1: Vec<u8>,
    /// The extranonce2 size in bytes.
    pub extranonce2_size: usize,
}

impl SubscribeReply {
    /// Reads `[subscriptions, "<en1 hex>", en2_size]`, or `None` if malformed.
    pub fn from_result(result: &Value) -> Option<Self> {
        let items = result.as_array()?;
        Some(Self {
            extranonce1: hex_bytes(items.get(1)?.as_str()?).ok()?,
            extranonce2_size: usize::try_from(items.get(2)?.as_u64()?).ok()?,
        })
    }
}

/// The version mask granted by a `mining.configure` result, if any.
pub fn configured_version_mask(result: &Value) -> Option<u32> {
    if result.get("version-rolling")?.as_bool()? {
        hex_u32_loose(result.get("version-rolling.mask")?.as_str()?).ok()
    } else {
        None
    }
}

/// Parses one line from the pool, with the same framing rules and length
/// limit as [`crate::parse_line`]. No input makes this panic.
pub fn parse_server_line(line: &[u8]) -> Result<ServerMessage, ParseError> {
    let envelope = Envelope::read(line)?;
    if envelope.is_reply() {
        let mut object = envelope.object;
        let error = object.get("error").and_then(ReplyError::from_json);
        return Ok(ServerMessage::Reply {
            id: envelope.id,
            result: object.remove("result").unwrap_or(Value::Null),
            error,
        });
    }
    let Some(name) = envelope.method() else {
        return Err(ParseError::MissingMethod { id: envelope.id });
    };
    let message = match name {
        "mining.notify" => ServerMessage::Notify(parse_notify(&envelope.params(name)?)?),
        "mining.set_difficulty" => ServerMessage::SetDifficulty(
            envelope
                .params(name)?
                .difficulty_at_least(0, "difficulty")?,
        ),
        "mining.set_version_mask" => {
            let params = envelope.params(name)?;
            let mask = hex_u32_loose(params.str(0, "mask")?)
                .map_err(|e| params.bad(format!("mask {e}")))?;
            ServerMessage::SetVersionMask(mask)
        }
        "mining.set_extranonce" => {
            let params = envelope.params(name)?;
            ServerMessage::SetExtranonce {
                extranonce1: params.hex(0, "extranonce1")?,
                extranonce2_size: params
                    .required(1, "extranonce2 size")?
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| params.bad("extranonce2 size must be an integer"))?,
            }
        }
        "client.reconnect" => parse_reconnect(&envelope.params(name)?)?,
        "client.show_message" => {
            ServerMessage::ShowMessage(envelope.params(name)?.str(0, "message")?.to_owned())
        }
        "client.get_version" => ServerMessage::GetVersion {
            id: envelope.id.clone(),
        },
        _ => ServerMessage::Unknown {
            id: envelope.id.clone(),
            method: name.to_owned(),
        },
    };
    Ok(message)
}

fn parse_notify(params: &Params<'_>) -> Result<NotifyOwned, ParseError> {
    let branch = params
        .required(4, "merkle branch")?
        .as_array()
        .ok_or_else(|| params.bad("merkle branch must be an array"))?;
    let merkle_branch = branch
        .iter()
        .map(|hash| {
            hash.as_str()
                .ok_or_else(|| "must be strings".to_owned())
                .and_then(hex_32)
                .map_err(|e| params.bad(format!("merkle branch entries {e}")))
        })
        .collect::<Result<_, _>>()?;
    let clean_jobs = match params.get(8) {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| params.bad("clean_jobs must be a boolean"))?,
    };
    Ok(NotifyOwned {
        job_id: params.str(0, "job id")?.to_owned(),
        prevhash: hex_32(params.str(1, "prevhash")?)
            .map_err(|e| params.bad(format!("prevhash {e}")))?,
        coinbase1: params.hex(2, "coinbase1")?,
        coinbase2: params.hex(3, "coinbase2")?,
        merkle_branch,
        version: params.hex_u32(5, "version")?,
        nbits: params.hex_u32(6, "nbits")?,
        ntime: params.hex_u32(7, "ntime")?,
        clean_jobs,
    })
}

fn parse_reconnect(params: &Params<'_>) -> Result<ServerMessage, ParseError> {
    let port = match params.get(1) {
        None => None,
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    if params.get(1).is_some() && port.is_none() {
        return Err(params.bad("port must be an integer 0 to 65535"));
    }
    let wait_secs = match params.get(2) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| params.bad("wait must be a non-negative integer"))?,
        ),
    };
    Ok(ServerMessage::Reconnect {
        host: params.opt_str(0, "host")?.map(str::to_owned),
        port,
        wait_secs,
    })
}

/// `mining.subscribe` with a user agent.
pub fn subscribe(id: &Id, user_agent: &str) -> String {
    let mut line = Line::request(id, "mining.subscribe", user_agent.len() + 2);
    line.str(user_agent);
    line.finish_request()
}

/// `mining.authorize`.
pub fn authorize(id: &Id, username: &str, password: &str) -> String {
    let mut line = Line::request(id, "mining.authorize", username.len() + password.len() + 6);
    line.str(username).str(password);
    line.finish_request()
}

/// `mining.configure` asking for version rolling (BIP310).
pub fn configure_version_rolling(id: &Id, mask: u32, min_bit_count: u32) -> String {
    let mut line = Line::request(id, "mining.configure", 96);
    line.item().push_str("[\"version-rolling\"]");
    let out = line.item();
    out.push('{');
    push_str(out, "version-rolling.mask");
    out.push(':');
    push_hex_u32(out, mask);
    out.push(',');
    push_str(out, "version-rolling.min-bit-count");
    out.push(':');
    crate::json::push_display(out, min_bit_count);
    out.push('}');
    line.finish_request()
}

/// `mining.suggest_difficulty`, with the difficulty printed exactly.
pub fn suggest_difficulty(id: &Id, difficulty: Difficulty) -> String {
    let mut line = Line::request(id, "mining.suggest_difficulty", 24);
    line.raw(difficulty);
    line.finish_request()
}

/// `mining.extranonce.subscribe`.
pub fn extranonce_subscribe(id: &Id) -> String {
    Line::request(id, "mining.extranonce.subscribe", 0).finish_request()
}

/// `mining.submit`: 5 params, or 6 with rolled version bits.
pub fn submit(
    id: &Id,
    worker: &str,
    job_id: &str,
    extranonce2: &[u8],
    ntime: u32,
    nonce: u32,
    version_bits: Option<u32>,
) -> String {
    let capacity = worker.len() + job_id.len() + 2 * extranonce2.len() + 40;
    let mut line = Line::request(id, "mining.submit", capacity);
    line.str(worker)
        .str(job_id)
        .hex(extranonce2)
        .hex_u32(ntime)
        .hex_u32(nonce);
    if let Some(bits) = version_bits {
        line.hex_u32(bits);
    }
    line.finish_request()
}

#[cfg(test)]
mod tests;
