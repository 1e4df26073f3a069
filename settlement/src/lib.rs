//! Settlement: from an epoch's trees to an on-chain commitment.
//!
//! Data flow: the share tree and the cumulative reward tree of an epoch
//! ([`proofpool_merkle`]), the Bitcoin blocks it pays ([`blocks_hash`]), the
//! PPLNS parameters ([`PplnsParams::hash`]) and the epoch file's hash are
//! folded into an [`EpochCommit`](proofpool_chain::Distributor::EpochCommit)
//! by [`EpochInputs::commit`], which the settler sends with
//! [`proofpool_chain::DistributorClient::commit_epoch`]. Auditors recompute the
//! same hashes from the published epoch file.

pub mod audit;
mod commitment;
mod engine;
pub mod epoch_file;
pub mod header;
mod pplns;

pub use commitment::{
    EpochInputs, PaidBlock, PplnsParams, SCORING_VERSION, blocks_hash, sats_to_token,
};
pub use engine::{BuiltEpoch, EpochPreview, Report, SettleConfig, SettleError, Settler};
pub use pplns::{
    BlockPayout, PplnsError, SCORE_BITS, ScoreError, WindowShare, credit_block, share_score,
    window_units,
};
