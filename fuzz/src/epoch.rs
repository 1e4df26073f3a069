//! `epoch_file` and `epoch_file_struct`: epoch files through the decoder and
//! the auditor.
//!
//! The seeds are the three epochs the settlement audit tests' fixture writes
//! (`settlement/src/audit/tests/settle.rs`: real regtest proof of work, PPLNS
//! with a young pool and a partial oldest share, an empty epoch paying a
//! block), kept as `fuzz/seeds/epoch_file/epoch-0000000N.json`. Their
//! on-chain records are rebuilt here from the files with the settlement
//! crate's public commitment code, so the auditor can compare with a chain.
//! [`seeds`] checks that they still pass the audit: after a change to the
//! format or the audit, write them again from that fixture (`cargo test -p
//! proofpool-audit write_fuzz_seeds -- --ignored`), then run
//! `scripts/fuzz.sh --check`.
//!
//! What is asserted, beyond "no panic":
//! - the verdict is consistent: its epoch, its `data_hash`, its counts;
//! - bytes that do not decode fail the audit with a file finding, and bytes
//!   that decode re-encode canonically to a file that audits the same;
//! - against the chain, an epoch passes exactly when its bytes are the
//!   committed ones, whatever was changed (the `dataHash` alone ensures it,
//!   but every other check runs first and must not panic);
//! - an unchanged file passes without the chain too.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use proofpool_audit::{Auditor, EpochVerdict, OnChainEpoch, Severity, Subject};
use proofpool_epoch::EpochRecord;
use proofpool_epoch::epoch_file::{EpochFile, data_hash};
use proofpool_epoch::record_hash;
use proofpool_epoch::{PaidBlock, blocks_hash};
use proofpool_merkle::{RewardDomain, RewardLeaf, RewardTree, ShareLeaf, ShareTree};
use proofpool_primitives::{Address, B256, EpochId, Sats, ShareHash, U256, Work};
use proofpool_settlement::EpochInputs;
use std::sync::OnceLock;

const SEED_BYTES: [&[u8]; 3] = [
    include_bytes!("../seeds/epoch_file/epoch-00000001.json"),
    include_bytes!("../seeds/epoch_file/epoch-00000002.json"),
    include_bytes!("../seeds/epoch_file/epoch-00000003.json"),
];

/// The seed epochs, their on-chain records, and auditors ready for each.
pub struct Seeds {
    /// The decoded files.
    pub files: Vec<EpochFile>,
    /// Their committed bytes.
    pub bytes: Vec<Vec<u8>>,
    /// What the chain holds for each.
    pub onchain: Vec<OnChainEpoch>,
    /// `before[i]` has audited (and passed) epochs `1..=i` against the chain.
    pub before: Vec<Auditor>,
}

/// The seeds, checked once: every epoch passes with and without the chain.
pub fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let bytes: Vec<Vec<u8>> = SEED_BYTES.iter().map(|b| b.to_vec()).collect();
        let files: Vec<EpochFile> = bytes
            .iter()
            .map(|b| EpochFile::from_bytes(b).expect("a seed epoch decodes"))
            .collect();
        let onchain = records(&files, &bytes);
        let mut before = vec![Auditor::new()];
        let mut plain = Auditor::new();
        for i in 0..files.len() {
            let mut next = before[i].clone();
            let v = next.audit_epoch(&bytes[i], Some(&onchain[i]));
            assert!(
                v.is_ok() && v.findings.is_empty(),
                "seed epoch {}: {v}",
                i + 1
            );
            let v = plain.audit_epoch(&bytes[i], None);
            assert!(
                v.is_ok() && v.findings.is_empty(),
                "seed epoch {}: {v}",
                i + 1
            );
            before.push(next);
        }
        Seeds {
            files,
            bytes,
            onchain,
            before,
        }
    })
}

/// The records settlement would have committed for these files, in order.
fn records(files: &[EpochFile], bytes: &[Vec<u8>]) -> Vec<OnChainEpoch> {
    let mut prev_stored = B256::ZERO;
    let mut prev_total = U256::ZERO;
    let mut out = Vec::new();
    for (file, bytes) in files.iter().zip(bytes) {
        let domain = RewardDomain {
            chain_id: file.chain.chain_id,
            distributor: file.chain.distributor,
        };
        let leaves = file
            .rewards
            .iter()
            .map(|r| RewardLeaf {
                account: r.account,
                cumulative: r.cumulative_amount,
            })
            .collect();
        let tree = RewardTree::new(domain, leaves).expect("a seed's reward tree builds");
        let commit = EpochInputs {
            epoch: EpochId(file.epoch),
            share_root: file.share_root,
            rewards: &tree,
            blocks_hash: file.blocks_hash,
            params_hash: file.params.params_hash,
            data_hash: data_hash(bytes),
            prev_epoch_hash: prev_stored,
        }
        .commit();
        let record = EpochRecord {
            commit,
            finalizableAt: 5_000 + file.epoch,
            prevTotalCumulative: prev_total,
        };
        let stored = record_hash(&record);
        out.push(OnChainEpoch {
            record,
            stored_hash: stored,
            prev_stored_hash: prev_stored,
            domain,
            token_decimals: 18,
            params_schedule: vec![proofpool_audit::ParamsVersion {
                hash: file.params.params_hash,
                effective_at: 0,
            }],
            finalized: true,
            tx: None,
            committed_at: None,
        });
        prev_stored = stored;
        prev_total = tree.total();
    }
    out
}

/// `epoch_file`: raw bytes, as epoch 1 without the chain and as epoch 2
/// against the chain.
pub fn run_raw(data: &[u8]) {
    let seeds = seeds();
    let decoded = EpochFile::from_bytes(data);

    let first = Auditor::new().audit_epoch(data, None);
    check_verdict(&first, 1, data);
    match &decoded {
        Err(e) => {
            assert!(!first.is_ok(), "undecodable bytes passed: {e}");
            assert_eq!(first.shares, 0);
            assert!(
                first
                    .findings
                    .iter()
                    .any(|f| f.subject == Subject::File && f.severity == Severity::Mismatch),
                "no file finding for {e}"
            );
        }
        Ok(file) => {
            assert_eq!(first.shares, file.shares.len() as u64);
            let canonical = file.to_bytes().expect("a decoded file encodes");
            let again = EpochFile::from_bytes(&canonical).expect("canonical bytes decode");
            assert_eq!(&again, file, "the canonical encoding changes the file");
            // Without the chain the bytes themselves are never compared.
            let twin = Auditor::new().audit_epoch(&canonical, None);
            assert_eq!(twin.findings, first.findings);
            assert_eq!(twin.failures, first.failures);
        }
    }
    // Replaying takes the file as it says; it must not panic either.
    if let Ok(()) = Auditor::new().replay(data) {
        assert!(decoded.as_ref().is_ok_and(|f| f.epoch == 1));
    }

    let second = seeds.before[1]
        .clone()
        .audit_epoch(data, Some(&seeds.onchain[1]));
    check_verdict(&second, 2, data);
    assert_eq!(
        second.is_ok(),
        data == seeds.bytes[1].as_slice(),
        "epoch 2 against the chain: {second}"
    );
}

/// `epoch_file_struct`: one of the seed epochs, edited field by field,
/// optionally with its roots and hashes recomputed so the deeper checks see
/// a self-consistent file, audited after its predecessors.
pub fn run_edits(data: &[u8]) {
    let seeds = seeds();
    // Inputs too short to name an edit are simply not run.
    let Ok((index, file)) = edited(seeds, data) else {
        return;
    };
    let bytes = file.to_bytes().expect("an epoch file encodes");
    let epoch = index as u64 + 1;

    let with_chain = seeds.before[index]
        .clone()
        .audit_epoch(&bytes, Some(&seeds.onchain[index]));
    check_verdict(&with_chain, epoch, &bytes);
    assert_eq!(
        with_chain.is_ok(),
        bytes == seeds.bytes[index],
        "epoch {epoch} against the chain: {with_chain}"
    );

    let alone = seeds.before[index].clone().audit_epoch(&bytes, None);
    check_verdict(&alone, epoch, &bytes);
    if file == seeds.files[index] {
        assert!(alone.is_ok(), "an unchanged epoch {epoch} failed: {alone}");
    }
}

/// Which seed, and the file after the input's edits.
fn edited(seeds: &Seeds, data: &[u8]) -> Result<(usize, EpochFile)> {
    let mut u = Unstructured::new(data);
    let index = u.choose_index(seeds.files.len())?;
    let mut file = seeds.files[index].clone();
    let mut edits = 0;
    u.arbitrary_loop(None, Some(8), |u| {
        edit(u, &mut file)?;
        edits += 1;
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    if edits > 0 && u.arbitrary()? {
        reseal(&mut file);
    }
    Ok((index, file))
}

/// What every verdict must satisfy.
fn check_verdict(v: &EpochVerdict, epoch: u64, bytes: &[u8]) {
    assert_eq!(v.epoch, epoch);
    assert_eq!(v.data_hash, data_hash(bytes));
    assert!(v.findings.len() <= EpochVerdict::MAX_LISTED);
    let listed = v
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Mismatch)
        .count() as u64;
    assert!(v.failures >= listed);
    if v.omitted == 0 {
        assert_eq!(v.failures, listed, "every mismatch is listed");
    } else {
        assert_eq!(v.findings.len(), EpochVerdict::MAX_LISTED);
    }
    assert_eq!(v.is_ok(), v.failures == 0);
    let shown = v.to_string();
    assert!(shown.contains(if v.is_ok() { "OK" } else { "FAIL" }));
    for f in &v.findings {
        assert!(!f.to_string().is_empty());
    }
}

/// Recomputes what an honest settler derives from the rest of the file:
/// the share root, the blocks hash, the reward root and total.
fn reseal(file: &mut EpochFile) {
    let leaves: Vec<ShareLeaf> = file
        .shares
        .iter()
        .map(|s| ShareLeaf {
            epoch: EpochId(file.epoch),
            seq: s.seq,
            miner: s.miner,
            work: Work(s.work),
            share_hash: ShareHash(s.hash),
        })
        .collect();
    if let Ok(tree) = ShareTree::new(&leaves) {
        file.share_root = tree.root();
    }
    let paid: Vec<PaidBlock> = file
        .blocks
        .iter()
        .map(|b| PaidBlock {
            height: b.height,
            hash: b.hash,
            coinbase_value: Sats(b.coinbase_value),
        })
        .collect();
    file.blocks_hash = blocks_hash(&paid);
    let domain = RewardDomain {
        chain_id: file.chain.chain_id,
        distributor: file.chain.distributor,
    };
    let leaves = file
        .rewards
        .iter()
        .map(|r| RewardLeaf {
            account: r.account,
            cumulative: r.cumulative_amount,
        })
        .collect();
    if let Ok(tree) = RewardTree::new(domain, leaves) {
        file.reward_root = tree.root();
        file.total_cumulative = tree.total();
    }
}

/// A number near `orig` or at an edge: what off-by-one and overflow bugs
/// need.
fn near_u64(u: &mut Unstructured<'_>, orig: u64) -> Result<u64> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => orig.wrapping_add(1),
        1 => orig.wrapping_sub(1),
        2 => 0,
        3 => u64::MAX,
        4 => orig ^ (1 << u.int_in_range(0..=63u32)?),
        _ => u.arbitrary()?,
    })
}

fn near_u32(u: &mut Unstructured<'_>, orig: u32) -> Result<u32> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => orig.wrapping_add(1),
        1 => orig.wrapping_sub(1),
        2 => 0,
        3 => u32::MAX,
        4 => orig ^ (1 << u.int_in_range(0..=31u32)?),
        _ => u.arbitrary()?,
    })
}

fn near_u256(u: &mut Unstructured<'_>, orig: U256) -> Result<U256> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => orig.wrapping_add(U256::from(1)),
        1 => orig.wrapping_sub(U256::from(1)),
        2 => U256::ZERO,
        3 => U256::MAX,
        4 => orig ^ (U256::from(1) << u.int_in_range(0..=255usize)?),
        5 => U256::from(u.arbitrary::<u64>()?),
        _ => U256::from_be_bytes(u.arbitrary::<[u8; 32]>()?),
    })
}

fn near_b256(u: &mut Unstructured<'_>, orig: B256) -> Result<B256> {
    let mut b = orig.0;
    match u.int_in_range(0..=2u8)? {
        0 => b[u.choose_index(32)?] ^= 1 << u.int_in_range(0..=7u8)?,
        1 => b = [0; 32],
        _ => b = u.arbitrary()?,
    }
    Ok(B256::from(b))
}

fn address(u: &mut Unstructured<'_>, file: &EpochFile) -> Result<Address> {
    // Mostly accounts the file already names, so credits can collide.
    let known: Vec<Address> = file
        .shares
        .iter()
        .map(|s| s.miner)
        .chain(file.rewards.iter().map(|r| r.account))
        .collect();
    if !known.is_empty() && u.ratio(3u8, 4u8)? {
        return Ok(*u.choose(&known)?);
    }
    Ok(Address::from(u.arbitrary::<[u8; 20]>()?))
}

fn bytes(u: &mut Unstructured<'_>, orig: &[u8]) -> Result<Vec<u8>> {
    let mut b = orig.to_vec();
    match u.int_in_range(0..=3u8)? {
        0 if !b.is_empty() => {
            let i = u.choose_index(b.len())?;
            b[i] ^= 1 << u.int_in_range(0..=7u8)?;
        }
        1 => b.truncate(u.choose_index(b.len() + 1)?),
        2 => {
            let n = u.int_in_range(0..=12usize)?;
            b.extend_from_slice(u.bytes(n)?);
        }
        _ => b = u.arbitrary()?,
    }
    Ok(b)
}

/// Picks an element index, or `None` for an empty list.
fn pick<T>(u: &mut Unstructured<'_>, v: &[T]) -> Result<Option<usize>> {
    if v.is_empty() {
        return Ok(None);
    }
    Ok(Some(u.choose_index(v.len())?))
}

/// Removes, duplicates or swaps elements.
fn reshape<T: Clone>(u: &mut Unstructured<'_>, v: &mut Vec<T>) -> Result<()> {
    let Some(i) = pick(u, v)? else {
        return Ok(());
    };
    match u.int_in_range(0..=2u8)? {
        0 => {
            v.remove(i);
        }
        1 => {
            let copy = v[i].clone();
            v.insert(u.choose_index(v.len() + 1)?, copy);
        }
        _ => {
            let j = u.choose_index(v.len())?;
            v.swap(i, j);
        }
    }
    Ok(())
}

/// One edit of one field.
fn edit(u: &mut Unstructured<'_>, file: &mut EpochFile) -> Result<()> {
    match u.int_in_range(0..=41u8)? {
        // The header.
        0 => file.epoch = near_u64(u, file.epoch)?,
        1 => file.start_unix = near_u64(u, file.start_unix)?,
        2 => file.end_unix = near_u64(u, file.end_unix)?,
        3 => file.chain.chain_id = near_u64(u, file.chain.chain_id)?,
        4 => file.chain.distributor = Address::from(u.arbitrary::<[u8; 20]>()?),
        5 => file.chain.token_per_sat = near_u256(u, file.chain.token_per_sat)?,
        6 => file.params.window_x = near_u64(u, file.params.window_x)?,
        7 => file.params.fee_bps = near_u64(u, file.params.fee_bps)?,
        8 => file.params.scoring_version = near_u64(u, file.params.scoring_version)?,
        9 => file.prev_epoch_hash = near_b256(u, file.prev_epoch_hash)?,
        10 => file.share_root = near_b256(u, file.share_root)?,
        11 => file.total_cumulative = near_u256(u, file.total_cumulative)?,
        // Jobs.
        12 => reshape(u, &mut file.jobs)?,
        13..=17 => {
            let Some(i) = pick(u, &file.jobs)? else {
                return Ok(());
            };
            let j = &mut file.jobs[i];
            match u.int_in_range(0..=10u8)? {
                9 => j.coinbase2_suffix = bytes(u, &j.coinbase2_suffix)?.into(),
                10 => j.log_head = near_b256(u, j.log_head)?,
                0 => j.nbits = near_u32(u, j.nbits)?,
                1 => j.version = near_u32(u, j.version)?,
                2 => j.height = near_u64(u, j.height)?,
                3 => j.coinbase1 = bytes(u, &j.coinbase1)?.into(),
                4 => j.coinbase2 = bytes(u, &j.coinbase2)?.into(),
                5 => reshape(u, &mut j.branch)?,
                6 => j.coinbase_value = near_u64(u, j.coinbase_value)?,
                7 => j.job_id = near_u64(u, j.job_id)?,
                _ => j.instance = u.arbitrary()?,
            }
        }
        // Shares.
        18 => reshape(u, &mut file.shares)?,
        19..=25 => {
            let Some(i) = pick(u, &file.shares)? else {
                return Ok(());
            };
            let miner = address(u, file)?;
            let s = &mut file.shares[i];
            match u.int_in_range(0..=13u8)? {
                0 => s.seq = near_u64(u, s.seq)?,
                1 => s.time_ms = near_u64(u, s.time_ms)?,
                2 => s.job_id = near_u64(u, s.job_id)?,
                3 => s.instance = u.arbitrary()?,
                4 => s.miner = miner,
                5 => s.worker = u.arbitrary()?,
                6 => s.extranonce1 = bytes(u, &s.extranonce1)?.into(),
                7 => s.extranonce2 = bytes(u, &s.extranonce2)?.into(),
                8 => s.ntime = near_u32(u, s.ntime)?,
                9 => s.nonce = near_u32(u, s.nonce)?,
                10 => s.version = near_u32(u, s.version)?,
                11 => s.hash = near_b256(u, s.hash)?,
                12 => s.share_target = near_u256(u, s.share_target)?,
                _ => s.work = near_u256(u, s.work)?,
            }
        }
        // Blocks.
        26 => reshape(u, &mut file.blocks)?,
        27 => file.blocks_hash = near_b256(u, file.blocks_hash)?,
        28..=33 => {
            let Some(i) = pick(u, &file.blocks)? else {
                return Ok(());
            };
            let miner = address(u, file)?;
            let b = &mut file.blocks[i];
            match u.int_in_range(0..=14u8)? {
                0 => b.height = near_u64(u, b.height)?,
                1 => b.hash = near_b256(u, b.hash)?,
                2 => b.coinbase_value = near_u64(u, b.coinbase_value)?,
                3 => b.finder = miner,
                4 => b.share_seq = near_u64(u, b.share_seq)?,
                5 => {
                    b.window_oldest_seq = match b.window_oldest_seq {
                        Some(s) if u.arbitrary()? => Some(near_u64(u, s)?),
                        Some(_) => None,
                        None => Some(u.arbitrary()?),
                    }
                }
                6 => b.window_oldest_partial = !b.window_oldest_partial,
                7 => b.window_filled = near_u256(u, b.window_filled)?,
                8 => b.fee = near_u64(u, b.fee)?,
                9 => b.young_pool_remainder = near_u64(u, b.young_pool_remainder)?,
                10 => b.dust = near_u64(u, b.dust)?,
                11 => b.operator = near_u64(u, b.operator)?,
                12 => reshape(u, &mut b.credits)?,
                13 => {
                    if let Some(c) = pick(u, &b.credits)? {
                        b.credits[c].sats = near_u64(u, b.credits[c].sats)?;
                    }
                }
                _ => {
                    if let Some(c) = pick(u, &b.credits)? {
                        b.credits[c].miner = miner;
                    }
                }
            }
        }
        // The share-log chain.
        40 => reshape(u, &mut file.share_log)?,
        41 => {
            if let Some(i) = pick(u, &file.share_log)? {
                let l = &mut file.share_log[i];
                match u.int_in_range(0..=4u8)? {
                    0 => l.prev_seq = near_u64(u, l.prev_seq)?,
                    1 => l.prev_head = near_b256(u, l.prev_head)?,
                    2 => l.last_seq = near_u64(u, l.last_seq)?,
                    3 => l.instance = u.arbitrary()?,
                    _ => l.head = near_b256(u, l.head)?,
                }
            }
        }
        // Rewards.
        34 => reshape(u, &mut file.rewards)?,
        35 => file.reward_root = near_b256(u, file.reward_root)?,
        _ => {
            let Some(i) = pick(u, &file.rewards)? else {
                return Ok(());
            };
            let account = address(u, file)?;
            let r = &mut file.rewards[i];
            match u.int_in_range(0..=2u8)? {
                0 => r.cumulative_sats = near_u64(u, r.cumulative_sats)?,
                1 => r.cumulative_amount = near_u256(u, r.cumulative_amount)?,
                _ => r.account = account,
            }
        }
    }
    Ok(())
}
