//! PPS and FPPS checks: every share of the epoch is valued from its own job
//! and the epoch's credits are recomputed to the satoshi
//! ([`proofpool_epoch::credit_epoch`], docs/payout-schemes.md).
//!
//! A share's value is `W_share / W_net × base`: `W_net` from its job's
//! `nbits` (tied to the carried headers by the job checks), and `base` the
//! subsidy at the job's height on the file's network (PPS) or the job's
//! `coinbase_value` (FPPS), which the share checks tie to the coinbase
//! outputs the share's own proof of work commits to. Nothing here needs
//! bitcoind; with it, each FPPS job's value is also compared with what the
//! block mined at its height paid (`BlockChecker::check_job`, a warning:
//! another template at that height may rightly hold more fees).

use super::finding::{Findings, Subject};
use alloy::primitives::Address;
use proofpool_epoch::epoch_file::{EpochFile, FileCredit};
use proofpool_epoch::{ExpectedShare, Scheme, credit_epoch};
use std::collections::BTreeMap;

/// Collects each share's valuation while the shares are checked.
pub(super) struct Valuation {
    scheme: Scheme,
    network: Option<bitcoin::Network>,
    shares: Vec<ExpectedShare>,
}

impl Valuation {
    /// For `file`: `None` under PPLNS. A PPS or FPPS file must carry
    /// headers (new ones, or none when the earlier files' already cover its
    /// jobs: `chain_known` says the files carried some), so every job is
    /// tied to the chain; shares are valued on `network`, the one the
    /// auditor holds the files to (bitcoind's, `--network`, or the first
    /// file's; a file naming another is a mismatch of its own).
    pub(super) fn of(
        f: &mut Findings,
        file: &EpochFile,
        network: Option<bitcoin::Network>,
        chain_known: bool,
    ) -> Option<Self> {
        let scheme = file.params.scheme;
        if scheme == Scheme::Pplns {
            if file.expected.is_some() {
                f.mismatch(
                    Subject::Epoch,
                    "expected",
                    "no expected-value credits under PPLNS",
                    "an `expected` section",
                );
            }
            return None;
        }
        // An epoch without shares values nothing (and a pool's first epochs
        // may have no job to carry headers for).
        let carried = file.shares.is_empty() || (file.bitcoin.is_some() && chain_known);
        if !carried {
            f.mismatch(
                Subject::Epoch,
                "bitcoin",
                format_args!("the headers {scheme} values shares against"),
                "none carried",
            );
        }
        Some(Self {
            scheme,
            network: network.filter(|_| carried),
            shares: Vec::with_capacity(file.shares.len()),
        })
    }

    /// Values one share: `miner` credited at `share_work` on a job at
    /// `height` of network work `net_work` whose coinbase pays
    /// `coinbase_value`.
    pub(super) fn add(
        &mut self,
        miner: Address,
        share_work: alloy::primitives::U256,
        net_work: alloy::primitives::U256,
        height: u64,
        coinbase_value: u64,
    ) {
        let Some(network) = self.network else {
            return;
        };
        // A height beyond u32 is reported by the job checks; it earns no
        // subsidy.
        let height = u32::try_from(height).unwrap_or(u32::MAX);
        let Some(base) = ExpectedShare::base(
            self.scheme,
            network,
            height,
            proofpool_primitives::Sats(coinbase_value),
        ) else {
            return;
        };
        self.shares.push(ExpectedShare {
            miner: proofpool_primitives::MinerAddress(miner),
            share_work: proofpool_primitives::Work(share_work),
            net_work: proofpool_primitives::Work(net_work),
            base,
        });
    }

    /// A job with a share whose header verifies: its `coinbase_value` is
    /// what the coinbase its shares commit to pays (`outputs`, reported by
    /// the coinbase checks if unreadable), and under FPPS at least the
    /// subsidy at its height: a coinbase that burns the subsidy would
    /// value every share of the job below what a block on it is worth.
    pub(super) fn check_job(
        &self,
        f: &mut Findings,
        job: &proofpool_epoch::epoch_file::FileJob,
        outputs: Result<u64, String>,
    ) {
        let subject = Subject::Job {
            instance: job.instance,
            job_id: job.job_id,
        };
        if let Ok(sum) = outputs {
            f.compare(subject, "coinbase_value", sum, job.coinbase_value);
        }
        if let (Scheme::Fpps, Some(network)) = (self.scheme, self.network) {
            let subsidy =
                proofpool_epoch::subsidy(network, u32::try_from(job.height).unwrap_or(u32::MAX));
            if job.coinbase_value < subsidy.0 {
                f.mismatch(
                    subject,
                    "coinbase_value",
                    format_args!(
                        "at least the subsidy {} at height {}",
                        subsidy.0, job.height
                    ),
                    job.coinbase_value,
                );
            }
        }
    }

    /// Recomputes the epoch's credits, compares them with `file.expected`,
    /// and returns them (per account) for the reward checks.
    pub(super) fn check(self, f: &mut Findings, file: &EpochFile) -> BTreeMap<Address, u64> {
        let mut credits = BTreeMap::new();
        let Some(listed) = &file.expected else {
            f.mismatch(
                Subject::Epoch,
                "expected",
                format_args!("the {} credits of the epoch's shares", self.scheme),
                "no `expected` section",
            );
            return credits;
        };
        if self.network.is_none() {
            // Reported in `of`; nothing to value against.
            return credits;
        }
        let payout = match credit_epoch(self.shares, file.params.fee_bps) {
            Ok(p) => p,
            Err(err) => {
                f.mismatch(
                    Subject::Epoch,
                    "expected",
                    "credits that can be computed",
                    err,
                );
                return credits;
            }
        };
        f.compare(
            Subject::Epoch,
            "expected.gross",
            payout.gross.0,
            listed.gross,
        );
        f.compare(Subject::Epoch, "expected.fee", payout.fee.0, listed.fee);
        f.compare(Subject::Epoch, "expected.dust", payout.dust.0, listed.dust);
        // The file's own numbers add up, whatever they are.
        let listed_sum = listed
            .credits
            .iter()
            .try_fold(0u64, |sum, c| sum.checked_add(c.sats));
        let parts = listed_sum
            .and_then(|s| s.checked_add(listed.fee))
            .and_then(|s| s.checked_add(listed.dust));
        if parts != Some(listed.gross) {
            f.mismatch(
                Subject::Epoch,
                "expected.gross",
                "fee + dust + Σ credits",
                format_args!("{} against {}", listed.gross, super::finding::opt(parts)),
            );
        }
        let mut by_account: BTreeMap<Address, u64> = BTreeMap::new();
        let mut prev: Option<Address> = None;
        for &FileCredit { miner, sats } in &listed.credits {
            let at = Subject::Expected { account: miner };
            if prev.is_some_and(|p| miner <= p) {
                f.mismatch(
                    at,
                    "miner",
                    "credits sorted by account, each once",
                    "out of order or repeated",
                );
            }
            prev = Some(miner);
            if sats == 0 {
                f.mismatch(at, "sats", "zero credits left out", 0);
            }
            let entry = by_account.entry(miner).or_default();
            *entry = entry.saturating_add(sats);
        }
        let accounts: std::collections::BTreeSet<Address> = by_account
            .keys()
            .copied()
            .chain(payout.credits.keys().map(|m| m.0))
            .collect();
        for account in accounts {
            let expected = payout
                .credits
                .get(&proofpool_primitives::MinerAddress(account))
                .map_or(0, |s| s.0);
            f.compare(
                Subject::Expected { account },
                "sats",
                expected,
                by_account.get(&account).copied().unwrap_or(0),
            );
            if expected > 0 {
                credits.insert(account, expected);
            }
        }
        credits
    }
}
