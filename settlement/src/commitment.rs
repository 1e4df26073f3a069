//! The struct an epoch's commitment is sent as: the pure hashes are
//! [`proofpool_epoch`]'s, folded into the contract's `EpochCommit` here.

use alloy::primitives::B256;
use proofpool_chain::Distributor::EpochCommit;
use proofpool_merkle::RewardTree;
use proofpool_primitives::EpochId;

/// Everything that goes into one epoch's commitment.
#[derive(Debug, Clone)]
pub struct EpochInputs<'a> {
    /// The epoch.
    pub epoch: EpochId,
    /// Root of the epoch's share tree.
    pub share_root: B256,
    /// The cumulative reward tree after this epoch.
    pub rewards: &'a RewardTree,
    /// [`blocks_hash`](proofpool_epoch::blocks_hash) of the blocks paid.
    pub blocks_hash: B256,
    /// [`PplnsParams::hash`](proofpool_epoch::PplnsParams::hash).
    pub params_hash: B256,
    /// Hash of the epoch file.
    pub data_hash: B256,
    /// The stored hash of the previous epoch on-chain (zero for epoch 1).
    pub prev_epoch_hash: B256,
}

impl EpochInputs<'_> {
    /// The struct `commitEpoch` takes.
    pub fn commit(&self) -> EpochCommit {
        EpochCommit {
            epoch: self.epoch.0,
            shareRoot: self.share_root,
            rewardRoot: self.rewards.root(),
            totalCumulative: self.rewards.total(),
            blocksHash: self.blocks_hash,
            paramsHash: self.params_hash,
            dataHash: self.data_hash,
            prevEpochHash: self.prev_epoch_hash,
        }
    }
}
