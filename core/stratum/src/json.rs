//! Request ids, reply errors and the small JSON writers the line builders use.

use serde_json::{Number, Value};
use std::fmt::{self, Write as _};

/// A JSON-RPC request id: a number, a string or null.
///
/// Replies echo the id exactly as the client sent it: 64-bit integers digit
/// for digit, and any other number as the very text it was sent as (`1.50`
/// comes back as `1.50`, `1E+300` as `1E+300`), never re-encoded through a
/// float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Id {
    /// `null`, or no `id` member at all. Notifications use it.
    #[default]
    Null,
    /// A JSON number, usually a small counter.
    Number(Number),
    /// A JSON string.
    String(String),
    /// A number that is not a 64-bit integer (a fraction, an exponent, or an
    /// integer beyond 64 bits), as the JSON text it was sent as.
    Literal(String),
}

impl Id {
    /// Reads an id from JSON, or `None` for an array, object or boolean.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(Self::Null),
            Value::Number(n) => Some(Self::Number(n.clone())),
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// The id as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::Null | Self::String(_) | Self::Literal(_) => None,
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl fmt::Display for Id {
    /// The id as JSON: `null`, `7` or `"abc"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        push_id(&mut out, self);
        f.write_str(&out)
    }
}

/// The `error` member of a reply, read leniently.
///
/// Stratum V1 sends `[code, "message", traceback]`; some servers send
/// `{"code": .., "message": ..}` or a bare string. A missing code reads as 20
/// ("other"), a missing message as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    /// The numeric code, see [`crate::ErrorCode`].
    pub code: i64,
    /// The human-readable reason.
    pub message: String,
}

impl ReplyError {
    /// Reads a reply's `error` member; `None` when it is absent or null.
    pub fn from_json(value: &Value) -> Option<Self> {
        const OTHER: i64 = crate::ErrorCode::Other.code() as i64;
        let (code, message) = match value {
            Value::Null => return None,
            Value::Array(items) => (items.first(), items.get(1)),
            Value::Object(map) => (map.get("code"), map.get("message")),
            Value::String(s) => {
                return Some(Self {
                    code: OTHER,
                    message: s.clone(),
                });
            }
            Value::Bool(_) | Value::Number(_) => (None, Some(value)),
        };
        Some(Self {
            code: code.and_then(Value::as_i64).unwrap_or(OTHER),
            message: match message {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            },
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// Appends `"xxxxxxxx"`: a u32 as 8 big-endian hex digits in quotes.
pub(crate) fn push_hex_u32(out: &mut String, value: u32) {
    out.push('"');
    push_hex(out, &value.to_be_bytes());
    out.push('"');
}

/// Appends `"…"` as a quoted hex string.
pub(crate) fn push_hex_str(out: &mut String, bytes: &[u8]) {
    out.push('"');
    push_hex(out, bytes);
    out.push('"');
}

/// Appends `s` as a JSON string literal, escaping as RFC 8259 requires.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            push_hex(out, &[b]);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends an id as JSON.
pub(crate) fn push_id(out: &mut String, id: &Id) {
    match id {
        Id::Null => out.push_str("null"),
        Id::Number(n) => push_display(out, n),
        Id::String(s) => push_str(out, s),
        // Checked to be a JSON number when it was read.
        Id::Literal(text) => out.push_str(text),
    }
}

/// Appends a displayable value, e.g. an integer.
pub(crate) fn push_display(out: &mut String, value: impl fmt::Display) {
    write!(out, "{value}").expect("writing to a String cannot fail");
}

/// Writes one message line: `{"id":…,"method":"…","params":[…]}\n` or a
/// reply, with the commas between params handled.
pub(crate) struct Line {
    out: String,
    first: bool,
}

impl Line {
    /// Starts a request or notification and opens its params array.
    pub(crate) fn request(id: &Id, method: &str, capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity + method.len() + 48);
        out.push_str("{\"id\":");
        push_id(&mut out, id);
        out.push_str(",\"method\":");
        push_str(&mut out, method);
        out.push_str(",\"params\":[");
        Self { out, first: true }
    }

    /// Starts a reply; the caller writes the result with [`Line::raw`].
    pub(crate) fn reply(id: &Id, capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity + 48);
        out.push_str("{\"id\":");
        push_id(&mut out, id);
        out.push_str(",\"result\":");
        Self { out, first: true }
    }

    /// The buffer after the separator for the next item.
    pub(crate) fn item(&mut self) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        &mut self.out
    }

    /// Appends a JSON string item.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        push_str(self.item(), s);
        self
    }

    /// Appends a hex string item.
    pub(crate) fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        push_hex_str(self.item(), bytes);
        self
    }

    /// Appends an 8-hex-digit big-endian u32 item.
    pub(crate) fn hex_u32(&mut self, value: u32) -> &mut Self {
        push_hex_u32(self.item(), value);
        self
    }

    /// Appends a number, boolean or other already-valid JSON item.
    pub(crate) fn raw(&mut self, value: impl fmt::Display) -> &mut Self {
        push_display(self.item(), value);
        self
    }

    /// Closes the params array and the object, and adds the newline.
    pub(crate) fn finish_request(mut self) -> String {
        self.out.push_str("]}\n");
        self.out
    }

    /// Closes a reply with `"error":null`, or the given error array.
    pub(crate) fn finish_reply(mut self, error: Option<&str>) -> String {
        self.out.push_str(",\"error\":");
        self.out.push_str(error.unwrap_or("null"));
        self.out.push_str("}\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_print_as_json() {
        assert_eq!(Id::Null.to_string(), "null");
        assert_eq!(Id::from(7).to_string(), "7");
        assert_eq!(Id::from("a\"b").to_string(), r#""a\"b""#);
        let float: Value = serde_json::from_str("1.5").unwrap();
        assert_eq!(Id::from_json(&float).unwrap().to_string(), "1.5");
        assert_eq!(Id::from_json(&Value::Bool(true)), None);
        assert_eq!(Id::from(9).as_u64(), Some(9));
        assert_eq!(Id::from("9").as_u64(), None);
    }

    #[test]
    fn reply_errors_in_every_shape() {
        let read = |s: &str| ReplyError::from_json(&serde_json::from_str(s).unwrap());
        let e = |code, message: &str| {
            Some(ReplyError {
                code,
                message: message.to_owned(),
            })
        };
        assert_eq!(read("null"), None);
        assert_eq!(
            read(r#"[23, "low difficulty share", null]"#),
            e(23, "low difficulty share")
        );
        assert_eq!(
            read(r#"{"code": 21, "message": "job not found"}"#),
            e(21, "job not found")
        );
        assert_eq!(read(r#""bad""#), e(20, "bad"));
        assert_eq!(read("[]"), e(20, ""));
        assert_eq!(read("[22, 5]"), e(22, "5"));
        assert_eq!(read("true"), e(20, "true"));
    }

    #[test]
    fn escapes_strings() {
        let mut out = String::new();
        push_str(&mut out, "a\"\\\n\r\t\u{1}é");
        assert_eq!(out, r#""a\"\\\n\r\t\u0001é""#);
    }

    proptest! {
        #[test]
        fn escaped_strings_parse_back(s in "\\PC*|[\\x00-\\x7f]*") {
            let mut out = String::new();
            push_str(&mut out, &s);
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }

        #[test]
        fn hex_matches_the_hex_crate(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = String::new();
            push_hex(&mut out, &bytes);
            prop_assert_eq!(out, hex::encode(&bytes));
        }
    }
}
