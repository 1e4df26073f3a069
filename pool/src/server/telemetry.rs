//! Prometheus metrics: the handles the server updates, the task that
//! samples gauges, and a minimal HTTP endpoint that serves `GET /metrics`.
//!
//! Each [`Pool`](crate::Pool) with `metrics_listen` set owns its own
//! [`PrometheusRecorder`], built with
//! [`PrometheusBuilder::build_recorder`] and never installed as the global
//! recorder: several pools (tests) can live in one process, and the handles
//! are registered once up front, so the share path only does relaxed atomic
//! adds (no key lookup, no allocation). Without `metrics_listen` every
//! handle is a no-op.
//!
//! Units and sources:
//! - `pool_hashrate_estimated` is the sum over open connections of each
//!   one's vardiff estimate (decayed accepted difficulty per second times
//!   2^32, in hashes per second), refreshed by each connection every
//!   vardiff tick (10 s at most).
//! - `pool_share_validation_duration_seconds` times one validation in 64
//!   per connection (the first, then every 64th): two clock reads cost
//!   about a tenth of a SHA-NI validation, so timing all of them would slow
//!   the path it measures.
//! - `pool_store_batch_size` and `pool_store_commit_seconds` are the mean
//!   shares per commit and mean commit time over the last sampling second
//!   that committed anything, from the share writer's counters (a commit
//!   that carries only jobs or blocks counts, so the mean can be below 1).
//! - `pool_template_age_seconds` is the time since bitcoind last confirmed
//!   the current work: a new job (a new block or new fees) or a template
//!   identical to the current one (which publishes no job).
//! - `pool_job_fanout_seconds` runs from a job on a new previous block being
//!   built to its `mining.notify` being written to each connection (one
//!   observation per connection whose line was written whole, the kernel's
//!   send included): how long the last miner waits for new work after the
//!   pool hears of a block.
//! - `pool_job_notifies_total{path}` counts jobs the fan-out wrote straight
//!   to idle sessions' sockets (`direct`) and sessions it woke to send a
//!   job themselves (`session`: busy, on TLS, about to change difficulty or
//!   extranonce2 size, with a full socket or many unread jobs).
//! - `pool_submit_replies_total{path}` counts the `true` replies to accepted
//!   shares by who wrote them: the share writer, straight to an idle
//!   session's socket after the commit (`direct`), or the session itself
//!   (`session`: it was busy, on TLS, had something else to write first, or
//!   the share found a block).

use super::Shared;
use super::guard::Fault;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The protocol a share came over, as the `protocol` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    V1,
    V2,
}

impl Protocol {
    const ALL: [Protocol; 2] = [Protocol::V1, Protocol::V2];

    fn label(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        }
    }
}

/// Why a share (or a submit) was refused, as the `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// The job is unknown or stale.
    Stale,
    /// Submitted before.
    Duplicate,
    /// The hash is above the share target.
    LowDifficulty,
    /// The worker is not authorized on this connection.
    Unauthorized,
    /// The connection has not subscribed.
    NotSubscribed,
    /// Malformed: bad extranonce2, version bits, ntime.
    Invalid,
    /// Over the connection's share rate.
    RateLimited,
    /// The share writer's queue is full.
    StoreOverloaded,
    /// The share writer failed or stopped.
    StoreFailed,
}

impl Reject {
    const ALL: [Self; 9] = [
        Self::Stale,
        Self::Duplicate,
        Self::LowDifficulty,
        Self::Unauthorized,
        Self::NotSubscribed,
        Self::Invalid,
        Self::RateLimited,
        Self::StoreOverloaded,
        Self::StoreFailed,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::LowDifficulty => "low_difficulty",
            Self::Unauthorized => "unauthorized",
            Self::NotSubscribed => "not_subscribed",
            Self::Invalid => "invalid",
            Self::RateLimited => "rate_limited",
            Self::StoreOverloaded => "store_overloaded",
            Self::StoreFailed => "store_failed",
        }
    }

    /// What the rejection counts as towards a ban: the miner's faults only.
    /// Stale shares are not: every miner sends some after each new block
    /// (on regtest, where nearly every share is a block, most of them).
    pub(crate) fn fault(self) -> Option<Fault> {
        match self {
            Self::Duplicate | Self::LowDifficulty | Self::Invalid => Some(Fault::Rejected),
            Self::Unauthorized | Self::NotSubscribed => Some(Fault::Malformed),
            Self::Stale | Self::RateLimited | Self::StoreOverloaded | Self::StoreFailed => None,
        }
    }
}

/// Why a connection was refused, as the `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The address is banned.
    Banned,
    /// The address has `max_connections_per_ip` connections open.
    PerIpLimit,
}

/// Buckets for share validation, seconds: 1 µs to 10 ms.
const VALIDATION_BUCKETS: [f64; 10] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2,
];

/// Bucket bounds of `pool_job_fanout_seconds`, 1 ms to 1 s (the goal for the
/// last of 10,000 miners is 50 ms).
const FANOUT_BUCKETS: [f64; 12] = [
    1e-3, 2.5e-3, 5e-3, 1e-2, 2e-2, 3e-2, 4e-2, 5e-2, 7.5e-2, 0.1, 0.25, 1.0,
];

/// Bucket bounds of `pool_submit_duration_seconds`, 0.25 ms to 1 s (the
/// goal at 50k submits/s is a p99 under 5 ms, durable commit included).
const SUBMIT_BUCKETS: [f64; 14] = [
    2.5e-4, 5e-4, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 7.5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.25, 1.0,
];

/// Every metric handle the server updates.
#[derive(Debug)]
pub(crate) struct Metrics {
    handle: Option<PrometheusHandle>,
    pub(crate) connections_active: Gauge,
    pub(crate) connections_total: Counter,
    /// Session tasks the accept loop holds (running or not yet reaped).
    pub(crate) session_tasks: Gauge,
    pub(crate) tls_handshake_failures: Counter,
    /// Stratum V2 connections whose Noise handshake completed.
    pub(crate) connections_noise: Counter,
    /// Stratum V2 connections closed because the handshake or setup failed.
    pub(crate) noise_handshake_failures: Counter,
    /// Shares accepted and durable, by protocol (also in `shares_accepted`).
    pub(crate) protocol_accepted: [Counter; 2],
    /// Submits answered with an error, by protocol (also in `rejected`).
    pub(crate) protocol_rejected: [Counter; 2],
    /// Job declaration tokens issued.
    pub(crate) jd_tokens_allocated: Counter,
    /// Jobs miners declared that the pool accepted (`SetCustomMiningJob`).
    pub(crate) jd_jobs_declared: Counter,
    /// Full-template declarations (`DeclareMiningJob`) the node found valid.
    pub(crate) jd_full_template_jobs: Counter,
    pub(crate) write_timeouts: Counter,
    /// Sessions sent `mining.set_extranonce` after the extranonce2 size changed.
    pub(crate) extranonce_changes: Counter,
    /// Sessions asked to reconnect because they cannot take a new
    /// extranonce2 size (no `mining.extranonce.subscribe`).
    pub(crate) extranonce_reconnects: Counter,
    /// Jobs the fan-out wrote straight to an idle session's socket.
    pub(crate) fanout_direct: Counter,
    /// Jobs the fan-out woke a session to send itself.
    pub(crate) fanout_woken: Counter,
    /// `true` replies the share writer wrote straight to the socket.
    pub(crate) replies_direct: Counter,
    /// `true` replies the session wrote.
    pub(crate) replies_session: Counter,
    refused: [Counter; 2],
    pub(crate) shares_accepted: Counter,
    rejected: [Counter; Reject::ALL.len()],
    pub(crate) blocks_found: Counter,
    pub(crate) blocks_rejected: Counter,
    pub(crate) retargets: Counter,
    pub(crate) hashrate: Gauge,
    pub(crate) validation_seconds: Histogram,
    pub(crate) job_fanout_seconds: Histogram,
    pub(crate) submit_seconds: Histogram,
    pub(crate) template_age: Gauge,
    pub(crate) node_connected: Gauge,
    pub(crate) zmq_connected: Gauge,
    pub(crate) zmq_blocks: Counter,
    pub(crate) store_batch_size: Gauge,
    pub(crate) store_commit_seconds: Gauge,
    pub(crate) store_commit_seconds_max: Gauge,
    pub(crate) store_commits: Counter,
    pub(crate) store_shares_committed: Counter,
    pub(crate) store_commit_failures: Counter,
    pub(crate) store_queue: Gauge,
    pub(crate) bans: Counter,
    pub(crate) banned_ips: Gauge,
    pub(crate) tracked_ips: Gauge,
}

/// Registers metrics on one recorder, with their help text.
struct Registrar<'a, R: Recorder> {
    recorder: &'a R,
}

static METADATA: Metadata<'static> = Metadata::new("proofpool_pool", Level::INFO, None);

impl<R: Recorder> Registrar<'_, R> {
    fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.recorder
            .describe_counter(KeyName::from_const_str(name), None, help.into());
        self.recorder
            .register_counter(&Key::from_static_name(name), &METADATA)
    }

    fn labelled_counter(
        &self,
        name: &'static str,
        label: &'static str,
        value: &'static str,
    ) -> Counter {
        let key = Key::from_parts(name, vec![Label::from_static_parts(label, value)]);
        self.recorder.register_counter(&key, &METADATA)
    }

    fn gauge(&self, name: &'static str, unit: Option<Unit>, help: &'static str) -> Gauge {
        self.recorder
            .describe_gauge(KeyName::from_const_str(name), unit, help.into());
        self.recorder
            .register_gauge(&Key::from_static_name(name), &METADATA)
    }

    fn histogram(&self, name: &'static str, help: &'static str) -> Histogram {
        self.recorder.describe_histogram(
            KeyName::from_const_str(name),
            Some(Unit::Seconds),
            help.into(),
        );
        self.recorder
            .register_histogram(&Key::from_static_name(name), &METADATA)
    }
}

impl Metrics {
    /// Every handle a no-op.
    pub(crate) fn disabled() -> Self {
        Self {
            handle: None,
            connections_active: Gauge::noop(),
            connections_total: Counter::noop(),
            session_tasks: Gauge::noop(),
            tls_handshake_failures: Counter::noop(),
            connections_noise: Counter::noop(),
            noise_handshake_failures: Counter::noop(),
            protocol_accepted: [Counter::noop(), Counter::noop()],
            protocol_rejected: [Counter::noop(), Counter::noop()],
            jd_tokens_allocated: Counter::noop(),
            jd_jobs_declared: Counter::noop(),
            jd_full_template_jobs: Counter::noop(),
            write_timeouts: Counter::noop(),
            extranonce_changes: Counter::noop(),
            extranonce_reconnects: Counter::noop(),
            fanout_direct: Counter::noop(),
            fanout_woken: Counter::noop(),
            replies_direct: Counter::noop(),
            replies_session: Counter::noop(),
            refused: [Counter::noop(), Counter::noop()],
            shares_accepted: Counter::noop(),
            rejected: std::array::from_fn(|_| Counter::noop()),
            blocks_found: Counter::noop(),
            blocks_rejected: Counter::noop(),
            retargets: Counter::noop(),
            hashrate: Gauge::noop(),
            validation_seconds: Histogram::noop(),
            job_fanout_seconds: Histogram::noop(),
            submit_seconds: Histogram::noop(),
            template_age: Gauge::noop(),
            node_connected: Gauge::noop(),
            zmq_connected: Gauge::noop(),
            zmq_blocks: Counter::noop(),
            store_batch_size: Gauge::noop(),
            store_commit_seconds: Gauge::noop(),
            store_commit_seconds_max: Gauge::noop(),
            store_commits: Counter::noop(),
            store_shares_committed: Counter::noop(),
            store_commit_failures: Counter::noop(),
            store_queue: Gauge::noop(),
            bans: Counter::noop(),
            banned_ips: Gauge::noop(),
            tracked_ips: Gauge::noop(),
        }
    }

    /// Handles on a fresh Prometheus recorder owned by this value.
    pub(crate) fn prometheus() -> Self {
        let builder = PrometheusBuilder::new();
        // A histogram, not the default summary, so replicas can be summed.
        let builder = match builder
            .set_buckets_for_metric(
                Matcher::Full("pool_share_validation_duration_seconds".to_owned()),
                &VALIDATION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("pool_job_fanout_seconds".to_owned()),
                    &FANOUT_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("pool_submit_duration_seconds".to_owned()),
                    &SUBMIT_BUCKETS,
                )
            }) {
            Ok(b) => b,
            Err(e) => {
                // Only an empty bucket list fails, and ours is a constant.
                tracing::error!(error = %e, "histogram buckets refused; serving a summary");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let r = Registrar {
            recorder: &recorder,
        };
        let refused = Refused::ALL.map(|reason| {
            r.labelled_counter("pool_connections_refused_total", "reason", reason.label())
        });
        recorder.describe_counter(
            KeyName::from_const_str("pool_connections_refused_total"),
            None,
            "Connections closed on arrival, by reason (banned, per_ip_limit).".into(),
        );
        let [fanout_direct, fanout_woken] = ["direct", "session"]
            .map(|path| r.labelled_counter("pool_job_notifies_total", "path", path));
        recorder.describe_counter(
            KeyName::from_const_str("pool_job_notifies_total"),
            None,
            "Jobs fanned out to sessions, by path: direct (written straight to an idle session's socket) or session (the session was woken to send it).".into(),
        );
        let [replies_direct, replies_session] = ["direct", "session"]
            .map(|path| r.labelled_counter("pool_submit_replies_total", "path", path));
        recorder.describe_counter(
            KeyName::from_const_str("pool_submit_replies_total"),
            None,
            "True replies to accepted shares, by who wrote them: direct (the share writer, straight to an idle session's socket after the commit) or session.".into(),
        );
        let protocol_accepted = Protocol::ALL.map(|p| {
            r.labelled_counter(
                "pool_shares_accepted_by_protocol_total",
                "protocol",
                p.label(),
            )
        });
        recorder.describe_counter(
            KeyName::from_const_str("pool_shares_accepted_by_protocol_total"),
            None,
            "Shares accepted and durable, by protocol (v1, v2); they sum to pool_shares_accepted_total.".into(),
        );
        let protocol_rejected = Protocol::ALL.map(|p| {
            r.labelled_counter(
                "pool_shares_rejected_by_protocol_total",
                "protocol",
                p.label(),
            )
        });
        recorder.describe_counter(
            KeyName::from_const_str("pool_shares_rejected_by_protocol_total"),
            None,
            "Submits answered with an error, by protocol (v1, v2); they sum to pool_shares_rejected_total over its reasons.".into(),
        );
        let rejected = Reject::ALL.map(|reason| {
            r.labelled_counter("pool_shares_rejected_total", "reason", reason.label())
        });
        recorder.describe_counter(
            KeyName::from_const_str("pool_shares_rejected_total"),
            None,
            "Submits answered with an error, by reason.".into(),
        );
        Self {
            connections_active: r.gauge(
                "pool_connections_active",
                None,
                "Open Stratum connections.",
            ),
            connections_total: r.counter(
                "pool_connections_total",
                "Stratum connections accepted since start.",
            ),
            session_tasks: r.gauge(
                "pool_session_tasks",
                None,
                "Connection tasks the accept loop holds; each is reaped as it ends.",
            ),
            tls_handshake_failures: r.counter(
                "pool_tls_handshake_failures_total",
                "TLS connections closed because the handshake failed or timed out.",
            ),
            connections_noise: r.counter(
                "pool_connections_noise_total",
                "Stratum V2 connections whose Noise NX handshake completed.",
            ),
            noise_handshake_failures: r.counter(
                "pool_noise_handshake_failures_total",
                "Stratum V2 connections closed because the Noise handshake or SetupConnection failed or timed out.",
            ),
            protocol_accepted,
            protocol_rejected,
            jd_tokens_allocated: r.counter(
                "jd_tokens_allocated_total",
                "Job declaration tokens issued (AllocateMiningJobToken).",
            ),
            jd_jobs_declared: r.counter(
                "jd_jobs_declared_total",
                "Jobs miners declared that the pool accepted (SetCustomMiningJob).",
            ),
            jd_full_template_jobs: r.counter(
                "jd_full_template_jobs_total",
                "Full-template job declarations (DeclareMiningJob) the node found valid.",
            ),
            write_timeouts: r.counter(
                "pool_write_timeouts_total",
                "Connections closed because the miner stopped reading (a write waited past write_timeout_secs).",
            ),
            extranonce_changes: r.counter(
                "pool_extranonce_changes_total",
                "Sessions sent mining.set_extranonce because the extranonce2 size changed (config reload).",
            ),
            extranonce_reconnects: r.counter(
                "pool_extranonce_reconnects_total",
                "Sessions sent client.reconnect because the extranonce2 size changed and they had not subscribed to extranonce changes.",
            ),
            fanout_direct,
            fanout_woken,
            replies_direct,
            replies_session,
            refused,
            shares_accepted: r
                .counter("pool_shares_accepted_total", "Shares accepted and durable."),
            rejected,
            blocks_found: r.counter(
                "pool_blocks_found_total",
                "Blocks found that bitcoind accepted.",
            ),
            blocks_rejected: r.counter(
                "pool_blocks_rejected_total",
                "Block solutions bitcoind did not accept.",
            ),
            retargets: r.counter(
                "pool_vardiff_retargets_total",
                "Difficulty changes vardiff chose (several in one read go out as one).",
            ),
            hashrate: r.gauge(
                "pool_hashrate_estimated",
                None,
                "Sum of the connections' vardiff hashrate estimates, hashes per second.",
            ),
            validation_seconds: r.histogram(
                "pool_share_validation_duration_seconds",
                "Time to validate one share (1 in 64 sampled).",
            ),
            job_fanout_seconds: r.histogram(
                "pool_job_fanout_seconds",
                "From a job on a new block being built to its notify written to each connection.",
            ),
            submit_seconds: r.histogram(
                "pool_submit_duration_seconds",
                "From reading an accepted mining.submit to its true reply being queued for the miner: validation, queueing and the durable commit.",
            ),
            template_age: r.gauge(
                "pool_template_age_seconds",
                Some(Unit::Seconds),
                "Seconds since bitcoind last confirmed the current work (a new job, or a template identical to the current one).",
            ),
            node_connected: r.gauge(
                "pool_node_connected",
                None,
                "1 while the last call to bitcoind succeeded.",
            ),
            zmq_connected: r.gauge(
                "pool_zmq_connected",
                None,
                "1 while subscribed to bitcoind's ZMQ hashblock feed (with zmq_hashblock set).",
            ),
            zmq_blocks: r.counter(
                "pool_zmq_hashblock_total",
                "Blocks bitcoind announced over ZMQ hashblock.",
            ),
            store_batch_size: r.gauge(
                "pool_store_batch_size",
                None,
                "Mean shares per share-log commit over the last sampled second with commits (commits of only jobs or blocks count too).",
            ),
            store_commit_seconds: r.gauge(
                "pool_store_commit_seconds",
                Some(Unit::Seconds),
                "Mean commit time over the last sampled second with commits.",
            ),
            store_commit_seconds_max: r.gauge(
                "pool_store_commit_seconds_max",
                Some(Unit::Seconds),
                "Longest single commit since start.",
            ),
            store_commits: r.counter(
                "pool_store_commits_total",
                "Share-log transactions committed.",
            ),
            store_shares_committed: r.counter(
                "pool_store_shares_committed_total",
                "Shares committed to the store.",
            ),
            store_commit_failures: r.counter(
                "pool_store_commit_failures_total",
                "Failed share-log commit attempts.",
            ),
            store_queue: r.gauge(
                "pool_store_queue_depth",
                None,
                "Shares waiting for the share writer.",
            ),
            bans: r.counter("pool_bans_total", "Addresses banned since start."),
            banned_ips: r.gauge("pool_banned_ips", None, "Addresses banned right now."),
            tracked_ips: r.gauge(
                "pool_tracked_ips",
                None,
                "Addresses in the connection-limit table.",
            ),
            handle: Some(recorder.handle()),
        }
    }

    /// Counts a refused submit, by reason and by protocol.
    pub(crate) fn reject(&self, protocol: Protocol, reason: Reject) {
        self.rejected[reason as usize].increment(1);
        self.protocol_rejected[protocol as usize].increment(1);
    }

    /// Counts `n` shares accepted and durable over `protocol`.
    pub(crate) fn accept(&self, protocol: Protocol, n: u64) {
        self.shares_accepted.increment(n);
        self.protocol_accepted[protocol as usize].increment(n);
    }

    /// Counts a refused connection.
    pub(crate) fn refused(&self, reason: Refused) -> &Counter {
        &self.refused[reason as usize]
    }

    /// The current metrics in Prometheus text format, if enabled.
    pub(crate) fn render(&self) -> Option<String> {
        self.handle.as_ref().map(PrometheusHandle::render)
    }
}

impl Refused {
    const ALL: [Self; 2] = [Self::Banned, Self::PerIpLimit];

    fn label(self) -> &'static str {
        match self {
            Self::Banned => "banned",
            Self::PerIpLimit => "per_ip_limit",
        }
    }
}

/// Previous writer counters, to turn totals into per-second means.
#[derive(Debug, Default)]
struct StoreSample {
    shares: u64,
    batches: u64,
    micros: u64,
}

/// How often the housekeeping task samples gauges.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Sweep the address table every this many samples.
const SWEEP_EVERY: u32 = 5;

/// Samples gauges, sweeps the address table and keeps the recorder tidy,
/// until `stop` resolves.
pub(crate) async fn housekeeping(shared: Arc<Shared>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let m = &shared.metrics;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut store = StoreSample::default();
    let mut ticks = 0u32;
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if ticks.is_multiple_of(SWEEP_EVERY) {
            let report = shared.guard.sweep(now);
            m.banned_ips.set(report.banned as f64);
            m.tracked_ips.set(report.tracked as f64);
        }
        ticks = ticks.wrapping_add(1);
        if let Some(at) = shared.work.confirmed_at() {
            m.template_age
                .set(now.saturating_duration_since(at).as_secs_f64());
        }
        m.node_connected
            .set(if shared.work.node_up() { 1.0 } else { 0.0 });
        m.hashrate
            .set(shared.hashrate.load(Ordering::Relaxed) as f64);
        let stats = shared.log.stats();
        let shares = stats.shares_committed.load(Ordering::Relaxed);
        let batches = stats.batches_committed.load(Ordering::Relaxed);
        let micros = stats.commit_micros_total.load(Ordering::Relaxed);
        let new_batches = batches.saturating_sub(store.batches);
        if new_batches > 0 {
            m.store_batch_size
                .set(shares.saturating_sub(store.shares) as f64 / new_batches as f64);
            m.store_commit_seconds
                .set(micros.saturating_sub(store.micros) as f64 / new_batches as f64 / 1e6);
        }
        store = StoreSample {
            shares,
            batches,
            micros,
        };
        m.store_shares_committed.absolute(shares);
        m.store_commits.absolute(batches);
        m.store_commit_failures
            .absolute(stats.commit_failures.load(Ordering::Relaxed));
        m.store_commit_seconds_max
            .set(stats.commit_micros_max.load(Ordering::Relaxed) as f64 / 1e6);
        m.store_queue.set(shared.log.queued() as f64);
        if let Some(handle) = &m.handle {
            handle.run_upkeep();
        }
    }
}

/// Most scrapes served at once; more are closed unanswered.
const MAX_SCRAPES: usize = 8;
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` until `stop` resolves.
pub(crate) async fn serve_http(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (socket, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many metrics scrapes at once");
            continue;
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            if let Err(e) = answer(&shared, socket).await {
                tracing::debug!(%peer, error = %e, "metrics scrape failed");
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    tasks.shutdown().await;
}

/// Reads one request head and answers it; the connection then closes.
async fn answer(shared: &Shared, mut socket: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        // The head ends at a blank line (CRLF, or bare LF from hand-typed
        // requests).
        while !head.windows(4).any(|w| w == b"\r\n\r\n")
            && !head.windows(2).any(|w| w == b"\n\n")
            && head.len() < MAX_REQUEST
        {
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match read {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let path = path.map(|p| p.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => match shared.metrics.render() {
            Some(text) => ("200 OK", text),
            None => ("404 Not Found", "metrics are disabled\n".to_owned()),
        },
        (Some(b"GET"), _) => ("404 Not Found", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}
