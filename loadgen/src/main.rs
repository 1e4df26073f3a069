//! `proofpool-load`: a load benchmark of the pool, on loopback, against the
//! real components.
//!
//! One command starts everything it measures: a throwaway regtest bitcoind,
//! a store (a SQLite file, or with `--postgres` a throwaway PostgreSQL
//! cluster), and for each phase a fresh pool process (the real
//! `proofpool pool` with `--pool-bin`, else this binary's `serve-pool`,
//! which runs the same library behind the same flags; see [`pool`]). The
//! pool runs in its own process so its memory and CPU come straight from
//! `/proc/<pid>`.
//!
//! Data flow of a timed phase ([`drive`]): K connections run the full
//! handshake (subscribe, authorize, set_difficulty, notify); each
//! connection's shares are ground before the clock starts ([`hash`]: valid
//! at the lowest difficulty but not blocks, so no clean job ever voids the
//! ones in flight); then each connection writes pre-formatted
//! `mining.submit` lines and reads the replies ([`client`]), which the pool
//! sends only once the share is durable in the store. Phases:
//! - `throughput`: closed loop, `--window` submits in flight per connection:
//!   the most the pool sustains;
//! - `rate`: open loop at `--rate` submits per second: the latency at a
//!   fixed load.
//!
//!   A submit's latency in both runs from its write to its reply's arrival
//!   at the socket (the kernel's receive timestamp, `SO_TIMESTAMPNS`), as a
//!   miner on another host would see it; the time the load generator read
//!   it, on the same cores as the pool, is reported too (`p99 read`), and
//!   so is the pool's own `pool_submit_duration_seconds`;
//! - `idle`: `--idle` steps of connections that handshake and then sit,
//!   for the pool's memory per connection ([`idle`]);
//! - `notify`: `--notify-connections` listeners and one finder that submits
//!   blocks: from each block's submit to every listener's new job, by the
//!   kernel's receive timestamp with the load generator off the CPU during
//!   the fan-out, or (`--notify-clock read`) when read ([`notify`]).
//!
//! Every phase is bounded in time (`--warmup` + `--duration`, then at most
//! 10 s for the last replies; a notify round at most 30 s) and in count
//! (the shares ground; the idle steps; the blocks). Only loopback addresses
//! are used.

mod client;
mod drive;
mod hash;
mod idle;
mod notify;
mod pool;
mod procfs;
mod report;
mod sv2;

use clap::Parser;
use eyre::{WrapErr, bail};
use proofpool_devtools::{Bitcoind, Postgres, TempDir};
use std::path::PathBuf;
use std::time::Duration;

/// Which phases to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PhaseName {
    /// Closed loop: the highest sustained submit rate.
    Throughput,
    /// The throughput phase over Stratum V2 extended channels.
    ThroughputV2,
    /// Open loop at `--rate`: latency at a fixed load.
    Rate,
    /// Idle connections: memory per connection.
    Idle,
    /// Idle Stratum V2 connections (Noise state included): memory per
    /// connection.
    IdleV2,
    /// Listening connections: block found to every miner notified.
    Notify,
}

/// Load benchmark of the proofpool Stratum server against a real regtest
/// bitcoind and a real store, on loopback. Progress goes to stderr, the
/// summary table to stdout.
#[derive(Debug, Parser)]
#[command(name = "proofpool-load", version, about)]
struct Args {
    /// Store shares in a throwaway PostgreSQL cluster (default: a SQLite file
    /// under $TMPDIR).
    #[arg(long)]
    postgres: bool,
    /// Run this `proofpool` binary as the pool (e.g. target/release/proofpool);
    /// default: this binary's `serve-pool`, the same library and flags.
    #[arg(long)]
    pool_bin: Option<PathBuf>,
    /// Phases, in order. The rate phase comes first by default: it measures
    /// latency at a steady load, and right after a throughput phase the store
    /// is still settling that phase's writes (on PostgreSQL, p99 at 50k/s was
    /// 28-34 ms after one and 2.7-3.2 ms without).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rate,throughput,throughput-v2,notify,idle,idle-v2"
    )]
    phases: Vec<PhaseName>,
    /// Throughput phase: connections.
    #[arg(long, default_value_t = 128)]
    connections: usize,
    /// Throughput phase: submits in flight per connection.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Throughput phase: the highest submit rate to grind shares for (the
    /// phase's count bound); connections that run out are reported.
    #[arg(long, default_value_t = 300_000)]
    max_rate: u64,
    /// Rate phase: submits per second, all connections together.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Rate phase: connections.
    #[arg(long, default_value_t = 256)]
    rate_connections: usize,
    /// Rate phase: most submits in flight per connection; more are skipped
    /// and counted as behind schedule.
    #[arg(long, default_value_t = 1024)]
    rate_cap: usize,
    /// Seconds measured per timed phase.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Idle phase: connection totals to measure at, ascending.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    idle: Vec<usize>,
    /// Idle V2 phase: connections (each with an open extended channel).
    #[arg(long, default_value_t = 10_000)]
    idle_v2: usize,
    /// Notify phase: listening connections.
    #[arg(long, default_value_t = 10_000)]
    notify_connections: usize,
    /// Notify phase: blocks to find.
    #[arg(long, default_value_t = 5)]
    notify_blocks: usize,
    /// Notify phase: when a notify counts as arrived.
    #[arg(long, value_enum, default_value_t = notify::Clock::Kernel)]
    notify_clock: notify::Clock,
    /// Notify phase, kernel clock: milliseconds the load generator stays
    /// off the CPU after each block's submit, so that it does not compete
    /// with the pool's fan-out (miners are not on the pool's host).
    #[arg(long, default_value_t = 250)]
    notify_quiet_ms: u64,
    /// Idle phase: most connections on one pool instance; a bigger step is
    /// spread over several (default: what the open-file limit allows).
    #[arg(long)]
    idle_per_instance: Option<usize>,
    /// Idle phase: source addresses 127.0.0.1..=127.0.0.N to connect from.
    #[arg(long, default_value_t = 8)]
    source_ips: u8,
    /// The load generator's runtime threads (1 leaves the pool the most CPU).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn check(&self) -> eyre::Result<()> {
        if self.duration == 0 || self.duration > 600 || self.warmup > 60 {
            bail!("--duration must be 1..=600 s and --warmup at most 60 s");
        }
        if self.connections == 0 || self.connections > 10_000 {
            bail!("--connections must be 1..=10000");
        }
        if self.rate_connections == 0 || self.rate_connections > 10_000 {
            bail!("--rate-connections must be 1..=10000");
        }
        if self.window == 0 || self.window > 4096 || self.rate_cap == 0 || self.rate_cap > 65_536 {
            bail!("--window must be 1..=4096 and --rate-cap 1..=65536");
        }
        if self.max_rate == 0 || self.max_rate > 5_000_000 || self.rate > 5_000_000 {
            bail!("--max-rate must be 1..=5000000 and --rate at most 5000000");
        }
        if self.source_ips == 0 || self.source_ips > 254 {
            bail!("--source-ips must be 1..=254");
        }
        if self.idle.iter().any(|&n| n > 1_000_000) {
            bail!("--idle steps must be at most 1000000");
        }
        if self.idle_v2 == 0 || self.idle_v2 > 25_000 {
            bail!("--idle-v2 must be 1..=25000");
        }
        if self.notify_connections == 0 || self.notify_connections > 100_000 {
            bail!("--notify-connections must be 1..=100000");
        }
        if self.notify_blocks == 0 || self.notify_blocks > 100 {
            bail!("--notify-blocks must be 1..=100");
        }
        if self.notify_quiet_ms > 10_000 {
            bail!("--notify-quiet-ms must be at most 10000");
        }
        if self.threads == 0 || self.threads > 64 {
            bail!("--threads must be 1..=64");
        }
        Ok(())
    }

    fn seconds(&self) -> u64 {
        self.warmup + self.duration
    }
}

fn main() -> eyre::Result<()> {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "serve-pool")
    {
        return pool::serve(pool::ServeArgs::parse_from(std::env::args_os().skip(1)));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "hold-idle") {
        return idle::hold(idle::HoldArgs::parse_from(std::env::args_os().skip(1)));
    }
    let args = Args::parse();
    args.check()?;
    let max_idle = if args.phases.contains(&PhaseName::Idle) {
        args.idle.iter().copied().max().unwrap_or(0)
    } else {
        0
    };
    let idle_v2 = if args.phases.contains(&PhaseName::IdleV2) {
        args.idle_v2
    } else {
        0
    };
    let busy = args
        .connections
        .max(args.rate_connections)
        .max(idle_v2)
        .max(if args.phases.contains(&PhaseName::Notify) {
            args.notify_connections + 1
        } else {
            0
        });
    let room = idle::room(max_idle, busy, args.source_ips, args.idle_per_instance);
    if let Some(why) = &room.capped {
        eprintln!("note: {why}");
    }

    let dir = TempDir::new("load")?;
    eprintln!("starting a regtest bitcoind");
    let node = Bitcoind::start(&[]).wrap_err("bitcoind (`make setup` installs it)")?;
    let payout = bitcoin::Address::p2wsh(
        &bitcoin::ScriptBuf::from(vec![0x51]),
        bitcoin::Network::Regtest,
    )
    .to_string();
    // One block takes the node out of initial block download, so it serves
    // templates.
    node.cli(&["generatetoaddress", "1", &payout])?;
    let store = StoreSetup::start(args.postgres, &dir)?;
    let spec = pool::PoolSpec {
        binary: args.pool_bin.clone(),
        node_url: node.rpc_url(),
        cookie: node.cookie_path(),
        payout,
        database_url: store.url.clone(),
        max_connections: room.limit.min(max_idle) + busy + 1024,
        log: dir.path().join("pool.log"),
        instance_id: 0,
    };
    let mut report = report::Report {
        store: store.name.to_owned(),
        store_detail: store.detail.clone(),
        disk_fdatasync_us: store.probe_disk()?,
        writeback: report::writeback_settings(),
        pool: pool::describe(args.pool_bin.as_deref()),
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        loadgen_threads: args.threads,
        load: Vec::new(),
        idle: None,
        idle_v2: None,
        notify: None,
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let result = runtime.block_on(phases(&args, &spec, &store, room, &mut report));
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    }
    result
}

/// The store the pool writes to, and what to say about it.
struct StoreSetup {
    /// The throwaway cluster, stopped on drop.
    postgres: Option<Postgres>,
    url: String,
    name: &'static str,
    detail: String,
    /// A directory on the store's file system.
    dir: PathBuf,
}

impl StoreSetup {
    fn start(postgres: bool, dir: &TempDir) -> eyre::Result<Self> {
        if !postgres {
            return Ok(Self {
                postgres: None,
                url: dir.sqlite_url("shares.db"),
                name: "sqlite",
                detail: format!(
                    "SQLite WAL, synchronous=FULL (fsync per commit), file on {} at {}",
                    procfs::fs_type(dir.path()),
                    dir.path().display()
                ),
                dir: dir.path().to_path_buf(),
            });
        }
        eprintln!(
            "starting a throwaway PostgreSQL cluster (durable; WAL segments and shared buffers warmed first, about 35 s)"
        );
        // Durable, as the figures claim: the test clusters run without fsync.
        let pg = Postgres::start_durable()?;
        Ok(Self {
            url: pg.url(),
            name: "postgres",
            detail: format!(
                "PostgreSQL from {}, fsync on, synchronous_commit on, shared_buffers 2GB, wal_buffers 64MB, max_wal_size 8GB, checkpoint_timeout 15min, 2 GiB of WAL segments written beforehand for recycling and every shared buffer used by a scratch table written and dropped (as on a server in service), a checkpoint between phases; data on {}",
                pg.bin_dir().display(),
                procfs::fs_type(pg.data_dir())
            ),
            // Beside the cluster, not inside it: the same file system.
            dir: pg.data_dir().parent().unwrap_or(dir.path()).to_path_buf(),
            postgres: Some(pg),
        })
    }

    /// `fdatasync` latency where the store lives: the floor under a commit.
    fn probe_disk(&self) -> eyre::Result<report::Percentiles> {
        let h = procfs::fsync_probe(&self.dir, 100)
            .wrap_err_with(|| format!("cannot probe fdatasync in {}", self.dir.display()))?;
        Ok(report::Percentiles::of(&h))
    }

    /// Between two phases: PostgreSQL checkpoints, so that the next phase
    /// neither writes back the last one's changed pages (the kernel writes
    /// data files dirtied 30 s earlier, all at once) nor runs out of the
    /// recycled WAL segments (`Postgres::checkpoint`). SQLite needs nothing:
    /// the pool copies its WAL into the database file and syncs it as it
    /// goes, and at shutdown.
    fn between_phases(&self) -> eyre::Result<()> {
        if let Some(pg) = &self.postgres {
            eprintln!("checkpointing PostgreSQL before the next phase");
            pg.checkpoint()?;
        }
        Ok(())
    }

    /// PostgreSQL's postmaster (the first line of `postmaster.pid`), whose
    /// CPU counts with its backends'.
    fn server_pid(&self) -> Option<u32> {
        let pg = self.postgres.as_ref()?;
        std::fs::read_to_string(pg.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

async fn phases(
    args: &Args,
    spec: &pool::PoolSpec,
    store: &StoreSetup,
    room: idle::Room,
    report: &mut report::Report,
) -> eyre::Result<()> {
    let store_pid = store.server_pid();
    for (i, phase) in args.phases.iter().enumerate() {
        eprintln!("starting the pool for the {phase:?} phase: {}", report.pool);
        let v2 = matches!(phase, PhaseName::ThroughputV2 | PhaseName::IdleV2);
        let mut pool = pool::PoolProcess::start(spec, v2).await?;
        let result = match phase {
            PhaseName::Throughput | PhaseName::ThroughputV2 => {
                let per_conn = (args.max_rate * args.seconds()).div_ceil(args.connections as u64);
                let v2 = *phase == PhaseName::ThroughputV2;
                let phase = drive::Phase {
                    name: if v2 { "throughput-v2" } else { "throughput" }.to_owned(),
                    connections: args.connections,
                    mode: drive::Mode::Window(args.window),
                    warmup: Duration::from_secs(args.warmup),
                    duration: Duration::from_secs(args.duration),
                    shares_per_connection: usize::try_from(per_conn)? + args.window,
                    store_pid,
                    protocol: if v2 {
                        drive::Protocol::V2
                    } else {
                        drive::Protocol::V1
                    },
                };
                drive::run(&mut pool, &phase)
                    .await
                    .map(|r| report.load.push(r))
            }
            PhaseName::Rate => {
                // 2% over the schedule: the count bound never binds first.
                let total = args.rate * args.seconds() * 51 / 50;
                let phase = drive::Phase {
                    name: "rate".to_owned(),
                    connections: args.rate_connections,
                    mode: drive::Mode::Rate {
                        per_sec: args.rate as f64,
                        cap: args.rate_cap,
                    },
                    warmup: Duration::from_secs(args.warmup),
                    duration: Duration::from_secs(args.duration),
                    shares_per_connection: usize::try_from(
                        total.div_ceil(args.rate_connections as u64),
                    )? + 16,
                    store_pid,
                    protocol: drive::Protocol::V1,
                };
                drive::run(&mut pool, &phase)
                    .await
                    .map(|r| report.load.push(r))
            }
            PhaseName::Notify => notify::run(
                &pool,
                args.notify_connections,
                args.notify_blocks,
                args.source_ips,
                notify::Timing {
                    clock: args.notify_clock,
                    quiet: Duration::from_millis(args.notify_quiet_ms),
                },
            )
            .await
            .map(|r| report.notify = Some(r)),
            PhaseName::IdleV2 => sv2::idle(&pool, args.idle_v2, args.source_ips)
                .await
                .map(|r| report.idle_v2 = Some(r)),
            PhaseName::Idle => {
                let mut steps = args.idle.clone();
                steps.sort_unstable();
                let scale_out = idle::ScaleOut {
                    spec,
                    dir: &store.dir,
                    postgres: args.postgres,
                };
                idle::run(&mut pool, &steps, args.source_ips, &room, &scale_out)
                    .await
                    .map(|r| report.idle = Some(r))
            }
        };
        if let Err(e) = result {
            eprintln!("pool log:\n{}", pool.log_tail());
            pool.stop().await;
            return Err(e);
        }
        pool.stop().await;
        if i + 1 < args.phases.len() {
            store.between_phases()?;
        }
    }
    Ok(())
}
