//! The pool under test, in its own process so that its memory and CPU can be
//! read from `/proc/<pid>` without the load generator's.
//!
//! Two programs can play it, with the same flags:
//! - the real `proofpool pool` binary (`--pool-bin target/release/proofpool`),
//!   what the figures are taken with;
//! - this binary's hidden `serve-pool` subcommand, which builds the same
//!   [`PoolConfig`] from the same flags and calls the same
//!   [`Pool::new`]/[`Pool::run`]: the default, so the benchmark (and its
//!   smoke test) never runs a stale or missing `proofpool` binary.
//!
//! Either way the limits that would fight a load test are off: no per-address
//! cap, bans, share-rate limit, vardiff or timeouts. The difficulty is the
//! lowest there is (share target `2^256 - 1`): every header is a share, and
//! the load generator submits only those that are not blocks.

use eyre::{WrapErr, bail, eyre};
use proofpool_pool::sv2::keys::AuthorityKey;
use proofpool_pool::{NodeAuth, NodeEndpoint, Pool, PoolConfig};
use proofpool_primitives::Difficulty;
use proofpool_store::{Store, StoreOptions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The difficulty every connection gets: its target saturates at `2^256 - 1`.
pub(crate) const DIFFICULTY: &str = "0.0000000001";

/// What to start.
#[derive(Debug, Clone)]
pub(crate) struct PoolSpec {
    /// The real `proofpool` binary, or `None` for this binary's `serve-pool`.
    pub(crate) binary: Option<PathBuf>,
    /// bitcoind's RPC URL.
    pub(crate) node_url: String,
    /// bitcoind's cookie file.
    pub(crate) cookie: PathBuf,
    /// The coinbase payout address (regtest).
    pub(crate) payout: String,
    /// The store.
    pub(crate) database_url: String,
    /// Most connections the pool accepts.
    pub(crate) max_connections: usize,
    /// Where the pool's log goes.
    pub(crate) log: PathBuf,
    /// The instance id (extranonce1's first byte); scale-out instances of
    /// the idle phase differ in it.
    pub(crate) instance_id: u8,
}

/// A running pool process; stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub(crate) struct PoolProcess {
    child: Child,
    /// Where miners connect.
    pub(crate) stratum: SocketAddr,
    /// Where `GET /metrics` is served.
    pub(crate) metrics: SocketAddr,
    /// Where Stratum V2 miners connect, if the pool serves V2.
    pub(crate) sv2: SocketAddr,
    /// The x-only public key the pool's V2 handshakes prove.
    pub(crate) authority: [u8; 32],
    log: PathBuf,
}

impl PoolProcess {
    /// Starts the pool and waits (up to 60 s) until it serves `/metrics`
    /// with a job from bitcoind; with `sv2`, serving Stratum V2 as well
    /// (off otherwise, so that a pool binary from before V2 still runs the
    /// V1 phases).
    pub(crate) async fn start(spec: &PoolSpec, sv2_on: bool) -> eyre::Result<Self> {
        let stratum = SocketAddr::from(([127, 0, 0, 1], proofpool_devtools::free_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], proofpool_devtools::free_port()?));
        let sv2 = SocketAddr::from(([127, 0, 0, 1], proofpool_devtools::free_port()?));
        // A key of its own for each pool process, beside its log.
        let key = AuthorityKey::generate().map_err(|e| eyre!("authority key: {e}"))?;
        let key_file = spec
            .log
            .with_file_name(format!("authority-{}.toml", sv2.port()));
        key.write_new(&key_file)
            .map_err(|e| eyre!("cannot write {}: {e}", key_file.display()))?;
        let (program, subcommand) = match &spec.binary {
            Some(bin) => (bin.clone(), "pool"),
            None => (
                std::env::current_exe().wrap_err("cannot find this binary to run serve-pool")?,
                "serve-pool",
            ),
        };
        let log = std::fs::File::create(&spec.log)
            .wrap_err_with(|| format!("cannot create {}", spec.log.display()))?;
        let mut command = Command::new(&program);
        command
            .arg(subcommand)
            .args(["--listen", &stratum.to_string()])
            .args(["--node-url", &spec.node_url])
            .arg("--cookie")
            .arg(&spec.cookie)
            .args(["--network", "regtest"])
            .args(["--payout-address", &spec.payout])
            .args(["--difficulty", DIFFICULTY, "--min-difficulty", DIFFICULTY])
            .args(["--database-url", &spec.database_url])
            .args(["--instance-id", &spec.instance_id.to_string()])
            .args(["--metrics-listen", &metrics.to_string()])
            .args(["--max-connections", &spec.max_connections.to_string()])
            .args(["--max-connections-per-ip", "0"])
            .args(["--handshake-timeout-secs", "0", "--idle-timeout-secs", "0"])
            .args(["--max-shares-per-second", "0", "--no-ban", "--no-vardiff"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if sv2_on {
            command
                .args(["--sv2-listen", &sv2.to_string()])
                .arg("--authority-key-file")
                .arg(&key_file);
        }
        if std::env::var_os("PROOFPOOL_LOG").is_none() {
            // One info line per authorize is noise at 10k connections.
            command.env("PROOFPOOL_LOG", "warn");
        }
        let child = command
            .spawn()
            .wrap_err_with(|| format!("cannot start {}", program.display()))?;
        let mut pool = Self {
            child,
            stratum,
            metrics,
            sv2,
            authority: *key.public(),
            log: spec.log.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = pool.child.try_wait()? {
                bail!("the pool exited ({status}) at start:\n{}", pool.log_tail());
            }
            if let Ok(m) = pool.scrape().await
                && m.get("pool_node_connected") == Some(&1.0)
            {
                return Ok(pool);
            }
            if Instant::now() > deadline {
                bail!(
                    "the pool did not get a job within 60 s:\n{}",
                    pool.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the pool's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fails if the pool has exited.
    pub(crate) fn check_alive(&mut self) -> eyre::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the pool exited ({status}):\n{}", self.log_tail());
        }
        Ok(())
    }

    /// `GET /metrics`, as series name (labels included) to value.
    pub(crate) async fn scrape(&self) -> eyre::Result<HashMap<String, f64>> {
        let text = tokio::time::timeout(Duration::from_secs(10), http_get(self.metrics))
            .await
            .map_err(|_| eyre!("/metrics did not answer within 10 s"))??;
        Ok(parse_metrics(&text))
    }

    /// Asks the pool to stop (SIGTERM: it flushes its share log) and waits
    /// up to 30 s before killing it.
    pub(crate) async fn stop(mut self) {
        self.terminate().await;
    }

    async fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id().to_string();
        match Command::new("kill").args(["-TERM", &pid]).status() {
            Ok(s) if s.success() => {
                for _ in 0..300 {
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                eprintln!("the pool did not stop within 30 s of SIGTERM; killing it");
            }
            other => eprintln!("cannot send SIGTERM to the pool ({other:?}); killing it"),
        }
        self.kill();
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Err(e) = self.child.kill() {
                eprintln!("cannot kill the pool: {e}");
            }
            if let Err(e) = self.child.wait() {
                eprintln!("cannot reap the pool: {e}");
            }
        }
    }
}

impl Drop for PoolProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn http_get(addr: SocketAddr) -> eyre::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: pool\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("malformed HTTP response from /metrics");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("/metrics answered {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

/// Prometheus text format: `name{labels} value` lines, comments skipped.
pub(crate) fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The flags of `proofpool pool` that [`PoolProcess::start`] passes, with
/// the same meaning (0 turns a limit off).
#[derive(Debug, clap::Parser)]
#[command(name = "proofpool-load serve-pool")]
pub(crate) struct ServeArgs {
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    node_url: String,
    #[arg(long)]
    cookie: PathBuf,
    #[arg(long)]
    network: bitcoin::Network,
    #[arg(long)]
    payout_address: String,
    #[arg(long)]
    difficulty: Difficulty,
    #[arg(long)]
    min_difficulty: Difficulty,
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    #[arg(long)]
    max_connections: usize,
    #[arg(long)]
    max_connections_per_ip: u32,
    #[arg(long)]
    handshake_timeout_secs: u64,
    #[arg(long)]
    idle_timeout_secs: u64,
    #[arg(long)]
    max_shares_per_second: u32,
    #[arg(long)]
    no_ban: bool,
    #[arg(long)]
    no_vardiff: bool,
    #[arg(long, default_value_t = 0)]
    instance_id: u8,
    #[arg(long, requires = "authority_key_file")]
    sv2_listen: Option<SocketAddr>,
    #[arg(long, requires = "sv2_listen")]
    authority_key_file: Option<PathBuf>,
}

/// `proofpool-load serve-pool`: the pool library behind the same flags as
/// `proofpool pool`, until SIGTERM or Ctrl-C.
pub(crate) fn serve(args: ServeArgs) -> eyre::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROOFPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // The same runtime `proofpool` uses: `#[tokio::main]`, a worker per core.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve_async(args))
}

fn nonzero<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}

fn config(args: &ServeArgs) -> eyre::Result<PoolConfig> {
    use std::str::FromStr;
    let payout = bitcoin::Address::from_str(&args.payout_address)?.require_network(args.network)?;
    let node = NodeEndpoint {
        url: args.node_url.parse().wrap_err("--node-url")?,
        auth: NodeAuth::Cookie(args.cookie.clone()),
    };
    let mut config = PoolConfig::new(vec![node], args.network, payout.script_pubkey());
    config.start_difficulty = args.difficulty;
    config.min_difficulty = args.min_difficulty;
    config.metrics_listen = args.metrics_listen;
    config.instance_id = args.instance_id;
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = nonzero(args.max_connections_per_ip);
    config.handshake_timeout = nonzero(args.handshake_timeout_secs).map(Duration::from_secs);
    config.idle_timeout = nonzero(args.idle_timeout_secs).map(Duration::from_secs);
    config.max_shares_per_second = nonzero(args.max_shares_per_second);
    if args.no_ban {
        config.ban_threshold = None;
    }
    if args.no_vardiff {
        config.vardiff = None;
    }
    Ok(config)
}

async fn serve_async(args: ServeArgs) -> eyre::Result<()> {
    let config = config(&args)?;
    let store = Store::open(&args.database_url, &StoreOptions::default())
        .await
        .wrap_err_with(|| format!("cannot open the store at {}", args.database_url))?;
    let pool = Pool::new(config, store).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let sv2 = match (args.sv2_listen, &args.authority_key_file) {
        (Some(addr), Some(path)) => {
            let key = AuthorityKey::read(path)
                .map_err(|e| eyre!("cannot read {}: {e}", path.display()))?;
            Some((
                tokio::net::TcpListener::bind(addr).await?,
                std::sync::Arc::new(key),
            ))
        }
        _ => None,
    };
    pool.run_with_listeners(listener, None, sv2, terminated())
        .await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                r = tokio::signal::ctrl_c() => if let Err(e) = r {
                    tracing::error!(error = %e, "cannot listen for Ctrl-C");
                },
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; waiting for Ctrl-C");
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C either");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A printable name for the pool program.
pub(crate) fn describe(binary: Option<&Path>) -> String {
    match binary {
        Some(b) => format!("{} pool", b.display()),
        None => "proofpool-load serve-pool (the proofpool_pool library, same flags)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let m = parse_metrics(
            "# HELP x y\n# TYPE x counter\npool_shares_accepted_total 12\n\
             pool_shares_rejected_total{reason=\"stale\"} 3\npool_store_batch_size 1.5\n",
        );
        assert_eq!(m["pool_shares_accepted_total"], 12.0);
        assert_eq!(m["pool_shares_rejected_total{reason=\"stale\"}"], 3.0);
        assert_eq!(m["pool_store_batch_size"], 1.5);
    }

    #[test]
    fn the_difficulty_saturates_the_share_target() {
        let d: Difficulty = DIFFICULTY.parse().unwrap();
        assert_eq!(d.to_target(), proofpool_primitives::U256::MAX);
    }
}
