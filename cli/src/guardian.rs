//! `proofpool guardian`: audits every committed epoch while its challenge
//! period runs and vetoes the first pending epoch that fails, with a key of
//! its own (see `proofpool_audit::Guardian`).

use alloy::primitives::Address;
use eyre::{WrapErr, bail};
use proofpool_audit::{
    AuditOptions, ChainReader, Checkpoint, DEFAULT_MATURITY, EpochSource, Guardian,
};
use proofpool_chain::DistributorClient;
use std::path::PathBuf;
use std::time::Duration;

use crate::key;

/// Arguments of `proofpool guardian`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["epochs_dir", "api_url"])
))]
pub(crate) struct Args {
    /// Directory of epoch files (a mirror the guardian keeps).
    #[arg(long)]
    epochs_dir: Option<PathBuf>,
    /// The pool API's base URL; files are fetched from
    /// `{URL}/api/v1/epochs/<N>/file`.
    #[arg(long)]
    api_url: Option<reqwest::Url>,
    /// JSON-RPC endpoint of the L2.
    #[arg(long, env = "PROOFPOOL_RPC_URL")]
    rpc_url: reqwest::Url,
    /// The distributor contract.
    #[arg(long, env = "PROOFPOOL_DISTRIBUTOR")]
    distributor: Address,
    /// File holding the guardian's hex private key (else
    /// PROOFPOOL_GUARDIAN_KEY). It must be the distributor's guardian.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// bitcoind RPC URL, for the audit's checks against bitcoind.
    #[arg(long)]
    btc_rpc_url: Option<reqwest::Url>,
    /// bitcoind cookie file (else PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD).
    #[arg(long, requires = "btc_rpc_url")]
    btc_cookie: Option<PathBuf>,
    /// A block of the real chain, `HEIGHT:HASH`, anchoring the Bitcoin
    /// headers the files carry (without bitcoind).
    #[arg(long, value_name = "HEIGHT:HASH")]
    checkpoint: Option<Checkpoint>,
    /// The network the pool mines on (main, test, testnet4, signet,
    /// regtest), without --btc-rpc-url: every file must be on it.
    #[arg(long, value_parser = crate::audit::parse_network, conflicts_with = "btc_rpc_url")]
    network: Option<bitcoin::Network>,
    /// Confirmations after which the pool pays a block.
    #[arg(long, default_value_t = DEFAULT_MATURITY)]
    maturity: u64,
    /// Seconds between passes. Keep it well under the challenge period.
    #[arg(long, default_value_t = 60)]
    poll_secs: u64,
    /// Where to serve Prometheus metrics.
    #[arg(long, default_value = "127.0.0.1:9102")]
    metrics_listen: std::net::SocketAddr,
    /// Run one pass and exit (non-zero if an epoch fails).
    #[arg(long)]
    once: bool,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    if args.poll_secs == 0 {
        bail!("--poll-secs must be at least 1");
    }
    let source = match (&args.epochs_dir, &args.api_url) {
        (Some(dir), _) => EpochSource::dir(dir),
        (None, Some(url)) => EpochSource::api(url.clone())?,
        (None, None) => bail!("say where the epoch files are: --epochs-dir DIR or --api-url URL"),
    };
    let signer = key::load(args.key_file.as_deref(), "PROOFPOOL_GUARDIAN_KEY")?;
    let me = signer.address();
    let client = DistributorClient::new(
        args.distributor,
        proofpool_chain::connect(args.rpc_url.clone(), signer),
    );
    let guardian = client
        .guardian()
        .await
        .wrap_err("cannot read the distributor's guardian")?;
    if guardian != me {
        bail!(
            "this key is {me}, but the distributor's guardian is {guardian}: its vetoes would revert"
        );
    }
    let node = crate::audit::node_checker(args.btc_rpc_url.as_ref(), args.btc_cookie.as_deref())?;
    let guardian = Guardian::new(
        source,
        ChainReader::connect(args.rpc_url.clone(), args.distributor),
        client,
        node,
        AuditOptions {
            maturity: args.maturity,
            checkpoint: args.checkpoint,
            network: args.network,
            ..AuditOptions::default()
        },
    );
    if args.once {
        let pass = guardian.run_once().await?;
        println!("{pass:?}");
        if !pass.failing.is_empty() {
            bail!("epochs {:?} fail the audit", pass.failing);
        }
        return Ok(());
    }
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(args.metrics_listen)
        .install()
        .wrap_err_with(|| format!("cannot serve metrics on {}", args.metrics_listen))?;
    tracing::info!(guardian = %me, distributor = %args.distributor, poll_secs = args.poll_secs, "guardian running");
    let mut tick = tokio::time::interval(Duration::from_secs(args.poll_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("guardian stopping");
                return Ok(());
            }
        }
        match guardian.run_once().await {
            Ok(pass) if pass.audited_to.is_some() => {
                tracing::info!(audited_to = ?pass.audited_to, failing = ?pass.failing, vetoed = ?pass.vetoed, "guardian pass");
            }
            Ok(_) => tracing::debug!("nothing pending"),
            // Transient: the next pass tries again, well inside the window.
            Err(err) => tracing::error!(error = %err, "guardian pass failed"),
        }
    }
}
