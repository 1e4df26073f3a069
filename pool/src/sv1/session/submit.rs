//! The share path: `mining.submit` from rate limit to durable reply.
//!
//! In order: the rate limit, the session checks (subscribed, worker, job),
//! the duplicate check, validation, then the share log. An accepted share
//! feeds vardiff and the ban score; its reply waits in `out` until the
//! share's batch is committed. Nothing here allocates beyond the share
//! record itself and the error replies.

use super::Session;
use crate::server::blocks;
use crate::server::fanout::{Backlog, DirectReply, Link, Outcome};
use crate::server::telemetry::{Protocol, Reject};
use crate::server::unix_ms;
use crate::session::{Accepted, Action, Event, Refusal, Submit};
use crate::share::ShareSubmission;
use proofpool_primitives::Excerpt;
use proofpool_store::{SubmitError, WriteError};
use proofpool_stratum::{self as sv1, ErrorCode, Id};
use std::collections::VecDeque;
use std::time::Instant;
use tokio::sync::oneshot;

/// Validations timed: one in this many per session.
const TIME_ONE_IN: u64 = 64;

/// A `mining.submit` whose reply waits for the durable commit.
#[derive(Debug)]
pub(super) struct PendingReply {
    /// Where in the session's `out` the reply goes.
    at: usize,
    /// When the session read the submit.
    read_at: Instant,
    id: Id,
    /// The share's token in the share log: its outcome comes back under it.
    token: u64,
    /// Tells the block task the solving share's sequence number, or that
    /// the store did not write it.
    block: Option<oneshot::Sender<Result<u64, WriteError>>>,
}

impl Session {
    /// Answers a submit with an error, counts it, and scores it towards a ban.
    fn reject(&mut self, id: &Id, code: ErrorCode, message: &str, reason: Reject) {
        self.push(sv1::reply_error(id, code, message));
        self.shared.metrics.reject(Protocol::V1, reason);
        if let Some(fault) = reason.fault() {
            self.score(Some(fault));
        }
    }

    /// Waits for every pending submit's commit and fills in its reply:
    /// `true` only for a durable share. For a connection that is closing
    /// (busy, so every outcome comes to it).
    pub(super) async fn settle_pending(&mut self, link: &Link, backlog: &mut Backlog) {
        loop {
            link.take_outcomes(&mut backlog.outcomes);
            self.settle_ready(&mut backlog.outcomes);
            if self.pending.is_empty() {
                return;
            }
            link.woken().await;
        }
    }

    /// Waits for the outcomes of the pending submits if one of them found a
    /// block (see [`Session::settle_pending`]); returns at once otherwise.
    pub(super) async fn await_block_outcomes(&mut self, link: &Link, backlog: &mut Backlog) {
        if self.pending.iter().any(|p| p.block.is_some()) {
            self.settle_pending(link, backlog).await;
        }
    }

    /// Forgets the first `n` pending submits: the share writer wrote their
    /// `true` itself while the session was idle (nothing else was queued,
    /// so they are all at the start of an empty `out`).
    pub(super) fn answered(&mut self, n: usize) {
        self.pending.drain(..n.min(self.pending.len()));
    }

    /// Fills in the replies of the pending submits at the front whose
    /// outcome arrived, in order, and stops at the first still waiting.
    pub(super) fn settle_ready(&mut self, outcomes: &mut VecDeque<(u64, Outcome)>) {
        if outcomes.is_empty() || self.pending.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.out);
        let mut pos = 0;
        while let (Some(front), Some(&(token, _))) = (self.pending.front(), outcomes.front()) {
            // Outcomes come in queue order, so this never happens; an
            // outcome for no waiting submit is dropped.
            if front.token != token {
                tracing::error!(peer = %self.peer, token, expected = front.token, "share outcome out of order; dropped");
                outcomes.pop_front();
                continue;
            }
            let (Some(p), Some((_, outcome))) = (self.pending.pop_front(), outcomes.pop_front())
            else {
                break;
            };
            self.out.push_str(&old[pos..p.at]);
            pos = p.at;
            self.reply_to(p, outcome);
        }
        // The replies still waiting move with the text inserted before them.
        let shift = self.out.len() - pos;
        for p in &mut self.pending {
            p.at += shift;
        }
        self.out.push_str(&old[pos..]);
    }

    /// The pending submits the share writer may answer itself while the
    /// session is idle: all of them, if nothing else waits to be written and
    /// none found a block (its sequence number goes to the block task).
    pub(super) fn direct_replies(&self) -> impl Iterator<Item = DirectReply> + '_ {
        let eligible =
            !self.close && self.out.is_empty() && self.pending.iter().all(|p| p.block.is_none());
        self.pending
            .iter()
            .filter(move |_| eligible)
            .map(|p| DirectReply {
                token: p.token,
                id: p.id.clone(),
                read_at: p.read_at,
            })
    }

    /// Writes the reply to a submit whose batch committed (or failed).
    fn reply_to(&mut self, p: PendingReply, outcome: Outcome) {
        match outcome {
            Ok(committed) => {
                self.out.push_str(&sv1::reply_true(&p.id));
                self.shared.metrics.accept(Protocol::V1, 1);
                self.shared.metrics.replies_session.increment(1);
                self.shared
                    .metrics
                    .submit_seconds
                    .record(self.now.saturating_duration_since(p.read_at));
                if let Some(block) = p.block {
                    // The block task may have finished already.
                    let _ = block.send(Ok(committed.seq));
                }
            }
            Err(e) => {
                if let Some(block) = p.block {
                    // Definitely not written: the block task writes it again.
                    let _ = block.send(Err(e.clone()));
                }
                self.shared
                    .metrics
                    .reject(Protocol::V1, Reject::StoreFailed);
                self.out
                    .push_str(&sv1::reply_error(&p.id, ErrorCode::Other, &e.to_string()))
            }
        }
    }

    /// How much of `out` may be written now: everything before the first
    /// reply still waiting for its commit.
    pub(super) fn writable(&self) -> usize {
        self.pending.front().map_or(self.out.len(), |p| p.at)
    }

    /// Forgets the first `n` bytes of `out`, which were written.
    pub(super) fn written(&mut self, n: usize) {
        if n == self.out.len() && self.pending.is_empty() {
            // Given back rather than kept: most connections are idle most
            // of the time, and the next reply is rarely far off in size.
            self.out = String::new();
            return;
        }
        self.out.drain(..n);
        for p in &mut self.pending {
            p.at -= n;
        }
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
        let Some(miner) = self.workers.get(worker).map(|w| w.miner.clone()) else {
            self.reject(
                &id,
                ErrorCode::Unauthorized,
                &format!(
                    "worker {} is not authorized on this connection",
                    Excerpt::new(worker)
                ),
                Reject::Unauthorized,
            );
            return;
        };
        let now_ms = unix_ms();
        let timed = self.validations.is_multiple_of(TIME_ONE_IN);
        self.validations = self.validations.wrapping_add(1);
        let started = timed.then(Instant::now);
        let checked = self.core.handle(
            Event::Submit(Submit {
                job_id,
                extranonce1: en1,
                share: ShareSubmission {
                    extranonce2,
                    ntime,
                    nonce,
                    version_bits,
                },
                version_mask: self.version_mask,
                miner: &miner,
                instance: self.shared.config.instance_id,
                now_ms,
            }),
            self.now,
        );
        if let Some(started) = started {
            self.shared
                .metrics
                .validation_seconds
                .record(started.elapsed().as_secs_f64());
        }
        let accepted = match checked.into_iter().next() {
            Some(Action::Accept(accepted)) => accepted,
            Some(Action::Refuse(refusal)) => {
                let (code, reason, message) = match refusal {
                    Refusal::Stale(m) => (ErrorCode::JobNotFound, Reject::Stale, m),
                    Refusal::Duplicate => (
                        ErrorCode::Duplicate,
                        Reject::Duplicate,
                        "duplicate share".to_owned(),
                    ),
                    Refusal::LowDifficulty(m) => {
                        (ErrorCode::LowDifficulty, Reject::LowDifficulty, m)
                    }
                    Refusal::Invalid(m) => (ErrorCode::Other, Reject::Invalid, m),
                };
                self.reject(&id, code, &message, reason);
                return;
            }
            other => {
                debug_assert!(false, "a submit brought {other:?}");
                return;
            }
        };
        let Accepted {
            share,
            solved,
            credited,
            key,
        } = *accepted;
        let token = self.next_token;
        let sink: std::sync::Arc<dyn proofpool_store::AckSink> = self.link.clone();
        let (submitted, block) = blocks::hand_over(&self.shared, share, solved, |share| {
            self.shared.log.submit_to(share, sink, token)
        });
        match submitted {
            Ok(()) => {
                self.next_token += 1;
                self.record_worker(worker);
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "share refused");
                let reason = match e {
                    SubmitError::Overloaded { .. } => Reject::StoreOverloaded,
                    _ => Reject::StoreFailed,
                };
                let Some(block) = block else {
                    self.reject(&id, ErrorCode::Other, &e.to_string(), reason);
                    return;
                };
                // The block task writes the share once the store takes
                // shares again; the same share sent again is a duplicate.
                let _ = block.send(Err(WriteError(e.to_string())));
                let filed = Event::Recorded {
                    key,
                    credited: None,
                };
                self.core.handle(filed, self.now);
                self.reject(
                    &id,
                    ErrorCode::Other,
                    &format!(
                        "{e}; this share solved a block, which was submitted, and the share is recorded once the store takes shares again"
                    ),
                    reason,
                );
                return;
            }
        };
        self.pending.push_back(PendingReply {
            at: self.out.len(),
            read_at: self.now,
            id,
            token,
            block,
        });
        // Scored with the next fault or tick: no lock per accepted share.
        self.unscored_accepted = self.unscored_accepted.saturating_add(1);
        let recorded = Event::Recorded {
            key,
            credited: Some(credited),
        };
        for action in self.core.handle(recorded, self.now) {
            if let Action::Retarget(next) = action {
                self.retargeted(next);
            }
        }
    }
}
