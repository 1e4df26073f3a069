//! Jobs a miner declared (Stratum V2 job declaration, docs/job-declaration.md):
//! the coinbase and the merkle path come from `SetCustomMiningJob`, checked
//! against what the pool requires, and the result is a [`Job`] like the
//! pool's own, so its shares are checked, credited, recorded and audited the
//! same way.
//!
//! In full-template mode (`DeclareMiningJob`) the job declaration server
//! first checks the declared coinbase ([`declared_coinbase`],
//! [`check_declared_coinbase`]) and has the node check the whole block
//! ([`DeclaredTemplate::proposal`]); the token it then issues carries the
//! transactions, and [`Job::with_template`] holds the `SetCustomMiningJob`
//! made with it to them, so the pool can assemble and submit its blocks.
//!
//! The pool requires two outputs, first in this order: its payout output,
//! which carries every satoshi the coinbase pays (SRI's job declarator
//! client puts the coinbase's value in the first output), and the share
//! commitment of the token the job was declared with. The coinbase splits
//! around the commitment output exactly as a pool job's does, so the job's
//! record needs nothing new.

use super::coinbase::{Coinbase, SCRIPT_SIG_MAX, height_push};
use super::{Job, sha, stratum_prevhash};
use alloy_primitives::U256;
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, BlockHash, CompactTarget, OutPoint, Script, ScriptBuf, Sequence, Target, Transaction,
    TxIn, TxOut, Witness,
};
use proofpool_epoch::share_commitment::{OUTPUT_LEN, ShareCommitment};
use proofpool_primitives::Sats;

/// The longest merkle path a declared job may have: a block of 2^24
/// transactions is far beyond any the weight limit allows.
pub(crate) const MAX_MERKLE_PATH: usize = 24;

/// The most outputs a declared coinbase may have, and their most bytes: the
/// pool's two, the witness commitment and a few more zero-value ones. Every
/// declared job is held in memory and recorded, so its size is bounded.
pub(crate) const MAX_OUTPUTS: usize = 8;
pub(crate) const MAX_OUTPUTS_BYTES: usize = 1024;

/// How far past the pool's clock a declared job's `min_ntime` may be, as
/// for shares (docs/share-commitment.md).
pub(crate) const MAX_MIN_NTIME_AHEAD: u32 = 300;

/// The BIP141 witness commitment's script prefix: `OP_RETURN`, a 36-byte
/// push, then `aa21a9ed`.
const WITNESS_COMMITMENT_PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// The longest extranonce a declared coinbase may leave room for (SRI's
/// limit).
pub const MAX_DECLARED_EXTRANONCE: usize = 32;

/// A full-template declaration the node found valid: what a job set with
/// its token must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredTemplate {
    /// The tip it was checked on.
    pub prev_hash: BlockHash,
    /// The header version declared.
    pub version: u32,
    /// The coinbase declared, its extranonce zeros, without a witness.
    pub coinbase: Transaction,
    /// The block's other transactions, in block order.
    pub transactions: std::sync::Arc<[Transaction]>,
    /// The coinbase's merkle branch through them.
    pub branch: Vec<[u8; 32]>,
}

impl DeclaredTemplate {
    /// The declaration of `coinbase` and `transactions` at `version` on
    /// `tip`'s previous block.
    pub fn new(
        tip: &Job,
        version: u32,
        mut coinbase: Transaction,
        transactions: Vec<Transaction>,
    ) -> Self {
        for input in &mut coinbase.input {
            input.witness = Witness::new();
        }
        let txids: Vec<[u8; 32]> = transactions
            .iter()
            .map(|tx| tx.compute_txid().to_byte_array())
            .collect();
        Self {
            prev_hash: tip.prev_hash(),
            version,
            coinbase,
            transactions: transactions.into(),
            branch: super::merkle::branch(&txids),
        }
    }

    /// The block the node is asked to check (`getblocktemplate` in proposal
    /// mode, which checks everything but the proof of work): the coinbase
    /// (given the witness reserved value if it commits to witnesses) then
    /// the transactions, on `tip`'s previous block, bits and time.
    pub fn proposal(&self, tip: &Job) -> bitcoin::Block {
        let mut coinbase = self.coinbase.clone();
        let commits = coinbase.output.iter().any(|o| {
            o.script_pubkey
                .as_bytes()
                .starts_with(&WITNESS_COMMITMENT_PREFIX)
        });
        if commits && let Some(input) = coinbase.input.first_mut() {
            input.witness = Witness::from_slice(&[[0u8; 32]]);
        }
        let root = super::merkle::fold(coinbase.compute_txid().to_byte_array(), &self.branch);
        bitcoin::Block {
            header: bitcoin::block::Header {
                version: bitcoin::block::Version::from_consensus(self.version.cast_signed()),
                prev_blockhash: self.prev_hash,
                merkle_root: bitcoin::TxMerkleNode::from_byte_array(root),
                time: tip.ntime(),
                bits: tip.bits(),
                nonce: 0,
            },
            txdata: std::iter::once(coinbase)
                .chain(self.transactions.iter().cloned())
                .collect(),
        }
    }
}

/// The coinbase of a `DeclareMiningJob`: its bytes before the extranonce,
/// then the extranonce (zeros, of the one length that makes a transaction
/// whose scriptSig ends with it, as a `SetCustomMiningJob`'s does), then
/// its bytes after. Either serialization (with or without the witness) is
/// read.
pub fn declared_coinbase(prefix: &[u8], suffix: &[u8]) -> Result<Transaction, DeclaredError> {
    let bad = |why: &str| DeclaredError::InvalidCoinbasePrefix(why.to_owned());
    if prefix.len() + suffix.len() > MAX_OUTPUTS_BYTES + 256 {
        return Err(bad("longer than any coinbase the pool accepts"));
    }
    for gap in 0..=MAX_DECLARED_EXTRANONCE {
        let mut bytes = Vec::with_capacity(prefix.len() + gap + suffix.len());
        bytes.extend_from_slice(prefix);
        bytes.resize(prefix.len() + gap, 0);
        bytes.extend_from_slice(suffix);
        let Ok(tx) = bitcoin::consensus::deserialize::<Transaction>(&bytes) else {
            continue;
        };
        let [input] = tx.input.as_slice() else {
            continue;
        };
        // Where the scriptSig is: after the version, the witness marker and
        // flag if any, the input count, the outpoint and its length.
        let segwit = bytes.get(4) == Some(&0);
        let start = 4 + if segwit { 2 } else { 0 } + 1 + 36 + 1;
        let end = start + input.script_sig.len();
        if input.previous_output.is_null()
            && input.script_sig.len() < 0xfd
            && start <= prefix.len()
            && prefix.len() + gap == end
        {
            return Ok(tx);
        }
    }
    Err(bad(
        "prefix, extranonce and suffix do not make a coinbase transaction",
    ))
}

/// Checks a declared coinbase against what the pool requires, as
/// [`Job::declared`] checks a `SetCustomMiningJob`'s: the next block's
/// BIP34 height first in the scriptSig, at most 100 bytes of it, version 1
/// or 2, lock time 0, and the outputs (the pool's payout first with at
/// least `req.min_value` and every satoshi, the token's commitment second).
pub fn check_declared_coinbase(
    coinbase: &Transaction,
    req: &Requirements<'_>,
) -> Result<(), DeclaredError> {
    let version = coinbase.version.0.cast_unsigned();
    if !(1..=2).contains(&version) {
        return Err(DeclaredError::InvalidCoinbaseTxVersion(version));
    }
    if coinbase.lock_time != LockTime::ZERO {
        return Err(DeclaredError::InvalidCoinbaseTxLocktime(
            coinbase.lock_time.to_consensus_u32(),
        ));
    }
    let script_sig = coinbase
        .input
        .first()
        .map(|i| i.script_sig.as_bytes())
        .unwrap_or_default();
    let height = req.tip.height();
    if !script_sig.starts_with(height_push(height).as_bytes()) {
        return Err(DeclaredError::InvalidCoinbasePrefix(format!(
            "does not start with the BIP34 height {height}"
        )));
    }
    if script_sig.len() > SCRIPT_SIG_MAX {
        return Err(DeclaredError::InvalidCoinbasePrefix(format!(
            "a scriptSig of {} bytes; at most {SCRIPT_SIG_MAX}",
            script_sig.len()
        )));
    }
    check_outputs(
        &bitcoin::consensus::serialize(&coinbase.output),
        req.payout_script,
        &req.commitment,
        req.min_value,
    )?;
    Ok(())
}

/// The outputs the pool requires, serialized as a consensus `Vec<TxOut>`
/// (what `AllocateMiningJobToken.Success` carries): the payout output
/// (value 0: the miner's client fills in the coinbase's value) and the
/// token's share commitment.
pub fn required_outputs(payout_script: &Script, commitment: &ShareCommitment) -> Vec<u8> {
    let outputs = vec![
        TxOut {
            value: Amount::ZERO,
            script_pubkey: payout_script.to_owned(),
        },
        TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(commitment.script().to_vec()),
        },
    ];
    bitcoin::consensus::serialize(&outputs)
}

/// The block subsidy at `height` on `network` (the schedule is
/// [`proofpool_epoch::subsidy`]'s, the auditor's).
pub fn subsidy(network: bitcoin::Network, height: u32) -> Amount {
    Amount::from_sat(proofpool_epoch::subsidy(network, height).0)
}

/// What `SetCustomMiningJob` says about the job.
#[derive(Debug, Clone)]
pub struct CustomJob<'a> {
    /// Header version.
    pub version: u32,
    /// Previous block hash.
    pub prev_hash: BlockHash,
    /// The earliest header time.
    pub min_ntime: u32,
    /// Compact network target.
    pub nbits: u32,
    /// The coinbase transaction's version.
    pub coinbase_tx_version: u32,
    /// The scriptSig before the extranonce (the BIP34 height first).
    pub coinbase_prefix: &'a [u8],
    /// The coinbase input's sequence.
    pub coinbase_tx_input_n_sequence: u32,
    /// The coinbase outputs, a consensus `Vec<TxOut>`.
    pub coinbase_tx_outputs: &'a [u8],
    /// The coinbase's lock time.
    pub coinbase_tx_locktime: u32,
    /// The coinbase's merkle path, internal byte order, leaf level first.
    pub merkle_path: Vec<[u8; 32]>,
}

/// What the pool holds a declared job to.
#[derive(Debug, Clone, Copy)]
pub struct Requirements<'a> {
    /// The pool's current job: the tip, height, bits and earliest time a
    /// declared job must build on.
    pub tip: &'a Job,
    /// The pool's payout script.
    pub payout_script: &'a Script,
    /// The token's share commitment.
    pub commitment: ShareCommitment,
    /// The channel's extranonce prefix length (the pool's extranonce1).
    pub extranonce1_len: usize,
    /// The miner's part of the extranonce.
    pub extranonce2_len: usize,
    /// The pool's clock, unix seconds.
    pub now: u32,
    /// The least the payout output may carry: the block subsidy at the
    /// tip's height (fees are the miner's to choose in coinbase-only mode,
    /// the subsidy is not).
    pub min_value: Amount,
}

/// Why a declared job is refused, each with the spec's error code
/// (`SetCustomMiningJob.Error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeclaredError {
    /// Not on the pool's current tip.
    #[error("the job is not on the current chain tip")]
    StaleChainTip,
    /// Not the tip's bits.
    #[error("nbits {got:#010x} is not the tip's {expected:#010x}")]
    InvalidNbits {
        /// The tip's.
        expected: u32,
        /// The job's.
        got: u32,
    },
    /// Before the tip's earliest time or too far ahead of the pool's clock.
    #[error("min_ntime {0} is before the tip's earliest time or too far ahead")]
    InvalidMinNtime(u32),
    /// Not a BIP9 version (top bits `001`).
    #[error("version {0:#010x} is not a BIP9 version")]
    InvalidVersion(u32),
    /// Not version 1 or 2.
    #[error("coinbase transaction version {0} is not 1 or 2")]
    InvalidCoinbaseTxVersion(u32),
    /// No BIP34 height of the next block, or no room for the extranonce.
    #[error("coinbase prefix: {0}")]
    InvalidCoinbasePrefix(String),
    /// The outputs miss what the pool requires or pay anyone else.
    #[error("coinbase outputs: {0}")]
    InvalidCoinbaseTxOutputs(String),
    /// A lock time other than 0.
    #[error("coinbase lock time {0} is not 0")]
    InvalidCoinbaseTxLocktime(u32),
    /// Longer than any block needs.
    #[error("merkle path of {0} hashes is longer than {MAX_MERKLE_PATH}")]
    InvalidMerklePath(usize),
}

impl DeclaredError {
    /// The spec's error code.
    pub fn code(&self) -> &'static str {
        use stratum_core::mining_sv2::{
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_PREFIX,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_LOCKTIME,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_OUTPUTS,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_VERSION,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MERKLE_PATH,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MIN_NTIME,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_NBITS,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_VERSION,
            ERROR_CODE_SET_CUSTOM_MINING_JOB_STALE_CHAIN_TIP,
        };
        match self {
            Self::StaleChainTip => ERROR_CODE_SET_CUSTOM_MINING_JOB_STALE_CHAIN_TIP,
            Self::InvalidNbits { .. } => ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_NBITS,
            Self::InvalidMinNtime(_) => ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MIN_NTIME,
            Self::InvalidVersion(_) => ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_VERSION,
            Self::InvalidCoinbaseTxVersion(_) => {
                ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_VERSION
            }
            Self::InvalidCoinbasePrefix(_) => {
                ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_PREFIX
            }
            Self::InvalidCoinbaseTxOutputs(_) => {
                ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_OUTPUTS
            }
            Self::InvalidCoinbaseTxLocktime(_) => {
                ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_TX_LOCKTIME
            }
            Self::InvalidMerklePath(_) => ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MERKLE_PATH,
        }
    }
}

/// Checks the outputs: the payout output first with every satoshi, the
/// token's commitment second, anything else worth nothing. Returns them
/// and the value paid.
fn check_outputs(
    bytes: &[u8],
    payout_script: &Script,
    commitment: &ShareCommitment,
    min_value: Amount,
) -> Result<(Vec<TxOut>, Amount, bool), DeclaredError> {
    let bad = |why: String| DeclaredError::InvalidCoinbaseTxOutputs(why);
    if bytes.len() > MAX_OUTPUTS_BYTES {
        return Err(bad(format!(
            "{} bytes; at most {MAX_OUTPUTS_BYTES}",
            bytes.len()
        )));
    }
    let outputs: Vec<TxOut> = bitcoin::consensus::deserialize(bytes)
        .map_err(|e| bad(format!("not a list of outputs: {e}")))?;
    if outputs.len() > MAX_OUTPUTS {
        return Err(bad(format!(
            "{} outputs; at most {MAX_OUTPUTS}",
            outputs.len()
        )));
    }
    let Some(payout) = outputs.first() else {
        return Err(bad("none".into()));
    };
    if payout.value < min_value {
        return Err(bad(format!(
            "the pool's output carries {} sat, less than the block subsidy {}",
            payout.value.to_sat(),
            min_value.to_sat()
        )));
    }
    if payout.script_pubkey.as_script() != payout_script {
        return Err(bad("the first output does not pay the pool".into()));
    }
    let expected = commitment.output();
    let second = outputs
        .get(1)
        .map(bitcoin::consensus::serialize)
        .unwrap_or_default();
    if second != expected[..] {
        return Err(bad(
            "the second output is not the token's share commitment".into()
        ));
    }
    let value = payout.value;
    let mut witness = false;
    for out in outputs.iter().skip(2) {
        if out.value != Amount::ZERO {
            return Err(bad(format!(
                "an output pays {} sat to someone other than the pool",
                out.value.to_sat()
            )));
        }
        witness |= out
            .script_pubkey
            .as_bytes()
            .starts_with(&WITNESS_COMMITMENT_PREFIX);
    }
    Ok((outputs, value, witness))
}

impl Job {
    /// This declared job, held to the full-template declaration its token
    /// was issued for: on the same tip, the same version, the same
    /// coinbase (outputs, scriptSig before an extranonce of the same
    /// length, sequence), and a merkle path that is the declared
    /// transactions'. It then knows its transactions, so the pool
    /// assembles and submits its blocks.
    pub fn with_template(mut self, template: &DeclaredTemplate) -> Result<Self, DeclaredError> {
        if self.prev_hash != template.prev_hash {
            return Err(DeclaredError::StaleChainTip);
        }
        if self.version != template.version {
            return Err(DeclaredError::InvalidVersion(self.version));
        }
        if self.coinbase.tx.output != template.coinbase.output {
            return Err(DeclaredError::InvalidCoinbaseTxOutputs(
                "not the outputs of the job declared with this token".into(),
            ));
        }
        if self.coinbase.tx != template.coinbase {
            return Err(DeclaredError::InvalidCoinbasePrefix(
                "not the coinbase declared with this token (its scriptSig before the extranonce, the extranonce's length and the sequence must be the same)".into(),
            ));
        }
        if template.branch != self.merkle_branch {
            return Err(DeclaredError::InvalidMerklePath(self.merkle_branch.len()));
        }
        self.transactions = template.transactions.clone();
        self.knows_transactions = true;
        Ok(self)
    }

    /// Job `id` from a miner's `SetCustomMiningJob`, held to `req`: on the
    /// pool's tip, the coinbase paying the pool everything and carrying the
    /// token's commitment (whose log head the job records), the scriptSig
    /// starting with the next block's height and leaving room for the
    /// channel's extranonce.
    ///
    /// The pool knows none of its transactions (coinbase-only mode): it can
    /// check its shares but not assemble its blocks
    /// ([`Job::knows_transactions`]).
    pub fn declared(
        id: u64,
        job: &CustomJob<'_>,
        req: &Requirements<'_>,
    ) -> Result<Self, DeclaredError> {
        let tip = req.tip;
        if job.prev_hash != tip.prev_hash() {
            return Err(DeclaredError::StaleChainTip);
        }
        if job.nbits != tip.bits().to_consensus() {
            return Err(DeclaredError::InvalidNbits {
                expected: tip.bits().to_consensus(),
                got: job.nbits,
            });
        }
        if job.min_ntime < tip.mintime()
            || job.min_ntime > req.now.saturating_add(MAX_MIN_NTIME_AHEAD)
        {
            return Err(DeclaredError::InvalidMinNtime(job.min_ntime));
        }
        if job.version >> 29 != 0b001 {
            return Err(DeclaredError::InvalidVersion(job.version));
        }
        if !(1..=2).contains(&job.coinbase_tx_version) {
            return Err(DeclaredError::InvalidCoinbaseTxVersion(
                job.coinbase_tx_version,
            ));
        }
        if job.coinbase_tx_locktime != 0 {
            return Err(DeclaredError::InvalidCoinbaseTxLocktime(
                job.coinbase_tx_locktime,
            ));
        }
        if job.merkle_path.len() > MAX_MERKLE_PATH {
            return Err(DeclaredError::InvalidMerklePath(job.merkle_path.len()));
        }
        let height = tip.height();
        let height_push = height_push(height);
        if !job.coinbase_prefix.starts_with(height_push.as_bytes()) {
            return Err(DeclaredError::InvalidCoinbasePrefix(format!(
                "does not start with the BIP34 height {height}"
            )));
        }
        let extranonce_len = req.extranonce1_len + req.extranonce2_len;
        let script_sig_len = job.coinbase_prefix.len() + extranonce_len;
        if script_sig_len > SCRIPT_SIG_MAX {
            return Err(DeclaredError::InvalidCoinbasePrefix(format!(
                "{} bytes with the {extranonce_len}-byte extranonce; at most {SCRIPT_SIG_MAX} fit",
                job.coinbase_prefix.len()
            )));
        }
        let (output, value, witness) = check_outputs(
            job.coinbase_tx_outputs,
            req.payout_script,
            &req.commitment,
            req.min_value,
        )?;
        let mut script_sig = job.coinbase_prefix.to_vec();
        script_sig.resize(script_sig_len, 0);
        let tx = Transaction {
            version: Version(job.coinbase_tx_version.cast_signed()),
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: Sequence(job.coinbase_tx_input_n_sequence),
                witness: Witness::new(),
            }],
            output,
        };
        // Legacy (txid) serialization: version, one input, the null
        // outpoint, the scriptSig's length (one byte: at most 100), the
        // scriptSig, then the sequence and the outputs.
        let bytes = bitcoin::consensus::serialize(&tx);
        let split = 4 + 1 + 36 + 1 + job.coinbase_prefix.len();
        let after = split + extranonce_len;
        let commitment_at = after + 4 + varint_len(tx.output.len()) + serialized_len(&tx.output[0]);
        let (Some(coinbase1), Some(coinbase2_prefix), Some(coinbase2_suffix)) = (
            bytes.get(..split),
            bytes.get(after..commitment_at),
            bytes.get(commitment_at + OUTPUT_LEN..),
        ) else {
            return Err(DeclaredError::InvalidCoinbaseTxOutputs(
                "the coinbase does not split around its commitment".into(),
            ));
        };
        let coinbase = Coinbase {
            script_sig_prefix: job.coinbase_prefix.to_vec(),
            coinbase1: coinbase1.to_vec(),
            coinbase2_prefix: coinbase2_prefix.to_vec(),
            coinbase2_suffix: coinbase2_suffix.to_vec(),
            tx,
        };
        let bits = CompactTarget::from_consensus(job.nbits);
        let coinbase1_state = sha::Midstate::after(&coinbase.coinbase1);
        Ok(Self {
            id,
            clean_jobs: false,
            height,
            prev_hash: job.prev_hash,
            stratum_prevhash: stratum_prevhash(job.prev_hash),
            version: job.version,
            bits,
            ntime: job.min_ntime,
            mintime: tip.mintime(),
            network_target: U256::from_le_bytes(Target::from_compact(bits).to_le_bytes()),
            coinbase_value: Sats(value.to_sat()),
            longpoll_id: None,
            extranonce1_len: req.extranonce1_len,
            extranonce2_len: req.extranonce2_len,
            coinbase,
            coinbase1_state,
            merkle_branch: job.merkle_path.clone(),
            witness_commitment: witness,
            transactions: Vec::new().into(),
            knows_transactions: false,
            declared: true,
            log_head: req.commitment.log_head,
            binds: true,
            notify_lines: Default::default(),
            built: std::time::Instant::now(),
        })
    }
}

/// Bytes of a consensus compact size for `n`.
fn varint_len(n: usize) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fn serialized_len(out: &TxOut) -> usize {
    bitcoin::consensus::serialize(out).len()
}
