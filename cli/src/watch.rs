//! `proofpool watch`: a miner's own check of the pool (see the
//! `proofpool-watch` crate).

use eyre::{WrapErr, eyre};
use proofpool_watch::{EpochIndex, ShareEvidence, WatchLog};
use std::path::PathBuf;

/// Arguments of `proofpool watch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Proxy miners to the pool and record every share it accepts.
    Run {
        /// The pool's Stratum address, HOST:PORT.
        #[arg(long)]
        pool: String,
        /// Where miners connect, e.g. 127.0.0.1:3335.
        #[arg(long, default_value = "127.0.0.1:3335")]
        listen: String,
        /// The share log (SQLite), created if missing.
        #[arg(long, default_value = "proofpool-watch.db")]
        log: PathBuf,
        /// The status page (`/`) and Prometheus metrics (`/metrics`).
        #[arg(long, default_value = "127.0.0.1:9200")]
        status_listen: String,
        /// The pool's API: check the recorded shares against its epoch files
        /// every `--check-every-secs`.
        #[arg(long)]
        api_url: Option<String>,
        /// How often to check, with `--api-url`.
        #[arg(long, default_value_t = 300)]
        check_every_secs: u64,
        /// Where the periodic checks write evidence.
        #[arg(long, default_value = "proofpool-evidence")]
        evidence_dir: PathBuf,
        /// An L2 JSON-RPC endpoint: the periodic checks also read the
        /// distributor (the committed file, the finalized root, what a claim
        /// pays now).
        #[arg(long)]
        rpc_url: Option<reqwest::Url>,
        /// The network the pool mines on, as bitcoind names it (main, test,
        /// testnet4, signet, regtest): PPS and FPPS epoch files must name
        /// it (PPS pays its subsidy; without it a PPS epoch is unchecked).
        #[arg(long, value_parser = crate::audit::parse_network)]
        network: Option<bitcoin::Network>,
    },
    /// Check every recorded share against the published epoch files; exits
    /// non-zero and writes evidence for each missing or altered share.
    Check {
        /// The share log `watch run` wrote.
        #[arg(long, default_value = "proofpool-watch.db")]
        log: PathBuf,
        /// A directory of epoch files (`epoch-NNNNNNNN.json`).
        #[arg(long = "epochs-dir", alias = "epochs", conflicts_with = "api_url")]
        epochs: Option<PathBuf>,
        /// The pool's API, to fetch the epoch files from.
        #[arg(long)]
        api_url: Option<String>,
        /// Where to write the evidence of each problem.
        #[arg(long, default_value = "proofpool-evidence")]
        evidence_dir: PathBuf,
        /// An L2 JSON-RPC endpoint: also check that the newest file is the
        /// one the distributor committed and the finalized root the one it
        /// pays against, and show what a claim pays now.
        #[arg(long)]
        rpc_url: Option<reqwest::Url>,
        /// The network the pool mines on, as bitcoind names it (main, test,
        /// testnet4, signet, regtest): PPS and FPPS epoch files must name
        /// it (PPS pays its subsidy; without it a PPS epoch is unchecked).
        #[arg(long, value_parser = crate::audit::parse_network)]
        network: Option<bitcoin::Network>,
    },
    /// List the recorded shares, one per line (hash, epoch, status as of the
    /// last check, worker): what the miner page's "Verify my shares" takes.
    List {
        /// The share log.
        #[arg(long, default_value = "proofpool-watch.db")]
        log: PathBuf,
    },
    /// Re-check a piece of evidence: that its share's proof of work commits
    /// to the miner and target it names.
    Verify {
        /// The evidence file (JSON).
        evidence: PathBuf,
    },
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    match args.action {
        Action::Run {
            pool,
            listen,
            log,
            status_listen,
            api_url,
            check_every_secs,
            evidence_dir,
            rpc_url,
            network,
        } => {
            let log = WatchLog::open(&log)
                .await
                .wrap_err_with(|| format!("cannot open the share log {}", log.display()))?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .wrap_err_with(|| format!("cannot listen on {listen}"))?;
            let status = tokio::net::TcpListener::bind(&status_listen)
                .await
                .wrap_err_with(|| format!("cannot listen on {status_listen}"))?;
            let stats = std::sync::Arc::new(proofpool_watch::Stats::default());
            let router = proofpool_watch::status::router(log.clone(), stats.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(status, router).await {
                    tracing::error!(error = %e, "the status page stopped");
                }
            });
            if let Some(url) = api_url {
                let (log, stats) = (log.clone(), stats.clone());
                let every = std::time::Duration::from_secs(check_every_secs.max(10));
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        periodic_check(&log, &stats, &url, rpc_url.clone(), &evidence_dir, network)
                            .await;
                    }
                });
            }
            println!(
                "watch: miners connect to {listen}; proxying to {pool}; status on http://{status_listen}/"
            );
            proofpool_watch::proxy::serve(
                listener,
                pool,
                log.clone(),
                stats,
                crate::pool::shutdown_signal(),
            )
            .await?;
            log.close().await;
            Ok(())
        }
        Action::Check {
            log,
            epochs,
            api_url,
            evidence_dir,
            rpc_url,
            network,
        } => {
            let mut index = match (epochs, api_url) {
                (Some(dir), _) => EpochIndex::from_dir(&dir)?,
                (None, Some(url)) => EpochIndex::from_api(&url).await?,
                (None, None) => return Err(eyre!("give --epochs-dir DIR or --api-url URL")),
            };
            if let Some(network) = network {
                index.expect_network(network);
            }
            let log = WatchLog::open(&log)
                .await
                .wrap_err_with(|| format!("cannot open the share log {}", log.display()))?;
            let report = proofpool_watch::check(
                &log,
                &index,
                Some(&evidence_dir),
                proofpool_watch::check::SLACK_MS,
            )
            .await?;
            log.close().await;
            println!(
                "watch: {} included, {} pending, {} problems, {} unverifiable (epoch files up to {})",
                report.included,
                report.pending,
                report.problems.len(),
                report.unverifiable.len(),
                index
                    .newest_epoch()
                    .map_or_else(|| "none".to_owned(), |e| e.to_string()),
            );
            for p in &report.problems {
                let claim = p.evidence.claim.as_ref();
                println!(
                    "  {} share {} of {}: evidence {}",
                    claim.map_or("?", |c| c.problem.as_str()),
                    p.hash,
                    p.worker,
                    p.path
                        .as_ref()
                        .map_or_else(String::new, |path| path.display().to_string())
                );
            }
            for (hash, why) in &report.unverifiable {
                println!("  unverifiable share {hash}: {why}");
            }
            let credits = credit_checks(&index, &report, rpc_url).await?;
            for c in &credits {
                println!("{}", credit_line(c));
                for p in &c.problems {
                    println!("  credit problem: {p}");
                }
            }
            let wrong = credits.iter().filter(|c| !c.problems.is_empty()).count();
            if !report.problems.is_empty() || !report.unverifiable.is_empty() {
                Err(eyre!(
                    "{} of the pool's accepted shares are missing or altered",
                    report.problems.len() + report.unverifiable.len()
                ))
            } else if wrong > 0 {
                Err(eyre!("{wrong} miners' credits do not replay"))
            } else {
                Ok(())
            }
        }
        Action::List { log } => {
            if !log.exists() {
                return Err(eyre!("no share log at {}", log.display()));
            }
            let log = WatchLog::open(&log)
                .await
                .wrap_err_with(|| format!("cannot open the share log {}", log.display()))?;
            let shares = log.shares().await;
            log.close().await;
            for s in shares? {
                println!(
                    "{} epoch {} {} {}",
                    s.hash,
                    s.epoch.map_or_else(|| "-".to_owned(), |e| e.to_string()),
                    s.status.as_str(),
                    s.worker
                );
            }
            Ok(())
        }
        Action::Verify { evidence } => {
            let bytes = std::fs::read(&evidence)
                .wrap_err_with(|| format!("cannot read {}", evidence.display()))?;
            let e: ShareEvidence = serde_json::from_slice(&bytes)
                .wrap_err_with(|| format!("{} is not share evidence", evidence.display()))?;
            let v = e.verify()?;
            println!(
                "valid: share {} is proof of work by {} at target {:#x} (compact {:#010x}) on a job with previous block {} and share-log head {}",
                v.hash, v.miner, v.target, v.target_bits, e.share.prev_hash, v.log_head
            );
            if let Some(claim) = &e.claim {
                match (&claim.listed, claim.problem.as_str()) {
                    (Some(listed), _) => println!(
                        "claim: epoch {} lists it credited to {} at target {:#x}",
                        claim.epoch, listed.miner, listed.share_target
                    ),
                    (None, problem) => println!(
                        "claim: {problem} from every epoch file up to epoch {}",
                        claim.epoch
                    ),
                }
            }
            Ok(())
        }
    }
}

/// Replays the credits of the miners `report` saw, and reads the chain
/// when `rpc_url` is given.
async fn credit_checks(
    index: &EpochIndex,
    report: &proofpool_watch::CheckReport,
    rpc_url: Option<reqwest::Url>,
) -> eyre::Result<Vec<proofpool_watch::CreditCheck>> {
    let mut credits = proofpool_watch::credits(index, report.miners.iter().copied())?;
    if let Some(chain) = rpc_url.and_then(|url| proofpool_watch::credit::distributor(index, url)) {
        for c in &mut credits {
            c.on_chain(index, &chain).await?;
        }
    }
    Ok(credits)
}

/// One line on a miner's credit.
fn credit_line(c: &proofpool_watch::CreditCheck) -> String {
    let mut line = format!(
        "credit {}: {} blocks, {} PPS/FPPS epochs, {} sats = {} base units by the replay of epochs 1 to {}; the reward leaf holds {}",
        c.miner,
        c.blocks.len(),
        c.epochs.len(),
        c.recomputed_sats,
        c.recomputed_amount,
        c.epoch,
        c.leaf
            .map_or_else(|| "nothing".to_owned(), |l| l.cumulative_amount.to_string()),
    );
    if let Some(o) = &c.on_chain {
        line.push_str(&format!(
            "; on-chain (epoch {} finalized, {} committed): {} claimed, {} claimable now, {} pending",
            o.finalized_epoch, o.committed_epoch, o.claimed, o.claimable_now, o.pending
        ));
    }
    line
}

/// One check of `watch run --api-url`: logs what it found; problems also
/// leave their evidence in `evidence_dir`.
async fn periodic_check(
    log: &WatchLog,
    stats: &proofpool_watch::Stats,
    url: &str,
    rpc_url: Option<reqwest::Url>,
    evidence_dir: &std::path::Path,
    network: Option<bitcoin::Network>,
) {
    use std::sync::atomic::Ordering;
    stats.checks.fetch_add(1, Ordering::Relaxed);
    let index = match EpochIndex::from_api(url).await {
        Ok(mut index) => {
            if let Some(network) = network {
                index.expect_network(network);
            }
            index
        }
        Err(e) => {
            stats.check_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot read the epoch files");
            return;
        }
    };
    stats
        .checked_epoch
        .store(index.newest_epoch().unwrap_or(0), Ordering::Relaxed);
    match proofpool_watch::check(
        log,
        &index,
        Some(evidence_dir),
        proofpool_watch::check::SLACK_MS,
    )
    .await
    {
        Ok(report) => {
            for p in &report.problems {
                tracing::error!(
                    hash = %p.hash,
                    worker = %p.worker,
                    problem = p.evidence.claim.as_ref().map_or("?", |c| c.problem.as_str()),
                    evidence = ?p.path,
                    "a share the pool accepted is not in the epoch files as mined"
                );
            }
            tracing::info!(
                included = report.included,
                pending = report.pending,
                problems = report.problems.len(),
                "checked the recorded shares"
            );
            match credit_checks(&index, &report, rpc_url).await {
                Ok(credits) => {
                    for c in &credits {
                        for p in &c.problems {
                            tracing::error!(miner = %c.miner, problem = %p, "a credit does not replay");
                        }
                        tracing::info!("{}", credit_line(c));
                    }
                    let wrong = credits.iter().filter(|c| !c.problems.is_empty()).count();
                    stats.credit_problems.store(wrong as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.check_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot replay the credits");
                }
            }
        }
        Err(e) => {
            stats.check_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "check failed");
        }
    }
}
