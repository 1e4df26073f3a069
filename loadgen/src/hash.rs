//! Building a job's header client-side and grinding nonces for it.
//!
//! The pool validates each share by rebuilding the header from the job it
//! sent (`coinbase1 + extranonce1 + extranonce2 + coinbase2`, the merkle
//! branch, version, previous hash, ntime, nbits) and hashing it. This module
//! does the same on the miner's side, so the load generator can find, before
//! the timed phase, nonces whose headers meet the share target but *miss* the
//! network target: valid shares that are not blocks. On regtest the network
//! target is about 2^255, so half of all nonces qualify; a block would make
//! the pool send a clean job and turn every share in flight stale.
//!
//! The first 64 header bytes do not change with the nonce, so they are
//! compressed once (the midstate) and each nonce costs two SHA-256
//! compressions, on the `sha2` crate's SHA-NI path where the CPU has it.

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::pow::{CompactTarget, Target};
use proofpool_primitives::U256;
use proofpool_stratum::NotifyOwned;

/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    // The block type is inferred: generic-array 0.14 deprecates naming it.
    sha2::compress256(state, &[(*block).into()]);
}

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// One connection's work: a job from `mining.notify` with that connection's
/// extranonce1 and one fixed extranonce2, ready to hash nonces.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    /// The job id to echo in `mining.submit`.
    pub(crate) job_id: String,
    /// The extranonce2 every share of this work uses.
    pub(crate) extranonce2: Vec<u8>,
    /// The header time, as sent (the job's own).
    pub(crate) ntime: u32,
    /// The header with a zero nonce.
    header: [u8; 80],
    /// The state after the header's first 64 bytes.
    midstate: [u32; 8],
    /// Hashes above this are not blocks.
    network_target: U256,
    /// Hashes at or below this are shares.
    share_target: U256,
}

impl Work {
    /// The header for `job` with this connection's extranonces.
    pub(crate) fn new(
        job: &NotifyOwned,
        extranonce1: &[u8],
        extranonce2: Vec<u8>,
        share_target: U256,
    ) -> Self {
        let mut coinbase = Vec::with_capacity(
            job.coinbase1.len() + extranonce1.len() + extranonce2.len() + job.coinbase2.len(),
        );
        coinbase.extend_from_slice(&job.coinbase1);
        coinbase.extend_from_slice(extranonce1);
        coinbase.extend_from_slice(&extranonce2);
        coinbase.extend_from_slice(&job.coinbase2);
        let mut root = sha256d::Hash::hash(&coinbase).to_byte_array();
        for sibling in &job.merkle_branch {
            let mut pair = [0u8; 64];
            pair[..32].copy_from_slice(&root);
            pair[32..].copy_from_slice(sibling);
            root = sha256d::Hash::hash(&pair).to_byte_array();
        }
        // Stratum sends the previous hash with each 4-byte word byte-swapped.
        let mut prevhash = job.prevhash;
        for word in prevhash.chunks_exact_mut(4) {
            word.reverse();
        }
        let mut header = [0u8; 80];
        header[0..4].copy_from_slice(&job.version.to_le_bytes());
        header[4..36].copy_from_slice(&prevhash);
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&job.ntime.to_le_bytes());
        header[72..76].copy_from_slice(&job.nbits.to_le_bytes());
        let mut first = [0u8; 64];
        first.copy_from_slice(&header[..64]);
        let mut midstate = IV;
        compress(&mut midstate, &first);
        let network_target = U256::from_le_bytes(
            Target::from_compact(CompactTarget::from_consensus(job.nbits)).to_le_bytes(),
        );
        Self {
            job_id: job.job_id.clone(),
            extranonce2,
            ntime: job.ntime,
            header,
            midstate,
            network_target,
            share_target,
        }
    }

    /// sha256d of the header with `nonce`, in internal byte order.
    pub(crate) fn hash(&self, nonce: u32) -> [u8; 32] {
        let mut second = [0u8; 64];
        second[..12].copy_from_slice(&self.header[64..76]);
        second[12..16].copy_from_slice(&nonce.to_le_bytes());
        second[16] = 0x80;
        second[62] = 0x02;
        second[63] = 0x80; // 640 bits
        let mut state = self.midstate;
        compress(&mut state, &second);
        let mut outer = [0u8; 64];
        outer[..32].copy_from_slice(&state_bytes(&state));
        outer[32] = 0x80;
        outer[62] = 0x01; // 256 bits
        let mut state = IV;
        compress(&mut state, &outer);
        state_bytes(&state)
    }

    /// Whether `nonce` makes a share that is not a block.
    pub(crate) fn is_plain_share(&self, nonce: u32) -> bool {
        let value = U256::from_le_bytes(self.hash(nonce));
        value <= self.share_target && value > self.network_target
    }

    /// The first nonce that makes a block (a share at or below both
    /// targets), if any does.
    pub(crate) fn block_nonce(&self) -> Option<u32> {
        let target = self.share_target.min(self.network_target);
        (0..=u32::MAX).find(|&n| U256::from_le_bytes(self.hash(n)) <= target)
    }

    /// The first `count` nonces from 0 up that make plain shares; fewer if
    /// they run out (at most 2^32 nonces are tried).
    pub(crate) fn plain_nonces(&self, count: usize) -> Vec<u32> {
        let mut nonces = Vec::with_capacity(count);
        for nonce in 0..=u32::MAX {
            if nonces.len() >= count {
                break;
            }
            if self.is_plain_share(nonce) {
                nonces.push(nonce);
            }
        }
        nonces
    }

    /// The header with `nonce`, for checking against other implementations.
    #[cfg(test)]
    fn header_with(&self, nonce: u32) -> [u8; 80] {
        let mut header = self.header;
        header[76..].copy_from_slice(&nonce.to_le_bytes());
        header
    }
}

/// Finds `counts[i]` plain-share nonces for `works[i]`, spread over every
/// core: this runs before the timed phase, so its cost is not in the figures.
pub(crate) fn grind_all(works: &[Work], counts: &[usize]) -> Vec<Vec<u32>> {
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1)
        .min(works.len().max(1));
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); works.len()];
    let chunk = works.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for ((works, counts), out) in works
            .chunks(chunk)
            .zip(counts.chunks(chunk))
            .zip(out.chunks_mut(chunk))
        {
            scope.spawn(move || {
                for ((work, &count), slot) in works.iter().zip(counts).zip(out.iter_mut()) {
                    *slot = work.plain_nonces(count);
                }
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(nbits: u32) -> NotifyOwned {
        NotifyOwned {
            job_id: "7".to_owned(),
            prevhash: [0x11; 32],
            coinbase1: vec![1, 2, 3],
            coinbase2: vec![4, 5, 6, 7],
            merkle_branch: vec![[0x22; 32], [0x33; 32]],
            version: 0x2000_0000,
            nbits,
            ntime: 1_700_000_000,
            clean_jobs: true,
        }
    }

    #[test]
    fn midstate_hash_matches_sha256d() {
        let work = Work::new(&job(0x207f_ffff), &[9, 9, 9, 9], vec![0; 8], U256::MAX);
        for nonce in [0, 1, 0xdead_beef, u32::MAX] {
            let expected = sha256d::Hash::hash(&work.header_with(nonce)).to_byte_array();
            assert_eq!(work.hash(nonce), expected);
        }
    }

    #[test]
    fn plain_nonces_miss_the_network_target() {
        // Regtest's nbits: about half of all hashes are blocks.
        let work = Work::new(&job(0x207f_ffff), &[1, 2, 3, 4], vec![0; 8], U256::MAX);
        let nonces = work.plain_nonces(200);
        assert_eq!(nonces.len(), 200);
        assert!(
            nonces.windows(2).all(|w| w[0] < w[1]),
            "distinct, ascending"
        );
        let tried = usize::try_from(nonces[199]).unwrap() + 1;
        assert!(
            tried > 250 && tried < 600,
            "about half qualify: {tried} tried"
        );
        for n in nonces {
            let hash = U256::from_le_bytes(work.hash(n));
            assert!(hash > work.network_target);
        }
    }

    #[test]
    fn grind_all_fills_every_slot() {
        let works: Vec<Work> = (0..5u8)
            .map(|i| Work::new(&job(0x207f_ffff), &[i; 4], vec![0; 8], U256::MAX))
            .collect();
        let nonces = grind_all(&works, &[3, 0, 10, 1, 7]);
        let lens: Vec<usize> = nonces.iter().map(Vec::len).collect();
        assert_eq!(lens, [3, 0, 10, 1, 7]);
    }
}
