//! Merkle trees whose proofs verify with OpenZeppelin's `MerkleProof.verify`.
//!
//! Data flow: settlement turns each share and each miner's cumulative balance
//! into a fixed-layout ABI encoding ([`ShareLeaf`], [`RewardLeaf`]), hashes it
//! twice with keccak256 (`keccak256(bytes.concat(keccak256(abi.encode(...))))`),
//! and feeds the leaf hashes in canonical order (shares by sequence number,
//! rewards by account) to [`rs_merkle`] with the [`KeccakSorted`] hasher: inner
//! nodes hash the sorted pair, and an odd node at the end of a level is
//! promoted unchanged. The contract, the auditor and the API all rebuild the
//! same roots from these functions.

mod leaf;
mod tree;

pub use leaf::{RewardDomain, RewardLeaf, ShareLeaf, hash_leaf};
pub use tree::{KeccakSorted, MerkleError, RewardTree, ShareTree, Tree, hash_pair, verify};
