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
//! several loopback addresses and steps are capped below the limit (which
//! the pool, a child of this process, inherits).

use crate::drive;
use crate::pool::PoolProcess;
use crate::procfs::{self, Pid};
use crate::report::{IdlePoint, IdleResult};
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
/// idle connections fit in it and in `sources` addresses' ports.
pub(crate) fn room(max_idle: usize, busy: usize, sources: u8) -> Room {
    let want = (max_idle + busy) as u64 + FD_MARGIN;
    let (soft, hard) = procfs::raise_nofile(want);
    let fd_room = usize::try_from(soft.saturating_sub(FD_MARGIN)).unwrap_or(usize::MAX);
    let port_room = PORTS_PER_SOURCE * usize::from(sources);
    let limit = fd_room.min(port_room);
    let capped = (max_idle > limit).then(|| {
        if fd_room <= port_room {
            format!(
                "asked for {max_idle} idle connections, but the open-file limit is {soft} \
                 (hard limit {hard}) for this process and the pool it starts, so steps stop at \
                 {limit}; raising the hard limit takes CAP_SYS_RESOURCE (root outside a \
                 container, `prlimit --nofile`, or systemd's LimitNOFILE)"
            )
        } else {
            format!(
                "asked for {max_idle} idle connections, but {sources} source addresses give \
                 about {port_room} ports: raise --source-ips"
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
        let target = step.min(limit);
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
        let tcp = procfs::tcp_mem_pages().unwrap_or(0);
        let n = held.len().max(1) as f64;
        let point = IdlePoint {
            connections: held.len(),
            pool_rss_kib: rss,
            pool_bytes_per_connection: rss.saturating_sub(baseline) as f64 * 1024.0 / n,
            kernel_tcp_bytes_per_connection: tcp.saturating_sub(tcp_baseline) as f64 * 4096.0 / n,
            open_secs,
        };
        eprintln!(
            "[idle] {} connections: pool RSS {} MiB, {:.0} bytes per connection",
            point.connections,
            rss / 1024,
            point.pool_bytes_per_connection
        );
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
