//! Share validation: the hot path of the pool.
//!
//! [`validate`] checks one `mining.submit` against its [`Job`]: extranonce
//! lengths, version rolling, ntime, then rebuilds the header and compares its
//! hash with the share target. It is pure and allocation-free: the coinbase
//! txid is streamed from a precomputed SHA-256 midstate, the merkle branch and
//! the header are hashed from stack buffers (SHA-NI when the CPU has it).
//!
//! Stale jobs and duplicates are the server's business (job lookup and a
//! per-session set of [`ShareKey`]s).

use crate::job::sha::sha256d_80;
use crate::job::{Binding, Job};
use alloy_primitives::{B256, U256};
use bitcoin::BlockHash;
use bitcoin::hashes::Hash;
use proofpool_primitives::{ShareHash, Work};

/// How far past the pool's clock a share's ntime may be. Bitcoin allows two
/// hours; the share commitment's time bound allows
/// [`NTIME_SKEW_SECS`](proofpool_epoch::share_commitment::NTIME_SKEW_SECS),
/// so that an auditor can tie every share's place in the log to its
/// header time.
pub const MAX_NTIME_AHEAD: u32 = proofpool_epoch::share_commitment::NTIME_SKEW_SECS;

/// How far behind the pool's clock a share's ntime may be: a share mined
/// longer ago (or on a job kept that long) is stale.
pub const MAX_NTIME_BEHIND: u32 = proofpool_epoch::share_commitment::NTIME_SKEW_SECS;

/// Why a share was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The session's extranonce1 does not have the job's length (a server bug).
    #[error("extranonce1 must be {expected} bytes, got {got}")]
    Extranonce1Length {
        /// The job's extranonce1 length.
        expected: usize,
        /// The length passed.
        got: usize,
    },
    /// The submitted extranonce2 does not have the job's length.
    #[error("extranonce2 must be {expected} bytes, got {got}")]
    Extranonce2Length {
        /// The job's extranonce2 length.
        expected: usize,
        /// The submitted length.
        got: usize,
    },
    /// The miner rolled version bits it was not given.
    #[error("version bits {bits:#010x} fall outside the negotiated mask {mask:#010x}")]
    VersionBitsOutsideMask {
        /// The submitted version bits.
        bits: u32,
        /// The negotiated mask.
        mask: u32,
    },
    /// ntime is earlier than the job's.
    #[error("ntime {ntime} is before the job's {min}")]
    NtimeTooOld {
        /// The submitted ntime.
        ntime: u32,
        /// The job's ntime.
        min: u32,
    },
    /// ntime is more than [`MAX_NTIME_BEHIND`] before the pool's clock: the
    /// share was mined too long ago.
    #[error(
        "ntime {ntime} is more than {MAX_NTIME_BEHIND} s before the pool's clock (earliest {min}): the job is stale"
    )]
    NtimeStale {
        /// The submitted ntime.
        ntime: u32,
        /// The earliest ntime accepted now.
        min: u64,
    },
    /// ntime is more than [`MAX_NTIME_AHEAD`] past the pool's clock.
    #[error("ntime {ntime} is more than {MAX_NTIME_AHEAD} s past the pool's clock (latest {max})")]
    NtimeTooNew {
        /// The submitted ntime.
        ntime: u32,
        /// The latest ntime accepted now.
        max: u64,
    },
    /// The share target is zero, which no hash meets (a server bug).
    #[error("share target is zero")]
    ZeroTarget,
    /// The header hash is above the share target.
    #[error("hash {} is above the share target", BlockHash::from_byte_array(hash.0.0))]
    LowDifficulty {
        /// The header's sha256d, internal byte order.
        hash: ShareHash,
    },
}

/// One `mining.submit`, decoded from hex by the Stratum layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareSubmission<'a> {
    /// The miner's extranonce2 bytes, as sent.
    pub extranonce2: &'a [u8],
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// BIP310's sixth parameter: the rolled version bits, if the miner rolls.
    pub version_bits: Option<u32>,
}

/// Identifies a share's header within one session (whose extranonce1 is
/// fixed), for duplicate detection. It holds the rolled version, not the
/// submitted bits, so `None` and bits that roll nothing cannot name one header
/// twice; and jobs never share a coinbase, so the same key under two job ids
/// names two different headers. A job resent at another target commits to
/// that target, so it is another coinbase as well: the key holds the
/// committed target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareKey {
    /// The job id.
    pub job_id: u64,
    /// The share target the job was sent with, compact form.
    pub target_bits: u32,
    /// The extranonce2 bytes read as a big-endian integer (at most 8 bytes,
    /// and a job fixes their number, so this is one-to-one).
    pub extranonce2: u64,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Header version after rolling.
    pub version: u32,
}

impl ShareKey {
    /// The key of a submission, without hashing: lets the server refuse a
    /// duplicate before validating it. Equals [`ValidShare::key`] for the same
    /// share; refuses version bits outside the mask as [`validate`] does.
    pub fn new(
        job: &Job,
        binding: &Binding,
        sub: &ShareSubmission<'_>,
        version_mask: u32,
    ) -> Result<Self, ShareError> {
        let version = match sub.version_bits {
            Some(bits) => rolled_version(job.version(), bits, version_mask)?,
            None => job.version(),
        };
        Ok(Self::rolled(job, binding, sub, version))
    }

    fn rolled(job: &Job, binding: &Binding, sub: &ShareSubmission<'_>, version: u32) -> Self {
        Self {
            job_id: job.id(),
            target_bits: binding.target_bits(),
            extranonce2: sub
                .extranonce2
                .iter()
                .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte)),
            ntime: sub.ntime,
            nonce: sub.nonce,
            version,
        }
    }
}

/// A share that met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidShare {
    /// sha256d of the header, internal byte order.
    pub hash: ShareHash,
    /// The 80-byte header, as hashed.
    pub header: [u8; 80],
    /// The work credited: that of the share target, not of the hash's luck.
    pub work: Work,
    /// Whether the hash also meets the network target: a block.
    pub meets_network: bool,
    /// The header version after rolling.
    pub version: u32,
    /// The share's key for the session's duplicate set.
    pub key: ShareKey,
}

impl ValidShare {
    /// The hash as a block hash, for display (big-endian hex).
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::from_byte_array(self.hash.0.0)
    }
}

/// The header version for submitted version bits: BIP310's
/// `(job_version & !mask) | (version_bits & mask)`, refusing bits outside the
/// mask. ESP-Miner sends `rolled_version ^ job_version`; for bitcoind's
/// versions, whose BIP320 bits (`0x1fffe000`) are clear, that is the same as
/// the rolled bits (a captured Bitaxe share in the tests checks this).
pub fn rolled_version(job_version: u32, version_bits: u32, mask: u32) -> Result<u32, ShareError> {
    if version_bits & !mask != 0 {
        return Err(ShareError::VersionBitsOutsideMask {
            bits: version_bits,
            mask,
        });
    }
    Ok((job_version & !mask) | (version_bits & mask))
}

/// Checks a share against its job and the connection's `binding`, whose
/// target it must meet and is credited at.
///
/// - `extranonce1` is the session's; `version_mask` the one negotiated with
///   `mining.configure` (0 if none, which refuses any rolled bit);
/// - ntime must be at least the job's ntime (as ckpool does, which also keeps
///   it above the template's mintime), and within [`MAX_NTIME_BEHIND`] and
///   [`MAX_NTIME_AHEAD`] of `now_unix`;
/// - the hash, read as a little-endian 256-bit number, must be at most
///   `share_target`.
pub fn validate(
    job: &Job,
    extranonce1: &[u8],
    sub: &ShareSubmission<'_>,
    version_mask: u32,
    binding: &Binding,
    now_unix: u32,
) -> Result<ValidShare, ShareError> {
    let share_target = binding.target();
    if extranonce1.len() != job.extranonce1_len() {
        return Err(ShareError::Extranonce1Length {
            expected: job.extranonce1_len(),
            got: extranonce1.len(),
        });
    }
    if sub.extranonce2.len() != job.extranonce2_len() {
        return Err(ShareError::Extranonce2Length {
            expected: job.extranonce2_len(),
            got: sub.extranonce2.len(),
        });
    }
    let version = match sub.version_bits {
        Some(bits) => rolled_version(job.version(), bits, version_mask)?,
        None => job.version(),
    };
    if sub.ntime < job.ntime() {
        return Err(ShareError::NtimeTooOld {
            ntime: sub.ntime,
            min: job.ntime(),
        });
    }
    let min = u64::from(now_unix).saturating_sub(u64::from(MAX_NTIME_BEHIND));
    if u64::from(sub.ntime) < min {
        return Err(ShareError::NtimeStale {
            ntime: sub.ntime,
            min,
        });
    }
    let max = u64::from(now_unix) + u64::from(MAX_NTIME_AHEAD);
    if u64::from(sub.ntime) > max {
        return Err(ShareError::NtimeTooNew {
            ntime: sub.ntime,
            max,
        });
    }
    if share_target.is_zero() {
        return Err(ShareError::ZeroTarget);
    }

    let header = job.header(
        binding,
        extranonce1,
        sub.extranonce2,
        sub.ntime,
        sub.nonce,
        version,
    );
    let hash = sha256d_80(&header);
    let value = U256::from_le_bytes(hash);
    if value > share_target {
        return Err(ShareError::LowDifficulty {
            hash: ShareHash(B256::new(hash)),
        });
    }
    // Division happens only for accepted shares.
    let work = Work::from_target(share_target).map_err(|_| ShareError::ZeroTarget)?;
    Ok(ValidShare {
        hash: ShareHash(B256::new(hash)),
        header,
        work,
        meets_network: value <= job.network_target(),
        version,
        key: ShareKey::rolled(job, binding, sub, version),
    })
}

#[cfg(test)]
pub(crate) mod tests;
