//! The audit driver: fetches epoch files and on-chain records, runs the
//! [`Auditor`] over epochs 1..=N, and checks paid blocks against bitcoind.

use super::bitcoind::{BlockChecker, DEFAULT_MATURITY};
use super::finding::{Severity, Subject};
use super::{AuditObserver, Auditor, EpochVerdict, Finding, OnChainEpoch};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use proofpool_chain::{ChainError, DistributorClient};
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_merkle::RewardDomain;
use proofpool_node::NodeError;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// Why an audit could not run to the end (as opposed to a finding: the
/// data was reachable but wrong).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An epoch file could not be read (other than not existing).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The API could not be reached.
    #[error("cannot fetch {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status (other than 404).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The chain could not be read.
    #[error("reading the chain failed: {0}")]
    Chain(#[from] ChainError),
    /// bitcoind could not be read.
    #[error("bitcoind: {0}")]
    Node(#[from] NodeError),
    /// An epoch before `--from` is missing or unreadable, so the history the
    /// audited epochs build on is unknown.
    #[error("epoch {epoch} (before --from) cannot be replayed: {reason}")]
    Replay {
        /// The epoch.
        epoch: u64,
        /// Why.
        reason: String,
    },
}

/// Where epoch files come from.
#[derive(Debug, Clone)]
pub enum EpochSource {
    /// A directory of `epoch-00000001.json`, … ([`EpochFile::file_name`]).
    Dir(PathBuf),
    /// The API: `GET {base}/api/v1/epochs/{n}/file`.
    Api {
        /// The API's base URL.
        base: reqwest::Url,
        /// The HTTP client.
        http: reqwest::Client,
    },
}

impl EpochSource {
    /// Files in `dir`.
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Self::Dir(dir.into())
    }

    /// Files served by the API at `base`.
    pub fn api(base: reqwest::Url) -> Result<Self, AuditError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|source| AuditError::Http {
                url: base.to_string(),
                source,
            })?;
        Ok(Self::Api { base, http })
    }

    /// Where epoch `epoch`'s file is.
    pub fn describe(&self, epoch: u64) -> String {
        match self {
            Self::Dir(dir) => dir.join(EpochFile::file_name(epoch)).display().to_string(),
            Self::Api { base, .. } => format!(
                "{}/api/v1/epochs/{epoch}/file",
                base.as_str().trim_end_matches('/')
            ),
        }
    }

    /// The exact bytes of epoch `epoch`'s file; `None` if there is none.
    pub async fn fetch(&self, epoch: u64) -> Result<Option<Vec<u8>>, AuditError> {
        match self {
            Self::Dir(dir) => {
                let path = dir.join(EpochFile::file_name(epoch));
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(AuditError::Io { path, source }),
                }
            }
            Self::Api { http, .. } => {
                let url = self.describe(epoch);
                let http_err = |source| AuditError::Http {
                    url: url.clone(),
                    source,
                };
                let response = http.get(&url).send().await.map_err(http_err)?;
                let status = response.status();
                if status == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !status.is_success() {
                    return Err(AuditError::Status {
                        url,
                        status: status.as_u16(),
                    });
                }
                Ok(Some(response.bytes().await.map_err(http_err)?.to_vec()))
            }
        }
    }

    /// The newest epoch with a file, if the source can tell (a directory
    /// can; the API is probed epoch by epoch instead).
    pub async fn newest(&self) -> Result<Option<u64>, AuditError> {
        let Self::Dir(dir) = self else {
            return Ok(None);
        };
        let io = |source| AuditError::Io {
            path: dir.clone(),
            source,
        };
        let mut entries = tokio::fs::read_dir(dir).await.map_err(io)?;
        let mut newest = None;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let name = entry.file_name();
            let epoch = name
                .to_str()
                .and_then(|n| n.strip_prefix("epoch-"))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|e| EpochFile::file_name(*e) == name.to_string_lossy());
            newest = newest.max(epoch);
        }
        Ok(newest)
    }
}

/// Reads the distributor without a wallet.
#[derive(Debug, Clone)]
pub struct ChainReader {
    client: DistributorClient<DynProvider>,
}

impl ChainReader {
    /// Reads the distributor at `distributor` through the JSON-RPC endpoint `url`.
    pub fn connect(url: reqwest::Url, distributor: Address) -> Self {
        let provider = ProviderBuilder::new().connect_http(url).erased();
        Self {
            client: DistributorClient::new(distributor, provider),
        }
    }

    /// The newest committed and newest finalized epochs.
    pub async fn heads(&self) -> Result<(u64, u64), AuditError> {
        Ok(self.client.heads().await?)
    }

    /// The deployment reward leaves must be bound to.
    pub async fn domain(&self) -> Result<RewardDomain, AuditError> {
        Ok(self.client.domain().await?)
    }

    /// The reward token's `decimals()`.
    pub async fn token_decimals(&self) -> Result<u8, AuditError> {
        Ok(self.client.token_decimals().await?)
    }

    /// The timestamp of the block that mined `tx`.
    async fn block_time_of(&self, tx: alloy::primitives::TxHash) -> Result<u64, AuditError> {
        let provider = self.client.provider();
        let receipt = provider
            .get_transaction_receipt(tx)
            .await
            .map_err(ChainError::from)?
            .ok_or(ChainError::MissingEvent(tx, "receipt"))?;
        let number = receipt
            .block_number
            .ok_or(ChainError::MissingEvent(tx, "block number"))?;
        let block = provider
            .get_block_by_number(number.into())
            .await
            .map_err(ChainError::from)?
            .ok_or(ChainError::NoBlock)?;
        Ok(block.header.timestamp)
    }

    /// The distributor's parameter schedule, oldest first.
    pub async fn params_schedule(&self) -> Result<Vec<proofpool_chain::ParamsVersion>, AuditError> {
        Ok(self.client.params_schedule().await?)
    }

    /// What the chain holds for `epoch`; `None` if no `EpochCommitted`
    /// event matches its stored hash (not committed, or vetoed).
    pub async fn epoch(
        &self,
        epoch: u64,
        domain: RewardDomain,
        token_decimals: u8,
        params_schedule: &[proofpool_chain::ParamsVersion],
        last_finalized: u64,
    ) -> Result<Option<OnChainEpoch>, AuditError> {
        let Some((record, tx)) = self.client.committed_record(epoch).await? else {
            return Ok(None);
        };
        let stored_hash = self.client.epoch_hash(epoch).await?;
        let prev_stored_hash = match epoch.checked_sub(1) {
            Some(prev) if prev > 0 => self.client.epoch_hash(prev).await?,
            _ => B256::ZERO,
        };
        Ok(Some(OnChainEpoch {
            record,
            stored_hash,
            prev_stored_hash,
            domain,
            token_decimals,
            params_schedule: params_schedule.to_vec(),
            finalized: epoch <= last_finalized,
            tx: Some(tx),
            committed_at: Some(self.block_time_of(tx).await?),
        }))
    }
}

/// Which epochs to report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// The first epoch to report on; earlier ones are replayed unchecked
    /// ([`Auditor::replay`]), because later epochs build on them.
    pub from: u64,
    /// The last epoch to report on; default: the newest committed on-chain
    /// (or the newest file, without the chain).
    pub to: Option<u64>,
    /// Confirmations after which the pool pays a block: a block the shares
    /// found that bitcoind has this deep (plus [`maturity_slack`]) in its
    /// best chain must be paid in an audited epoch.
    ///
    /// [`maturity_slack`]: super::maturity_slack
    pub maturity: u64,
    /// A block of the real chain the headers the files carry must contain:
    /// it ties them to Bitcoin without bitcoind.
    pub checkpoint: Option<super::Checkpoint>,
    /// The network the pool mines on, when auditing without bitcoind (with
    /// it, bitcoind's `chain` is the network): every file's
    /// `bitcoin.network` must be it. The subsidy PPS pays and the
    /// difficulty rules jobs are held to are the network's, so a file may
    /// not pick its own.
    pub network: Option<bitcoin::Network>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            from: 1,
            to: None,
            maturity: DEFAULT_MATURITY,
            checkpoint: None,
            network: None,
        }
    }
}

/// The outcome of a whole audit.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// One verdict per epoch reported on, in order.
    pub verdicts: Vec<EpochVerdict>,
    /// bitcoind's findings about blocks the shares found that no epoch
    /// pays, each with the epoch of its solving share; judged once every
    /// epoch is in, so they are not in the verdicts.
    pub found: Vec<(u64, Finding)>,
    /// Whether the chain was compared.
    pub chain_checked: bool,
    /// Whether paid blocks were checked against bitcoind.
    pub blocks_checked: bool,
    /// What ties the headers the files carry to Bitcoin.
    pub headers: HeaderAnchor,
    /// Warnings about the run as a whole (seq gaps the next epoch may close).
    pub warnings: Vec<Finding>,
}

impl AuditReport {
    /// Whether every epoch passed, and every block found is accounted for.
    pub fn is_ok(&self) -> bool {
        self.failed_epochs().is_empty()
    }

    /// The epochs that failed, in order.
    pub fn failed_epochs(&self) -> Vec<u64> {
        let mut failed: Vec<u64> = self
            .verdicts
            .iter()
            .filter(|v| !v.is_ok())
            .map(|v| v.epoch)
            .chain(
                self.found
                    .iter()
                    .filter(|(_, f)| f.severity == Severity::Mismatch)
                    .map(|(epoch, _)| *epoch),
            )
            .collect();
        failed.sort_unstable();
        failed.dedup();
        failed
    }
}

/// What ties the Bitcoin headers the files carry to the real chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderAnchor {
    /// The files carry no headers.
    NoHeaders,
    /// Nothing: they are checked for links, proof of work and targets only.
    Unanchored,
    /// They contain the `--checkpoint`.
    Checkpoint,
    /// bitcoind has the first of them in its best chain.
    Bitcoind,
}

/// Audits epochs 1..=N, reporting on `options.from..=N`: N is the newest
/// epoch committed on-chain when `chain` is given, else the newest file.
/// Each verdict goes to `observer` as it is final.
pub async fn audit(
    source: &EpochSource,
    chain: Option<&ChainReader>,
    node: Option<&BlockChecker>,
    options: &AuditOptions,
    observer: &mut dyn AuditObserver,
) -> Result<AuditReport, AuditError> {
    let from = options.from.max(1);
    let (newest, last_finalized, deployment) = match chain {
        Some(c) => {
            let (committed, finalized) = c.heads().await?;
            let deployment = (
                c.domain().await?,
                c.token_decimals().await?,
                c.params_schedule().await?,
            );
            (Some(committed), finalized, Some(deployment))
        }
        None => (source.newest().await?, 0, None),
    };
    // `None`: unknown (the API without the chain); stop at the first missing file.
    let last = match (newest, options.to) {
        (Some(n), Some(to)) => Some(n.min(to)),
        (n, to) => n.or(to),
    };
    let mut auditor = Auditor::configured(options.maturity, options.checkpoint);
    let network = match node {
        Some(node) => Some(node.network().await?),
        None => options.network,
    };
    auditor.expect_network(network);
    let mut verdicts = Vec::new();
    let mut epoch = 1u64;
    while last.is_none_or(|last| epoch <= last) {
        let bytes = source.fetch(epoch).await?;
        if epoch < from {
            let Some(bytes) = bytes else {
                return Err(AuditError::Replay {
                    epoch,
                    reason: format!("{} does not exist", source.describe(epoch)),
                });
            };
            auditor.replay(&bytes)?;
        } else {
            if last.is_none() && bytes.is_none() {
                break;
            }
            let onchain = match (chain, &deployment) {
                (Some(c), Some((domain, decimals, schedule))) => {
                    c.epoch(epoch, *domain, *decimals, schedule, last_finalized)
                        .await?
                }
                _ => None,
            };
            let mut verdict = match &bytes {
                Some(b) => auditor.audit_epoch_with(b, onchain.as_ref(), observer),
                None => auditor.missing_epoch(
                    &format!("{} does not exist", source.describe(epoch)),
                    onchain.as_ref(),
                ),
            };
            if chain.is_some() && onchain.is_none() {
                verdict.push(Finding {
                    severity: Severity::Mismatch,
                    subject: Subject::Chain,
                    field: "epochHash",
                    expected: "an EpochCommitted event matching the stored hash".to_owned(),
                    found: "none (not committed, or vetoed)".to_owned(),
                });
            }
            if let Some(node) = node {
                check_blocks(node, &mut verdict).await?;
                check_jobs(node, &mut verdict).await?;
                for (height, hash) in verdict.orphaned.clone() {
                    for finding in node.check_orphan(height, hash).await? {
                        verdict.push(finding);
                    }
                }
                if let Some((height, hash)) = auditor.unanchored_header() {
                    for finding in node.check_anchor(height, hash).await? {
                        verdict.push(finding);
                    }
                    auditor.anchored();
                }
            }
            observer.epoch_finished(&verdict);
            verdicts.push(verdict);
        }
        let Some(next) = epoch.checked_add(1) else {
            break;
        };
        epoch = next;
    }
    // Found blocks are judged once every epoch is in: a later epoch may pay
    // a block an earlier one found.
    let mut found = match node {
        Some(node) => check_found(node, &auditor, options.maturity, &verdicts).await?,
        None => Vec::new(),
    };
    // The same accounting from the carried headers alone.
    let epoch_secs = verdicts.last().and_then(|v| v.epoch_secs).unwrap_or(3600);
    let last_reported = verdicts.last().map_or(0, |v| v.epoch);
    for (epoch, finding) in auditor.unaccounted(super::maturity_slack(epoch_secs), node.is_some()) {
        let epoch = if verdicts.iter().any(|v| v.epoch == epoch) {
            epoch
        } else {
            last_reported
        };
        found.push((epoch, finding));
    }
    if node.is_none() && !auditor.carries_headers() && !verdicts.is_empty() {
        found.push((
            last_reported,
            Finding {
                severity: Severity::Warning,
                subject: Subject::Epoch,
                field: "bitcoin",
                expected: "jobs and blocks tied to Bitcoin: Bitcoin headers in the files, or --btc-rpc-url".to_owned(),
                found: "no headers in the files and no bitcoind: jobs, found blocks and orphans are not checked against the chain".to_owned(),
            },
        ));
    }
    if let (Some(node), Some(script), Some(last), Some(span)) = (
        node,
        auditor.payout_script(),
        verdicts.last().map(|v| v.epoch),
        auditor.epochs_span(),
    ) {
        // Between the lowest and the highest job's height, the chain moved
        // on while an audited epoch was taking shares; around them, by the
        // blocks' own times (see `check_unclaimed`).
        let heights = verdicts
            .iter()
            .flat_map(|v| v.jobs.iter().map(|j| j.height));
        if let (Some(low), Some(high)) = (heights.clone().min(), heights.max()) {
            let known = auditor.found_or_paid();
            for finding in node
                .check_unclaimed(low..=high, span, script, &known)
                .await?
            {
                found.push((last, finding));
            }
        }
    }
    // Epochs after `--to` may pay, or hold the shares of, what the audited
    // ones do not: then these are only shown.
    let partial = match (verdicts.last(), newest) {
        (Some(v), Some(newest)) => v.epoch < newest,
        _ => false,
    };
    if partial {
        for (_, finding) in &mut found {
            finding.severity = Severity::Warning;
        }
    }
    let headers = if !auditor.carries_headers() {
        HeaderAnchor::NoHeaders
    } else if node.is_some() {
        HeaderAnchor::Bitcoind
    } else if auditor.checkpoint_met() {
        HeaderAnchor::Checkpoint
    } else {
        HeaderAnchor::Unanchored
    };
    Ok(AuditReport {
        verdicts,
        found,
        chain_checked: chain.is_some(),
        blocks_checked: node.is_some(),
        headers,
        warnings: auditor.open_gaps(),
    })
}

/// Adds bitcoind's findings for each paid block. A block must be tied to
/// its solving share in the files whatever bitcoind says: a block that
/// bitcoind vouches for but whose share is elsewhere (or nowhere) would let
/// the operator move its PPLNS window.
async fn check_blocks(node: &BlockChecker, verdict: &mut EpochVerdict) -> Result<(), AuditError> {
    for block in verdict.blocks.clone() {
        for finding in node.check(&block).await? {
            verdict.push(finding);
        }
    }
    Ok(())
}

/// Adds bitcoind's findings for each job the epoch's shares were mined on,
/// once per distinct anchor (jobs refreshed for fees share one).
async fn check_jobs(node: &BlockChecker, verdict: &mut EpochVerdict) -> Result<(), AuditError> {
    let mut seen = HashSet::new();
    for job in verdict.jobs.clone() {
        if !seen.insert((
            job.prev_hash,
            job.height,
            job.nbits,
            job.template_time,
            job.fpps_value,
        )) {
            continue;
        }
        for finding in node.check_job(&job).await? {
            verdict.push(finding);
        }
    }
    Ok(())
}

/// bitcoind's findings for the blocks the shares found that no epoch pays,
/// each with the epoch that holds its solving share (or the last epoch
/// reported on, if that one was only replayed).
async fn check_found(
    node: &BlockChecker,
    auditor: &Auditor,
    maturity: u64,
    verdicts: &[EpochVerdict],
) -> Result<Vec<(u64, Finding)>, AuditError> {
    let mut out = Vec::new();
    let last = verdicts.last().map_or(0, |v| v.epoch);
    // The epoch length, from the newest audited epoch (all are one length).
    let epoch_secs = verdicts.last().and_then(|v| v.epoch_secs).unwrap_or(3600);
    let slack = super::maturity_slack(epoch_secs);
    for block in auditor.unpaid_found_blocks() {
        let epoch = if verdicts.iter().any(|v| v.epoch == block.epoch) {
            block.epoch
        } else {
            last
        };
        for finding in node.check_found(&block, maturity, slack).await? {
            out.push((epoch, finding));
        }
    }
    Ok(out)
}
