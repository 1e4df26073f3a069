//! The rows the store keeps, as typed values.

use proofpool_primitives::{Address, B256, U256};
use std::fmt;
use std::str::FromStr;

/// The epoch clock: epoch `E ≥ 1` covers unix seconds
/// `[genesis + (E-1)·epoch_secs, genesis + E·epoch_secs)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochClock {
    /// Start of epoch 1, unix seconds.
    pub genesis_unix: u64,
    /// Length of every epoch.
    pub epoch_secs: u64,
    /// Newest epoch closed for settlement (0 when none is).
    pub closed_epoch: u64,
    /// The sequence number the next share will get.
    pub next_seq: u64,
}

impl EpochClock {
    /// The epoch a time (unix milliseconds) falls in; times before genesis
    /// belong to epoch 1.
    pub fn epoch_of_ms(&self, time_ms: u64) -> u64 {
        let secs = time_ms / 1000;
        secs.saturating_sub(self.genesis_unix) / self.epoch_secs.max(1) + 1
    }

    /// `[start, end)` of `epoch` in unix seconds.
    pub fn bounds(&self, epoch: u64) -> (u64, u64) {
        let start = self
            .genesis_unix
            .saturating_add(epoch.saturating_sub(1).saturating_mul(self.epoch_secs));
        (start, start.saturating_add(self.epoch_secs))
    }
}

/// A share the pool accepted and hands to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    /// Acceptance time, unix milliseconds.
    pub time_ms: u64,
    /// The pool instance that accepted it.
    pub instance: u8,
    /// The instance's job id.
    pub job_id: u64,
    /// The account credited.
    pub miner: Address,
    /// The rig name (may be empty).
    pub worker: String,
    /// The connection's extranonce1.
    pub extranonce1: [u8; 4],
    /// The miner's extranonce2.
    pub extranonce2: Vec<u8>,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Header version after rolling.
    pub version: u32,
    /// sha256d of the header, internal byte order.
    pub hash: B256,
    /// The target the share was credited at.
    pub share_target: U256,
    /// `floor(2^256 / (share_target + 1))`.
    pub work: U256,
    /// The job's network target.
    pub network_target: U256,
}

/// A share as stored: a [`NewShare`] with its sequence number and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredShare {
    /// Gapless per-pool sequence number, from 1.
    pub seq: u64,
    /// The epoch it counts in.
    pub epoch: u64,
    /// Everything else.
    pub share: NewShare,
}

/// Where a committed share landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Its sequence number.
    pub seq: u64,
    /// Its epoch.
    pub epoch: u64,
}

/// What PPLNS needs of a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShare {
    /// Sequence number.
    pub seq: u64,
    /// The account credited.
    pub miner: Address,
    /// The work credited.
    pub work: U256,
    /// The job's network target.
    pub network_target: U256,
}

/// A job as sent to miners: enough for an auditor to rebuild any header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The instance that made it.
    pub instance: u8,
    /// The instance's job id.
    pub job_id: u64,
    /// When it was made, unix milliseconds.
    pub created_ms: u64,
    /// Block height.
    pub height: u64,
    /// Previous block hash, internal byte order.
    pub prev_hash: B256,
    /// Block version before rolling.
    pub version: u32,
    /// Compact network target.
    pub nbits: u32,
    /// The template's `curtime`.
    pub template_time: u32,
    /// Coinbase bytes before the extranonces.
    pub coinbase1: Vec<u8>,
    /// Coinbase bytes after the extranonces, up to the connection's share
    /// commitment output.
    pub coinbase2: Vec<u8>,
    /// Coinbase bytes after the share commitment output.
    pub coinbase2_suffix: Vec<u8>,
    /// The instance's share-log head when the job was built: what every
    /// connection's commitment on this job names.
    pub log_head: B256,
    /// Merkle branch, internal byte order, leaf level first.
    pub branch: Vec<B256>,
    /// Network target expanded from `nbits`.
    pub network_target: U256,
    /// What the coinbase pays the pool, sats.
    pub coinbase_value: u64,
}

/// A point of an instance's share-log hash chain: the head after the
/// instance's share `seq` (`seq` 0 and the zero head before its first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogPoint {
    /// The last share folded in (0 if none).
    pub seq: u64,
    /// `head_n = keccak256(head_{n-1} ‖ epoch ‖ seq ‖ miner ‖ work ‖ hash)`
    /// ([`proofpool_merkle::ShareLeaf::chain`]).
    pub head: B256,
}

impl LogPoint {
    /// Folds in the next share of the instance, stored as `share`.
    pub fn fold(&mut self, share: &StoredShare) {
        let leaf = proofpool_merkle::ShareLeaf {
            epoch: proofpool_primitives::EpochId(share.epoch),
            seq: share.seq,
            miner: share.share.miner,
            work: proofpool_primitives::Work(share.share.work),
            share_hash: proofpool_primitives::ShareHash(share.share.hash),
        };
        self.fold_leaf(&leaf);
    }

    /// Folds in the share whose share-tree leaf is `leaf`.
    pub fn fold_leaf(&mut self, leaf: &proofpool_merkle::ShareLeaf) {
        self.head = leaf.chain(self.head);
        self.seq = leaf.seq;
    }
}

/// A worker seen mining: its first accepted share on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSeen {
    /// The account.
    pub miner: Address,
    /// The rig name.
    pub worker: String,
    /// When, unix milliseconds.
    pub time_ms: u64,
}

/// Where a found block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockStatus {
    /// Sent with `submitblock`, not yet confirmed in the best chain.
    Submitted,
    /// Rejected by the node.
    Rejected,
    /// In the best chain with fewer than `maturity` confirmations.
    Immature,
    /// Has `maturity` confirmations: its credits count.
    Mature,
    /// No longer in the best chain: credits nothing.
    Orphaned,
}

impl BlockStatus {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Rejected => "rejected",
            Self::Immature => "immature",
            Self::Mature => "mature",
            Self::Orphaned => "orphaned",
        }
    }
}

impl fmt::Display for BlockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BlockStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "submitted" => Self::Submitted,
            "rejected" => Self::Rejected,
            "immature" => Self::Immature,
            "mature" => Self::Mature,
            "orphaned" => Self::Orphaned,
            other => return Err(format!("unknown block status {other:?}")),
        })
    }
}

/// A block the pool found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// Block hash, display (RPC) byte order.
    pub hash: B256,
    /// Height.
    pub height: u64,
    /// What the coinbase pays the pool, sats.
    pub coinbase_value: u64,
    /// The account whose share solved it.
    pub finder: Address,
    /// The finder's rig.
    pub worker: String,
    /// The solving share's sequence number.
    pub share_seq: u64,
    /// The instance that found it.
    pub instance: u8,
    /// When, unix milliseconds.
    pub found_ms: u64,
    /// Status.
    pub status: BlockStatus,
    /// Confirmations at the last check.
    pub confirmations: u64,
    /// Why the node rejected it, if it did.
    pub reject_reason: Option<String>,
    /// The epoch that paid its credits, once one has.
    pub paid_epoch: Option<u64>,
}

/// Where a settled epoch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpochStatus {
    /// Computed and written; not yet on-chain.
    Closed,
    /// `commitEpoch` confirmed.
    Committed,
    /// `finalize` confirmed: claimable.
    Finalized,
}

impl EpochStatus {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Committed => "committed",
            Self::Finalized => "finalized",
        }
    }
}

impl fmt::Display for EpochStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EpochStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "closed" => Self::Closed,
            "committed" => Self::Committed,
            "finalized" => Self::Finalized,
            other => return Err(format!("unknown epoch status {other:?}")),
        })
    }
}

/// A settled epoch's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    /// The epoch.
    pub epoch: u64,
    /// Status.
    pub status: EpochStatus,
    /// Shares in it.
    pub share_count: u64,
    /// First and last share sequence numbers, if any.
    pub seq_range: Option<(u64, u64)>,
    /// Share tree root.
    pub share_root: B256,
    /// Reward tree root.
    pub reward_root: B256,
    /// Sum of every cumulative amount, token base units.
    pub total_cumulative: U256,
    /// Hash of the blocks paid.
    pub blocks_hash: B256,
    /// Hash of the PPLNS parameters.
    pub params_hash: B256,
    /// Hash of the epoch file.
    pub data_hash: B256,
    /// The previous epoch's on-chain record hash.
    pub prev_epoch_hash: B256,
    /// The epoch file's name in the epoch directory.
    pub file_name: String,
    /// The `commitEpoch` transaction.
    pub commit_tx: Option<B256>,
    /// The `finalize` transaction.
    pub finalize_tx: Option<B256>,
    /// Last change, unix milliseconds.
    pub updated_ms: u64,
}
