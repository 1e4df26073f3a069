//! One miner connection: the Stratum V1 state machine.
//!
//! Requests are handled strictly in arrival order, so a Bitaxe that pipelines
//! `configure`, `subscribe`, `authorize` and `suggest_difficulty` gets its
//! replies in order, and nothing (not even `set_version_mask`) is sent before
//! the subscribe result. Replies are batched into one buffer and written once
//! per read. Every error a client can cause is a reply, never a panic; only
//! an oversized line or invalid JSON closes the connection.

use super::blocks::{self, Solution};
use super::lines::{Line, LineReader};
use super::{Shared, unix_ms};
use crate::job::Job;
use crate::share::{ShareError, ShareKey, ShareSubmission, validate};
use crate::username::MinerId;
use proofpool_primitives::{Difficulty, U256};
use proofpool_store::{Committed, NewShare, WorkerSeen, WriteError};
use proofpool_stratum::{
    self as sv1, ClientMethod, ConfigureResult, ErrorCode, Id, Message, ParseError,
};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// What the session remembers about a job it sent.
#[derive(Debug)]
struct SentJob {
    job: Arc<Job>,
    target: U256,
}

#[derive(Debug)]
pub(crate) struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    extranonce1: Option<[u8; 4]>,
    user_agent: Option<String>,
    workers: HashMap<String, MinerId>,
    version_mask: u32,
    difficulty: Difficulty,
    sent_difficulty: Option<Difficulty>,
    jobs: HashMap<String, SentJob>,
    job_seq: u64,
    seen: HashSet<ShareKey>,
    extranonce_subscribed: bool,
    out: String,
    /// Submit replies waiting for their share's batch to commit, in order,
    /// each with its position in `out`.
    pending: Vec<PendingReply>,
    close: bool,
}

/// A `mining.submit` whose reply waits for the durable commit.
#[derive(Debug)]
struct PendingReply {
    at: usize,
    id: Id,
    ack: oneshot::Receiver<Result<Committed, WriteError>>,
    /// Tells the block task the solving share's sequence number.
    block: Option<oneshot::Sender<u64>>,
}

/// Serves one connection until it closes or the pool stops.
pub(crate) async fn serve(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let (read, mut write) = socket.into_split();
    let mut reader = LineReader::new(read, sv1::MAX_LINE_BYTES);
    let mut jobs = shared.work.subscribe();
    let mut stop = shared.stop.subscribe();
    let mut session = Session::new(shared.clone(), peer);
    tracing::debug!(%peer, "connected");
    loop {
        tokio::select! {
            line = reader.next() => match line {
                Ok(Line::Complete(bytes)) => {
                    session.handle_line(bytes);
                    // Handle every line already received before writing, so
                    // pipelined submits share one commit and one write.
                    while !session.close {
                        match reader.next_buffered() {
                            Some(Line::Complete(bytes)) => session.handle_line(bytes),
                            Some(_) => {
                                session.push(sv1::reply_error(&Id::Null, ErrorCode::Other, &format!("line longer than {} bytes", sv1::MAX_LINE_BYTES)));
                                session.close = true;
                            }
                            None => break,
                        }
                    }
                }
                Ok(Line::TooLong) => {
                    session.push(sv1::reply_error(&Id::Null, ErrorCode::Other, &format!("line longer than {} bytes", sv1::MAX_LINE_BYTES)));
                    session.close = true;
                }
                Ok(Line::Eof) => break,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            changed = jobs.changed() => {
                if changed.is_err() {
                    break;
                }
                let job = jobs.borrow_and_update().clone();
                if let Some(job) = job {
                    session.send_job(&job);
                }
            }
            _ = stop.recv() => {
                session.push(sv1::show_message("pool is restarting"));
                session.close = true;
            }
        }
        if !session.pending.is_empty() {
            session.settle_pending().await;
        }
        if !session.out.is_empty() {
            if let Err(e) = write.write_all(session.out.as_bytes()).await {
                tracing::debug!(%peer, error = %e, "write failed");
                break;
            }
            session.out.clear();
        }
        if session.close {
            break;
        }
    }
    if let Err(e) = write.shutdown().await {
        tracing::trace!(%peer, error = %e, "shutdown failed");
    }
    session.finish();
}

impl Session {
    fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        let difficulty = shared.config.start_difficulty;
        Self {
            shared,
            peer,
            extranonce1: None,
            user_agent: None,
            workers: HashMap::new(),
            version_mask: 0,
            difficulty,
            sent_difficulty: None,
            jobs: HashMap::new(),
            job_seq: 0,
            seen: HashSet::new(),
            extranonce_subscribed: false,
            out: String::new(),
            pending: Vec::new(),
            close: false,
        }
    }

    fn push(&mut self, line: String) {
        self.out.push_str(&line);
    }

    /// Waits for every pending submit's commit and writes its reply in
    /// place: `true` only for a durable share.
    async fn settle_pending(&mut self) {
        let out = std::mem::take(&mut self.out);
        let mut pos = 0;
        for p in self.pending.drain(..) {
            self.out.push_str(&out[pos..p.at]);
            pos = p.at;
            match p.ack.await {
                Ok(Ok(committed)) => {
                    self.out.push_str(&sv1::reply_true(&p.id));
                    if let Some(block) = p.block {
                        // The block task may have finished already.
                        let _ = block.send(committed.seq);
                    }
                }
                Ok(Err(e)) => {
                    self.out
                        .push_str(&sv1::reply_error(&p.id, ErrorCode::Other, &e.to_string()))
                }
                Err(_) => self.out.push_str(&sv1::reply_error(
                    &p.id,
                    ErrorCode::Other,
                    "share store stopped; share not recorded",
                )),
            }
        }
        self.out.push_str(&out[pos..]);
    }

    fn finish(&mut self) {
        if let Some(en1) = self.extranonce1.take() {
            self.shared.release_extranonce1(en1);
        }
        tracing::debug!(peer = %self.peer, "disconnected");
    }

    fn ready(&self) -> bool {
        self.extranonce1.is_some() && !self.workers.is_empty()
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
                    &format!("bad params for {method}: {reason}"),
                ));
            }
            Err(ParseError::MissingMethod { id }) => {
                self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Other,
                    "request has no method",
                ));
            }
            Err(e) => {
                // Invalid JSON or not JSON-RPC: say why, then hang up.
                self.push(sv1::reply_error(
                    &Id::Null,
                    ErrorCode::Other,
                    &e.to_string(),
                ));
                self.close = true;
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
                self.push(sv1::subscribe_result(
                    &id,
                    &sid,
                    &en1,
                    self.shared.config.extranonce2_len,
                ));
                self.maybe_start();
            }
            ClientMethod::Authorize { username, .. } => match MinerId::parse(&username) {
                Ok(miner) => {
                    tracing::info!(peer = %self.peer, miner = %miner.address, worker = %miner.worker, "authorized");
                    self.shared.log.record_worker(WorkerSeen {
                        miner: miner.address.to_address(),
                        worker: miner.worker.clone(),
                        time_ms: unix_ms(),
                    });
                    self.workers.insert(username, miner);
                    self.push(sv1::reply_true(&id));
                    self.maybe_start();
                }
                Err(e) => self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Unauthorized,
                    &e.to_string(),
                )),
            },
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
                    self.difficulty = self.clamp(d);
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
                self.difficulty = self.clamp(d);
                self.push(sv1::reply_true(&id));
                self.resend_if_ready();
            }
            ClientMethod::SuggestTarget(target) => {
                self.difficulty = self.clamp(Difficulty::from_target(target));
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
            ClientMethod::GetTransactions { job_id } => match self.jobs.get(&job_id) {
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
                self.push(sv1::reply_error(
                    &id,
                    ErrorCode::Other,
                    &format!("unknown method {method}"),
                ));
            }
        }
    }

    fn clamp(&self, d: Difficulty) -> Difficulty {
        d.clamp(
            self.shared.config.min_difficulty,
            self.shared.config.max_difficulty,
        )
    }

    /// After subscribe and the first authorize: ask the version, send difficulty and work.
    fn maybe_start(&mut self) {
        if self.ready() && self.jobs.is_empty() {
            if self.user_agent.is_none() {
                self.push(sv1::get_version(&Id::from(0u64)));
            }
            if let Some(job) = self.shared.work.current() {
                self.send_job(&job);
            }
        }
    }

    /// A new difficulty applies from the next job, so send one now.
    fn resend_if_ready(&mut self) {
        if self.ready()
            && Some(self.difficulty) != self.sent_difficulty
            && let Some(job) = self.shared.work.current()
        {
            self.send_job(&job);
        }
    }

    fn send_job(&mut self, job: &Arc<Job>) {
        if !self.ready() {
            return;
        }
        if Some(self.difficulty) != self.sent_difficulty {
            self.push(sv1::set_difficulty(self.difficulty));
            self.sent_difficulty = Some(self.difficulty);
        }
        let clean = job.clean_jobs() || self.jobs.is_empty();
        if job.clean_jobs() {
            self.jobs.clear();
            self.seen.clear();
        }
        self.job_seq += 1;
        let sid = format!("{:x}", self.job_seq);
        self.push(sv1::notify(&job.notify_params(&sid, clean)));
        self.jobs.insert(
            sid,
            SentJob {
                job: job.clone(),
                target: self.difficulty.to_target(),
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        id: Id,
        worker: &str,
        job_id: &str,
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version_bits: Option<u32>,
    ) {
        let Some(en1) = self.extranonce1 else {
            self.push(sv1::reply_error(
                &id,
                ErrorCode::NotSubscribed,
                "not subscribed",
            ));
            return;
        };
        let Some(miner) = self.workers.get(worker).cloned() else {
            self.push(sv1::reply_error(
                &id,
                ErrorCode::Unauthorized,
                &format!("worker {worker} is not authorized on this connection"),
            ));
            return;
        };
        let Some(sent) = self.jobs.get(job_id) else {
            self.push(sv1::reply_error(
                &id,
                ErrorCode::JobNotFound,
                "job not found (stale)",
            ));
            return;
        };
        let (job, target) = (sent.job.clone(), sent.target);
        let submission = ShareSubmission {
            extranonce2,
            ntime,
            nonce,
            version_bits,
        };
        let key = match ShareKey::new(&job, &submission, self.version_mask) {
            Ok(key) => key,
            Err(e) => {
                self.push(sv1::reply_error(&id, ErrorCode::Other, &e.to_string()));
                return;
            }
        };
        if self.seen.contains(&key) {
            self.push(sv1::reply_error(
                &id,
                ErrorCode::Duplicate,
                "duplicate share",
            ));
            return;
        }
        let now_ms = unix_ms();
        match validate(
            &job,
            &en1,
            &submission,
            self.version_mask,
            target,
            (now_ms / 1000) as u32,
        ) {
            Ok(valid) => {
                let share = NewShare {
                    time_ms: now_ms,
                    instance: self.shared.config.instance_id,
                    job_id: job.id(),
                    miner: miner.address.to_address(),
                    worker: miner.worker.clone(),
                    extranonce1: en1,
                    extranonce2: extranonce2.to_vec(),
                    ntime,
                    nonce,
                    version: valid.version,
                    hash: valid.hash.0,
                    share_target: target,
                    work: valid.work.0,
                    network_target: job.network_target(),
                };
                let ack = match self.shared.log.submit(share) {
                    Ok(ack) => ack,
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e, "share refused");
                        self.push(sv1::reply_error(&id, ErrorCode::Other, &e.to_string()));
                        return;
                    }
                };
                self.seen.insert(key);
                // Only the first solution per previous block is submitted: on
                // a chain as easy as regtest every share can meet the target,
                // and the rest would only be stale siblings.
                let block = if valid.meets_network && self.shared.claim_height(job.prev_hash()) {
                    let (seq_tx, seq_rx) = oneshot::channel();
                    let solution = Solution {
                        job,
                        extranonce1: en1,
                        extranonce2: extranonce2.to_vec(),
                        ntime,
                        nonce,
                        version: valid.version,
                        hash_display: valid.block_hash().to_string(),
                        finder: miner.address.to_address(),
                        worker: miner.worker.clone(),
                        share_seq: seq_rx,
                    };
                    tokio::spawn(blocks::submit(self.shared.clone(), solution));
                    Some(seq_tx)
                } else {
                    None
                };
                self.pending.push(PendingReply {
                    at: self.out.len(),
                    id,
                    ack,
                    block,
                });
            }
            Err(e) => {
                let code = match e {
                    ShareError::LowDifficulty { .. } => ErrorCode::LowDifficulty,
                    _ => ErrorCode::Other,
                };
                self.push(sv1::reply_error(&id, code, &e.to_string()));
            }
        }
    }
}
