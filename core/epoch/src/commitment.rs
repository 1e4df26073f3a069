//! The hashes an epoch commitment is made of.

use alloy_primitives::{B256, U256, keccak256};
use alloy_sol_types::SolValue;
use proofpool_merkle::RewardTree;
use proofpool_primitives::{EpochId, Sats};

#[allow(missing_docs)]
mod sol_types {
    alloy_sol_types::sol! {
        /// An epoch's commitment, as `commitEpoch` takes it: the
        /// distributor's `EpochCommit` (`IDistributorTypes.sol`), field for
        /// field.
        #[derive(Debug, PartialEq, Eq)]
        struct EpochCommit {
            uint64 epoch;
            bytes32 shareRoot;
            bytes32 rewardRoot;
            uint256 totalCumulative;
            bytes32 blocksHash;
            bytes32 paramsHash;
            bytes32 dataHash;
            bytes32 prevEpochHash;
        }

        /// The record whose hash the distributor stores for each committed
        /// epoch (its `EpochRecord`).
        #[derive(Debug, PartialEq, Eq)]
        struct EpochRecord {
            EpochCommit commit;
            uint64 finalizableAt;
            uint256 prevTotalCumulative;
        }
    }
}

pub use sol_types::{EpochCommit, EpochRecord};

/// The hash the contract stores for an epoch record: `keccak256(abi.encode(r))`.
pub fn record_hash(record: &EpochRecord) -> B256 {
    keccak256(record.abi_encode())
}

/// The version of the scoring rules (DESIGN.md, "PPLNS"); part of `paramsHash`.
///
/// 2: scores in `2^128` units per network difficulty (1 was DESIGN.md's
/// `2^64`; see [`crate::pplns`] for why it changed).
pub const SCORING_VERSION: u64 = 2;

/// The PPLNS parameters an epoch was settled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PplnsParams {
    /// The window, in network difficulties (X).
    pub window_x: u64,
    /// The pool fee in basis points.
    pub fee_bps: u64,
}

impl PplnsParams {
    /// `keccak256(abi.encode(uint64 scoringVersion, uint64 windowX, uint64 feeBps))`.
    pub fn hash(&self) -> B256 {
        keccak256((SCORING_VERSION, self.window_x, self.fee_bps).abi_encode_params())
    }
}

/// A Bitcoin block whose reward an epoch pays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidBlock {
    /// Its height.
    pub height: u64,
    /// Its hash, in RPC (display) byte order.
    pub hash: B256,
    /// What its coinbase paid the pool: subsidy plus fees.
    pub coinbase_value: Sats,
}

/// `keccak256(abi.encode((uint64 height, bytes32 hash, uint64 coinbaseValue)[]))`,
/// with the blocks in height order. An epoch that pays no block hashes the
/// empty array.
pub fn blocks_hash(blocks: &[PaidBlock]) -> B256 {
    let mut sorted: Vec<(u64, B256, u64)> = blocks
        .iter()
        .map(|b| (b.height, b.hash, b.coinbase_value.0))
        .collect();
    sorted.sort_unstable_by_key(|b| (b.0, b.1));
    keccak256(sorted.abi_encode())
}

/// Everything that goes into one epoch's commitment.
#[derive(Debug, Clone)]
pub struct EpochInputs<'a> {
    /// The epoch.
    pub epoch: EpochId,
    /// Root of the epoch's share tree.
    pub share_root: B256,
    /// The cumulative reward tree after this epoch.
    pub rewards: &'a RewardTree,
    /// [`blocks_hash`] of the blocks paid.
    pub blocks_hash: B256,
    /// [`PplnsParams::hash`].
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

/// Converts satoshis to token base units with an integer scale (1 for an
/// 8-decimal token such as WBTC; 10^10 for an 18-decimal one).
pub fn sats_to_token(sats: Sats, scale: U256) -> Option<U256> {
    U256::from(sats.0).checked_mul(scale)
}

/// Token base units per satoshi for a token of `decimals`: one token per
/// bitcoin, so `10^(decimals - 8)`; `None` below 8 decimals (a satoshi
/// would be a fraction of a base unit) or past what fits 256 bits.
pub fn token_per_sat(decimals: u8) -> Option<U256> {
    let exponent = decimals.checked_sub(8)?;
    U256::from(10u64).checked_pow(U256::from(exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hash_is_order_independent_and_value_sensitive() {
        let a = PaidBlock {
            height: 101,
            hash: B256::repeat_byte(1),
            coinbase_value: Sats(5_000_000_000),
        };
        let b = PaidBlock {
            height: 102,
            hash: B256::repeat_byte(2),
            coinbase_value: Sats(5_000_001_000),
        };
        assert_eq!(blocks_hash(&[a, b]), blocks_hash(&[b, a]));
        let b2 = PaidBlock {
            coinbase_value: Sats(5_000_001_001),
            ..b
        };
        assert_ne!(blocks_hash(&[a, b]), blocks_hash(&[a, b2]));
        assert_ne!(blocks_hash(&[]), blocks_hash(&[a]));
    }

    #[test]
    fn params_hash_commits_to_every_field() {
        let p = PplnsParams {
            window_x: 2,
            fee_bps: 100,
        };
        assert_ne!(p.hash(), PplnsParams { window_x: 3, ..p }.hash());
        assert_ne!(p.hash(), PplnsParams { fee_bps: 101, ..p }.hash());
    }

    #[test]
    fn scale_is_checked() {
        assert_eq!(
            sats_to_token(Sats(7), U256::from(10u64.pow(10))),
            Some(U256::from(70_000_000_000u64))
        );
        assert_eq!(sats_to_token(Sats(u64::MAX), U256::MAX), None);
    }
}
