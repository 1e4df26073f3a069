//! Parsing what miners send: requests, and replies to server requests.

use crate::params::{Envelope, Params, hex_bytes, hex_u32_loose, hex_u256};
use crate::{Id, ParseError, ReplyError};
use proofpool_primitives::{Difficulty, U256};
use serde_json::{Map, Value};

/// One line from a miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request the server must answer, echoing `id`.
    Request {
        /// The request id, echoed in the reply.
        id: Id,
        /// The method and its typed params.
        method: ClientMethod,
    },
    /// The miner's answer to a server request such as `client.get_version`.
    ClientReply {
        /// The id of the server's request.
        id: Id,
        /// The `result` member; null when absent.
        result: Value,
        /// The `error` member, if not null.
        error: Option<ReplyError>,
    },
}

/// A miner's request, with params parsed and hex decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMethod {
    /// `mining.subscribe`: start a session.
    ///
    /// Never fails on its params: a user agent that is not a string and an
    /// extranonce1 that is not hex (a resume hint some proxies fill with other
    /// tokens) read as `None`.
    Subscribe {
        /// The miner software, e.g. `bitaxe/BM1366/v2.4.0`.
        user_agent: Option<String>,
        /// The extranonce1 of a previous session the miner asks to resume.
        extranonce1: Option<Vec<u8>>,
    },
    /// `mining.authorize`: name a worker.
    Authorize {
        /// The username, e.g. `0xAbC…123.rig1`; not validated here.
        username: String,
        /// The password; a number is read as its JSON text.
        password: Option<String>,
    },
    /// `mining.configure` (BIP310): negotiate extensions.
    Configure {
        /// `version-rolling`, if requested.
        version_rolling: Option<VersionRolling>,
        /// `minimum-difficulty`, if requested.
        minimum_difficulty: Option<Difficulty>,
        /// Whether `subscribe-extranonce` was requested.
        subscribe_extranonce: bool,
        /// Requested extensions this crate does not know, e.g. `info`.
        unknown: Vec<String>,
    },
    /// `mining.suggest_difficulty`: the miner's preferred share difficulty.
    SuggestDifficulty(Difficulty),
    /// `mining.suggest_target`: the miner's preferred share target.
    SuggestTarget(U256),
    /// `mining.extranonce.subscribe`: the miner accepts `mining.set_extranonce`.
    ExtranonceSubscribe,
    /// `mining.submit`: a share.
    Submit {
        /// The worker name as authorized.
        worker: String,
        /// The job id from `mining.notify`.
        job_id: String,
        /// The miner's extranonce2; its length is checked by the server.
        extranonce2: Vec<u8>,
        /// The header time.
        ntime: u32,
        /// The header nonce.
        nonce: u32,
        /// The rolled version bits (6th param), if version rolling is on.
        version_bits: Option<u32>,
    },
    /// `mining.get_transactions`: the transaction ids of a job.
    GetTransactions {
        /// The job id from `mining.notify`.
        job_id: String,
    },
    /// `mining.capabilities`: an advisory list the server may ignore.
    Capabilities,
    /// `mining.multi_version`: an old AsicBoost announcement the server may ignore.
    MultiVersion,
    /// Any other method; answer with an error rather than disconnecting.
    Unknown {
        /// The method name as sent.
        method: String,
    },
}

impl ClientMethod {
    /// The wire name of the method, e.g. `mining.submit`, for logs and metrics.
    pub fn name(&self) -> &str {
        match self {
            Self::Subscribe { .. } => "mining.subscribe",
            Self::Authorize { .. } => "mining.authorize",
            Self::Configure { .. } => "mining.configure",
            Self::SuggestDifficulty(_) => "mining.suggest_difficulty",
            Self::SuggestTarget(_) => "mining.suggest_target",
            Self::ExtranonceSubscribe => "mining.extranonce.subscribe",
            Self::Submit { .. } => "mining.submit",
            Self::GetTransactions { .. } => "mining.get_transactions",
            Self::Capabilities => "mining.capabilities",
            Self::MultiVersion => "mining.multi_version",
            Self::Unknown { method } => method,
        }
    }
}

/// The `version-rolling` extension of a `mining.configure` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRolling {
    /// The bits the miner wants to roll (`version-rolling.mask`); all ones
    /// when the miner sends no mask, as some firmware does.
    pub mask: u32,
    /// The fewest bits the miner needs (`version-rolling.min-bit-count`);
    /// 0 when not sent.
    pub min_bit_count: u32,
}

/// Parses one line from a miner.
///
/// The line may end in `\n` or `\r\n`. A line longer than
/// [`crate::MAX_LINE_BYTES`] is rejected before it is parsed. No input makes
/// this panic.
pub fn parse_line(line: &[u8]) -> Result<Message, ParseError> {
    match parse_submit_fast(line) {
        Some(submit) => Ok(submit),
        None => parse_line_general(line),
    }
}

/// [`parse_line`] without its `mining.submit` fast path: every line through a
/// `serde_json::Value`. Public so tests and the fuzz target can check that
/// both paths agree.
#[doc(hidden)]
pub fn parse_line_general(line: &[u8]) -> Result<Message, ParseError> {
    let envelope = Envelope::read(line)?;
    if envelope.is_reply() {
        let mut object = envelope.object;
        let error = object.get("error").and_then(ReplyError::from_json);
        return Ok(Message::ClientReply {
            id: envelope.id,
            result: object.remove("result").unwrap_or(Value::Null),
            error,
        });
    }
    let Some(name) = envelope.method() else {
        return Err(ParseError::MissingMethod { id: envelope.id });
    };
    let method = parse_method(&envelope, name)?;
    Ok(Message::Request {
        id: envelope.id,
        method,
    })
}

fn parse_method(envelope: &Envelope, name: &str) -> Result<ClientMethod, ParseError> {
    let method = match name {
        "mining.subscribe" => parse_subscribe(envelope),
        "mining.authorize" => parse_authorize(&envelope.params(name)?)?,
        "mining.configure" => parse_configure(&envelope.params(name)?)?,
        "mining.suggest_difficulty" => {
            ClientMethod::SuggestDifficulty(envelope.params(name)?.difficulty(0, "difficulty")?)
        }
        "mining.suggest_target" => {
            let params = envelope.params(name)?;
            let target = hex_u256(params.str(0, "target")?)
                .map_err(|e| params.bad(format!("target {e}")))?;
            if target.is_zero() {
                return Err(params.bad("target is zero"));
            }
            ClientMethod::SuggestTarget(target)
        }
        "mining.extranonce.subscribe" => ClientMethod::ExtranonceSubscribe,
        "mining.submit" => parse_submit(&envelope.params(name)?)?,
        "mining.get_transactions" => ClientMethod::GetTransactions {
            job_id: envelope.params(name)?.str(0, "job id")?.to_owned(),
        },
        "mining.capabilities" => ClientMethod::Capabilities,
        "mining.multi_version" => ClientMethod::MultiVersion,
        _ => ClientMethod::Unknown {
            method: name.to_owned(),
        },
    };
    Ok(method)
}

/// `[]`, `[ua]`, `[ua, en1]` or `[ua, en1, host, port]`; never fails.
fn parse_subscribe(envelope: &Envelope) -> ClientMethod {
    let items = match envelope.object.get("params") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    ClientMethod::Subscribe {
        user_agent: items.first().and_then(Value::as_str).map(str::to_owned),
        extranonce1: items
            .get(1)
            .and_then(Value::as_str)
            .and_then(|s| hex_bytes(s).ok())
            .filter(|en1| !en1.is_empty()),
    }
}

fn parse_authorize(params: &Params<'_>) -> Result<ClientMethod, ParseError> {
    let username = params.str(0, "username")?.to_owned();
    let password = match params.get(1) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(params.bad("password must be a string")),
    };
    Ok(ClientMethod::Authorize { username, password })
}

/// `[[extension, …], {"extension.param": value, …}]`.
fn parse_configure(params: &Params<'_>) -> Result<ClientMethod, ParseError> {
    let empty = Map::new();
    let names: &[Value] = match params.get(0) {
        None => &[],
        Some(Value::Array(names)) => names,
        Some(_) => return Err(params.bad("extensions must be an array of names")),
    };
    let options = match params.get(1) {
        None => &empty,
        Some(Value::Object(options)) => options,
        Some(_) => return Err(params.bad("extension params must be an object")),
    };
    let option = |key: &str| options.get(key).filter(|v| !v.is_null());

    let mut version_rolling = None;
    let mut minimum_difficulty = None;
    let mut subscribe_extranonce = false;
    let mut unknown = Vec::new();
    for name in names {
        let Some(name) = name.as_str() else {
            return Err(params.bad("extension names must be strings"));
        };
        match name {
            "version-rolling" => {
                let mask = match option("version-rolling.mask") {
                    None => u32::MAX,
                    Some(Value::String(s)) => hex_u32_loose(s)
                        .map_err(|e| params.bad(format!("version-rolling.mask {e}")))?,
                    Some(_) => return Err(params.bad("version-rolling.mask must be a hex string")),
                };
                let min_bit_count = match option("version-rolling.min-bit-count") {
                    None => 0,
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|&n| n <= 32)
                        .ok_or_else(|| {
                            params.bad("version-rolling.min-bit-count must be an integer 0 to 32")
                        })?,
                };
                version_rolling = Some(VersionRolling {
                    mask,
                    min_bit_count,
                });
            }
            "minimum-difficulty" => {
                let value = option("minimum-difficulty.value")
                    .ok_or_else(|| params.bad("missing minimum-difficulty.value"))?;
                let difficulty = crate::params::difficulty(value)
                    .map_err(|e| params.bad(format!("minimum-difficulty.value: {e}")))?;
                minimum_difficulty = Some(difficulty);
            }
            "subscribe-extranonce" => subscribe_extranonce = true,
            other => unknown.push(other.to_owned()),
        }
    }
    Ok(ClientMethod::Configure {
        version_rolling,
        minimum_difficulty,
        subscribe_extranonce,
        unknown,
    })
}

/// The common case of the hottest line, a well-formed `mining.submit` with
/// an unsigned integer (or null, or no) id and 5 or 6 plain string params,
/// read straight from the bytes into borrowed strings: no `Value` tree, no
/// map, three allocations (worker, job id, extranonce2) instead of about
/// thirty. `None` for anything else, including every malformed submit, which
/// [`parse_line_general`] then parses and words the error for; where this
/// returns `Some`, it is exactly what the general parser returns (tested, and
/// asserted by the `stratum_line` fuzz target).
fn parse_submit_fast(line: &[u8]) -> Option<Message> {
    #[derive(serde::Deserialize)]
    struct Submit<'a> {
        #[serde(default)]
        id: Option<u64>,
        #[serde(borrow)]
        method: &'a str,
        #[serde(borrow)]
        params: SubmitParams<'a>,
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > crate::MAX_LINE_BYTES {
        return None;
    }
    // serde_json skips unknown members without checking their UTF-8, and the
    // general parser refuses a line that is not UTF-8 anywhere (found by the
    // `stratum_line` fuzz target): check the whole line first.
    let text = std::str::from_utf8(line).ok()?;
    let submit: Submit<'_> = serde_json::from_str(text).ok()?;
    if submit.method != "mining.submit" || submit.params.len < 5 {
        return None;
    }
    let [worker, job_id, extranonce2, ntime, nonce, version_bits] = submit.params.items;
    let version_bits = if submit.params.len == 6 {
        Some(crate::params::hex_u32_exact(version_bits).ok()?)
    } else {
        None
    };
    Some(Message::Request {
        id: submit.id.map_or(Id::Null, |n| Id::Number(n.into())),
        method: ClientMethod::Submit {
            worker: worker.to_owned(),
            job_id: job_id.to_owned(),
            extranonce2: hex_bytes(extranonce2).ok()?,
            ntime: crate::params::hex_u32_exact(ntime).ok()?,
            nonce: crate::params::hex_u32_exact(nonce).ok()?,
            version_bits,
        },
    })
}

/// Up to six params that are all strings without escapes (borrowed).
struct SubmitParams<'a> {
    items: [&'a str; 6],
    len: usize,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for SubmitParams<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<'a>(std::marker::PhantomData<&'a str>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Items<'a> {
            type Value = SubmitParams<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("up to six strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = SubmitParams {
                    items: [""; 6],
                    len: 0,
                };
                while let Some(item) = seq.next_element::<&'a str>()? {
                    let slot = out
                        .items
                        .get_mut(out.len)
                        .ok_or_else(|| serde::de::Error::custom("more than six params"))?;
                    *slot = item;
                    out.len += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(Items(std::marker::PhantomData))
    }
}

/// `[worker, job_id, extranonce2, ntime, nonce]` plus optional version bits.
fn parse_submit(params: &Params<'_>) -> Result<ClientMethod, ParseError> {
    if params.items.len() < 5 {
        return Err(params.bad(format!(
            "expected 5 or 6 params, got {}",
            params.items.len()
        )));
    }
    let version_bits = match params.get(5) {
        None => None,
        Some(_) => Some(params.hex_u32(5, "version bits")?),
    };
    Ok(ClientMethod::Submit {
        worker: params.str(0, "worker")?.to_owned(),
        job_id: params.str(1, "job id")?.to_owned(),
        extranonce2: params.hex(2, "extranonce2")?,
        ntime: params.hex_u32(3, "ntime")?,
        nonce: params.hex_u32(4, "nonce")?,
        version_bits,
    })
}

#[cfg(test)]
mod tests;
