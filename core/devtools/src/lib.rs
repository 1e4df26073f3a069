//! Locating and starting the real local components.
//!
//! The project's bootstrap (`scripts/bootstrap.sh`) installs Foundry from npm
//! into `node_modules/`, and bitcoind and the SRI translator into `.cache/`.
//! The devnet and the integration tests find them here, by environment
//! override first (`ANVIL`, `BITCOIND`, `TRANSLATOR_SV2`), then in the
//! repository, and start them on loopback.

use alloy::node_bindings::{Anvil, AnvilInstance};
use std::path::{Path, PathBuf};

mod postgres;
pub use postgres::{Postgres, PostgresError};
mod tempdir;
pub use tempdir::TempDir;
mod segwit;
pub use segwit::{SPEND_FEE_SATS, SegwitError, SegwitWallet};
mod translator;
pub use translator::{Translator, TranslatorConfig, TranslatorError, translator_path};

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

/// The repository root: the nearest ancestor holding this repository's
/// `foundry.toml` and `core/devtools/Cargo.toml` of the package directory
/// cargo runs us in (`CARGO_MANIFEST_DIR` at run time), else of the working
/// directory, else of this crate as compiled.
///
/// The compile-time path comes last because cargo reuses build artifacts
/// across checkouts that share a target directory (a CI clone, say), so it
/// can name another checkout, or one that is gone. Both files are required
/// so that another Foundry project around the working directory is not
/// taken for this one.
pub fn repo_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let cwd = std::env::current_dir().ok();
    let is_root =
        |p: &Path| p.join("foundry.toml").is_file() && p.join("core/devtools/Cargo.toml").is_file();
    runtime
        .iter()
        .chain(cwd.iter())
        .map(PathBuf::as_path)
        .chain(std::iter::once(compiled))
        .find_map(|start| start.ancestors().find(|p| is_root(p)))
        .unwrap_or(compiled)
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
    // Our own pick, below the ephemeral range (see [`free_port`]).
    if let Some(port) = port.or_else(|| free_port().ok()) {
        anvil = anvil.port(port);
    }
    Ok(anvil.try_spawn()?)
}

/// Starts anvil like [`spawn_anvil`], loading its chain from `state_file` when
/// that exists and writing it back every second and on a graceful exit (see
/// [`stop_anvil`]), so a devnet can be restarted where it left off.
pub fn spawn_anvil_with_state(
    port: Option<u16>,
    state_file: &Path,
) -> Result<AnvilInstance, ToolError> {
    let mut anvil = Anvil::at(anvil_path()?)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--state")
        .arg(state_file.display().to_string())
        .arg("--state-interval")
        .arg("1");
    if let Some(port) = port.or_else(|| free_port().ok()) {
        anvil = anvil.port(port);
    }
    Ok(anvil.try_spawn()?)
}

/// Stops anvil with SIGINT, so it writes its `--state` file, and waits up to
/// 10 s for it to exit (dropping the handle then only reaps it).
pub fn stop_anvil(anvil: &mut AnvilInstance) {
    let pid = anvil.child().id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .is_ok_and(|s| s.success());
    if sent {
        for _ in 0..100 {
            if matches!(anvil.child_mut().try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    eprintln!("anvil did not stop on SIGINT within 10 s; killing it");
}

/// A throwaway regtest bitcoind on loopback: temp datadir, free ports, cookie
/// auth. Stopped with `bitcoin-cli stop` (then killed if it lingers) and its
/// datadir removed when dropped, unless it was started with
/// [`Bitcoind::start_in`].
#[derive(Debug)]
pub struct Bitcoind {
    child: std::process::Child,
    datadir: PathBuf,
    /// Keep the datadir when stopping ([`Bitcoind::start_in`]).
    keep: bool,
    rpc_port: u16,
    cli: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound, then released), below the kernel's
/// ephemeral range when there is room.
///
/// A port the kernel hands out for `:0` is an ephemeral one, which any
/// outgoing connection (an RPC client, anvil's poller) may take before the
/// caller binds it again: CI saw a devnet fail with "address already in
/// use" that way. Below the ephemeral range only another caller of this
/// function could take it, and it picks at random.
pub fn free_port() -> std::io::Result<u16> {
    let low = ephemeral_low().unwrap_or(32_768);
    // 10000 up to the ephemeral range, if that leaves a useful span.
    if low > 12_000 {
        let span = u64::from(low - 10_000);
        for _ in 0..64 {
            let port = 10_000 + (next_random() % span) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The first port of the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`).
fn ephemeral_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A pseudo-random number: the clock, the process id and a counter mixed
/// (splitmix64). Enough to keep concurrent callers apart.
fn next_random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why bitcoind could not be started or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BitcoindError {
    /// The binary is missing.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// Starting or running a process failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// bitcoin-cli answered with an error.
    #[error("bitcoin-cli {args} failed: {stderr}")]
    Cli {
        /// The arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

impl Bitcoind {
    /// Starts `bitcoind -regtest` with `extra` arguments and waits (up to 60 s)
    /// until its RPC answers.
    pub fn start(extra: &[&str]) -> Result<Self, BitcoindError> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let datadir = std::env::temp_dir().join(format!(
            "proofpool-bitcoind-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        Self::start_at(datadir, false, extra)
    }

    /// Starts `bitcoind -regtest` on the data directory `datadir` (created
    /// if missing), which is kept when the node stops: its chain and wallets
    /// are there for the next start.
    pub fn start_in(datadir: &Path, extra: &[&str]) -> Result<Self, BitcoindError> {
        Self::start_at(datadir.to_path_buf(), true, extra)
    }

    fn start_at(datadir: PathBuf, keep: bool, extra: &[&str]) -> Result<Self, BitcoindError> {
        /// Starts on fresh ports; a port taken between [`free_port`] and
        /// bitcoind's bind (an outgoing connection can take it) makes the
        /// node exit at once, and the next attempt uses other ports.
        const ATTEMPTS: u32 = 3;
        let bin = bitcoind_path()?;
        let cli = bin.with_file_name("bitcoin-cli");
        let mut attempt = 1;
        loop {
            // Again after a failed attempt, whose drop removed a temp one.
            std::fs::create_dir_all(&datadir)?;
            let rpc_port = free_port()?;
            let p2p_port = free_port()?;
            let child = std::process::Command::new(&bin)
                .arg("-regtest")
                .arg(format!("-datadir={}", datadir.display()))
                .arg(format!("-rpcport={rpc_port}"))
                .arg(format!("-port={p2p_port}"))
                .args([
                    "-listen=0",
                    "-server=1",
                    "-daemon=0",
                    "-rpcbind=127.0.0.1",
                    "-rpcallowip=127.0.0.1",
                    "-printtoconsole=0",
                    "-fallbackfee=0.0002",
                    "-txindex=0",
                    "-rpcworkqueue=64",
                ])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?;
            let mut node = Self {
                child,
                datadir: datadir.clone(),
                keep,
                rpc_port,
                cli: cli.clone(),
            };
            match node.wait_ready(std::time::Duration::from_secs(60)) {
                Ok(()) => return Ok(node),
                Err(e) if attempt < ATTEMPTS && node.exited() => {
                    eprintln!("bitcoind exited during startup ({e}); trying other ports");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until RPC answers, at most `limit`; fails at once if the
    /// process exits.
    fn wait_ready(&mut self, limit: std::time::Duration) -> Result<(), BitcoindError> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(BitcoindError::Io(std::io::Error::other(format!(
                    "bitcoind exited during startup ({status}); see {}",
                    self.datadir.join("regtest/debug.log").display()
                ))));
            }
            match self.cli(&["getblockchaininfo"]) {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }

    /// Whether the process has exited.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// [`Bitcoind::start`] with a wallet, `blocks` blocks mined to it (101
    /// for one mature coinbase) and a fresh bech32m address of it for a
    /// pool to pay: what a pool test needs of a node.
    pub fn with_pool_payout(blocks: u32) -> Result<(Self, String), BitcoindError> {
        let node = Self::start(&[])?;
        node.cli(&["createwallet", "w"])?;
        let funding = node.cli(&["getnewaddress", "", "bech32"])?;
        node.cli(&["generatetoaddress", &blocks.to_string(), &funding])?;
        let payout = node.cli(&["getnewaddress", "pool", "bech32m"])?;
        Ok((node, payout))
    }

    /// The RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.rpc_port)
    }

    /// The cookie file bitcoind wrote for RPC auth.
    pub fn cookie_path(&self) -> PathBuf {
        self.datadir.join("regtest/.cookie")
    }

    /// The data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// Runs `bitcoin-cli` against this node and returns its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String, BitcoindError> {
        let output = std::process::Command::new(&self.cli)
            .arg("-regtest")
            .arg(format!("-datadir={}", self.datadir.display()))
            .arg(format!("-rpcport={}", self.rpc_port))
            .args(args)
            .output()?;
        if !output.status.success() {
            return Err(BitcoindError::Cli {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        if self.cli(&["stop"]).is_ok() {
            for _ in 0..100 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            // Still running after 10 s: nothing more graceful is left.
            if let Err(e) = self.child.kill() {
                eprintln!("cannot kill bitcoind: {e}");
            }
            if let Err(e) = self.child.wait() {
                eprintln!("cannot reap bitcoind: {e}");
            }
        }
        if !self.keep
            && let Err(e) = std::fs::remove_dir_all(&self.datadir)
        {
            eprintln!("cannot remove {}: {e}", self.datadir.display());
        }
    }
}
