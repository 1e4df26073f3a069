//! Stratum usernames: `0xADDRESS[.worker]`.

use proofpool_primitives::{AddressError, MinerAddress};

/// The longest worker name accepted, in bytes.
pub const MAX_WORKER_LEN: usize = 32;

/// Why a Stratum username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// The address part is invalid.
    #[error(
        "username must be an EVM address (0x + 40 hex digits), optionally followed by .worker: {0}"
    )]
    Address(#[from] AddressError),
    /// The worker name is empty, too long or uses characters outside `[A-Za-z0-9_-]`.
    #[error("worker name must be 1-{MAX_WORKER_LEN} characters of A-Z, a-z, 0-9, '_' or '-'")]
    BadWorker,
}

/// Who a share is credited to: an account and one of its rigs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MinerId {
    /// The account rewards are paid to.
    pub address: MinerAddress,
    /// The rig's name; `"default"` when the username has none.
    pub worker: String,
}

impl MinerId {
    /// Parses `0xADDRESS` or `0xADDRESS.worker`. Mixed-case addresses must carry
    /// a valid EIP-55 checksum.
    pub fn parse(username: &str) -> Result<Self, UsernameError> {
        let (address, worker) = match username.split_once('.') {
            Some((address, worker)) => (address, Some(worker)),
            None => (username, None),
        };
        let address: MinerAddress = address.trim().parse()?;
        let worker = match worker {
            None => "default".to_owned(),
            Some(w)
                if !w.is_empty()
                    && w.len() <= MAX_WORKER_LEN
                    && w.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                w.to_owned()
            }
            Some(_) => return Err(UsernameError::BadWorker),
        };
        Ok(Self { address, worker })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_and_worker() {
        let id = MinerId::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.rig-1").unwrap();
        assert_eq!(id.worker, "rig-1");
        assert_eq!(
            id.address.to_string(),
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        );
        let bare = MinerId::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
        assert_eq!(bare.worker, "default");
        assert_eq!(bare.address, id.address);
    }

    #[test]
    fn refuses_bad_usernames() {
        assert!(matches!(
            MinerId::parse("bc1qxyz.rig"),
            Err(UsernameError::Address(_))
        ));
        assert!(matches!(
            MinerId::parse("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(UsernameError::Address(AddressError::BadChecksum { .. }))
        ));
        let a = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        assert_eq!(
            MinerId::parse(&format!("{a}.")),
            Err(UsernameError::BadWorker)
        );
        assert_eq!(
            MinerId::parse(&format!("{a}.rig 1")),
            Err(UsernameError::BadWorker)
        );
        assert_eq!(
            MinerId::parse(&format!("{a}.{}", "w".repeat(33))),
            Err(UsernameError::BadWorker)
        );
    }
}
