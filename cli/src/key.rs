//! Loading signing keys without ever taking them from the command line.

use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, eyre};
use std::path::Path;

/// Loads a hex private key from `file` if given, else from the environment
/// variable `env`. The key is never logged.
pub(crate) fn load(file: Option<&Path>, env: &str) -> eyre::Result<PrivateKeySigner> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read key file {}", path.display()))?,
        None => std::env::var(env).map_err(|_| {
            eyre!("no signing key: set {env} to a hex private key, or pass --key-file PATH")
        })?,
    };
    raw.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|_| eyre!("the signing key is not a 32-byte hex private key"))
}
