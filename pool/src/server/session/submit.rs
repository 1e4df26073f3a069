//! The share path: `mining.submit` from rate limit to durable reply.
//!
//! In order: the rate limit, the session checks (subscribed, worker, job),
//! the duplicate check, validation, then the share log. An accepted share
//! feeds vardiff and the ban score; its reply waits in `out` until the
//! share's batch is committed. Nothing here allocates beyond the share
//! record itself and the error replies.

use super::Session;
use crate::server::blocks::{self, Solution};
use crate::server::telemetry::Reject;
use crate::server::unix_ms;
use crate::share::{ShareError, ShareKey, ShareSubmission, validate};
use proofpool_store::{Committed, NewShare, SubmitError, WriteError};
use proofpool_stratum::{self as sv1, ErrorCode, Id};
use std::time::Instant;
use tokio::sync::oneshot;

/// Validations timed: one in this many per session.
const TIME_ONE_IN: u64 = 64;

/// A `mining.submit` whose reply waits for the durable commit.
#[derive(Debug)]
pub(super) struct PendingReply {
    at: usize,
    id: Id,
    ack: oneshot::Receiver<Result<Committed, WriteError>>,
    /// Tells the block task the solving share's sequence number.
    block: Option<oneshot::Sender<u64>>,
}

impl Session {
    /// Answers a submit with an error, counts it, and scores it towards a ban.
    fn reject(&mut self, id: &Id, code: ErrorCode, message: &str, reason: Reject) {
        self.push(sv1::reply_error(id, code, message));
        self.shared.metrics.rejected(reason).increment(1);
        if let Some(fault) = reason.fault() {
            self.score(Some(fault));
        }
    }

    /// Waits for every pending submit's commit and writes its reply in
    /// place: `true` only for a durable share.
    pub(super) async fn settle_pending(&mut self) {
        let out = std::mem::take(&mut self.out);
        let mut pos = 0;
        let mut pending = std::mem::take(&mut self.pending);
        for p in pending.drain(..) {
            self.out.push_str(&out[pos..p.at]);
            pos = p.at;
            match p.ack.await {
                Ok(Ok(committed)) => {
                    self.out.push_str(&sv1::reply_true(&p.id));
                    self.shared.metrics.shares_accepted.increment(1);
                    if let Some(block) = p.block {
                        // The block task may have finished already.
                        let _ = block.send(committed.seq);
                    }
                }
                Ok(Err(e)) => {
                    self.shared
                        .metrics
                        .rejected(Reject::StoreFailed)
                        .increment(1);
                    self.out
                        .push_str(&sv1::reply_error(&p.id, ErrorCode::Other, &e.to_string()))
                }
                Err(_) => {
                    self.shared
                        .metrics
                        .rejected(Reject::StoreFailed)
                        .increment(1);
                    self.out.push_str(&sv1::reply_error(
                        &p.id,
                        ErrorCode::Other,
                        "share store stopped; share not recorded",
                    ))
                }
            }
        }
        // Keep the vector's capacity for the next batch.
        self.pending = pending;
        self.out.push_str(&out[pos..]);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn submit(
        &mut self,
        id: Id,
        worker: &str,
        job_id: &str,
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version_bits: Option<u32>,
    ) {
        if let Some(limiter) = &mut self.limiter
            && !limiter.allow(self.now)
        {
            self.reject(&id, ErrorCode::Other, "rate limited", Reject::RateLimited);
            return;
        }
        let Some(en1) = self.extranonce1 else {
            self.reject(
                &id,
                ErrorCode::NotSubscribed,
                "not subscribed",
                Reject::NotSubscribed,
            );
            return;
        };
        let Some(miner) = self.workers.get(worker).cloned() else {
            self.reject(
                &id,
                ErrorCode::Unauthorized,
                &format!("worker {worker} is not authorized on this connection"),
                Reject::Unauthorized,
            );
            return;
        };
        let Some(sent) = self.jobs.get(job_id) else {
            self.reject(
                &id,
                ErrorCode::JobNotFound,
                "job not found (stale)",
                Reject::Stale,
            );
            return;
        };
        let (job, target, credited) = (sent.job.clone(), sent.target, sent.difficulty);
        let submission = ShareSubmission {
            extranonce2,
            ntime,
            nonce,
            version_bits,
        };
        let key = match ShareKey::new(&job, &submission, self.version_mask) {
            Ok(key) => key,
            Err(e) => {
                self.reject(&id, ErrorCode::Other, &e.to_string(), Reject::Invalid);
                return;
            }
        };
        if self.seen.contains(&key) {
            self.reject(
                &id,
                ErrorCode::Duplicate,
                "duplicate share",
                Reject::Duplicate,
            );
            return;
        }
        let now_ms = unix_ms();
        let timed = self.validations.is_multiple_of(TIME_ONE_IN);
        self.validations = self.validations.wrapping_add(1);
        let started = timed.then(Instant::now);
        let result = validate(
            &job,
            &en1,
            &submission,
            self.version_mask,
            target,
            (now_ms / 1000) as u32,
        );
        if let Some(started) = started {
            self.shared
                .metrics
                .validation_seconds
                .record(started.elapsed().as_secs_f64());
        }
        let valid = match result {
            Ok(valid) => valid,
            Err(e) => {
                let (code, reason) = match e {
                    ShareError::LowDifficulty { .. } => {
                        (ErrorCode::LowDifficulty, Reject::LowDifficulty)
                    }
                    _ => (ErrorCode::Other, Reject::Invalid),
                };
                self.reject(&id, code, &e.to_string(), reason);
                return;
            }
        };
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
                let reason = match e {
                    SubmitError::Overloaded { .. } => Reject::StoreOverloaded,
                    _ => Reject::StoreFailed,
                };
                self.reject(&id, ErrorCode::Other, &e.to_string(), reason);
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
        // Scored with the next fault or tick: no lock per accepted share.
        self.unscored_accepted = self.unscored_accepted.saturating_add(1);
        let elapsed = self.elapsed();
        if let Some(next) = self.vardiff.on_share(elapsed, credited)
            && self.retarget
        {
            self.apply_difficulty(next);
        }
    }
}
