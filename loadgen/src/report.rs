//! The figures, as JSON (`--json`) and as a table on stdout.

use crate::procfs::CpuUse;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Appends one formatted line to a `String`.
macro_rules! push_line {
    ($s:expr, $($arg:tt)*) => {{
        $s.push_str(&format!($($arg)*));
        $s.push('\n');
    }};
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Percentiles {
    /// Replies measured.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50: u64,
    /// 90th percentile.
    pub(crate) p90: u64,
    /// 99th percentile.
    pub(crate) p99: u64,
    /// 99.9th percentile.
    pub(crate) p999: u64,
    /// The slowest.
    pub(crate) max: u64,
    /// The mean.
    pub(crate) mean: f64,
}

impl Percentiles {
    /// Reads them off a histogram.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The share writer's figures over the measured window, from the pool's
/// `/metrics` before and after.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct StoreFigures {
    /// Transactions committed per second.
    pub(crate) commits_per_sec: f64,
    /// Shares committed per second.
    pub(crate) shares_per_sec: f64,
    /// Mean shares per transaction.
    pub(crate) mean_batch: f64,
    /// Mean commit time over the last second sampled (the pool's gauge), ms.
    pub(crate) commit_ms_last_second: f64,
    /// Longest commit since the pool started, ms.
    pub(crate) commit_ms_max: f64,
    /// Shares waiting for the writer at the end.
    pub(crate) queue_depth_end: f64,
}

impl StoreFigures {
    /// From two scrapes `secs` apart.
    pub(crate) fn between(
        from: &HashMap<String, f64>,
        to: &HashMap<String, f64>,
        secs: f64,
    ) -> Self {
        let delta = |name: &str| {
            to.get(name).copied().unwrap_or(0.0) - from.get(name).copied().unwrap_or(0.0)
        };
        let commits = delta("pool_store_commits_total");
        let shares = delta("pool_store_shares_committed_total");
        let secs = secs.max(1e-9);
        Self {
            commits_per_sec: commits / secs,
            shares_per_sec: shares / secs,
            mean_batch: if commits > 0.0 { shares / commits } else { 0.0 },
            commit_ms_last_second: to.get("pool_store_commit_seconds").copied().unwrap_or(0.0)
                * 1000.0,
            commit_ms_max: to
                .get("pool_store_commit_seconds_max")
                .copied()
                .unwrap_or(0.0)
                * 1000.0,
            queue_depth_end: to.get("pool_store_queue_depth").copied().unwrap_or(0.0),
        }
    }
}

/// One timed load phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadResult {
    /// `throughput` or `rate`.
    pub(crate) phase: String,
    /// Connections.
    pub(crate) connections: usize,
    /// Submits in flight per connection (closed loop).
    pub(crate) window: Option<usize>,
    /// Submits per second asked for (open loop).
    pub(crate) target_rate: Option<f64>,
    /// Seconds measured.
    pub(crate) seconds: f64,
    /// Seconds spent grinding shares before the clock started.
    pub(crate) precompute_secs: f64,
    /// Shares ground.
    pub(crate) shares_precomputed: usize,
    /// Submits written per second.
    pub(crate) submitted_per_sec: f64,
    /// Accepted replies read per second.
    pub(crate) accepted_per_sec: f64,
    /// The slowest whole second, accepted replies.
    pub(crate) slowest_second_accepted: f64,
    /// The fastest whole second, accepted replies.
    pub(crate) fastest_second_accepted: f64,
    /// Rejections by code and message.
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Submit latency: from the submit's write to its reply's arrival at
    /// the socket (the kernel's receive timestamp), as a miner on another
    /// host sees it.
    pub(crate) latency_us: Percentiles,
    /// Submit latency to when the load generator read the reply: an upper
    /// bound, since it reads on the same cores the pool runs on.
    pub(crate) read_latency_us: Percentiles,
    /// Replies without a kernel timestamp (their read time counts).
    pub(crate) unstamped: u64,
    /// The pool's own view, from `pool_submit_duration_seconds`.
    pub(crate) pool_submit: Option<PoolSubmit>,
    /// CPU use over the window, cores.
    pub(crate) cpu: CpuUse,
    /// The pool's resident memory at the end, KiB.
    pub(crate) pool_rss_kib_end: u64,
    /// The pool's largest resident memory since it started (`VmHWM`), KiB.
    pub(crate) pool_rss_kib_peak: u64,
    /// The share writer.
    pub(crate) store: StoreFigures,
    /// Connections that used up their shares before the time was up.
    pub(crate) connections_out_of_shares: usize,
    /// Submits never answered.
    pub(crate) unanswered: u64,
    /// Open loop: submits skipped because a connection had `cap` in flight.
    pub(crate) behind_schedule: u64,
    /// Clean jobs seen (they make shares in flight stale).
    pub(crate) clean_jobs: u64,
    /// Bytes on the wire per share submitted, both directions, from the
    /// start of the load to its end (the handshakes' bytes not counted).
    pub(crate) wire_bytes_per_share: Option<WireBytes>,
    /// The first connection errors.
    pub(crate) errors: Vec<String>,
}

/// Bytes on the wire per share: what the miner writes (the submit) and
/// reads (its share of the replies), TCP payload only.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct WireBytes {
    /// Miner to pool.
    pub(crate) up: f64,
    /// Pool to miner.
    pub(crate) down: f64,
}

impl WireBytes {
    /// `written` and `read` bytes over `shares` submits (`None` for none).
    pub(crate) fn per_share(written: u64, read: u64, shares: u64) -> Option<Self> {
        (shares > 0).then(|| Self {
            up: written as f64 / shares as f64,
            down: read as f64 / shares as f64,
        })
    }
}

/// The notify phase: block found to every miner holding the new job.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NotifyResult {
    /// Listening connections.
    pub(crate) connections: usize,
    /// Blocks found.
    pub(crate) blocks: usize,
    /// When a notify counted as arrived.
    pub(crate) clock: crate::notify::Clock,
    /// Kernel clock: the load generator's quiet window after each submit.
    pub(crate) quiet_ms: f64,
    /// Kernel clock: notifies read without a kernel timestamp (counted
    /// when read).
    pub(crate) unstamped: usize,
    /// From the block's submit to each listener's clean notify, all rounds.
    pub(crate) latency_us: Percentiles,
    /// Per block: to the first listener, ms.
    pub(crate) first_ms: Vec<f64>,
    /// Per block: to the last listener, ms.
    pub(crate) last_ms: Vec<f64>,
    /// Listener notifies that did not arrive within a round's limit.
    pub(crate) missing: usize,
    /// The pool's own view, from `pool_job_fanout_seconds`.
    pub(crate) pool_fanout: Option<Fanout>,
    /// CPU time per notify over the rounds.
    pub(crate) cpu: NotifyCpu,
}

/// CPU time spent per notify delivered, over all rounds (so it includes
/// finding, submitting and announcing the blocks, which is small beside
/// thousands of notifies). On loopback the pool's share includes the
/// kernel's receive-side TCP work for each listener, which runs in the
/// sender's context; the load generator's is reading the notifies.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct NotifyCpu {
    /// The pool process, microseconds per notify.
    pub(crate) pool_us: f64,
    /// The load generator, microseconds per notify.
    pub(crate) loadgen_us: f64,
    /// The machine's cores.
    pub(crate) cores: f64,
}

impl NotifyCpu {
    /// From two samples around `notifies` notifies.
    pub(crate) fn per_notify(
        from: &crate::procfs::CpuSample,
        to: &crate::procfs::CpuSample,
        notifies: usize,
    ) -> Self {
        let used = from.until(to);
        let secs = to.at().duration_since(from.at()).as_secs_f64();
        let us = |cores: f64| cores * secs * 1e6 / notifies.max(1) as f64;
        Self {
            pool_us: us(used.pool),
            loadgen_us: us(used.loadgen),
            cores: used.cores,
        }
    }

    /// The shortest a fan-out to `connections` can take with this much CPU
    /// per notify on every core, ms: the pool's, plus the load generator's
    /// if it reads while the pool writes (`with_loadgen`).
    pub(crate) fn floor_ms(&self, connections: usize, with_loadgen: bool) -> f64 {
        let us = self.pool_us + if with_loadgen { self.loadgen_us } else { 0.0 };
        connections as f64 * us / self.cores.max(1.0) / 1000.0
    }
}

/// A Prometheus histogram read out of `/metrics` scrapes: cumulative counts
/// by upper bound, seconds.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    count: f64,
    /// `(le, cumulative count)`, ascending.
    cumulative: Vec<(f64, f64)>,
}

impl Buckets {
    /// Histogram `name` in one scrape; `None` if it has no observations.
    pub(crate) fn from_metrics(m: &HashMap<String, f64>, name: &str) -> Option<Self> {
        let count = *m.get(&format!("{name}_count"))?;
        let prefix = format!("{name}_bucket{{le=\"");
        let mut cumulative: Vec<(f64, f64)> = m
            .iter()
            .filter_map(|(k, v)| {
                let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                Some((le.parse::<f64>().ok()?, *v))
            })
            .collect();
        cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
        (count > 0.0).then_some(Self { count, cumulative })
    }

    /// Histogram `name`'s observations between two scrapes.
    pub(crate) fn between(
        from: &HashMap<String, f64>,
        to: &HashMap<String, f64>,
        name: &str,
    ) -> Option<Self> {
        let mut to = Self::from_metrics(to, name)?;
        if let Some(from) = Self::from_metrics(from, name) {
            to.count -= from.count;
            for (le, c) in &mut to.cumulative {
                if let Some((_, before)) = from.cumulative.iter().find(|(l, _)| l == le) {
                    *c -= before;
                }
            }
        }
        (to.count > 0.0).then_some(to)
    }

    /// Observations.
    pub(crate) fn count(&self) -> f64 {
        self.count
    }

    /// The smallest bucket bound holding quantile `q`, ms (infinite past
    /// the last bound).
    pub(crate) fn quantile_le_ms(&self, q: f64) -> f64 {
        self.cumulative
            .iter()
            .find(|(_, cumulative)| *cumulative >= q * self.count)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    }

    /// The share of observations at most `le` seconds (a bucket bound;
    /// NaN if it is none).
    pub(crate) fn within(&self, le: f64) -> f64 {
        self.cumulative
            .iter()
            .find(|(l, _)| (*l - le).abs() < 1e-12)
            .map_or(f64::NAN, |(_, c)| c / self.count)
    }
}

/// `pool_submit_duration_seconds` over the measured window: from the pool
/// reading an accepted submit to its reply being queued, durable commit
/// included. Quantiles are bucket upper bounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PoolSubmit {
    /// Accepted submits observed.
    pub(crate) count: f64,
    /// Upper bound of the median, ms.
    pub(crate) p50_le_ms: f64,
    /// Upper bound of the 0.99 quantile, ms.
    pub(crate) p99_le_ms: f64,
    /// Share answered within 5 ms.
    pub(crate) within_5ms: f64,
}

impl PoolSubmit {
    pub(crate) fn of(b: &Buckets) -> Self {
        Self {
            count: b.count(),
            p50_le_ms: b.quantile_le_ms(0.5),
            p99_le_ms: b.quantile_le_ms(0.99),
            within_5ms: b.within(0.005),
        }
    }
}

/// `pool_job_fanout_seconds` read back: from the new block's job being built
/// to each connection's notify written. Quantiles are bucket upper bounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Fanout {
    /// Observations (connections written to, over all blocks).
    pub(crate) count: f64,
    /// Upper bound of the median, ms.
    pub(crate) p50_le_ms: f64,
    /// Upper bound of the 0.99 quantile, ms.
    pub(crate) p99_le_ms: f64,
    /// Share of notifies written within 50 ms.
    pub(crate) within_50ms: f64,
    /// Jobs the pool's fan-out wrote straight to idle sessions' sockets,
    /// and jobs it woke a session to send (every job, not only blocks).
    pub(crate) direct: f64,
    pub(crate) woken: f64,
}

impl Fanout {
    /// Reads the histogram out of a `/metrics` scrape.
    pub(crate) fn from_metrics(m: &HashMap<String, f64>) -> Option<Self> {
        let b = Buckets::from_metrics(m, "pool_job_fanout_seconds")?;
        Some(Self {
            count: b.count(),
            p50_le_ms: b.quantile_le_ms(0.5),
            p99_le_ms: b.quantile_le_ms(0.99),
            within_50ms: b.within(0.05),
            direct: m
                .get("pool_job_notifies_total{path=\"direct\"}")
                .copied()
                .unwrap_or(0.0),
            woken: m
                .get("pool_job_notifies_total{path=\"session\"}")
                .copied()
                .unwrap_or(0.0),
        })
    }
}

/// One step of the idle phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct IdlePoint {
    /// Idle connections open.
    pub(crate) connections: usize,
    /// Pool processes holding them (more than one past the per-process
    /// open-file limit).
    pub(crate) instances: usize,
    /// The pools' resident memory together, KiB.
    pub(crate) pool_rss_kib: u64,
    /// `(rss - baseline) / connections`, bytes.
    pub(crate) pool_bytes_per_connection: f64,
    /// Kernel TCP memory for both ends, per connection, bytes.
    pub(crate) kernel_tcp_bytes_per_connection: f64,
    /// Seconds to open and handshake the connections of this step.
    pub(crate) open_secs: f64,
}

/// The idle phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleResult {
    /// Connection counts asked for.
    pub(crate) requested: Vec<usize>,
    /// Why fewer were opened, if they were.
    pub(crate) capped: Option<String>,
    /// The pool's resident memory with no miner connected, KiB.
    pub(crate) baseline_rss_kib: u64,
    /// One per count reached.
    pub(crate) points: Vec<IdlePoint>,
    /// The first connection errors.
    pub(crate) errors: Vec<String>,
}

/// Idle Stratum V2 connections on one pool process.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleV2Result {
    /// Connections, each with one extended channel and its first job.
    pub(crate) connections: usize,
    /// The pool's resident memory with no miner, KiB.
    pub(crate) baseline_rss_kib: u64,
    /// With the connections, KiB.
    pub(crate) pool_rss_kib: u64,
    /// The growth over the connections (Noise state, buffers, channel).
    pub(crate) pool_bytes_per_connection: f64,
    /// Seconds to open them all (handshakes, 128 at a time).
    pub(crate) open_secs: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// `sqlite` or `postgres`.
    pub(crate) store: String,
    /// Where the store lives and how it syncs.
    pub(crate) store_detail: String,
    /// `fdatasync` latency of 4 KiB appends where the store lives, µs.
    pub(crate) disk_fdatasync_us: Percentiles,
    /// The kernel's dirty-page writeback settings (`vm.dirty_*`), which
    /// decide how PostgreSQL's data-file writes compete with its WAL syncs.
    pub(crate) writeback: String,
    /// The pool program.
    pub(crate) pool: String,
    /// The machine's cores.
    pub(crate) cores: usize,
    /// The load generator's runtime threads.
    pub(crate) loadgen_threads: usize,
    /// The timed phases.
    pub(crate) load: Vec<LoadResult>,
    /// The idle phase, if run.
    pub(crate) idle: Option<IdleResult>,
    /// The idle V2 phase, if run.
    pub(crate) idle_v2: Option<IdleV2Result>,
    /// The notify phase, if run.
    pub(crate) notify: Option<NotifyResult>,
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

impl Report {
    /// The human-readable summary.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        push_line!(
            s,
            "\nproofpool-load: store {} ({}); pool: {}; {} cores, load generator on {} thread(s)",
            self.store,
            self.store_detail,
            self.pool,
            self.cores,
            self.loadgen_threads
        );
        let f = &self.disk_fdatasync_us;
        push_line!(
            s,
            "disk under the store: fdatasync of a 4 KiB append p50 {} ms, p99 {} ms, max {} ms ({} samples)",
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.count
        );
        push_line!(s, "kernel writeback: {}", self.writeback);
        if !self.load.is_empty() {
            push_line!(
                s,
                "\n| phase | conns | load | submitted/s | accepted/s | slowest s | rejected | p50 ms | p99 ms | p99.9 ms | max ms | p99 read ms | pool CPU | store CPU | loadgen CPU | machine CPU | pool RSS MiB | commits/s | batch | commit ms | precompute s |"
            );
            push_line!(s, "|{}", "---|".repeat(21));
            for r in &self.load {
                let load = match (r.window, r.target_rate) {
                    (Some(w), _) => format!("window {w}"),
                    (_, Some(rate)) => format!("{rate:.0}/s"),
                    _ => String::new(),
                };
                let rejected: u64 = r.rejected.values().sum();
                push_line!(
                    s,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {:.2}/{:.0} | {} | {:.0} | {:.0} | {:.1} | {:.1} |",
                    r.phase,
                    r.connections,
                    load,
                    r.submitted_per_sec,
                    r.accepted_per_sec,
                    r.slowest_second_accepted,
                    rejected,
                    ms(r.latency_us.p50),
                    ms(r.latency_us.p99),
                    ms(r.latency_us.p999),
                    ms(r.latency_us.max),
                    ms(r.read_latency_us.p99),
                    r.cpu.pool,
                    r.cpu
                        .store
                        .map_or_else(|| "in pool".to_owned(), |c| format!("{c:.2}")),
                    r.cpu.loadgen,
                    r.cpu.machine,
                    r.cpu.cores,
                    r.pool_rss_kib_peak / 1024,
                    r.store.commits_per_sec,
                    r.store.mean_batch,
                    r.store.commit_ms_last_second,
                    r.precompute_secs,
                );
            }
            for r in &self.load {
                let mut notes = Vec::new();
                if !r.rejected.is_empty() {
                    notes.push(format!("rejected: {:?}", r.rejected));
                }
                if r.connections_out_of_shares > 0 {
                    notes.push(format!(
                        "{} connections ran out of their {} pre-computed shares (raise --max-rate)",
                        r.connections_out_of_shares,
                        r.shares_precomputed / r.connections.max(1)
                    ));
                }
                if r.unanswered > 0 {
                    notes.push(format!("{} submits unanswered", r.unanswered));
                }
                if r.behind_schedule > 0 {
                    notes.push(format!(
                        "{} submits skipped: connections had their cap in flight",
                        r.behind_schedule
                    ));
                }
                if let Some(p) = &r.pool_submit {
                    notes.push(format!(
                        "pool side (pool_submit_duration_seconds: submit read to reply queued, durable commit included; {:.0} shares): p50 <= {} ms, p99 <= {} ms, {:.1}% within 5 ms",
                        p.count,
                        p.p50_le_ms,
                        p.p99_le_ms,
                        p.within_5ms * 100.0
                    ));
                }
                if r.unstamped > 0 {
                    notes.push(format!(
                        "{} replies had no kernel timestamp (their read time counts)",
                        r.unstamped
                    ));
                }
                if r.store.commit_ms_max > 0.0 {
                    notes.push(format!(
                        "longest share-log commit since the pool started {:.1} ms",
                        r.store.commit_ms_max
                    ));
                }
                if r.clean_jobs > 0 {
                    notes.push(format!("{} clean jobs seen", r.clean_jobs));
                }
                if let Some(w) = &r.wire_bytes_per_share {
                    notes.push(format!(
                        "bytes on the wire per share (TCP payload): {:.1} up, {:.1} down, {:.1} in all",
                        w.up,
                        w.down,
                        w.up + w.down
                    ));
                }
                for e in &r.errors {
                    notes.push(format!("error: {e}"));
                }
                if !notes.is_empty() {
                    push_line!(s, "\n{}: {}", r.phase, notes.join("; "));
                }
            }
        }
        if let Some(v2) = &self.idle_v2 {
            push_line!(
                s,
                "\nidle Stratum V2 connections: {} (one extended channel each), pool RSS {} MiB from {} MiB, {:.0} bytes per connection, opened in {:.1} s",
                v2.connections,
                v2.pool_rss_kib / 1024,
                v2.baseline_rss_kib / 1024,
                v2.pool_bytes_per_connection,
                v2.open_secs
            );
        }
        if let Some(idle) = &self.idle {
            push_line!(
                s,
                "\nidle connections (pool baseline RSS {} MiB):\n\n| connections | pool instances | pool RSS MiB (all) | pool bytes/conn | kernel TCP bytes/conn (both ends) | open+handshake s |\n|---|---|---|---|---|---|",
                idle.baseline_rss_kib / 1024
            );
            for p in &idle.points {
                push_line!(
                    s,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.1} |",
                    p.connections,
                    p.instances,
                    p.pool_rss_kib / 1024,
                    p.pool_bytes_per_connection,
                    p.kernel_tcp_bytes_per_connection,
                    p.open_secs
                );
            }
            if let Some(why) = &idle.capped {
                push_line!(s, "\n{why}");
            }
            for e in &idle.errors {
                push_line!(s, "idle error: {e}");
            }
        }
        if let Some(n) = &self.notify {
            let ms = |us: u64| us as f64 / 1000.0;
            let worst = n.last_ms.iter().copied().fold(0.0, f64::max);
            push_line!(
                s,
                "\nblock to notify ({} listening connections, {} blocks; from the block's submit to each clean notify {}):\n\n| p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | slowest block, last miner ms | missing |\n|---|---|---|---|---|---|---|",
                n.connections,
                n.blocks,
                match n.clock {
                    crate::notify::Clock::Kernel => format!(
                        "reaching the listener's socket (kernel receive timestamp; the load generator off the CPU for {:.0} ms after each submit; {} without a timestamp)",
                        n.quiet_ms, n.unstamped
                    ),
                    crate::notify::Clock::Read => "read by the load generator".to_owned(),
                }
            );
            push_line!(
                s,
                "| {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                ms(n.latency_us.p50),
                ms(n.latency_us.p90),
                ms(n.latency_us.p99),
                ms(n.latency_us.p999),
                ms(n.latency_us.max),
                worst,
                n.missing
            );
            if let Some(f) = &n.pool_fanout {
                push_line!(
                    s,
                    "\npool side (pool_job_fanout_seconds: new block's job built to notify written, kernel send included; {:.0} writes): p50 <= {} ms, p99 <= {} ms, {:.1}% within 50 ms; jobs written by the fan-out {:.0}, sessions woken to send one {:.0}",
                    f.count,
                    f.p50_le_ms,
                    f.p99_le_ms,
                    f.within_50ms * 100.0,
                    f.direct,
                    f.woken
                );
            }
            push_line!(
                s,
                "\nCPU per notify: pool {:.1} us (on loopback including the listener's receive-side TCP work, done in the sender's context), load generator {:.1} us{}; {} notifies on {:.0} cores take at least {:.1} ms",
                n.cpu.pool_us,
                n.cpu.loadgen_us,
                match n.clock {
                    crate::notify::Clock::Kernel =>
                        " (after the quiet window, so not counted below)",
                    crate::notify::Clock::Read => "",
                },
                n.connections,
                n.cpu.cores,
                n.cpu
                    .floor_ms(n.connections, n.clock == crate::notify::Clock::Read)
            );
        }
        s
    }
}

/// The kernel's `vm.dirty_*` writeback settings, as `name=value` pairs.
pub(crate) fn writeback_settings() -> String {
    [
        "dirty_background_bytes",
        "dirty_background_ratio",
        "dirty_bytes",
        "dirty_ratio",
        "dirty_expire_centisecs",
        "dirty_writeback_centisecs",
    ]
    .iter()
    .map(|name| {
        let value = std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
            .map_or_else(|_| "?".to_owned(), |v| v.trim().to_owned());
        format!("{name}={value}")
    })
    .collect::<Vec<_>>()
    .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_latency_is_the_difference_of_two_scrapes() {
        let scrape = |le1: u32, le5: u32, le10: u32, count: u32| {
            crate::pool::parse_metrics(&format!(
                "pool_submit_duration_seconds_bucket{{le=\"0.001\"}} {le1}\n\
                 pool_submit_duration_seconds_bucket{{le=\"0.005\"}} {le5}\n\
                 pool_submit_duration_seconds_bucket{{le=\"0.01\"}} {le10}\n\
                 pool_submit_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
                 pool_submit_duration_seconds_count {count}\n"
            ))
        };
        // Warm-up: 1,000 slow observations; the window: 990 within 1 ms,
        // 5 within 5 ms, 5 within 10 ms.
        let from = scrape(0, 0, 0, 1000);
        let to = scrape(990, 995, 1000, 2000);
        let name = "pool_submit_duration_seconds";
        let p = PoolSubmit::of(&Buckets::between(&from, &to, name).unwrap());
        assert_eq!(p.count, 1000.0);
        assert_eq!(p.p50_le_ms, 1.0);
        assert_eq!(p.p99_le_ms, 1.0);
        assert_eq!(p.within_5ms, 0.995);
        let all = Buckets::from_metrics(&to, name).unwrap();
        assert_eq!(
            all.quantile_le_ms(0.99),
            f64::INFINITY,
            "past the last bound"
        );
        assert!(Buckets::between(&to, &to, name).is_none(), "nothing new");
    }

    #[test]
    fn fanout_quantiles_are_bucket_bounds() {
        let text = "# TYPE pool_job_fanout_seconds histogram\n\
            pool_job_fanout_seconds_bucket{le=\"0.01\"} 10\n\
            pool_job_fanout_seconds_bucket{le=\"0.05\"} 95\n\
            pool_job_fanout_seconds_bucket{le=\"0.1\"} 100\n\
            pool_job_fanout_seconds_bucket{le=\"+Inf\"} 100\n\
            pool_job_fanout_seconds_sum 3.2\n\
            pool_job_fanout_seconds_count 100\n";
        let f = Fanout::from_metrics(&crate::pool::parse_metrics(text)).unwrap();
        assert_eq!(f.count, 100.0);
        assert_eq!(f.p50_le_ms, 50.0);
        assert_eq!(f.p99_le_ms, 100.0);
        assert!((f.within_50ms - 0.95).abs() < 1e-12);
        assert!(Fanout::from_metrics(&crate::pool::parse_metrics("x 1\n")).is_none());
    }

    #[test]
    fn store_figures_from_counter_deltas() {
        let from: HashMap<String, f64> = [
            ("pool_store_commits_total".to_owned(), 10.0),
            ("pool_store_shares_committed_total".to_owned(), 100.0),
        ]
        .into();
        let to: HashMap<String, f64> = [
            ("pool_store_commits_total".to_owned(), 30.0),
            ("pool_store_shares_committed_total".to_owned(), 2100.0),
            ("pool_store_commit_seconds".to_owned(), 0.002),
        ]
        .into();
        let f = StoreFigures::between(&from, &to, 2.0);
        assert_eq!(f.commits_per_sec, 10.0);
        assert_eq!(f.shares_per_sec, 1000.0);
        assert_eq!(f.mean_batch, 100.0);
        assert_eq!(f.commit_ms_last_second, 2.0);
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = crate::drive::new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500);
        assert_eq!(p.p99, 990);
        assert_eq!(p.max, 1000);
    }
}
