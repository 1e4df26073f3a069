//! Rebuilding a share's block header from its job and the miner's fields,
//! exactly as the pool's validator does, so an auditor can recompute every
//! share hash and check it against its credited target.

use crate::share_commitment::ShareCommitment;
use bitcoin::hashes::{Hash, sha256d};
use proofpool_primitives::{B256, U256};

/// The parts of a header that come from the job and from the miner.
#[derive(Debug, Clone, Copy)]
pub struct HeaderParts<'a> {
    /// Coinbase bytes before the extranonces.
    pub coinbase1: &'a [u8],
    /// The connection's extranonce1.
    pub extranonce1: &'a [u8],
    /// The miner's extranonce2.
    pub extranonce2: &'a [u8],
    /// Coinbase bytes after the extranonces (up to the share commitment,
    /// when there is one).
    pub coinbase2: &'a [u8],
    /// The connection's share commitment, an output between `coinbase2` and
    /// `coinbase2_suffix` (docs/share-commitment.md); `None` for a coinbase
    /// without one, all in `coinbase2`.
    pub commitment: Option<ShareCommitment>,
    /// Coinbase bytes after the share commitment output.
    pub coinbase2_suffix: &'a [u8],
    /// Merkle branch, internal byte order, leaf level first.
    pub branch: &'a [B256],
    /// Header version after rolling.
    pub version: u32,
    /// Previous block hash, internal byte order.
    pub prev_hash: B256,
    /// Header time.
    pub ntime: u32,
    /// Compact network target.
    pub nbits: u32,
    /// Header nonce.
    pub nonce: u32,
}

/// `sha256d(bytes)`, internal byte order.
pub fn sha256d(bytes: &[u8]) -> B256 {
    B256::from(sha256d::Hash::hash(bytes).to_byte_array())
}

impl HeaderParts<'_> {
    /// The coinbase transaction's txid (internal byte order).
    pub fn coinbase_txid(&self) -> B256 {
        let mut engine = sha256d::Hash::engine();
        bitcoin::hashes::HashEngine::input(&mut engine, self.coinbase1);
        bitcoin::hashes::HashEngine::input(&mut engine, self.extranonce1);
        bitcoin::hashes::HashEngine::input(&mut engine, self.extranonce2);
        bitcoin::hashes::HashEngine::input(&mut engine, self.coinbase2);
        if let Some(commitment) = &self.commitment {
            bitcoin::hashes::HashEngine::input(&mut engine, &commitment.output());
        }
        bitcoin::hashes::HashEngine::input(&mut engine, self.coinbase2_suffix);
        B256::from(sha256d::Hash::from_engine(engine).to_byte_array())
    }

    /// The coinbase transaction's non-witness serialization.
    pub fn coinbase_bytes(&self) -> Vec<u8> {
        let commitment = self.commitment.map(|c| c.output());
        let commitment: &[u8] = commitment.as_ref().map_or(&[], |c| c.as_slice());
        [
            self.coinbase1,
            self.extranonce1,
            self.extranonce2,
            self.coinbase2,
            commitment,
            self.coinbase2_suffix,
        ]
        .concat()
    }

    /// The merkle root: the coinbase txid folded up the branch (the coinbase
    /// is always the leftmost leaf).
    pub fn merkle_root(&self) -> B256 {
        let mut root = self.coinbase_txid();
        let mut pair = [0u8; 64];
        for step in self.branch {
            pair[..32].copy_from_slice(root.as_slice());
            pair[32..].copy_from_slice(step.as_slice());
            root = sha256d(&pair);
        }
        root
    }

    /// The 80-byte header.
    pub fn header(&self) -> [u8; 80] {
        let mut h = [0u8; 80];
        h[0..4].copy_from_slice(&self.version.to_le_bytes());
        h[4..36].copy_from_slice(self.prev_hash.as_slice());
        h[36..68].copy_from_slice(self.merkle_root().as_slice());
        h[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        h[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        h[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        h
    }

    /// `sha256d(header)`, internal byte order: the share hash.
    pub fn share_hash(&self) -> B256 {
        sha256d(&self.header())
    }
}

/// A hash (internal byte order) read as the little-endian number compared
/// against targets.
pub fn hash_value(hash: B256) -> U256 {
    U256::from_le_bytes(hash.0)
}

/// The target a compact `nbits` encodes.
pub fn target_from_nbits(nbits: u32) -> U256 {
    let target = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(nbits));
    U256::from_le_bytes(target.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Mainnet block 100 000: four transactions, so a two-step branch.
    #[test]
    fn rebuilds_a_mainnet_header_from_coinbase_and_branch() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../../pool/tests/fixtures/mainnet_block_100000.json"
        ))
        .expect("fixture");
        let hex32 = |v: &serde_json::Value| -> B256 {
            // RPC (display) order to internal order.
            let mut b = hex::decode(v.as_str().expect("hex")).expect("hex");
            b.reverse();
            B256::from_slice(&b)
        };
        let coinbase = hex::decode(fixture["coinbase_tx"].as_str().expect("hex")).expect("hex");
        let txids: Vec<B256> = fixture["txids"]
            .as_array()
            .expect("txids")
            .iter()
            .map(hex32)
            .collect();
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(txids[2].as_slice());
        pair[32..].copy_from_slice(txids[3].as_slice());
        let branch = [txids[1], sha256d(&pair)];
        // Split anywhere: the extranonces are just bytes in the middle.
        let parts = HeaderParts {
            coinbase1: &coinbase[..40],
            extranonce1: &coinbase[40..44],
            extranonce2: &coinbase[44..50],
            coinbase2: &coinbase[50..],
            commitment: None,
            coinbase2_suffix: &[],
            branch: &branch,
            version: 1,
            prev_hash: hex32(&fixture["prev_blockhash"]),
            ntime: 1_293_623_863,
            nbits: 0x1b04_864c,
            nonce: 274_148_111,
        };
        assert_eq!(parts.coinbase_txid(), txids[0]);
        assert_eq!(parts.merkle_root(), hex32(&fixture["merkle_root"]));
        assert_eq!(parts.share_hash(), hex32(&fixture["block_hash"]));
        assert!(hash_value(parts.share_hash()) <= target_from_nbits(parts.nbits));
        assert!(hash_value(parts.share_hash()) > target_from_nbits(parts.nbits) >> 8);
    }
}
