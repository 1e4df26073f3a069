//! Parsing request input once, at the boundary, into typed values, with a
//! 400 that names the parameter when it is wrong.
//!
//! Query strings are checked strictly: an unknown or repeated parameter is
//! an error rather than silently ignored, so `?limt=10` does not quietly
//! return the default page.

use crate::error::ApiError;
use axum::extract::Path;
use axum::extract::Query;
use axum::extract::rejection::PathRejection;
use axum::http::Uri;
use proofpool_primitives::{Address, Excerpt, MinerAddress};
use std::str::FromStr;

/// Default page size of every list.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of every list.
pub(crate) const MAX_LIMIT: u32 = 500;
/// Largest `offset` accepted (far beyond any real list).
const MAX_OFFSET: u64 = 1_000_000_000_000;

/// A request's query parameters, checked against the names an endpoint takes.
#[derive(Debug)]
pub(crate) struct QueryArgs {
    pairs: Vec<(String, String)>,
}

impl QueryArgs {
    /// Decodes `uri`'s query and refuses names outside `allowed` and repeats.
    pub(crate) fn parse(uri: &Uri, allowed: &[&'static str]) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| {
            ApiError::bad(
                "query",
                format!(
                    "malformed query string: {}",
                    Excerpt::up_to(&e.to_string(), 200)
                ),
            )
        })?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            let Some(known) = allowed.iter().find(|a| **a == name.as_str()) else {
                let takes = if allowed.is_empty() {
                    "this endpoint takes no query parameters".to_owned()
                } else {
                    format!("this endpoint takes {}", allowed.join(", "))
                };
                return Err(ApiError::bad(
                    "query",
                    format!("unknown query parameter {:?}; {takes}", Excerpt::new(name)),
                ));
            };
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad(
                    known,
                    format!("{known} is given more than once"),
                ));
            }
        }
        Ok(Self { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer in `[min, max]`, or `default` when absent.
    pub(crate) fn u64_in(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value = parse_decimal(raw).ok_or_else(|| {
            ApiError::bad(
                name,
                format!(
                    "{name} must be a whole number between {min} and {max}, got {:?}",
                    Excerpt::new(raw)
                ),
            )
        })?;
        if value < min || value > max {
            return Err(ApiError::bad(
                name,
                format!("{name} must be between {min} and {max}, got {value}"),
            ));
        }
        Ok(value)
    }

    /// A miner address, if given.
    pub(crate) fn address(&self, name: &'static str) -> Result<Option<Address>, ApiError> {
        self.get(name)
            .map(|raw| parse_address(name, raw))
            .transpose()
    }

    /// `offset` and `limit`.
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let offset = self.u64_in("offset", 0, 0, MAX_OFFSET)?;
        let limit = self.u64_in("limit", u64::from(DEFAULT_LIMIT), 1, u64::from(MAX_LIMIT))?;
        Ok(Page {
            offset,
            limit: u32::try_from(limit).unwrap_or(MAX_LIMIT),
        })
    }
}

/// A page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// Items skipped.
    pub(crate) offset: u64,
    /// Most items returned.
    pub(crate) limit: u32,
}

/// Path segments as sent, or a JSON 400 when they do not decode (for
/// example percent-encoded bytes that are not UTF-8).
pub(crate) fn segments<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(v)| v).map_err(|e| {
        ApiError::bad(
            "path",
            format!("malformed path: {}", Excerpt::up_to(&e.to_string(), 200)),
        )
    })
}

/// Plain decimal digits only: no sign, no `0x`, no spaces.
fn parse_decimal(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// An EVM account, with the EIP-55 checksum enforced on mixed case.
pub(crate) fn parse_address(name: &'static str, raw: &str) -> Result<Address, ApiError> {
    MinerAddress::from_str(raw)
        .map(MinerAddress::to_address)
        .map_err(|e| {
            ApiError::bad(
                name,
                format!("{name} {:?} is not a valid address: {e}", Excerpt::new(raw)),
            )
        })
}

/// An epoch number: a whole number from 1.
pub(crate) fn parse_epoch(raw: &str) -> Result<u64, ApiError> {
    match parse_decimal(raw) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::bad(
            "epoch",
            format!(
                "epoch must be a whole number from 1, got {:?}",
                Excerpt::new(raw)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(q: &str, allowed: &[&'static str]) -> Result<QueryArgs, ApiError> {
        QueryArgs::parse(&format!("/x?{q}").parse().unwrap(), allowed)
    }

    fn parameter(e: ApiError) -> Option<String> {
        e.body().parameter
    }

    #[test]
    fn pages_default_and_bounds() {
        let p = args("", &["offset", "limit"]).unwrap().page().unwrap();
        assert_eq!(
            p,
            Page {
                offset: 0,
                limit: DEFAULT_LIMIT
            }
        );
        let p = args("offset=5&limit=500", &["offset", "limit"])
            .unwrap()
            .page()
            .unwrap();
        assert_eq!((p.offset, p.limit), (5, 500));
        for (q, param) in [
            ("limit=501", "limit"),
            ("limit=0", "limit"),
            ("limit=-1", "limit"),
            ("limit=1e3", "limit"),
            ("offset=x", "offset"),
            ("offset=%2B1", "offset"),
        ] {
            let e = args(q, &["offset", "limit"]).unwrap().page().unwrap_err();
            assert_eq!(parameter(e).as_deref(), Some(param), "{q}");
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let e = args("limt=3", &["offset", "limit"]).unwrap_err();
        assert!(e.to_string().contains("limt"), "{e}");
        assert!(e.to_string().contains("offset, limit"), "{e}");
        let e = args("limit=3&limit=4", &["offset", "limit"]).unwrap_err();
        assert_eq!(parameter(e).as_deref(), Some("limit"));
        let e = args("a=1", &[]).unwrap_err();
        assert!(e.to_string().contains("no query parameters"), "{e}");
    }

    #[test]
    fn epochs_and_addresses() {
        assert_eq!(parse_epoch("7").unwrap(), 7);
        for bad in ["0", "", "-1", "0x1", "1.0", "99999999999999999999999"] {
            assert!(parse_epoch(bad).is_err(), "{bad}");
        }
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(parse_address("address", good).is_ok());
        assert!(parse_address("address", &good.to_lowercase()).is_ok());
        let e = parse_address("address", &good.replace("aAeb", "AAeb")).unwrap_err();
        assert!(e.to_string().contains("EIP-55"), "{e}");
        assert_eq!(parameter(e).as_deref(), Some("address"));
    }
}
