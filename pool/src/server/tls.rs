//! Stratum over TLS (`stratum+ssl://`): the same sessions behind rustls.
//!
//! The certificate chain and private key are PEM files named in the config
//! and read once when the pool starts; a file that is missing, unreadable
//! or holds no usable certificate or key stops the start with the file's
//! name. Each TLS connection finishes its handshake inside its own task,
//! within the handshake timeout, so a client that stalls there holds up
//! nobody else.

use super::PoolError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Where the pool's TLS certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads both files and builds the server side of TLS 1.2 and 1.3.
    pub fn acceptor(&self) -> Result<TlsAcceptor, PoolError> {
        let certs = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PoolError::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                PoolError::Config(format!(
                    "TLS: certificate {} and key {} do not make a usable pair: {e}",
                    self.cert.display(),
                    self.key.display()
                ))
            })?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PoolError> {
    let bytes = read(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            PoolError::Config(format!("TLS certificate {}: not PEM: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(PoolError::Config(format!(
            "TLS certificate {}: no `BEGIN CERTIFICATE` block",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PoolError> {
    let bytes = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        PoolError::Config(format!(
            "TLS key {}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            path.display()
        ))
    })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, PoolError> {
    std::fs::read(path)
        .map_err(|e| PoolError::Config(format!("TLS {what} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let dir = std::env::temp_dir().join(format!("proofpool-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good_cert = write(&dir, "cert.pem", &cert.cert.pem());
        let good_key = write(&dir, "key.pem", &cert.signing_key.serialize_pem());
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other_key = write(&dir, "other.pem", &other.signing_key.serialize_pem());
        let garbage = write(&dir, "garbage.pem", "hello\n");

        let ok = TlsFiles {
            cert: good_cert.clone(),
            key: good_key.clone(),
        };
        assert!(ok.acceptor().is_ok());

        let cases = [
            (dir.join("missing.pem"), good_key.clone(), "missing.pem"),
            (garbage.clone(), good_key.clone(), "no `BEGIN CERTIFICATE`"),
            (good_cert.clone(), garbage, "no PEM private key"),
            (good_cert, other_key, "do not make a usable pair"),
        ];
        for (cert, key, expected) in cases {
            let err = TlsFiles { cert, key }.acceptor().err().unwrap().to_string();
            assert!(err.contains(expected), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
