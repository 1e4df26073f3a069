//! The reference CPU miner.
//!
//! An async task speaks Stratum V1 (configure with version rolling, subscribe,
//! authorize, then notify / set_difficulty / submit); `threads` OS threads
//! grind sha256d over their own slice of extranonce2 space. Work flows from
//! the task to the threads through a generation-stamped slot; shares flow back
//! over a channel and are submitted in order.

mod hasher;
mod sv2;
mod tls;

use hasher::{Template, grind};
use proofpool_primitives::{Difficulty, U256};
use proofpool_stratum::{self as sv1, Id, ServerMessage};
use proofpool_watch::{ShareEvidence, ShareParts, WatchLog};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Most submits awaiting the pool's answer; shares found beyond it are
/// discarded.
pub const MAX_IN_FLIGHT: usize = 256;

/// Most `client.reconnect`s honoured in a row without a share accepted in
/// between, counting refused connection attempts after one; past it the
/// miner stops with an error instead of bouncing.
pub const MAX_RECONNECTS: u32 = 10;

/// Longest wait a `client.reconnect` may ask for.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(300);

/// What to mine with.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// `host:port` of the pool (the `stratum+tcp://` prefix is stripped by the CLI).
    pub address: String,
    /// `0xADDRESS.worker`.
    pub user: String,
    /// Hashing threads.
    pub threads: usize,
    /// Difficulty to suggest; `None` leaves the pool's default.
    pub suggest_difficulty: Option<Difficulty>,
    /// Stop after this many accepted shares (`None`: run until stopped).
    pub max_shares: Option<u64>,
    /// Speak TLS (`stratum+ssl://`), trusting the PEM certificates in this
    /// file (the pool's self-signed certificate, or the CA that signed it);
    /// `None` for plain TCP.
    pub tls_ca: Option<PathBuf>,
    /// When the pool closes the connection (it banned this address, perhaps
    /// for another client behind the same IP, or it restarted) or the
    /// connection fails: reconnect after a wait that starts at 1 s and
    /// doubles up to this, for as long as the miner runs (it starts again
    /// from 1 s once a share is accepted). `None` stops the miner with the
    /// error instead. A first connection that fails, a refused
    /// authorization or a TLS failure always stops it.
    pub retry_up_to: Option<Duration>,
    /// Record every share the pool accepts, with the job it was mined on,
    /// in this `proofpool watch` share log (SQLite, created if missing), so
    /// `proofpool watch check` can check them against the epoch files.
    pub share_log: Option<PathBuf>,
    /// Speak Stratum V2, pinning the pool's authority key (the 32-byte
    /// x-only key of `stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`); `None`
    /// for Stratum V1.
    pub sv2_authority: Option<[u8; 32]>,
    /// Over Stratum V2, a standard channel (header-only mining: the pool
    /// fixes the coinbase and sends each job's merkle root) instead of an
    /// extended one. No share log then: the miner never sees the coinbase.
    pub sv2_standard: bool,
}

/// The wait before the first reconnection after a lost connection; it
/// doubles with each further one (see [`MinerConfig::retry_up_to`]).
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Counters, readable while the miner runs.
#[derive(Debug, Default)]
pub struct MinerStats {
    /// Hashes computed.
    pub hashes: AtomicU64,
    /// Shares the pool accepted.
    pub accepted: AtomicU64,
    /// Shares the pool rejected.
    pub rejected: AtomicU64,
    /// Shares found but not submitted: their job was gone, or
    /// [`MAX_IN_FLIGHT`] submits were already unanswered.
    pub discarded: AtomicU64,
    /// When set, every share the pool acknowledged is appended to
    /// `accepted_log` (for crash tests: what miners saw acknowledged).
    pub record_accepted: AtomicBool,
    /// The shares acknowledged, when `record_accepted` is set.
    pub accepted_log: Mutex<Vec<ShareId>>,
}

/// What identifies a submitted share within a pool's store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShareId {
    /// The connection's extranonce1.
    pub extranonce1: Vec<u8>,
    /// The miner's extranonce2.
    pub extranonce2: Vec<u8>,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
}

/// Why the miner stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// Network failure.
    #[error("connection to the pool failed: {0}")]
    Io(#[from] std::io::Error),
    /// The pool said something we cannot use.
    #[error("pool protocol error: {0}")]
    Protocol(String),
    /// The pool refused the user.
    #[error("pool refused authorization: {0}")]
    Unauthorized(String),
    /// TLS could not be set up or the handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The pool closed the connection.
    #[error("the pool closed the connection")]
    Closed,
    /// The share log could not be opened or written.
    #[error("share log: {0}")]
    ShareLog(#[from] proofpool_watch::WatchError),
}

impl MinerError {
    /// Whether this ended an established connection in a way a new
    /// connection may cure (see [`MinerConfig::retry_up_to`]).
    fn lost_connection(&self) -> bool {
        matches!(self, Self::Io(_) | Self::Closed)
    }
}

/// A share found by a hashing thread.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) job_id: String,
    /// The extranonce1 the share was mined with (a `mining.set_extranonce`
    /// may have changed the session's since).
    pub(crate) extranonce1: Vec<u8>,
    pub(crate) extranonce2: Vec<u8>,
    pub(crate) ntime: u32,
    pub(crate) nonce: u32,
    pub(crate) version: u32,
}

/// The work every thread is grinding on.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) generation: AtomicU64,
    pub(crate) template: Mutex<Option<Arc<Template>>>,
    pub(crate) stop: AtomicBool,
}

/// Connects, mines until `shutdown` resolves (or `max_shares` are accepted),
/// and returns the final counters.
///
/// A `client.reconnect` from the pool (it is restarting, or its extranonce2
/// size changed) is honoured after the wait it asks for, at most 5 minutes,
/// to the port it names on the same host (another host is refused, as
/// cgminer does by default); see [`MAX_RECONNECTS`]. A connection the pool
/// closes, or that fails, is made again with a growing wait if
/// [`MinerConfig::retry_up_to`] is set.
pub async fn run(
    config: MinerConfig,
    stats: Arc<MinerStats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), MinerError> {
    tokio::pin!(shutdown);
    let share_log = match &config.share_log {
        Some(path) => Some(WatchLog::open(path).await?),
        None => None,
    };
    let ended = connect_and_mine(&config, stats, share_log.as_ref(), &mut shutdown).await;
    if let Some(log) = share_log {
        log.close().await;
    }
    ended
}

/// [`run`]'s connections, one after another.
async fn connect_and_mine(
    config: &MinerConfig,
    stats: Arc<MinerStats>,
    share_log: Option<&WatchLog>,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) -> Result<(), MinerError> {
    let mut address = config.address.clone();
    let mut reconnects = 0;
    // Set when the pool asked to reconnect: wait this long first, and
    // retry a refused connection (the pool may be restarting). A failure
    // of the first connection ends the miner; so does a failed session,
    // unless `retry_up_to` is set.
    let mut reconnect_wait: Option<Duration> = None;
    // Connections lost in a row without a share accepted between them.
    let mut lost = 0u32;
    let mut connected_once = false;
    loop {
        if let Some(wait) = reconnect_wait {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
        let connected = tokio::select! {
            () = &mut shutdown => return Ok(()),
            connected = TcpStream::connect(&address) => connected,
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(e) if connected_once && config.retry_up_to.is_some() => {
                lost = lost.saturating_add(1);
                let wait = backoff(lost, config.retry_up_to);
                tracing::warn!(%address, error = %e, retry_in = ?wait, "cannot reconnect yet");
                reconnect_wait = Some(wait);
                continue;
            }
            Err(e) if reconnect_wait.is_some() && reconnects < MAX_RECONNECTS => {
                reconnects += 1;
                let wait = Duration::from_secs(u64::from(reconnects)).min(Duration::from_secs(10));
                tracing::warn!(%address, error = %e, retry_in = ?wait, "cannot reconnect yet");
                reconnect_wait = Some(wait);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        connected_once = true;
        let accepted_before = stats.accepted.load(Ordering::Relaxed);
        let ended = mine_over(
            config,
            &address,
            stream,
            stats.clone(),
            share_log,
            &mut shutdown,
        )
        .await;
        if stats.accepted.load(Ordering::Relaxed) > accepted_before {
            reconnects = 0;
            lost = 0;
        }
        let ended = match ended {
            Ok(ended) => ended,
            Err(e) if e.lost_connection() && config.retry_up_to.is_some() => {
                lost = lost.saturating_add(1);
                let wait = backoff(lost, config.retry_up_to);
                tracing::warn!(%address, error = %e, retry_in = ?wait, "connection lost; reconnecting");
                reconnect_wait = Some(wait);
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ended::Reconnect { host, port, wait } = ended else {
            return Ok(());
        };
        let current = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(h, _)| h);
        if host.as_deref().is_some_and(|h| h != current) {
            return Err(MinerError::Protocol(format!(
                "the pool asked to reconnect to another host ({}); refused",
                host.unwrap_or_default()
            )));
        }
        reconnects += 1;
        if reconnects > MAX_RECONNECTS {
            return Err(MinerError::Protocol(format!(
                "the pool asked to reconnect {MAX_RECONNECTS} times without accepting a share"
            )));
        }
        if let Some(port) = port.filter(|&p| p != 0) {
            address = format!("{current}:{port}");
        }
        tracing::info!(%address, ?wait, "pool asked to reconnect");
        reconnect_wait = Some(wait);
    }
}

/// The wait before reconnecting after the `lost`-th connection lost in a
/// row: [`FIRST_RETRY`], doubled each time, at most `up_to`.
fn backoff(lost: u32, up_to: Option<Duration>) -> Duration {
    let up_to = up_to.unwrap_or(FIRST_RETRY).max(FIRST_RETRY);
    let doublings = lost.saturating_sub(1).min(20);
    FIRST_RETRY.saturating_mul(1 << doublings).min(up_to)
}

/// How one connection ended without an error.
#[derive(Debug)]
enum Ended {
    /// Stopped or `max_shares` reached.
    Done,
    /// The pool sent `client.reconnect` (`None`: the same as now).
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait: Duration,
    },
}

/// Mines over a new connection to `address` (TLS if configured) until it
/// ends.
async fn mine_over(
    config: &MinerConfig,
    address: &str,
    stream: TcpStream,
    stats: Arc<MinerStats>,
    share_log: Option<&WatchLog>,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) -> Result<Ended, MinerError> {
    stream.set_nodelay(true)?;
    if let Some(authority) = config.sv2_authority {
        if config.tls_ca.is_some() {
            return Err(MinerError::Tls(
                "Stratum V2 is encrypted with Noise; it does not run over TLS".into(),
            ));
        }
        return sv2::mine(config, authority, stats, share_log, shutdown, stream).await;
    }
    match &config.tls_ca {
        None => {
            let (read, write) = stream.into_split();
            mine(config, stats, share_log, shutdown, read, write).await
        }
        Some(ca) => {
            let stream = tokio::select! {
                () = &mut shutdown => return Ok(Ended::Done),
                stream = tls::connect(address, ca, stream) => stream?,
            };
            let (read, write) = tokio::io::split(stream);
            mine(config, stats, share_log, shutdown, read, write).await
        }
    }
}

/// The session over an established connection.
async fn mine<R, W>(
    config: &MinerConfig,
    stats: Arc<MinerStats>,
    share_log: Option<&WatchLog>,
    shutdown: impl std::future::Future<Output = ()>,
    read: R,
    mut write: W,
) -> Result<Ended, MinerError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = BufReader::new(read).lines();

    let (slot, threads, mut found_rx) = spawn_hashers(config, &stats);

    let mut out = String::new();
    out.push_str(&sv1::miner::configure_version_rolling(
        &Id::from(1u64),
        0x1fff_e000,
        2,
    ));
    // Before subscribing, so that no change of extranonce can fall between
    // the subscribe result and it: take a new extranonce in place rather
    // than be disconnected.
    out.push_str(&sv1::miner::extranonce_subscribe(&Id::from(5u64)));
    out.push_str(&sv1::miner::subscribe(
        &Id::from(2u64),
        "proofpool-miner/0.1",
    ));
    out.push_str(&sv1::miner::authorize(&Id::from(3u64), &config.user, "x"));
    if let Some(d) = config.suggest_difficulty {
        out.push_str(&sv1::miner::suggest_difficulty(&Id::from(4u64), d));
    }
    write.write_all(out.as_bytes()).await?;
    // TLS may hold written bytes until a flush; for TCP it is a no-op.
    write.flush().await?;

    let mut state = Session {
        keep_evidence: share_log.is_some(),
        ..Session::default()
    };
    let mut next_id = 100u64;
    let mut pending_submits = std::collections::HashMap::new();
    tokio::pin!(shutdown);
    let mut report = tokio::time::interval(Duration::from_secs(10));
    let started = Instant::now();
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(Ended::Done),
            _ = report.tick() => {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                tracing::info!(
                    hashrate_khs = stats.hashes.load(Ordering::Relaxed) as f64 / secs / 1000.0,
                    accepted = stats.accepted.load(Ordering::Relaxed),
                    rejected = stats.rejected.load(Ordering::Relaxed),
                    discarded = stats.discarded.load(Ordering::Relaxed),
                    "miner"
                );
            }
            found = found_rx.recv() => {
                let Some(f) = found else { break Err(MinerError::Protocol("hashing threads stopped".into())) };
                // A share for a job the pool has since cleaned away is stale:
                // drop it here instead of queueing it behind the new work. So
                // are shares past the cap in flight (a miner far faster than
                // its share difficulty must not flood the pool).
                let Some(job) = state.live_jobs.get(&f.job_id) else {
                    stats.discarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if pending_submits.len() >= MAX_IN_FLIGHT {
                    stats.discarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // Built now: by the time the pool answers, a new block may
                // have cleaned the job away.
                let evidence = state.keep_evidence.then(|| {
                    ShareEvidence::new(ShareParts::of_job(job, &f.extranonce1, &f.extranonce2, f.version, f.ntime, f.nonce))
                });
                let id = next_id;
                next_id += 1;
                pending_submits.insert(id, Submitted {
                    share: ShareId {
                        extranonce1: f.extranonce1.clone(),
                        extranonce2: f.extranonce2.clone(),
                        ntime: f.ntime,
                        nonce: f.nonce,
                    },
                    evidence,
                });
                // BIP310 as miners send it: only the rolled bits, inside the mask.
                let version = state.version_rolling.then_some(f.version & state.version_mask);
                let line = sv1::miner::submit(&Id::from(id), &config.user, &f.job_id, &f.extranonce2, f.ntime, f.nonce, version);
                write.write_all(line.as_bytes()).await?;
                write.flush().await?;
            }
            line = lines.next_line() => {
                let Some(line) = line? else { break Err(MinerError::Closed) };
                match sv1::parse_server_line(line.as_bytes()) {
                    Ok(message) => {
                        if let Err(e) = state.apply(message, &slot, &stats, &mut pending_submits) {
                            break Err(e);
                        }
                        if let Some(log) = share_log
                            && let Err(e) = record(log, &config.user, &mut state.accepted).await
                        {
                            break Err(e);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "unparsable line from pool"),
                }
                if config.max_shares.is_some_and(|m| stats.accepted.load(Ordering::Relaxed) >= m) {
                    break Ok(Ended::Done);
                }
                if let Some(ended) = state.reconnect.take() {
                    break Ok(ended);
                }
            }
        }
    };
    stop_hashers(&slot, threads);
    result
}

/// Starts `config.threads` hashing threads on a fresh slot; they send what
/// they find to the receiver returned.
pub(crate) fn spawn_hashers(
    config: &MinerConfig,
    stats: &Arc<MinerStats>,
) -> (
    Arc<Slot>,
    Vec<std::thread::JoinHandle<()>>,
    mpsc::UnboundedReceiver<Found>,
) {
    let slot = Arc::new(Slot::default());
    let (found_tx, found_rx) = mpsc::unbounded_channel::<Found>();
    let threads = (0..config.threads.max(1))
        .map(|index| {
            let (slot, tx, stats) = (slot.clone(), found_tx.clone(), stats.clone());
            std::thread::spawn(move || grind(index as u8, &slot, &tx, &stats))
        })
        .collect();
    (slot, threads, found_rx)
}

/// Stops the hashing threads of `slot` and waits for them.
pub(crate) fn stop_hashers(slot: &Slot, threads: Vec<std::thread::JoinHandle<()>>) {
    slot.stop.store(true, Ordering::Relaxed);
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a hashing thread panicked");
        }
    }
}

/// Records the shares the pool just accepted in the share log.
pub(crate) async fn record(
    log: &WatchLog,
    user: &str,
    accepted: &mut Vec<ShareEvidence>,
) -> Result<(), MinerError> {
    for evidence in accepted.drain(..) {
        log.record_accepted(user, &evidence).await?;
    }
    Ok(())
}

/// A submit awaiting the pool's answer.
#[derive(Debug)]
struct Submitted {
    share: ShareId,
    /// The share with its job, when the miner keeps a share log.
    evidence: Option<ShareEvidence>,
}

/// What the miner learned from the pool.
#[derive(Debug, Default)]
struct Session {
    extranonce1: Vec<u8>,
    extranonce2_len: usize,
    target: Option<U256>,
    version_rolling: bool,
    version_mask: u32,
    last_notify: Option<sv1::NotifyOwned>,
    /// Jobs sent since the last clean one: shares for others are stale.
    live_jobs: std::collections::HashMap<String, sv1::NotifyOwned>,
    /// Whether submits keep their share as evidence (a share log is kept).
    keep_evidence: bool,
    /// Evidence of the shares the pool accepted, until recorded.
    accepted: Vec<ShareEvidence>,
    /// A `client.reconnect` to honour once the current line is handled.
    reconnect: Option<Ended>,
}

impl Session {
    fn apply(
        &mut self,
        message: ServerMessage,
        slot: &Slot,
        stats: &MinerStats,
        pending: &mut std::collections::HashMap<u64, Submitted>,
    ) -> Result<(), MinerError> {
        match message {
            ServerMessage::Reply { id, result, error } => {
                let id = id.as_u64().unwrap_or(0);
                match id {
                    1 => {
                        if let Some(mask) = sv1::miner::configured_version_mask(&result) {
                            self.version_rolling = true;
                            self.version_mask = mask;
                        }
                    }
                    2 => {
                        let reply = sv1::SubscribeReply::from_result(&result).ok_or_else(|| {
                            MinerError::Protocol(format!("bad subscribe result {result}"))
                        })?;
                        self.extranonce1 = reply.extranonce1;
                        self.extranonce2_len = reply.extranonce2_size;
                    }
                    3 if result != Value::Bool(true) => {
                        return Err(MinerError::Unauthorized(format!("{error:?}")));
                    }
                    _ if pending.contains_key(&id) => {
                        let submitted = pending.remove(&id);
                        if result == Value::Bool(true) {
                            stats.accepted.fetch_add(1, Ordering::Relaxed);
                            if let Some(Submitted { share, evidence }) = submitted {
                                self.accepted.extend(evidence);
                                if stats.record_accepted.load(Ordering::Relaxed) {
                                    stats
                                        .accepted_log
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .push(share);
                                }
                            }
                        } else {
                            stats.rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(?error, "share rejected");
                        }
                    }
                    _ => {}
                }
            }
            ServerMessage::SetDifficulty(d) => {
                // The pool's jobs commit to the target in compact form,
                // rounded down: what it checks shares against.
                let target = proofpool_epoch::share_commitment::committed_target(d.to_target()).1;
                self.target = Some(target);
            }
            ServerMessage::SetVersionMask(mask) => self.version_mask = mask,
            ServerMessage::SetExtranonce {
                extranonce1,
                extranonce2_size,
            } => {
                // Applies from the next job (NiceHash's extension); the
                // threads finish the current one with the old values.
                tracing::info!(
                    extranonce1 = %hex::encode(&extranonce1),
                    extranonce2_size,
                    "pool set a new extranonce"
                );
                self.extranonce1 = extranonce1;
                self.extranonce2_len = extranonce2_size;
            }
            ServerMessage::ShowMessage(text) => tracing::info!(message = %text, "pool says"),
            ServerMessage::Reconnect {
                host,
                port,
                wait_secs,
            } => {
                let wait = Duration::from_secs(wait_secs.unwrap_or(0)).min(MAX_RECONNECT_WAIT);
                self.reconnect = Some(Ended::Reconnect { host, port, wait });
            }
            ServerMessage::Notify(n) => {
                if n.clean_jobs {
                    self.live_jobs.clear();
                }
                self.live_jobs.insert(n.job_id.clone(), n.clone());
                self.last_notify = Some(n);
                self.publish(slot);
            }
            _ => {}
        }
        Ok(())
    }

    fn publish(&self, slot: &Slot) {
        let (Some(n), Some(target)) = (&self.last_notify, self.target) else {
            return;
        };
        if self.extranonce1.is_empty() {
            return;
        }
        let template = Template::new(
            n,
            &self.extranonce1,
            self.extranonce2_len,
            target,
            if self.version_rolling {
                self.version_mask
            } else {
                0
            },
        );
        match template {
            Some(t) => {
                *slot.template.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(t));
                slot.generation.fetch_add(1, Ordering::Release);
            }
            None => tracing::warn!("unusable job from pool"),
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn reconnection_waits_double_up_to_the_limit() {
        let up_to = Some(Duration::from_secs(60));
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, up_to).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX, up_to), Duration::from_secs(60));
        // A limit below the first wait still waits the first wait.
        assert_eq!(backoff(5, Some(Duration::ZERO)), FIRST_RETRY);
    }
}
