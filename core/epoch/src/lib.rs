//! proofpool's epoch data, with no I/O: what the settler writes, the
//! auditor reads and the API serves, in one place.
//!
//! Data flow: the settler builds an [`EpochFile`](epoch_file::EpochFile)
//! (jobs, shares, paid blocks with their [`pplns`] breakdown, cumulative
//! rewards), hashes it (`dataHash`), and commits the share root, the reward
//! root ([`reward_tree`]), [`blocks_hash`] and [`PoolParams::hash`]. The
//! auditor parses the same bytes, rebuilds every share header
//! ([`header::HeaderParts`]) and replays [`credit_block`] over the share
//! history; the API rebuilds the reward tree for proofs. Token amounts are
//! satoshis times [`token_per_sat`] ([`sats_to_token`]). [`EpochInputs`]
//! folds the hashes into the [`EpochCommit`] the distributor takes, and
//! [`record_hash`] is the hash it stores for an [`EpochRecord`]; the chain
//! crate converts them to its contract bindings at the boundary.

mod commitment;
pub mod epoch_file;
mod expected;
pub mod header;
mod pplns;
mod rewards;
pub mod share_commitment;

pub use commitment::{
    EpochCommit, EpochInputs, EpochRecord, PaidBlock, PoolParams, PplnsParams, SCORING_VERSION,
    SolPoolParams, blocks_hash, record_hash, sats_to_token, token_per_sat,
};
pub use expected::{
    ExpectedError, ExpectedPayout, ExpectedShare, Scheme, credit_epoch, network_named, subsidy,
};
pub use pplns::{
    BlockPayout, PplnsError, SCORE_BITS, ScoreError, WindowShare, credit_block, share_score,
    window_units,
};
pub use rewards::{RewardsError, reward_tree};
