//! Leaf encodings, byte for byte as Solidity's `abi.encode`.
//!
//! Every field is a static ABI type, so the encoding is a fixed run of 32-byte
//! words and is written into a stack buffer: no allocation per leaf.

use alloy_primitives::{Address, B256, U256, keccak256};
use proofpool_primitives::{EpochId, ShareHash, Work};

/// Hashes an ABI-encoded leaf the way the contract does:
/// `keccak256(bytes.concat(keccak256(encoded)))`.
pub fn hash_leaf(encoded: &[u8]) -> B256 {
    keccak256(keccak256(encoded))
}

fn put_u64(word: &mut [u8], v: u64) {
    word[24..32].copy_from_slice(&v.to_be_bytes());
}

fn put_address(word: &mut [u8], a: &Address) {
    word[12..32].copy_from_slice(a.as_slice());
}

/// The deployment a reward tree is valid for: leaves commit to the chain id and
/// the distributor's address, so a tree cannot be replayed elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RewardDomain {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The distributor contract.
    pub distributor: Address,
}

/// A miner's cumulative reward over all epochs, in token base units.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct RewardLeaf {
    /// The miner's account.
    pub account: Address,
    /// Everything ever credited to it, in token base units.
    pub cumulative: U256,
}

impl RewardLeaf {
    /// `abi.encode(uint256 chainId, address distributor, address account, uint256 cumulativeAmount)`.
    pub fn encode(&self, domain: &RewardDomain) -> [u8; 128] {
        let mut buf = [0u8; 128];
        put_u64(&mut buf[0..32], domain.chain_id);
        put_address(&mut buf[32..64], &domain.distributor);
        put_address(&mut buf[64..96], &self.account);
        buf[96..128].copy_from_slice(&self.cumulative.to_be_bytes::<32>());
        buf
    }

    /// The double-hashed leaf.
    pub fn hash(&self, domain: &RewardDomain) -> B256 {
        hash_leaf(&self.encode(domain))
    }
}

/// One accepted share, as committed in the share tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShareLeaf {
    /// The epoch the share was accepted in.
    pub epoch: EpochId,
    /// The pool's per-share sequence number.
    pub seq: u64,
    /// The miner credited.
    pub miner: Address,
    /// The work credited (from the share's assigned target).
    pub work: Work,
    /// sha256d of the 80-byte header.
    pub share_hash: ShareHash,
}

impl ShareLeaf {
    /// The next head of a share-log hash chain after this share
    /// (docs/share-commitment.md): `keccak256(head ‖ epoch ‖ seq ‖ miner ‖
    /// work ‖ share_hash)`, the integers big-endian (8, 8 and 32 bytes): 132
    /// bytes, so one keccak permutation per share, from a stack buffer.
    pub fn chain(&self, head: B256) -> B256 {
        let mut buf = [0u8; 132];
        buf[..32].copy_from_slice(head.as_slice());
        buf[32..40].copy_from_slice(&self.epoch.0.to_be_bytes());
        buf[40..48].copy_from_slice(&self.seq.to_be_bytes());
        buf[48..68].copy_from_slice(self.miner.as_slice());
        buf[68..100].copy_from_slice(&self.work.0.to_be_bytes::<32>());
        buf[100..].copy_from_slice(self.share_hash.0.as_slice());
        keccak256(buf)
    }

    /// `abi.encode(uint64 epoch, uint64 seq, address miner, uint256 work, bytes32 shareHash)`.
    pub fn encode(&self) -> [u8; 160] {
        let mut buf = [0u8; 160];
        put_u64(&mut buf[0..32], self.epoch.0);
        put_u64(&mut buf[32..64], self.seq);
        put_address(&mut buf[64..96], &self.miner);
        buf[96..128].copy_from_slice(&self.work.to_u256().to_be_bytes::<32>());
        buf[128..160].copy_from_slice(self.share_hash.0.as_slice());
        buf
    }

    /// The double-hashed leaf.
    pub fn hash(&self) -> B256 {
        hash_leaf(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::SolValue;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn reward_leaf_matches_abi_encode_params(chain in any::<u64>(), d in any::<[u8; 20]>(), a in any::<[u8; 20]>(), amt in any::<[u64; 4]>()) {
            let domain = RewardDomain { chain_id: chain, distributor: Address::from(d) };
            let leaf = RewardLeaf { account: Address::from(a), cumulative: U256::from_limbs(amt) };
            let expected = (U256::from(chain), domain.distributor, leaf.account, leaf.cumulative).abi_encode_params();
            prop_assert_eq!(leaf.encode(&domain).to_vec(), expected);
        }

        #[test]
        fn share_leaf_matches_abi_encode_params(epoch in any::<u64>(), seq in any::<u64>(), m in any::<[u8; 20]>(), w in any::<[u64; 4]>(), h in any::<[u8; 32]>()) {
            let leaf = ShareLeaf { epoch: EpochId(epoch), seq, miner: Address::from(m), work: Work(U256::from_limbs(w)), share_hash: ShareHash(B256::from(h)) };
            let expected = (epoch, seq, leaf.miner, leaf.work.to_u256(), leaf.share_hash.0).abi_encode_params();
            prop_assert_eq!(leaf.encode().to_vec(), expected);
        }
    }
}
