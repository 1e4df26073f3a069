//! A test-only settle: mines real regtest-difficulty shares and writes epoch
//! files the way the settlement engine does, so the auditor is tested
//! against data with real proof of work, real PPLNS and real trees.

use crate::OnChainEpoch;
use alloy::primitives::{Address, B256, U256};
use proofpool_epoch::epoch_file::{
    EpochFile, FORMAT, FileBlock, FileChain, FileCredit, FileJob, FileLogHead, FileParams,
    FileReward, FileShare, VERSION, data_hash,
};
use proofpool_epoch::header::{HeaderParts, hash_value, target_from_nbits};
use proofpool_epoch::record_hash;
use proofpool_epoch::share_commitment::{ShareCommitment, committed_target};
use proofpool_epoch::{EpochCommit, EpochRecord};
use proofpool_epoch::{PaidBlock, PplnsParams, SCORING_VERSION, blocks_hash};
use proofpool_epoch::{WindowShare, credit_block};
use proofpool_merkle::{RewardDomain, RewardLeaf, RewardTree, ShareLeaf, ShareTree};
use proofpool_primitives::{EpochId, MinerAddress, Sats, ShareHash, Work};
use std::collections::BTreeMap;

/// Regtest's compact target: about half of all hashes meet it.
pub(super) const NBITS: u32 = 0x207f_ffff;
pub(super) const INSTANCE: u8 = 1;
pub(super) const PARAMS: PplnsParams = PplnsParams {
    window_x: 5,
    fee_bps: 150,
};

/// Miner `i`'s account.
pub(super) fn miner(i: usize) -> Address {
    Address::repeat_byte(0xa1 + 0x11 * i as u8)
}

pub(super) fn domain() -> RewardDomain {
    RewardDomain {
        chain_id: 31_337,
        distributor: Address::repeat_byte(0xd1),
    }
}

/// What to mine and pay.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Epochs to write (trailing ones may be empty).
    pub(super) epochs: u64,
    /// Share `seq = index + 1`: (epoch, miner, at half the network target).
    pub(super) shares: Vec<(u64, usize, bool)>,
    /// (solving share's seq, epoch the block is paid in).
    pub(super) blocks: Vec<(u64, u64)>,
    /// The pool instance of job `i` (shares `3i+1..=3i+3`); [`INSTANCE`]
    /// past the end.
    pub(super) instances: Vec<u8>,
}

/// Three epochs: six shares, then four shares and two blocks paid (one while
/// the pool is younger than its window, one whose oldest share counts in
/// part), then no shares and one block paid.
pub(super) fn default_plan() -> Plan {
    let shares = (1..=10u64)
        .map(|seq| {
            let epoch = if seq <= 6 { 1 } else { 2 };
            let b = seq % 2 == 0;
            (epoch, usize::from(b), b)
        })
        .collect();
    Plan {
        epochs: 3,
        shares,
        blocks: vec![(2, 2), (5, 2), (9, 3)],
        instances: Vec::new(),
    }
}

/// The written epochs.
#[derive(Debug, Clone)]
pub(super) struct Fixture {
    pub(super) files: Vec<EpochFile>,
    pub(super) bytes: Vec<Vec<u8>>,
    pub(super) onchain: Vec<OnChainEpoch>,
}

/// A coinbase transaction with a 12-byte extranonce slot in its scriptSig,
/// paying `value` to a P2WPKH script plus a zero-value witness commitment,
/// split around the slot.
/// The pool's payout script in the fixture: P2WPKH to twenty 0x55 bytes.
pub(super) const PAYOUT_SCRIPT: [u8; 22] = [
    0x00, 0x14, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
];

///
/// Returns `coinbase1`, `coinbase2` (up to the share commitment output) and
/// `coinbase2_suffix` (the witness commitment output and the lock time).
pub(super) fn coinbase_parts(height: u64, value: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut c1 = Vec::new();
    c1.extend(2u32.to_le_bytes());
    c1.push(1);
    c1.extend([0u8; 32]);
    c1.extend(u32::MAX.to_le_bytes());
    let h = (height as u16).to_le_bytes();
    c1.extend([16, 0x02, h[0], h[1], 0x0c]);
    let mut c2 = Vec::new();
    c2.extend(u32::MAX.to_le_bytes());
    // Payout, share commitment, witness commitment.
    c2.push(3);
    c2.extend(value.to_le_bytes());
    c2.extend([22, 0x00, 0x14]);
    c2.extend([0x55; 20]);
    let mut suffix = Vec::new();
    suffix.extend(0u64.to_le_bytes());
    suffix.extend([38, 0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]);
    suffix.extend([0x77; 32]);
    suffix.extend(0u32.to_le_bytes());
    (c1, c2, suffix)
}

/// The next head of a share-log chain, written out from the definition in
/// docs/share-commitment.md (`keccak256(head ‖ epoch ‖ seq ‖ miner ‖ work ‖
/// share_hash)`, integers big-endian), not taken from the auditor.
pub(super) fn next_head(head: B256, leaf: &ShareLeaf) -> B256 {
    let mut bytes = head.to_vec();
    for b in leaf.epoch.0.to_le_bytes().iter().rev() {
        bytes.push(*b);
    }
    for b in leaf.seq.to_le_bytes().iter().rev() {
        bytes.push(*b);
    }
    bytes.extend(leaf.miner.as_slice());
    let mut work = leaf.work.0.to_le_bytes::<32>();
    work.reverse();
    bytes.extend(work);
    bytes.extend(leaf.share_hash.0.as_slice());
    assert_eq!(bytes.len(), 132);
    alloy::primitives::keccak256(bytes)
}

/// Job `i` of `instance`: three shares per job, so blocks land at
/// different heights.
fn job(i: u64, instance: u8) -> FileJob {
    let height = 200 + i;
    let coinbase_value = 5_000_000_000 + 1_000 * i;
    let (coinbase1, coinbase2, coinbase2_suffix) = coinbase_parts(height, coinbase_value);
    FileJob {
        instance,
        job_id: 100 + i,
        height,
        prev_hash: B256::repeat_byte(i as u8),
        version: 0x2000_0000,
        nbits: NBITS,
        // Near the shares' acceptance times, as bitcoind's clock is near
        // the pool's.
        template_time: bounds(1).0 as u32 + i as u32,
        coinbase1: coinbase1.into(),
        coinbase2: coinbase2.into(),
        coinbase2_suffix: coinbase2_suffix.into(),
        // Set as the shares are mined: the head when the job is first used.
        log_head: B256::ZERO,
        branch: vec![B256::repeat_byte(0x10 + i as u8)],
        coinbase_value,
    }
}

pub(super) fn header_parts<'a>(job: &'a FileJob, s: &'a FileShare) -> HeaderParts<'a> {
    HeaderParts {
        coinbase1: &job.coinbase1,
        extranonce1: &s.extranonce1,
        extranonce2: &s.extranonce2,
        coinbase2: &job.coinbase2,
        commitment: Some(ShareCommitment {
            miner: s.miner,
            target_bits: committed_target(s.share_target).0,
            log_head: job.log_head,
        }),
        coinbase2_suffix: &job.coinbase2_suffix,
        branch: &job.branch,
        version: s.version,
        prev_hash: job.prev_hash,
        ntime: s.ntime,
        nbits: job.nbits,
        nonce: s.nonce,
    }
}

/// The parameters the fixture's files declare (and a deployment pins).
pub(super) fn pool_params(token_per_sat: U256) -> proofpool_epoch::PoolParams {
    let (start, end) = bounds(1);
    proofpool_epoch::PoolParams {
        pplns: PARAMS,
        token_per_sat,
        payout_script: PAYOUT_SCRIPT.to_vec().into(),
        epoch_secs: end - start,
        maturity: 3,
        pool_tag: alloy::primitives::Bytes::new(),
        scheme: proofpool_epoch::Scheme::Pplns,
    }
}

fn bounds(epoch: u64) -> (u64, u64) {
    let start = 1_000 + (epoch - 1) * 100;
    (start, start + 100)
}

/// Mines share `seq`: brute-forces the nonce until the hash meets the target.
fn mine(seq: u64, epoch: u64, m: usize, harder: bool, job: &FileJob) -> FileShare {
    let net = target_from_nbits(NBITS);
    // Targets in compact form, as a share commitment carries them.
    let share_target = committed_target(if harder { net >> 1 } else { net }).1;
    let mut share = FileShare {
        seq,
        time_ms: bounds(epoch).0 * 1000 + seq * 10,
        instance: job.instance,
        job_id: job.job_id,
        miner: miner(m),
        worker: "rig1".to_owned(),
        extranonce1: vec![job.instance, 0, 0, m as u8 + 1].into(),
        extranonce2: seq.to_be_bytes().to_vec().into(),
        ntime: job.template_time + seq as u32,
        nonce: 0,
        version: job.version,
        hash: B256::ZERO,
        share_target,
        work: Work::from_target(share_target).unwrap().0,
    };
    for nonce in 0..10_000u32 {
        share.nonce = nonce;
        let hash = header_parts(job, &share).share_hash();
        if hash_value(hash) <= share_target {
            share.hash = hash;
            return share;
        }
    }
    panic!("no nonce below 10000 meets the target");
}

/// Display (RPC) order.
pub(super) fn reversed(hash: B256) -> B256 {
    let mut b = hash.0;
    b.reverse();
    B256::from(b)
}

/// One settled epoch.
#[derive(Debug, Clone)]
pub(super) struct Built {
    pub(super) file: EpochFile,
    pub(super) bytes: Vec<u8>,
    pub(super) commit: EpochCommit,
    /// `totalCumulative` before this epoch.
    pub(super) prev_total: U256,
}

/// The mined shares of a plan, settled one epoch at a time.
pub(super) struct Settle {
    plan: Plan,
    domain: RewardDomain,
    jobs: Vec<FileJob>,
    shares: Vec<(u64, FileShare)>,
    /// The share-log head of its instance after share `seq`, and the
    /// instance's share before it (index 0: nothing).
    heads: Vec<(B256, u64)>,
    cumulative: BTreeMap<Address, u64>,
    total: U256,
    next: u64,
    /// Token base units per sat: 10^10, an 18-decimal token's.
    pub(super) token_per_sat: U256,
}

impl Settle {
    /// Mines the plan's shares.
    pub(super) fn new(plan: &Plan, domain: RewardDomain) -> Self {
        let mut jobs: Vec<FileJob> = (0..plan.shares.len().div_ceil(3))
            .map(|i| job(i as u64, plan.instances.get(i).copied().unwrap_or(INSTANCE)))
            .collect();
        let mut heads = vec![(B256::ZERO, 0)];
        // Each instance's chain: its last share and head.
        let mut chains: BTreeMap<u8, (u64, B256)> = BTreeMap::new();
        let mut shares = Vec::new();
        for (i, &(epoch, m, harder)) in plan.shares.iter().enumerate() {
            let seq = i as u64 + 1;
            let instance = jobs[i / 3].instance;
            let (prev_seq, head) = chains.get(&instance).copied().unwrap_or_default();
            // Each job commits to its instance's log as it stood when the
            // job was built, just before its first share.
            if i % 3 == 0 {
                jobs[i / 3].log_head = head;
            }
            let share = mine(seq, epoch, m, harder, &jobs[i / 3]);
            let leaf = ShareLeaf {
                epoch: EpochId(epoch),
                seq,
                miner: share.miner,
                work: Work(share.work),
                share_hash: ShareHash(share.hash),
            };
            let next = next_head(head, &leaf);
            chains.insert(instance, (seq, next));
            heads.push((next, prev_seq));
            shares.push((epoch, share));
        }
        Self {
            plan: plan.clone(),
            domain,
            jobs,
            shares,
            heads,
            cumulative: BTreeMap::new(),
            total: U256::ZERO,
            next: 1,
            token_per_sat: U256::from(10_000_000_000u64),
        }
    }

    /// Each instance's chain over `shares`: from its share before the
    /// first of them to its last.
    fn share_log(&self, shares: &[&FileShare]) -> Vec<FileLogHead> {
        let mut out: BTreeMap<u8, FileLogHead> = BTreeMap::new();
        for s in shares {
            let (head, prev_seq) = self.heads[s.seq as usize];
            let entry = out.entry(s.instance).or_insert_with(|| FileLogHead {
                instance: s.instance,
                prev_seq,
                prev_head: if prev_seq == 0 {
                    B256::ZERO
                } else {
                    self.heads[prev_seq as usize].0
                },
                last_seq: s.seq,
                head,
            });
            entry.last_seq = s.seq;
            entry.head = head;
        }
        out.into_values().collect()
    }

    fn job_of(&self, seq: u64) -> &FileJob {
        &self.jobs[((seq - 1) / 3) as usize]
    }

    /// Settles the next epoch, linked to `prev_epoch_hash`.
    pub(super) fn epoch(&mut self, prev_epoch_hash: B256) -> Built {
        let e = self.next;
        self.next += 1;
        let net_work = Work::from_target(target_from_nbits(NBITS)).unwrap();
        let token_per_sat = self.token_per_sat;
        let mine: Vec<&FileShare> = self
            .shares
            .iter()
            .filter(|(epoch, _)| *epoch == e)
            .map(|(_, s)| s)
            .collect();
        let mut file_jobs: Vec<FileJob> = Vec::new();
        for s in &mine {
            let j = self.job_of(s.seq);
            if !file_jobs.iter().any(|x| x.job_id == j.job_id) {
                file_jobs.push(j.clone());
            }
        }
        let leaves: Vec<ShareLeaf> = mine
            .iter()
            .map(|s| ShareLeaf {
                epoch: EpochId(e),
                seq: s.seq,
                miner: s.miner,
                work: Work(s.work),
                share_hash: ShareHash(s.hash),
            })
            .collect();
        let share_root = ShareTree::new(&leaves).unwrap().root();

        let mut blocks = Vec::new();
        let mut credited: BTreeMap<Address, u64> = BTreeMap::new();
        for &(solving, _) in self.plan.blocks.iter().filter(|(_, paid)| *paid == e) {
            let share = &self.shares[(solving - 1) as usize].1;
            let j = self.job_of(solving);
            let mut window: Vec<WindowShare> = self
                .shares
                .iter()
                .filter(|(epoch, s)| *epoch <= e && s.seq <= solving)
                .map(|(_, s)| WindowShare {
                    seq: s.seq,
                    miner: MinerAddress(s.miner),
                    share_work: Work(s.work),
                    net_work,
                })
                .collect();
            window.sort_by_key(|w| std::cmp::Reverse(w.seq));
            let payout = credit_block(window, Sats(j.coinbase_value), &PARAMS).unwrap();
            for (m, sats) in &payout.credits {
                *credited.entry(m.0).or_default() += sats.0;
            }
            blocks.push(FileBlock {
                height: j.height,
                hash: reversed(share.hash),
                coinbase_value: j.coinbase_value,
                finder: share.miner,
                share_seq: solving,
                window_oldest_seq: payout.oldest_seq,
                window_oldest_partial: payout.oldest_partial,
                window_filled: payout.filled,
                fee: payout.fee.0,
                young_pool_remainder: payout.young_pool_remainder.0,
                dust: payout.dust.0,
                operator: payout.operator.0,
                credits: payout
                    .credits
                    .iter()
                    .map(|(m, s)| FileCredit {
                        miner: m.0,
                        sats: s.0,
                    })
                    .collect(),
            });
        }
        blocks.sort_by_key(|b| (b.height, b.hash));
        for (account, sats) in credited {
            *self.cumulative.entry(account).or_default() += sats;
        }
        let rewards: Vec<FileReward> = self
            .cumulative
            .iter()
            .filter(|(_, s)| **s > 0)
            .map(|(account, sats)| FileReward {
                account: *account,
                cumulative_sats: *sats,
                cumulative_amount: U256::from(*sats) * token_per_sat,
            })
            .collect();
        let tree = RewardTree::new(
            self.domain,
            rewards
                .iter()
                .map(|r| RewardLeaf {
                    account: r.account,
                    cumulative: r.cumulative_amount,
                })
                .collect(),
        )
        .unwrap();
        let paid: Vec<PaidBlock> = blocks
            .iter()
            .map(|b| PaidBlock {
                height: b.height,
                hash: b.hash,
                coinbase_value: Sats(b.coinbase_value),
            })
            .collect();
        let (start_unix, end_unix) = bounds(e);
        let file = EpochFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            epoch: e,
            start_unix,
            end_unix,
            chain: FileChain {
                chain_id: self.domain.chain_id,
                distributor: self.domain.distributor,
                token_per_sat,
            },
            params: FileParams {
                scoring_version: SCORING_VERSION,
                window_x: PARAMS.window_x,
                fee_bps: PARAMS.fee_bps,
                params_hash: pool_params(token_per_sat).hash(),
                payout_script: Some(PAYOUT_SCRIPT.to_vec().into()),
                epoch_secs: end_unix - start_unix,
                maturity: 3,
                pool_tag: alloy::primitives::Bytes::new(),
                scheme: proofpool_epoch::Scheme::Pplns,
            },
            prev_epoch_hash,
            bitcoin: None,
            jobs: file_jobs,
            share_log: self.share_log(&mine),
            shares: mine.into_iter().cloned().collect(),
            share_root,
            blocks,
            blocks_hash: blocks_hash(&paid),
            orphaned: Vec::new(),
            expected: None,
            rewards,
            reward_root: tree.root(),
            total_cumulative: tree.total(),
        };
        let bytes = file.to_bytes().unwrap();
        // As the settler sends it (`EpochInputs::commit`).
        let commit = EpochCommit {
            epoch: e,
            shareRoot: share_root,
            rewardRoot: tree.root(),
            totalCumulative: tree.total(),
            blocksHash: file.blocks_hash,
            paramsHash: file.params.params_hash,
            dataHash: data_hash(&bytes),
            prevEpochHash: prev_epoch_hash,
        };
        let prev_total = std::mem::replace(&mut self.total, tree.total());
        Built {
            file,
            bytes,
            commit,
            prev_total,
        }
    }
}

/// Mines the plan and settles every epoch, with a simulated chain.
pub(super) fn build(plan: &Plan) -> Fixture {
    let mut settle = Settle::new(plan, domain());
    let mut fx = Fixture {
        files: Vec::new(),
        bytes: Vec::new(),
        onchain: Vec::new(),
    };
    let mut prev_stored = B256::ZERO;
    for e in 1..=plan.epochs {
        let built = settle.epoch(prev_stored);
        let record = EpochRecord {
            commit: built.commit,
            finalizableAt: 5_000 + e,
            prevTotalCumulative: built.prev_total,
        };
        let stored = record_hash(&record);
        let params_hash = record.commit.paramsHash;
        fx.onchain.push(OnChainEpoch {
            record,
            stored_hash: stored,
            prev_stored_hash: prev_stored,
            domain: domain(),
            token_decimals: 18,
            params_schedule: vec![proofpool_chain::ParamsVersion {
                hash: params_hash,
                effective_at: 0,
            }],
            finalized: e == 1,
            tx: None,
            committed_at: None,
        });
        prev_stored = stored;
        fx.files.push(built.file);
        fx.bytes.push(built.bytes);
    }
    fx
}
