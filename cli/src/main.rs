//! `proofpool`: one binary, one subcommand per job.
//!
//! `main` stays thin: it parses arguments, sets up logging and hands off to
//! the subcommand's module.

mod api;
mod audit;
mod config;
mod deploy;
mod devnet;
mod guardian;
mod key;
mod keygen;
mod miner;
mod params;
mod pool;
mod settle;
mod watch;

/// mimalloc rather than glibc's allocator: the share writer allocates each
/// row's bound values on its thread and sqlx's SQLite thread frees them, and
/// glibc's cross-thread frees took a tenth of that thread's time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// A Bitcoin mining pool whose accounting anyone can verify.
#[derive(Debug, Parser)]
#[command(name = "proofpool", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "PROOFPOOL_LOG_FORMAT")]
    log_format: LogFormat,
    /// A TOML config file; its section for the subcommand (`[pool]`,
    /// `[settle]`, `[api]`) supplies defaults for the subcommand's flags.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy the distributor (and a mock BTC token on local chains).
    Deploy(Box<deploy::Args>),
    /// Run the whole system on loopback: bitcoind, anvil, pool, settlement, API, miners.
    Devnet(devnet::Args),
    /// Run the Stratum V1 pool against bitcoind.
    Pool(Box<pool::Args>),
    /// Mine on a pool with the reference CPU miner.
    Miner(miner::Args),
    /// Close epochs, compute PPLNS, commit and finalize them on-chain.
    Settle(Box<settle::Args>),
    /// Recompute every committed epoch from the published data and compare with the chain.
    Audit(Box<audit::Args>),
    /// Show, announce or withdraw the pool's parameters pinned on the distributor.
    Params(params::Args),
    /// Audit every pending epoch while its challenge period runs and veto the failing ones.
    Guardian(Box<guardian::Args>),
    /// Serve the public HTTP API (stats, proofs, epoch files, metrics) and the web app.
    Api(Box<api::Args>),
    /// Check a config file, or print the example config or its reference.
    Config(config::Args),
    /// A miner's own check: proxy to the pool, record every accepted share, check them against the epoch files.
    Watch(watch::Args),
    /// Make the pool's Stratum V2 authority key pair (or show its public key).
    Keygen(keygen::Args),
}

fn main() -> eyre::Result<()> {
    let command = config::prepare(Cli::command());
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv = match config::expand(&command, raw.clone()) {
        Ok(argv) => argv,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eyre::bail!(
                "the config file has {} problem(s); nothing was started",
                problems.len()
            );
        }
    };
    let matches = command
        .clone()
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| e.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROOFPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Deploy(args) => deploy::run(*args).await,
            Command::Devnet(args) => devnet::run(args).await,
            Command::Pool(args) => {
                let reload = pool::Reload {
                    command: command.clone(),
                    argv: raw,
                    running: matches
                        .subcommand_matches("pool")
                        .cloned()
                        .unwrap_or_default(),
                };
                pool::run(*args, reload).await
            }
            Command::Miner(args) => miner::run(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::Keygen(args) => keygen::run(args),
            Command::Settle(args) => settle::run(*args).await,
            Command::Audit(args) => audit::run(*args).await,
            Command::Guardian(args) => guardian::run(*args).await,
            Command::Params(args) => params::run(args).await,
            Command::Api(args) => api::run(*args).await,
            Command::Config(args) => config::run(args, &command),
        }
    })
}
