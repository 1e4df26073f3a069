//! Stratum jobs: a block template turned into what miners hash.
//!
//! [`Job::new`] builds the coinbase (see the `coinbase` module for its
//! scriptSig), splits it around the extranonces into `coinbase1`/`coinbase2`,
//! and computes the merkle branch from the template's txids. The share
//! validator then rebuilds a header per share without allocating:
//! `sha256d(coinbase1 ‖ en1 ‖ en2 ‖ coinbase2)` is streamed from a midstate
//! kept after `coinbase1`, folded up the branch into the merkle root, and
//! written into an 80-byte header with the miner's ntime, nonce and version.
//! [`Job::assemble_block`] builds the full block for `submitblock`.
//!
//! **Every job's coinbase is unique**: the job id is pushed into the
//! scriptSig. Without it, two jobs cut from an unchanged template would have
//! the same coinbase and merkle root, and one header could be submitted under
//! both job ids and credited twice by a per-job duplicate check.

mod coinbase;
mod declared;
mod merkle;
pub(crate) mod sha;
#[cfg(test)]
pub(crate) mod tests;

use crate::template::BlockTemplate;
use alloy_primitives::{Address, B256, U256};
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, CompactTarget, ScriptBuf, Transaction, TxMerkleNode};
use coinbase::{Coinbase, CoinbaseSpec};
pub use declared::{
    CustomJob, DeclaredError, DeclaredTemplate, MAX_DECLARED_EXTRANONCE, Requirements,
    check_declared_coinbase, declared_coinbase, required_outputs, subsidy,
};
use proofpool_epoch::share_commitment::{
    OUTPUT_LEN, SCRIPT_LEN, ShareCommitment, committed_target,
};
use proofpool_primitives::Sats;
use proofpool_stratum::NotifyParams;

/// Where the miner's address and compact target start in the share
/// commitment output: after the 8-byte value, the script length, `OP_RETURN`,
/// the push opcode, the magic and the version.
const BINDING_AT: usize = 8 + 1 + 5;

/// What one connection's jobs commit to besides the job: the miner credited
/// and the share target (docs/share-commitment.md). The target is the one
/// asked for rounded down to its compact form, and shares on a job sent with
/// this binding are credited at exactly that target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    miner: Address,
    target_bits: u32,
    target: U256,
    /// `miner ‖ target_bits` as lowercase hex: what a `mining.notify` line
    /// differs by from one connection to the next.
    hex: [u8; 48],
}

impl Binding {
    /// The binding for `miner` at (at most) `target`.
    pub fn new(miner: Address, target: U256) -> Self {
        let (target_bits, target) = committed_target(target);
        let mut raw = [0u8; 24];
        raw[..20].copy_from_slice(miner.as_slice());
        raw[20..].copy_from_slice(&target_bits.to_be_bytes());
        let mut hex = [0u8; 48];
        // 24 bytes always fit 48 hex digits.
        let _ = hex::encode_to_slice(raw, &mut hex);
        Self {
            miner,
            target_bits,
            target,
            hex,
        }
    }

    /// A binding whose target is not its compact form's: for tests of the
    /// target comparison alone.
    #[cfg(test)]
    pub(crate) fn for_tests(miner: Address, target_bits: u32, target: U256) -> Self {
        Self {
            target_bits,
            target,
            ..Self::new(miner, target)
        }
    }

    /// The miner credited.
    pub fn miner(&self) -> Address {
        self.miner
    }

    /// The committed share target, compact form.
    pub fn target_bits(&self) -> u32 {
        self.target_bits
    }

    /// The committed share target: what shares are checked and credited at.
    pub fn target(&self) -> U256 {
        self.target
    }
}

/// The longest extranonce2 a job accepts, in bytes (it must fit a `u64`).
pub const MAX_EXTRANONCE2_LEN: usize = 8;

/// The longest extranonce1 a job accepts, in bytes.
pub const MAX_EXTRANONCE1_LEN: usize = 8;

/// Why a job could not be built, or a block not assembled from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// `extranonce1_len` is outside `1..=8`.
    #[error("extranonce1 length must be 1-{MAX_EXTRANONCE1_LEN} bytes, got {len}")]
    InvalidExtranonce1Len {
        /// The configured length.
        len: usize,
    },
    /// `extranonce2_len` is outside `1..=8`.
    #[error("extranonce2 length must be 1-{MAX_EXTRANONCE2_LEN} bytes, got {len}")]
    InvalidExtranonce2Len {
        /// The configured length.
        len: usize,
    },
    /// The two extranonces together cannot be one direct push.
    #[error("extranonce1 + extranonce2 must be 1-75 bytes, got {len}")]
    InvalidExtranonceLen {
        /// Their combined length.
        len: usize,
    },
    /// A template transaction has a witness but the template has no witness
    /// commitment, so the block would be invalid.
    #[error("template has witness transactions but no default_witness_commitment")]
    MissingWitnessCommitment,
    /// The payout script is empty, which anyone could spend.
    #[error("payout script is empty")]
    EmptyPayoutScript,
    /// The pool tag would push the scriptSig past 100 bytes at some height.
    #[error("pool tag is {len} bytes; at most {max} fit in the coinbase scriptSig")]
    TagTooLong {
        /// The tag's length.
        len: usize,
        /// The longest tag that fits with these extranonce lengths.
        max: usize,
    },
    /// The job was declared by a miner without its transactions: the pool
    /// cannot assemble its blocks (the miner propagates them).
    #[error("the pool does not know this job's transactions (a declared job)")]
    TransactionsUnknown,
    /// An extranonce1 passed for block assembly has the wrong length.
    #[error("extranonce1 must be {expected} bytes, got {got}")]
    Extranonce1Length {
        /// The job's extranonce1 length.
        expected: usize,
        /// The length passed.
        got: usize,
    },
    /// An extranonce2 passed for block assembly has the wrong length.
    #[error("extranonce2 must be {expected} bytes, got {got}")]
    Extranonce2Length {
        /// The job's extranonce2 length.
        expected: usize,
        /// The length passed.
        got: usize,
    },
}

/// How the pool builds every job's coinbase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// The output script paid the whole coinbase value: the pool's address.
    pub payout_script: ScriptBuf,
    /// Bytes pushed after the height, e.g. `/proofpool/`. Too long a tag is an
    /// error, never truncated: see [`JobConfig::max_tag_len`].
    pub pool_tag: Vec<u8>,
    /// Bytes of extranonce1, assigned per connection (1–8, usually 4).
    pub extranonce1_len: usize,
    /// Bytes of extranonce2, rolled by the miner (1–8, usually 8).
    pub extranonce2_len: usize,
}

impl JobConfig {
    /// A configuration with the `/proofpool/` tag, a 4-byte extranonce1 and an
    /// 8-byte extranonce2.
    pub fn new(payout_script: ScriptBuf) -> Self {
        Self {
            payout_script,
            pool_tag: b"/proofpool/".to_vec(),
            extranonce1_len: 4,
            extranonce2_len: MAX_EXTRANONCE2_LEN,
        }
    }

    /// The longest pool tag that fits with these extranonce lengths at any
    /// height: the scriptSig must stay within 100 bytes with a 5-byte height
    /// push, the 9-byte job id push and the extranonce push.
    pub fn max_tag_len(&self) -> usize {
        coinbase::max_tag_len(self.extranonce1_len.saturating_add(self.extranonce2_len))
    }

    /// Checks the configuration once, so that no template can fail on it later.
    pub fn validate(&self) -> Result<(), JobError> {
        if !(1..=MAX_EXTRANONCE1_LEN).contains(&self.extranonce1_len) {
            return Err(JobError::InvalidExtranonce1Len {
                len: self.extranonce1_len,
            });
        }
        if !(1..=MAX_EXTRANONCE2_LEN).contains(&self.extranonce2_len) {
            return Err(JobError::InvalidExtranonce2Len {
                len: self.extranonce2_len,
            });
        }
        if self.payout_script.is_empty() {
            return Err(JobError::EmptyPayoutScript);
        }
        let max = self.max_tag_len();
        if self.pool_tag.len() > max {
            return Err(JobError::TagTooLong {
                len: self.pool_tag.len(),
                max,
            });
        }
        Ok(())
    }
}

/// The hash in internal byte order, each 4-byte word byte-reversed, as hex.
fn stratum_prevhash(hash: BlockHash) -> String {
    let mut bytes = hash.to_byte_array();
    for word in bytes.chunks_exact_mut(4) {
        word.reverse();
    }
    hex::encode(bytes)
}

/// A cached `mining.notify` line, less the job id and the binding.
#[derive(Clone)]
struct NotifyLine {
    line: String,
    /// Where the job id goes.
    id_at: usize,
    /// Where the binding's hex goes (after `id_at`).
    binding_at: usize,
}

/// One unit of Stratum work: everything `mining.notify` sends, plus what the
/// pool needs to check shares and to assemble the block.
///
/// Built once per template and shared read-only by every session.
#[derive(Clone)]
pub struct Job {
    id: u64,
    clean_jobs: bool,
    height: u32,
    prev_hash: BlockHash,
    stratum_prevhash: String,
    version: u32,
    bits: CompactTarget,
    ntime: u32,
    mintime: u32,
    network_target: U256,
    coinbase_value: Sats,
    longpoll_id: Option<String>,
    extranonce1_len: usize,
    extranonce2_len: usize,
    coinbase: Coinbase,
    /// SHA-256 state after absorbing `coinbase1`, shared by every share.
    coinbase1_state: sha::Midstate,
    merkle_branch: Vec<[u8; 32]>,
    witness_commitment: bool,
    /// Shared with the declaration a declared job was set from.
    transactions: std::sync::Arc<[Transaction]>,
    /// Whether `transactions` are the block's: false for a job a miner
    /// declared in coinbase-only mode, whose blocks the pool cannot
    /// assemble.
    knows_transactions: bool,
    /// Whether a miner declared it (job declaration), rather than the pool
    /// building it from its own template.
    declared: bool,
    /// The instance's share-log head when the job was built.
    log_head: B256,
    /// Whether each connection's coinbase carries its share commitment
    /// between `coinbase2_prefix` and `coinbase2_suffix`: always, except
    /// for jobs rebuilt from other pools' notifies in tests.
    binds: bool,
    /// `mining.notify` with an empty job id and no binding, formatted once
    /// per clean flag (index 0: not clean, 1: clean), with where the id and
    /// the binding go: every session sends the same line under its own id
    /// and binding, so a new block costs each session a copy, not a
    /// formatting of the coinbase and branch.
    notify_lines: [std::sync::OnceLock<NotifyLine>; 2],
    /// When the job was built: the start of its fan-out to the sessions.
    built: std::time::Instant,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("height", &self.height)
            .field("prev_hash", &self.prev_hash)
            .field("version", &format_args!("{:#010x}", self.version))
            .field("bits", &format_args!("{:#010x}", self.bits.to_consensus()))
            .field("ntime", &self.ntime)
            .field("coinbase_value", &self.coinbase_value)
            .field("transactions", &self.transactions.len())
            .field("clean_jobs", &self.clean_jobs)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Builds job `id` from a template. `clean_jobs` tells miners to drop
    /// older work (set it when the previous block hash changed).
    ///
    /// The coinbase pays the whole `coinbasevalue` to `cfg.payout_script` and,
    /// when the template has one, carries `default_witness_commitment` as a
    /// second, zero-value output. `ntime` starts at `max(curtime, mintime)`.
    ///
    /// `log_head` is the instance's share-log head now: every connection's
    /// coinbase commits to it.
    pub fn new(
        id: u64,
        template: &BlockTemplate,
        cfg: &JobConfig,
        clean_jobs: bool,
        log_head: B256,
    ) -> Result<Self, JobError> {
        cfg.validate()?;
        if template.default_witness_commitment().is_none()
            && template
                .transactions()
                .iter()
                .any(|t| t.tx.input.iter().any(|i| !i.witness.is_empty()))
        {
            return Err(JobError::MissingWitnessCommitment);
        }
        let coinbase = Coinbase::new(&CoinbaseSpec {
            height: template.height(),
            job_id: id,
            pool_tag: &cfg.pool_tag,
            extranonce_len: cfg.extranonce1_len + cfg.extranonce2_len,
            payout_script: &cfg.payout_script,
            value: template.coinbase_value(),
            witness_commitment: template.default_witness_commitment(),
        })?;
        let txids: Vec<[u8; 32]> = template
            .transactions()
            .iter()
            .map(|tx| tx.txid.to_byte_array())
            .collect();
        let coinbase1_state = sha::Midstate::after(&coinbase.coinbase1);
        Ok(Self {
            id,
            clean_jobs,
            height: template.height(),
            prev_hash: template.previous_block_hash(),
            stratum_prevhash: stratum_prevhash(template.previous_block_hash()),
            version: template.version(),
            bits: template.bits(),
            ntime: template.curtime().max(template.mintime()),
            mintime: template.mintime(),
            network_target: template.target(),
            coinbase_value: Sats(template.coinbase_value().to_sat()),
            longpoll_id: template.longpoll_id().map(str::to_owned),
            extranonce1_len: cfg.extranonce1_len,
            extranonce2_len: cfg.extranonce2_len,
            coinbase,
            coinbase1_state,
            merkle_branch: merkle::branch(&txids),
            witness_commitment: template.default_witness_commitment().is_some(),
            transactions: template
                .transactions()
                .iter()
                .map(|t| t.tx.clone())
                .collect::<Vec<_>>()
                .into(),
            knows_transactions: true,
            declared: false,
            log_head,
            binds: true,
            notify_lines: Default::default(),
            built: std::time::Instant::now(),
        })
    }

    /// Appends the `mining.notify` line (newline included) for this job
    /// under the job id `seq` in lowercase hex, with the coinbase committing
    /// to `binding`, without allocating once the line's parts are cached.
    pub fn push_notify(&self, out: &mut String, seq: u64, clean_jobs: bool, binding: &Binding) {
        use std::fmt::Write as _;
        let cached = self.notify_lines[usize::from(clean_jobs)].get_or_init(|| {
            let placeholder = Binding::new(Address::ZERO, U256::ZERO);
            let coinbase2 = self.coinbase2(&placeholder);
            let line = proofpool_stratum::notify(&self.notify_params("", clean_jobs, &coinbase2));
            // The id is the first parameter: `"params":["",`.
            let id_at = line.find("[\"\"").map_or(line.len(), |i| i + 2);
            // coinbase2 is the one quoted string with exactly its hex.
            let quoted = format!("\"{}\"", hex::encode(&coinbase2));
            let binding_at = line.find(&quoted).map_or(line.len(), |i| {
                i + 1 + 2 * (self.coinbase.coinbase2_prefix.len() + BINDING_AT)
            });
            let mut line = line;
            line.replace_range(binding_at..binding_at + placeholder.hex.len(), "");
            NotifyLine {
                line,
                id_at,
                binding_at,
            }
        });
        let line = &cached.line;
        out.reserve(line.len() + 16 + binding.hex.len());
        out.push_str(&line[..cached.id_at]);
        // Writing to a String cannot fail.
        let _ = write!(out, "{seq:x}");
        out.push_str(&line[cached.id_at..cached.binding_at]);
        // Hex digits are ASCII.
        out.push_str(std::str::from_utf8(&binding.hex).unwrap_or_default());
        out.push_str(&line[cached.binding_at..]);
    }

    /// The job id the pool assigned.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When the job was built, just before it was published.
    pub fn built(&self) -> std::time::Instant {
        self.built
    }

    /// Whether miners must drop older jobs (`mining.notify`'s last field).
    pub fn clean_jobs(&self) -> bool {
        self.clean_jobs
    }

    /// The height of the block this job builds.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The previous block's hash.
    pub fn prev_hash(&self) -> BlockHash {
        self.prev_hash
    }

    /// `mining.notify`'s `prevhash`: the hash in internal byte order with the
    /// bytes of each 4-byte word reversed, as hex. For the block
    /// `000000000000000000015296…6b6455fd` that is `6b6455fd…00000000`: what
    /// cgminer, ckpool and ESP-Miner send and expect.
    pub fn stratum_prevhash(&self) -> &str {
        &self.stratum_prevhash
    }

    /// Everything `mining.notify` sends for this job, under the session's job
    /// id; `clean_jobs` may be forced on (a session's first job).
    /// `coinbase2` is the connection's, from [`Job::coinbase2`].
    pub fn notify_params<'a>(
        &'a self,
        job_id: &'a str,
        clean_jobs: bool,
        coinbase2: &'a [u8],
    ) -> NotifyParams<'a> {
        NotifyParams {
            job_id,
            prevhash_hex: &self.stratum_prevhash,
            coinbase1: &self.coinbase.coinbase1,
            coinbase2,
            merkle_branch: &self.merkle_branch,
            version: self.version,
            nbits: self.bits.to_consensus(),
            ntime: self.ntime,
            clean_jobs,
        }
    }

    /// The template's block version; Stratum sends it as 8 big-endian hex digits.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The compact network target; Stratum sends it as 8 big-endian hex digits.
    pub fn bits(&self) -> CompactTarget {
        self.bits
    }

    /// The job's header time, `max(curtime, mintime)`; the earliest a share
    /// may use.
    pub fn ntime(&self) -> u32 {
        self.ntime
    }

    /// The template's `mintime`: median time past plus one.
    pub fn mintime(&self) -> u32 {
        self.mintime
    }

    /// The network target the block must meet.
    pub fn network_target(&self) -> U256 {
        self.network_target
    }

    /// What the coinbase pays the pool: subsidy plus fees.
    pub fn coinbase_value(&self) -> Sats {
        self.coinbase_value
    }

    /// The template's long-poll token.
    pub fn longpoll_id(&self) -> Option<&str> {
        self.longpoll_id.as_deref()
    }

    /// The extranonce1 length every share must use.
    pub fn extranonce1_len(&self) -> usize {
        self.extranonce1_len
    }

    /// The extranonce2 length every share must use.
    pub fn extranonce2_len(&self) -> usize {
        self.extranonce2_len
    }

    /// `mining.notify`'s `coinb1`: the non-witness coinbase up to the extranonces.
    pub fn coinbase1(&self) -> &[u8] {
        &self.coinbase.coinbase1
    }

    /// `mining.notify`'s `coinb2` for a connection: the non-witness
    /// coinbase after the extranonces, with the connection's share
    /// commitment.
    pub fn coinbase2(&self, binding: &Binding) -> Vec<u8> {
        let mut out = self.coinbase.coinbase2_prefix.clone();
        out.extend_from_slice(&self.commitment_output(binding));
        out.extend_from_slice(&self.coinbase.coinbase2_suffix);
        out
    }

    /// The coinbase after the extranonces up to the share commitment output.
    pub fn coinbase2_prefix(&self) -> &[u8] {
        &self.coinbase.coinbase2_prefix
    }

    /// The coinbase after the share commitment output.
    pub fn coinbase2_suffix(&self) -> &[u8] {
        &self.coinbase.coinbase2_suffix
    }

    /// The instance's share-log head when the job was built.
    pub fn log_head(&self) -> B256 {
        self.log_head
    }

    /// What a connection with `binding` commits to on this job.
    pub fn commitment(&self, binding: &Binding) -> ShareCommitment {
        ShareCommitment {
            miner: binding.miner,
            target_bits: binding.target_bits,
            log_head: self.log_head,
        }
    }

    /// The share commitment output, serialized, for a connection.
    pub fn commitment_output(&self, binding: &Binding) -> [u8; OUTPUT_LEN] {
        self.commitment(binding).output()
    }

    /// `mining.notify`'s merkle branch: sibling hashes in internal byte order,
    /// bottom up (send each as plain hex, not reversed).
    pub fn merkle_branch(&self) -> &[[u8; 32]] {
        &self.merkle_branch
    }

    /// The template's transactions, in block order after the coinbase.
    pub fn transactions(&self) -> &[Transaction] {
        &self.transactions
    }

    /// Whether the pool knows the block's transactions (false for a job a
    /// miner declared in coinbase-only mode): only then can it assemble a
    /// block from a share.
    pub fn knows_transactions(&self) -> bool {
        self.knows_transactions
    }

    /// Whether a miner declared it (job declaration): no `SetNewPrevHash`
    /// tells its channel when it goes stale, the pool's tip does.
    pub fn is_declared(&self) -> bool {
        self.declared
    }

    /// The coinbase txid (internal byte order) for these extranonces and a
    /// connection's binding, streamed from the midstate after `coinbase1`:
    /// no allocation.
    pub fn coinbase_txid(
        &self,
        extranonce1: &[u8],
        extranonce2: &[u8],
        binding: &Binding,
    ) -> [u8; 32] {
        if !self.binds {
            return self.coinbase1_state.sha256d([
                extranonce1,
                extranonce2,
                &self.coinbase.coinbase2_prefix,
            ]);
        }
        self.coinbase1_state.sha256d([
            extranonce1,
            extranonce2,
            &self.coinbase.coinbase2_prefix,
            &self.commitment_output(binding),
            &self.coinbase.coinbase2_suffix,
        ])
    }

    /// The block's merkle root for a coinbase txid (internal byte order).
    pub fn merkle_root(&self, coinbase_txid: [u8; 32]) -> [u8; 32] {
        merkle::fold(coinbase_txid, &self.merkle_branch)
    }

    /// The 80-byte block header for a share of a connection with `binding`.
    pub fn header(
        &self,
        binding: &Binding,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> [u8; 80] {
        let root = self.merkle_root(self.coinbase_txid(extranonce1, extranonce2, binding));
        let mut header = [0u8; 80];
        header[..4].copy_from_slice(&version.to_le_bytes());
        header[4..36].copy_from_slice(self.prev_hash.as_byte_array());
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&ntime.to_le_bytes());
        header[72..76].copy_from_slice(&self.bits.to_consensus().to_le_bytes());
        header[76..].copy_from_slice(&nonce.to_le_bytes());
        header
    }

    /// The full block for a solved share, ready for `submitblock`: the
    /// coinbase with these extranonces (and the 32-byte zero witness reserved
    /// value when the template commits to witnesses), then the template's
    /// transactions.
    pub fn assemble_block(
        &self,
        binding: &Binding,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> Result<Block, JobError> {
        if !self.knows_transactions {
            return Err(JobError::TransactionsUnknown);
        }
        self.check_extranonces(extranonce1, extranonce2)?;
        let script: [u8; SCRIPT_LEN] = self.commitment(binding).script();
        let coinbase = self.coinbase.with_extranonces(
            extranonce1,
            extranonce2,
            &script,
            self.witness_commitment,
        );
        let root = self.merkle_root(coinbase.compute_txid().to_byte_array());
        let header = Header {
            version: Version::from_consensus(version.cast_signed()),
            prev_blockhash: self.prev_hash,
            merkle_root: TxMerkleNode::from_byte_array(root),
            time: ntime,
            bits: self.bits,
            nonce,
        };
        let mut txdata = Vec::with_capacity(self.transactions.len() + 1);
        txdata.push(coinbase);
        txdata.extend(self.transactions.iter().cloned());
        Ok(Block { header, txdata })
    }

    /// [`assemble_block`](Self::assemble_block), serialized as hex for `submitblock`.
    pub fn block_hex(
        &self,
        binding: &Binding,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> Result<String, JobError> {
        let block =
            self.assemble_block(binding, extranonce1, extranonce2, ntime, nonce, version)?;
        Ok(bitcoin::consensus::encode::serialize_hex(&block))
    }

    fn check_extranonces(&self, extranonce1: &[u8], extranonce2: &[u8]) -> Result<(), JobError> {
        if extranonce1.len() != self.extranonce1_len {
            return Err(JobError::Extranonce1Length {
                expected: self.extranonce1_len,
                got: extranonce1.len(),
            });
        }
        if extranonce2.len() != self.extranonce2_len {
            return Err(JobError::Extranonce2Length {
                expected: self.extranonce2_len,
                got: extranonce2.len(),
            });
        }
        Ok(())
    }
}
