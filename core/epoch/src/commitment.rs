//! The hashes an epoch commitment is made of.

use crate::Scheme;
use alloy_primitives::{B256, Bytes, U256, keccak256};
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

        /// The pool's parameters as the distributor pins them (its
        /// `PoolParams`, `IDistributorTypes.sol`), field for field.
        #[derive(Debug, PartialEq, Eq)]
        struct PoolParams {
            uint64 scoringVersion;
            uint64 windowX;
            uint64 feeBps;
            uint256 tokenPerSat;
            bytes payoutScript;
            uint64 epochSecs;
            uint64 maturity;
            bytes poolTag;
            uint8 scheme;
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

/// The [`PoolParams`] as the distributor's `PoolParams` struct.
pub type SolPoolParams = sol_types::PoolParams;

/// The hash the contract stores for an epoch record: `keccak256(abi.encode(r))`.
pub fn record_hash(record: &EpochRecord) -> B256 {
    keccak256(record.abi_encode())
}

/// The version of the scoring rules (DESIGN.md, "PPLNS"); part of `paramsHash`.
///
/// 2: scores in `2^128` units per network difficulty (1 was DESIGN.md's
/// `2^64`; see [`crate::pplns`] for why it changed).
pub const SCORING_VERSION: u64 = 2;

/// The PPLNS window and the fee (the fee applies to every scheme) an epoch
/// was settled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PplnsParams {
    /// The window, in network difficulties (X).
    pub window_x: u64,
    /// The pool fee in basis points.
    pub fee_bps: u64,
}

/// Everything an epoch is settled under, pinned on-chain (DESIGN.md,
/// "Threat model", binding 5): the distributor keeps a schedule of their
/// hashes, and epoch `E` must be settled with the version in force at its
/// start (`paramsAt(start_unix)`). A change takes effect only after a notice
/// of at least the challenge period, so miners see it coming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolParams {
    /// The PPLNS window and fee.
    pub pplns: PplnsParams,
    /// Token base units per satoshi: `10^(decimals - 8)`.
    pub token_per_sat: U256,
    /// The `scriptPubKey` every job's coinbase pays.
    pub payout_script: Bytes,
    /// The length of an epoch, in seconds.
    pub epoch_secs: u64,
    /// Confirmations before a found block is paid.
    pub maturity: u64,
    /// The tag every job's coinbase scriptSig carries.
    pub pool_tag: Bytes,
    /// How miners are paid. A change, like any other, takes effect at an
    /// epoch boundary after the notice; blocks whose solving share is in an
    /// epoch settled under PPLNS are still paid by PPLNS when they mature.
    pub scheme: Scheme,
}

impl PoolParams {
    /// The distributor's struct (with [`SCORING_VERSION`]).
    pub fn to_sol(&self) -> SolPoolParams {
        SolPoolParams {
            scoringVersion: SCORING_VERSION,
            windowX: self.pplns.window_x,
            feeBps: self.pplns.fee_bps,
            tokenPerSat: self.token_per_sat,
            payoutScript: self.payout_script.clone(),
            epochSecs: self.epoch_secs,
            maturity: self.maturity,
            poolTag: self.pool_tag.clone(),
            scheme: self.scheme.code(),
        }
    }

    /// `paramsHash`: `keccak256(abi.encode(PoolParams))`, as the
    /// distributor's `hashParams`.
    pub fn hash(&self) -> B256 {
        keccak256(self.to_sol().abi_encode())
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
    /// [`PoolParams::hash`].
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

    fn params() -> PoolParams {
        PoolParams {
            pplns: PplnsParams {
                window_x: 2,
                fee_bps: 100,
            },
            token_per_sat: U256::from(1u64),
            payout_script: Bytes::from_static(&[0x00, 0x14, 7, 7, 7]),
            epoch_secs: 3600,
            maturity: 100,
            pool_tag: Bytes::from_static(b"/proofpool/"),
            scheme: Scheme::Pplns,
        }
    }

    #[test]
    fn params_hash_commits_to_every_field() {
        let p = params();
        let h = p.hash();
        let changed = [
            PoolParams {
                pplns: PplnsParams {
                    window_x: 3,
                    ..p.pplns
                },
                ..p.clone()
            },
            PoolParams {
                pplns: PplnsParams {
                    fee_bps: 101,
                    ..p.pplns
                },
                ..p.clone()
            },
            PoolParams {
                token_per_sat: U256::from(10u64),
                ..p.clone()
            },
            PoolParams {
                payout_script: Bytes::from_static(&[0x00, 0x14, 7, 7, 8]),
                ..p.clone()
            },
            PoolParams {
                epoch_secs: 3601,
                ..p.clone()
            },
            PoolParams {
                maturity: 101,
                ..p.clone()
            },
            PoolParams {
                pool_tag: Bytes::from_static(b"/proofpool!"),
                ..p.clone()
            },
            PoolParams {
                scheme: Scheme::Pps,
                ..p.clone()
            },
            PoolParams {
                scheme: Scheme::Fpps,
                ..p.clone()
            },
        ];
        for other in changed {
            assert_ne!(other.hash(), h, "{other:?}");
        }
    }

    /// The encoding, laid out by hand from the Solidity ABI spec: a dynamic
    /// struct is one offset word, then its head (static fields in place,
    /// dynamic ones as offsets from the struct's start), then each byte
    /// string as its length and its bytes padded to a word.
    #[test]
    fn params_hash_is_keccak_of_the_abi_encoding() {
        let p = PoolParams {
            scheme: Scheme::Fpps,
            ..params()
        };
        let word = |n: u64| {
            let mut w = [0u8; 32];
            w[24..].copy_from_slice(&n.to_be_bytes());
            w
        };
        let padded = |b: &[u8]| {
            let mut v = b.to_vec();
            v.resize(b.len().div_ceil(32) * 32, 0);
            v
        };
        let mut enc = Vec::new();
        enc.extend(word(0x20));
        enc.extend(word(SCORING_VERSION));
        enc.extend(word(2));
        enc.extend(word(100));
        enc.extend(word(1));
        enc.extend(word(9 * 32)); // payoutScript: after the 9-word head
        enc.extend(word(3600));
        enc.extend(word(100));
        enc.extend(word(9 * 32 + 2 * 32)); // poolTag: after payoutScript's 2 words
        enc.extend(word(2)); // scheme: FPPS
        enc.extend(word(5));
        enc.extend(padded(&[0x00, 0x14, 7, 7, 7]));
        enc.extend(word(11));
        enc.extend(padded(b"/proofpool/"));
        assert_eq!(p.hash(), keccak256(&enc));
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
