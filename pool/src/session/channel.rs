//! One channel of work: the jobs sent down it and the shares accepted on
//! them.

use crate::job::{Binding, Job};
use crate::share::{ShareError, ShareKey, ShareSubmission, validate};
use crate::username::MinerId;
use proofpool_primitives::{Address, Difficulty};
use proofpool_store::NewShare;
use std::collections::HashMap;
use std::sync::Arc;

#[cfg(test)]
mod tests;

/// Jobs a channel remembers; older ones are forgotten (their shares are
/// then stale), so a long wait between blocks cannot grow the map forever.
pub const MAX_SENT_JOBS: usize = 64;

/// What the channel remembers about a job it sent.
#[derive(Debug)]
pub struct SentJob {
    /// The pool's job.
    pub job: Arc<Job>,
    /// The miner and the share target its coinbase commits to: what its
    /// shares are checked and credited at.
    pub binding: Binding,
    /// The difficulty the binding's target came from.
    pub difficulty: Difficulty,
    /// The channel's job counter when it was sent.
    pub seq: u64,
}

/// Why a share is refused, in no protocol's words: each front end says it
/// with its own error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
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

/// A share as any protocol submits it, with what its connection knows.
#[derive(Debug, Clone, Copy)]
pub struct Submit<'a> {
    /// The id the job was sent under (lowercase hex of the channel's
    /// counter).
    pub job_id: &'a str,
    /// The channel's leased extranonce1.
    pub extranonce1: [u8; 4],
    /// What the miner sent.
    pub share: ShareSubmission<'a>,
    /// The version bits the miner may roll on this channel.
    pub version_mask: u32,
    /// The worker it was submitted for: its rig name goes in the record,
    /// and its address is the block's finder.
    pub miner: &'a MinerId,
    /// The pool instance (the share log's and the epoch file's).
    pub instance: u8,
    /// The pool's clock, unix milliseconds.
    pub now_ms: u64,
}

/// A share that passed every check, ready for the share log.
#[derive(Debug)]
pub struct Accepted {
    /// The record the share log gets.
    pub share: NewShare,
    /// If it also meets the network target: the block it solves.
    pub solved: Option<Solved>,
    /// The difficulty it is credited at (the job's).
    pub credited: Difficulty,
    /// Its duplicate key: [`Channel::accepted`] files it once the share is
    /// handed on.
    pub key: ShareKey,
}

/// A block a share solved: everything needed to assemble and submit it.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The job it was mined on.
    pub job: Arc<Job>,
    /// What the job's coinbase commits to.
    pub binding: Binding,
    /// The channel's extranonce1.
    pub extranonce1: [u8; 4],
    /// The miner's extranonce2 (or the pool's zeros, header-only).
    pub extranonce2: Vec<u8>,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Header version after rolling.
    pub version: u32,
    /// The block hash, display order.
    pub hash_display: String,
    /// The worker's address.
    pub finder: Address,
    /// The worker's rig name.
    pub worker: String,
}

/// The jobs of one channel and the shares accepted on them.
#[derive(Debug, Default)]
pub struct Channel {
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
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The counter of the last job sent (its id, in lowercase hex).
    pub fn job_seq(&self) -> u64 {
        self.job_seq
    }

    /// The previous-block hash of the last job sent.
    pub fn last_prev_hash(&self) -> Option<bitcoin::BlockHash> {
        self.last_prev_hash
    }

    /// The pool's id of the last job sent.
    pub fn last_job_id(&self) -> Option<u64> {
        self.last_job_id
    }

    /// The job sent under `id`.
    pub fn job(&self, id: &str) -> Option<&SentJob> {
        self.jobs.get(id)
    }

    /// Files `job`, sent under `seq` (lowercase hex) committing to
    /// `binding` at `difficulty`; `clean_now` if the miner was told to drop
    /// its older jobs, whose shares are then stale.
    pub fn record_job(
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

    /// Checks a share submitted on the job sent under `s.job_id`: a live
    /// job, well formed for it, not accepted before, and proof of work at
    /// the target the job committed to. What passes comes back as the
    /// share log's record (credited to the address the job's coinbase
    /// commits to) and, if it meets the network target, the block.
    /// Nothing is filed: [`Channel::accepted`] does that once the share is
    /// handed on.
    pub fn submit(&self, s: &Submit<'_>) -> Result<Accepted, Refusal> {
        let Some(sent) = self.jobs.get(s.job_id) else {
            return Err(Refusal::Stale("job not found (stale)".to_owned()));
        };
        let key = ShareKey::new(&sent.job, &sent.binding, &s.share, s.version_mask)
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        if self.seen.contains(&key) {
            return Err(Refusal::Duplicate);
        }
        let valid = validate(
            &sent.job,
            &s.extranonce1,
            &s.share,
            s.version_mask,
            &sent.binding,
            (s.now_ms / 1000) as u32,
        )
        .map_err(|e| match e {
            ShareError::LowDifficulty { .. } => Refusal::LowDifficulty(e.to_string()),
            ShareError::NtimeStale { .. } => Refusal::Stale(e.to_string()),
            _ => Refusal::Invalid(e.to_string()),
        })?;
        let job = &sent.job;
        let binding = sent.binding;
        let share = NewShare {
            time_ms: s.now_ms,
            instance: s.instance,
            job_id: job.id(),
            // The address the job's coinbase commits to (the connection's
            // or channel's one address, so the worker's as well).
            miner: binding.miner(),
            worker: s.miner.worker.clone(),
            extranonce1: s.extranonce1,
            extranonce2: s.share.extranonce2.to_vec(),
            ntime: s.share.ntime,
            nonce: s.share.nonce,
            version: valid.version,
            hash: valid.hash.0,
            share_target: binding.target(),
            work: valid.work.0,
            network_target: job.network_target(),
        };
        let solved = valid.meets_network.then(|| Solved {
            job: job.clone(),
            binding,
            extranonce1: s.extranonce1,
            extranonce2: s.share.extranonce2.to_vec(),
            ntime: s.share.ntime,
            nonce: s.share.nonce,
            version: valid.version,
            hash_display: valid.block_hash().to_string(),
            finder: s.miner.address.to_address(),
            worker: s.miner.worker.clone(),
        });
        Ok(Accepted {
            share,
            solved,
            credited: sent.difficulty,
            key,
        })
    }

    /// Files an accepted share's key: the same share again is a duplicate.
    pub fn accepted(&mut self, key: ShareKey) {
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
