//! `proofpool audit`: recompute every committed epoch from the published
//! epoch files and compare with the chain (and, optionally, bitcoind).
//!
//! Prints one verdict line per epoch, with its findings below it, and exits
//! non-zero if any epoch has a mismatch.

use alloy::primitives::Address;
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use proofpool_audit::{
    AuditObserver, AuditOptions, BlockChecker, ChainReader, Checkpoint, DEFAULT_MATURITY,
    EpochSource, EpochVerdict, HeaderAnchor, audit,
};
use proofpool_node::{NodeAuth, NodeClient, NodeEndpoint};
use std::path::PathBuf;
use std::time::Duration;

/// Epochs with at least this many shares get a progress bar.
const BAR_FROM_SHARES: u64 = 10_000;

/// Arguments of `proofpool audit`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["epochs_dir", "api_url"])
))]
pub(crate) struct Args {
    /// Directory of epoch files (`epoch-00000001.json`, …).
    #[arg(long)]
    epochs_dir: Option<PathBuf>,
    /// The pool API's base URL; files are fetched from
    /// `{URL}/api/v1/epochs/<N>/file`.
    #[arg(long)]
    api_url: Option<reqwest::Url>,
    /// JSON-RPC endpoint of the L2, to compare every epoch with its on-chain
    /// record (without it, the files are only checked against each other).
    #[arg(long, env = "PROOFPOOL_RPC_URL", requires = "distributor")]
    rpc_url: Option<reqwest::Url>,
    /// The distributor contract.
    #[arg(long, env = "PROOFPOOL_DISTRIBUTOR", requires = "rpc_url")]
    distributor: Option<Address>,
    /// bitcoind RPC URL, to check that every paid block is in the best chain
    /// with the coinbase value its epoch file says, that every job builds on
    /// a block bitcoind knows with the target consensus requires, and that
    /// every block the shares found is paid or orphaned.
    #[arg(long)]
    btc_rpc_url: Option<reqwest::Url>,
    /// bitcoind cookie file (else PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD).
    #[arg(long, requires = "btc_rpc_url")]
    btc_cookie: Option<PathBuf>,
    /// First epoch to report on; earlier epochs are still read, unchecked,
    /// because later ones build on their shares and balances.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Last epoch to report on (default: the newest committed on-chain, or
    /// the newest file without the chain).
    #[arg(long)]
    to: Option<u64>,
    /// Confirmations after which the pool pays a block (the settler's
    /// --maturity): with --btc-rpc-url, a block the shares found that is
    /// this deep in bitcoind's best chain (plus two epochs' worth of blocks
    /// and 6) must be paid.
    #[arg(long, default_value_t = DEFAULT_MATURITY)]
    maturity: u64,
    /// A block of the real chain, `HEIGHT:HASH` (from your own node or a
    /// block explorer): the Bitcoin headers the files carry must contain
    /// it, which ties every job and block to Bitcoin without bitcoind.
    #[arg(long, value_name = "HEIGHT:HASH")]
    checkpoint: Option<Checkpoint>,
    /// The network the pool mines on, as bitcoind names it (main, test,
    /// testnet4, signet, regtest), when auditing without --btc-rpc-url: every
    /// file must be on it (PPS pays the network's subsidy, and jobs are
    /// held to its difficulty rules). With bitcoind, bitcoind's network.
    #[arg(long, value_parser = parse_network, conflicts_with = "btc_rpc_url")]
    network: Option<bitcoin::Network>,
}

/// A network by bitcoind's name for it.
pub(crate) fn parse_network(name: &str) -> Result<bitcoin::Network, String> {
    proofpool_epoch::network_named(name).ok_or_else(|| {
        format!("unknown network {name:?}: expected main, test, testnet4, signet or regtest")
    })
}

fn node(args: &Args) -> eyre::Result<Option<BlockChecker>> {
    node_checker(args.btc_rpc_url.as_ref(), args.btc_cookie.as_deref())
}

/// The bitcoind checks at `url` (cookie file, else `PROOFPOOL_RPC_USER` and
/// `PROOFPOOL_RPC_PASSWORD`); none without a URL.
pub(crate) fn node_checker(
    url: Option<&reqwest::Url>,
    cookie: Option<&std::path::Path>,
) -> eyre::Result<Option<BlockChecker>> {
    let Some(url) = url else {
        return Ok(None);
    };
    let auth = match cookie {
        Some(cookie) => NodeAuth::Cookie(cookie.to_path_buf()),
        None => NodeAuth::UserPass {
            user: std::env::var("PROOFPOOL_RPC_USER").map_err(|_| {
                eyre!("--btc-rpc-url needs --btc-cookie FILE or PROOFPOOL_RPC_USER and PROOFPOOL_RPC_PASSWORD")
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
        Duration::from_secs(60),
    )?;
    Ok(Some(BlockChecker::new(client)))
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let source = match (&args.epochs_dir, &args.api_url) {
        (Some(dir), _) => EpochSource::dir(dir),
        (None, Some(url)) => EpochSource::api(url.clone())?,
        (None, None) => bail!("say where the epoch files are: --epochs-dir DIR or --api-url URL"),
    };
    let chain = match (&args.rpc_url, args.distributor) {
        (Some(url), Some(distributor)) => Some(ChainReader::connect(url.clone(), distributor)),
        _ => None,
    };
    let node = node(&args)?;
    if chain.is_none() {
        tracing::warn!(
            "no --rpc-url/--distributor: the files are checked against each other, not against the chain"
        );
    }
    if node.is_none() {
        tracing::warn!(
            "no --btc-rpc-url: jobs and blocks are checked against the Bitcoin headers the files carry{}",
            if args.checkpoint.is_some() {
                ", anchored by --checkpoint"
            } else {
                ", which nothing anchors (pass --checkpoint HEIGHT:HASH)"
            }
        );
    }
    let options = AuditOptions {
        from: args.from,
        to: args.to,
        maturity: args.maturity,
        checkpoint: args.checkpoint,
        network: args.network,
    };
    let report = audit(
        &source,
        chain.as_ref(),
        node.as_ref(),
        &options,
        &mut Progress::default(),
    )
    .await
    .wrap_err("the audit could not run to the end")?;
    for warning in &report.warnings {
        println!("  {warning}");
    }
    if !report.found.is_empty() {
        println!("found blocks and headers, judged over every epoch:");
        for (epoch, finding) in &report.found {
            println!("  epoch {epoch}: {finding}");
        }
    }
    if report.verdicts.is_empty() {
        if chain.is_some() {
            println!("no epoch to audit: none committed on-chain in the range asked for");
            return Ok(());
        }
        bail!(
            "no epoch files found at {}",
            source.describe(options.from.max(1))
        );
    }
    let failed = report.failed_epochs();
    if failed.is_empty() {
        let headers = match report.headers {
            HeaderAnchor::Checkpoint if !report.blocks_checked => {
                ", every job and block matches the Bitcoin headers the files carry, anchored by the checkpoint"
            }
            HeaderAnchor::Unanchored if !report.blocks_checked => {
                ", every job and block matches the Bitcoin headers the files carry (which nothing anchors)"
            }
            _ => "",
        };
        println!(
            "audit passed: {} epochs recomputed{}{}{headers}",
            report.verdicts.len(),
            if report.chain_checked {
                ", every commitment matches the chain"
            } else {
                ""
            },
            if report.blocks_checked {
                ", every paid block, job and found block matches bitcoind"
            } else {
                ""
            },
        );
        Ok(())
    } else {
        Err(eyre!(
            "audit failed: {} of {} epochs do not match (epochs {failed:?})",
            failed.len(),
            report.verdicts.len()
        ))
    }
}

/// A progress bar over a large epoch's shares, and the verdict lines.
#[derive(Default)]
struct Progress {
    bar: Option<ProgressBar>,
}

impl AuditObserver for Progress {
    fn epoch_started(&mut self, epoch: u64, shares: u64) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if shares >= BAR_FROM_SHARES {
            let bar = ProgressBar::new(shares);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {msg} [{bar:40}] {pos}/{len} shares ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(epoch.to_string());
            self.bar = Some(bar);
        }
    }

    fn shares_checked(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn epoch_finished(&mut self, verdict: &EpochVerdict) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!("{verdict}");
        for finding in &verdict.findings {
            println!("  {finding}");
        }
        if verdict.omitted > 0 {
            println!("  … and {} more findings", verdict.omitted);
        }
    }
}
