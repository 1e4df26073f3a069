//! `proofpool pool`: the Stratum V1 server.

use bitcoin::{Address, Network};
use eyre::{WrapErr, eyre};
use proofpool_pool::{
    BanThreshold, NodeAuth, NodeEndpoint, Pool, PoolConfig, TlsFiles, VardiffConfig,
};
use proofpool_primitives::Difficulty;
use proofpool_store::{Store, StoreOptions, WriterConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Arguments of `proofpool pool`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Stratum listen address.
    #[arg(long, default_value = "0.0.0.0:3333")]
    listen: SocketAddr,
    /// Stratum over TLS (`stratum+ssl://`) listen address; needs `tls_cert`
    /// and `tls_key` (off when not given).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS Stratum, leaf first.
    #[arg(long, requires = "tls_listen")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS Stratum (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_listen")]
    tls_key: Option<PathBuf>,
    /// Stratum V2 (`stratum2+tcp://`) listen address; needs
    /// `authority_key_file` (off when not given). Extended and standard
    /// channels.
    #[arg(long, requires = "authority_key_file")]
    sv2_listen: Option<SocketAddr>,
    /// The Stratum V2 authority key pair (`proofpool keygen` writes one);
    /// its public key is what miners pin.
    #[arg(long, requires = "sv2_listen")]
    authority_key_file: Option<PathBuf>,
    /// Job declaration on the Stratum V2 port: miners' job declarator
    /// clients get tokens (AllocateMiningJobToken), may declare whole
    /// blocks the node checks (DeclareMiningJob, full-template mode), and
    /// set their own jobs (SetCustomMiningJob); see docs/job-declaration.md.
    #[arg(long, requires = "sv2_listen")]
    jd: bool,
    /// How long a job declaration token may be used, in seconds.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    jd_token_ttl_secs: u64,
    /// With `jd`: only jobs declared in full-template mode may be set, each
    /// block checked by the node first; a SetCustomMiningJob with a token
    /// that declared nothing is refused.
    #[arg(long, requires = "jd")]
    jd_full_template_only: bool,
    /// On shutdown, send miners `client.reconnect` to this HOST:PORT (e.g.
    /// another pool instance); without it they are told to reconnect to
    /// the same address.
    #[arg(long)]
    reconnect_to: Option<String>,
    /// bitcoind RPC URLs, tried in order (repeat the flag for failover).
    #[arg(long = "node-url", required = true)]
    node_urls: Vec<reqwest::Url>,
    /// bitcoind cookie file (else PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD).
    #[arg(long)]
    cookie: Option<PathBuf>,
    /// bitcoind's -zmqpubhashblock endpoint (tcp://HOST:PORT): new blocks are
    /// fetched as soon as it announces them, beside the long-poll (off when
    /// not given).
    #[arg(long)]
    zmq_hashblock: Option<String>,
    /// Bitcoin network: bitcoin, testnet, testnet4, signet or regtest.
    #[arg(long, default_value = "bitcoin")]
    network: Network,
    /// The pool's payout address (any standard type for the network).
    /// Reloads on SIGHUP.
    #[arg(long)]
    payout_address: String,
    /// This instance's id (first byte of extranonce1).
    #[arg(long, default_value_t = 0)]
    instance_id: u8,
    /// Starting share difficulty (fractions such as 0.0001 are exact).
    #[arg(long, default_value = "1")]
    difficulty: Difficulty,
    /// Lowest difficulty a miner may suggest.
    #[arg(long, default_value = "0.00001")]
    min_difficulty: Difficulty,
    /// Highest difficulty a miner may suggest or vardiff may assign.
    #[arg(long, default_value = "1099511627776")]
    max_difficulty: Difficulty,
    /// Text in every coinbase scriptSig after the height (at most 72 bytes
    /// with the default extranonce2_size). Reloads on SIGHUP.
    #[arg(long, default_value = "/proofpool/")]
    pool_tag: String,
    /// Bytes of extranonce2 each miner rolls (1-8; 4 for old firmware that
    /// cannot take more). Reloads on SIGHUP: miners that subscribed to
    /// extranonce changes get mining.set_extranonce, others are asked to
    /// reconnect.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=8))]
    extranonce2_size: u8,
    /// Version bits miners may roll (BIP310), hex; each miner gets this mask
    /// ANDed with the one it asks for.
    #[arg(long, default_value = "1fffe000", value_parser = parse_mask)]
    version_mask: u32,
    /// Seconds between template refreshes for new fees (`clean_jobs =
    /// false`); new blocks arrive by long-poll and ZMQ at once regardless.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    template_refresh_secs: u64,
    /// Seconds one long-poll `getblocktemplate` may wait before it is asked
    /// again.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..))]
    longpoll_timeout_secs: u64,
    /// The share store: sqlite://FILE or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "PROOFPOOL_DATABASE_URL",
        default_value = "sqlite://proofpool.db"
    )]
    database_url: String,
    /// Length of a settlement epoch in seconds (fixed once shares exist).
    #[arg(long, default_value_t = 3600)]
    epoch_secs: u64,
    /// Group commit: most shares in one store transaction.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    commit_max_shares: u32,
    /// Group commit: milliseconds the first share of a batch may wait for
    /// more before the commit starts. 0 commits as soon as the previous
    /// commit ends: the lowest latency, and batches still grow with the load.
    #[arg(long, default_value_t = 0)]
    commit_max_delay_ms: u64,
    /// Most accepted shares waiting for the store; past it, submits are
    /// answered with error 20 ("share store is overloaded") instead of
    /// being dropped.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1..))]
    share_queue_capacity: u32,
    /// Seconds a commit is retried while the database fails before its
    /// shares are answered with error 20 ("share store unavailable").
    #[arg(long, default_value_t = 10)]
    store_give_up_secs: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (off when not given).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Most simultaneous miner connections.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Most simultaneous connections from one IP (IPv6: one /64); 0 for no
    /// limit, which a pool behind a TCP proxy needs.
    #[arg(long, default_value_t = 1000)]
    max_connections_per_ip: u32,
    /// Most distinct workers one connection may authorize (a farm proxy
    /// needs hundreds); further authorizations are refused and count
    /// towards a ban.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_workers_per_connection: u32,
    /// Close a connection that has not subscribed and authorized within
    /// this many seconds; 0 waits forever.
    #[arg(long, default_value_t = 30)]
    handshake_timeout_secs: u64,
    /// Close a connection that sent nothing for this many seconds; 0 waits
    /// forever.
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Close a connection whose miner stopped reading: one write waited this
    /// many seconds; 0 waits forever.
    #[arg(long, default_value_t = 30)]
    write_timeout_secs: u64,
    /// Most shares per second per connection (bursts of twice that pass);
    /// the excess is answered "rate limited". 0 for no limit.
    #[arg(long, default_value_t = 50)]
    max_shares_per_second: u32,
    /// Never ban an address.
    #[arg(long)]
    no_ban: bool,
    /// Ban: shares an address must have sent before its reject ratio counts.
    #[arg(long, default_value_t = 100)]
    ban_min_shares: u32,
    /// Ban an address once this percentage of its shares was rejected.
    #[arg(long, default_value_t = 90)]
    ban_reject_percent: u32,
    /// Ban an address once it sent this many malformed requests.
    #[arg(long, default_value_t = 100)]
    ban_invalid_inputs: u32,
    /// Ban counts halve every this many seconds.
    #[arg(long, default_value_t = 600)]
    ban_window_secs: u64,
    /// How long a ban lasts, in seconds.
    #[arg(long, default_value_t = 600)]
    ban_duration_secs: u64,
    /// Keep each connection at its starting (or suggested) difficulty.
    #[arg(long)]
    no_vardiff: bool,
    /// The share rate vardiff aims for, per connection.
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u32).range(1..))]
    vardiff_shares_per_minute: u32,
    /// Vardiff leaves the difficulty alone while the share rate is at least
    /// this percentage of the target...
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..100))]
    vardiff_band_low_percent: u32,
    /// ...and at most this percentage of it.
    #[arg(long, default_value_t = 133, value_parser = clap::value_parser!(u32).range(101..))]
    vardiff_band_high_percent: u32,
    /// Vardiff considers a retarget once this many seconds passed since the
    /// last one...
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    vardiff_retarget_secs: u64,
    /// ...or once this many shares arrived since it, if that is sooner.
    #[arg(long, default_value_t = 36, value_parser = clap::value_parser!(u32).range(1..))]
    vardiff_retarget_shares: u32,
    /// Time constant, in seconds, of vardiff's decayed share rate.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    vardiff_decay_secs: u64,
}

/// A version mask in hex (`1fffe000` or `0x1fffe000`).
fn parse_mask(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u32::from_str_radix(digits, 16)
        .map_err(|_| format!("{text:?} is not a 32-bit hex mask such as 1fffe000"))
}

/// `Some(value)`, or `None` for the "no limit" 0.
fn nonzero<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}

/// Applies the connection, security, vardiff and metrics flags.
fn apply_limits(args: &Args, config: &mut PoolConfig) {
    config.metrics_listen = args.metrics_listen;
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = nonzero(args.max_connections_per_ip);
    config.max_workers_per_connection = args.max_workers_per_connection as usize;
    config.handshake_timeout = nonzero(args.handshake_timeout_secs).map(Duration::from_secs);
    config.idle_timeout = nonzero(args.idle_timeout_secs).map(Duration::from_secs);
    config.write_timeout = nonzero(args.write_timeout_secs).map(Duration::from_secs);
    config.max_shares_per_second = nonzero(args.max_shares_per_second);
    config.ban_threshold = (!args.no_ban).then_some(BanThreshold {
        min_shares: args.ban_min_shares,
        reject_percent: args.ban_reject_percent,
        invalid_inputs: args.ban_invalid_inputs,
        window: Duration::from_secs(args.ban_window_secs),
    });
    config.ban_duration = Duration::from_secs(args.ban_duration_secs);
    config.vardiff = (!args.no_vardiff).then_some(VardiffConfig {
        target_shares_per_minute: args.vardiff_shares_per_minute,
        band_low_percent: args.vardiff_band_low_percent,
        band_high_percent: args.vardiff_band_high_percent,
        retarget_interval: Duration::from_secs(args.vardiff_retarget_secs),
        retarget_shares: args.vardiff_retarget_shares,
        decay_window: Duration::from_secs(args.vardiff_decay_secs),
        ..VardiffConfig::default()
    });
}

/// Applies the job, difficulty-range and group-commit flags.
fn apply_work(args: &Args, config: &mut PoolConfig) {
    config.max_difficulty = args.max_difficulty;
    config.pool_tag = args.pool_tag.as_bytes().to_vec();
    config.extranonce2_len = usize::from(args.extranonce2_size);
    config.version_mask = args.version_mask;
    config.template_refresh = Duration::from_secs(args.template_refresh_secs);
    config.longpoll_timeout = Duration::from_secs(args.longpoll_timeout_secs);
    config.writer = WriterConfig {
        max_batch: args.commit_max_shares as usize,
        max_delay: Duration::from_millis(args.commit_max_delay_ms),
        queue_capacity: args.share_queue_capacity as usize,
        give_up_after: Duration::from_secs(args.store_give_up_secs),
        monotone_times: true,
    };
}

/// `HOST:PORT` of `--reconnect-to`.
fn reconnect_target(value: &str) -> eyre::Result<(String, u16)> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| eyre!("--reconnect-to {value}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| eyre!("--reconnect-to {value}: the port is not a number 1-65535"))?;
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '"') {
        return Err(eyre!("--reconnect-to {value}: expected HOST:PORT"));
    }
    Ok((host.to_owned(), port))
}

fn auth(args: &Args) -> eyre::Result<NodeAuth> {
    if let Some(cookie) = &args.cookie {
        return Ok(NodeAuth::Cookie(cookie.clone()));
    }
    let user = std::env::var("PROOFPOOL_RPC_USER")
        .map_err(|_| eyre!("no bitcoind credentials: pass --cookie FILE or set PROOFPOOL_RPC_USER and PROOFPOOL_RPC_PASSWORD"))?;
    let password = std::env::var("PROOFPOOL_RPC_PASSWORD")
        .map_err(|_| eyre!("PROOFPOOL_RPC_USER is set but PROOFPOOL_RPC_PASSWORD is not"))?;
    Ok(NodeAuth::UserPass { user, password })
}

/// Files the pool keeps open besides miner connections: the store, its WAL,
/// listeners, bitcoind and metrics sockets, with room to spare.
const FILES_BESIDES_MINERS: u64 = 256;

/// Raises the open-file soft limit as far as `max_connections` needs (each
/// connection is a file) and warns when the hard limit stops short: past it
/// `accept` fails with "too many open files" and miners are turned away
/// although `max_connections` says there is room.
fn open_file_room(max_connections: usize) {
    let want = max_connections as u64 + FILES_BESIDES_MINERS;
    match rlimit::increase_nofile_limit(want) {
        Ok(soft) if soft < want => {
            let room = soft.saturating_sub(FILES_BESIDES_MINERS);
            tracing::warn!(
                max_connections,
                open_file_limit = soft,
                "this process may open only {soft} files, so about {room} miners can connect, fewer \
                 than max_connections; raise the hard limit (systemd LimitNOFILE, `ulimit -Hn`) or \
                 run more instances"
            );
        }
        Ok(soft) => tracing::debug!(open_file_limit = soft, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

/// `--payout-address` as an address of `network`.
fn payout_address(args: &Args, network: Network) -> eyre::Result<Address> {
    Address::from_str(&args.payout_address)
        .wrap_err_with(|| {
            format!(
                "--payout-address {} is not a Bitcoin address",
                args.payout_address
            )
        })?
        .require_network(network)
        .wrap_err_with(|| format!("--payout-address is not an address for {network}"))
}

/// The settings a SIGHUP applies to the running pool (through
/// [`Pool::set_coinbase`]); a change to any other waits for a restart.
pub(crate) const RELOADABLE: [&str; 3] = ["payout_address", "pool_tag", "extranonce2_size"];

/// How to read `proofpool pool`'s settings again: the command and the
/// process's arguments, expanded with the `--config` file as it is now.
#[derive(Debug)]
pub(crate) struct Reload {
    pub(crate) command: clap::Command,
    pub(crate) argv: Vec<std::ffi::OsString>,
    /// The `pool` subcommand's matches the process started with: what a
    /// change is measured against.
    pub(crate) running: clap::ArgMatches,
}

impl Reload {
    /// The `pool` subcommand's matches from the file as it is now.
    fn matches(&self) -> eyre::Result<clap::ArgMatches> {
        let argv = crate::config::expand(&self.command, self.argv.clone()).map_err(|problems| {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            eyre!("{}", all.join("; "))
        })?;
        let matches = self
            .command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|e| eyre!("{}", e.to_string().lines().next().unwrap_or_default()))?;
        matches
            .subcommand_matches("pool")
            .cloned()
            .ok_or_else(|| eyre!("the command line is not `proofpool pool`"))
    }
}

/// The config keys whose value differs between `old` and `new`.
fn changed_keys(
    command: &clap::Command,
    old: &clap::ArgMatches,
    new: &clap::ArgMatches,
) -> Vec<String> {
    let raw = |m: &clap::ArgMatches, id: &str| -> Vec<std::ffi::OsString> {
        m.try_get_raw(id)
            .ok()
            .flatten()
            .map(|values| values.map(ToOwned::to_owned).collect())
            .unwrap_or_default()
    };
    let Some(pool) = command.find_subcommand("pool") else {
        return Vec::new();
    };
    pool.get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| raw(old, id) != raw(new, id))
        .map(str::to_owned)
        .collect()
}

/// Re-reads the settings and applies the reloadable ones; the others that
/// changed since the start are returned, to be reported as waiting for a
/// restart. On an error nothing changes.
fn reload(pool: &Pool, source: &Reload, network: Network) -> eyre::Result<(bool, Vec<String>)> {
    use clap::FromArgMatches;
    let matches = source.matches()?;
    let args = Args::from_arg_matches(&matches).map_err(|e| eyre!("{e}"))?;
    let payout = payout_address(&args, network)?;
    let applied = pool.set_coinbase(
        payout.script_pubkey(),
        args.pool_tag.as_bytes().to_vec(),
        usize::from(args.extranonce2_size),
    )?;
    let waiting = changed_keys(&source.command, &source.running, &matches)
        .into_iter()
        .filter(|key| !RELOADABLE.contains(&key.as_str()))
        .collect();
    Ok((applied, waiting))
}

/// SIGHUP, listened for from the start of `run`: before that its default
/// action would end the process (a reload sent while the pool starts).
#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn listen_for_hangup() -> Option<Hangup> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; config reload is off");
            None
        }
    }
}

#[cfg(not(unix))]
fn listen_for_hangup() -> Option<Hangup> {
    None
}

/// On each SIGHUP, re-reads the config file (and flags) and applies
/// [`RELOADABLE`] settings; other changes are logged as waiting for a restart.
#[cfg(unix)]
async fn reload_on_hangup(pool: Pool, source: Reload, network: Network, hangup: Option<Hangup>) {
    let Some(mut hangup) = hangup else {
        return;
    };
    while hangup.recv().await.is_some() {
        match reload(&pool, &source, network) {
            Ok((applied, waiting)) => {
                for key in &waiting {
                    tracing::warn!(
                        key,
                        "changed in the config; takes effect at the next restart"
                    );
                }
                tracing::info!(
                    coinbase_changed = applied,
                    waiting_for_restart = waiting.len(),
                    "config reloaded (SIGHUP)"
                );
            }
            Err(e) => tracing::error!(
                error = %e,
                "config reload failed; the pool keeps the settings it had"
            ),
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(
    _pool: Pool,
    _source: Reload,
    _network: Network,
    _hangup: Option<Hangup>,
) {
}

pub(crate) async fn run(args: Args, source: Reload) -> eyre::Result<()> {
    let hangup = listen_for_hangup();
    let payout = payout_address(&args, args.network)?;
    let auth = auth(&args)?;
    let nodes = args
        .node_urls
        .iter()
        .map(|url| NodeEndpoint {
            url: url.clone(),
            auth: auth.clone(),
        })
        .collect();
    let mut config = PoolConfig::new(nodes, args.network, payout.script_pubkey());
    config.instance_id = args.instance_id;
    config.start_difficulty = args.difficulty;
    config.min_difficulty = args.min_difficulty;
    config.epoch_secs = args.epoch_secs;
    config.zmq_hashblock = args.zmq_hashblock.clone();
    config.jd = args.jd.then(|| proofpool_pool::JdConfig {
        token_ttl: Duration::from_secs(args.jd_token_ttl_secs),
        full_template_only: args.jd_full_template_only,
        ..proofpool_pool::JdConfig::default()
    });
    apply_work(&args, &mut config);
    apply_limits(&args, &mut config);
    open_file_room(config.max_connections);
    config.reconnect_to = args
        .reconnect_to
        .as_deref()
        .map(reconnect_target)
        .transpose()?;
    let store = Store::open(&args.database_url, &StoreOptions::default())
        .await
        .wrap_err_with(|| format!("cannot open the share store at {}", args.database_url))?;
    let pool = Pool::new(config, store).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}: is the port taken?", args.listen))?;
    let tls_listener = match args.tls_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .wrap_err_with(|| format!("cannot listen for TLS on {addr}: is the port taken?"))?,
        ),
        None => None,
    };
    let sv2 = match (args.sv2_listen, &args.authority_key_file) {
        (Some(addr), Some(path)) => {
            let key = proofpool_pool::sv2::keys::AuthorityKey::read(path)
                .wrap_err("cannot read the Stratum V2 authority key (authority_key_file)")?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .wrap_err_with(|| {
                    format!("cannot listen for Stratum V2 on {addr}: is the port taken?")
                })?;
            tracing::info!(sv2_listen = %addr, authority_pubkey = %key.public_b58(), "stratum v2 listening");
            Some((listener, std::sync::Arc::new(key)))
        }
        _ => None,
    };
    tracing::info!(listen = %args.listen, tls_listen = ?args.tls_listen, payout = %payout, "stratum v1 pool listening");
    let reloader = tokio::spawn(reload_on_hangup(pool.clone(), source, args.network, hangup));
    let served = pool
        .run_with_listeners(listener, tls_listener, sv2, shutdown_signal())
        .await;
    reloader.abort();
    served?;
    tracing::info!(
        shares = pool
            .writer_stats()
            .shares_committed
            .load(std::sync::atomic::Ordering::Relaxed),
        blocks = pool.blocks().len(),
        "pool stopped"
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    /// The library's default config with `apply` run on the flags' defaults,
    /// and the library's default config.
    fn applied_to_defaults(apply: fn(&Args, &mut PoolConfig)) -> (PoolConfig, PoolConfig) {
        let cli = Cli::try_parse_from([
            "pool",
            "--node-url",
            "http://127.0.0.1:18443",
            "--payout-address",
            "x",
        ])
        .unwrap();
        let defaults = PoolConfig::new(Vec::new(), Network::Regtest, bitcoin::ScriptBuf::new());
        let mut config = defaults.clone();
        apply(&cli.args, &mut config);
        (config, defaults)
    }

    #[test]
    fn flag_defaults_match_the_library_defaults() {
        let (config, defaults) = applied_to_defaults(apply_limits);
        assert_eq!(config.metrics_listen, defaults.metrics_listen);
        assert_eq!(config.tls, defaults.tls);
        assert_eq!(config.max_connections, defaults.max_connections);
        assert_eq!(
            config.max_connections_per_ip,
            defaults.max_connections_per_ip
        );
        assert_eq!(
            config.max_workers_per_connection,
            defaults.max_workers_per_connection
        );
        assert_eq!(config.handshake_timeout, defaults.handshake_timeout);
        assert_eq!(config.idle_timeout, defaults.idle_timeout);
        assert_eq!(config.write_timeout, defaults.write_timeout);
        assert_eq!(config.max_shares_per_second, defaults.max_shares_per_second);
        assert_eq!(config.ban_threshold, defaults.ban_threshold);
        assert_eq!(config.ban_duration, defaults.ban_duration);
        assert_eq!(config.vardiff, defaults.vardiff);
    }

    #[test]
    fn job_and_commit_flag_defaults_match_the_library_defaults() {
        let (config, defaults) = applied_to_defaults(apply_work);
        assert_eq!(config.max_difficulty, defaults.max_difficulty);
        assert_eq!(config.pool_tag, defaults.pool_tag);
        assert_eq!(config.extranonce2_len, defaults.extranonce2_len);
        assert_eq!(config.version_mask, defaults.version_mask);
        assert_eq!(config.template_refresh, defaults.template_refresh);
        assert_eq!(config.longpoll_timeout, defaults.longpoll_timeout);
        let (w, d) = (&config.writer, &defaults.writer);
        assert_eq!(
            (w.max_batch, w.max_delay, w.queue_capacity, w.give_up_after),
            (d.max_batch, d.max_delay, d.queue_capacity, d.give_up_after)
        );
    }

    #[test]
    fn reconnect_targets_are_checked() {
        assert_eq!(
            reconnect_target("pool1.example:3333").unwrap(),
            ("pool1.example".to_owned(), 3333)
        );
        for bad in [
            "pool1.example",
            ":3333",
            "host:0",
            "host:99999",
            "host:x",
            "a b:1",
        ] {
            assert!(reconnect_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let cli = Cli::try_parse_from([
            "pool",
            "--node-url",
            "http://127.0.0.1:18443",
            "--payout-address",
            "x",
            "--max-connections-per-ip",
            "0",
            "--idle-timeout-secs",
            "0",
            "--no-ban",
            "--no-vardiff",
            "--metrics-listen",
            "127.0.0.1:9100",
        ])
        .unwrap();
        let mut config = PoolConfig::new(Vec::new(), Network::Regtest, bitcoin::ScriptBuf::new());
        apply_limits(&cli.args, &mut config);
        assert_eq!(config.max_connections_per_ip, None);
        assert_eq!(config.idle_timeout, None);
        assert_eq!(config.ban_threshold, None);
        assert_eq!(config.vardiff, None);
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9100".parse().unwrap())
        );
    }
}
