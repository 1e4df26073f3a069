//! The hashing threads.

use crate::{Found, MinerStats, Slot};
use bitcoin::hashes::{Hash, sha256d};
use proofpool_primitives::U256;
use proofpool_stratum::NotifyOwned;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::UnboundedSender;

/// One job, ready to grind.
#[derive(Debug)]
pub(crate) struct Template {
    job_id: String,
    prevhash: [u8; 32],
    coinbase1: Vec<u8>,
    extranonce1: Vec<u8>,
    extranonce2_len: usize,
    coinbase2: Vec<u8>,
    branch: Vec<[u8; 32]>,
    version: u32,
    nbits: u32,
    ntime: u32,
    target: U256,
    version_mask: u32,
    /// A standard channel's job: the pool's merkle root, whatever the
    /// extranonce (header-only mining).
    root: Option<[u8; 32]>,
}

impl Template {
    /// A standard channel's job: the header from the pool's merkle root;
    /// only the version bits and the nonce are the miner's to roll.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn standard(
        job_id: String,
        prev_hash: [u8; 32],
        merkle_root: [u8; 32],
        version: u32,
        nbits: u32,
        ntime: u32,
        target: U256,
        version_mask: u32,
    ) -> Self {
        Self {
            job_id,
            prevhash: prev_hash,
            coinbase1: Vec::new(),
            extranonce1: Vec::new(),
            extranonce2_len: 1,
            coinbase2: Vec::new(),
            branch: Vec::new(),
            version,
            nbits,
            ntime,
            target,
            version_mask,
            root: Some(merkle_root),
        }
    }

    pub(crate) fn new(
        n: &NotifyOwned,
        extranonce1: &[u8],
        extranonce2_len: usize,
        target: U256,
        version_mask: u32,
    ) -> Option<Self> {
        let prevhash = n.previous_block_hash();
        Some(Self {
            job_id: n.job_id.clone(),
            prevhash,
            coinbase1: n.coinbase1.clone(),
            extranonce1: extranonce1.to_vec(),
            extranonce2_len: extranonce2_len.clamp(1, 8),
            coinbase2: n.coinbase2.clone(),
            branch: n.merkle_branch.clone(),
            version: n.version,
            nbits: n.nbits,
            ntime: n.ntime,
            target,
            version_mask,
            root: None,
        })
    }

    fn header(&self, extranonce2: &[u8], version: u32) -> [u8; 80] {
        if let Some(root) = self.root {
            return self.header_with(root, version);
        }
        let mut coinbase = Vec::with_capacity(self.coinbase1.len() + 16 + self.coinbase2.len());
        coinbase.extend_from_slice(&self.coinbase1);
        coinbase.extend_from_slice(&self.extranonce1);
        coinbase.extend_from_slice(extranonce2);
        coinbase.extend_from_slice(&self.coinbase2);
        let mut root = sha256d::Hash::hash(&coinbase).to_byte_array();
        for sibling in &self.branch {
            let mut pair = [0u8; 64];
            pair[..32].copy_from_slice(&root);
            pair[32..].copy_from_slice(sibling);
            root = sha256d::Hash::hash(&pair).to_byte_array();
        }
        self.header_with(root, version)
    }

    fn header_with(&self, root: [u8; 32], version: u32) -> [u8; 80] {
        let mut header = [0u8; 80];
        header[0..4].copy_from_slice(&version.to_le_bytes());
        header[4..36].copy_from_slice(&self.prevhash);
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        header[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        header
    }
}

/// Grinds until `slot.stop`: thread `index` owns extranonce2 values whose
/// first byte is `index`, rolls version bits inside the mask per extranonce2,
/// and sweeps the full nonce range for each.
pub(crate) fn grind(index: u8, slot: &Slot, found: &UnboundedSender<Found>, stats: &MinerStats) {
    let mut seen_generation = u64::MAX;
    let mut template = None;
    let mut counter: u64 = 0;
    while !slot.stop.load(Ordering::Relaxed) {
        let generation = slot.generation.load(Ordering::Acquire);
        if generation != seen_generation {
            seen_generation = generation;
            template = slot
                .template
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            counter = 0;
        }
        let Some(t) = template.as_ref() else {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        };
        counter += 1;
        let mut extranonce2 = counter.to_be_bytes()[8 - t.extranonce2_len..].to_vec();
        extranonce2[0] = index;
        // On a standard job the extranonce is the pool's: threads keep
        // apart by the version bits they roll instead.
        let roll = if t.root.is_some() {
            (counter << 8) | u64::from(index)
        } else {
            counter
        };
        let rolled = if t.version_mask == 0 {
            t.version
        } else {
            let shift = t.version_mask.trailing_zeros();
            (t.version & !t.version_mask) | (((roll as u32) << shift) & t.version_mask)
        };
        let mut header = t.header(&extranonce2, rolled);
        // Sweep nonces in batches, checking for new work between batches.
        let mut nonce: u32 = 0;
        'sweep: loop {
            for _ in 0..65_536u32 {
                header[76..80].copy_from_slice(&nonce.to_le_bytes());
                let hash = sha256d::Hash::hash(&header).to_byte_array();
                if U256::from_le_bytes(hash) <= t.target {
                    let share = Found {
                        job_id: t.job_id.clone(),
                        extranonce1: t.extranonce1.clone(),
                        extranonce2: extranonce2.clone(),
                        ntime: t.ntime,
                        nonce,
                        version: rolled,
                    };
                    if found.send(share).is_err() {
                        return;
                    }
                }
                nonce = nonce.wrapping_add(1);
                if nonce == 0 {
                    break 'sweep;
                }
            }
            stats.hashes.fetch_add(65_536, Ordering::Relaxed);
            if slot.stop.load(Ordering::Relaxed)
                || slot.generation.load(Ordering::Acquire) != seen_generation
            {
                break 'sweep;
            }
        }
    }
}
