//! The pool's listeners and what its connections share, shaped like
//! mini-redis: [`Pool::run`] takes a bound listener and a shutdown future;
//! each connection is a task driving a Stratum V1 session
//! ([`crate::sv1`]) or a Stratum V2 connection ([`crate::sv2`]), both on the
//! session core ([`crate::session`]); a connection semaphore caps their
//! number, and one cancellation token and task tracker stop them all.
//!
//! Before a connection gets a task, the [`guard::Guard`] checks its address
//! against the ban table and the per-address cap; a refused connection is
//! closed at once. Each session then enforces its own handshake and idle
//! timeouts and share rate, runs vardiff, and reports what counts towards a
//! ban. A housekeeping task samples gauges and sweeps the address table;
//! with `metrics_listen` set, [`telemetry`] serves them to Prometheus.
//!
//! [`Pool::run_with_tls`] serves a second listener through rustls
//! ([`tls`]); past the TLS handshake its connections are ordinary sessions
//! under the same caps, bans and metrics.

pub(crate) mod blocks;
pub(crate) mod fanout;
pub(crate) mod guard;
pub(crate) mod telemetry;
mod tls;
mod zmq;

pub use blocks::FoundBlock;
pub use tls::TlsFiles;

use crate::config::PoolConfig;
use crate::job::JobConfig;
use crate::sv1::Outlet;
use crate::work::WorkSource;
use bitcoin::ScriptBuf;
use guard::{Guard, Limits, Refusal};
use proofpool_node::{NodeClient, NodeError};
use proofpool_store::{ShareLog, Store};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry::{Metrics, Refused};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The configuration is unusable.
    #[error("bad pool configuration: {0}")]
    Config(String),
    /// bitcoind failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Accepting connections failed.
    #[error("listener failed: {0}")]
    Io(#[from] std::io::Error),
    /// The share store failed.
    #[error(transparent)]
    Store(#[from] proofpool_store::StoreError),
}

/// Unix time in milliseconds.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// State shared by all sessions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: PoolConfig,
    pub(crate) node: Arc<NodeClient>,
    pub(crate) work: Arc<WorkSource>,
    extranonces: Mutex<Extranonces>,
    pub(crate) log: ShareLog,
    pub(crate) store: Store,
    pub(crate) blocks: Mutex<Vec<FoundBlock>>,
    /// The previous-block hash of the last block this instance submitted.
    solved: Mutex<Option<bitcoin::BlockHash>>,
    /// Cancelled once on shutdown: every session, handshake, background
    /// task and block retry stops on it, and one that starts later sees it
    /// at once.
    pub(crate) stop: CancellationToken,
    /// The pool's tasks other than its sessions (those are reaped one by
    /// one as they end): the work source, the fan-out, housekeeping, ZMQ,
    /// the metrics server and each found block's submission. Shutdown
    /// waits for all of them, so a block found as the pool stops is still
    /// submitted and recorded before the last flush.
    pub(crate) tasks: TaskTracker,
    /// Per-address connection counts, scores and bans.
    pub(crate) guard: Arc<Guard>,
    /// Job declaration tokens issued and live.
    pub(crate) tokens: Mutex<crate::jd::Tokens>,
    /// Job declaration connections reading block-sized frames now.
    pub(crate) jd_large_frames: AtomicUsize,
    /// Metric handles (no-ops without `metrics_listen`).
    pub(crate) metrics: Metrics,
    /// Sum of the sessions' hashrate estimates, hashes per second; each
    /// session adds the change in its own estimate (wrapping).
    pub(crate) hashrate: AtomicU64,
    /// Every open session's [`fanout::Link`], by connection number.
    links: Mutex<HashMap<u64, Arc<fanout::Link>>>,
    next_link: AtomicU64,
}

/// The extranonce1 leases of one pool instance.
///
/// A share's header depends on the job and the extranonce1, not on the
/// connection, and duplicates are caught per connection. So an extranonce1
/// released while the jobs it mined on are still live must not be handed out
/// again: a miner resuming it (a `mining.subscribe` hint, which anyone can
/// send) could otherwise replay every share it had accepted and be credited
/// twice. Such values "cool" until the previous-block hash changes, when every
/// job they could have mined on is stale. (Across restarts nothing can repeat:
/// every coinbase carries its job id, and job ids continue from the store.)
#[derive(Debug, Default)]
struct Extranonces {
    in_use: HashSet<u32>,
    next: u32,
    /// Released under `cooling_prev`; not leased again until the tip moves.
    cooling: HashSet<u32>,
    cooling_prev: Option<bitcoin::BlockHash>,
}

impl Extranonces {
    /// Forgets the cooling values once the tip is no longer `cooling_prev`.
    fn on_tip(&mut self, prev: Option<bitcoin::BlockHash>) {
        if self.cooling_prev != prev {
            self.cooling.clear();
            self.cooling_prev = prev;
        }
    }

    /// A fresh extranonce1 (instance id, then a 24-bit counter), or `resume`
    /// if it is this instance's, free, and not released under tip `prev`.
    fn lease(
        &mut self,
        instance_id: u8,
        resume: Option<&[u8]>,
        prev: Option<bitcoin::BlockHash>,
    ) -> Option<[u8; 4]> {
        self.on_tip(prev);
        let id = u32::from(instance_id) << 24;
        if let Some(r) = resume.and_then(|r| <[u8; 4]>::try_from(r).ok()) {
            let v = u32::from_be_bytes(r);
            if v & 0xff00_0000 == id && !self.cooling.contains(&v) && self.in_use.insert(v) {
                return Some(r);
            }
        }
        for _ in 0..=0x00ff_ffff {
            let v = id | (self.next & 0x00ff_ffff);
            self.next = self.next.wrapping_add(1);
            if !self.cooling.contains(&v) && self.in_use.insert(v) {
                return Some(v.to_be_bytes());
            }
        }
        None
    }

    fn release(&mut self, en1: [u8; 4], prev: Option<bitcoin::BlockHash>) {
        self.on_tip(prev);
        let v = u32::from_be_bytes(en1);
        if self.in_use.remove(&v) {
            self.cooling.insert(v);
        }
    }
}

impl Shared {
    /// Adds a session to the fan-out; returns its number for
    /// [`Shared::unregister`].
    pub(crate) fn register(&self, link: Arc<fanout::Link>) -> u64 {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, link);
        id
    }

    /// Removes a session from the fan-out.
    pub(crate) fn unregister(&self, id: u64) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Every registered session, for one fan-out.
    fn links_snapshot(&self) -> Vec<Arc<fanout::Link>> {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A fresh extranonce1 (instance id, then a 24-bit counter), or the one the
    /// miner asks to resume if it is ours, free, and was not released since
    /// the last block (see [`Extranonces`]).
    pub(crate) fn lease_extranonce1(&self, resume: Option<&[u8]>) -> Option<[u8; 4]> {
        let prev = self.work.current().map(|job| job.prev_hash());
        let mut en = self.extranonces.lock().unwrap_or_else(|p| p.into_inner());
        en.lease(self.config.instance_id, resume, prev)
    }

    /// Whether a block on `prev` is still worth submitting: true for the
    /// first solution on each previous block.
    pub(crate) fn claim_height(&self, prev: bitcoin::BlockHash) -> bool {
        let mut solved = self.solved.lock().unwrap_or_else(|p| p.into_inner());
        if *solved == Some(prev) {
            return false;
        }
        *solved = Some(prev);
        true
    }

    pub(crate) fn release_extranonce1(&self, en1: [u8; 4]) {
        let prev = self.work.current().map(|job| job.prev_hash());
        let mut en = self.extranonces.lock().unwrap_or_else(|p| p.into_inner());
        en.release(en1, prev);
    }
}

/// A running Stratum V1 pool.
#[derive(Debug, Clone)]
pub struct Pool {
    shared: Arc<Shared>,
    /// The metrics listener, bound in [`Pool::new`] and served by [`Pool::run`].
    metrics_listener: Arc<Mutex<Option<TcpListener>>>,
    metrics_addr: Option<SocketAddr>,
    /// Built from `config.tls` in [`Pool::new`].
    tls: Option<Acceptor>,
}

/// The TLS server side (rustls' acceptor has no `Debug`).
#[derive(Clone)]
struct Acceptor(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

impl Pool {
    /// Connects to bitcoind and the store (starting the group-commit share
    /// writer) and prepares to serve.
    pub async fn new(config: PoolConfig, store: Store) -> Result<Self, PoolError> {
        if config.extranonce2_len == 0 || config.extranonce2_len > 8 {
            return Err(PoolError::Config(format!(
                "extranonce2_len must be 1..=8, got {}",
                config.extranonce2_len
            )));
        }
        let mut config = config;
        if let Some(vardiff) = &mut config.vardiff {
            // One difficulty range for the whole pool.
            vardiff.min_difficulty = config.min_difficulty;
            vardiff.max_difficulty = config.max_difficulty;
            vardiff
                .validate()
                .map_err(|e| PoolError::Config(format!("vardiff: {e}")))?;
        }
        if let Some(endpoint) = &config.zmq_hashblock {
            zmq::check_endpoint(endpoint).map_err(PoolError::Config)?;
        }
        if config.max_shares_per_second == Some(0) {
            return Err(PoolError::Config(
                "max_shares_per_second must be positive (None for no limit)".to_owned(),
            ));
        }
        let (metrics, metrics_listener) = match config.metrics_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    PoolError::Config(format!("cannot listen for metrics on {addr}: {e}"))
                })?;
                (Metrics::prometheus(), Some(listener))
            }
            None => (Metrics::disabled(), None),
        };
        let tls = match &config.tls {
            Some(files) => Some(Acceptor(files.acceptor()?)),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let guard = Arc::new(Guard::new(
            Limits {
                max_per_ip: config.max_connections_per_ip,
                threshold: config.ban_threshold,
                ban_duration: config.ban_duration,
            },
            Instant::now(),
        ));
        let node = Arc::new(NodeClient::new(
            config.nodes.clone(),
            Duration::from_secs(30),
        )?);
        let job_config = coinbase_config(
            config.payout_script.clone(),
            config.pool_tag.clone(),
            config.extranonce2_len,
        );
        job_config.validate().map_err(coinbase_error)?;
        let clock = store
            .init_clock(config.epoch_secs, unix_ms() / 1000)
            .await?;
        let last_job = store.max_job_id(config.instance_id).await?;
        // The writer stops by itself once the last handle (and so the pool) is gone.
        let (log, _writer) = ShareLog::spawn(store.clone(), config.writer.clone());
        // Every job commits to the instance's share-log head: read it before
        // the first one.
        let head = log.load_log_head(&store, config.instance_id).await?;
        tracing::info!(
            backend = ?store.backend(),
            epoch_secs = clock.epoch_secs,
            next_seq = clock.next_seq,
            last_job,
            log_seq = head.seq,
            log_head = %head.head,
            "share log ready"
        );
        let work = Arc::new(
            WorkSource::new(
                node.clone(),
                job_config,
                config.template_refresh,
                config.longpoll_timeout,
            )
            .with_log(log.clone(), config.instance_id, last_job),
        );
        let stop = CancellationToken::new();
        let jd = config.jd.unwrap_or_default();
        let shared = Arc::new(Shared {
            config,
            node,
            work,
            extranonces: Mutex::new(Extranonces::default()),
            log,
            store,
            blocks: Mutex::new(Vec::new()),
            solved: Mutex::new(None),
            stop,
            tasks: TaskTracker::new(),
            jd_large_frames: AtomicUsize::new(0),
            tokens: Mutex::new(crate::jd::Tokens::new(
                jd.token_ttl,
                jd.max_tokens,
                rand_salt(),
            )),
            guard,
            metrics,
            hashrate: AtomicU64::new(0),
            links: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(0),
        });
        Ok(Self {
            shared,
            metrics_listener: Arc::new(Mutex::new(metrics_listener)),
            metrics_addr,
            tls,
        })
    }

    /// Where `GET /metrics` is served (the bound address, so a configured
    /// port 0 resolves), if `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The pool's metrics in Prometheus text format, if `metrics_listen`
    /// is set.
    pub fn render_metrics(&self) -> Option<String> {
        self.shared.metrics.render()
    }

    /// Changes the coinbase of every job from now on: the payout script,
    /// the pool tag and the extranonce2 size (1–8), checked as at start.
    /// The current template is rebuilt with them at once.
    ///
    /// When the extranonce2 size changes, miners that subscribed to
    /// extranonce changes (`mining.extranonce.subscribe`, or
    /// `subscribe-extranonce` in `mining.configure`) get
    /// `mining.set_extranonce` and a clean job, and their shares already in
    /// flight on older jobs are still checked against the size those jobs
    /// had; the others are sent `client.reconnect` and disconnected, since
    /// they would keep rolling the old size. A new payout script makes the
    /// rebuilt job clean for everyone, so that no block found after the
    /// change pays the old script.
    ///
    /// Returns whether anything changed; on an error nothing did.
    pub fn set_coinbase(
        &self,
        payout_script: ScriptBuf,
        pool_tag: Vec<u8>,
        extranonce2_len: usize,
    ) -> Result<bool, PoolError> {
        self.shared
            .work
            .reconfigure(coinbase_config(payout_script, pool_tag, extranonce2_len))
            .map_err(coinbase_error)
    }

    /// The store the pool writes to.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The share writer's counters.
    pub fn writer_stats(&self) -> &proofpool_store::WriterStats {
        self.shared.log.stats()
    }

    /// Every block found so far.
    pub fn blocks(&self) -> Vec<FoundBlock> {
        self.shared
            .blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves miners on `listener` until `shutdown` resolves, then tells every
    /// session to stop and waits for them.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), PoolError> {
        self.run_with_tls(listener, None, shutdown).await
    }

    /// [`Pool::run`], also serving Stratum over TLS on `tls_listener` with
    /// the certificate from `config.tls` (an error if there is none). Both
    /// listeners share the connection caps, bans and metrics.
    pub async fn run_with_tls(
        &self,
        listener: TcpListener,
        tls_listener: Option<TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), PoolError> {
        self.run_with_listeners(listener, tls_listener, None, shutdown)
            .await
    }

    /// [`Pool::run_with_tls`], also serving Stratum V2 on `sv2` (a listener
    /// and the authority key whose certificate its handshakes send). Every
    /// listener shares the connection caps, bans and metrics.
    pub async fn run_with_listeners(
        &self,
        listener: TcpListener,
        tls_listener: Option<TcpListener>,
        sv2: Option<(TcpListener, Arc<crate::sv2::keys::AuthorityKey>)>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), PoolError> {
        let tls = match (tls_listener, &self.tls) {
            (Some(l), Some(acceptor)) => Some((l, acceptor.clone())),
            (Some(_), None) => {
                return Err(PoolError::Config(
                    "a TLS listener needs `tls_cert` and `tls_key`".into(),
                ));
            }
            (None, _) => None,
        };
        tokio::pin!(shutdown);
        let shared = self.shared.clone();
        // The first job, retrying while the node is away.
        let work = shared.work.clone();
        let stop = shared.stop.clone();
        shared
            .tasks
            .spawn(async move { work.run(stop.cancelled_owned()).await });
        let stopped = || shared.stop.clone().cancelled_owned();
        shared.tasks.spawn(fanout::run(shared.clone(), stopped()));
        shared
            .tasks
            .spawn(telemetry::housekeeping(shared.clone(), stopped()));
        if let Some(endpoint) = shared.config.zmq_hashblock.clone() {
            shared
                .tasks
                .spawn(zmq::follow(shared.clone(), endpoint, stopped()));
        }
        let metrics_listener = self
            .metrics_listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(listener) = metrics_listener {
            tracing::info!(listen = ?self.metrics_addr, "serving Prometheus metrics at /metrics");
            shared
                .tasks
                .spawn(telemetry::serve_http(shared.clone(), listener, stopped()));
        }
        let limit = Arc::new(Semaphore::new(shared.config.max_connections));
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            // Sessions are reaped as they end, whatever else the loop waits
            // for, so the set (and `pool_session_tasks`) holds live ones.
            let permit = tokio::select! {
                () = &mut shutdown => break,
                Some(ended) = sessions.join_next() => {
                    reaped(&shared, ended, sessions.len());
                    continue;
                }
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (socket, peer, over) = tokio::select! {
                () = &mut shutdown => break,
                Some(ended) = sessions.join_next() => {
                    reaped(&shared, ended, sessions.len());
                    continue;
                }
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => (socket, peer, Over::Plain),
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
                accepted = accept_tls(tls.as_ref()) => match accepted {
                    Ok((socket, peer)) => (socket, peer, Over::Tls),
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
                accepted = accept_on(sv2.as_ref().map(|(l, _)| l)) => match accepted {
                    Ok((socket, peer)) => (socket, peer, Over::Sv2),
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
            };
            let now = Instant::now();
            let admission = match shared.guard.admit(peer.ip(), now) {
                Ok(a) => a,
                Err(refusal) => {
                    refuse(&shared, peer, refusal, now);
                    // Dropping the socket closes it before a byte is read.
                    drop(socket);
                    continue;
                }
            };
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            let session_shared = shared.clone();
            match (tls.as_ref(), sv2.as_ref()) {
                (_, Some((_, key))) if over == Over::Sv2 => {
                    let key = key.clone();
                    sessions.spawn(async move {
                        crate::sv2::serve(session_shared, socket, peer, admission, key).await;
                        drop(permit);
                    });
                }
                (Some((_, acceptor)), _) if over == Over::Tls => {
                    let acceptor = acceptor.0.clone();
                    sessions.spawn(async move {
                        let shared = session_shared;
                        if let Some(stream) = tls_handshake(&shared, acceptor, socket, peer).await {
                            let (read, write) = tokio::io::split(stream);
                            let write = Outlet::Stream(Box::new(write));
                            crate::sv1::serve(shared, read, write, peer, admission).await;
                        }
                        drop(permit);
                    });
                }
                _ => {
                    sessions.spawn(async move {
                        let (read, write) = socket.into_split();
                        let write = Outlet::Tcp(write);
                        crate::sv1::serve(session_shared, read, write, peer, admission).await;
                        drop(permit);
                    });
                }
            }
            shared.metrics.session_tasks.set(sessions.len() as f64);
        }
        tracing::info!(sessions = sessions.len(), "shutting down: closing sessions");
        shared.stop.cancel();
        while let Some(ended) = sessions.join_next().await {
            reaped(&shared, ended, sessions.len());
        }
        // Every session has answered its in-flight submits; the blocks they
        // found are submitted and recorded, and the background tasks stop.
        shared.tasks.close();
        shared.tasks.wait().await;
        // Make sure the records queued after the last shares (blocks,
        // workers) are written too.
        shared.log.flush().await;
        tracing::info!("share log flushed");
        Ok(())
    }
}

/// Eight bytes from the system's random source (zeros if it fails: the
/// salt only keeps tokens from being guessed from their serials, and a
/// token is checked against its address anyway).
fn rand_salt() -> [u8; 8] {
    let mut salt = [0u8; 8];
    if let Err(e) = getrandom::fill(&mut salt) {
        tracing::warn!(error = %e, "no random salt for job declaration tokens");
    }
    salt
}

/// Accounts for a session task that ended: a panic is logged (the pool
/// serves on; the session's `Drop` guards gave its slots back).
fn reaped(shared: &Shared, ended: Result<(), tokio::task::JoinError>, left: usize) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!(error = %e, "a session task panicked");
    }
    shared.metrics.session_tasks.set(left as f64);
}

/// The pool's coinbase settings, with its 4-byte extranonce1 (instance id
/// and a 24-bit counter, see [`Extranonces`]).
fn coinbase_config(
    payout_script: ScriptBuf,
    pool_tag: Vec<u8>,
    extranonce2_len: usize,
) -> JobConfig {
    JobConfig {
        payout_script,
        pool_tag,
        extranonce1_len: 4,
        extranonce2_len,
    }
}

/// A coinbase setting that cannot work, named by its config keys.
fn coinbase_error(e: impl std::fmt::Display) -> PoolError {
    PoolError::Config(format!("payout_address / pool_tag / extranonce2_size: {e}"))
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Plain,
    Tls,
    Sv2,
}

/// The next connection on `listener`; never, without one.
async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The next connection on the TLS listener; never, without one.
async fn accept_tls(
    tls: Option<&(TcpListener, Acceptor)>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tls {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// EMFILE and friends: log, back off briefly, keep serving.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Runs the server side of the TLS handshake, within the handshake timeout
/// (30 s without one) and until the pool stops; `None` when it fails.
async fn tls_handshake(
    shared: &Shared,
    acceptor: tokio_rustls::TlsAcceptor,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let limit = shared
        .config
        .handshake_timeout
        .unwrap_or(Duration::from_secs(30));
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, acceptor.accept(socket)) => r,
        () = shared.stop.cancelled() => return None,
    };
    match outcome {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            shared.metrics.tls_handshake_failures.increment(1);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            shared.metrics.tls_handshake_failures.increment(1);
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Counts and logs (throttled per address) a connection closed on arrival.
fn refuse(shared: &Shared, peer: SocketAddr, refusal: Refusal, now: Instant) {
    let reason = match refusal {
        Refusal::Banned { .. } => Refused::Banned,
        Refusal::PerIpLimit => Refused::PerIpLimit,
    };
    shared.metrics.refused(reason).increment(1);
    let Some(log) = shared.guard.log_refusal(peer.ip(), now) else {
        return;
    };
    match refusal {
        Refusal::Banned { remaining } => tracing::warn!(
            %peer,
            ban_remaining_secs = remaining.as_secs(),
            suppressed = log.suppressed,
            "refused connection from a banned address"
        ),
        Refusal::PerIpLimit => tracing::warn!(
            %peer,
            max = shared.config.max_connections_per_ip,
            suppressed = log.suppressed,
            "refused connection: too many from this address"
        ),
    }
}

#[cfg(test)]
mod extranonce_tests {
    use super::Extranonces;
    use bitcoin::BlockHash;
    use bitcoin::hashes::Hash;

    fn tip(n: u8) -> Option<BlockHash> {
        Some(BlockHash::from_byte_array([n; 32]))
    }

    #[test]
    fn a_released_extranonce1_is_not_resumed_on_the_same_block() {
        let mut en = Extranonces::default();
        let a = en.lease(7, None, tip(1)).unwrap();
        assert_eq!(a[0], 7, "the instance id comes first");
        // Free and ours: a resume hint is honoured.
        let hint = [7, 0, 0, 9];
        assert_eq!(en.lease(7, Some(&hint), tip(1)), Some(hint));
        // Another instance's value, or one in use, is not.
        assert_ne!(en.lease(7, Some(&[8, 0, 0, 1]), tip(1)), Some([8, 0, 0, 1]));
        assert_ne!(en.lease(7, Some(&hint), tip(1)), Some(hint));
        // Released during this block: a miner resuming it could replay its
        // accepted shares on the still-live jobs, so it gets another one,
        // and so does everyone else until the tip moves.
        en.release(hint, tip(1));
        let other = en.lease(7, Some(&hint), tip(1)).unwrap();
        assert_ne!(other, hint);
        en.release(a, tip(1));
        for _ in 0..100 {
            let fresh = en.lease(7, None, tip(1)).unwrap();
            assert!(fresh != a && fresh != hint, "{fresh:?}");
        }
        // A new block makes every earlier job stale: the hint is honoured again.
        assert_eq!(en.lease(7, Some(&hint), tip(2)), Some(hint));
    }
}
