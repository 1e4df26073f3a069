//! Checking the recorded shares against the published epoch files.

use crate::WatchError;
use crate::evidence::{Claim, Listed, ShareEvidence};
use crate::log::{Status, WatchLog};
use alloy_primitives::{Address, B256, U256};
use proofpool_epoch::PplnsParams;
use proofpool_epoch::epoch_file::{EpochFile, EpochFileError, FileBlock, FileReward, data_hash};
use proofpool_epoch::header::target_from_nbits;
use proofpool_merkle::RewardDomain;
use proofpool_primitives::Work;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// By default, a share recorded this long before the end of the newest
/// epoch file checked must be in some file: the pool stamps a share when it
/// accepts it, and the watcher when the `true` arrives, a moment later (and
/// by another clock).
pub const SLACK_MS: u64 = 5_000;

/// Where a share is listed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    epoch: u64,
    miner: Address,
    share_target: U256,
}

/// A listed share as PPLNS weighs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weighed {
    pub(crate) miner: Address,
    /// The work of the target it is credited at.
    pub(crate) share_work: U256,
    /// The work of its job's network target (zero if the job is not listed).
    pub(crate) net_work: U256,
    /// Whether its epoch pays by PPLNS (PPS and FPPS shares were paid when
    /// their epoch closed; no PPLNS window counts them).
    pub(crate) pplns: bool,
    /// Its header hash, internal byte order (a block's solving share must
    /// hash to the block).
    pub(crate) hash: B256,
}

/// What the credit replay needs of one epoch file besides its shares.
#[derive(Debug, Clone)]
pub(crate) struct EpochSummary {
    pub(crate) params: PplnsParams,
    pub(crate) blocks: Vec<FileBlock>,
    pub(crate) rewards: Vec<FileReward>,
    pub(crate) reward_root: B256,
    pub(crate) token_per_sat: U256,
    pub(crate) domain: RewardDomain,
    /// keccak256 of the file's bytes, as the distributor commits it.
    pub(crate) data_hash: B256,
    /// How the epoch pays.
    pub(crate) scheme: proofpool_epoch::Scheme,
    /// PPS and FPPS: each share valued from its own job, on the file's
    /// network (`None` when the file names none: nothing can be valued).
    pub(crate) valued: Option<Vec<proofpool_epoch::ExpectedShare>>,
    /// PPS and FPPS: the credits the file lists for the epoch's shares.
    pub(crate) expected: Vec<proofpool_epoch::epoch_file::FileCredit>,
    /// The network the file names (`bitcoin.network`), if a known one.
    pub(crate) network: Option<bitcoin::Network>,
}

/// The epoch files' shares by hash, and what the credit replay needs.
#[derive(Debug, Default)]
pub struct EpochIndex {
    by_hash: HashMap<B256, Entry>,
    /// The newest epoch indexed and its end, unix seconds.
    newest: Option<(u64, u64)>,
    /// Every listed share by sequence number.
    pub(crate) window: BTreeMap<u64, Weighed>,
    pub(crate) epochs: BTreeMap<u64, EpochSummary>,
    /// The network the pool mines on, as the miner knows it: a PPS or FPPS
    /// file naming another is a problem (a file's own word would let it
    /// halve the subsidy away).
    pub(crate) network: Option<bitcoin::Network>,
}

impl EpochIndex {
    /// Holds the PPS and FPPS files to `network` (see [`crate::credits`]).
    pub fn expect_network(&mut self, network: bitcoin::Network) {
        self.network = Some(network);
    }

    /// Adds one epoch file, read from `bytes`.
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), EpochFileError> {
        let file = EpochFile::from_bytes(bytes)?;
        // Each job's network work, height and coinbase value.
        let net: HashMap<(u8, u64), (U256, u64, u64)> = file
            .jobs
            .iter()
            .map(|j| {
                let work =
                    Work::from_target(target_from_nbits(j.nbits)).map_or(U256::ZERO, |w| w.0);
                ((j.instance, j.job_id), (work, j.height, j.coinbase_value))
            })
            .collect();
        let scheme = file.params.scheme;
        let pplns = scheme == proofpool_epoch::Scheme::Pplns;
        let network = file
            .bitcoin
            .as_ref()
            .and_then(|b| proofpool_epoch::network_named(&b.network));
        let mut valued = (!pplns && network.is_some()).then(Vec::new);
        for s in &file.shares {
            self.by_hash.insert(
                s.hash,
                Entry {
                    epoch: file.epoch,
                    miner: s.miner,
                    share_target: s.share_target,
                },
            );
            let (net_work, height, coinbase_value) = net
                .get(&(s.instance, s.job_id))
                .copied()
                .unwrap_or_default();
            let share_work = Work::from_target(s.share_target).map_or(U256::ZERO, |w| w.0);
            self.window.insert(
                s.seq,
                Weighed {
                    miner: s.miner,
                    share_work,
                    net_work,
                    pplns,
                    hash: s.hash,
                },
            );
            if let (Some(valued), Some(network)) = (valued.as_mut(), network) {
                let height = u32::try_from(height).unwrap_or(u32::MAX);
                if let Some(base) = proofpool_epoch::ExpectedShare::base(
                    scheme,
                    network,
                    height,
                    proofpool_primitives::Sats(coinbase_value),
                ) {
                    valued.push(proofpool_epoch::ExpectedShare {
                        miner: proofpool_primitives::MinerAddress(s.miner),
                        share_work: Work(share_work),
                        net_work: Work(net_work),
                        base,
                    });
                }
            }
        }
        if self.newest.is_none_or(|(e, _)| file.epoch > e) {
            self.newest = Some((file.epoch, file.end_unix));
        }
        self.epochs.insert(
            file.epoch,
            EpochSummary {
                params: PplnsParams {
                    window_x: file.params.window_x,
                    fee_bps: file.params.fee_bps,
                },
                blocks: file.blocks,
                rewards: file.rewards,
                reward_root: file.reward_root,
                token_per_sat: file.chain.token_per_sat,
                domain: RewardDomain {
                    chain_id: file.chain.chain_id,
                    distributor: file.chain.distributor,
                },
                data_hash: data_hash(bytes),
                scheme,
                valued,
                expected: file.expected.map(|x| x.credits).unwrap_or_default(),
                network,
            },
        );
        Ok(())
    }

    /// Reads every `epoch-NNNNNNNN.json` in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, WatchError> {
        let mut index = Self::default();
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("epoch-") && n.ends_with(".json"))
            })
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::read(&path)?;
            index
                .add(&bytes)
                .map_err(|e| WatchError::Epoch(format!("{}: {e}", path.display())))?;
        }
        Ok(index)
    }

    /// Fetches epoch files from the pool's API, from epoch 1 until one is
    /// not published (`404`).
    pub async fn from_api(api_url: &str) -> Result<Self, WatchError> {
        let client = reqwest::Client::new();
        let mut index = Self::default();
        for epoch in 1u64.. {
            let url = format!(
                "{}/api/v1/epochs/{epoch}/file",
                api_url.trim_end_matches('/')
            );
            let response = client.get(&url).send().await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                break;
            }
            let bytes = response.error_for_status()?.bytes().await?;
            index
                .add(&bytes)
                .map_err(|e| WatchError::Epoch(format!("{url}: {e}")))?;
        }
        Ok(index)
    }

    /// The newest epoch indexed.
    pub fn newest_epoch(&self) -> Option<u64> {
        self.newest.map(|(e, _)| e)
    }
}

/// What one check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Listed as mined.
    pub included: u64,
    /// Not yet due in any file.
    pub pending: u64,
    /// Missing or altered, each with the evidence written for it.
    pub problems: Vec<Problem>,
    /// Recorded shares whose own proof of work shows nothing (a pool whose
    /// jobs do not commit to a miner): hash and why.
    pub unverifiable: Vec<(B256, String)>,
    /// The miners the verified shares commit to.
    pub miners: BTreeSet<Address>,
}

/// A share the files get wrong.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The share's hash.
    pub hash: B256,
    /// The worker that mined it.
    pub worker: String,
    /// The evidence, with its claim.
    pub evidence: ShareEvidence,
    /// Where the evidence was written, if it was.
    pub path: Option<PathBuf>,
}

/// Checks every recorded share against `index`: included with the miner and
/// target its proof of work commits to, missing although it was recorded
/// more than `slack_ms` before the newest epoch file's end, or altered.
/// Writes each problem's evidence to `evidence_dir/<hash>.json` when given,
/// and files the statuses in the log.
pub async fn check(
    log: &WatchLog,
    index: &EpochIndex,
    evidence_dir: Option<&Path>,
    slack_ms: u64,
) -> Result<CheckReport, WatchError> {
    let mut report = CheckReport::default();
    let Some((newest, newest_end)) = index.newest else {
        report.pending = log.shares().await?.len() as u64;
        return Ok(report);
    };
    if let Some(dir) = evidence_dir {
        std::fs::create_dir_all(dir)?;
    }
    for share in log.shares().await? {
        let verified = match share.evidence.verify() {
            Ok(v) => v,
            Err(e) => {
                report.unverifiable.push((share.hash, e.to_string()));
                continue;
            }
        };
        report.miners.insert(verified.miner);
        let claim = match index.by_hash.get(&share.hash) {
            Some(entry)
                if entry.miner == verified.miner && entry.share_target == verified.target =>
            {
                report.included += 1;
                log.set_status(share.hash, Status::Included, Some(entry.epoch))
                    .await?;
                continue;
            }
            Some(entry) => {
                log.set_status(share.hash, Status::Altered, Some(entry.epoch))
                    .await?;
                Claim {
                    problem: "altered".into(),
                    epoch: entry.epoch,
                    listed: Some(Listed {
                        miner: entry.miner,
                        share_target: entry.share_target,
                    }),
                }
            }
            None if share.time_ms.saturating_add(slack_ms) < newest_end.saturating_mul(1000) => {
                log.set_status(share.hash, Status::Missing, None).await?;
                Claim {
                    problem: "missing".into(),
                    epoch: newest,
                    listed: None,
                }
            }
            None => {
                report.pending += 1;
                continue;
            }
        };
        let evidence = ShareEvidence {
            claim: Some(claim),
            ..share.evidence
        };
        let path = match evidence_dir {
            Some(dir) => {
                let path = dir.join(format!("{}.json", share.hash));
                std::fs::write(&path, serde_json::to_vec_pretty(&evidence)?)?;
                Some(path)
            }
            None => None,
        };
        report.problems.push(Problem {
            hash: share.hash,
            worker: share.worker,
            evidence,
            path,
        });
    }
    Ok(report)
}
