//! Miner addresses: EVM accounts, parsed once at the boundary.

use alloy_primitives::Address;
use std::str::FromStr;

/// Why a string is not a valid miner address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string does not start with `0x`.
    #[error("address must start with 0x")]
    MissingPrefix,
    /// The string is not 40 hex digits after `0x`.
    #[error("address must be 40 hex digits after 0x, got {0} characters")]
    BadLength(usize),
    /// A character is not a hex digit.
    #[error("address contains a non-hex character")]
    NotHex,
    /// Mixed case that does not match the EIP-55 checksum.
    #[error("address has mixed case but a wrong EIP-55 checksum (expected {expected})")]
    BadChecksum {
        /// The correctly checksummed form.
        expected: String,
    },
    /// The zero address cannot receive rewards.
    #[error("the zero address cannot be a miner")]
    Zero,
}

/// An EVM account that receives a miner's rewards.
///
/// Parsing accepts all-lowercase or all-uppercase hex, and mixed case only when
/// it is a correct EIP-55 checksum, so a typo in a checksummed address is caught.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct MinerAddress(pub Address);

impl MinerAddress {
    /// The underlying address.
    pub const fn to_address(self) -> Address {
        self.0
    }
}

impl FromStr for MinerAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .ok_or(AddressError::MissingPrefix)?;
        if hex.len() != 40 {
            return Err(AddressError::BadLength(hex.len()));
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError::NotHex);
        }
        let address = Address::from_str(hex).map_err(|_| AddressError::NotHex)?;
        let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let expected = address.to_checksum(None);
            if expected[2..] != *hex {
                return Err(AddressError::BadChecksum { expected });
            }
        }
        if address.is_zero() {
            return Err(AddressError::Zero);
        }
        Ok(Self(address))
    }
}

impl std::fmt::Display for MinerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_checksum(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    #[test]
    fn accepts_checksummed_lower_and_upper() {
        let a: MinerAddress = CHECKSUMMED.parse().unwrap();
        assert_eq!(a.to_string(), CHECKSUMMED);
        let lower: MinerAddress = CHECKSUMMED.to_lowercase().parse().unwrap();
        assert_eq!(lower, a);
        let upper = format!("0x{}", &CHECKSUMMED[2..].to_uppercase());
        assert_eq!(upper.parse::<MinerAddress>().unwrap(), a);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let typo = CHECKSUMMED.replace("aAeb", "AAeb");
        assert!(matches!(
            typo.parse::<MinerAddress>(),
            Err(AddressError::BadChecksum { .. })
        ));
        assert_eq!(
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse::<MinerAddress>(),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(
            "0x1234".parse::<MinerAddress>(),
            Err(AddressError::BadLength(4))
        );
        assert_eq!(
            format!("0x{}", "g".repeat(40)).parse::<MinerAddress>(),
            Err(AddressError::NotHex)
        );
        assert_eq!(
            format!("0x{}", "0".repeat(40)).parse::<MinerAddress>(),
            Err(AddressError::Zero)
        );
    }
}
