//! `proofpool settle`: the settlement cron.

use crate::key;
use crate::params::ParamsArgs;
use alloy::primitives::Address;
use eyre::{WrapErr, eyre};
use proofpool_chain::DistributorClient;
use proofpool_node::{NodeAuth, NodeClient, NodeEndpoint};
use proofpool_settlement::{Report, SettleConfig, Settler};
use proofpool_store::{Store, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `proofpool settle`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The pool's store: sqlite://FILE or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "PROOFPOOL_DATABASE_URL",
        default_value = "sqlite://proofpool.db"
    )]
    database_url: String,
    /// JSON-RPC endpoint of the L2.
    #[arg(long, env = "PROOFPOOL_RPC_URL")]
    rpc_url: alloy::transports::http::reqwest::Url,
    /// The distributor contract.
    #[arg(long, env = "PROOFPOOL_DISTRIBUTOR")]
    distributor: Address,
    /// File holding the settler's hex private key (else PROOFPOOL_SETTLER_KEY).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// bitcoind RPC URL, to track block maturity and orphans and carry its headers in every epoch file (without it, statuses are left alone and files carry no headers).
    #[arg(long)]
    node_url: Option<reqwest::Url>,
    /// bitcoind cookie file (else PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD).
    #[arg(long)]
    cookie: Option<PathBuf>,
    /// The parameters every epoch is settled with; each epoch's must be the
    /// ones the distributor has in force at its start (`proofpool params show`),
    /// and an epoch under a version the owner announced since is settled
    /// with that one.
    #[command(flatten)]
    params: ParamsArgs,
    /// Where epoch files are written (served by the API, read by auditors).
    #[arg(long, default_value = "epochs")]
    epochs_dir: PathBuf,
    /// Seconds after an epoch ends before it is closed.
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    /// Confirmations to wait for after each transaction.
    #[arg(long, default_value_t = 1)]
    confirmations: u64,
    /// Run one pass and exit (for cron or a systemd timer).
    #[arg(long, conflicts_with = "every")]
    once: bool,
    /// Run a pass every DURATION seconds until Ctrl-C.
    #[arg(long)]
    every: Option<u64>,
    /// Compute and print the next epoch; write and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn node(args: &Args) -> eyre::Result<Option<Arc<NodeClient>>> {
    let Some(url) = &args.node_url else {
        return Ok(None);
    };
    let auth = match &args.cookie {
        Some(cookie) => NodeAuth::Cookie(cookie.clone()),
        None => NodeAuth::UserPass {
            user: std::env::var("PROOFPOOL_RPC_USER").map_err(|_| {
                eyre!("--node-url needs --cookie FILE or PROOFPOOL_RPC_USER and PROOFPOOL_RPC_PASSWORD")
            })?,
            password: std::env::var("PROOFPOOL_RPC_PASSWORD")
                .map_err(|_| eyre!("PROOFPOOL_RPC_USER is set but PROOFPOOL_RPC_PASSWORD is not"))?,
        },
    };
    let client = NodeClient::new(
        vec![NodeEndpoint {
            url: url.clone(),
            auth,
        }],
        Duration::from_secs(30),
    )?;
    Ok(Some(Arc::new(client)))
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    if !args.once && args.every.is_none() && !args.dry_run {
        eyre::bail!("say how to run: --once (cron, systemd timer) or --every SECONDS");
    }
    let signer = key::load(args.key_file.as_deref(), "PROOFPOOL_SETTLER_KEY")?;
    let settler = signer.address();
    let provider = proofpool_chain::connect(args.rpc_url.clone(), signer);
    let chain = DistributorClient::new(args.distributor, provider);
    let decimals = chain.token_decimals().await.wrap_err_with(|| {
        format!(
            "cannot read the distributor through the RPC at {}",
            args.rpc_url
        )
    })?;
    let params = args.params.resolve(decimals)?;
    let store = Store::open(&args.database_url, &StoreOptions::default())
        .await
        .wrap_err_with(|| format!("cannot open the store at {}", args.database_url))?;
    let config = SettleConfig {
        params,
        verify_params: true,
        grace: Duration::from_secs(args.grace_secs),
        epochs_dir: args.epochs_dir.clone(),
        confirmations: args.confirmations,
        dry_run: args.dry_run,
        settler,
    };
    let settler = Settler::new(store, chain, node(&args)?, config);
    match args.every {
        Some(secs) if !args.dry_run && !args.once => {
            let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let stop = crate::pool::shutdown_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = tick.tick() => {}
                }
                match settler.run_once().await {
                    Ok(report) => print_report(&report),
                    // A transient failure (RPC down, lock held) is retried next tick.
                    Err(e) => {
                        tracing::error!(error = %e, "settlement pass failed; retrying next tick")
                    }
                }
            }
            Ok(())
        }
        _ => {
            let report = settler.run_once().await?;
            print_report(&report);
            Ok(())
        }
    }
}

fn print_report(r: &Report) {
    for p in &r.previews {
        println!(
            "dry run: epoch {} shares {} blocks {} share_root {} reward_root {} total {} file {} bytes",
            p.epoch,
            p.shares,
            p.blocks,
            p.share_root,
            p.reward_root,
            p.total_cumulative,
            p.file_bytes
        );
    }
    if !r.blocks_updated.is_empty() || !r.committed.is_empty() || !r.finalized.is_empty() {
        tracing::info!(
            blocks = ?r.blocks_updated,
            settled = ?r.settled,
            committed = ?r.committed.iter().map(|(e, _)| e).collect::<Vec<_>>(),
            finalized = ?r.finalized,
            "settlement pass"
        );
    }
}
