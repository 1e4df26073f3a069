//! What the auditor reports: one finding per disagreement.

use super::{EpochVerdict, OnChainEpoch};
use alloy::primitives::{Address, B256, U256};
use proofpool_epoch::PaidBlock;
use std::fmt::Display;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The published data or the chain disagrees with the recomputation: the
    /// audit fails.
    Mismatch,
    /// Worth a look, but not a failure (e.g. shares that may still appear in
    /// the next epoch).
    Warning,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// The file as a whole (missing, unreadable).
    File,
    /// An epoch-level field of the file.
    Epoch,
    /// The on-chain record.
    Chain,
    /// One share.
    Share {
        /// Its sequence number.
        seq: u64,
    },
    /// One job.
    Job {
        /// The pool instance.
        instance: u8,
        /// The instance's job id.
        job_id: u64,
    },
    /// One Bitcoin header a file carries.
    Header {
        /// Its height.
        height: u64,
    },
    /// One block the shares found (paid, orphaned, or neither).
    Block {
        /// Its height.
        height: u64,
    },
    /// One miner's credit from one block.
    Credit {
        /// The block's height.
        height: u64,
        /// The miner.
        account: Address,
    },
    /// One miner's PPS or FPPS credit for the epoch's shares.
    Expected {
        /// The miner.
        account: Address,
    },
    /// One reward-tree leaf.
    Reward {
        /// The account.
        account: Address,
    },
}

impl Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File => write!(f, "file"),
            Self::Epoch => write!(f, "epoch"),
            Self::Chain => write!(f, "on-chain record"),
            Self::Share { seq } => write!(f, "share {seq}"),
            Self::Job { instance, job_id } => write!(f, "job {instance}/{job_id}"),
            Self::Header { height } => write!(f, "header {height}"),
            Self::Block { height } => write!(f, "block {height}"),
            Self::Credit { height, account } => write!(f, "block {height} credit to {account}"),
            Self::Expected { account } => write!(f, "expected-value credit to {account}"),
            Self::Reward { account } => write!(f, "reward of {account}"),
        }
    }
}

/// One disagreement between the recomputation and the data or the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whether it fails the audit.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// The field, as named in the epoch file or the contract.
    pub field: &'static str,
    /// What the recomputation expects.
    pub expected: String,
    /// What the data or the chain says.
    pub found: String,
}

impl Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(
            f,
            "{}: {}: expected {}, found {}",
            self.subject, self.field, self.expected, self.found
        )
    }
}

/// Collects an epoch's findings, listing at most
/// [`EpochVerdict::MAX_LISTED`] (a hostile file could produce millions).
#[derive(Debug, Default)]
pub(super) struct Findings {
    verdict_findings: Vec<Finding>,
    failures: u64,
    omitted: u64,
}

impl Findings {
    pub(super) fn push(&mut self, finding: Finding) {
        if finding.severity == Severity::Mismatch {
            self.failures = self.failures.saturating_add(1);
        }
        if self.verdict_findings.len() < EpochVerdict::MAX_LISTED {
            self.verdict_findings.push(finding);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    pub(super) fn mismatch(
        &mut self,
        subject: Subject,
        field: &'static str,
        expected: impl Display,
        found: impl Display,
    ) {
        if self.verdict_findings.len() >= EpochVerdict::MAX_LISTED {
            // Counted, not formatted: a hostile file can fail every share.
            self.failures = self.failures.saturating_add(1);
            self.omitted = self.omitted.saturating_add(1);
            return;
        }
        self.push(Finding {
            severity: Severity::Mismatch,
            subject,
            field,
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }

    pub(super) fn warn(
        &mut self,
        subject: Subject,
        field: &'static str,
        expected: impl Display,
        found: impl Display,
    ) {
        self.push(Finding {
            severity: Severity::Warning,
            subject,
            field,
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }

    /// A mismatch unless `expected == found`.
    pub(super) fn compare<T: PartialEq + Display>(
        &mut self,
        subject: Subject,
        field: &'static str,
        expected: T,
        found: T,
    ) {
        if expected != found {
            self.mismatch(subject, field, expected, found);
        }
    }

    /// The findings, for adding to a verdict with [`EpochVerdict::push`].
    pub(super) fn into_list(self) -> Vec<Finding> {
        self.verdict_findings
    }

    pub(super) fn into_verdict(
        self,
        epoch: u64,
        shares: u64,
        blocks: Vec<PaidBlock>,
        data_hash: B256,
        total_cumulative: U256,
        onchain: Option<&OnChainEpoch>,
    ) -> EpochVerdict {
        EpochVerdict {
            epoch,
            shares,
            blocks,
            jobs: Vec::new(),
            orphaned: Vec::new(),
            epoch_secs: None,
            data_hash,
            total_cumulative,
            onchain_checked: onchain.is_some(),
            finalized: onchain.map(|oc| oc.finalized),
            findings: self.verdict_findings,
            failures: self.failures,
            omitted: self.omitted,
        }
    }
}

/// `Some(x)` as `x`, `None` as `none`.
pub(super) fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}
