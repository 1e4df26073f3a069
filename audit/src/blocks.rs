//! Paid-block checks: each block is tied to the share that solved it, and
//! its PPLNS breakdown is replayed over the share history.

use super::finding::{Findings, Subject, opt};
use super::{Auditor, Candidate};
use alloy::primitives::{Address, B256};
use proofpool_epoch::epoch_file::{EpochFile, FileBlock};
use proofpool_epoch::{PaidBlock, PplnsParams, Scheme, blocks_hash};
use proofpool_epoch::{WindowShare, credit_block};
use proofpool_primitives::{MinerAddress, Sats, Work};
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

/// The field a block's missing solving share is reported under: always a
/// mismatch.
const SOLVING_SHARE: &str = "share_seq";

/// What the blocks of an epoch add up to.
pub(super) struct BlocksOutcome {
    /// Recomputed credits of this epoch, per account.
    pub(super) credits: BTreeMap<Address, u64>,
    /// The blocks as listed.
    pub(super) paid: Vec<PaidBlock>,
    /// `blocks_hash` of the listed blocks.
    pub(super) hash: B256,
}

/// A hash in internal byte order, as displayed (RPC order).
pub(super) fn display_order(hash: B256) -> B256 {
    let mut bytes = hash.0;
    bytes.reverse();
    B256::from(bytes)
}

pub(super) fn check(
    a: &mut Auditor,
    f: &mut Findings,
    epoch: u64,
    file: &EpochFile,
) -> BlocksOutcome {
    let params = PplnsParams {
        window_x: file.params.window_x,
        fee_bps: file.params.fee_bps,
    };
    let mut credits = BTreeMap::new();
    let mut paid = Vec::with_capacity(file.blocks.len());
    let mut prev: Option<(u64, B256)> = None;
    for b in &file.blocks {
        let subject = Subject::Block { height: b.height };
        if let Some(p) = prev
            && (b.height, b.hash) <= p
        {
            f.mismatch(
                subject,
                "height",
                format_args!("blocks in increasing height order, after {}", p.0),
                b.height,
            );
        }
        prev = Some((b.height, b.hash));
        match a.paid.entry(b.hash) {
            Entry::Vacant(slot) => {
                slot.insert(epoch);
            }
            Entry::Occupied(earlier) => f.mismatch(
                subject,
                "hash",
                "a block paid only once",
                format_args!("{} already paid in epoch {}", b.hash, earlier.get()),
            ),
        }
        if let Some(listed) = a.orphaned.get(&b.hash) {
            f.mismatch(
                subject,
                "hash",
                "a block not listed as orphaned",
                format_args!("{} listed as orphaned in epoch {listed}", b.hash),
            );
        }
        in_carried_chain(a, f, b);
        let value = solving_share(a, f, b);
        // Paid by the scheme of its solving share's epoch (PPLNS if the
        // share is not found, which is reported above).
        let scheme = a
            .candidates
            .get(&b.share_seq)
            .and_then(|c| a.schemes.get(&c.epoch))
            .copied()
            .unwrap_or_default();
        match scheme {
            Scheme::Pplns => pplns(a, f, b, value, &params, &mut credits),
            Scheme::Pps | Scheme::Fpps => revenue(f, b, value, scheme),
        }
        paid.push(PaidBlock {
            height: b.height,
            hash: b.hash,
            coinbase_value: Sats(b.coinbase_value),
        });
    }
    let hash = blocks_hash(&paid);
    f.compare(Subject::Epoch, "blocks_hash", hash, file.blocks_hash);
    orphans(a, f, epoch, file);
    BlocksOutcome {
        credits,
        paid,
        hash,
    }
}

/// With carried headers: a paid block is in their best chain (a warning if
/// less than `maturity` deep).
fn in_carried_chain(a: &Auditor, f: &mut Findings, b: &FileBlock) {
    let Some(tip) = a.headers.tip() else {
        return;
    };
    let subject = Subject::Block { height: b.height };
    match a.headers.best_at(b.height) {
        Some(at) if at == b.hash => {
            // Paying early risks only the operator's own funding (the
            // block may yet be orphaned), so it is shown, not failed.
            let depth = tip.saturating_sub(b.height).saturating_add(1);
            if depth < a.maturity {
                f.warn(
                    subject,
                    "confirmations",
                    format_args!("at least {} (--maturity)", a.maturity),
                    format_args!("{depth} in the carried best chain"),
                );
            }
        }
        at => f.mismatch(
            subject,
            "hash",
            format_args!("{}, the carried best chain's block at that height", opt(at)),
            b.hash,
        ),
    }
}

/// The blocks the file lists as orphaned: each is a block the shares found,
/// listed once, never paid, and off the carried best chain.
fn orphans(a: &mut Auditor, f: &mut Findings, epoch: u64, file: &EpochFile) {
    let mut prev: Option<(u64, B256)> = None;
    for o in &file.orphaned {
        let subject = Subject::Block { height: o.height };
        if let Some(p) = prev
            && (o.height, o.hash) <= p
        {
            f.mismatch(
                subject,
                "orphaned",
                format_args!("orphaned blocks in increasing height order, after {}", p.0),
                o.height,
            );
        }
        prev = Some((o.height, o.hash));
        match a.candidates.get(&o.share_seq) {
            Some(c) if display_order(c.hash) == o.hash => {
                f.compare(subject, "height", c.height, o.height);
            }
            other => f.mismatch(
                subject,
                "orphaned.share_seq",
                format_args!(
                    "a share whose header hashes to {} and meets the network target",
                    o.hash
                ),
                match other {
                    Some(c) => format!("share {} hashes to {}", o.share_seq, display_order(c.hash)),
                    None => format!(
                        "share {} is no block in the epoch files so far",
                        o.share_seq
                    ),
                },
            ),
        }
        if let Some(paid) = a.paid.get(&o.hash) {
            f.mismatch(
                subject,
                "orphaned",
                "a block never paid",
                format_args!("{} paid in epoch {paid}", o.hash),
            );
        }
        if a.headers.best_at(o.height) == Some(o.hash) {
            f.mismatch(
                subject,
                "orphaned",
                "a block off the carried best chain",
                format_args!("{} in it at height {}", o.hash, o.height),
            );
        }
        if let Some(earlier) = a.orphaned.insert(o.hash, epoch) {
            f.mismatch(
                subject,
                "orphaned",
                "a block listed as orphaned once",
                format_args!("{} listed in epoch {earlier} too", o.hash),
            );
        }
    }
}

/// Ties the block to its solving share and returns the coinbase value to pay
/// (the solving share's coinbase, else the file's).
fn solving_share(a: &Auditor, f: &mut Findings, b: &FileBlock) -> u64 {
    let subject = Subject::Block { height: b.height };
    let candidate = a.candidates.get(&b.share_seq);
    let Some(c) = candidate.filter(|c| display_order(c.hash) == b.hash) else {
        let found = match candidate {
            Some(c) => format!("share {} hashes to {}", b.share_seq, display_order(c.hash)),
            None if a.history.contains_key(&b.share_seq) => format!(
                "share {} failed its checks or does not meet its network target",
                b.share_seq
            ),
            None => format!("no share {} in the epoch files so far", b.share_seq),
        };
        f.mismatch(
            subject,
            SOLVING_SHARE,
            format_args!(
                "a share whose header hashes to {} and meets the network target",
                b.hash
            ),
            found,
        );
        return b.coinbase_value;
    };
    let Candidate {
        miner,
        height,
        job_value,
        outputs,
        ..
    } = c;
    f.compare(subject, "finder", *miner, b.finder);
    f.compare(subject, "height", *height, b.height);
    let value = match outputs {
        Ok(sum) => {
            f.compare(subject, "job.coinbase_value", *sum, *job_value);
            *sum
        }
        Err(why) => {
            f.mismatch(
                subject,
                "job.coinbase1",
                "a coinbase transaction in the solving share's job",
                why,
            );
            *job_value
        }
    };
    f.compare(subject, "coinbase_value", value, b.coinbase_value);
    value
}

/// A block whose solving share was paid its expected value (`scheme`, PPS
/// or FPPS) when its epoch closed: all `value` is the operator's, and it
/// credits nobody.
fn revenue(f: &mut Findings, b: &FileBlock, value: u64, scheme: Scheme) {
    let subject = Subject::Block { height: b.height };
    f.compare(subject, "operator", value, b.operator);
    for (field, found) in [
        ("fee", b.fee),
        ("young_pool_remainder", b.young_pool_remainder),
        ("dust", b.dust),
    ] {
        f.compare(subject, field, 0, found);
    }
    f.compare(
        subject,
        "window_oldest_seq",
        opt(None::<u64>),
        opt(b.window_oldest_seq),
    );
    f.compare(
        subject,
        "window_oldest_partial",
        false,
        b.window_oldest_partial,
    );
    f.compare(
        subject,
        "window_filled",
        alloy::primitives::U256::ZERO,
        b.window_filled,
    );
    for c in &b.credits {
        f.mismatch(
            Subject::Credit {
                height: b.height,
                account: c.miner,
            },
            "sats",
            format_args!("no credit: the solving share's epoch paid by {scheme}"),
            c.sats,
        );
    }
}

/// Replays PPLNS for `b` paying `value` and compares the breakdown; adds the
/// recomputed credits to `credits`.
fn pplns(
    a: &Auditor,
    f: &mut Findings,
    b: &FileBlock,
    value: u64,
    params: &PplnsParams,
    credits: &mut BTreeMap<Address, u64>,
) {
    let subject = Subject::Block { height: b.height };
    let window = a
        .history
        .range(..=b.share_seq)
        .rev()
        .filter(|(_, h)| h.pplns)
        .map(|(seq, h)| WindowShare {
            seq: *seq,
            miner: MinerAddress(h.miner),
            share_work: Work(h.work),
            net_work: Work(h.net_work),
        });
    let payout = match credit_block(window, Sats(value), params) {
        Ok(p) => p,
        Err(err) => {
            f.mismatch(subject, "credits", "a PPLNS payout", err);
            return;
        }
    };
    f.compare(subject, "fee", payout.fee.0, b.fee);
    f.compare(
        subject,
        "young_pool_remainder",
        payout.young_pool_remainder.0,
        b.young_pool_remainder,
    );
    f.compare(subject, "dust", payout.dust.0, b.dust);
    f.compare(subject, "operator", payout.operator.0, b.operator);
    f.compare(
        subject,
        "window_oldest_seq",
        opt(payout.oldest_seq),
        opt(b.window_oldest_seq),
    );
    f.compare(
        subject,
        "window_oldest_partial",
        payout.oldest_partial,
        b.window_oldest_partial,
    );
    f.compare(subject, "window_filled", payout.filled, b.window_filled);

    let mut listed: BTreeMap<Address, u64> = BTreeMap::new();
    let mut prev: Option<Address> = None;
    for c in &b.credits {
        let at = Subject::Credit {
            height: b.height,
            account: c.miner,
        };
        if let Some(p) = prev
            && c.miner <= p
        {
            f.mismatch(
                at,
                "miner",
                format_args!("credits sorted by account, after {p}"),
                "out of order or repeated",
            );
        }
        prev = Some(c.miner);
        if c.sats == 0 {
            f.mismatch(at, "sats", "zero credits left out", 0);
        }
        let entry = listed.entry(c.miner).or_default();
        *entry = entry.saturating_add(c.sats);
    }
    let accounts: std::collections::BTreeSet<Address> = listed
        .keys()
        .copied()
        .chain(payout.credits.keys().map(|m| m.0))
        .collect();
    for account in accounts {
        let expected = payout
            .credits
            .get(&MinerAddress(account))
            .map_or(0, |s| s.0);
        let found = listed.get(&account).copied().unwrap_or(0);
        f.compare(
            Subject::Credit {
                height: b.height,
                account,
            },
            "sats",
            expected,
            found,
        );
    }

    // The file's own numbers must add up, whatever they are.
    let credited = b
        .credits
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(c.sats));
    if credited.and_then(|c| c.checked_add(b.operator)) != Some(b.coinbase_value) {
        f.mismatch(
            subject,
            "operator",
            format_args!("credits + operator = coinbase_value {}", b.coinbase_value),
            format_args!("{} + {}", opt(credited), b.operator),
        );
    }
    let parts = b
        .fee
        .checked_add(b.young_pool_remainder)
        .and_then(|x| x.checked_add(b.dust));
    if parts != Some(b.operator) {
        f.mismatch(
            subject,
            "operator",
            format_args!("fee + young_pool_remainder + dust = {}", opt(parts)),
            b.operator,
        );
    }

    for (miner, sats) in &payout.credits {
        let entry = credits.entry(miner.0).or_insert(0u64);
        match entry.checked_add(sats.0) {
            Some(sum) => *entry = sum,
            None => f.mismatch(
                Subject::Credit {
                    height: b.height,
                    account: miner.0,
                },
                "sats",
                "an epoch total within u64",
                "an overflow",
            ),
        }
    }
}
