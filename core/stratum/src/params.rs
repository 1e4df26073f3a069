//! Reading a line into a JSON object, and typed access to its `params`.
//!
//! Shared by the server-side parser ([`crate::parse_line`]) and the
//! client-side one ([`crate::parse_server_line`]).

use crate::{Id, MAX_LINE_BYTES, ParseError};
use proofpool_primitives::{Difficulty, U256};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A line split into its id, its method (if any) and the rest of the object.
pub(crate) struct Envelope {
    pub(crate) id: Id,
    pub(crate) object: Map<String, Value>,
}

impl Envelope {
    /// Frames and decodes one line: length limit, `\r\n`, UTF-8, JSON, id.
    pub(crate) fn read(line: &[u8]) -> Result<Self, ParseError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            return Err(ParseError::TooLong { len: line.len() });
        }
        let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| ParseError::InvalidJson(e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(ParseError::NotAnObject);
        };
        let id = match object.get("id") {
            None => Id::Null,
            // Always a literal, even when the text cannot be had: the reply
            // carries that text, and reads back as a literal too.
            Some(Value::Number(n)) if n.is_f64() => {
                Id::Literal(literal_id(text).unwrap_or_else(|| n.to_string()))
            }
            Some(v) => Id::from_json(v).ok_or(ParseError::InvalidId)?,
        };
        Ok(Self { id, object })
    }

    /// The method name, if `method` is a string.
    pub(crate) fn method(&self) -> Option<&str> {
        self.object.get("method").and_then(Value::as_str)
    }

    /// Whether this is a reply: no method, but a `result` or an `error`.
    pub(crate) fn is_reply(&self) -> bool {
        matches!(self.object.get("method"), None | Some(Value::Null))
            && (self.object.contains_key("result") || self.object.contains_key("error"))
    }

    /// The params of a request, checked to be an array (absent or null is empty).
    pub(crate) fn params<'a>(&'a self, method: &'a str) -> Result<Params<'a>, ParseError> {
        let items: &[Value] = match self.object.get("params") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(bad(&self.id, method, "params must be an array"));
            }
        };
        Ok(Params {
            id: &self.id,
            method,
            items,
        })
    }
}

/// A number id that is not a 64-bit integer, as the exact text the line
/// carries, so that the reply echoes it byte for byte.
///
/// Read through a float it would not always come back the same: `1.50`
/// would echo as `1.5`, `1e400` not at all, and serde_json's fast float
/// parser reads `8000000000000615.0` as `8000000000000614.0` (found by the
/// `stratum_line` fuzz target). `None` if the text cannot be read that way,
/// e.g. when `id` appears twice; the id then echoes as the nearest float
/// (still a literal: `{"id":[1],"id":1.5}` once read as a number and its
/// reply as a literal, found by the `stratum_line` fuzz target).
fn literal_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdText<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    let raw: IdText<'_> = serde_json::from_str(text).ok()?;
    let literal = raw.id.get();
    // The raw text of the one `id` member, which parsed as a number.
    matches!(serde_json::from_str::<Value>(literal), Ok(Value::Number(_)))
        .then(|| literal.to_owned())
}

/// Builds a [`ParseError::BadParams`].
pub(crate) fn bad(id: &Id, method: &str, reason: impl Into<String>) -> ParseError {
    ParseError::BadParams {
        id: id.clone(),
        method: method.to_owned(),
        reason: reason.into(),
    }
}

/// Positional params, with errors that name the param and carry the id.
pub(crate) struct Params<'a> {
    id: &'a Id,
    method: &'a str,
    pub(crate) items: &'a [Value],
}

impl<'a> Params<'a> {
    /// A `BadParams` error for this request.
    pub(crate) fn bad(&self, reason: impl Into<String>) -> ParseError {
        bad(self.id, self.method, reason)
    }

    /// Param `i`, or `None` when it is missing or null.
    pub(crate) fn get(&self, i: usize) -> Option<&'a Value> {
        self.items.get(i).filter(|v| !v.is_null())
    }

    /// Param `i`, which must be present.
    pub(crate) fn required(&self, i: usize, name: &str) -> Result<&'a Value, ParseError> {
        self.get(i)
            .ok_or_else(|| self.bad(format!("missing {name}")))
    }

    /// A required string.
    pub(crate) fn str(&self, i: usize, name: &str) -> Result<&'a str, ParseError> {
        self.required(i, name)?
            .as_str()
            .ok_or_else(|| self.bad(format!("{name} must be a string")))
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, i: usize, name: &str) -> Result<Option<&'a str>, ParseError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.bad(format!("{name} must be a string"))),
        }
    }

    /// A required hex string of any even length.
    pub(crate) fn hex(&self, i: usize, name: &str) -> Result<Vec<u8>, ParseError> {
        hex_bytes(self.str(i, name)?).map_err(|e| self.bad(format!("{name} {e}")))
    }

    /// A required u32 sent as exactly 8 big-endian hex digits.
    pub(crate) fn hex_u32(&self, i: usize, name: &str) -> Result<u32, ParseError> {
        hex_u32_exact(self.str(i, name)?).map_err(|e| self.bad(format!("{name} {e}")))
    }

    /// A required difficulty: a JSON number or a numeric string.
    pub(crate) fn difficulty(&self, i: usize, name: &str) -> Result<Difficulty, ParseError> {
        difficulty(self.required(i, name)?).map_err(|e| self.bad(format!("{name}: {e}")))
    }

    /// A difficulty the server set: like [`Params::difficulty`], but a number
    /// with more than 18 decimal places is rounded up to 18
    /// ([`Difficulty::from_f64_at_least`]), as a proxy may print one.
    pub(crate) fn difficulty_at_least(
        &self,
        i: usize,
        name: &str,
    ) -> Result<Difficulty, ParseError> {
        let value = self.required(i, name)?;
        let parsed = match value.as_f64() {
            Some(float) if value.as_u64().is_none() => {
                Difficulty::from_f64_at_least(float).map_err(|e| e.to_string())
            }
            _ => difficulty(value),
        };
        parsed.map_err(|e| self.bad(format!("{name}: {e}")))
    }
}

/// Decodes hex of any even length, e.g. an extranonce.
pub(crate) fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!(
            "must be an even number of hex digits, got {}",
            s.len()
        ));
    }
    hex::decode(s).map_err(|_| "must be hex".to_owned())
}

/// Decodes exactly 8 hex digits as a big-endian u32 (ntime, nonce, version).
pub(crate) fn hex_u32_exact(s: &str) -> Result<u32, String> {
    if s.len() != 8 {
        return Err(format!("must be 8 hex digits, got {} characters", s.len()));
    }
    if s.starts_with("0x") {
        return Err(format!("must be 8 hex digits without 0x, got {s:?}"));
    }
    hex_u32_loose(s)
}

/// Decodes 1 to 8 hex digits, with an optional `0x`, as a u32 (a version mask).
pub(crate) fn hex_u32_loose(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    // from_str_radix alone would accept a leading sign.
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("must be 1 to 8 hex digits, got {s:?}"));
    }
    u32::from_str_radix(digits, 16).map_err(|e| e.to_string())
}

/// Decodes 1 to 64 hex digits, with an optional `0x`, as a 256-bit number.
pub(crate) fn hex_u256(s: &str) -> Result<U256, String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.is_empty() || digits.len() > 64 {
        return Err(format!("must be 1 to 64 hex digits, got {}", digits.len()));
    }
    let mut value = U256::ZERO;
    for c in digits.chars() {
        let nibble = c.to_digit(16).ok_or_else(|| "must be hex".to_owned())?;
        value = (value << 4) | U256::from(nibble);
    }
    Ok(value)
}

/// Decodes exactly 64 hex digits into 32 bytes, in the order given.
pub(crate) fn hex_32(s: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return Err(format!("must be 64 hex digits, got {} characters", s.len()));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| "must be hex".to_owned())?;
    Ok(out)
}

/// A difficulty from a JSON number (exact via its shortest decimal) or string.
pub(crate) fn difficulty(value: &Value) -> Result<Difficulty, String> {
    let parsed = match value {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(int), _) => Difficulty::from_integer(int),
            (None, Some(float)) => Difficulty::from_f64(float),
            (None, None) => return Err("is not a number".to_owned()),
        },
        Value::String(s) => s.parse(),
        _ => return Err("must be a number".to_owned()),
    };
    parsed.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_helpers() {
        assert_eq!(hex_u32_exact("1fffe000"), Ok(0x1fff_e000));
        assert_eq!(hex_u32_exact("1FFFE000"), Ok(0x1fff_e000));
        assert!(hex_u32_exact("+fffe000").is_err());
        assert!(hex_u32_exact("1fffe00").is_err());
        assert!(hex_u32_exact("0x1fffe0").is_err());
        assert_eq!(hex_u32_loose("0x1fffe000"), Ok(0x1fff_e000));
        assert_eq!(hex_u32_loose("e000"), Ok(0xe000));
        assert!(hex_u32_loose("").is_err());
        assert!(hex_u32_loose("123456789").is_err());
        assert_eq!(hex_bytes(""), Ok(vec![]));
        assert_eq!(hex_bytes("00ff"), Ok(vec![0, 255]));
        assert!(hex_bytes("0").is_err());
        assert!(hex_bytes("zz").is_err());
        assert!(hex_bytes("é0").is_err());
        assert_eq!(hex_u256("ff"), Ok(U256::from(255u16)));
        assert_eq!(hex_u256(&"f".repeat(64)), Ok(U256::MAX));
        assert!(hex_u256(&"f".repeat(65)).is_err());
        assert!(hex_u256("g").is_err());
        assert!(hex_32(&"0".repeat(63)).is_err());
        assert!(hex_32(&"é".repeat(32)).is_err());
    }

    #[test]
    fn difficulty_from_json() {
        let read = |s: &str| difficulty(&serde_json::from_str(s).unwrap());
        assert_eq!(read("0.0001").unwrap().to_string(), "0.0001");
        assert_eq!(read("1e-5").unwrap().to_string(), "0.00001");
        assert_eq!(read("512").unwrap().to_string(), "512");
        assert_eq!(read("\"2048\"").unwrap().to_string(), "2048");
        assert_eq!(read("-1"), Err("difficulty is negative".to_owned()));
        assert_eq!(read("0"), Err("difficulty is zero".to_owned()));
        assert_eq!(read("true"), Err("must be a number".to_owned()));
    }
}
