//! The settlement cron: closes epochs, computes PPLNS over matured blocks,
//! writes epoch files and commits, then finalizes, on-chain.
//!
//! One pass ([`Settler::run_once`]) under the settlement lock:
//! 1. track found blocks through bitcoind (immature → mature or orphaned);
//! 2. commit any epoch already computed but not yet on-chain (crash recovery);
//! 3. for each epoch whose interval ended more than `grace` ago, in order:
//!    fence it in the store (no share can land in it any more), gather its
//!    shares and the blocks that matured, build both trees and the epoch
//!    file, record it as `closed` in one transaction, then commit it;
//! 4. finalize every committed epoch whose challenge period has passed.
//!
//! Every step is idempotent: an epoch's numbers are computed once and stored
//! before anything is sent, and before sending, the chain is asked whether
//! the epoch is already there. Same roots: recorded and skipped; different
//! roots: stop loudly and change nothing.

use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::Provider;
use proofpool_chain::{ChainError, DistributorClient};
use proofpool_epoch::EpochCommit;
use proofpool_epoch::epoch_file::{
    EpochFile, FORMAT, FileBlock, FileChain, FileCredit, FileExpected, FileJob, FileLogHead,
    FileOrphan, FileParams, FileReward, FileShare, VERSION,
};
use proofpool_epoch::{
    EpochInputs, ExpectedShare, PaidBlock, PoolParams, PplnsParams, SCORING_VERSION, Scheme,
    blocks_hash, credit_epoch, reward_tree, sats_to_token,
};
use proofpool_epoch::{SCORE_BITS, WindowShare, credit_block, share_score};
use proofpool_merkle::{RewardDomain, ShareLeaf, ShareTree};
use proofpool_node::NodeClient;
use proofpool_primitives::{EpochId, MinerAddress, Sats, ShareHash, Work};
use proofpool_store::{
    BlockRecord, BlockStatus, CreditRow, EpochClock, EpochRecord, EpochStatus, LogPoint,
    SettledEpoch, Store, StoreError, WindowShare as StoredWindowShare,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Shares read per query.
const PAGE: u32 = 50_000;
/// An epoch's shares are read as this many seq ranges at once.
const READ_PARTS: u32 = 4;
/// The first read of older epochs' shares for a PPLNS window is this small,
/// as the window is usually full before it reaches them.
const FIRST_OLDER_PAGE: u32 = 512;

/// How settlement runs.
#[derive(Debug, Clone)]
pub struct SettleConfig {
    /// The pool's parameters: window, fee, scale, payout script, epoch
    /// length, maturity and tag. Each epoch file declares them and commits
    /// their hash; they must be the ones the distributor has in force at
    /// the epoch's start (see `verify_params`).
    pub params: PoolParams,
    /// Before building an epoch, check that `params` are the distributor's
    /// `paramsAt(start)`; if not, settle with the version in force when the
    /// owner announced it (`ParamsQueued`), else stop with
    /// [`SettleError::ParamsNotInForce`]: the guardian would veto the epoch. `proofpool settle` always
    /// checks; `false` only acts out a settler that ignores the schedule
    /// (the cheating suite).
    pub verify_params: bool,
    /// How long after an epoch's end it is closed (lets in-flight batches land).
    pub grace: Duration,
    /// Where epoch files are written.
    pub epochs_dir: PathBuf,
    /// Confirmations to wait for after each transaction.
    pub confirmations: u64,
    /// Compute and print, write and send nothing.
    pub dry_run: bool,
    /// The settler's account (whose tokens fund each commit).
    pub settler: Address,
}

/// Why settlement stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain failed or reverted.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// bitcoind failed.
    #[error("bitcoind: {0}")]
    Node(#[from] proofpool_node::NodeError),
    /// The configured parameters are not the ones in force on-chain for an
    /// epoch: committing it would be vetoed.
    #[error(
        "epoch {epoch} starts at {start_unix}, when the distributor has parameters {in_force} in force, but this settler is configured with {configured}: settle it with the parameters in force (proofpool params show)"
    )]
    ParamsNotInForce {
        /// The epoch.
        epoch: u64,
        /// Its start, unix seconds.
        start_unix: u64,
        /// `paramsAt(start_unix)`.
        in_force: B256,
        /// The configured parameters' hash.
        configured: B256,
    },
    /// Another settler holds the lock.
    #[error("another settle process holds the settlement lock; nothing done")]
    Locked,
    /// The chain has this epoch with other contents.
    #[error(
        "epoch {epoch} is already committed on-chain with different contents (chain {chain:?}, ours {ours:?}); refusing to continue — investigate before settling again"
    )]
    Conflict {
        /// The epoch.
        epoch: u64,
        /// What the chain has.
        chain: Box<EpochCommit>,
        /// What we computed.
        ours: Box<EpochCommit>,
    },
    /// The chain and the store disagree about which epoch is next.
    #[error(
        "the chain's last committed epoch is {chain}, but the store's next epoch to commit is {epoch}: the chain is behind (vetoed or a different deployment?)"
    )]
    OutOfStep {
        /// The chain's newest committed epoch.
        chain: u64,
        /// The epoch we want to commit.
        epoch: u64,
    },
    /// PPLNS failed on stored data.
    #[error("PPLNS for block {height}: {source}")]
    Pplns {
        /// The block.
        height: u64,
        /// Why.
        source: proofpool_epoch::PplnsError,
    },
    /// Stored data is inconsistent.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// Writing the epoch file failed.
    #[error("cannot write epoch file {path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The settler cannot fund the commit.
    #[error(
        "the settler holds {balance} token units but epoch {epoch} needs {needed}; fund the settler account"
    )]
    Unfunded {
        /// The epoch.
        epoch: u64,
        /// Tokens needed.
        needed: U256,
        /// Tokens held.
        balance: U256,
    },
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Blocks whose status changed.
    pub blocks_updated: Vec<(u64, BlockStatus)>,
    /// Epochs computed and recorded.
    pub settled: Vec<u64>,
    /// Epochs committed on-chain, with the transaction.
    pub committed: Vec<(u64, TxHash)>,
    /// Epochs finalized on-chain.
    pub finalized: Vec<u64>,
    /// Dry run: the epochs that would be settled next, as computed.
    pub previews: Vec<EpochPreview>,
    /// The first epoch a veto rolled back, forgotten and computed again.
    pub rolled_back: Option<u64>,
}

/// A computed epoch, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochPreview {
    /// The epoch.
    pub epoch: u64,
    /// Shares.
    pub shares: u64,
    /// Blocks paid.
    pub blocks: u64,
    /// Share root.
    pub share_root: B256,
    /// Reward root.
    pub reward_root: B256,
    /// Total cumulative.
    pub total_cumulative: U256,
    /// File size in bytes.
    pub file_bytes: u64,
}

/// An epoch computed from the store.
#[derive(Debug)]
pub struct BuiltEpoch {
    /// The file.
    pub file: EpochFile,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// What goes on-chain.
    pub commit: EpochCommit,
    /// Its credits.
    pub credits: Vec<CreditRow>,
    /// Blocks it pays.
    pub paid_blocks: Vec<B256>,
    /// Orphaned or refused blocks it lists.
    pub orphaned_blocks: Vec<B256>,
    /// The blocks its shares were expected to find, in `2^128` units (the
    /// pool's luck; recorded, not committed).
    pub expected_work: U256,
}

/// The settlement service.
#[derive(Debug)]
pub struct Settler<P> {
    store: Store,
    chain: DistributorClient<P>,
    node: Option<Arc<NodeClient>>,
    config: SettleConfig,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl<P: Provider + Clone> Settler<P> {
    /// A settler over `store` committing to `chain`; `node` tracks maturity
    /// (without it, block statuses are left as they are).
    pub fn new(
        store: Store,
        chain: DistributorClient<P>,
        node: Option<Arc<NodeClient>>,
        config: SettleConfig,
    ) -> Self {
        Self {
            store,
            chain,
            node,
            config,
        }
    }

    /// One full pass; see the module docs.
    pub async fn run_once(&self) -> Result<Report, SettleError> {
        let _lock = self
            .store
            .try_settlement_lock()
            .await?
            .ok_or(SettleError::Locked)?;
        let mut report = Report::default();
        let domain = self.chain.domain().await?;
        if self.node.is_some() && !self.config.dry_run {
            report.blocks_updated = self.update_blocks().await?;
        }
        // Funding a veto rolled back is owed to the settler, not sent:
        // take it back before funding new commits.
        if !self.config.dry_run {
            let owed = self.chain.refund_owed(self.config.settler).await?;
            if owed > U256::ZERO {
                self.chain.withdraw_refund().await?;
                tracing::info!(%owed, "withdrew the funding refunded by a veto");
            }
        }
        if !self.config.dry_run {
            report.rolled_back = self.recover_from_veto().await?;
        }
        // Epochs computed but not yet committed (a previous run stopped).
        if !self.config.dry_run {
            for record in self.pending_records().await? {
                let tx = self.commit(&record).await?;
                report.committed.push((record.epoch, tx));
            }
        }
        let clock = self.store.clock().await?;
        let mut next = self.store.last_settled_epoch().await? + 1;
        loop {
            let (_, end) = clock.bounds(next);
            let now = now_ms() / 1000;
            if end.saturating_add(self.config.grace.as_secs()) > now {
                break;
            }
            if self.config.dry_run {
                let built = self.build_epoch(next, &clock, domain).await?;
                report.previews.push(preview(&built));
                break;
            }
            self.store.close_epoch(next).await?;
            let built = self.build_epoch(next, &clock, domain).await?;
            let record = self.record(&built).await?;
            report.settled.push(next);
            let tx = self.commit(&record).await?;
            report.committed.push((next, tx));
            next += 1;
        }
        if !self.config.dry_run {
            report.finalized = self.finalize_ready().await?;
        }
        Ok(report)
    }

    /// After a veto: the chain rolled back epochs the store has as committed.
    /// Forgets them (and every later one) in the store, so this pass
    /// computes them again from the shares, as the operator has corrected
    /// them, and commits them anew. Returns the first epoch rolled back.
    async fn recover_from_veto(&self) -> Result<Option<u64>, SettleError> {
        let (chain_committed, _) = self.chain.heads().await?;
        let last = self.store.last_settled_epoch().await?;
        for e in chain_committed.saturating_add(1)..=last {
            let Some(record) = self.store.epoch(e).await? else {
                continue;
            };
            match record.status {
                // Computed, not yet sent: committed below as usual.
                EpochStatus::Closed => continue,
                EpochStatus::Finalized => {
                    return Err(SettleError::Inconsistent(format!(
                        "epoch {e} is finalized in the store but the chain's last committed epoch is {chain_committed}: a different deployment?"
                    )));
                }
                EpochStatus::Committed => {
                    if !self.chain.epoch_hash(e).await?.is_zero() {
                        return Err(SettleError::Inconsistent(format!(
                            "epoch {e} is stored on-chain above the chain's last committed epoch {chain_committed}"
                        )));
                    }
                    let removed = self.store.roll_back_epochs(e).await?;
                    tracing::warn!(
                        epoch = e,
                        records = removed,
                        "epochs from this one were vetoed on-chain: forgotten, and computed again from the shares"
                    );
                    return Ok(Some(e));
                }
            }
        }
        Ok(None)
    }

    /// Checks every found block against bitcoind and records its status.
    pub async fn update_blocks(&self) -> Result<Vec<(u64, BlockStatus)>, SettleError> {
        let Some(node) = &self.node else {
            return Ok(Vec::new());
        };
        let mut changed = Vec::new();
        for b in self.store.blocks().await? {
            if !matches!(b.status, BlockStatus::Submitted | BlockStatus::Immature) {
                continue;
            }
            let hash_hex = alloy::hex::encode(b.hash);
            let header = node.get_block_header(&hash_hex).await?;
            let (status, confirmations) = match header {
                Some(h) if h.confirmations < 0 => (BlockStatus::Orphaned, 0),
                Some(h) => {
                    let c = u64::try_from(h.confirmations).unwrap_or(0);
                    if c >= self.config.params.maturity {
                        (BlockStatus::Mature, c)
                    } else {
                        (BlockStatus::Immature, c)
                    }
                }
                None => (BlockStatus::Orphaned, 0),
            };
            if status != b.status || confirmations != b.confirmations {
                self.store
                    .set_block_status(b.hash, status, confirmations)
                    .await?;
                if status != b.status {
                    tracing::info!(height = b.height, hash = %hash_hex, %status, confirmations, "block status changed");
                    changed.push((b.height, status));
                }
            }
        }
        Ok(changed)
    }

    async fn pending_records(&self) -> Result<Vec<EpochRecord>, SettleError> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let page = self.store.epochs(offset, 100).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            let done = page.iter().any(|r| r.status != EpochStatus::Closed);
            out.extend(page.into_iter().filter(|r| r.status == EpochStatus::Closed));
            if done {
                break;
            }
        }
        out.sort_by_key(|r| r.epoch);
        Ok(out)
    }

    /// Computes epoch `e` from the store (which must have it closed, except
    /// in a dry run).
    pub async fn build_epoch(
        &self,
        e: u64,
        clock: &EpochClock,
        domain: RewardDomain,
    ) -> Result<BuiltEpoch, SettleError> {
        let (start_unix, end_unix) = clock.bounds(e);
        let params = self.params_for(e, start_unix).await?;
        let params: &PoolParams = &params;
        let params_hash = params.hash();
        if params.epoch_secs != clock.epoch_secs {
            return Err(SettleError::Inconsistent(format!(
                "the parameters say epochs last {} s, the store's clock {} s",
                params.epoch_secs, clock.epoch_secs
            )));
        }
        let started = std::time::Instant::now();
        // Shares, in sequence order.
        let shares = self.store.shares_of_epoch(e, READ_PARTS, PAGE).await?;
        let jobs = self.store.jobs_for_epoch(e).await?;
        let job_index: HashMap<(u8, u64), &proofpool_store::JobRecord> =
            jobs.iter().map(|j| ((j.instance, j.job_id), j)).collect();
        let mut leaves = Vec::with_capacity(shares.len());
        let mut file_shares = Vec::with_capacity(shares.len());
        // What PPLNS needs of this epoch's shares, so block windows walk them
        // in memory instead of reading them again.
        let mut window = Vec::with_capacity(shares.len());
        // Each instance's share-log chain: where it stood before the
        // epoch's first share of the instance, and where it is now.
        let mut logs: BTreeMap<u8, (LogPoint, LogPoint)> = BTreeMap::new();
        let scheme = params.scheme;
        // PPS and FPPS: what each share's expected value is computed from
        // once the network is known (below).
        let mut valued: Vec<ValuedShare> = Vec::new();
        // Σ score: the blocks the shares were expected to find.
        let mut expected_work = U256::ZERO;
        let mut net_cache: Option<(U256, Work)> = None;
        for s in shares {
            let sh = s.share;
            let Some(job) = job_index.get(&(sh.instance, sh.job_id)) else {
                return Err(SettleError::Inconsistent(format!(
                    "share {} names job {}/{} which is not in the store",
                    s.seq, sh.instance, sh.job_id
                )));
            };
            if scheme != Scheme::Pplns {
                valued.push(ValuedShare {
                    miner: sh.miner,
                    work: sh.work,
                    network_target: sh.network_target,
                    height: job.height,
                    coinbase_value: job.coinbase_value,
                });
            }
            let leaf = ShareLeaf {
                epoch: EpochId(e),
                seq: s.seq,
                miner: sh.miner,
                work: Work(sh.work),
                share_hash: ShareHash(sh.hash),
            };
            let log = match logs.entry(sh.instance) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let before = self.store.log_point(sh.instance, Some(s.seq)).await?;
                    v.insert((before, before))
                }
            };
            log.1.fold_leaf(&leaf);
            leaves.push(leaf);
            window.push(StoredWindowShare {
                seq: s.seq,
                miner: sh.miner,
                work: sh.work,
                network_target: sh.network_target,
            });
            let net_work = match net_cache {
                Some((target, work)) if target == sh.network_target => Some(work),
                _ => {
                    let work = Work::from_target(sh.network_target).ok();
                    net_cache = work.map(|w| (sh.network_target, w));
                    work
                }
            };
            // At most one block a share, as PPS and FPPS value it.
            if let Some(score) = net_work.and_then(|n| share_score(Work(sh.work), n).ok()) {
                expected_work = expected_work.saturating_add(score.min(U256::ONE << SCORE_BITS));
            }
            file_shares.push(FileShare {
                seq: s.seq,
                time_ms: sh.time_ms,
                instance: sh.instance,
                job_id: sh.job_id,
                miner: sh.miner,
                worker: sh.worker,
                extranonce1: Bytes::copy_from_slice(&sh.extranonce1),
                extranonce2: sh.extranonce2.into(),
                ntime: sh.ntime,
                nonce: sh.nonce,
                version: sh.version,
                hash: sh.hash,
                share_target: sh.share_target,
                work: sh.work,
            });
        }
        let read = started.elapsed();
        let share_root = ShareTree::new(&leaves)
            .map_err(|err| SettleError::Inconsistent(err.to_string()))?
            .root();
        drop(leaves);
        let share_tree = started.elapsed();

        // Blocks that matured and are unpaid, by height, whose solving share
        // is in this epoch or an earlier one (a block found after the epoch
        // ended waits for the epoch its share is in, so its window is whole).
        // Each is paid under the scheme of its solving share's epoch: by
        // PPLNS, or (PPS and FPPS, whose shares were paid when their epoch
        // closed) as the operator's revenue.
        let mut matured: Vec<(BlockRecord, Scheme)> = Vec::new();
        for b in self.store.blocks().await? {
            if b.status != BlockStatus::Mature || b.paid_epoch.is_some() {
                continue;
            }
            let share_epoch = if b.share_seq > 0 {
                self.store.share_epoch(b.share_seq).await?
            } else {
                Some(clock.epoch_of_ms(b.found_ms))
            };
            let Some(se) = share_epoch.filter(|se| *se <= e) else {
                continue;
            };
            let block_scheme = if se == e {
                scheme
            } else {
                self.settled_scheme(se).await?
            };
            matured.push((b, block_scheme));
        }
        matured.sort_by_key(|(b, _)| (b.height, b.hash));
        // Blocks that left the best chain (or that bitcoind refused), listed
        // once, once their solving share is in this epoch or an earlier one.
        let mut orphaned = Vec::new();
        for b in self.store.unlisted_orphans().await? {
            // Without its share in the log nothing in the files is a block
            // to account for.
            if b.share_seq == 0 {
                continue;
            }
            if self
                .store
                .share_epoch(b.share_seq)
                .await?
                .is_some_and(|se| se <= e)
            {
                orphaned.push(FileOrphan {
                    height: b.height,
                    hash: b.hash,
                    share_seq: b.share_seq,
                });
            }
        }
        // The headers auditors tie the jobs and blocks to.
        let bitcoin = match &self.node {
            Some(node) => {
                let prev = crate::headers::last_carried(&self.config.epochs_dir, e);
                crate::headers::carry(node, prev.as_ref(), &jobs).await?
            }
            None => None,
        };
        let expected = match scheme {
            Scheme::Pplns => None,
            _ => Some(expected_payout(
                scheme,
                bitcoin.as_ref().map(|b| b.network.as_str()),
                &valued,
                params.pplns.fee_bps,
            )?),
        };
        drop(valued);
        let mut file_blocks = Vec::new();
        let mut credits = Vec::new();
        let mut this_epoch: BTreeMap<Address, u64> = BTreeMap::new();
        // A PPLNS window counts only shares of PPLNS epochs (the store
        // leaves out earlier epochs settled otherwise, this line this one).
        let window: &[StoredWindowShare] = if scheme == Scheme::Pplns {
            &window
        } else {
            &[]
        };
        for (b, block_scheme) in &matured {
            let fb = match block_scheme {
                Scheme::Pplns => self.pay_block(b, e, window, &params.pplns).await?,
                Scheme::Pps | Scheme::Fpps => revenue_block(b, self.solving_seq(b).await?),
            };
            for c in &fb.credits {
                credits.push(CreditRow {
                    block_hash: b.hash,
                    miner: c.miner,
                    sats: c.sats,
                });
                let entry = this_epoch.entry(c.miner).or_default();
                *entry = entry
                    .checked_add(c.sats)
                    .ok_or_else(|| SettleError::Inconsistent("credits overflow u64".to_owned()))?;
            }
            file_blocks.push(fb);
        }
        if let Some(x) = &expected {
            for c in &x.credits {
                // Not a block's: the zero hash stands for the epoch's own
                // shares in the store's credit rows.
                credits.push(CreditRow {
                    block_hash: B256::ZERO,
                    miner: c.miner,
                    sats: c.sats,
                });
                let entry = this_epoch.entry(c.miner).or_default();
                *entry = entry
                    .checked_add(c.sats)
                    .ok_or_else(|| SettleError::Inconsistent("credits overflow u64".to_owned()))?;
            }
        }

        // Cumulative balances → reward tree.
        let mut cumulative = self.store.balances_at(e.saturating_sub(1)).await?;
        for (miner, sats) in this_epoch {
            let entry = cumulative.entry(miner).or_default();
            *entry = entry
                .checked_add(sats)
                .ok_or_else(|| SettleError::Inconsistent("balance overflow u64".to_owned()))?;
        }
        let scale = params.token_per_sat;
        let mut rewards = Vec::with_capacity(cumulative.len());
        for (&account, &sats) in cumulative.iter().filter(|(_, s)| **s > 0) {
            let amount = sats_to_token(Sats(sats), scale)
                .ok_or_else(|| SettleError::Inconsistent("token amount overflows".to_owned()))?;
            rewards.push(FileReward {
                account,
                cumulative_sats: sats,
                cumulative_amount: amount,
            });
        }
        // The auditor and the API build the tree the same way.
        let tree = reward_tree(domain, cumulative, scale)
            .map_err(|err| SettleError::Inconsistent(err.to_string()))?;
        let credited = started.elapsed();

        let paid: Vec<PaidBlock> = matured
            .iter()
            .map(|(b, _)| PaidBlock {
                height: b.height,
                hash: b.hash,
                coinbase_value: Sats(b.coinbase_value),
            })
            .collect();
        let blocks_hash = blocks_hash(&paid);
        let prev_epoch_hash = if e > 1 {
            self.chain.epoch_hash(e - 1).await?
        } else {
            B256::ZERO
        };
        let file = EpochFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            epoch: e,
            start_unix,
            end_unix,
            chain: FileChain {
                chain_id: domain.chain_id,
                distributor: domain.distributor,
                token_per_sat: params.token_per_sat,
            },
            params: FileParams {
                scoring_version: SCORING_VERSION,
                window_x: params.pplns.window_x,
                fee_bps: params.pplns.fee_bps,
                params_hash,
                payout_script: Some(params.payout_script.clone())
                    .filter(|script| !script.is_empty()),
                epoch_secs: params.epoch_secs,
                maturity: params.maturity,
                pool_tag: params.pool_tag.clone(),
                scheme,
            },
            prev_epoch_hash,
            bitcoin,
            jobs: jobs
                .iter()
                .map(|j| FileJob {
                    instance: j.instance,
                    job_id: j.job_id,
                    height: j.height,
                    prev_hash: j.prev_hash,
                    version: j.version,
                    nbits: j.nbits,
                    template_time: j.template_time,
                    coinbase1: j.coinbase1.clone().into(),
                    coinbase2: j.coinbase2.clone().into(),
                    coinbase2_suffix: j.coinbase2_suffix.clone().into(),
                    log_head: j.log_head,
                    branch: j.branch.clone(),
                    coinbase_value: j.coinbase_value,
                })
                .collect(),
            shares: file_shares,
            share_log: logs
                .into_iter()
                .map(|(instance, (prev, now))| FileLogHead {
                    instance,
                    prev_seq: prev.seq,
                    prev_head: prev.head,
                    last_seq: now.seq,
                    head: now.head,
                })
                .collect(),
            share_root,
            blocks: file_blocks,
            blocks_hash,
            orphaned,
            expected,
            rewards,
            reward_root: tree.root(),
            total_cumulative: tree.total(),
        };
        let (bytes, file_hash) = file
            .to_bytes_and_hash()
            .map_err(|err| SettleError::Inconsistent(err.to_string()))?;
        let encoded = started.elapsed();
        let commit = EpochInputs {
            epoch: EpochId(e),
            share_root,
            rewards: &tree,
            blocks_hash,
            params_hash,
            data_hash: file_hash,
            prev_epoch_hash,
        }
        .commit();
        tracing::info!(
            epoch = e,
            shares = file.shares.len(),
            rewards = file.rewards.len(),
            blocks = file.blocks.len(),
            file_bytes = bytes.len(),
            read_ms = read.as_millis() as u64,
            share_tree_ms = (share_tree - read).as_millis() as u64,
            pplns_and_reward_tree_ms = (credited - share_tree).as_millis() as u64,
            encode_and_hash_ms = (encoded - credited).as_millis() as u64,
            "epoch built"
        );
        Ok(BuiltEpoch {
            bytes,
            commit,
            credits,
            paid_blocks: matured.iter().map(|(b, _)| b.hash).collect(),
            orphaned_blocks: file.orphaned.iter().map(|o| o.hash).collect(),
            expected_work,
            file,
        })
    }

    /// The parameters epoch `e` (starting at `start_unix`) is settled with:
    /// the configured ones if the distributor has them in force then; else
    /// the ones it has in force, if the owner announced them
    /// (`queueParams`, `proofpool params queue`), so an announced change, a
    /// scheme switch among them, takes effect at the first epoch starting
    /// after its notice without restarting the settler. With
    /// `verify_params` off, always the configured ones.
    async fn params_for(
        &self,
        e: u64,
        start_unix: u64,
    ) -> Result<std::borrow::Cow<'_, PoolParams>, SettleError> {
        let configured = self.config.params.hash();
        if !self.config.verify_params {
            return Ok(std::borrow::Cow::Borrowed(&self.config.params));
        }
        let in_force = self.chain.params_at(start_unix).await?;
        if in_force == configured {
            return Ok(std::borrow::Cow::Borrowed(&self.config.params));
        }
        let configured_params = &self.config.params;
        match self.chain.announced_params(in_force).await? {
            // Only what settlement alone applies: the scheme, the fee, the
            // window. A new payout script, tag, epoch length or maturity
            // must reach the pool (and the settler's block tracking) too:
            // those stop the settler until it is restarted with them.
            Some(p)
                if p.payout_script == configured_params.payout_script
                    && p.pool_tag == configured_params.pool_tag
                    && p.epoch_secs == configured_params.epoch_secs
                    && p.maturity == configured_params.maturity
                    && p.token_per_sat == configured_params.token_per_sat =>
            {
                tracing::info!(
                    epoch = e,
                    params = %in_force,
                    scheme = %p.scheme,
                    fee_bps = p.pplns.fee_bps,
                    "settling with the parameters the distributor has in force, not the configured ones"
                );
                Ok(std::borrow::Cow::Owned(p))
            }
            _ => Err(SettleError::ParamsNotInForce {
                epoch: e,
                start_unix,
                in_force,
                configured,
            }),
        }
    }

    /// The block's solving share: recorded, or (a block found before shares
    /// were tied to blocks) the last share accepted by the time it was found.
    async fn solving_seq(&self, b: &BlockRecord) -> Result<u64, SettleError> {
        Ok(if b.share_seq > 0 {
            b.share_seq
        } else {
            self.store.seq_at_time(b.found_ms).await?
        })
    }

    /// The scheme an earlier epoch was settled under.
    async fn settled_scheme(&self, epoch: u64) -> Result<Scheme, SettleError> {
        let name = self.store.epoch_scheme(epoch).await?.ok_or_else(|| {
            SettleError::Inconsistent(format!(
                "epoch {epoch} holds a matured block's solving share but was never settled"
            ))
        })?;
        name.parse()
            .map_err(|err: String| SettleError::Inconsistent(format!("epoch {epoch}: {err}")))
    }

    /// PPLNS for one block, walking back from its solving share over shares
    /// in epochs up to `e`: this epoch's shares come from `current` (in
    /// memory, in sequence order), older epochs' from the store, merged in
    /// descending sequence order.
    async fn pay_block(
        &self,
        b: &BlockRecord,
        e: u64,
        current: &[StoredWindowShare],
        pplns: &PplnsParams,
    ) -> Result<FileBlock, SettleError> {
        let start = self.solving_seq(b).await?;
        let window = proofpool_epoch::window_units(pplns.window_x);
        let mut shares: Vec<WindowShare> = Vec::new();
        let mut filled = U256::ZERO;
        let mut mine = current[..current.partition_point(|w| w.seq <= start)]
            .iter()
            .rev()
            .peekable();
        // Shares of epochs before `e` with seq <= older_from, fetched lazily.
        let mut older: std::vec::IntoIter<StoredWindowShare> = Vec::new().into_iter();
        let mut older_from = start;
        let mut older_done = e == 0 || start == 0;
        let mut older_page = FIRST_OLDER_PAGE;
        let mut older_head: Option<StoredWindowShare> = None;
        // One network target is shared by most shares; convert it once.
        let mut net_cache: Option<(U256, Work)> = None;
        while filled < window {
            if older_head.is_none() {
                older_head = older.next();
                if older_head.is_none() && !older_done {
                    let page = self
                        .store
                        .window_upto(older_from, e - 1, older_page)
                        .await?;
                    older_done = page.len() < older_page as usize;
                    match page.last() {
                        Some(last) if last.seq > 0 => older_from = last.seq - 1,
                        _ => older_done = true,
                    }
                    older_page = PAGE;
                    older = page.into_iter();
                    older_head = older.next();
                }
            }
            let take_mine = match (mine.peek(), &older_head) {
                (Some(m), Some(o)) => m.seq > o.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let w = if take_mine {
                *mine.next().expect("peeked")
            } else {
                older_head.take().expect("present")
            };
            let net_work = match net_cache {
                Some((target, work)) if target == w.network_target => work,
                _ => {
                    let work = Work::from_target(w.network_target)
                        .map_err(|err| SettleError::Inconsistent(err.to_string()))?;
                    net_cache = Some((w.network_target, work));
                    work
                }
            };
            let share_work = Work(w.work);
            if let Ok(score) = share_score(share_work, net_work) {
                filled = filled.saturating_add(score);
            }
            shares.push(WindowShare {
                seq: w.seq,
                miner: MinerAddress(w.miner),
                share_work,
                net_work,
            });
        }
        let payout = credit_block(shares, Sats(b.coinbase_value), pplns).map_err(|source| {
            SettleError::Pplns {
                height: b.height,
                source,
            }
        })?;
        Ok(FileBlock {
            height: b.height,
            hash: b.hash,
            coinbase_value: b.coinbase_value,
            finder: b.finder,
            share_seq: start,
            window_oldest_seq: payout.oldest_seq,
            window_oldest_partial: payout.oldest_partial,
            window_filled: payout.filled,
            fee: payout.fee.0,
            young_pool_remainder: payout.young_pool_remainder.0,
            dust: payout.dust.0,
            operator: payout.operator.0,
            credits: file_credits(&payout.credits),
        })
    }

    /// Writes the epoch file and the `closed` record (with credits) in one
    /// store transaction; returns the record.
    async fn record(&self, built: &BuiltEpoch) -> Result<EpochRecord, SettleError> {
        let e = built.file.epoch;
        std::fs::create_dir_all(&self.config.epochs_dir).map_err(|source| SettleError::File {
            path: self.config.epochs_dir.clone(),
            source,
        })?;
        let name = EpochFile::file_name(e);
        let path = self.config.epochs_dir.join(&name);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, &built.bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| SettleError::File {
                path: path.clone(),
                source,
            })?;
        let c = &built.commit;
        let record = EpochRecord {
            epoch: e,
            status: EpochStatus::Closed,
            share_count: built.file.shares.len() as u64,
            seq_range: built
                .file
                .shares
                .first()
                .zip(built.file.shares.last())
                .map(|(a, b)| (a.seq, b.seq)),
            share_root: c.shareRoot,
            reward_root: c.rewardRoot,
            total_cumulative: c.totalCumulative,
            blocks_hash: c.blocksHash,
            params_hash: c.paramsHash,
            data_hash: c.dataHash,
            prev_epoch_hash: c.prevEpochHash,
            file_name: name,
            commit_tx: None,
            finalize_tx: None,
            updated_ms: now_ms(),
        };
        self.store
            .record_settled_epoch(&SettledEpoch {
                record: record.clone(),
                credits: built.credits.clone(),
                paid_blocks: built.paid_blocks.clone(),
                orphaned_blocks: built.orphaned_blocks.clone(),
                scheme: built.file.params.scheme.as_str(),
                expected_work: built.expected_work,
            })
            .await?;
        tracing::info!(
            epoch = e,
            shares = record.share_count,
            blocks = built.paid_blocks.len(),
            share_root = %record.share_root,
            reward_root = %record.reward_root,
            total = %record.total_cumulative,
            bytes = built.bytes.len(),
            "epoch computed"
        );
        Ok(record)
    }

    /// Commits a recorded epoch, unless the chain already has it.
    async fn commit(&self, r: &EpochRecord) -> Result<TxHash, SettleError> {
        let commit = EpochCommit {
            epoch: r.epoch,
            shareRoot: r.share_root,
            rewardRoot: r.reward_root,
            totalCumulative: r.total_cumulative,
            blocksHash: r.blocks_hash,
            paramsHash: r.params_hash,
            dataHash: r.data_hash,
            prevEpochHash: r.prev_epoch_hash,
        };
        let (last_committed, _) = self.chain.heads().await?;
        if last_committed >= r.epoch {
            return match self.chain.committed_record(r.epoch).await? {
                Some((onchain, tx)) if onchain.commit == commit => {
                    tracing::info!(epoch = r.epoch, %tx, "already committed on-chain with the same roots; recording it");
                    self.store
                        .set_epoch_status(r.epoch, EpochStatus::Committed, Some(tx), now_ms())
                        .await?;
                    Ok(tx)
                }
                Some((onchain, _)) => Err(SettleError::Conflict {
                    epoch: r.epoch,
                    chain: Box::new(onchain.commit),
                    ours: Box::new(commit),
                }),
                None => Err(SettleError::OutOfStep {
                    chain: last_committed,
                    epoch: r.epoch,
                }),
            };
        }
        if last_committed + 1 != r.epoch {
            return Err(SettleError::OutOfStep {
                chain: last_committed,
                epoch: r.epoch,
            });
        }
        let increase = r
            .total_cumulative
            .saturating_sub(self.chain.committed_total().await?);
        if !increase.is_zero() {
            let pull = self.chain.funding_for(increase).await?;
            let balance = self.chain.token_balance(self.config.settler).await?;
            if balance < pull {
                return Err(SettleError::Unfunded {
                    epoch: r.epoch,
                    needed: pull,
                    balance,
                });
            }
            self.chain.approve_funding(pull).await?;
        }
        failpoint("before-send");
        let tx = self.chain.send_commit_epoch(commit).await?;
        failpoint("after-send");
        let receipt = self.chain.wait(tx).await?;
        if !receipt.status() {
            return Err(SettleError::Chain(ChainError::TxReverted(tx)));
        }
        self.wait_confirmations(receipt.block_number).await?;
        failpoint("after-receipt");
        self.store
            .set_epoch_status(r.epoch, EpochStatus::Committed, Some(tx), now_ms())
            .await?;
        tracing::info!(epoch = r.epoch, %tx, funded = %increase, "epoch committed on-chain");
        Ok(tx)
    }

    async fn wait_confirmations(&self, mined_in: Option<u64>) -> Result<(), SettleError> {
        let (Some(mined), true) = (mined_in, self.config.confirmations > 1) else {
            return Ok(());
        };
        let target = mined + self.config.confirmations - 1;
        let deadline = tokio::time::Instant::now() + proofpool_chain::RECEIPT_TIMEOUT;
        while self.chain.block_number().await? < target {
            if tokio::time::Instant::now() >= deadline {
                return Err(SettleError::Chain(ChainError::NoBlock));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Finalizes, in order, every committed epoch whose challenge period has
    /// passed, and brings the store's statuses in line with the chain.
    pub async fn finalize_ready(&self) -> Result<Vec<u64>, SettleError> {
        let (committed, mut finalized) = self.chain.heads().await?;
        // The next block's timestamp is at least the latest one's and, on
        // chains that only mine on demand (anvil), about the wall clock.
        let now = self.chain.chain_time().await?.max(now_ms() / 1000);
        let mut done = Vec::new();
        while finalized < committed {
            let e = finalized + 1;
            let Some((record, _)) = self.chain.committed_record(e).await? else {
                break;
            };
            if record.finalizableAt > now {
                break;
            }
            let receipt = match self.chain.finalize(record).await {
                Ok(receipt) => receipt,
                // Our clock ran ahead of the chain's; try again next pass.
                Err(ChainError::Reverted(
                    proofpool_chain::Distributor::DistributorErrors::ChallengePeriodActive(_),
                )) => break,
                Err(e) => return Err(e.into()),
            };
            self.store
                .set_epoch_status(
                    e,
                    EpochStatus::Finalized,
                    Some(receipt.transaction_hash),
                    now_ms(),
                )
                .await?;
            tracing::info!(epoch = e, tx = %receipt.transaction_hash, "epoch finalized");
            done.push(e);
            finalized = e;
        }
        // Epochs finalized by someone else (anyone may) or before a crash.
        for r in self.store.epochs(0, 1000).await? {
            if r.epoch <= finalized && r.status == EpochStatus::Committed {
                self.store
                    .set_epoch_status(r.epoch, EpochStatus::Finalized, None, now_ms())
                    .await?;
            }
        }
        Ok(done)
    }
}

/// What a PPS or FPPS share is valued from.
struct ValuedShare {
    miner: Address,
    work: U256,
    network_target: U256,
    height: u64,
    coinbase_value: u64,
}

/// The expected-value credits of an epoch's shares under `scheme` on the
/// network bitcoind named (`None` without bitcoind, which PPS and FPPS
/// need: PPS pays the network's subsidy, and the auditor values a share
/// only against the headers the file carries, which tie its job's height
/// and `nbits` to the chain).
fn expected_payout(
    scheme: Scheme,
    network: Option<&str>,
    shares: &[ValuedShare],
    fee_bps: u64,
) -> Result<FileExpected, SettleError> {
    if shares.is_empty() {
        // Nothing to value, and before the first job no headers to carry.
        return Ok(FileExpected {
            gross: 0,
            fee: 0,
            dust: 0,
            credits: Vec::new(),
        });
    }
    let name = network.ok_or_else(|| {
        SettleError::Inconsistent(format!(
            "{scheme} settles with bitcoind (the subsidy schedule, and the headers the auditor values shares against); configure its RPC"
        ))
    })?;
    let network = proofpool_epoch::network_named(name).ok_or_else(|| {
        SettleError::Inconsistent(format!("bitcoind's chain {name:?} is no known network"))
    })?;
    // Most shares share one network target; convert it once.
    let mut net_cache: Option<(U256, Work)> = None;
    let mut valued = Vec::with_capacity(shares.len());
    for s in shares {
        let net_work = match net_cache {
            Some((target, work)) if target == s.network_target => work,
            _ => {
                let work = Work::from_target(s.network_target)
                    .map_err(|err| SettleError::Inconsistent(err.to_string()))?;
                net_cache = Some((s.network_target, work));
                work
            }
        };
        let base = match scheme {
            Scheme::Pps => {
                let height = u32::try_from(s.height)
                    .map_err(|_| SettleError::Inconsistent(format!("job height {}", s.height)))?;
                proofpool_epoch::subsidy(network, height)
            }
            _ => Sats(s.coinbase_value),
        };
        valued.push(ExpectedShare {
            miner: MinerAddress(s.miner),
            share_work: Work(s.work),
            net_work,
            base,
        });
    }
    let payout = credit_epoch(valued, fee_bps)
        .map_err(|err| SettleError::Inconsistent(format!("{scheme} credits: {err}")))?;
    Ok(FileExpected {
        gross: payout.gross.0,
        fee: payout.fee.0,
        dust: payout.dust.0,
        credits: file_credits(&payout.credits),
    })
}

/// Credits as the epoch file lists them: by account, none zero.
fn file_credits(credits: &BTreeMap<MinerAddress, Sats>) -> Vec<FileCredit> {
    credits
        .iter()
        .map(|(m, s)| FileCredit {
            miner: m.0,
            sats: s.0,
        })
        .collect()
}

/// A block whose solving share was paid its expected value (PPS or FPPS):
/// all of it is the operator's, and it credits nobody.
fn revenue_block(b: &BlockRecord, share_seq: u64) -> FileBlock {
    FileBlock {
        height: b.height,
        hash: b.hash,
        coinbase_value: b.coinbase_value,
        finder: b.finder,
        share_seq,
        window_oldest_seq: None,
        window_oldest_partial: false,
        window_filled: U256::ZERO,
        fee: 0,
        young_pool_remainder: 0,
        dust: 0,
        operator: b.coinbase_value,
        credits: Vec::new(),
    }
}

/// Crash-test hook: when `PROOFPOOL_FAILPOINT` names this point, announce it
/// on stderr and hang, so a test can SIGKILL the process exactly here.
fn failpoint(name: &str) {
    if std::env::var("PROOFPOOL_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("FAILPOINT {name}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn preview(b: &BuiltEpoch) -> EpochPreview {
    EpochPreview {
        epoch: b.file.epoch,
        shares: b.file.shares.len() as u64,
        blocks: b.file.blocks.len() as u64,
        share_root: b.file.share_root,
        reward_root: b.file.reward_root,
        total_cumulative: b.file.total_cumulative,
        file_bytes: b.bytes.len() as u64,
    }
}
