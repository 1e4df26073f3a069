//! The pool's Stratum V2 authority key: the key pair whose public half
//! miners and translators pin, and whose secret half signs the certificate
//! the pool's Noise NX handshake sends (the SV2 spec, "Noise protocol").
//!
//! Encodings, as SRI's `key-utils` writes and reads them:
//! - secret: base58check of the 32 raw secret-key bytes;
//! - public: base58check of `[0x01, 0x00]` (key version 1, little-endian)
//!   followed by the 32-byte x-only public key.
//!
//! The key file (`authority_key_file`) is TOML with both:
//!
//! ```toml
//! # proofpool Stratum V2 authority key. Keep the secret; publish the public key.
//! secret = "..."
//! public = "..."
//! ```

use std::path::Path;
use stratum_core::bitcoin::base58;
use stratum_core::bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

/// The key version SRI's public-key encoding carries.
const PUBLIC_KEY_VERSION: [u8; 2] = [1, 0];

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not the TOML this module writes.
    #[error("{path}: not an authority key file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A key string does not decode.
    #[error("{what}: {reason}")]
    Encoding {
        /// Which key.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The public key is not the secret key's.
    #[error("the public key {public} is not the secret key's (that is {derived})")]
    Mismatch {
        /// The public key in the file.
        public: String,
        /// The secret key's public key.
        derived: String,
    },
    /// The system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// The authority key pair, raw: what `noise_sv2` takes.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorityKey {
    secret: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a log line.
        f.debug_struct("AuthorityKey")
            .field("public", &self.public_b58())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    secret: String,
    public: String,
}

impl AuthorityKey {
    /// A new key pair from the system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        loop {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| KeyError::Random(e.to_string()))?;
            // Out of range (zero, or at least the group order) with
            // probability about 2^-128: draw again.
            if let Ok(key) = Self::from_secret(raw) {
                return Ok(key);
            }
        }
    }

    /// The pair of a raw secret key.
    pub fn from_secret(secret: [u8; 32]) -> Result<Self, KeyError> {
        let sk = SecretKey::from_slice(&secret).map_err(|e| KeyError::Encoding {
            what: "secret key",
            reason: e.to_string(),
        })?;
        let (xonly, _parity) =
            Keypair::from_secret_key(&Secp256k1::signing_only(), &sk).x_only_public_key();
        Ok(Self {
            secret,
            public: xonly.serialize(),
        })
    }

    /// The raw secret key.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The raw x-only public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The public key as miners and translators pin it.
    pub fn public_b58(&self) -> String {
        encode_public(&self.public)
    }

    /// The key file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# proofpool Stratum V2 authority key. Keep the secret; publish the public key\n\
             # (miners and translators pin it: stratum2+tcp://HOST:PORT/PUBLIC).\n\
             secret = \"{}\"\npublic = \"{}\"\n",
            base58::encode_check(&self.secret),
            self.public_b58()
        )
    }

    /// Writes a new key file at `path`, readable by its owner only; refuses
    /// to overwrite one.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write as _;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_toml().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads the key file at `path`, checking that its public key is its
    /// secret key's.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            KeyError::Format { reason, .. } => KeyError::Format {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses a key file's text.
    pub fn from_toml(text: &str) -> Result<Self, KeyError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| KeyError::Format {
            path: String::new(),
            reason: e.message().to_owned(),
        })?;
        let raw = base58::decode_check(file.secret.trim()).map_err(|e| KeyError::Encoding {
            what: "secret key",
            reason: e.to_string(),
        })?;
        let secret: [u8; 32] = raw.try_into().map_err(|raw: Vec<u8>| KeyError::Encoding {
            what: "secret key",
            reason: format!("{} bytes, not 32", raw.len()),
        })?;
        let key = Self::from_secret(secret)?;
        let public = decode_public(&file.public)?;
        if public != key.public {
            return Err(KeyError::Mismatch {
                public: file.public,
                derived: key.public_b58(),
            });
        }
        Ok(key)
    }
}

/// SRI's public-key string for a raw x-only key.
pub fn encode_public(xonly: &[u8; 32]) -> String {
    base58::encode_check(&[&PUBLIC_KEY_VERSION[..], &xonly[..]].concat())
}

/// The raw x-only key of SRI's public-key string.
pub fn decode_public(text: &str) -> Result<[u8; 32], KeyError> {
    let bad = |reason: String| KeyError::Encoding {
        what: "public key",
        reason,
    };
    let raw = base58::decode_check(text.trim()).map_err(|e| bad(e.to_string()))?;
    if raw.len() != 34 {
        return Err(bad(format!(
            "{} bytes, not 34 (version and x-only key)",
            raw.len()
        )));
    }
    if raw[..2] != PUBLIC_KEY_VERSION {
        return Err(bad(format!(
            "key version {:02x}{:02x}, not 0100",
            raw[0], raw[1]
        )));
    }
    let mut xonly = [0u8; 32];
    xonly.copy_from_slice(&raw[2..]);
    Ok(xonly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sri_test_vector_decodes_to_its_key() {
        // SRI's example authority public key (its config examples and
        // key-utils tests); the x-only key starts 24ee3c38.
        let xonly = decode_public("9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72").unwrap();
        assert_eq!(hex::encode(&xonly[..4]), "24ee3c38");
        assert_eq!(
            encode_public(&xonly),
            "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
        );
    }

    #[test]
    fn a_written_key_reads_back_and_a_tampered_one_does_not() {
        let key = AuthorityKey::generate().unwrap();
        let text = key.to_toml();
        assert_eq!(AuthorityKey::from_toml(&text).unwrap(), key);
        assert!(!format!("{key:?}").contains(&base58::encode_check(key.secret())));
        // Another pair's public key under this secret.
        let other = AuthorityKey::generate().unwrap();
        let swapped = text.replace(&key.public_b58(), &other.public_b58());
        assert!(matches!(
            AuthorityKey::from_toml(&swapped),
            Err(KeyError::Mismatch { .. })
        ));
        // One character changed breaks the checksum.
        let b58 = key.public_b58();
        let last = b58.chars().last().unwrap();
        let flipped = format!(
            "{}{}",
            &b58[..b58.len() - 1],
            if last == '1' { '2' } else { '1' }
        );
        assert!(matches!(
            AuthorityKey::from_toml(&text.replace(&b58, &flipped)),
            Err(KeyError::Encoding { .. })
        ));
        assert!(matches!(
            AuthorityKey::from_toml("secret = 1"),
            Err(KeyError::Format { .. })
        ));
    }

    #[test]
    fn write_new_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("proofpool-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("authority.toml");
        let _ = std::fs::remove_file(&path);
        let key = AuthorityKey::generate().unwrap();
        key.write_new(&path).unwrap();
        assert_eq!(AuthorityKey::read(&path).unwrap(), key);
        assert!(matches!(
            AuthorityKey::generate().unwrap().write_new(&path),
            Err(KeyError::Io { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
