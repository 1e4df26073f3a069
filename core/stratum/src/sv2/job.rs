//! A Stratum V2 extended job as the Stratum V1 notify it amounts to, so that
//! one hashing path (and one share checker) serves both protocols.

use crate::NotifyOwned;
use stratum_core::binary_sv2::{Seq0255Owned, U256Owned};
use stratum_core::mining_sv2::{NewExtendedMiningJobOwned, SetNewPrevHashOwned};

/// A V2 merkle path's hashes, internal byte order, leaf level first.
pub fn merkle_path(path: &Seq0255Owned<U256Owned>) -> Vec<[u8; 32]> {
    path.clone()
        .into_inner()
        .iter()
        .map(|h| h.to_array())
        .collect()
}

/// The V1 notify `job` amounts to on the tip `tip`: the same coinbase
/// halves around the extranonce, merkle branch, version and bits, the
/// previous hash in V1's word-swapped order, and the job's own `min_ntime`
/// if it is live (never before the tip's).
pub fn extended_job_as_notify(
    job: &NewExtendedMiningJobOwned,
    tip: &SetNewPrevHashOwned,
    clean: bool,
) -> NotifyOwned {
    // Stratum V1 sends the previous hash with each 4-byte word byte-swapped;
    // V2 sends it in internal order.
    let mut prevhash = tip.prev_hash.to_array();
    for word in prevhash.chunks_exact_mut(4) {
        word.reverse();
    }
    let min_ntime = job.min_ntime.clone().into_inner().unwrap_or(tip.min_ntime);
    NotifyOwned {
        job_id: format!("{:x}", job.job_id),
        prevhash,
        coinbase1: job.coinbase_tx_prefix.as_ref().to_vec(),
        coinbase2: job.coinbase_tx_suffix.as_ref().to_vec(),
        merkle_branch: merkle_path(&job.merkle_path),
        version: job.version,
        nbits: tip.nbits,
        ntime: min_ntime.max(tip.min_ntime),
        clean_jobs: clean,
    }
}
