//! Reward trees for claim proofs, rebuilt from the store and checked
//! against the stored root.
//!
//! A settled epoch's tree never changes (its credits, and every earlier
//! epoch's, are written once), so the few newest trees asked for are kept;
//! concurrent requests for one epoch share a single build.

use crate::error::ApiError;
use crate::{ApiState, Shared};
use proofpool_merkle::RewardTree;
use proofpool_store::EpochRecord;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Trees kept, newest epochs first.
const KEEP: usize = 4;

type Slot = Arc<OnceCell<Arc<RewardTree>>>;

/// Built reward trees by epoch.
#[derive(Debug, Default)]
pub(crate) struct TreeCache {
    slots: Mutex<BTreeMap<u64, Slot>>,
}

impl TreeCache {
    /// How many trees are held (built or being built).
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn slot(&self, epoch: u64) -> Slot {
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
