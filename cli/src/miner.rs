//! `proofpool miner`: the reference CPU miner.

use eyre::eyre;
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_primitives::Difficulty;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Arguments of `proofpool miner`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Pool URL, `stratum+tcp://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// `0xADDRESS.worker`.
    #[arg(long)]
    user: String,
    /// Hashing threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Difficulty to suggest to the pool.
    #[arg(long)]
    suggest_difficulty: Option<Difficulty>,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let address = args
        .url
        .strip_prefix("stratum+tcp://")
        .ok_or_else(|| {
            eyre!(
                "--url must look like stratum+tcp://HOST:PORT, got {}",
                args.url
            )
        })?
        .trim_end_matches('/')
        .to_owned();
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address,
        user: args.user,
        threads: args.threads,
        suggest_difficulty: args.suggest_difficulty,
        max_shares: None,
    };
    let result = proofpool_miner::run(config, stats.clone(), crate::pool::shutdown_signal()).await;
    println!(
        "hashes {} accepted {} rejected {}",
        stats.hashes.load(Ordering::Relaxed),
        stats.accepted.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed)
    );
    Ok(result?)
}
