//! A share as evidence: everything needed to rebuild its block header from
//! what the pool sent and what the miner chose, so anyone can check, without
//! trusting the miner or the pool, that its proof of work commits to a miner
//! and a share target on the pool's job (format `proofpool-share-evidence`,
//! version 1).

use alloy_primitives::{Address, B256, Bytes, U256};
use proofpool_epoch::header::{HeaderParts, hash_value};
use proofpool_epoch::share_commitment::{ShareCommitment, target_of_bits};
use serde::{Deserialize, Serialize};

/// The evidence format's name.
pub const FORMAT: &str = "proofpool-share-evidence";
/// The layout this code writes and reads.
pub const VERSION: u32 = 1;

/// One accepted share, with what the watcher found wrong with it, if
/// anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareEvidence {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The share's header fields and coinbase.
    pub share: ShareParts,
    /// What the published epoch files say about it, when that is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// The parts of a share's block header, as the pool sent them in its
/// `mining.notify` and the miner chose them in its `mining.submit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareParts {
    /// The previous block hash, internal byte order.
    pub prev_hash: B256,
    /// Coinbase bytes before the extranonces.
    pub coinbase1: Bytes,
    /// The connection's extranonce1.
    pub extranonce1: Bytes,
    /// The miner's extranonce2.
    pub extranonce2: Bytes,
    /// Coinbase bytes after the extranonces, the share commitment among its
    /// outputs.
    pub coinbase2: Bytes,
    /// The merkle branch, internal byte order, leaf level first.
    pub branch: Vec<B256>,
    /// The header version, after rolling.
    pub version: u32,
    /// The compact network target.
    pub nbits: u32,
    /// The header time.
    pub ntime: u32,
    /// The header nonce.
    pub nonce: u32,
}

/// What is wrong with a share, according to the epoch files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// `missing` (in no epoch file up to `epoch`) or `altered` (listed with
    /// another miner or target than its proof of work commits to).
    pub problem: String,
    /// The newest epoch file checked (`missing`), or the one listing it
    /// (`altered`).
    pub epoch: u64,
    /// What the file lists, for `altered`: miner and share target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<Listed>,
}

/// How an epoch file lists a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listed {
    /// The miner credited.
    pub miner: Address,
    /// The share target credited.
    pub share_target: U256,
}

/// What a share's proof of work is shown to commit to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// sha256d of the header, internal byte order (the epoch file's `hash`).
    pub hash: B256,
    /// The miner its coinbase commits to.
    pub miner: Address,
    /// The share target its coinbase commits to (compact form, and expanded).
    pub target_bits: u32,
    /// The expanded target, which the hash meets.
    pub target: U256,
    /// The pool's share-log head the job committed to.
    pub log_head: B256,
}

/// Why evidence does not show what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// Not this format or version.
    #[error("not {FORMAT} version {VERSION} (found {format:?} version {version})")]
    Unsupported {
        /// The format found.
        format: String,
        /// The version found.
        version: u32,
    },
    /// The coinbase does not parse as a coinbase transaction.
    #[error("the coinbase is not a coinbase transaction: {0}")]
    Coinbase(String),
    /// No output (or more than one) is a share commitment.
    #[error("the coinbase has {0} proofpool share commitments; exactly one is required")]
    Commitments(usize),
    /// The committed target is not a valid compact target.
    #[error("the committed target {0:#010x} is not a valid compact target")]
    Target(u32),
    /// The header's hash does not meet the committed target.
    #[error("the header hash {hash} does not meet the committed target {target:#x}")]
    Work {
        /// The hash.
        hash: B256,
        /// The committed target.
        target: U256,
    },
}

impl ShareParts {
    fn header_parts(&self) -> HeaderParts<'_> {
        HeaderParts {
            coinbase1: &self.coinbase1,
            extranonce1: &self.extranonce1,
            extranonce2: &self.extranonce2,
            coinbase2: &self.coinbase2,
            commitment: None,
            coinbase2_suffix: &[],
            branch: &self.branch,
            version: self.version,
            prev_hash: self.prev_hash,
            ntime: self.ntime,
            nbits: self.nbits,
            nonce: self.nonce,
        }
    }

    /// sha256d of the header, internal byte order.
    pub fn hash(&self) -> B256 {
        self.header_parts().share_hash()
    }

    /// The share a miner submitted on `job`: its extranonce1, and what it
    /// chose (`version` is the header's whole version, after rolling).
    pub fn of_job(
        job: &proofpool_stratum::miner::NotifyOwned,
        extranonce1: &[u8],
        extranonce2: &[u8],
        version: u32,
        ntime: u32,
        nonce: u32,
    ) -> Self {
        Self {
            prev_hash: B256::from(job.previous_block_hash()),
            coinbase1: job.coinbase1.clone().into(),
            extranonce1: extranonce1.to_vec().into(),
            extranonce2: extranonce2.to_vec().into(),
            coinbase2: job.coinbase2.clone().into(),
            branch: job.merkle_branch.iter().map(|h| B256::from(*h)).collect(),
            version,
            nbits: job.nbits,
            ntime,
            nonce,
        }
    }
}

impl ShareEvidence {
    /// Evidence of `share`, without a claim.
    pub fn new(share: ShareParts) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            share,
            claim: None,
        }
    }

    /// Checks the evidence from its own bytes: the coinbase is a coinbase
    /// transaction with exactly one share commitment, and the header built
    /// from it meets the target that commitment names. What it then shows:
    /// the miner and target the share's proof of work commits to.
    pub fn verify(&self) -> Result<Verified, EvidenceError> {
        if self.format != FORMAT || self.version != VERSION {
            return Err(EvidenceError::Unsupported {
                format: self.format.clone(),
                version: self.version,
            });
        }
        let parts = self.share.header_parts();
        let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&parts.coinbase_bytes())
            .map_err(|e| EvidenceError::Coinbase(e.to_string()))?;
        if !tx.is_coinbase() {
            return Err(EvidenceError::Coinbase("it spends a real output".into()));
        }
        let commitments: Vec<ShareCommitment> = tx
            .output
            .iter()
            .filter_map(|o| ShareCommitment::from_script(o.script_pubkey.as_bytes()).ok())
            .collect();
        let [commitment] = commitments[..] else {
            return Err(EvidenceError::Commitments(commitments.len()));
        };
        let target = target_of_bits(commitment.target_bits)
            .ok_or(EvidenceError::Target(commitment.target_bits))?;
        let hash = parts.share_hash();
        if hash_value(hash) > target {
            return Err(EvidenceError::Work { hash, target });
        }
        Ok(Verified {
            hash,
            miner: commitment.miner,
            target_bits: commitment.target_bits,
            target,
            log_head: commitment.log_head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    const MINER: Address = Address::repeat_byte(0x5a);
    /// A share target met by about one hash in 512.
    const TARGET_BITS: u32 = 0x1f00_ffff;

    /// A coinbase split around 8 bytes of extranonce: one payout output and
    /// the share commitment, as the pool builds it.
    fn parts(commitment: Option<ShareCommitment>) -> ShareParts {
        let mut c1 = vec![2, 0, 0, 0, 1];
        c1.extend([0u8; 32]);
        c1.extend(u32::MAX.to_le_bytes());
        c1.extend([12, 0x02, 0x2c, 0x01, 0x08]);
        let mut c2 = u32::MAX.to_le_bytes().to_vec();
        c2.push(if commitment.is_some() { 2 } else { 1 });
        c2.extend(50_0000_0000u64.to_le_bytes());
        c2.extend([22, 0x00, 0x14]);
        c2.extend([0x55; 20]);
        if let Some(c) = commitment {
            c2.extend(c.output());
        }
        c2.extend(0u32.to_le_bytes());
        ShareParts {
            prev_hash: B256::repeat_byte(0x11),
            coinbase1: c1.into(),
            extranonce1: vec![1, 2, 3, 4].into(),
            extranonce2: vec![0; 4].into(),
            coinbase2: c2.into(),
            branch: vec![B256::repeat_byte(0x22)],
            version: 0x2000_0000,
            nbits: 0x207f_ffff,
            ntime: 1_700_000_000,
            nonce: 0,
        }
    }

    fn commitment() -> ShareCommitment {
        ShareCommitment {
            miner: MINER,
            target_bits: TARGET_BITS,
            log_head: B256::repeat_byte(0x33),
        }
    }

    /// Mines the nonce, checking each hash with rust-bitcoin's own block
    /// header and merkle code, not the code under test.
    fn mined() -> ShareEvidence {
        let mut s = parts(Some(commitment()));
        let target = target_of_bits(TARGET_BITS).unwrap();
        let coinbase: Vec<u8> = [
            &s.coinbase1[..],
            &s.extranonce1,
            &s.extranonce2,
            &s.coinbase2,
        ]
        .concat();
        let txid = bitcoin::hashes::sha256d::Hash::hash(&coinbase).to_byte_array();
        let root = bitcoin::hashes::sha256d::Hash::hash(&[txid, s.branch[0].0].concat());
        for nonce in 0..1_000_000 {
            let header = bitcoin::block::Header {
                version: bitcoin::block::Version::from_consensus(s.version as i32),
                prev_blockhash: bitcoin::BlockHash::from_byte_array(s.prev_hash.0),
                merkle_root: bitcoin::TxMerkleNode::from_byte_array(root.to_byte_array()),
                time: s.ntime,
                bits: bitcoin::CompactTarget::from_consensus(s.nbits),
                nonce,
            };
            let hash = header.block_hash().to_byte_array();
            if U256::from_le_bytes(hash) <= target {
                s.nonce = nonce;
                return ShareEvidence::new(s);
            }
        }
        panic!("no nonce met the target");
    }

    #[test]
    fn a_share_proves_its_miner_and_target() {
        let e = mined();
        let v = e.verify().unwrap();
        assert_eq!(v.miner, MINER);
        assert_eq!(v.target_bits, TARGET_BITS);
        assert_eq!(v.log_head, B256::repeat_byte(0x33));
        assert_eq!(v.hash, e.share.hash());
        // Through JSON and back, unchanged.
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ShareEvidence>(&json).unwrap(), e);
    }

    #[test]
    fn another_miner_in_the_coinbase_is_not_the_miners_work() {
        let mut e = mined();
        let mut c2 = e.share.coinbase2.to_vec();
        // The first byte of the address in the commitment output.
        let at = c2.len() - 4 - 70 + 14;
        assert_eq!(c2[at], 0x5a);
        c2[at] = 0x5b;
        e.share.coinbase2 = c2.into();
        assert!(matches!(e.verify(), Err(EvidenceError::Work { .. })));
    }

    #[test]
    fn a_coinbase_without_a_commitment_proves_nothing() {
        let e = ShareEvidence::new(parts(None));
        assert_eq!(e.verify(), Err(EvidenceError::Commitments(0)));
        let mut other = mined();
        other.version = 2;
        assert!(matches!(
            other.verify(),
            Err(EvidenceError::Unsupported { version: 2, .. })
        ));
        let mut garbage = mined();
        garbage.share.coinbase2 = vec![1, 2, 3].into();
        assert!(matches!(garbage.verify(), Err(EvidenceError::Coinbase(_))));
    }
}
