//! The idle phase: connections that subscribe, authorize, get their job and
//! then say nothing, to measure what one costs the pool in memory.
//!
//! The pool gets a fresh process for this phase, so earlier phases' heap is
//! not reused and hidden. Its resident memory is read with no miner
//! connected, then after each step (say 10 000, then 100 000 connections)
//! once it has settled; the growth divided by the connections is the cost of
//! one. Kernel socket memory (`/proc/net/sockstat`, both ends, not in the
//! pool's RSS) is given alongside.
//!
//! One process may hold only `RLIMIT_NOFILE` sockets and one source address
//! only about 28 000 ports towards one server port, so connections come from
//! several loopback addresses. A step beyond one process's open-file limit
//! (which the pool, a child of this process, inherits) is spread the way an
//! operator would spread it, over several pool instances with their own
//! instance ids (DESIGN.md, "Scale-out"), each held by its own
//! `hold-idle` child of this binary; the figure is then the growth of all
//! the pools' resident memory together over all their connections.

use crate::drive;
use crate::pool::{PoolProcess, PoolSpec};
use crate::procfs::{self, Pid};
use crate::report::{IdlePoint, IdleResult};
use eyre::{WrapErr, bail, eyre};
use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long memory gets to settle after a step of many connections.
const SETTLE: Duration = Duration::from_secs(3);

/// File descriptors kept free for everything but the connections.
const FD_MARGIN: u64 = 512;

/// Ports one source address has towards one server port
/// (`ip_local_port_range` is 32768–60999 by default).
const PORTS_PER_SOURCE: usize = 28_000;

/// How many idle connections this machine allows.
#[derive(Debug, Clone)]
pub(crate) struct Room {
    /// The most any step may reach.
    pub(crate) limit: usize,
    /// Why that is below what was asked for, if it is.
    pub(crate) capped: Option<String>,
}

/// Raises the open-file limit for `max_idle` idle connections plus `busy`
/// others (the pool, started from here, inherits it) and works out how many
/// idle connections fit in it and in `sources` addresses' ports (or
/// `per_instance`, if lower).
pub(crate) fn room(max_idle: usize, busy: usize, sources: u8, per_instance: Option<usize>) -> Room {
    let want = (max_idle + busy) as u64 + FD_MARGIN;
    let (soft, hard) = procfs::raise_nofile(want);
    let fd_room = usize::try_from(soft.saturating_sub(FD_MARGIN)).unwrap_or(usize::MAX);
    let port_room = PORTS_PER_SOURCE * usize::from(sources);
    let limit = fd_room.min(port_room);
    if let Some(asked) = per_instance.filter(|&n| n > 0 && n < limit) {
        return Room {
            limit: asked,
            capped: (max_idle > asked).then(|| {
                format!(
                    "--idle-per-instance {asked}: a step beyond {asked} connections is spread over \
                     several pool instances (scale-out), each held by a `hold-idle` process"
                )
            }),
        };
    }
    let capped = (max_idle > limit).then(|| {
        if fd_room <= port_room {
            format!(
                "the open-file limit is {soft} (hard limit {hard}) for this process and each \
                 pool it starts, so a step beyond {limit} connections is spread over several pool \
                 instances (scale-out), each held by a `hold-idle` process; raising the hard limit \
                 takes CAP_SYS_RESOURCE (root outside a container, `prlimit --nofile`, or \
                 systemd's LimitNOFILE)"
            )
        } else {
            format!(
                "{sources} source addresses give about {port_room} ports towards one pool, so a \
                 step beyond {limit} connections is spread over several pool instances (or raise \
                 --source-ips)"
            )
        }
    });
    Room { limit, capped }
}

/// Opens `steps` (ascending totals) of idle connections, from `sources`
/// loopback addresses, up to `room.limit`.
pub(crate) async fn run(
    pool: &mut PoolProcess,
    steps: &[usize],
    sources: u8,
    room: &Room,
    scale_out: &ScaleOut<'_>,
) -> eyre::Result<IdleResult> {
    let limit = room.limit;
    let pid = pool.pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = procfs::rss_kib(Pid::Of(pid))?;
    let tcp_baseline = procfs::tcp_mem_pages().unwrap_or(0);
    let mut held: Vec<TcpStream> = Vec::new();
    let mut points = Vec::new();
    let mut errors = Vec::new();
    let mut capped = room.capped.clone();
    for &step in steps {
        if step > limit {
            match scaled_step(pool, &mut held, step, sources, limit, scale_out, baseline).await {
                Ok(point) => points.push(point),
                Err(e) => {
                    errors.push(format!("{e:#}"));
                    break;
                }
            }
            continue;
        }
        let target = step;
        if target <= held.len() {
            continue;
        }
        let add = target - held.len();
        eprintln!("[idle] opening {add} more connections (to {target})");
        let began = Instant::now();
        let (ready, errs) = drive::open(pool.stratum, add, held.len(), sources, "idle").await;
        let open_secs = began.elapsed().as_secs_f64();
        held.extend(ready.into_iter().map(|r| r.stream));
        errors.extend(errs.into_iter().take(5usize.saturating_sub(errors.len())));
        pool.check_alive()?;
        if held.len() < target {
            capped.get_or_insert_with(|| {
                format!("stopped at {} connections: handshakes failed", held.len())
            });
        }
        // The pool's writer commits the workers these connections authorized.
        let settle = if add >= 1000 { SETTLE } else { SETTLE / 6 };
        tokio::time::sleep(settle).await;
        let rss = procfs::rss_kib(Pid::Of(pid))?;
        let point = measured(held.len(), 1, (baseline, rss), tcp_baseline, open_secs);
        points.push(point);
        if held.len() < target {
            break;
        }
    }
    drop(held);
    Ok(IdleResult {
        requested: steps.to_vec(),
        capped,
        baseline_rss_kib: baseline,
        points,
        errors,
    })
}

/// What a step beyond one process needs to start more pool instances.
#[derive(Debug)]
pub(crate) struct ScaleOut<'a> {
    /// The first instance's spec; others differ in id, log and SQLite file.
    pub(crate) spec: &'a PoolSpec,
    /// Where their SQLite files and logs go.
    pub(crate) dir: &'a Path,
    /// Whether the instances share the PostgreSQL store (as in production)
    /// rather than each having a SQLite file.
    pub(crate) postgres: bool,
}

/// A `hold-idle` child: its connections stay open until its stdin closes.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Closing stdin lets it exit; it is killed if it does not.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One step of `step` connections over as many pool instances as the
/// per-process `limit` needs: the first pool (whose connections this process
/// holds) and new ones, each filled by a `hold-idle` child.
async fn scaled_step(
    first: &mut PoolProcess,
    held: &mut Vec<TcpStream>,
    step: usize,
    sources: u8,
    limit: usize,
    scale_out: &ScaleOut<'_>,
    first_baseline: u64,
) -> eyre::Result<IdlePoint> {
    let instances = step.div_ceil(limit);
    let share = step.div_ceil(instances);
    if instances > 200 {
        bail!("{step} connections would take {instances} pool instances; at most 200 are started");
    }
    eprintln!(
        "[idle] {step} connections: {instances} pool instances of up to {share} (per-process limit {limit})"
    );
    let mut pools = Vec::with_capacity(instances - 1);
    for k in 1..instances {
        let mut spec = scale_out.spec.clone();
        spec.instance_id = u8::try_from(k).wrap_err("too many instances")?;
        spec.log = scale_out.dir.join(format!("pool-{k}.log"));
        if !scale_out.postgres {
            spec.database_url = format!(
                "sqlite://{}",
                scale_out.dir.join(format!("shares-{k}.db")).display()
            );
        }
        pools.push(PoolProcess::start(&spec, false).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut baseline = first_baseline;
    for pool in &pools {
        baseline += procfs::rss_kib(Pid::Of(pool.pid()))?;
    }
    let tcp_baseline = procfs::tcp_mem_pages().unwrap_or(0);
    let began = Instant::now();
    // Every instance but the first is filled by a holder, all at once.
    let mut holders = Vec::with_capacity(pools.len());
    let mut opened = 0usize;
    // The first instance keeps what it already holds (earlier steps, never
    // more than `limit`); the rest is split evenly over the new ones.
    let first_share = held.len().max(share).min(step);
    let mut remaining = step - first_share;
    let per_new = remaining.div_ceil(pools.len().max(1));
    for (k, pool) in pools.iter().enumerate() {
        let count = per_new.min(remaining);
        remaining -= count;
        holders.push(spawn_holder(pool.stratum, count, (k + 1) * limit, sources)?);
    }
    // This process tops up its own (the first instance's) share meanwhile.
    if held.len() < first_share {
        let (ready, errs) = drive::open(
            first.stratum,
            first_share - held.len(),
            held.len(),
            sources,
            "idle",
        )
        .await;
        held.extend(ready.into_iter().map(|r| r.stream));
        if let Some(e) = errs.first() {
            bail!("the first instance's connections failed: {e}");
        }
    }
    opened += held.len();
    for h in &mut holders {
        opened += h.ready().await?;
    }
    let open_secs = began.elapsed().as_secs_f64();
    first.check_alive()?;
    for pool in &mut pools {
        pool.check_alive()?;
    }
    tokio::time::sleep(SETTLE).await;
    let mut rss = procfs::rss_kib(Pid::Of(first.pid()))?;
    for pool in &pools {
        rss += procfs::rss_kib(Pid::Of(pool.pid()))?;
    }
    let point = measured(opened, instances, (baseline, rss), tcp_baseline, open_secs);
    drop(holders);
    for pool in pools {
        pool.stop().await;
    }
    Ok(point)
}

/// Starts `hold-idle` for `count` connections to `stratum`.
fn spawn_holder(
    stratum: SocketAddr,
    count: usize,
    first: usize,
    sources: u8,
) -> eyre::Result<Holder> {
    let exe = std::env::current_exe().wrap_err("cannot find this binary to run hold-idle")?;
    let mut child = Command::new(exe)
        .arg("hold-idle")
        .args(["--stratum", &stratum.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--first", &first.to_string()])
        .args(["--sources", &sources.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .wrap_err("cannot start hold-idle")?;
    let stdin = child.stdin.take();
    Ok(Holder { child, stdin })
}

impl Holder {
    /// Waits (on a blocking thread) for the holder's report: how many
    /// connections it holds.
    async fn ready(&mut self) -> eyre::Result<usize> {
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| eyre!("hold-idle has no stdout"))?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await??;
        let mut words = line.split_whitespace();
        match (words.next(), words.next().and_then(|n| n.parse().ok())) {
            (Some("ready"), Some(n)) => Ok(n),
            _ => bail!("hold-idle failed: {}", line.trim()),
        }
    }
}

/// `proofpool-load hold-idle`: opens idle connections for the idle phase's
/// scale-out steps and holds them until stdin closes.
#[derive(Debug, clap::Parser)]
pub(crate) struct HoldArgs {
    #[arg(long)]
    stratum: SocketAddr,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    first: usize,
    #[arg(long)]
    sources: u8,
}

/// Runs `hold-idle`: prints `ready N` once N connections are open and
/// handshaken (or `failed: why`), then holds them until stdin closes.
pub(crate) fn hold(args: HoldArgs) -> eyre::Result<()> {
    if args.count > 1_000_000 {
        bail!("--count must be at most 1000000");
    }
    procfs::raise_nofile(args.count as u64 + FD_MARGIN);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready, errors) = runtime.block_on(drive::open(
        args.stratum,
        args.count,
        args.first,
        args.sources,
        "idle",
    ));
    let mut out = std::io::stdout().lock();
    if ready.len() < args.count {
        writeln!(
            out,
            "failed: {} of {} connections: {}",
            ready.len(),
            args.count,
            errors.first().map_or("", String::as_str)
        )?;
        return Ok(());
    }
    writeln!(out, "ready {}", ready.len())?;
    out.flush()?;
    drop(out);
    // Held until the parent closes stdin (or exits). Bounded by the parent's
    // lifetime: EOF arrives when it goes.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    drop(ready);
    Ok(())
}

/// One step's figures: `connections` held by `instances` pools whose resident
/// memory together went from `rss.0` to `rss.1` KiB.
fn measured(
    connections: usize,
    instances: usize,
    (baseline, rss): (u64, u64),
    tcp_baseline: u64,
    open_secs: f64,
) -> IdlePoint {
    let tcp = procfs::tcp_mem_pages().unwrap_or(0);
    let n = connections.max(1) as f64;
    let point = IdlePoint {
        connections,
        instances,
        pool_rss_kib: rss,
        pool_bytes_per_connection: rss.saturating_sub(baseline) as f64 * 1024.0 / n,
        kernel_tcp_bytes_per_connection: tcp.saturating_sub(tcp_baseline) as f64 * 4096.0 / n,
        open_secs,
    };
    eprintln!(
        "[idle] {connections} connections on {instances} pool instance(s): RSS {} MiB, {:.0} bytes per connection",
        rss / 1024,
        point.pool_bytes_per_connection
    );
    point
}
