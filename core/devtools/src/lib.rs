//! Locating and starting the real local components.
//!
//! The project's bootstrap (`scripts/bootstrap.sh`) installs Foundry from npm
//! into `node_modules/` and bitcoind into `.cache/`. The devnet and the
//! integration tests find them here, by environment override first
//! (`ANVIL`, `BITCOIND`), then in the repository, and start them on loopback.

use alloy::node_bindings::{Anvil, AnvilInstance};
use std::path::{Path, PathBuf};

/// A tool the bootstrap should have installed is missing, or failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The binary is not where the bootstrap puts it.
    #[error("{tool} not found at {path}: run `make setup` (scripts/bootstrap.sh) or set {env}")]
    Missing {
        /// The tool.
        tool: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The variable that overrides the location.
        env: &'static str,
    },
    /// anvil did not start.
    #[error("anvil failed to start: {0}")]
    Anvil(#[from] alloy::node_bindings::NodeError),
}

/// The repository root: the nearest ancestor of this crate with a `foundry.toml`.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("foundry.toml").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

fn locate(tool: &'static str, env: &'static str, default: PathBuf) -> Result<PathBuf, ToolError> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ToolError::Missing { tool, path, env })
    }
}

/// The real anvil binary from the npm platform package (not the npm wrapper
/// script), or `$ANVIL`.
pub fn anvil_path() -> Result<PathBuf, ToolError> {
    locate(
        "anvil",
        "ANVIL",
        repo_root().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
    )
}

/// The bitcoind wrapper written by `scripts/install-bitcoind.sh`, or `$BITCOIND`.
pub fn bitcoind_path() -> Result<PathBuf, ToolError> {
    locate(
        "bitcoind",
        "BITCOIND",
        repo_root().join(".cache/bin/bitcoind"),
    )
}

/// Starts anvil on a free loopback port (or `port`), with 1-second timestamps
/// controlled by the caller. It is killed when the handle drops.
pub fn spawn_anvil(port: Option<u16>) -> Result<AnvilInstance, ToolError> {
    let mut anvil = Anvil::at(anvil_path()?).arg("--host").arg("127.0.0.1");
    if let Some(port) = port {
        anvil = anvil.port(port);
    }
    Ok(anvil.try_spawn()?)
}
