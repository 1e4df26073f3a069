//! Reward trees for claim proofs and share trees for inclusion proofs,
//! rebuilt from the store and checked against the stored roots.
//!
//! A settled epoch's trees never change (its shares and credits, and every
//! earlier epoch's, are written once), so the few newest trees asked for
//! are kept; concurrent requests for one epoch share a single build.

use crate::error::ApiError;
use crate::{ApiState, Shared};
use proofpool_merkle::{RewardTree, ShareLeaf, ShareTree};
use proofpool_primitives::{EpochId, ShareHash, Work};
use proofpool_store::EpochRecord;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Trees kept, newest epochs first.
const KEEP: usize = 4;

type Slot<T> = Arc<OnceCell<Arc<T>>>;

/// Built trees by epoch.
#[derive(Debug)]
pub(crate) struct Cache<T> {
    slots: Mutex<BTreeMap<u64, Slot<T>>>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Built reward trees by epoch.
pub(crate) type TreeCache = Cache<RewardTree>;

/// An epoch's share tree with its leaves, in sequence order.
#[derive(Debug)]
pub(crate) struct EpochShares {
    /// The tree.
    pub(crate) tree: ShareTree,
    /// Its leaves, in the tree's order.
    pub(crate) leaves: Vec<ShareLeaf>,
}

/// Built share trees by epoch.
pub(crate) type ShareTreeCache = Cache<EpochShares>;

impl<T> Cache<T> {
    /// How many trees are held (built or being built).
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn slot(&self, epoch: u64) -> Slot<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(epoch).or_default().clone();
        while slots.len() > KEEP {
            // The oldest epochs go first; a request holding its slot still
            // finishes with it.
            slots.pop_first();
        }
        slot
    }
}

/// The reward tree of the settled epoch `record`, built once and cached.
pub(crate) async fn tree_for(
    app: &Shared,
    record: &EpochRecord,
) -> Result<Arc<RewardTree>, ApiError> {
    let slot = app.trees.slot(record.epoch);
    slot.get_or_try_init(|| async { build(&app.state, record).await.map(Arc::new) })
        .await
        .cloned()
}

/// Rebuilds the tree from `balances_at(epoch)` and refuses it unless its
/// root is the stored one: a proof that cannot verify is never served.
async fn build(state: &ApiState, record: &EpochRecord) -> Result<RewardTree, ApiError> {
    let e = record.epoch;
    let balances = state.store.balances_at(e).await?;
    let (domain, token_per_sat) = (state.domain, state.token_per_sat);
    let tree = tokio::task::spawn_blocking(move || {
        proofpool_epoch::reward_tree(domain, balances, token_per_sat)
    })
    .await
    .map_err(|err| {
        ApiError::Internal(format!(
            "building the reward tree of epoch {e} failed: {err}"
        ))
    })?
    .map_err(|err| {
        ApiError::Internal(format!(
            "the stored balances of epoch {e} do not form a reward tree: {err}"
        ))
    })?;
    if tree.root() != record.reward_root {
        return Err(ApiError::Internal(format!(
            "the reward tree rebuilt for epoch {e} has root {} but the stored root is {}; \
             this API's chain id ({}), distributor ({}) or token-per-sat ({}) must differ from the settler's, \
             so no proof is served",
            tree.root(),
            record.reward_root,
            domain.chain_id,
            domain.distributor,
            state.token_per_sat
        )));
    }
    Ok(tree)
}

/// The share tree of the settled epoch `record`, built once and cached.
pub(crate) async fn shares_for(
    app: &Shared,
    record: &EpochRecord,
) -> Result<Arc<EpochShares>, ApiError> {
    let slot = app.share_trees.slot(record.epoch);
    slot.get_or_try_init(|| async { build_shares(&app.state, record).await.map(Arc::new) })
        .await
        .cloned()
}

/// Rebuilds the share tree from the stored shares, as the settler does,
/// and refuses it unless its root is the stored one.
async fn build_shares(state: &ApiState, record: &EpochRecord) -> Result<EpochShares, ApiError> {
    let e = record.epoch;
    let shares = state.store.shares_of_epoch(e, 4, 50_000).await?;
    let leaves: Vec<ShareLeaf> = shares
        .iter()
        .map(|s| ShareLeaf {
            epoch: EpochId(e),
            seq: s.seq,
            miner: s.share.miner,
            work: Work(s.share.work),
            share_hash: ShareHash(s.share.hash),
        })
        .collect();
    let (tree, leaves) =
        tokio::task::spawn_blocking(move || ShareTree::new(&leaves).map(|tree| (tree, leaves)))
            .await
            .map_err(|err| {
                ApiError::Internal(format!(
                    "building the share tree of epoch {e} failed: {err}"
                ))
            })?
            .map_err(|err| {
                ApiError::Internal(format!(
                    "the stored shares of epoch {e} do not form a share tree: {err}"
                ))
            })?;
    if tree.root() != record.share_root {
        return Err(ApiError::Internal(format!(
            "the share tree rebuilt for epoch {e} has root {} but the stored root is {}; no share proof is served",
            tree.root(),
            record.share_root
        )));
    }
    Ok(EpochShares { tree, leaves })
}
