//! The epoch file: everything an auditor needs to recompute one epoch's
//! commitment, as one JSON document (format `proofpool-epoch`, version 1).
//!
//! Its keccak256 (of the exact bytes) is the `dataHash` committed on-chain.
//! Numbers that can exceed 2^53 (targets, work, token amounts) are `0x` hex
//! strings; hashes are `0x` hex in the byte order noted per field; byte
//! strings are `0x` hex. Unknown fields are rejected, so a file can only mean
//! one thing.
//!
//! Layout (see `docs/auditor-guide.md` for the full description):
//! - `params`, `chain`: the PPLNS parameters and the reward-leaf domain;
//! - `bitcoin`: the Bitcoin headers the settler saw, linked file to file,
//!   so jobs and blocks can be tied to the chain without a node;
//! - `jobs`: every job a share of the epoch names (coinbase parts, branch,
//!   header fields), so every share header can be rebuilt;
//! - `shares`: in sequence order, with the fields the miner chose;
//! - `blocks`: blocks paid in this epoch — every block that had matured
//!   when the epoch was settled, was not paid before, and whose solving share
//!   is in this epoch or an earlier one — with the PPLNS breakdown (the
//!   window walks back from the solving share over shares of epochs up to
//!   this one) and per-miner credits; a block whose solving share is in an
//!   epoch settled under PPS or FPPS is the operator's revenue, listed with
//!   no credits and all of its value as `operator`;
//! - `orphaned`: blocks found by shares of this epoch or an earlier one
//!   that left the best chain, each listed once;
//! - `expected`: under PPS and FPPS, every share's expected value, paid when
//!   the epoch closes (blocks are then the operator's revenue);
//! - `rewards`: every miner's cumulative amount after this epoch (sorted by
//!   account), i.e. the reward tree's leaves;
//! - the roots and totals committed on-chain.

use crate::Scheme;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use serde::{Deserialize, Serialize};

/// The `format` field's value.
pub const FORMAT: &str = "proofpool-epoch";
/// The version this code writes and reads.
pub const VERSION: u32 = 2;

/// One epoch file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The epoch.
    pub epoch: u64,
    /// `[start_unix, end_unix)`: the wall-clock interval.
    pub start_unix: u64,
    /// End of the interval (exclusive).
    pub end_unix: u64,
    /// The reward-leaf domain and the sats → token scale.
    pub chain: FileChain,
    /// PPLNS parameters.
    pub params: FileParams,
    /// The previous epoch's on-chain record hash (zero for epoch 1).
    pub prev_epoch_hash: B256,
    /// The Bitcoin headers this file carries; absent from files settled
    /// without bitcoind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitcoin: Option<FileBitcoin>,
    /// Jobs named by the shares, by (instance, job id).
    pub jobs: Vec<FileJob>,
    /// The epoch's shares, in sequence order.
    pub shares: Vec<FileShare>,
    /// Each instance's share-log chain over this epoch's shares, by
    /// instance: where it stood before them and where they leave it.
    pub share_log: Vec<FileLogHead>,
    /// Root of the share tree.
    pub share_root: B256,
    /// Blocks paid in this epoch, by height.
    pub blocks: Vec<FileBlock>,
    /// `blocksHash` as committed.
    pub blocks_hash: B256,
    /// Blocks found that left the best chain (or that bitcoind never took),
    /// by height: each once, in the first epoch settled after it was seen
    /// orphaned whose shares include its solving share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphaned: Vec<FileOrphan>,
    /// PPS and FPPS: what the epoch's shares earned when it closed, block
    /// or no block (absent under PPLNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<FileExpected>,
    /// Every account's cumulative reward after this epoch, sorted by account.
    pub rewards: Vec<FileReward>,
    /// Root of the reward tree.
    pub reward_root: B256,
    /// Sum of all cumulative amounts, token base units.
    pub total_cumulative: U256,
}

/// Where the reward tree is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChain {
    /// EVM chain id.
    pub chain_id: u64,
    /// Distributor contract.
    pub distributor: Address,
    /// Token base units per satoshi.
    pub token_per_sat: U256,
}

/// PPLNS parameters, and the script the pool is paid to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileParams {
    /// Scoring rules version.
    pub scoring_version: u64,
    /// Window in network difficulties.
    pub window_x: u64,
    /// Pool fee, basis points.
    pub fee_bps: u64,
    /// `paramsHash` as committed: [`crate::PoolParams::hash`] of these
    /// fields and `chain.token_per_sat` (see [`EpochFile::pool_params`]).
    pub params_hash: B256,
    /// The pool's payout `scriptPubKey`: every job's coinbase must pay all
    /// of its value to it. Absent in files from settlers that did not
    /// declare it (then unchecked, and hashed as empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_script: Option<Bytes>,
    /// The length of an epoch, in seconds: `end_unix - start_unix`.
    pub epoch_secs: u64,
    /// Confirmations before a found block is paid.
    pub maturity: u64,
    /// The tag every job's coinbase scriptSig carries (in `coinbase1`).
    pub pool_tag: Bytes,
    /// How the epoch pays: `pplns` (left out), `pps` or `fpps`.
    #[serde(default, skip_serializing_if = "Scheme::is_pplns")]
    pub scheme: Scheme,
}

/// The Bitcoin headers a file carries. Across the files they form one
/// chain: each file's first header links to a header an earlier file
/// carried at `start_height - 1` (normally the last one; a lower start is a
/// reorg, and replaces the earlier files' headers above it). The first file
/// with headers starts at the beginning of the retarget period of its
/// lowest job's parent, so the difficulty rules can be checked from there on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBitcoin {
    /// The network, by bitcoind's chain name: `main`, `test`, `testnet4`,
    /// `signet` or `regtest`.
    pub network: String,
    /// The height of `headers[0]`.
    pub start_height: u64,
    /// The best chain from `start_height` up to the settler's tip when the
    /// epoch was built, as 80-byte serialized headers.
    pub headers: Vec<Bytes>,
    /// Headers off that chain (stale tips) that this epoch's jobs build on,
    /// parents first; each links to a header carried by this file or an
    /// earlier one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<Bytes>,
}

impl FileBitcoin {
    /// The height of the last header, if there is one.
    pub fn end_height(&self) -> Option<u64> {
        let last = u64::try_from(self.headers.len().checked_sub(1)?).ok()?;
        self.start_height.checked_add(last)
    }
}

/// A block the pool found that is not in the best chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOrphan {
    /// Height.
    pub height: u64,
    /// Block hash, display (RPC) byte order.
    pub hash: B256,
    /// The solving share.
    pub share_seq: u64,
}

/// A job, enough to rebuild any header mined on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJob {
    /// Pool instance.
    pub instance: u8,
    /// The instance's job id.
    pub job_id: u64,
    /// Block height.
    pub height: u64,
    /// Previous block hash, internal byte order.
    pub prev_hash: B256,
    /// Version before rolling.
    pub version: u32,
    /// Compact network target.
    pub nbits: u32,
    /// Template `curtime`.
    pub template_time: u32,
    /// Coinbase bytes before the extranonces.
    pub coinbase1: Bytes,
    /// Coinbase bytes after the extranonces, up to the connection's share
    /// commitment output (docs/share-commitment.md).
    pub coinbase2: Bytes,
    /// Coinbase bytes after the share commitment output.
    pub coinbase2_suffix: Bytes,
    /// The instance's share-log head when the job was built: what every
    /// share commitment on this job names.
    pub log_head: B256,
    /// Merkle branch, internal byte order.
    pub branch: Vec<B256>,
    /// What the coinbase pays the pool, sats.
    pub coinbase_value: u64,
}

/// One instance's share-log hash chain across an epoch:
/// `head_n = keccak256(head_{n-1} ‖ epoch ‖ seq ‖ miner ‖ work ‖ hash)`
/// (integers big-endian: 8, 8 and 32 bytes) over the instance's shares in
/// sequence order, with each share's fields as in its share-tree leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLogHead {
    /// Pool instance.
    pub instance: u8,
    /// The instance's last share before this epoch's (0 if none).
    pub prev_seq: u64,
    /// The head after it (zero if none).
    pub prev_head: B256,
    /// The instance's last share in this epoch.
    pub last_seq: u64,
    /// The head after it.
    pub head: B256,
}

/// A share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShare {
    /// Sequence number.
    pub seq: u64,
    /// Acceptance time, unix ms.
    pub time_ms: u64,
    /// Pool instance.
    pub instance: u8,
    /// Job id within the instance.
    pub job_id: u64,
    /// The account credited.
    pub miner: Address,
    /// The rig.
    pub worker: String,
    /// Extranonce1.
    pub extranonce1: Bytes,
    /// Extranonce2.
    pub extranonce2: Bytes,
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
}

/// A paid block and its PPLNS breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBlock {
    /// Height.
    pub height: u64,
    /// Block hash, display (RPC) byte order.
    pub hash: B256,
    /// Coinbase value paid to the pool (R), sats.
    pub coinbase_value: u64,
    /// The finder.
    pub finder: Address,
    /// The solving share.
    pub share_seq: u64,
    /// Oldest share in the window.
    pub window_oldest_seq: Option<u64>,
    /// Whether the oldest share counted only in part.
    pub window_oldest_partial: bool,
    /// Score units filled (≤ the window).
    pub window_filled: U256,
    /// Pool fee F, sats.
    pub fee: u64,
    /// The unfilled part of a young pool's window, sats.
    pub young_pool_remainder: u64,
    /// Rounding dust, sats.
    pub dust: u64,
    /// Operator total (fee + remainder + dust), sats.
    pub operator: u64,
    /// Per-miner credits, sorted by account.
    pub credits: Vec<FileCredit>,
}

/// PPS or FPPS: the expected value of an epoch's shares
/// ([`crate::credit_epoch`]). Each share's base is its job's: the subsidy at
/// the job's height on `bitcoin.network` (PPS) or the job's
/// `coinbase_value` (FPPS). `gross = fee + dust + Σ credits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExpected {
    /// `G`: the shares' expected value before the fee, sats.
    pub gross: u64,
    /// `F = floor(G · fee_bps / 10000)`, sats.
    pub fee: u64,
    /// What the miners' floors leave, sats (the operator's).
    pub dust: u64,
    /// Per-miner credits, sorted by account, none zero.
    pub credits: Vec<FileCredit>,
}

/// One miner's credit from one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCredit {
    /// The miner.
    pub miner: Address,
    /// Sats.
    pub sats: u64,
}

/// A reward-tree leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReward {
    /// The account.
    pub account: Address,
    /// Cumulative credits, sats.
    pub cumulative_sats: u64,
    /// Cumulative amount, token base units (the leaf's value).
    pub cumulative_amount: U256,
}

/// Why an epoch file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpochFileError {
    /// Not JSON of the expected shape.
    #[error("epoch file does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// Another format or version.
    #[error(
        "unsupported epoch file: format {format:?} version {version} (this auditor reads {FORMAT:?} version {VERSION})"
    )]
    Unsupported {
        /// The `format` found.
        format: String,
        /// The `version` found.
        version: u32,
    },
}

impl EpochFile {
    /// The parameters this file declares, as pinned on-chain.
    pub fn pool_params(&self) -> crate::PoolParams {
        crate::PoolParams {
            pplns: crate::PplnsParams {
                window_x: self.params.window_x,
                fee_bps: self.params.fee_bps,
            },
            token_per_sat: self.chain.token_per_sat,
            payout_script: self.params.payout_script.clone().unwrap_or_default(),
            epoch_secs: self.params.epoch_secs,
            maturity: self.params.maturity,
            pool_tag: self.params.pool_tag.clone(),
            scheme: self.params.scheme,
        }
    }

    /// The canonical bytes: compact JSON, fields in declaration order.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EpochFileError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// The file's bytes and their keccak256 (the `dataHash`), hashing each
    /// chunk on a second thread while the rest is still being serialized:
    /// for a 1M-share epoch that overlaps about one second of encoding with
    /// one second of hashing. Same bytes as [`Self::to_bytes`].
    pub fn to_bytes_and_hash(&self) -> Result<(Vec<u8>, B256), EpochFileError> {
        const CHUNK: usize = 4 << 20;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        std::thread::scope(|scope| {
            let hasher = scope.spawn(move || {
                let mut keccak = alloy_primitives::Keccak256::new();
                let mut bytes = Vec::new();
                for chunk in rx {
                    keccak.update(&chunk);
                    if bytes.is_empty() {
                        bytes = chunk;
                    } else {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                (bytes, keccak.finalize())
            });
            struct Chunks {
                buf: Vec<u8>,
                tx: std::sync::mpsc::SyncSender<Vec<u8>>,
            }
            impl std::io::Write for Chunks {
                fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                    self.buf.extend_from_slice(data);
                    if self.buf.len() >= CHUNK {
                        let full =
                            std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
                        self.tx
                            .send(full)
                            .map_err(|_| std::io::Error::other("epoch file hasher stopped"))?;
                    }
                    Ok(data.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let mut out = Chunks {
                buf: Vec::with_capacity(CHUNK + 4096),
                tx,
            };
            let written = serde_json::to_writer(&mut out, self);
            let Chunks { buf, tx } = out;
            if written.is_ok() && !buf.is_empty() {
                // The hasher only stops when the channel closes, below.
                let _ = tx.send(buf);
            }
            drop(tx);
            let (bytes, hash) = hasher.join().expect("epoch file hasher panicked");
            written?;
            Ok((bytes, hash))
        })
    }

    /// Parses and checks the format and version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EpochFileError> {
        let file: Self = serde_json::from_slice(bytes)?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(EpochFileError::Unsupported {
                format: file.format,
                version: file.version,
            });
        }
        Ok(file)
    }

    /// The file name settlement writes it under.
    pub fn file_name(epoch: u64) -> String {
        format!("epoch-{epoch:08}.json")
    }
}

/// `dataHash`: keccak256 of the file's exact bytes.
pub fn data_hash(bytes: &[u8]) -> B256 {
    keccak256(bytes)
}
