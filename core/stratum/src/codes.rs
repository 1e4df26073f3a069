//! Stratum V1 error codes.

use std::fmt;

/// The error codes Stratum V1 servers send in `[code, message, null]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Anything else: malformed requests, unknown methods, server trouble.
    Other = 20,
    /// The share's job is unknown or stale.
    JobNotFound = 21,
    /// The same share was already submitted.
    Duplicate = 22,
    /// The share's hash is above its target.
    LowDifficulty = 23,
    /// The worker has not authorized, or the authorization was refused.
    Unauthorized = 24,
    /// The connection has not sent `mining.subscribe`.
    NotSubscribed = 25,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [Self; 6] = [
        Self::Other,
        Self::JobNotFound,
        Self::Duplicate,
        Self::LowDifficulty,
        Self::Unauthorized,
        Self::NotSubscribed,
    ];

    /// The numeric code sent on the wire.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The standard message for this code.
    pub const fn message(self) -> &'static str {
        match self {
            Self::Other => "other/unknown",
            Self::JobNotFound => "job not found",
            Self::Duplicate => "duplicate share",
            Self::LowDifficulty => "low difficulty share",
            Self::Unauthorized => "unauthorized worker",
            Self::NotSubscribed => "not subscribed",
        }
    }

    /// The code for a number received on the wire, if it is a standard one.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| i64::from(c.code()) == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code().into()), Some(code));
            assert!(!code.message().is_empty());
        }
        assert_eq!(ErrorCode::LowDifficulty.code(), 23);
        assert_eq!(ErrorCode::NotSubscribed.code(), 25);
        assert_eq!(ErrorCode::from_code(19), None);
        assert_eq!(ErrorCode::from_code(-1), None);
        assert_eq!(ErrorCode::Duplicate.to_string(), "duplicate share");
    }
}
