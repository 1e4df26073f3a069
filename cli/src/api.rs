//! `proofpool api`: the public HTTP API, as its own process. It only reads
//! the store and the epochs directory, so any number of replicas can serve
//! one PostgreSQL.

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::transports::http::reqwest::Url;
use eyre::WrapErr;
use proofpool_api::{ApiState, DEFAULT_EXPLORER_URL, ServeConfig};
use proofpool_merkle::RewardDomain;
use proofpool_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `proofpool api`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "PROOFPOOL_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The pool's store: sqlite://FILE or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "PROOFPOOL_DATABASE_URL",
        default_value = "sqlite://proofpool.db"
    )]
    database_url: String,
    /// Most database connections this process opens.
    #[arg(long, default_value_t = 16)]
    db_connections: u32,
    /// The directory the settler writes epoch files to.
    #[arg(long, default_value = "epochs")]
    epochs_dir: PathBuf,
    /// The EVM chain id reward leaves are bound to (the settler's).
    #[arg(long, env = "PROOFPOOL_CHAIN_ID")]
    chain_id: u64,
    /// The distributor contract reward leaves are bound to.
    #[arg(long, env = "PROOFPOOL_DISTRIBUTOR")]
    distributor: Address,
    /// JSON-RPC endpoint of the L2, to show claimed amounts and token info (optional).
    #[arg(long, env = "PROOFPOOL_RPC_URL")]
    rpc_url: Option<Url>,
    /// Token base units per satoshi (the settler's; 1 for an 8-decimal token).
    #[arg(long, default_value_t = U256::from(1u64))]
    token_per_sat: U256,
    /// Bitcoin block explorer base URL; blocks link to URL/block/HASH.
    #[arg(long, default_value = DEFAULT_EXPLORER_URL)]
    explorer_url: String,
    /// The web app's built files (web/dist), served for every non-API path.
    #[arg(long)]
    web_dir: Option<PathBuf>,
    /// Close a connection that has not sent a complete request head within this many seconds of opening, or of its previous answer (the keep-alive idle timeout)
    #[arg(long, default_value_t = proofpool_api::DEFAULT_HEADER_READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_secs: u64,
    /// Most connections served at once (further ones wait to be accepted); kept below half of the open-file limit
    #[arg(long, default_value_t = proofpool_api::DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    max_connections: usize,
    /// Most simultaneous connections from one IP (IPv6: one /64); further ones are answered 429 and closed. 0 for no limit, which an API behind a reverse proxy needs
    #[arg(long, default_value_t = proofpool_api::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
}

/// A count of at least 1.
fn positive(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    if let Some(dir) = &args.web_dir
        && !dir.join("index.html").is_file()
    {
        eyre::bail!(
            "--web-dir {} has no index.html: build the web app first",
            dir.display()
        );
    }
    if !args.epochs_dir.is_dir() {
        tracing::warn!(dir = %args.epochs_dir.display(), "the epochs directory does not exist yet; epoch files will 404 until the settler writes them");
    }
    if let Some(url) = &args.rpc_url {
        check_chain_id(url, args.chain_id).await?;
    }
    let options = StoreOptions {
        max_connections: args.db_connections,
        ..StoreOptions::default()
    };
    let store = Store::open(&args.database_url, &options)
        .await
        .wrap_err_with(|| format!("cannot open the store at {}", args.database_url))?;
    let state = ApiState {
        store: store.clone(),
        epochs_dir: args.epochs_dir,
        domain: RewardDomain {
            chain_id: args.chain_id,
            distributor: args.distributor,
        },
        token_per_sat: args.token_per_sat,
        explorer_base_url: args.explorer_url,
        chain_rpc_url: args.rpc_url,
        web_dir: args.web_dir,
    };
    let limits = serve_config(
        args.header_read_timeout_secs,
        args.max_connections,
        args.max_connections_per_ip,
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        header_read_timeout = ?limits.header_read_timeout,
        "api listening"
    );
    proofpool_api::serve_with(listener, state, limits, crate::pool::shutdown_signal()).await?;
    store.close().await;
    tracing::info!("api stopped");
    Ok(())
}

/// The server's limits, with the open-file limit raised as far as
/// `max_connections` needs and the cap lowered (with a warning) where the
/// hard limit stops short.
fn serve_config(
    header_read_timeout_secs: u64,
    max_connections: usize,
    max_connections_per_ip: usize,
) -> ServeConfig {
    let wanted = ServeConfig {
        header_read_timeout: Duration::from_secs(header_read_timeout_secs),
        max_connections,
        max_connections_per_ip,
    };
    let want = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(proofpool_api::FILES_BESIDES_CONNECTIONS);
    if let Err(e) = rlimit::increase_nofile_limit(want) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    let fitted = wanted.within_process_limit();
    if fitted.max_connections < wanted.max_connections {
        tracing::warn!(
            max_connections = fitted.max_connections,
            asked = wanted.max_connections,
            "the open-file limit leaves room for fewer connections than max_connections; \
             raise the hard limit (systemd LimitNOFILE, `ulimit -Hn`)"
        );
    }
    fitted
}

/// Refuses an RPC endpoint on another chain (its proofs would never verify
/// there); an unreachable one only warns, since chain reads are optional.
async fn check_chain_id(url: &Url, chain_id: u64) -> eyre::Result<()> {
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url.clone());
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(5), provider.get_chain_id()).await;
    match answer {
        Ok(Ok(id)) if id == chain_id => Ok(()),
        Ok(Ok(id)) => eyre::bail!(
            "--rpc-url is chain {id} but --chain-id is {chain_id}: point the API at the distributor's chain"
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot reach --rpc-url; serving without chain reads until it answers");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("--rpc-url did not answer in 5 s; serving anyway");
            Ok(())
        }
    }
}
