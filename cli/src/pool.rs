//! `proofpool pool`: the Stratum V1 server.

use bitcoin::{Address, Network};
use eyre::{WrapErr, eyre};
use proofpool_pool::{NodeAuth, NodeEndpoint, Pool, PoolConfig};
use proofpool_primitives::Difficulty;
use proofpool_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Arguments of `proofpool pool`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Stratum listen address.
    #[arg(long, default_value = "0.0.0.0:3333")]
    listen: SocketAddr,
    /// bitcoind RPC URLs, tried in order (repeat the flag for failover).
    #[arg(long = "node-url", required = true)]
    node_urls: Vec<reqwest::Url>,
    /// bitcoind cookie file (else PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD).
    #[arg(long)]
    cookie: Option<PathBuf>,
    /// Bitcoin network: bitcoin, testnet, testnet4, signet or regtest.
    #[arg(long, default_value = "bitcoin")]
    network: Network,
    /// The pool's payout address (any standard type for the network).
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

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let payout = Address::from_str(&args.payout_address)
        .wrap_err_with(|| {
            format!(
                "--payout-address {} is not a Bitcoin address",
                args.payout_address
            )
        })?
        .require_network(args.network)
        .wrap_err_with(|| format!("--payout-address is not an address for {}", args.network))?;
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
    let store = Store::open(&args.database_url, &StoreOptions::default())
        .await
        .wrap_err_with(|| format!("cannot open the share store at {}", args.database_url))?;
    let pool = Pool::new(config, store).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}: is the port taken?", args.listen))?;
    tracing::info!(listen = %args.listen, payout = %payout, "stratum v1 pool listening");
    pool.run(listener, shutdown_signal()).await?;
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
