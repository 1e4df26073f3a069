//! Reward checks: cumulative balances carried forward, the reward tree
//! rebuilt.

use super::Auditor;
use super::finding::{Findings, Subject};
use alloy::primitives::{Address, B256, U256};
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_epoch::{reward_tree, sats_to_token};
use proofpool_merkle::RewardDomain;
use proofpool_primitives::Sats;
use std::collections::{BTreeMap, BTreeSet};

/// The recomputed rewards after an epoch.
pub(super) struct RewardsOutcome {
    /// Cumulative sats per account.
    pub(super) cumulative: BTreeMap<Address, u64>,
    /// The reward root.
    pub(super) root: B256,
    /// `totalCumulative`.
    pub(super) total: U256,
}

pub(super) fn check(
    a: &Auditor,
    f: &mut Findings,
    file: &EpochFile,
    credits: &BTreeMap<Address, u64>,
    domain: RewardDomain,
) -> RewardsOutcome {
    let mut cumulative = a.cumulative.clone();
    for (account, sats) in credits {
        let entry = cumulative.entry(*account).or_insert(0u64);
        match entry.checked_add(*sats) {
            Some(sum) => *entry = sum,
            None => f.mismatch(
                Subject::Reward { account: *account },
                "cumulative_sats",
                "a balance within u64",
                "an overflow",
            ),
        }
    }

    let scale = file.chain.token_per_sat;
    let mut expected: BTreeMap<Address, (u64, U256)> = BTreeMap::new();
    for (account, sats) in cumulative.iter().filter(|(_, s)| **s > 0) {
        match sats_to_token(Sats(*sats), scale) {
            Some(amount) => {
                expected.insert(*account, (*sats, amount));
            }
            None => f.mismatch(
                Subject::Reward { account: *account },
                "cumulative_amount",
                "cumulative_sats × token_per_sat within 256 bits",
                "an overflow",
            ),
        }
    }

    let mut listed: BTreeMap<Address, (u64, U256)> = BTreeMap::new();
    let mut prev: Option<Address> = None;
    for r in &file.rewards {
        if let Some(p) = prev
            && r.account <= p
        {
            f.mismatch(
                Subject::Reward { account: r.account },
                "account",
                format_args!("rewards sorted by account, after {p}"),
                "out of order or repeated",
            );
        }
        prev = Some(r.account);
        listed
            .entry(r.account)
            .or_insert((r.cumulative_sats, r.cumulative_amount));
    }
    let accounts: BTreeSet<Address> = expected.keys().chain(listed.keys()).copied().collect();
    for account in accounts {
        let subject = Subject::Reward { account };
        match (expected.get(&account), listed.get(&account)) {
            (Some(e), Some(l)) => {
                f.compare(subject, "cumulative_sats", e.0, l.0);
                f.compare(subject, "cumulative_amount", e.1, l.1);
            }
            (Some(e), None) => f.mismatch(
                subject,
                "account",
                format_args!("a leaf with cumulative_sats {}", e.0),
                "no leaf",
            ),
            (None, Some(l)) => f.mismatch(
                subject,
                "account",
                "no leaf (nothing credited so far)",
                format_args!("a leaf with cumulative_sats {}", l.0),
            ),
            (None, None) => {}
        }
    }

    // As the settler and the API build it, from the balances that scale.
    let balances = expected
        .iter()
        .map(|(account, (sats, _))| (*account, *sats));
    let (root, total) = match reward_tree(domain, balances, scale) {
        Ok(tree) => (tree.root(), tree.total()),
        // The leaves come from a map, so no account repeats.
        Err(err) => {
            f.mismatch(Subject::Epoch, "reward_root", "a reward tree", err);
            (B256::ZERO, U256::ZERO)
        }
    };
    f.compare(Subject::Epoch, "reward_root", root, file.reward_root);
    f.compare(
        Subject::Epoch,
        "total_cumulative",
        total,
        file.total_cumulative,
    );
    RewardsOutcome {
        cumulative,
        root,
        total,
    }
}
