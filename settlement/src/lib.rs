//! Settlement: from an epoch's trees to an on-chain commitment.
//!
//! Data flow: the share tree and the cumulative reward tree of an epoch
//! ([`proofpool_merkle`]), the Bitcoin blocks it pays ([`blocks_hash`]), the
//! pool's parameters ([`PoolParams::hash`]) and the epoch file's hash are
//! folded into an [`EpochCommit`](proofpool_epoch::EpochCommit)
//! by [`EpochInputs::commit`], which the settler sends with
//! [`proofpool_chain::DistributorClient::commit_epoch`]. Auditors recompute the
//! same hashes from the published epoch file.

mod engine;
mod headers;

pub use engine::{BuiltEpoch, EpochPreview, Report, SettleConfig, SettleError, Settler};
// The pure epoch code lives in `proofpool-epoch`; these keep the settler's
// callers' paths.
pub use proofpool_epoch::{
    BlockPayout, EpochInputs, PaidBlock, PoolParams, PplnsError, PplnsParams, SCORE_BITS,
    SCORING_VERSION, Scheme, ScoreError, WindowShare, blocks_hash, credit_block, epoch_file,
    header, sats_to_token, share_score, window_units,
};
