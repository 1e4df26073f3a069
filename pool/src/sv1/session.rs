//! One miner connection: the Stratum V1 state machine.
//!
//! Requests are handled strictly in arrival order, so a Bitaxe that pipelines
//! `configure`, `subscribe`, `authorize` and `suggest_difficulty` gets its
//! replies in order, and nothing (not even `set_version_mask`) is sent before
//! the subscribe result. Replies are batched into one buffer and written once
//! per wake-up. A submit's `true` waits for its share's commit, and nothing
//! queued after it is written before it; the connection is read meanwhile,
//! so later submits join the next commit (up to [`MAX_PENDING`] waiting).
//! Every error a client can cause is a reply, never a panic; only
//! an oversized line, invalid JSON, a timeout or a ban closes the connection.
//!
//! One timer per session serves the handshake timeout, the idle timeout and
//! the vardiff tick: it sleeps until the earliest of them, so a read never
//! touches the timer wheel. A vardiff retarget sends `mining.set_difficulty`
//! and re-sends the current job with `clean_jobs = false`, once per read
//! however many shares it held; each job keeps the target it was sent with,
//! so shares in flight are credited at that one.

mod submit;
mod upkeep;

use super::lines::{Line, LineReader};
use crate::job::Job;
use crate::server::fanout::{Backlog, Link, Mirror};
use crate::server::guard::{Admission, Fault, RateLimiter};
use crate::server::telemetry::Protocol;
use crate::server::{Shared, unix_ms};
use crate::session::{Action, Core, Event};
use crate::username::MinerId;
use proofpool_primitives::{Difficulty, Excerpt};
use proofpool_store::WorkerSeen;
use proofpool_stratum::{
    self as sv1, ClientMethod, ConfigureResult, ErrorCode, Id, Message, ParseError,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use submit::PendingReply;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

/// How often a session with work runs vardiff's tick and reports its
/// hashrate estimate (more often if the retarget interval is shorter).
const TICK: Duration = Duration::from_secs(10);

/// A worker authorized on this connection.
#[derive(Debug)]
struct Authorized {
    miner: MinerId,
    /// Whether the store has heard of it from this connection: a worker is
    /// recorded with its first accepted share, not at authorize, so that
    /// authorizations alone never grow the database.
    recorded: bool,
}

#[derive(Debug)]
pub(crate) struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    admission: Admission,
    extranonce1: Option<[u8; 4]>,
    user_agent: Option<String>,
    workers: HashMap<String, Authorized>,
    version_mask: u32,
    /// The channel: the jobs sent, what they commit to (the connection's
    /// payout address and its difficulty's target), the shares accepted on
    /// them, and vardiff.
    core: Core,
    extranonce_subscribed: bool,
    /// The extranonce2 size the miner was last told (subscribe result or
    /// `mining.set_extranonce`).
    extranonce2_len: usize,
    out: String,
    /// Submit replies waiting for their share's batch to commit, in order,
    /// each with its position in `out`. Nothing after the first is written
    /// until it is filled in; lines read meanwhile are handled.
    pending: VecDeque<PendingReply>,
    /// Where the share writer delivers this session's outcomes.
    link: Arc<Link>,
    /// The token of the next share queued.
    next_token: u64,
    close: bool,
    /// When the connection opened: vardiff's time zero.
    started: Instant,
    /// The time of the current wake-up, read once per read or timer.
    now: Instant,
    /// When the last line arrived (or the connection opened).
    last_read: Instant,
    /// When the next vardiff tick is due.
    next_tick: Instant,
    tick_every: Duration,
    /// This session's share of [`Shared::hashrate`].
    reported_hashrate: u64,
    limiter: Option<RateLimiter>,
    /// Validations so far, to time one in 64.
    validations: u64,
    /// Accepted shares not yet handed to the ban score.
    unscored_accepted: u32,
    /// When the job on a new block queued in `out` was built; observed in
    /// `pool_job_fanout_seconds` once the write is done.
    fanout_from: Option<Instant>,
}

/// Where a session's bytes go.
pub(crate) enum Outlet {
    /// A stream only the session's task writes (TLS: rustls frames it).
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    /// A plain TCP socket, which the job fan-out may write to as well.
    Tcp(OwnedWriteHalf),
}

/// Submits a session may have waiting for their commit before it stops
/// reading: a miner that pipelines without bound is held back by TCP.
const MAX_PENDING: usize = 256;

/// Why the session's task woke.
enum Wake<'a> {
    Read(std::io::Result<Line<'a>>),
    /// The fan-out asks it to send the current job itself, or outcomes of
    /// its shares arrived that the share writer left for it.
    Link,
    Timer,
    Stop,
}

/// Serves one connection until it closes or the pool stops.
pub(crate) async fn serve<R>(
    shared: Arc<Shared>,
    read: R,
    outlet: Outlet,
    peer: SocketAddr,
    admission: Admission,
) where
    R: AsyncRead + Unpin,
{
    let mut reader = LineReader::new(read, sv1::MAX_LINE_BYTES);
    let (mut stream, link) = match outlet {
        Outlet::Stream(w) => (Some(w), Link::new(None)),
        Outlet::Tcp(w) => (None, Link::new(Some(w))),
    };
    let link = Arc::new(link.counting(
        [
            shared.metrics.shares_accepted.clone(),
            shared.metrics.protocol_accepted[Protocol::V1 as usize].clone(),
        ],
        shared.metrics.replies_direct.clone(),
        shared.metrics.submit_seconds.clone(),
    ));
    // Leaves the fan-out when the session ends, even if its task is
    // aborted (a dropped pool).
    let _registered = Registered {
        id: shared.register(link.clone()),
        shared: shared.clone(),
        link: link.clone(),
    };
    // Registered once: one waiter for the session's life, not one a wake-up.
    let stop = shared.stop.clone().cancelled_owned();
    tokio::pin!(stop);
    let mut session = Session::new(
        shared.clone(),
        link.clone(),
        peer,
        admission,
        first_tick(_registered.id),
    );
    let mut backlog = Backlog::default();
    let mut deadline = session.next_deadline();
    let timer = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timer);
    tracing::debug!(%peer, "connected");
    loop {
        let reading = reading_next(&session);
        let wake = tokio::select! {
            line = reader.next(), if reading => Wake::Read(line),
            () = link.woken() => Wake::Link,
            () = &mut timer => Wake::Timer,
            () = &mut stop => Wake::Stop,
        };
        session.now = Instant::now();
        // From here to the end of the write the fan-out leaves the socket
        // alone; the jobs it wrote meanwhile are filed before anything
        // else is read.
        link.begin(&mut backlog);
        session.file_notes(&mut backlog);
        session.answered(std::mem::take(&mut backlog.replied));
        match wake {
            Wake::Read(line) => {
                session.last_read = session.now;
                match line {
                    Ok(Line::Complete(bytes)) => {
                        session.handle_line(bytes);
                        // Handle every line already received before writing, so
                        // pipelined submits share one commit and one write.
                        while !session.close {
                            match reader.next_buffered() {
                                Some(Line::Complete(bytes)) => session.handle_line(bytes),
                                Some(_) => session.line_too_long(),
                                None => break,
                            }
                        }
                    }
                    Ok(Line::TooLong) => session.line_too_long(),
                    Ok(Line::Eof) => break,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "read failed");
                        break;
                    }
                }
                // A retarget from this batch's shares goes out once, after
                // their replies.
                session.resend_if_ready();
                if !session.close && session.admission.is_banned(session.now) {
                    // Banned through another connection of the same address.
                    session.push(sv1::show_message("this address is banned"));
                    session.close = true;
                }
            }
            Wake::Link => {
                // A retarget may already have sent this very job; or the
                // wake was for outcomes only.
                if let Some(job) = session.shared.work.current()
                    && session.core.channel().last_job_id() != Some(job.id())
                {
                    if session.ready()
                        && session.core.channel().last_prev_hash() != Some(job.prev_hash())
                    {
                        // Timed once written: the fan-out of a new block.
                        session.fanout_from = Some(job.built());
                    }
                    session.send_job(&job, false);
                }
            }
            Wake::Timer => session.on_timer(),
            Wake::Stop => {
                session.push(sv1::show_message("pool is restarting"));
                // Miners that honour it come back (or, behind a load
                // balancer, go to another instance) without waiting out
                // their own failover timers.
                let reconnect = match &session.shared.config.reconnect_to {
                    Some((host, port)) => sv1::reconnect(host, *port, 0),
                    None => sv1::reconnect_same_server(),
                };
                session.push(reconnect);
                session.close = true;
            }
        }
        if session.close {
            // In-flight submits are answered before the connection closes.
            session.settle_pending(&link, &mut backlog).await;
        } else {
            session.settle_ready(&mut backlog.outcomes);
        }
        let n = session.writable();
        if n > 0 || !backlog.leftover.is_empty() {
            let out = write_out(
                &mut stream,
                &link,
                [backlog.leftover.as_slice(), &session.out.as_bytes()[..n]],
            );
            // A miner that stops reading would otherwise hold this task,
            // and everything it buffered, forever: no timer runs while the
            // write waits.
            let written = match session.shared.config.write_timeout {
                Some(limit) => match tokio::time::timeout(limit, out).await {
                    Ok(written) => written,
                    Err(_) => {
                        session.shared.metrics.write_timeouts.increment(1);
                        tracing::info!(%peer, ?limit, "miner stopped reading; closing the connection");
                        break;
                    }
                },
                None => out.await,
            };
            if let Err(e) = written {
                tracing::debug!(%peer, error = %e, "write failed");
                break;
            }
            backlog.leftover.clear();
            session.written(n);
            if session.out.is_empty()
                && let Some(from) = session.fanout_from.take()
            {
                session
                    .shared
                    .metrics
                    .job_fanout_seconds
                    .record(from.elapsed().as_secs_f64());
            }
        }
        if session.close {
            break;
        }
        link.end(
            session.ready(),
            session.mirror(),
            session.direct_replies(),
            session.mirror_after_replies(),
            !reading_next(&session),
        );
        // Move the timer only when a deadline moved earlier (work arrived,
        // so ticks start) or it fired; reads push the idle deadline later,
        // which the timer finds out when it fires.
        let next = session.next_deadline();
        if next < deadline || timer.is_elapsed() {
            deadline = next;
            timer.as_mut().reset(deadline.into());
        }
    }
    // A miner gone (or cut off) right after finding a block: its block task
    // still needs the solving share's number, or to learn it must write it
    // again. The writer answers every batch within its give-up time.
    session.await_block_outcomes(&link, &mut backlog).await;
    link.close();
    match &mut stream {
        Some(w) => {
            if let Err(e) = w.shutdown().await {
                tracing::trace!(%peer, error = %e, "shutdown failed");
            }
        }
        None => link.shutdown(),
    }
    session.finish();
}

/// Whether the session reads on: it stops while [`MAX_PENDING`] of its
/// submits wait for their commit (and is woken when they are answered).
fn reading_next(session: &Session) -> bool {
    session.pending.len() < MAX_PENDING
}

/// Where in the tick interval connection number `n` ticks first: between
/// half and all of it, spread evenly (golden-ratio steps). Miners connect in
/// crowds (all of them after a pool restart, 10,000 at once in the load
/// benchmark), and with the same first tick their ticks stayed in step
/// forever: every 10 s a burst of thousands of wake-ups, which slowed a
/// block's fan-out caught in it by several milliseconds.
fn first_tick(n: u64) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    0.5 + 0.5 * (n as f64 * GOLDEN).fract()
}

/// A session's place in the fan-out, given up on drop.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
    link: Arc<Link>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.link.close();
        self.shared.unregister(self.id);
    }
}

/// Writes `parts` in order: to the session's own stream, or to the TCP
/// socket it shares with the fan-out. The flush matters for TLS: rustls
/// may hold written bytes until then.
async fn write_out(
    stream: &mut Option<Box<dyn AsyncWrite + Send + Unpin>>,
    link: &Link,
    parts: [&[u8]; 2],
) -> std::io::Result<()> {
    match stream {
        Some(w) => {
            for part in parts {
                w.write_all(part).await?;
            }
            w.flush().await
        }
        None => {
            for part in parts {
                link.write_all(part).await?;
            }
            Ok(())
        }
    }
}

impl Session {
    /// A session whose first vardiff tick comes `first_tick` of the way
    /// through the tick interval (see [`first_tick`]).
    fn new(
        shared: Arc<Shared>,
        link: Arc<Link>,
        peer: SocketAddr,
        admission: Admission,
        first_tick: f64,
    ) -> Self {
        let config = &shared.config;
        let now = Instant::now();
        let core = Core::new(config, now);
        let tick_every = TICK.min(core.retarget_interval());
        let limiter = config
            .max_shares_per_second
            .map(|rate| RateLimiter::new(rate, rate.saturating_mul(2)));
        shared.metrics.connections_total.increment(1);
        shared.metrics.connections_active.increment(1.0);
        Self {
            shared,
            peer,
            admission,
            extranonce1: None,
            user_agent: None,
            workers: HashMap::new(),
            version_mask: 0,
            core,
            extranonce_subscribed: false,
            extranonce2_len: 0,
            out: String::new(),
            pending: VecDeque::new(),
            link,
            next_token: 0,
            close: false,
            started: now,
            now,
            last_read: now,
            next_tick: now + tick_every.mul_f64(first_tick.clamp(0.0, 1.0)),
            tick_every,
            reported_hashrate: 0,
            limiter,
            validations: 0,
            unscored_accepted: 0,
            fanout_from: None,
        }
    }

    fn push(&mut self, line: String) {
        if self.out.is_empty() {
            self.out.reserve(line.len().max(512));
        }
        self.out.push_str(&line);
    }

    fn finish(&mut self) {
        if self.unscored_accepted > 0 {
            // The address's next connection starts from these.
            self.score(None);
        }
        if let Some(en1) = self.extranonce1.take() {
            self.shared.release_extranonce1(en1);
        }
        self.report_hashrate(0);
        self.shared.metrics.connections_active.decrement(1.0);
        tracing::debug!(peer = %self.peer, "disconnected");
    }

    fn ready(&self) -> bool {
        self.extranonce1.is_some() && !self.workers.is_empty()
    }

    fn line_too_long(&mut self) {
        self.push(sv1::reply_error(
            &Id::Null,
            ErrorCode::Other,
            &format!("line longer than {} bytes", sv1::MAX_LINE_BYTES),
        ));
        self.close = true;
        self.score(Some(Fault::Malformed));
    }

    fn handle_line(&mut self, bytes: &[u8]) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match sv1::parse_line(bytes) {
            Ok(Message::Request { id, method }) => self.handle_request(id, method),
            Ok(Message::ClientReply { result, .. }) => {
                // The answer to our client.get_version.
                if let Some(version) = result.as_str() {
                    self.user_agent.get_or_insert_with(|| version.to_owned());
                }
            }
            Err(ParseError::Empty) => {}
            Err(ParseError::BadParams { id, method, reason }) => {
                self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Other,
                    &format!(
                        "bad params for {}: {}",
                        Excerpt::new(&method),
                        Excerpt::up_to(&reason, 200)
                    ),
                ));
                self.score(Some(Fault::Malformed));
            }
            Err(ParseError::MissingMethod { id }) => {
                self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Other,
                    "request has no method",
                ));
                self.score(Some(Fault::Malformed));
            }
            Err(e) => {
                // Invalid JSON or not JSON-RPC: say why, then hang up.
                self.push(sv1::reply_error(
                    &Id::Null,
                    ErrorCode::Other,
                    &e.to_string(),
                ));
                self.close = true;
                self.score(Some(Fault::Malformed));
            }
        }
    }

    fn handle_request(&mut self, id: Id, method: ClientMethod) {
        match method {
            ClientMethod::Subscribe {
                user_agent,
                extranonce1,
            } => {
                if self.extranonce1.is_none() {
                    match self.shared.lease_extranonce1(extranonce1.as_deref()) {
                        Some(en1) => self.extranonce1 = Some(en1),
                        None => {
                            self.push(sv1::reply_error(
                                &id,
                                ErrorCode::Other,
                                "pool is full: no extranonce1 left",
                            ));
                            self.close = true;
                            return;
                        }
                    }
                }
                self.user_agent = user_agent.or(self.user_agent.take());
                let en1 = self.extranonce1.unwrap_or_default();
                let sid = hex::encode(en1);
                // The current job's size; a job with another one (the
                // config was reloaded) brings `mining.set_extranonce`.
                self.extranonce2_len = match self.shared.work.current() {
                    Some(job) => job.extranonce2_len(),
                    None => self.shared.work.job_config().extranonce2_len,
                };
                self.push(sv1::subscribe_result(&id, &sid, &en1, self.extranonce2_len));
                self.maybe_start();
            }
            ClientMethod::Authorize { username, .. } => self.authorize(&id, username),
            ClientMethod::Configure {
                version_rolling,
                minimum_difficulty,
                subscribe_extranonce,
                unknown,
            } => {
                let mut refused = unknown;
                let mut granted = None;
                if let Some(vr) = version_rolling {
                    let mask = self.shared.config.version_mask & vr.mask;
                    if mask.count_ones() >= vr.min_bit_count && mask != 0 {
                        self.version_mask = mask;
                        granted = Some(mask);
                    } else {
                        self.version_mask = 0;
                        refused.push("version-rolling".to_owned());
                    }
                }
                if let Some(d) = minimum_difficulty {
                    self.suggest(d);
                }
                if subscribe_extranonce {
                    self.extranonce_subscribed = true;
                }
                let result = ConfigureResult {
                    version_rolling: granted,
                    minimum_difficulty: minimum_difficulty.map(|_| true),
                    subscribe_extranonce: subscribe_extranonce.then_some(true),
                    refused: &refused,
                };
                self.push(sv1::configure_result(&id, &result));
            }
            ClientMethod::SuggestDifficulty(d) => {
                self.suggest(d);
                self.push(sv1::reply_true(&id));
                self.resend_if_ready();
            }
            ClientMethod::SuggestTarget(target) => {
                self.suggest(Difficulty::from_target(target));
                self.push(sv1::reply_true(&id));
                self.resend_if_ready();
            }
            ClientMethod::ExtranonceSubscribe => {
                self.extranonce_subscribed = true;
                self.push(sv1::reply_true(&id));
            }
            ClientMethod::Submit {
                worker,
                job_id,
                extranonce2,
                ntime,
                nonce,
                version_bits,
            } => {
                self.submit(
                    id,
                    &worker,
                    &job_id,
                    &extranonce2,
                    ntime,
                    nonce,
                    version_bits,
                );
            }
            ClientMethod::GetTransactions { job_id } => match self.core.channel().job(&job_id) {
                Some(sent) => {
                    let txids: Vec<String> = sent
                        .job
                        .transactions()
                        .iter()
                        .map(|tx| tx.compute_txid().to_string())
                        .collect();
                    match sv1::reply_ok(&id, &txids) {
                        Ok(line) => self.push(line),
                        Err(e) => {
                            self.push(sv1::reply_error(&id, ErrorCode::Other, &e.to_string()))
                        }
                    }
                }
                None => self.push(sv1::reply_error(
                    &id,
                    ErrorCode::JobNotFound,
                    "job not found",
                )),
            },
            ClientMethod::Capabilities | ClientMethod::MultiVersion => {
                self.push(sv1::reply_true(&id))
            }
            ClientMethod::Unknown { method } => {
                // Not counted towards a ban: firmware sends extensions we
                // do not know.
                self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Other,
                    &format!("unknown method {}", Excerpt::new(&method)),
                ));
            }
        }
    }

    /// `mining.authorize`: checks the username and files the worker. Nothing
    /// is stored until the worker's first share is accepted. A connection
    /// may authorize at most `max_workers_per_connection` distinct workers;
    /// refusals (a bad username, one worker too many) count towards a ban,
    /// so a flood of authorizations ends the way a flood of bad requests
    /// does.
    fn authorize(&mut self, id: &Id, username: String) {
        if self.workers.contains_key(&username) {
            self.push(sv1::reply_true(id));
            return;
        }
        let cap = self.shared.config.max_workers_per_connection;
        if self.workers.len() >= cap {
            self.push(sv1::reply_error(
                id,
                ErrorCode::Unauthorized,
                &format!(
                    "this connection already authorized {cap} workers, the most it may; open another connection for more"
                ),
            ));
            self.score(Some(Fault::Malformed));
            return;
        }
        match MinerId::parse(&username) {
            // One payout address per connection: its jobs will commit to
            // that address in their coinbase (issue 23), so every share's
            // proof of work names who is paid. Not a fault: a proxy for
            // several owners opens a connection for each.
            Ok(miner)
                if self
                    .workers
                    .values()
                    .next()
                    .is_some_and(|w| w.miner.address != miner.address) =>
            {
                let first = self
                    .workers
                    .values()
                    .next()
                    .map(|w| w.miner.address.to_string())
                    .unwrap_or_default();
                self.push(sv1::reply_error(
                    id,
                    ErrorCode::Unauthorized,
                    &format!(
                        "this connection mines for {first}; every worker on it must use that address (open another connection for {})",
                        miner.address
                    ),
                ));
            }
            Ok(miner) => {
                let address = miner.address.to_address();
                if self.workers.is_empty() {
                    tracing::info!(peer = %self.peer, miner = %miner.address, worker = %miner.worker, "authorized");
                } else {
                    tracing::debug!(peer = %self.peer, miner = %miner.address, worker = %miner.worker, "authorized");
                }
                self.workers.insert(
                    username,
                    Authorized {
                        miner,
                        recorded: false,
                    },
                );
                if self.workers.len() == 1 {
                    // The connection's payout address: its jobs commit to it.
                    self.core.handle(Event::Bind(address), self.now);
                }
                self.push(sv1::reply_true(id));
                self.maybe_start();
            }
            Err(e) => {
                self.push(sv1::reply_error(
                    id,
                    ErrorCode::Unauthorized,
                    &e.to_string(),
                ));
                self.score(Some(Fault::Malformed));
            }
        }
    }

    /// Records `username`'s worker in the store, once per connection: its
    /// first share was just queued.
    fn record_worker(&mut self, username: &str) {
        if let Some(w) = self.workers.get_mut(username)
            && !w.recorded
        {
            w.recorded = true;
            self.shared.log.record_worker(WorkerSeen {
                miner: w.miner.address.to_address(),
                worker: w.miner.worker.clone(),
                time_ms: unix_ms(),
            });
        }
    }

    /// After subscribe and the first authorize: ask the version, send difficulty and work.
    fn maybe_start(&mut self) {
        if self.ready() && self.core.channel().is_empty() {
            if self.user_agent.is_none() {
                self.push(sv1::get_version(&Id::from(0u64)));
            }
            if let Some(job) = self.shared.work.current() {
                self.send_job(&job, false);
            }
        }
    }

    /// A new difficulty applies from the next job, so send the current one
    /// again, without cleaning: work in flight stays valid at its target.
    fn resend_if_ready(&mut self) {
        if self.ready()
            && !self.core.told_current()
            && let Some(job) = self.shared.work.current()
        {
            self.send_job(&job, true);
        }
    }

    /// Sends `job` (with `mining.set_difficulty` first if the difficulty
    /// changed). A `resend` cleans only if the job is on a previous block
    /// this miner has not had a job for.
    ///
    /// A job with another extranonce2 size than the miner was told (the
    /// operator reloaded the config) is preceded by `mining.set_extranonce`
    /// and sent clean, if the miner subscribed to extranonce changes; its
    /// older jobs stay valid for shares already in flight (each job checks
    /// its own size). A miner that did not subscribe is asked to reconnect
    /// and the connection closes, since it would keep rolling the old size;
    /// submits it had not yet sent are not read (none of them was
    /// acknowledged).
    fn send_job(&mut self, job: &Arc<Job>, resend: bool) {
        // A closing session (asked to reconnect, say) gets nothing more.
        if !self.ready() || self.close || self.core.binding().is_none() {
            return;
        }
        let mut restart = false;
        if job.extranonce2_len() != self.extranonce2_len {
            let en1 = self.extranonce1.unwrap_or_default();
            if !self.extranonce_subscribed {
                tracing::debug!(peer = %self.peer, "extranonce2 size changed; asking the miner to reconnect");
                self.shared.metrics.extranonce_reconnects.increment(1);
                self.push(sv1::show_message(&format!(
                    "the pool's extranonce2 size changed to {}; please reconnect",
                    job.extranonce2_len()
                )));
                self.push(sv1::reconnect_same_server());
                self.close = true;
                return;
            }
            self.shared.metrics.extranonce_changes.increment(1);
            self.extranonce2_len = job.extranonce2_len();
            self.push(sv1::set_extranonce(&en1, self.extranonce2_len));
            restart = true;
        }
        let seq = self.core.channel().job_seq() + 1;
        let work = Event::Work { job, seq, resend };
        for action in self.core.handle(work, self.now) {
            match action {
                Action::NewTarget { difficulty, .. } => {
                    self.push(sv1::set_difficulty(difficulty));
                }
                Action::SendJob {
                    job,
                    seq,
                    clean,
                    first,
                    binding,
                } => job.push_notify(&mut self.out, seq, clean || restart || first, &binding),
                other => debug_assert!(false, "work brought {other:?}"),
            }
        }
    }

    /// Files the jobs the fan-out wrote while the session was idle, as if
    /// it had sent them itself (the difficulty cannot have changed since:
    /// see [`Session::mirror`]).
    fn file_notes(&mut self, backlog: &mut Backlog) {
        for note in backlog.notes.drain(..) {
            let sent = Event::Sent {
                job: Arc::clone(&note.job),
                seq: note.seq,
                clean: note.clean,
                binding: note.binding,
            };
            self.core.handle(sent, self.now);
        }
    }

    /// What the fan-out needs to write the next job itself, if it may: the
    /// miner is subscribed, authorized and has a job, the connection is not
    /// closing, nothing it queued is unwritten, and no new difficulty waits to
    /// go out with the next job.
    fn mirror(&self) -> Option<Mirror> {
        // Replies waiting for their commit must reach the miner before a
        // job written around them.
        if !self.pending.is_empty() {
            return None;
        }
        self.mirror_after_replies()
    }

    /// [`Session::mirror`] once the share writer has written every pending
    /// reply (see [`Session::direct_replies`]).
    fn mirror_after_replies(&self) -> Option<Mirror> {
        // Anything else still queued (perhaps a new difficulty) must reach
        // the miner before a job written around it.
        if self.close || !self.ready() || !self.core.told_current() || !self.out.is_empty() {
            return None;
        }
        let channel = self.core.channel();
        Some(Mirror {
            binding: self.core.binding()?,
            extranonce2_len: self.extranonce2_len,
            job_seq: channel.job_seq(),
            last_prev_hash: channel.last_prev_hash()?,
            last_job_id: channel.last_job_id()?,
        })
    }
}

#[cfg(test)]
mod first_tick_tests {
    use super::first_tick;

    #[test]
    fn first_ticks_of_a_crowd_are_spread_over_half_the_interval() {
        // 1,000 connections opened together: their first ticks cover the
        // second half of the interval, none of 20 slices empty or crowded.
        let mut slices = [0u32; 20];
        for n in 0..1000 {
            let at = first_tick(n);
            assert!((0.5..1.0).contains(&at), "{at}");
            slices[((at - 0.5) * 40.0) as usize] += 1;
        }
        assert!(slices.iter().all(|&c| (40..=60).contains(&c)), "{slices:?}");
    }
}
