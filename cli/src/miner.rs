//! `proofpool miner`: the reference CPU miner.

use eyre::eyre;
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_primitives::Difficulty;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Arguments of `proofpool miner`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Pool URL: `stratum+tcp://HOST:PORT`, `stratum+ssl://HOST:PORT`, or
    /// Stratum V2 as `stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY` (the pool's
    /// authority key, which the handshake must prove).
    #[arg(long)]
    url: String,
    /// For `stratum+ssl://`: the PEM certificate to trust (the pool's
    /// self-signed certificate, or its CA).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// `0xADDRESS.worker`.
    #[arg(long)]
    user: String,
    /// Hashing threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Difficulty to suggest to the pool.
    #[arg(long)]
    suggest_difficulty: Option<Difficulty>,
    /// When the pool closes the connection (a ban of this IP, perhaps caused
    /// by another client behind it, or a restart): reconnect after 1 s,
    /// doubling the wait up to this many seconds. 0 stops the miner instead.
    #[arg(long, default_value_t = 60)]
    retry_up_to_secs: u64,
    /// Record every share the pool accepts, with its job, in this share log
    /// (the format `proofpool watch run` writes); `proofpool watch check
    /// --log FILE` then checks them against the epoch files.
    #[arg(long)]
    share_log: Option<std::path::PathBuf>,
    /// Stratum V2: mine on a standard channel (header-only, as SV2 firmware
    /// does: the pool fixes the whole coinbase and sends merkle roots)
    /// instead of an extended one.
    #[arg(long)]
    sv2_standard: bool,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let (address, tls, sv2_authority) = if let Some(rest) = args.url.strip_prefix("stratum2+tcp://")
    {
        let (address, key) = rest.trim_end_matches('/').split_once('/').ok_or_else(|| {
            eyre!(
                "a Stratum V2 URL names the pool's authority public key: stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY, got {}",
                args.url
            )
        })?;
        let authority = proofpool_pool::sv2::keys::decode_public(key)
            .map_err(|e| eyre!("the authority key in {}: {e}", args.url))?;
        (address.to_owned(), false, Some(authority))
    } else {
        let (address, tls) = match (
            args.url.strip_prefix("stratum+tcp://"),
            args.url.strip_prefix("stratum+ssl://"),
        ) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => {
                return Err(eyre!(
                    "--url must look like stratum+tcp://HOST:PORT, stratum+ssl://HOST:PORT or stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY, got {}",
                    args.url
                ));
            }
        };
        (address.trim_end_matches('/').to_owned(), tls, None)
    };
    let tls_ca = match (tls, args.tls_ca) {
        (true, Some(ca)) => Some(ca),
        (true, None) => {
            return Err(eyre!(
                "stratum+ssl:// needs --tls-ca FILE: the pool's certificate (or its CA) to trust"
            ));
        }
        (false, Some(_)) => {
            return Err(eyre!(
                "--tls-ca is for stratum+ssl:// URLs; {} is plain TCP",
                args.url
            ));
        }
        (false, None) => None,
    };
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address,
        user: args.user,
        threads: args.threads,
        suggest_difficulty: args.suggest_difficulty,
        max_shares: None,
        tls_ca,
        retry_up_to: (args.retry_up_to_secs > 0)
            .then(|| std::time::Duration::from_secs(args.retry_up_to_secs)),
        share_log: args.share_log,
        sv2_authority,
        sv2_standard: args.sv2_standard,
    };
    let result = proofpool_miner::run(config, stats.clone(), crate::pool::shutdown_signal()).await;
    println!(
        "hashes {} accepted {} rejected {} discarded {}",
        stats.hashes.load(Ordering::Relaxed),
        stats.accepted.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        stats.discarded.load(Ordering::Relaxed)
    );
    Ok(result?)
}
