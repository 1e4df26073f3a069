//! One channel of work: the jobs sent down it and the shares accepted on
//! them.

use crate::job::{Binding, Job};
use crate::share::{ShareError, ShareKey, ShareSubmission, ValidShare, validate};
use proofpool_primitives::Difficulty;
use std::collections::HashMap;
use std::sync::Arc;

#[cfg(test)]
mod tests;

/// Jobs a channel remembers; older ones are forgotten (their shares are
/// then stale), so a long wait between blocks cannot grow the map forever.
pub(crate) const MAX_SENT_JOBS: usize = 64;

/// What the channel remembers about a job it sent.
#[derive(Debug)]
pub(crate) struct SentJob {
    pub(crate) job: Arc<Job>,
    /// The miner and the share target its coinbase commits to: what its
    /// shares are checked and credited at.
    pub(crate) binding: Binding,
    /// The difficulty the binding's target came from.
    pub(crate) difficulty: Difficulty,
    /// The channel's job counter when it was sent.
    pub(crate) seq: u64,
}

/// Why a share is refused, in no protocol's words: each front end says it
/// with its own error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its job is not (or no longer) one this channel was sent, or it was
    /// mined too long ago.
    Stale(String),
    /// This channel accepted the same share before.
    Duplicate,
    /// Its hash is above the share target its job committed to.
    LowDifficulty(String),
    /// Anything else wrong with it: extranonce length, version bits, ntime.
    Invalid(String),
}

/// A share that passed every check, ready for the share log.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The job it was mined on.
    pub(crate) job: Arc<Job>,
    /// What the job's coinbase commits to.
    pub(crate) binding: Binding,
    /// The difficulty it is credited at.
    pub(crate) credited: Difficulty,
    /// Its duplicate key: [`Channel::accepted`] files it once the share is
    /// handed on.
    pub(crate) key: ShareKey,
    /// What validation found.
    pub(crate) valid: ValidShare,
}

/// The jobs of one channel and the shares accepted on them.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    jobs: HashMap<String, SentJob>,
    job_seq: u64,
    /// Shares accepted on live jobs, for duplicates. Hashed with foldhash
    /// (seeded per process): std's SipHash made rehashing these sets, which
    /// under load grow together on every connection, a visible stall.
    seen: foldhash::HashSet<ShareKey>,
    /// The previous-block hash of the last job sent.
    last_prev_hash: Option<bitcoin::BlockHash>,
    /// The pool's id of the last job sent.
    last_job_id: Option<u64>,
}

impl Channel {
    /// Whether no job was sent yet (or every one was cleaned away).
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The counter of the last job sent (its id, in lowercase hex).
    pub(crate) fn job_seq(&self) -> u64 {
        self.job_seq
    }

    /// The previous-block hash of the last job sent.
    pub(crate) fn last_prev_hash(&self) -> Option<bitcoin::BlockHash> {
        self.last_prev_hash
    }

    /// The pool's id of the last job sent.
    pub(crate) fn last_job_id(&self) -> Option<u64> {
        self.last_job_id
    }

    /// The job sent under `id`.
    pub(crate) fn job(&self, id: &str) -> Option<&SentJob> {
        self.jobs.get(id)
    }

    /// Files `job`, sent under `seq` (lowercase hex) committing to
    /// `binding` at `difficulty`; `clean_now` if the miner was told to drop
    /// its older jobs, whose shares are then stale.
    pub(crate) fn record_job(
        &mut self,
        job: Arc<Job>,
        seq: u64,
        clean_now: bool,
        binding: Binding,
        difficulty: Difficulty,
    ) {
        if clean_now {
            self.jobs.clear();
            self.seen.clear();
        }
        self.last_prev_hash = Some(job.prev_hash());
        self.last_job_id = Some(job.id());
        self.job_seq = seq;
        self.jobs.insert(
            format!("{seq:x}"),
            SentJob {
                job,
                binding,
                difficulty,
                seq,
            },
        );
        if self.jobs.len() > MAX_SENT_JOBS {
            self.forget_oldest_job();
        }
    }

    /// Checks a share submitted on the job sent under `job_id`: a live job,
    /// well formed for it, not accepted before, and proof of work at the
    /// target the job committed to. `extranonce1` is the connection's,
    /// `version_mask` the one negotiated, `now_ms` the pool's clock.
    pub(crate) fn check(
        &self,
        job_id: &str,
        extranonce1: &[u8],
        submission: &ShareSubmission<'_>,
        version_mask: u32,
        now_ms: u64,
    ) -> Result<Checked, Refusal> {
        let Some(sent) = self.jobs.get(job_id) else {
            return Err(Refusal::Stale("job not found (stale)".to_owned()));
        };
        let key = ShareKey::new(&sent.job, &sent.binding, submission, version_mask)
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        if self.seen.contains(&key) {
            return Err(Refusal::Duplicate);
        }
        let valid = validate(
            &sent.job,
            extranonce1,
            submission,
            version_mask,
            &sent.binding,
            (now_ms / 1000) as u32,
        )
        .map_err(|e| match e {
            ShareError::LowDifficulty { .. } => Refusal::LowDifficulty(e.to_string()),
            ShareError::NtimeStale { .. } => Refusal::Stale(e.to_string()),
            _ => Refusal::Invalid(e.to_string()),
        })?;
        Ok(Checked {
            job: sent.job.clone(),
            binding: sent.binding,
            credited: sent.difficulty,
            key,
            valid,
        })
    }

    /// Files an accepted share's key: the same share again is a duplicate.
    pub(crate) fn accepted(&mut self, key: ShareKey) {
        self.seen.insert(key);
    }

    /// Drops the oldest job, and its duplicate keys once no other id names it.
    fn forget_oldest_job(&mut self) {
        let Some(oldest) = self
            .jobs
            .iter()
            .min_by_key(|(_, sent)| sent.seq)
            .map(|(sid, _)| sid.clone())
        else {
            return;
        };
        if let Some(gone) = self.jobs.remove(&oldest) {
            let id = gone.job.id();
            if !self.jobs.values().any(|sent| sent.job.id() == id) {
                self.seen.retain(|key| key.job_id != id);
            }
        }
    }
}
