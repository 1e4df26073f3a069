//! Share checks: every header rebuilt, its hash, proof of work and work
//! checked, the share tree rebuilt; and the share history PPLNS reads later.

use super::expected::Valuation;
use super::finding::{Findings, Subject};
use super::{AuditObserver, Auditor, Candidate, HistShare};
use alloy::primitives::{B256, U256};
use proofpool_epoch::epoch_file::{EpochFile, FileJob, FileShare};
use proofpool_epoch::header::{HeaderParts, hash_value, target_from_nbits};
use proofpool_epoch::share_commitment::{NTIME_SKEW_SECS, ShareCommitment, committed_target};
use proofpool_merkle::{ShareLeaf, ShareTree};
use proofpool_primitives::{EpochId, ShareHash, Work};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A share's leaf in epoch `epoch`'s share tree.
pub(super) fn leaf_of(epoch: u64, s: &FileShare) -> ShareLeaf {
    ShareLeaf {
        epoch: EpochId(epoch),
        seq: s.seq,
        miner: s.miner,
        work: Work(s.work),
        share_hash: ShareHash(s.hash),
    }
}

/// The pool's extranonce lengths (`pool::job::JobConfig::validate`).
const EXTRANONCE_LEN: std::ops::RangeInclusive<usize> = 1..=8;
/// Deeper than any real block's transaction tree (2^32 transactions).
const MAX_BRANCH: usize = 32;
/// No coinbase transaction is larger than a block.
const MAX_COINBASE_BYTES: usize = 4_000_000;
/// Progress is reported every this many shares.
const PROGRESS_EVERY: usize = 4096;

type JobKey = (u8, u64);

/// A job and what its `nbits` means.
struct JobInfo<'a> {
    job: &'a FileJob,
    net_target: U256,
    /// Zero for a zero target (reported).
    net_work: U256,
    /// Whether its shares' headers can be rebuilt (sane branch and coinbase).
    usable: bool,
}

/// Which sequence numbers have been seen: the highest, and the gaps below it
/// as inclusive ranges (kept as ranges so a hostile seq cannot cost memory).
#[derive(Debug, Clone, Default)]
pub(super) struct SeqTracker {
    max: u64,
    gaps: BTreeMap<u64, u64>,
}

impl SeqTracker {
    /// Records `seq`; `false` if it was seen before.
    pub(super) fn insert(&mut self, seq: u64) -> bool {
        if seq > self.max {
            if seq > self.max + 1 {
                self.gaps.insert(self.max + 1, seq - 1);
            }
            self.max = seq;
            return true;
        }
        let Some((&start, &end)) = self.gaps.range(..=seq).next_back() else {
            return false;
        };
        if seq > end {
            return false;
        }
        self.gaps.remove(&start);
        if start < seq {
            self.gaps.insert(start, seq - 1);
        }
        if seq < end {
            self.gaps.insert(seq + 1, end);
        }
        true
    }

    /// Removes and returns the gaps that end below `bound`.
    pub(super) fn take_below(&mut self, bound: u64) -> Vec<(u64, u64)> {
        let below: Vec<(u64, u64)> = self
            .gaps
            .iter()
            .take_while(|(_, end)| **end < bound)
            .map(|(a, b)| (*a, *b))
            .collect();
        for (start, _) in &below {
            self.gaps.remove(start);
        }
        below
    }

    /// The open gaps.
    pub(super) fn gaps(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.gaps.iter().map(|(a, b)| (*a, *b))
    }
}

fn index_jobs<'a>(f: &mut Findings, file: &'a EpochFile) -> HashMap<JobKey, JobInfo<'a>> {
    let mut jobs = HashMap::with_capacity(file.jobs.len());
    for job in &file.jobs {
        let subject = Subject::Job {
            instance: job.instance,
            job_id: job.job_id,
        };
        let Entry::Vacant(slot) = jobs.entry((job.instance, job.job_id)) else {
            f.mismatch(subject, "job_id", "each job listed once", "listed twice");
            continue;
        };
        let net_target = target_from_nbits(job.nbits);
        let net_work = match Work::from_target(net_target) {
            Ok(w) => w.0,
            Err(_) => {
                f.mismatch(
                    subject,
                    "nbits",
                    "a non-zero network target",
                    format_args!("{:#010x}", job.nbits),
                );
                U256::ZERO
            }
        };
        let mut usable = true;
        if job.branch.len() > MAX_BRANCH {
            f.mismatch(
                subject,
                "branch",
                format_args!("at most {MAX_BRANCH} steps"),
                job.branch.len(),
            );
            usable = false;
        }
        let coinbase = job
            .coinbase1
            .len()
            .saturating_add(job.coinbase2.len())
            .saturating_add(job.coinbase2_suffix.len());
        if coinbase > MAX_COINBASE_BYTES {
            f.mismatch(
                subject,
                "coinbase1",
                format_args!("a coinbase of at most {MAX_COINBASE_BYTES} bytes"),
                format_args!("{coinbase} bytes"),
            );
            usable = false;
        }
        slot.insert(JobInfo {
            job,
            net_target,
            net_work,
            usable,
        });
    }
    jobs
}

/// What a share's coinbase must commit to if it was credited honestly: the
/// miner credited, the target credited (compact) and its job's log head.
fn commitment_of(
    job: &FileJob,
    miner: alloy::primitives::Address,
    target: U256,
) -> ShareCommitment {
    ShareCommitment {
        miner,
        target_bits: committed_target(target).0,
        log_head: job.log_head,
    }
}

/// The header parts of share `s` on `job`, its coinbase committing to the
/// miner and target it is credited at.
fn parts<'a>(job: &'a FileJob, s: &'a FileShare) -> HeaderParts<'a> {
    parts_with(job, s, commitment_of(job, s.miner, s.share_target))
}

fn parts_with<'a>(
    job: &'a FileJob,
    s: &'a FileShare,
    commitment: ShareCommitment,
) -> HeaderParts<'a> {
    HeaderParts {
        coinbase1: &job.coinbase1,
        extranonce1: &s.extranonce1,
        extranonce2: &s.extranonce2,
        coinbase2: &job.coinbase2,
        commitment: Some(commitment),
        coinbase2_suffix: &job.coinbase2_suffix,
        branch: &job.branch,
        version: s.version,
        prev_hash: job.prev_hash,
        ntime: s.ntime,
        nbits: job.nbits,
        nonce: s.nonce,
    }
}

/// The coinbase transaction a share's header commits to.
fn coinbase_tx(p: &HeaderParts<'_>) -> Result<bitcoin::Transaction, String> {
    let bytes = p.coinbase_bytes();
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&bytes).map_err(|e| format!("not a transaction: {e}"))?;
    if !tx.is_coinbase() {
        return Err("not a coinbase transaction".to_owned());
    }
    Ok(tx)
}

/// The height a coinbase's scriptSig starts with (BIP34: a minimally
/// pushed script number, or `OP_0`/`OP_1`..`OP_16` for the first heights).
fn bip34_height(tx: &bitcoin::Transaction) -> Result<u64, String> {
    use bitcoin::opcodes::all::{OP_PUSHNUM_1, OP_PUSHNUM_16};
    use bitcoin::script::Instruction;
    let script = &tx
        .input
        .first()
        .ok_or("the coinbase has no input")?
        .script_sig;
    match script.instructions().next() {
        Some(Ok(Instruction::PushBytes(bytes))) => {
            let bytes = bytes.as_bytes();
            if bytes.is_empty() {
                return Ok(0);
            }
            if bytes.len() > 8 {
                return Err(format!("a {}-byte push", bytes.len()));
            }
            let height = bitcoin::script::read_scriptint(bytes)
                .map_err(|e| format!("not a script number: {e}"))?;
            u64::try_from(height).map_err(|_| format!("a negative height {height}"))
        }
        Some(Ok(Instruction::Op(op)))
            if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&op.to_u8()) =>
        {
            Ok(u64::from(op.to_u8() - OP_PUSHNUM_1.to_u8() + 1))
        }
        Some(Ok(Instruction::Op(op))) => Err(format!("{op} where the height should be")),
        Some(Err(e)) => Err(format!("an unreadable scriptSig: {e}")),
        None => Err("an empty scriptSig".to_owned()),
    }
}

/// The job's coinbase must carry its height (BIP34), so a job cannot claim
/// one height and build another; and, when the file declares the pool's
/// payout script, every output with value must pay it, so no block mined on
/// the pool's shares pays someone else.
fn check_coinbase(f: &mut Findings, job: &FileJob, p: &HeaderParts<'_>, payout: Option<&[u8]>) {
    let subject = Subject::Job {
        instance: job.instance,
        job_id: job.job_id,
    };
    let tx = match coinbase_tx(p) {
        Ok(tx) => tx,
        Err(why) => {
            f.mismatch(
                subject,
                "coinbase1",
                format_args!("a coinbase starting with height {}", job.height),
                why,
            );
            return;
        }
    };
    match bip34_height(&tx) {
        Ok(height) => f.compare(subject, "coinbase1.bip34_height", job.height, height),
        Err(why) => f.mismatch(
            subject,
            "coinbase1.bip34_height",
            format_args!("a coinbase starting with height {}", job.height),
            why,
        ),
    }
    if let Some(script) = payout {
        for (i, out) in tx.output.iter().enumerate() {
            if out.value.to_sat() > 0 && out.script_pubkey.as_bytes() != script {
                f.mismatch(
                    subject,
                    "coinbase2.payout_script",
                    format_args!(
                        "every output with value paying {}",
                        alloy::hex::encode(script)
                    ),
                    format_args!(
                        "output {i} pays {} sats to {}",
                        out.value.to_sat(),
                        alloy::hex::encode(out.script_pubkey.as_bytes())
                    ),
                );
            }
        }
    }
}

/// What the rebuilt coinbase transaction's outputs add up to.
fn coinbase_outputs(p: &HeaderParts<'_>) -> Result<u64, String> {
    let tx = coinbase_tx(p)?;
    tx.output
        .iter()
        .try_fold(0u64, |sum, out| sum.checked_add(out.value.to_sat()))
        .ok_or_else(|| "outputs overflow".to_owned())
}

/// Adds a share to what later epochs read: its seq (`false` if seen
/// before), its hash (the seq that had it first, if not this one), the PPLNS
/// history (marked `pplns` if its epoch pays by PPLNS: a PPLNS window counts
/// no share that PPS or FPPS already paid) and, if `verified` and it meets the network target, the blocks it
/// could have solved.
fn remember(
    a: &mut Auditor,
    epoch: u64,
    s: &FileShare,
    job: Option<&JobInfo<'_>>,
    verified: bool,
    pplns: bool,
) -> (bool, Option<u64>) {
    let fresh = s.seq != 0 && a.seqs.insert(s.seq);
    let earlier = match a.hashes.entry(s.hash) {
        Entry::Vacant(slot) => {
            slot.insert(s.seq);
            None
        }
        Entry::Occupied(first) => Some(*first.get()).filter(|seq| *seq != s.seq),
    };
    a.history.entry(s.seq).or_insert(HistShare {
        miner: s.miner,
        work: s.work,
        net_work: job.map_or(U256::ZERO, |j| j.net_work),
        pplns,
    });
    if let Some(j) = job.filter(|j| verified && j.usable)
        && hash_value(s.hash) <= j.net_target
    {
        a.candidates.entry(s.seq).or_insert_with(|| Candidate {
            epoch,
            hash: s.hash,
            miner: s.miner,
            height: j.job.height,
            prev_hash: j.job.prev_hash,
            job_value: j.job.coinbase_value,
            outputs: coinbase_outputs(&parts(j.job, s)),
        });
    }
    (fresh, earlier)
}

/// Checks every share of `file` (epoch `epoch`), adds them to the history,
/// reports seq gaps that can no longer close, and returns the share root
/// (`None` if the shares cannot form a tree).
pub(super) fn check(
    a: &mut Auditor,
    f: &mut Findings,
    epoch: u64,
    file: &EpochFile,
    observer: &mut dyn AuditObserver,
    mut valuation: Option<&mut Valuation>,
) -> Option<B256> {
    let jobs = index_jobs(f, file);
    let mut used: HashSet<JobKey> = HashSet::new();
    let mut lens: HashMap<JobKey, (usize, usize)> = HashMap::new();
    let mut leaves = Vec::with_capacity(file.shares.len());
    let mut prev_seq: Option<u64> = None;
    let start_ms = file.start_unix.saturating_mul(1000);
    let end_ms = file.end_unix.saturating_mul(1000);
    let mut coinbase_checked: HashSet<JobKey> = HashSet::new();
    let payout_script = file.params.payout_script.as_ref().map(|b| b.as_ref());
    // Built only if some share's proof of work fails to bind its credit.
    let mut by_connection: Option<Connections<'_>> = None;
    let log_before = a.log.clone();
    let pplns = file.params.scheme == proofpool_epoch::Scheme::Pplns;
    for (i, s) in file.shares.iter().enumerate() {
        let subject = Subject::Share { seq: s.seq };
        if let Some(prev) = prev_seq
            && s.seq <= prev
        {
            f.mismatch(
                subject,
                "seq",
                format_args!("greater than the previous share's {prev}"),
                s.seq,
            );
        }
        prev_seq = Some(s.seq);
        if s.time_ms < start_ms || s.time_ms >= end_ms {
            f.mismatch(
                subject,
                "time_ms",
                format_args!("inside the epoch, {start_ms} <= time_ms < {end_ms}"),
                s.time_ms,
            );
        }
        check_ntime(f, subject, s);
        match Work::from_target(s.share_target) {
            Ok(work) => f.compare(subject, "work", work.0, s.work),
            Err(_) => f.mismatch(subject, "share_target", "a non-zero target", "0"),
        }
        let key = (s.instance, s.job_id);
        let job = jobs.get(&key);
        let mut verified = false;
        match job {
            None => f.mismatch(
                subject,
                "job_id",
                "a job listed in the file",
                format_args!("{}/{}", s.instance, s.job_id),
            ),
            Some(j) => {
                used.insert(key);
                check_extranonces(f, s, key, &mut lens);
                if j.usable {
                    if committed_target(s.share_target).1 != s.share_target {
                        f.mismatch(
                            subject,
                            "commitment.target",
                            "a share target a coinbase commitment can carry (its compact form)",
                            format_args!("{:#x}", s.share_target),
                        );
                    }
                    let hash = parts(j.job, s).share_hash();
                    verified = hash == s.hash;
                    if !verified || hash_value(hash) > s.share_target {
                        let candidates = by_connection.get_or_insert_with(|| connections(file));
                        diagnose_binding(f, j.job, s, candidates);
                    }
                    // The job's coinbase, whole with this share's extranonces:
                    // its BIP34 height must be the job's, and it must pay the
                    // pool's declared script.
                    if verified && coinbase_checked.insert(key) {
                        check_coinbase(f, j.job, &parts(j.job, s), payout_script);
                        if let Some(v) = valuation.as_deref_mut() {
                            v.check_job(f, j.job, coinbase_outputs(&parts(j.job, s)));
                        }
                    }
                    f.compare(subject, "hash", hash, s.hash);
                    if hash_value(hash) > s.share_target {
                        f.mismatch(
                            subject,
                            "hash",
                            format_args!("a hash at or below share_target {:#x}", s.share_target),
                            format_args!("{hash} (value {:#x})", hash_value(hash)),
                        );
                    }
                }
            }
        }
        if let (Some(v), Some(j)) = (valuation.as_deref_mut(), job) {
            v.add(
                s.miner,
                s.work,
                j.net_work,
                j.job.height,
                j.job.coinbase_value,
            );
        }
        let (fresh, earlier) = remember(a, epoch, s, job, verified, pplns);
        if s.seq == 0 {
            f.mismatch(subject, "seq", "at least 1", 0);
        } else if !fresh {
            f.mismatch(
                subject,
                "seq",
                "a seq no other share has",
                "a seq already used (in this or an earlier epoch file)",
            );
        }
        if let Some(other) = earlier {
            f.mismatch(
                subject,
                "hash",
                "a header no other share has",
                format_args!("the same hash as share {other}"),
            );
        }
        let leaf = leaf_of(epoch, s);
        if let Some(&(last_ms, last_seq)) = a.log_times.get(&s.instance).and_then(|v| v.last())
            && s.time_ms < last_ms
        {
            f.mismatch(
                subject,
                "time_ms",
                format_args!(
                    "no earlier than {last_ms}, the time of instance {}'s share {last_seq} before it (an instance's times never go back)",
                    s.instance
                ),
                s.time_ms,
            );
        }
        a.fold_log(s.instance, s.time_ms, &leaf);
        leaves.push(leaf);
        if (i + 1) % PROGRESS_EVERY == 0 {
            observer.shares_checked((i + 1) as u64);
        }
    }
    observer.shares_checked(file.shares.len() as u64);
    check_share_log(a, f, file, &log_before);

    for job in &file.jobs {
        if !used.contains(&(job.instance, job.job_id)) {
            f.warn(
                Subject::Job {
                    instance: job.instance,
                    job_id: job.job_id,
                },
                "job_id",
                "only jobs the epoch's shares name",
                "a job no share names",
            );
        }
    }
    if let Some(first) = file.shares.iter().map(|s| s.seq).min() {
        for (start, end) in a.seqs.take_below(first) {
            f.mismatch(
                Subject::Epoch,
                "seq",
                "every seq in some epoch file",
                format_args!("seqs {start}..={end} in none (this epoch starts at {first})"),
            );
        }
    }
    match ShareTree::new(&leaves) {
        Ok(tree) => Some(tree.root()),
        Err(err) => {
            f.mismatch(
                Subject::Epoch,
                "share_root",
                "a tree over shares in increasing seq order",
                err,
            );
            None
        }
    }
}

/// The (miner, target) pairs credited to each connection (instance,
/// extranonce1) in a file, at most [`MAX_CANDIDATES`] each: what a share
/// whose proof of work does not bind its own credit is tried against.
type Connections<'a> = HashMap<(u8, &'a [u8]), Vec<(alloy::primitives::Address, U256)>>;

/// The most alternatives tried per connection.
const MAX_CANDIDATES: usize = 8;

fn connections(file: &EpochFile) -> Connections<'_> {
    let mut out: Connections<'_> = HashMap::new();
    for s in &file.shares {
        let seen = out.entry((s.instance, s.extranonce1.as_ref())).or_default();
        if seen.len() < MAX_CANDIDATES && !seen.contains(&(s.miner, s.share_target)) {
            seen.push((s.miner, s.share_target));
        }
    }
    out
}

/// A share whose rebuilt header does not match, or does not meet its
/// target, with the miner and target it is credited at: if the miner and
/// target of another share of the same connection make its proof of work
/// valid, that is what its coinbase commits to, and the credit was
/// moved (`commitment.miner`) or its difficulty changed
/// (`commitment.target`). The plain `hash` findings say the rest.
fn diagnose_binding(f: &mut Findings, job: &FileJob, s: &FileShare, connections: &Connections<'_>) {
    let subject = Subject::Share { seq: s.seq };
    let Some(candidates) = connections.get(&(s.instance, s.extranonce1.as_ref())) else {
        return;
    };
    for &(miner, target) in candidates {
        if (miner, target) == (s.miner, s.share_target) {
            continue;
        }
        let hash = parts_with(job, s, commitment_of(job, miner, target)).share_hash();
        if hash != s.hash || hash_value(hash) > target {
            continue;
        }
        if miner != s.miner {
            f.mismatch(
                subject,
                "commitment.miner",
                format_args!("credited to {miner}, the address its proof of work commits to"),
                s.miner,
            );
        }
        if target != s.share_target {
            f.mismatch(
                subject,
                "commitment.target",
                format_args!("credited at {target:#x}, the target its proof of work commits to"),
                format_args!("{:#x}", s.share_target),
            );
        }
        return;
    }
}

/// The share-log chain: each instance's listed chain must be the one its
/// shares make, continuing from where the previous file left it; every job's
/// committed head must be a head of that chain, and each share must come
/// after the head its own job committed to. A share inserted, dropped or
/// reordered behind a committed head changes every head after it, so the
/// job's head is then in no chain the files list.
fn check_share_log(
    a: &Auditor,
    f: &mut Findings,
    file: &EpochFile,
    before: &HashMap<u8, (u64, B256)>,
) {
    let mut listed: HashMap<u8, &proofpool_epoch::epoch_file::FileLogHead> = HashMap::new();
    for entry in &file.share_log {
        if listed.insert(entry.instance, entry).is_some() {
            f.mismatch(
                Subject::Epoch,
                "share_log",
                "one entry per instance",
                format_args!("instance {} listed twice", entry.instance),
            );
        }
    }
    let instances: std::collections::BTreeSet<u8> =
        file.shares.iter().map(|s| s.instance).collect();
    for instance in &instances {
        let field = "share_log";
        let Some(entry) = listed.get(instance) else {
            f.mismatch(
                Subject::Epoch,
                field,
                format_args!("an entry for instance {instance}, which has shares here"),
                "none",
            );
            continue;
        };
        let (prev_seq, prev_head) = before.get(instance).copied().unwrap_or_default();
        let (last_seq, head) = a.log.get(instance).copied().unwrap_or_default();
        let shown = |seq: u64, head: B256| format!("head {head} after share {seq}");
        if (entry.prev_seq, entry.prev_head) != (prev_seq, prev_head) {
            f.mismatch(
                Subject::Epoch,
                "share_log.prev_head",
                format_args!(
                    "instance {instance}: {}, where the earlier files leave it",
                    shown(prev_seq, prev_head)
                ),
                shown(entry.prev_seq, entry.prev_head),
            );
        }
        if (entry.last_seq, entry.head) != (last_seq, head) {
            f.mismatch(
                Subject::Epoch,
                "share_log.head",
                format_args!(
                    "instance {instance}: {}, as the listed shares make it",
                    shown(last_seq, head)
                ),
                shown(entry.last_seq, entry.head),
            );
        }
    }
    for instance in listed.keys() {
        if !instances.contains(instance) {
            f.mismatch(
                Subject::Epoch,
                "share_log",
                "entries only for instances with shares in the epoch",
                format_args!("an entry for instance {instance}"),
            );
        }
    }
    // The latest header time of each job's shares: proof of work that the
    // job was still being mined then, whatever its template time says.
    let mut in_use: HashMap<JobKey, u32> = HashMap::new();
    for s in &file.shares {
        let t = in_use.entry((s.instance, s.job_id)).or_default();
        *t = (*t).max(s.ntime);
    }
    // Where each job's committed head sits in its instance's chain.
    let mut positions: HashMap<JobKey, Option<u64>> = HashMap::new();
    for job in &file.jobs {
        let position = if job.log_head == B256::ZERO {
            Some(0)
        } else {
            match a.log_heads.get(&job.log_head) {
                Some(&(instance, seq)) if instance == job.instance => Some(seq),
                _ => None,
            }
        };
        if position.is_none() {
            f.mismatch(
                Subject::Job {
                    instance: job.instance,
                    job_id: job.job_id,
                },
                "log_head",
                format_args!(
                    "a head of instance {}'s share log as the files list it",
                    job.instance
                ),
                format_args!(
                    "{}, which no prefix of the listed shares makes",
                    job.log_head
                ),
            );
        }
        if let Some(at) = position {
            let mined_at = in_use.get(&(job.instance, job.job_id)).copied();
            check_head_age(a, f, job, at, mined_at);
        }
        positions.insert((job.instance, job.job_id), position);
    }
    for s in &file.shares {
        if let Some(Some(at)) = positions.get(&(s.instance, s.job_id))
            && s.seq <= *at
        {
            f.mismatch(
                Subject::Share { seq: s.seq },
                "log_head",
                format_args!("a share after share {at}, whose head its job committed to"),
                format_args!("share {}", s.seq),
            );
        }
    }
}

/// How long before a job's template time a share must have been accepted
/// for the job's head to have to cover it: generous, for a slow commit and
/// for clock skew between bitcoind (template time) and the pool (share
/// times).
pub(super) const HEAD_LAG_SECS: u64 = 600;

/// A job commits to the log as it stood when it was built: a job whose head
/// leaves out a share of its instance accepted more than [`HEAD_LAG_SECS`]
/// before the job was in use is one built on a stale head, which would pin
/// nothing of the log after it. The job was in use at its template time
/// and, whatever that says (the operator can backdate it), at the latest
/// header time of its shares (`mined_at`), which their proof of work fixes.
fn check_head_age(a: &Auditor, f: &mut Findings, job: &FileJob, at: u64, mined_at: Option<u32>) {
    let Some(times) = a.log_times.get(&job.instance) else {
        return;
    };
    let in_use = job.template_time.max(mined_at.unwrap_or(0));
    let threshold_ms = u64::from(in_use)
        .saturating_sub(HEAD_LAG_SECS)
        .saturating_mul(1000);
    let before = times.partition_point(|(time_ms, _)| *time_ms < threshold_ms);
    if let Some(&(time_ms, seq)) = before.checked_sub(1).and_then(|i| times.get(i))
        && seq > at
    {
        f.mismatch(
            Subject::Job {
                instance: job.instance,
                job_id: job.job_id,
            },
            "log_head",
            format_args!(
                "a head at or after share {seq} (accepted at {time_ms} ms, more than {HEAD_LAG_SECS} s before the job was in use at {in_use}: its template time or its shares' latest header time)"
            ),
            format_args!("the head after share {at}"),
        );
    }
}

/// Allowance on top of [`NTIME_SKEW_SECS`] for the pool's clock read in
/// whole seconds and the few milliseconds a share waits to be stamped.
pub(super) const NTIME_SLACK_SECS: u64 = 5;

/// A share is accepted within [`NTIME_SKEW_SECS`] of its header time
/// (docs/share-commitment.md, "Time"): its proof of work fixes the header
/// time, so the operator cannot move it along the log beyond that.
fn check_ntime(f: &mut Findings, subject: Subject, s: &FileShare) {
    let bound = u64::from(NTIME_SKEW_SECS) + NTIME_SLACK_SECS;
    let ntime_ms = u64::from(s.ntime) * 1000;
    if s.time_ms.abs_diff(ntime_ms) > bound * 1000 {
        f.mismatch(
            subject,
            "ntime",
            format_args!(
                "a header time within {bound} s of the time the share was accepted ({} ms)",
                s.time_ms
            ),
            format_args!(
                "{} ({} s apart)",
                s.ntime,
                s.time_ms.abs_diff(ntime_ms) / 1000
            ),
        );
    }
}

fn check_extranonces(
    f: &mut Findings,
    s: &FileShare,
    key: JobKey,
    lens: &mut HashMap<JobKey, (usize, usize)>,
) {
    let subject = Subject::Share { seq: s.seq };
    let (l1, l2) = (s.extranonce1.len(), s.extranonce2.len());
    if !EXTRANONCE_LEN.contains(&l1) {
        f.mismatch(
            subject,
            "extranonce1",
            "1-8 bytes",
            format_args!("{l1} bytes"),
        );
    }
    if !EXTRANONCE_LEN.contains(&l2) {
        f.mismatch(
            subject,
            "extranonce2",
            "1-8 bytes",
            format_args!("{l2} bytes"),
        );
    }
    // The coinbase's push length fixes the extranonces' total for a job.
    match lens.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert((l1, l2));
        }
        Entry::Occupied(seen) if *seen.get() != (l1, l2) => {
            let (e1, e2) = *seen.get();
            f.mismatch(
                subject,
                "extranonce2",
                format_args!("{e1}+{e2} extranonce bytes, as the job's other shares"),
                format_args!("{l1}+{l2}"),
            );
        }
        Entry::Occupied(_) => {}
    }
    // Each instance's extranonce1 starts with its id (DESIGN.md, "Scale-out").
    if s.extranonce1.first() != Some(&s.instance) {
        f.mismatch(
            subject,
            "extranonce1",
            format_args!("to start with the instance id {:#04x}", s.instance),
            &s.extranonce1,
        );
    }
}

/// Adds a file's shares to the history without checking them (`--from`).
pub(super) fn absorb_trusted(a: &mut Auditor, file: &EpochFile) {
    let mut ignored = Findings::default();
    let jobs = index_jobs(&mut ignored, file);
    for s in &file.shares {
        let job = jobs.get(&(s.instance, s.job_id));
        remember(
            a,
            file.epoch,
            s,
            job,
            true,
            file.params.scheme == proofpool_epoch::Scheme::Pplns,
        );
        let leaf = leaf_of(file.epoch, s);
        a.fold_log(s.instance, s.time_ms, &leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::{B256, FileShare, Findings, Subject, U256, bip34_height, check_ntime};
    use bitcoin::script::{Builder, ScriptBuf};
    use bitcoin::{Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Witness};

    fn coinbase(script_sig: ScriptBuf) -> Transaction {
        Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[test]
    fn a_share_accepted_more_than_five_minutes_from_its_header_time_fails() {
        // Worked from the rule, not from the code: 300 s either way, plus
        // 5 s for the pool's whole-second clock and the stamp.
        let ntime = 1_700_000_000u32;
        let share = |time_ms: u64| FileShare {
            seq: 7,
            time_ms,
            instance: 0,
            job_id: 1,
            miner: alloy::primitives::Address::ZERO,
            worker: String::new(),
            extranonce1: Default::default(),
            extranonce2: Default::default(),
            ntime,
            nonce: 0,
            version: 0x2000_0000,
            hash: B256::ZERO,
            share_target: U256::MAX,
            work: U256::from(1u8),
        };
        let at = 1_700_000_000_000u64;
        for (time_ms, fails) in [
            (at, false),
            (at + 305_000, false),
            (at - 305_000, false),
            (at + 305_001, true),
            (at - 305_001, true),
            // A share withheld for an hour and slipped in.
            (at + 3_600_000, true),
        ] {
            let mut f = Findings::default();
            check_ntime(&mut f, Subject::Share { seq: 7 }, &share(time_ms));
            let found = f.into_list();
            assert_eq!(
                found.iter().any(|x| x.field == "ntime"),
                fails,
                "{time_ms}: {found:?}"
            );
        }
    }

    #[test]
    fn bip34_heights_read_as_bitcoin_core_writes_them() {
        // Bitcoin Core writes `CScript() << height`: OP_0, OP_1..OP_16, then
        // minimal script numbers (with a sign byte when the top bit is set).
        for height in [0i64, 1, 16, 17, 127, 128, 255, 256, 32_767, 32_768, 840_000] {
            let script = Builder::new()
                .push_int(height)
                .push_slice([0xab; 4])
                .into_script();
            assert_eq!(
                bip34_height(&coinbase(script)),
                Ok(height as u64),
                "{height}"
            );
        }
        let raw = |bytes: &[u8]| coinbase(ScriptBuf::from_bytes(bytes.to_vec()));
        assert_eq!(bip34_height(&raw(&[0x03, 0x40, 0xd1, 0x0c])), Ok(840_000));
        assert!(bip34_height(&raw(&[])).is_err());
        assert!(
            bip34_height(&raw(&[0x6a])).is_err(),
            "OP_RETURN is no height"
        );
        assert!(
            bip34_height(&raw(&[0x01, 0x81])).is_err(),
            "a negative height"
        );
    }
}
