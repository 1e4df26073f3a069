//! The client side of Stratum over TLS.

use crate::MinerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Runs the TLS handshake on `stream`, checking the pool's certificate
/// against the PEM certificates in `ca` and the host part of `address`
/// (`HOST:PORT`; an IP address is checked as one).
pub(crate) async fn connect(
    address: &str,
    ca: &Path,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>, MinerError> {
    let bytes = std::fs::read(ca)
        .map_err(|e| MinerError::Tls(format!("cannot read {}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert =
            cert.map_err(|e| MinerError::Tls(format!("{} is not PEM: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| MinerError::Tls(format!("{}: unusable certificate: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(MinerError::Tls(format!(
            "{} holds no certificate",
            ca.display()
        )));
    }
    let host = host_of(address);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| MinerError::Tls(format!("{host} is not a valid server name: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MinerError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| MinerError::Tls(format!("handshake with {address} failed: {e}")))
}

/// `HOST` of `HOST:PORT` (`[v6]:port` too).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_is_the_part_before_the_port() {
        assert_eq!(host_of("127.0.0.1:3334"), "127.0.0.1");
        assert_eq!(host_of("pool.example:3334"), "pool.example");
        assert_eq!(host_of("[::1]:3334"), "::1");
    }
}
