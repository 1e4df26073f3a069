//! The auditor: recomputes every epoch from its published file and compares
//! the result with the file and with the chain.
//!
//! It is an application of its own, beside the pool, the settler and the
//! API: it reads the format, PPLNS and the commitment hashes from the pure
//! `proofpool-epoch` crate, the chain through `proofpool-chain` and bitcoind
//! through `proofpool-node`, and links no store and no settlement engine
//! (`cargo tree -p proofpool-audit` shows it), so what it trusts is only
//! what it reads.
//!
//! Data flow: [`Auditor::audit_epoch`] takes epoch files in order 1, 2, …
//! as raw bytes. For each it rebuilds every share's header from its job and
//! checks the hash, the proof of work and the credited work; rebuilds the
//! share tree; replays PPLNS for every paid block over all shares seen so far
//! (the auditor keeps that history in memory); carries the cumulative
//! balances forward and rebuilds the reward tree; and, when given the
//! on-chain record ([`OnChainEpoch`]), compares every committed hash,
//! `dataHash` included. It is pure and never panics, whatever the bytes: an
//! unreadable file is a finding, not an error. Every disagreement is a
//! [`Finding`] that names the field, the share, block, job or account, and
//! the expected and found values; an epoch passes when it has none.
//!
//! [`audit`] drives it: it fetches files from a directory or the API
//! ([`EpochSource`]), the records from the distributor ([`ChainReader`]),
//! optionally checks against bitcoind ([`BlockChecker`]) that each paid
//! block is in the best chain, that every job builds on the real chain with
//! the target consensus requires, and that every block the shares found is
//! paid or orphaned; and returns an [`AuditReport`].
//!
//! What the files alone prove: every share's proof of work against its job,
//! its time inside its epoch, each job's BIP34 height in its coinbase, each
//! paid block tied to its solving share (always: a block bitcoind vouches
//! for does not excuse a moved share), PPLNS, both roots and the hash chain.

mod bitcoind;
mod blocks;
mod driver;
mod expected;
mod finding;
mod guardian;
mod headers;
mod rewards;
mod shares;

#[cfg(test)]
mod tests;

pub use bitcoind::{BlockChecker, DEFAULT_MATURITY, maturity_slack};
pub use driver::{
    AuditError, AuditOptions, AuditReport, ChainReader, EpochSource, HeaderAnchor, audit,
};
pub use finding::{Finding, Severity, Subject};
pub use guardian::{Guardian, GuardianError, GuardianPass};
pub use headers::{Checkpoint, network_of};
pub use proofpool_chain::ParamsVersion;

use alloy::primitives::{Address, B256, TxHash, U256};
use finding::Findings;
use proofpool_epoch::epoch_file::{EpochFile, EpochFileError, FileChain, data_hash};
use proofpool_epoch::{EpochRecord, record_hash};
use proofpool_epoch::{PaidBlock, SCORING_VERSION, token_per_sat};
use proofpool_merkle::RewardDomain;
use std::collections::{BTreeMap, HashMap};

/// What the chain holds for one epoch, as the auditor compares it.
#[derive(Debug, Clone)]
pub struct OnChainEpoch {
    /// The record of the `EpochCommitted` event that matches the stored hash.
    pub record: EpochRecord,
    /// `epochHash(epoch)` as stored by the distributor.
    pub stored_hash: B256,
    /// `epochHash(epoch - 1)` (zero for epoch 1): what `prevEpochHash` must be.
    pub prev_stored_hash: B256,
    /// The deployment: the chain id and the distributor's address.
    pub domain: RewardDomain,
    /// The reward token's `decimals()`: `token_per_sat` must be
    /// `10^(decimals - 8)`, one token for one bitcoin.
    pub token_decimals: u8,
    /// The distributor's parameter schedule, oldest first: the epoch's
    /// `paramsHash` must be the version in force at its start.
    pub params_schedule: Vec<proofpool_chain::ParamsVersion>,
    /// Whether the epoch is finalized (informational).
    pub finalized: bool,
    /// The transaction that committed it, if known.
    pub tx: Option<TxHash>,
    /// The timestamp of the block that committed it, if known: the epoch
    /// must have ended by then (its shares cannot come from the future).
    pub committed_at: Option<u64>,
}

/// The outcome of auditing one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochVerdict {
    /// The epoch.
    pub epoch: u64,
    /// Shares in the file (0 if it did not parse).
    pub shares: u64,
    /// The blocks the file pays, as listed, for checks against bitcoind.
    pub blocks: Vec<PaidBlock>,
    /// The jobs the file's shares were mined on, for checks against
    /// bitcoind (that they build on the real chain).
    pub jobs: Vec<JobAnchor>,
    /// The blocks the file lists as orphaned (height, hash in display
    /// order), for checks against bitcoind.
    pub orphaned: Vec<(u64, B256)>,
    /// The epoch's length in seconds, if the file parsed.
    pub epoch_secs: Option<u64>,
    /// keccak256 of the file's bytes (zero if there was no file).
    pub data_hash: B256,
    /// `totalCumulative` as recomputed (zero if the file did not parse).
    pub total_cumulative: U256,
    /// Whether the on-chain record was compared.
    pub onchain_checked: bool,
    /// Whether the epoch is finalized on-chain, when the chain was read.
    pub finalized: Option<bool>,
    /// The findings, mismatches first found first; at most
    /// [`EpochVerdict::MAX_LISTED`] are kept.
    pub findings: Vec<Finding>,
    /// Mismatches found, including those not listed.
    pub failures: u64,
    /// Findings found but not listed (over the cap).
    pub omitted: u64,
}

impl EpochVerdict {
    /// How many findings a verdict lists; the rest are only counted.
    pub const MAX_LISTED: usize = 100;

    /// Whether the epoch passed: no mismatch at all.
    pub fn is_ok(&self) -> bool {
        self.failures == 0
    }

    /// Adds a finding found outside the pure audit (by the driver).
    pub fn push(&mut self, finding: Finding) {
        if finding.severity == Severity::Mismatch {
            self.failures = self.failures.saturating_add(1);
        }
        if self.findings.len() < Self::MAX_LISTED {
            self.findings.push(finding);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }
}

impl std::fmt::Display for EpochVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.is_ok() { "OK" } else { "FAIL" };
        write!(
            f,
            "epoch {}: {verdict} ({} shares, {} blocks, totalCumulative {}",
            self.epoch,
            self.shares,
            self.blocks.len(),
            self.total_cumulative
        )?;
        match (self.onchain_checked, self.finalized) {
            (true, Some(true)) => write!(f, ", compared with the chain, finalized")?,
            (true, _) => write!(f, ", compared with the chain")?,
            (false, _) => write!(f, ", chain not checked")?,
        }
        if !self.is_ok() {
            write!(f, "; {} mismatches", self.failures)?;
        }
        let warnings = self
            .findings
            .iter()
            .filter(|x| x.severity == Severity::Warning)
            .count();
        if warnings > 0 {
            write!(f, "; {warnings} warnings")?;
        }
        write!(f, ")")
    }
}

/// What ties a job to Bitcoin: the block it builds on and the target it
/// claims, which bitcoind must confirm ([`BlockChecker::check_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAnchor {
    /// The pool instance.
    pub instance: u8,
    /// The instance's job id.
    pub job_id: u64,
    /// The height of the block the job builds.
    pub height: u64,
    /// The previous block's hash, internal byte order.
    pub prev_hash: B256,
    /// The compact network target the job's headers carry.
    pub nbits: u32,
    /// The template's time (testnets' minimum-difficulty rule reads it).
    pub template_time: u32,
    /// Under FPPS, the job's `coinbase_value`, which its shares are paid
    /// by: bitcoind compares it with what the block mined at its height
    /// paid.
    pub fpps_value: Option<u64>,
}

/// A block the pool's shares found (a verified share that meets its job's
/// network target) that no audited epoch pays: bitcoind must show it
/// orphaned, unknown, or too young to be paid yet
/// ([`BlockChecker::check_found`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundBlock {
    /// The solving share.
    pub seq: u64,
    /// The epoch whose file holds the solving share.
    pub epoch: u64,
    /// The block hash, display order.
    pub hash: B256,
    /// The job's height.
    pub height: u64,
    /// Whether another block on the same previous block is paid or listed
    /// as orphaned: the pool submits only the first solution per previous
    /// block (on regtest nearly every share is one), so an unsubmitted
    /// sibling off the best chain needs no listing.
    pub superseded: bool,
}

/// Watches an audit's progress (a progress bar, a log). Every method has a
/// no-op default.
pub trait AuditObserver {
    /// An epoch with `shares` shares is about to be checked.
    fn epoch_started(&mut self, _epoch: u64, _shares: u64) {}
    /// `done` of the current epoch's shares have been checked so far.
    fn shares_checked(&mut self, _done: u64) {}
    /// An epoch's verdict is final (called by [`audit`], after the chain and
    /// bitcoind checks).
    fn epoch_finished(&mut self, _verdict: &EpochVerdict) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl AuditObserver for NoObserver {}

/// A share as PPLNS reads it later.
#[derive(Debug, Clone, Copy)]
struct HistShare {
    miner: Address,
    work: U256,
    /// Zero when the share's job is missing (PPLNS then reports it).
    net_work: U256,
    /// Whether its epoch pays by PPLNS (PPS and FPPS shares were paid when
    /// their epoch closed, and no PPLNS window counts them).
    pplns: bool,
}

/// A share whose verified hash meets its job's network target: a block.
#[derive(Debug, Clone)]
struct Candidate {
    /// The epoch whose file holds the share.
    epoch: u64,
    /// Internal byte order.
    hash: B256,
    miner: Address,
    height: u64,
    /// The job's previous block, internal byte order.
    prev_hash: B256,
    /// The job's `coinbase_value`.
    job_value: u64,
    /// What the rebuilt coinbase transaction's outputs sum to.
    outputs: Result<u64, String>,
}

/// What the auditor remembers of the previous epoch.

#[derive(Debug, Clone)]
struct PrevEpoch {
    end_unix: u64,
    chain: FileChain,
    payout_script: Option<alloy::primitives::Bytes>,
}

/// Recomputes epochs in order and remembers what later epochs depend on:
/// every share (for PPLNS windows), every paid block, the cumulative
/// balances. See the module docs.
#[derive(Debug, Clone)]
pub struct Auditor {
    next_epoch: u64,
    history: BTreeMap<u64, HistShare>,
    /// Every share hash seen, with its seq.
    hashes: HashMap<B256, u64>,
    candidates: HashMap<u64, Candidate>,
    seqs: shares::SeqTracker,
    /// Every block paid so far, display order, with its epoch.
    paid: HashMap<B256, u64>,
    /// The scheme each epoch read so far pays by.
    schemes: HashMap<u64, proofpool_epoch::Scheme>,
    /// The network every file's headers must be on: given (bitcoind's, or
    /// the auditor's `--network`), else the first file's.
    network: Option<bitcoin::Network>,
    /// Whether `network` was given rather than read from a file.
    network_given: bool,
    /// Recomputed cumulative sats per account.
    cumulative: BTreeMap<Address, u64>,
    /// Recomputed `totalCumulative` of the previous epoch.
    prev_total: U256,
    prev: Option<PrevEpoch>,
    /// The start of the first epoch read (unix seconds).
    first_start: Option<u64>,
    /// The newest payout script a file declared.
    payout_script: Option<alloy::primitives::Bytes>,
    /// The Bitcoin headers the files carried.
    headers: headers::HeaderChain,
    /// Every block listed as orphaned so far, display order, with its epoch.
    orphaned: HashMap<B256, u64>,
    /// The first epoch whose file carried headers.
    headers_epoch: Option<u64>,
    /// Confirmations after which the pool pays a block.
    maturity: u64,
    /// Each instance's share-log chain so far: its last share and head.
    log: HashMap<u8, (u64, B256)>,
    /// Every head of every instance's chain, with the instance and the
    /// share after which it stands.
    log_heads: HashMap<B256, (u8, u64)>,
    /// Each instance's shares in log order: acceptance time and seq (the
    /// times never decrease; a share that goes back is reported).
    log_times: HashMap<u8, Vec<(u64, u64)>>,
}

impl Default for Auditor {
    fn default() -> Self {
        Self::new()
    }
}

impl Auditor {
    /// An auditor that expects epoch 1 next, with Bitcoin's coinbase
    /// maturity and no checkpoint.
    pub fn new() -> Self {
        Self::configured(DEFAULT_MATURITY, None)
    }

    /// An auditor that expects epoch 1 next: blocks are paid after
    /// `maturity` confirmations, and the headers the files carry must
    /// contain `checkpoint`, if given.
    pub fn configured(maturity: u64, checkpoint: Option<Checkpoint>) -> Self {
        Self {
            headers: headers::HeaderChain::new(checkpoint),
            orphaned: HashMap::new(),
            headers_epoch: None,
            maturity,
            next_epoch: 1,
            history: BTreeMap::new(),
            hashes: HashMap::new(),
            candidates: HashMap::new(),
            seqs: shares::SeqTracker::default(),
            paid: HashMap::new(),
            schemes: HashMap::new(),
            network: None,
            network_given: false,
            cumulative: BTreeMap::new(),
            prev_total: U256::ZERO,
            prev: None,
            first_start: None,
            payout_script: None,
            log: HashMap::new(),
            log_heads: HashMap::new(),
            log_times: HashMap::new(),
        }
    }

    /// Holds every file's `bitcoin.network` to `network` (bitcoind's, or the
    /// one the auditor was told); `None` only requires the files to agree,
    /// and PPS and FPPS files then fail: their value rests on a network
    /// nobody checked.
    pub fn expect_network(&mut self, network: Option<bitcoin::Network>) {
        self.network = network;
        self.network_given = network.is_some();
    }

    /// The file's network against the one expected.
    fn check_network(&mut self, f: &mut Findings, file: &EpochFile) {
        let Some(b) = &file.bitcoin else {
            return;
        };
        let Some(named) = headers::network_of(&b.network) else {
            f.mismatch(
                Subject::Epoch,
                "bitcoin.network",
                "main, test, testnet4, signet or regtest",
                &b.network,
            );
            return;
        };
        match self.network {
            Some(expected) if expected != named => f.mismatch(
                Subject::Epoch,
                "bitcoin.network",
                format_args!(
                    "{} ({})",
                    expected.to_core_arg(),
                    if self.network_given {
                        "the network being audited"
                    } else {
                        "the earlier files'"
                    }
                ),
                &b.network,
            ),
            Some(_) => {}
            None => self.network = Some(named),
        }
        // PPS pays the network's subsidy and FPPS is held to it: a file's
        // own word for the network would let it halve both away.
        if !self.network_given && file.params.scheme != proofpool_epoch::Scheme::Pplns {
            f.mismatch(
                Subject::Epoch,
                "bitcoin.network",
                "a network checked against bitcoind (--btc-rpc-url) or --network",
                format_args!("{}, as the file says", b.network),
            );
        }
    }

    /// Folds a share of `instance`, whose share-tree leaf is `leaf`, into the
    /// instance's share-log chain: `head_n = keccak256(head_{n-1} ‖ epoch ‖
    /// seq ‖ miner ‖ work ‖ share_hash)`, integers big-endian.
    fn fold_log(&mut self, instance: u8, time_ms: u64, leaf: &proofpool_merkle::ShareLeaf) {
        let seq = leaf.seq;
        self.log_times
            .entry(instance)
            .or_default()
            .push((time_ms, seq));
        let (_, head) = self.log.get(&instance).copied().unwrap_or_default();
        let next = alloy::primitives::keccak256(
            [
                head.as_slice(),
                &leaf.epoch.0.to_be_bytes(),
                &leaf.seq.to_be_bytes(),
                leaf.miner.as_slice(),
                &leaf.work.0.to_be_bytes::<32>(),
                leaf.share_hash.0.as_slice(),
            ]
            .concat(),
        );
        self.log.insert(instance, (seq, next));
        self.log_heads.entry(next).or_insert((instance, seq));
    }

    /// The epoch the next file must be.
    pub fn next_epoch(&self) -> u64 {
        self.next_epoch
    }

    /// Audits the next epoch's file; see the module docs. `onchain` is what
    /// the chain holds for it, if the chain is being compared.
    pub fn audit_epoch(&mut self, bytes: &[u8], onchain: Option<&OnChainEpoch>) -> EpochVerdict {
        self.audit_epoch_with(bytes, onchain, &mut NoObserver)
    }

    /// [`Auditor::audit_epoch`], reporting progress to `observer`.
    pub fn audit_epoch_with(
        &mut self,
        bytes: &[u8],
        onchain: Option<&OnChainEpoch>,
        observer: &mut dyn AuditObserver,
    ) -> EpochVerdict {
        let epoch = self.advance();
        let mut f = Findings::default();
        let hash = data_hash(bytes);
        let file = match EpochFile::from_bytes(bytes) {
            Ok(file) => file,
            Err(err) => {
                file_error(&mut f, &err);
                if let Some(oc) = onchain {
                    check_record(&mut f, epoch, oc);
                    f.compare(Subject::Chain, "dataHash", hash, oc.record.commit.dataHash);
                }
                self.prev = None;
                return f.into_verdict(epoch, 0, Vec::new(), hash, U256::ZERO, onchain);
            }
        };
        observer.epoch_started(epoch, file.shares.len() as u64);
        self.check_header(&mut f, epoch, &file, onchain);
        self.check_network(&mut f, &file);
        if let Some(b) = &file.bitcoin {
            self.headers.apply(&mut f, b);
            self.headers_epoch.get_or_insert(epoch);
        }
        self.check_jobs(&mut f, &file);
        self.schemes.insert(epoch, file.params.scheme);

        let mut valuation =
            expected::Valuation::of(&mut f, &file, self.network, !self.headers.is_empty());
        let share_root = shares::check(self, &mut f, epoch, &file, observer, valuation.as_mut());
        if let Some(root) = share_root {
            f.compare(Subject::Epoch, "share_root", root, file.share_root);
        }

        let mut blocks = blocks::check(self, &mut f, epoch, &file);
        if let Some(v) = valuation {
            for (account, sats) in v.check(&mut f, &file) {
                let entry = blocks.credits.entry(account).or_insert(0u64);
                match entry.checked_add(sats) {
                    Some(sum) => *entry = sum,
                    None => f.mismatch(
                        Subject::Expected { account },
                        "sats",
                        "an epoch total within u64",
                        "an overflow",
                    ),
                }
            }
        }
        let domain = onchain.map_or(
            RewardDomain {
                chain_id: file.chain.chain_id,
                distributor: file.chain.distributor,
            },
            |oc| oc.domain,
        );
        let rewards = rewards::check(self, &mut f, &file, &blocks.credits, domain);

        if let Some(oc) = onchain {
            check_record(&mut f, epoch, oc);
            let c = &oc.record.commit;
            if let Some(root) = share_root {
                f.compare(Subject::Chain, "shareRoot", root, c.shareRoot);
            }
            f.compare(Subject::Chain, "rewardRoot", rewards.root, c.rewardRoot);
            f.compare(
                Subject::Chain,
                "totalCumulative",
                rewards.total,
                c.totalCumulative,
            );
            f.compare(Subject::Chain, "blocksHash", blocks.hash, c.blocksHash);
            f.compare(
                Subject::Chain,
                "paramsHash",
                file.pool_params().hash(),
                c.paramsHash,
            );
            // The epoch ended before it was committed: a timeline shifted
            // forward (to bring epochs under parameters announced for
            // later) ends in the future of its own commit.
            if let Some(at) = oc.committed_at
                && file.end_unix > at
            {
                f.mismatch(
                    Subject::Epoch,
                    "end_unix",
                    format_args!("at most the commit's block time {at}"),
                    file.end_unix,
                );
            }
            // Pinned: the parameters announced on-chain, with notice, for
            // the epoch's start; not whatever the settler chose.
            if let Some(in_force) = params_in_force(&oc.params_schedule, file.start_unix) {
                f.compare(
                    Subject::Chain,
                    "paramsAt(start_unix)",
                    in_force,
                    c.paramsHash,
                );
            }
            f.compare(Subject::Chain, "dataHash", hash, c.dataHash);
            f.compare(
                Subject::Chain,
                "prevEpochHash",
                oc.prev_stored_hash,
                c.prevEpochHash,
            );
            f.compare(
                Subject::Epoch,
                "prev_epoch_hash",
                oc.prev_stored_hash,
                file.prev_epoch_hash,
            );
            f.compare(
                Subject::Chain,
                "prevTotalCumulative",
                self.prev_total,
                oc.record.prevTotalCumulative,
            );
        }

        self.cumulative = rewards.cumulative;
        self.prev_total = rewards.total;
        self.first_start.get_or_insert(file.start_unix);
        self.prev = Some(PrevEpoch {
            end_unix: file.end_unix,
            chain: file.chain,
            payout_script: file.params.payout_script.clone(),
        });
        if file.params.payout_script.is_some() {
            self.payout_script = file.params.payout_script.clone();
        }
        let mut verdict = f.into_verdict(
            epoch,
            file.shares.len() as u64,
            blocks.paid,
            hash,
            rewards.total,
            onchain,
        );
        verdict.epoch_secs = file.end_unix.checked_sub(file.start_unix);
        verdict.orphaned = file.orphaned.iter().map(|o| (o.height, o.hash)).collect();
        verdict.jobs = file
            .jobs
            .iter()
            .map(|j| JobAnchor {
                instance: j.instance,
                job_id: j.job_id,
                height: j.height,
                prev_hash: j.prev_hash,
                nbits: j.nbits,
                template_time: j.template_time,
                fpps_value: (file.params.scheme == proofpool_epoch::Scheme::Fpps)
                    .then_some(j.coinbase_value),
            })
            .collect();
        verdict
    }

    /// Every block the audited shares found (a verified share meeting its
    /// network target) and every block an epoch paid, display order.
    pub fn found_or_paid(&self) -> std::collections::HashSet<B256> {
        self.candidates
            .values()
            .map(|c| blocks::display_order(c.hash))
            .chain(self.paid.keys().copied())
            .collect()
    }

    /// The start of the first epoch read and the end of the newest (unix
    /// seconds), if any was.
    pub fn epochs_span(&self) -> Option<(u64, u64)> {
        Some((self.first_start?, self.prev.as_ref()?.end_unix))
    }

    /// The newest payout script an audited file declared.
    pub fn payout_script(&self) -> Option<&[u8]> {
        self.payout_script.as_ref().map(|b| b.as_ref())
    }

    /// The blocks the audited shares found that no audited epoch pays, in
    /// share order (see [`FoundBlock`]).
    pub fn unpaid_found_blocks(&self) -> Vec<FoundBlock> {
        let settled = |c: &Candidate| {
            let hash = blocks::display_order(c.hash);
            self.paid.contains_key(&hash) || self.orphaned.contains_key(&hash)
        };
        let settled_prevs: std::collections::HashSet<B256> = self
            .candidates
            .values()
            .filter(|c| settled(c))
            .map(|c| c.prev_hash)
            .collect();
        let mut found: Vec<FoundBlock> = self
            .candidates
            .iter()
            .map(|(seq, c)| FoundBlock {
                seq: *seq,
                epoch: c.epoch,
                hash: blocks::display_order(c.hash),
                height: c.height,
                superseded: settled_prevs.contains(&c.prev_hash),
            })
            .filter(|b| !self.paid.contains_key(&b.hash) && !self.orphaned.contains_key(&b.hash))
            .collect();
        found.sort_by_key(|b| b.seq);
        found
    }

    /// Records that the next epoch's file is missing, and returns its
    /// (failing) verdict. Later epochs are still audited, but their
    /// cumulative balances will not match.
    pub fn missing_epoch(&mut self, why: &str, onchain: Option<&OnChainEpoch>) -> EpochVerdict {
        let epoch = self.advance();
        let mut f = Findings::default();
        f.mismatch(
            Subject::File,
            "file",
            "the epoch file",
            format_args!("none: {why}"),
        );
        if let Some(oc) = onchain {
            check_record(&mut f, epoch, oc);
        }
        self.prev = None;
        f.into_verdict(epoch, 0, Vec::new(), B256::ZERO, U256::ZERO, onchain)
    }

    /// Takes the next epoch's file as it says, without checking it: its
    /// shares join the history, its paid blocks the paid set, and its
    /// cumulative balances become the baseline. Used for the epochs before
    /// `--from`.
    pub fn replay(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let epoch = self.next_epoch;
        let file = EpochFile::from_bytes(bytes).map_err(|err| AuditError::Replay {
            epoch,
            reason: err.to_string(),
        })?;
        if file.epoch != epoch {
            return Err(AuditError::Replay {
                epoch,
                reason: format!("the file is for epoch {}", file.epoch),
            });
        }
        self.advance();
        self.schemes.insert(epoch, file.params.scheme);
        shares::absorb_trusted(self, &file);
        for b in &file.blocks {
            self.paid.insert(b.hash, epoch);
        }
        for o in &file.orphaned {
            self.orphaned.insert(o.hash, epoch);
        }
        if let Some(b) = &file.bitcoin {
            self.headers.apply(&mut Findings::default(), b);
            self.headers_epoch.get_or_insert(epoch);
        }
        self.cumulative = file
            .rewards
            .iter()
            .map(|r| (r.account, r.cumulative_sats))
            .collect();
        self.prev_total = file.total_cumulative;
        self.first_start.get_or_insert(file.start_unix);
        self.prev = Some(PrevEpoch {
            end_unix: file.end_unix,
            chain: file.chain,
            payout_script: file.params.payout_script.clone(),
        });
        if file.params.payout_script.is_some() {
            self.payout_script = file.params.payout_script.clone();
        }
        Ok(())
    }

    /// Seq gaps still open after the last epoch audited, as warnings: their
    /// shares may yet appear in the next epoch's file.
    pub fn open_gaps(&self) -> Vec<Finding> {
        self.seqs
            .gaps()
            .map(|(a, b)| Finding {
                severity: Severity::Warning,
                subject: Subject::Epoch,
                field: "seq",
                expected: "every seq in some epoch file".to_owned(),
                found: format!("seqs {a}..={b} in none yet (they may be in the next epoch)"),
            })
            .collect()
    }

    /// The first header the files carried, until [`Auditor::anchored`]:
    /// bitcoind must have it in its best chain.
    pub fn unanchored_header(&self) -> Option<(u64, B256)> {
        self.headers.unanchored()
    }

    /// The first carried header has been checked against bitcoind.
    pub fn anchored(&mut self) {
        self.headers.anchored();
    }

    /// From the carried headers alone, each with its epoch: the blocks the
    /// shares found that no epoch pays or lists as orphaned. In the carried
    /// best chain: a warning once mature, a mismatch `slack` blocks later
    /// (hidden). Off it: a mismatch once the carried chain is `slack`
    /// blocks past it (an orphan never listed). Then the checkpoint: a
    /// mismatch if the headers start above it, a warning if they never
    /// reached it, and a warning if nothing anchors them (`bitcoind`: it
    /// checked the first header).
    pub fn unaccounted(&self, slack: u64, bitcoind: bool) -> Vec<(u64, Finding)> {
        let mut out = Vec::new();
        let Some(tip) = self.headers.tip() else {
            return out;
        };
        for block in self.unpaid_found_blocks() {
            let mut f = Findings::default();
            let subject = Subject::Block {
                height: block.height,
            };
            let found = format_args!(
                "in no epoch's blocks or orphaned blocks (its solving share {} is in epoch {})",
                block.seq, block.epoch
            );
            match self.headers.best_at(block.height) {
                Some(at) if at == block.hash => {
                    let depth = tip.saturating_sub(block.height).saturating_add(1);
                    let expected = format_args!(
                        "paid in an epoch: the carried best chain has {} with {depth} confirmations (maturity {})",
                        block.hash, self.maturity
                    );
                    if depth >= self.maturity.saturating_add(slack) {
                        f.mismatch(subject, "paid_epoch", expected, found);
                    } else if depth >= self.maturity {
                        f.warn(subject, "paid_epoch", expected, found);
                    }
                }
                _ if !block.superseded && tip >= block.height.saturating_add(slack) => f.mismatch(
                    subject,
                    "orphaned",
                    format_args!(
                        "{} listed among an epoch's orphaned blocks: the carried best chain passed its height by {} blocks without it",
                        block.hash,
                        tip - block.height
                    ),
                    found,
                ),
                _ => {}
            }
            out.extend(f.into_list().into_iter().map(|x| (block.epoch, x)));
        }
        let first_epoch = self.headers_epoch.unwrap_or(0);
        let base = self.headers.base().unwrap_or(0);
        let checkpoint = |severity, c: Checkpoint| Finding {
            severity,
            subject: Subject::Header { height: c.height },
            field: "checkpoint",
            expected: format!("the carried headers to contain {}", c.hash),
            found: format!("headers carried for heights {base}..={tip} only"),
        };
        match self.headers.checkpoint() {
            // Below the first carried header: nothing ties them to it.
            Some((c, false)) if c.height < base => {
                out.push((first_epoch, checkpoint(Severity::Mismatch, c)));
            }
            Some((c, false)) if c.height > tip => {
                out.push((first_epoch, checkpoint(Severity::Warning, c)));
            }
            None if !bitcoind => out.push((
                first_epoch,
                Finding {
                    severity: Severity::Warning,
                    subject: Subject::Epoch,
                    field: "bitcoin.headers",
                    expected: "headers anchored to the real chain (--checkpoint HEIGHT:HASH or --btc-rpc-url)".to_owned(),
                    found: "nothing anchors them: they are checked for links, proof of work and targets only".to_owned(),
                },
            )),
            _ => {}
        }
        out
    }

    /// Whether the headers the files carried contain the checkpoint.
    pub fn checkpoint_met(&self) -> bool {
        self.headers.checkpoint().is_some_and(|(_, met)| met)
    }

    /// Whether any file carried Bitcoin headers.
    pub fn carries_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// Ties each job to the carried headers: its previous block is one of
    /// them, at the height below the job's, and its `nbits` is what the
    /// rules require after it. Nothing to check if no file carried headers.
    fn check_jobs(&self, f: &mut Findings, file: &EpochFile) {
        if self.headers.is_empty() {
            return;
        }
        for j in &file.jobs {
            let subject = Subject::Job {
                instance: j.instance,
                job_id: j.job_id,
            };
            let prev_hash = blocks::display_order(j.prev_hash);
            let Some(prev) = self.headers.get(prev_hash) else {
                f.mismatch(
                    subject,
                    "prev_hash",
                    "a header the files carry (best chain or stale tip)",
                    format_args!("{prev_hash}, which they do not"),
                );
                continue;
            };
            f.compare(subject, "height", prev.height.saturating_add(1), j.height);
            match self.headers.job_nbits(prev, j.template_time) {
                Some(allowed) if !allowed.contains(&j.nbits) => f.mismatch(
                    subject,
                    "nbits",
                    format_args!(
                        "{}, what the rules require at height {}",
                        headers::nbits_list(&allowed),
                        prev.height.saturating_add(1)
                    ),
                    format_args!("{:#010x}", j.nbits),
                ),
                Some(_) => {}
                None => f.warn(
                    subject,
                    "nbits",
                    "the target the rules require, from the carried headers",
                    "headers that do not reach back far enough",
                ),
            }
        }
    }

    fn advance(&mut self) -> u64 {
        let epoch = self.next_epoch;
        self.next_epoch = epoch.saturating_add(1);
        epoch
    }

    /// Format-level fields: epoch, interval, parameters, deployment.
    fn check_header(
        &self,
        f: &mut Findings,
        epoch: u64,
        file: &EpochFile,
        onchain: Option<&OnChainEpoch>,
    ) {
        f.compare(Subject::Epoch, "epoch", epoch, file.epoch);
        if file.start_unix >= file.end_unix {
            f.mismatch(
                Subject::Epoch,
                "end_unix",
                format_args!("after start_unix {}", file.start_unix),
                file.end_unix,
            );
        }
        let p = &file.params;
        f.compare(
            Subject::Epoch,
            "params.scoring_version",
            SCORING_VERSION,
            p.scoring_version,
        );
        f.compare(
            Subject::Epoch,
            "params.params_hash",
            file.pool_params().hash(),
            p.params_hash,
        );
        f.compare(
            Subject::Epoch,
            "params.epoch_secs",
            p.epoch_secs,
            file.end_unix.saturating_sub(file.start_unix),
        );
        // The tag the parameters pin is in every job's coinbase scriptSig
        // (before the extranonces, so in `coinbase1`).
        if !p.pool_tag.is_empty() {
            for j in &file.jobs {
                if !j
                    .coinbase1
                    .windows(p.pool_tag.len())
                    .any(|w| w == &p.pool_tag[..])
                {
                    f.mismatch(
                        Subject::Job {
                            instance: j.instance,
                            job_id: j.job_id,
                        },
                        "coinbase1.pool_tag",
                        opt_hex(Some(&p.pool_tag)),
                        "absent",
                    );
                }
            }
        }
        if let Some(prev) = &self.prev {
            f.compare(Subject::Epoch, "start_unix", prev.end_unix, file.start_unix);
            // The operator may move its payout address (a SIGHUP reload),
            // so a change is shown rather than failed until the parameters
            // are pinned on-chain with a delay.
            if prev.payout_script.is_some() && prev.payout_script != p.payout_script {
                f.warn(
                    Subject::Epoch,
                    "params.payout_script",
                    opt_hex(prev.payout_script.as_ref()),
                    opt_hex(p.payout_script.as_ref()),
                );
            }
            if onchain.is_none() {
                // With the chain, the domain is compared with the deployment instead.
                f.compare(
                    Subject::Epoch,
                    "chain.chain_id",
                    prev.chain.chain_id,
                    file.chain.chain_id,
                );
                f.compare(
                    Subject::Epoch,
                    "chain.distributor",
                    prev.chain.distributor,
                    file.chain.distributor,
                );
            }
            f.compare(
                Subject::Epoch,
                "chain.token_per_sat",
                prev.chain.token_per_sat,
                file.chain.token_per_sat,
            );
        }
        match onchain {
            Some(oc) => {
                match token_per_sat(oc.token_decimals) {
                    Some(scale) => f.compare(
                        Subject::Epoch,
                        "chain.token_per_sat",
                        scale,
                        file.chain.token_per_sat,
                    ),
                    None => f.mismatch(
                        Subject::Chain,
                        "token.decimals",
                        "a reward token of 8 to 77 decimals (one token per bitcoin)",
                        oc.token_decimals,
                    ),
                }
                f.compare(
                    Subject::Epoch,
                    "chain.chain_id",
                    oc.domain.chain_id,
                    file.chain.chain_id,
                );
                f.compare(
                    Subject::Epoch,
                    "chain.distributor",
                    oc.domain.distributor,
                    file.chain.distributor,
                );
            }
            // Without the chain only epoch 1's link is known.
            None if epoch == 1 => {
                f.compare(
                    Subject::Epoch,
                    "prev_epoch_hash",
                    B256::ZERO,
                    file.prev_epoch_hash,
                );
            }
            None => {}
        }
    }
}

/// A byte string as hex, or `none`.
fn opt_hex(bytes: Option<&alloy::primitives::Bytes>) -> String {
    bytes.map_or_else(|| "none".to_owned(), |b| b.to_string())
}

/// The on-chain record's own consistency: its epoch and its stored hash.
/// The parameters in force at `time`: the newest schedule version effective
/// at or before it (as the distributor's `paramsAt`).
fn params_in_force(schedule: &[proofpool_chain::ParamsVersion], time: u64) -> Option<B256> {
    schedule
        .iter()
        .rev()
        .find(|v| v.effective_at <= time)
        .map(|v| v.hash)
}

fn check_record(f: &mut Findings, epoch: u64, oc: &OnChainEpoch) {
    f.compare(Subject::Chain, "epoch", epoch, oc.record.commit.epoch);
    f.compare(
        Subject::Chain,
        "epochHash",
        record_hash(&oc.record),
        oc.stored_hash,
    );
}

fn file_error(f: &mut Findings, err: &EpochFileError) {
    let field = match err {
        EpochFileError::Unsupported { .. } => "format",
        _ => "json",
    };
    f.mismatch(
        Subject::File,
        field,
        format_args!(
            "a {:?} version {} document",
            proofpool_epoch::epoch_file::FORMAT,
            proofpool_epoch::epoch_file::VERSION
        ),
        err,
    );
}
