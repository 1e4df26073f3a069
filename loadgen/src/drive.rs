//! The timed load phases.
//!
//! Both phases open their connections, run the handshake, grind every
//! connection's shares (before the clock starts), then run one task per
//! connection until the clock says stop, and wait (bounded) for the last
//! replies:
//! - [`Mode::Window`]: closed loop, up to `window` submits in flight per
//!   connection, refilled as replies arrive: the most the pool will take;
//! - [`Mode::Rate`]: open loop, each connection paced at its share of the
//!   total rate whatever the replies do, at most `cap` in flight.
//!
//! Latency is from the write that carried a submit to the read that carried
//! its reply, and counts replies read inside the measured window (after the
//! warm-up); submits and replies are counted the same way.

use crate::client::{self, FIRST_SUBMIT_ID, Lines, Ready, Reply, SubmitFormat};
use crate::hash::{Work, grind_all};
use crate::pool::PoolProcess;
use crate::procfs::{self, CpuSample, Pid};
use crate::report::{Buckets, LoadResult, Percentiles, PoolSubmit, StoreFigures, WireBytes};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long the last replies may take after sending stops.
const DRAIN: Duration = Duration::from_secs(10);
/// Connections handshaking at once.
const CONNECT_CONCURRENCY: usize = 128;
/// The longest one handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How submits are paced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Closed loop: this many submits in flight per connection.
    Window(usize),
    /// Open loop: this many submits per second in total, at most `cap` in
    /// flight per connection.
    Rate {
        /// Submits per second, all connections together.
        per_sec: f64,
        /// Most submits in flight on one connection.
        cap: usize,
    },
}

/// One phase's parameters.
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    /// The name in the report.
    pub(crate) name: String,
    /// Connections.
    pub(crate) connections: usize,
    /// Pacing.
    pub(crate) mode: Mode,
    /// Seconds of load before measuring starts.
    pub(crate) warmup: Duration,
    /// Seconds measured.
    pub(crate) duration: Duration,
    /// Shares ground per connection: the phase's count bound.
    pub(crate) shares_per_connection: usize,
    /// The store server's main process (PostgreSQL's postmaster), whose
    /// CPU is measured with its children's.
    pub(crate) store_pid: Option<u32>,
    /// What the connections speak (V2: closed loop only).
    pub(crate) protocol: Protocol,
}

/// Which protocol a phase speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Stratum V1: JSON lines.
    V1,
    /// Stratum V2: Noise-encrypted binary frames on extended channels.
    V2,
}

/// The phase's clock, shared by every connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) start: Instant,
    measure_from: Instant,
    pub(crate) stop_sending: Instant,
    pub(crate) give_up: Instant,
}

impl Clock {
    pub(crate) fn measuring(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.stop_sending
    }
}

/// Live totals for the once-a-second progress line.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) sent: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    /// The slowest reply since the last progress line, µs.
    pub(crate) slowest_us: AtomicU64,
}

/// What one connection saw.
#[derive(Debug)]
pub(crate) struct ConnStats {
    /// Submits sent in the measured window.
    pub(crate) sent: u64,
    /// Submits sent from the start of the load, warm-up and drain included.
    pub(crate) sent_all: u64,
    pub(crate) accepted: u64,
    pub(crate) rejected: BTreeMap<i64, (u64, String)>,
    /// Submit written to reply arrived (kernel receive timestamp).
    pub(crate) latency_us: Histogram<u64>,
    /// Submit written to reply read by this process.
    pub(crate) read_latency_us: Histogram<u64>,
    /// Replies read without a kernel timestamp (counted at read).
    pub(crate) unstamped: u64,
    pub(crate) unanswered: u64,
    pub(crate) exhausted: bool,
    behind: u64,
    pub(crate) clean_jobs: u64,
    pub(crate) error: Option<String>,
    /// Bytes written on the socket from the start of the load.
    pub(crate) bytes_written: u64,
    /// Bytes read from the socket from the start of the load.
    pub(crate) bytes_read: u64,
}

impl ConnStats {
    pub(crate) fn new() -> Self {
        Self {
            sent: 0,
            sent_all: 0,
            bytes_written: 0,
            bytes_read: 0,
            accepted: 0,
            rejected: BTreeMap::new(),
            latency_us: new_histogram(),
            read_latency_us: new_histogram(),
            unstamped: 0,
            unanswered: 0,
            exhausted: false,
            behind: 0,
            clean_jobs: 0,
            error: None,
        }
    }
}

/// Microseconds, 1 µs to 10 minutes, three significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("the bounds are valid")
}

/// One connection under load.
struct Driver {
    stream: TcpStream,
    lines: Lines,
    format: SubmitFormat,
    nonces: Vec<u32>,
    next_nonce: usize,
    next_id: u64,
    /// Per write: the last id it carried and when it was written, on the
    /// monotonic clock and on the wall clock the kernel stamps arrivals by.
    inflight: VecDeque<(u64, Instant, SystemTime)>,
    outstanding: usize,
    out: Vec<u8>,
    stats: ConnStats,
    live: Arc<Live>,
}

impl Driver {
    /// Formats up to `n` submits; returns how many.
    fn queue(&mut self, n: usize, now: Instant, clock: &Clock) -> usize {
        let left = self.nonces.len() - self.next_nonce;
        if n > left && now < clock.stop_sending {
            // The count bound ran out before the time bound.
            self.stats.exhausted = true;
        }
        let n = n.min(left);
        if n == 0 {
            return 0;
        }
        for _ in 0..n {
            self.format
                .push(&mut self.out, self.next_id, self.nonces[self.next_nonce]);
            self.next_id += 1;
            self.next_nonce += 1;
        }
        self.outstanding += n;
        self.inflight
            .push_back((self.next_id - 1, now, SystemTime::now()));
        if clock.measuring(now) {
            self.stats.sent += n as u64;
        }
        self.stats.sent_all += n as u64;
        self.live.sent.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    fn out_of_shares(&self) -> bool {
        self.next_nonce >= self.nonces.len()
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stats.bytes_written += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// Handles every complete line read so far: read at `now`, arrived at
    /// `stamp` (the kernel's receive timestamp of the last bytes read).
    fn drain(
        &mut self,
        now: Instant,
        stamp: Option<SystemTime>,
        clock: &Clock,
    ) -> Result<(), client::ClientError> {
        let mut slowest = 0;
        while let Some(range) = self.lines.pop() {
            let reply = client::classify(self.lines.get(range))?;
            let id = match reply {
                Reply::Accepted(id) | Reply::Rejected(id, ..) => id,
                Reply::Job(clean) => {
                    self.stats.clean_jobs += u64::from(clean);
                    continue;
                }
                Reply::Other => continue,
            };
            if id < FIRST_SUBMIT_ID || id >= self.next_id {
                continue;
            }
            while self.inflight.front().is_some_and(|&(last, ..)| last < id) {
                self.inflight.pop_front();
            }
            let (sent_at, sent_wall) = self
                .inflight
                .front()
                .map_or((now, None), |&(_, t, wall)| (t, Some(wall)));
            self.outstanding = self.outstanding.saturating_sub(1);
            let measuring = clock.measuring(now);
            match reply {
                Reply::Accepted(_) => {
                    self.live.accepted.fetch_add(1, Ordering::Relaxed);
                    if measuring {
                        self.stats.accepted += 1;
                    }
                }
                Reply::Rejected(_, code, message) => {
                    self.live.rejected.fetch_add(1, Ordering::Relaxed);
                    if measuring {
                        let entry = self.stats.rejected.entry(code).or_insert((0, message));
                        entry.0 += 1;
                    }
                }
                _ => {}
            }
            let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let read_us = micros(now.duration_since(sent_at));
            // A wall clock stepped back between the two readings leaves no
            // arrival time: the read time stands in.
            let arrived_us = match (stamp, sent_wall) {
                (Some(at), Some(wall)) => at.duration_since(wall).ok().map(micros),
                _ => None,
            };
            let us = arrived_us.unwrap_or(read_us);
            slowest = slowest.max(us);
            if measuring {
                self.stats.latency_us.saturating_record(us.max(1));
                self.stats.read_latency_us.saturating_record(read_us.max(1));
                self.stats.unstamped += u64::from(arrived_us.is_none());
            }
        }
        if slowest > 0 {
            self.live.slowest_us.fetch_max(slowest, Ordering::Relaxed);
        }
        Ok(())
    }

    fn fail(mut self, e: impl std::fmt::Display) -> ConnStats {
        self.stats.error = Some(e.to_string());
        self.stats.unanswered += self.outstanding as u64;
        self.stats
    }

    fn finish(mut self) -> ConnStats {
        self.stats.unanswered += self.outstanding as u64;
        self.stats
    }

    /// Closed loop: keep `window` submits in flight until the clock stops.
    async fn window(mut self, window: usize, clock: Clock) -> ConnStats {
        let give_up = tokio::time::sleep_until(clock.give_up.into());
        tokio::pin!(give_up);
        tokio::time::sleep_until(clock.start.into()).await;
        self.queue(window, Instant::now(), &clock);
        if let Err(e) = self.flush().await {
            return self.fail(e);
        }
        loop {
            if self.outstanding == 0
                && (Instant::now() >= clock.stop_sending || self.out_of_shares())
            {
                return self.finish();
            }
            let stamp = tokio::select! {
                read = self.lines.fill_stamped(&self.stream) => match read {
                    Ok((0, _)) => return self.fail("the pool closed the connection"),
                    Ok((n, stamp)) => {
                        self.stats.bytes_read += n as u64;
                        stamp
                    }
                    Err(e) => return self.fail(e),
                },
                () = &mut give_up => return self.finish(),
            };
            let now = Instant::now();
            if let Err(e) = self.drain(now, stamp, &clock) {
                return self.fail(e);
            }
            if now < clock.stop_sending && self.outstanding < window {
                self.queue(window - self.outstanding, now, &clock);
                if let Err(e) = self.flush().await {
                    return self.fail(e);
                }
            }
        }
    }

    /// Open loop: submit at `per_sec`, starting `offset` after the start.
    async fn paced(
        mut self,
        per_sec: f64,
        offset: Duration,
        cap: usize,
        clock: Clock,
    ) -> ConnStats {
        let give_up = tokio::time::sleep_until(clock.give_up.into());
        tokio::pin!(give_up);
        let first = clock.start + offset;
        let next = tokio::time::sleep_until(first.into());
        tokio::pin!(next);
        let mut scheduled: u64 = 0;
        let mut sending = per_sec > 0.0;
        loop {
            if !sending && self.outstanding == 0 {
                return self.finish();
            }
            tokio::select! {
                read = self.lines.fill_stamped(&self.stream) => match read {
                    Ok((0, _)) => return self.fail("the pool closed the connection"),
                    Ok((n, stamp)) => {
                        self.stats.bytes_read += n as u64;
                        if let Err(e) = self.drain(Instant::now(), stamp, &clock) {
                            return self.fail(e);
                        }
                    }
                    Err(e) => return self.fail(e),
                },
                () = &mut next, if sending => {
                    let now = Instant::now();
                    // Shares due by now: one at `first`, then one every 1/per_sec.
                    let due = (now.duration_since(first).as_secs_f64() * per_sec) as u64 + 1;
                    let want = due.saturating_sub(scheduled);
                    scheduled = due;
                    let room = cap.saturating_sub(self.outstanding) as u64;
                    let sent = self.queue(usize::try_from(want.min(room)).unwrap_or(0), now, &clock) as u64;
                    if clock.measuring(now) {
                        self.stats.behind += want - sent;
                    }
                    if let Err(e) = self.flush().await {
                        return self.fail(e);
                    }
                    let at = first + Duration::from_secs_f64(due as f64 / per_sec);
                    if at >= clock.stop_sending || self.out_of_shares() {
                        sending = false;
                    } else {
                        next.as_mut().reset(at.into());
                    }
                }
                () = &mut give_up => return self.finish(),
            }
        }
    }
}

/// Opens `count` connections as workers `{prefix}{i}`, `concurrency` at a
/// time, spreading their source addresses over `127.0.0.1 ..= 127.0.0.{sources}`.
pub(crate) async fn open(
    pool: std::net::SocketAddr,
    count: usize,
    first: usize,
    sources: u8,
    prefix: &str,
) -> (Vec<Ready>, Vec<String>) {
    open_with(count, first, sources, |source, i| {
        let worker = format!("{prefix}{i}");
        async move {
            client::connect(pool, source, worker, HANDSHAKE_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

/// [`open`] over Stratum V2: each connection opens one extended channel as
/// `{MINER}.{prefix}{i}`.
pub(crate) async fn open_v2(
    pool: std::net::SocketAddr,
    authority: [u8; 32],
    count: usize,
    first: usize,
    sources: u8,
    prefix: &str,
) -> (Vec<crate::sv2::ReadyV2>, Vec<String>) {
    open_with(count, first, sources, |source, i| {
        let user = format!("{}.{prefix}{i}", client::MINER);
        crate::sv2::connect(pool, authority, source, user, HANDSHAKE_TIMEOUT)
    })
    .await
}

/// Runs `connect(source, i)` for connections `first..first + count`,
/// [`CONNECT_CONCURRENCY`] at a time, each from `127.0.0.{1 + i % sources}`;
/// stops trying after 100 errors.
async fn open_with<T, F, Fut>(
    count: usize,
    first: usize,
    sources: u8,
    connect: F,
) -> (Vec<T>, Vec<String>)
where
    T: Send + 'static,
    F: Fn(IpAddr, usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let mut ready = Vec::with_capacity(count);
    let mut errors = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < count || !tasks.is_empty() {
        while next < count && tasks.len() < CONNECT_CONCURRENCY {
            let i = first + next;
            let source = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (i % usize::from(sources.max(1))) as u8,
            ));
            tasks.spawn(connect(source, i));
            next += 1;
        }
        match tasks.join_next().await {
            Some(Ok(Ok(r))) => ready.push(r),
            Some(Ok(Err(e))) => errors.push(e),
            Some(Err(e)) => errors.push(format!("connect task failed: {e}")),
            None => break,
        }
        if errors.len() > 100 {
            // Something is wrong with every connection; stop trying.
            tasks.abort_all();
            break;
        }
    }
    (ready, errors)
}

/// Connections with their shares ground, ready to start.
enum Loaded {
    V1(Vec<(Ready, Work, Vec<u32>)>),
    V2(Vec<(crate::sv2::ReadyV2, Work, Vec<u32>)>),
}

/// Opens the phase's connections and grinds their shares (before the clock
/// starts). Returns them with the seconds the grinding took and the shares.
async fn load(pool: &PoolProcess, phase: &Phase) -> eyre::Result<(Loaded, f64, usize)> {
    eprintln!(
        "[{}] opening {} {:?} connections",
        phase.name, phase.connections, phase.protocol
    );
    let counts = vec![phase.shares_per_connection; phase.connections];
    let grind = |works: Vec<Work>| async move {
        let ground = Instant::now();
        let (works, nonces) = tokio::task::spawn_blocking(move || {
            let nonces = grind_all(&works, &counts);
            (works, nonces)
        })
        .await?;
        eyre::Ok((works, nonces, ground.elapsed().as_secs_f64()))
    };
    let too_few = |ready: usize, errors: &[String]| {
        eyre::eyre!(
            "only {ready} of {} connections completed the handshake; first error: {}",
            phase.connections,
            errors.first().map_or("none", String::as_str)
        )
    };
    let (loaded, secs) = match phase.protocol {
        Protocol::V1 => {
            let (ready, errors) = open(pool.stratum, phase.connections, 0, 1, "load").await;
            if ready.len() < phase.connections {
                return Err(too_few(ready.len(), &errors));
            }
            let works = ready
                .iter()
                .map(|r| {
                    Work::new(
                        &r.job,
                        &r.extranonce1,
                        vec![0; r.extranonce2_size],
                        r.share_target,
                    )
                })
                .collect();
            let (works, nonces, secs) = grind(works).await?;
            let all = ready.into_iter().zip(works).zip(nonces);
            (Loaded::V1(all.map(|((r, w), n)| (r, w, n)).collect()), secs)
        }
        Protocol::V2 => {
            let (ready, errors) =
                open_v2(pool.sv2, pool.authority, phase.connections, 0, 1, "load").await;
            if ready.len() < phase.connections {
                return Err(too_few(ready.len(), &errors));
            }
            let works = ready
                .iter()
                .map(|r| {
                    Work::new(
                        &r.job,
                        &r.extranonce_prefix,
                        vec![0; r.extranonce_size],
                        r.target,
                    )
                })
                .collect();
            let (works, nonces, secs) = grind(works).await?;
            let all = ready.into_iter().zip(works).zip(nonces);
            (Loaded::V2(all.map(|((r, w), n)| (r, w, n)).collect()), secs)
        }
    };
    let shares = match &loaded {
        Loaded::V1(c) => c.iter().map(|(_, _, n)| n.len()).sum(),
        Loaded::V2(c) => c.iter().map(|(_, _, n)| n.len()).sum(),
    };
    eprintln!(
        "[{}] ground {shares} non-block shares in {secs:.2} s",
        phase.name
    );
    Ok((loaded, secs, shares))
}

/// Runs one load phase against `pool`.
pub(crate) async fn run(pool: &mut PoolProcess, phase: &Phase) -> eyre::Result<LoadResult> {
    let (loaded, precompute_secs, shares) = load(pool, phase).await?;
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + phase.warmup;
    let stop_sending = measure_from + phase.duration;
    let clock = Clock {
        start,
        measure_from,
        stop_sending,
        give_up: stop_sending + DRAIN,
    };
    let live = Arc::new(Live::default());
    let mut tasks = tokio::task::JoinSet::new();
    let k = match loaded {
        Loaded::V1(connections) => {
            let k = connections.len();
            for (i, (r, work, nonces)) in connections.into_iter().enumerate() {
                // Latency runs to the reply's arrival at the socket, as a
                // miner on another host would see it; the read time is kept
                // as well.
                client::stamp_arrivals(&r.stream)
                    .map_err(|e| eyre::eyre!("cannot ask for receive timestamps: {e}"))?;
                let driver = Driver {
                    format: SubmitFormat::new(
                        &r.worker,
                        &work.job_id,
                        &work.extranonce2,
                        work.ntime,
                    ),
                    stream: r.stream,
                    lines: r.lines,
                    nonces,
                    next_nonce: 0,
                    next_id: FIRST_SUBMIT_ID,
                    inflight: VecDeque::new(),
                    outstanding: 0,
                    out: Vec::with_capacity(4096),
                    stats: ConnStats::new(),
                    live: live.clone(),
                };
                match phase.mode {
                    Mode::Window(w) => tasks.spawn(driver.window(w.max(1), clock)),
                    Mode::Rate { per_sec, cap } => {
                        let each = per_sec / k as f64;
                        // Spread the connections' first sends over one interval.
                        let offset = Duration::from_secs_f64(i as f64 / k as f64 / each.max(1e-9));
                        tasks.spawn(driver.paced(each, offset, cap.max(1), clock))
                    }
                };
            }
            k
        }
        Loaded::V2(connections) => {
            let Mode::Window(w) = phase.mode else {
                eyre::bail!("Stratum V2 phases run a closed loop (a window) only");
            };
            let k = connections.len();
            for (r, work, nonces) in connections {
                let driver = crate::sv2::DriverV2::new(r, work.extranonce2, nonces, live.clone())
                    .map_err(|e| eyre::eyre!(e))?;
                tasks.spawn(driver.window(w.max(1), clock));
            }
            k
        }
    };

    // Samples at the window's edges, and a progress line every second.
    let pid = pool.pid();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from = CpuSample::take(pid, phase.store_pid);
    let metrics_from = pool.scrape().await.unwrap_or_default();
    let mut per_second = Vec::new();
    let mut last = (
        live.sent.load(Ordering::Relaxed),
        live.accepted.load(Ordering::Relaxed),
    );
    let mut last_at = Instant::now();
    let mut peak_rss = 0;
    let mut tick = 1u64;
    while last_at < stop_sending {
        let at = (measure_from + Duration::from_secs(tick)).min(stop_sending);
        tick += 1;
        tokio::time::sleep_until(at.into()).await;
        let now = Instant::now();
        let secs = now.duration_since(last_at).as_secs_f64().max(1e-9);
        let now_counts = (
            live.sent.load(Ordering::Relaxed),
            live.accepted.load(Ordering::Relaxed),
        );
        let accepted_rate = (now_counts.1 - last.1) as f64 / secs;
        let rss = procfs::rss_kib(Pid::Of(pid)).unwrap_or(0);
        peak_rss = peak_rss.max(rss);
        if secs > 0.5 {
            per_second.push(accepted_rate);
        }
        eprintln!(
            "[{}] t={:>5.1}s submitted {:>8.0}/s accepted {:>8.0}/s rejected {} slowest reply {:.1} ms pool RSS {} MiB",
            phase.name,
            now.duration_since(measure_from).as_secs_f64(),
            (now_counts.0 - last.0) as f64 / secs,
            accepted_rate,
            live.rejected.load(Ordering::Relaxed),
            live.slowest_us.swap(0, Ordering::Relaxed) as f64 / 1000.0,
            rss / 1024,
        );
        last = now_counts;
        last_at = now;
    }
    let cpu_to = CpuSample::take(pid, phase.store_pid);
    let metrics_to = pool.scrape().await.unwrap_or_default();
    let cpu = cpu_from.until(&cpu_to);

    let mut merged = ConnStats::new();
    let mut errors: Vec<String> = Vec::new();
    let mut exhausted = 0;
    while let Some(done) = tasks.join_next().await {
        let s = match done {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("connection task failed: {e}"));
                continue;
            }
        };
        merged.sent += s.sent;
        merged.sent_all += s.sent_all;
        merged.bytes_written += s.bytes_written;
        merged.bytes_read += s.bytes_read;
        merged.accepted += s.accepted;
        for (code, (n, message)) in s.rejected {
            merged.rejected.entry(code).or_insert((0, message)).0 += n;
        }
        for (into, from) in [
            (&mut merged.latency_us, &s.latency_us),
            (&mut merged.read_latency_us, &s.read_latency_us),
        ] {
            into.add(from)
                .map_err(|e| eyre::eyre!("histogram merge: {e}"))?;
        }
        merged.unstamped += s.unstamped;
        merged.unanswered += s.unanswered;
        merged.behind += s.behind;
        merged.clean_jobs += s.clean_jobs;
        exhausted += usize::from(s.exhausted);
        if let Some(e) = s.error
            && errors.len() < 5
        {
            errors.push(e);
        }
    }
    pool.check_alive()?;
    let secs = phase.duration.as_secs_f64();
    per_second.sort_by(f64::total_cmp);
    Ok(LoadResult {
        phase: phase.name.clone(),
        connections: k,
        window: match phase.mode {
            Mode::Window(w) => Some(w),
            Mode::Rate { .. } => None,
        },
        target_rate: match phase.mode {
            Mode::Rate { per_sec, .. } => Some(per_sec),
            Mode::Window(_) => None,
        },
        seconds: secs,
        precompute_secs,
        shares_precomputed: shares,
        submitted_per_sec: merged.sent as f64 / secs,
        accepted_per_sec: merged.accepted as f64 / secs,
        slowest_second_accepted: per_second.first().copied().unwrap_or(0.0),
        fastest_second_accepted: per_second.last().copied().unwrap_or(0.0),
        rejected: merged
            .rejected
            .iter()
            .map(|(code, (n, message))| (format!("{code} {message}"), *n))
            .collect(),
        latency_us: Percentiles::of(&merged.latency_us),
        read_latency_us: Percentiles::of(&merged.read_latency_us),
        unstamped: merged.unstamped,
        pool_submit: Buckets::between(&metrics_from, &metrics_to, "pool_submit_duration_seconds")
            .map(|b| PoolSubmit::of(&b)),
        cpu,
        pool_rss_kib_end: procfs::rss_kib(Pid::Of(pid)).unwrap_or(0),
        pool_rss_kib_peak: procfs::peak_rss_kib(Pid::Of(pid))
            .unwrap_or(0)
            .max(peak_rss),
        store: StoreFigures::between(
            &metrics_from,
            &metrics_to,
            cpu_to.at().duration_since(cpu_from.at()).as_secs_f64(),
        ),
        connections_out_of_shares: exhausted,
        unanswered: merged.unanswered,
        behind_schedule: merged.behind,
        clean_jobs: merged.clean_jobs,
        wire_bytes_per_share: WireBytes::per_share(
            merged.bytes_written,
            merged.bytes_read,
            merged.sent_all,
        ),
        errors,
    })
}
