//! bitcoind's block templates, parsed once at the RPC boundary.
//!
//! [`RawTemplate`] is the JSON of `getblocktemplate {"rules": ["segwit"]}` as
//! serde sees it; [`BlockTemplate`] is the same template with every hex field
//! decoded, every transaction deserialized and checked against the txid and
//! wtxid bitcoind reported, and the target checked against `bits`. Nothing
//! downstream handles hex strings or trusts an unchecked field.

use alloy_primitives::U256;
use bitcoin::consensus::encode;
use bitcoin::{Amount, BlockHash, CompactTarget, ScriptBuf, Target, Transaction, Txid, Wtxid};
use serde::Deserialize;

/// The first bytes of a BIP141 witness commitment output script:
/// `OP_RETURN`, a 36-byte push, and the commitment header `aa21a9ed`.
const WITNESS_COMMITMENT_PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// Why a `getblocktemplate` answer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A hex field holds a character that is not a hex digit, or an odd number of digits.
    #[error("template field {field} is not valid hex")]
    BadHex {
        /// The JSON field.
        field: &'static str,
    },
    /// A fixed-size hex field has the wrong length.
    #[error("template field {field} must be {expected} bytes, got {got}")]
    BadLength {
        /// The JSON field.
        field: &'static str,
        /// The required length in bytes.
        expected: usize,
        /// The decoded length in bytes.
        got: usize,
    },
    /// A transaction's `data` does not deserialize.
    #[error("template transaction {index} does not deserialize")]
    BadTransaction {
        /// Its position in `transactions`.
        index: usize,
        /// The decoding error.
        #[source]
        source: encode::Error,
    },
    /// A transaction's `data` does not hash to its `txid`.
    #[error("template transaction {index} hashes to txid {computed}, not {reported}")]
    TxidMismatch {
        /// Its position in `transactions`.
        index: usize,
        /// The txid bitcoind reported.
        reported: Txid,
        /// The txid of `data`.
        computed: Txid,
    },
    /// A transaction's `data` does not hash to its `hash` (wtxid).
    #[error("template transaction {index} hashes to wtxid {computed}, not {reported}")]
    WtxidMismatch {
        /// Its position in `transactions`.
        index: usize,
        /// The wtxid bitcoind reported.
        reported: Wtxid,
        /// The wtxid of `data`.
        computed: Wtxid,
    },
    /// `target` is not the expansion of `bits`.
    #[error("template target does not match its bits {bits:#010x}")]
    TargetMismatch {
        /// The compact target.
        bits: u32,
    },
    /// `default_witness_commitment` is not a BIP141 commitment script.
    #[error("template default_witness_commitment is not an OP_RETURN aa21a9ed commitment")]
    BadWitnessCommitment,
    /// A number does not fit the header or consensus range.
    #[error("template field {field} is out of range: {value}")]
    OutOfRange {
        /// The JSON field.
        field: &'static str,
        /// The value received.
        value: u64,
    },
}

/// One transaction of `getblocktemplate`'s `transactions`, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawTemplateTx {
    /// The transaction, consensus-serialized with its witness, as hex.
    pub data: String,
    /// Its txid (display order).
    pub txid: Txid,
    /// Its wtxid (display order).
    pub hash: Wtxid,
    /// 1-based indexes of the template transactions it spends from.
    #[serde(default)]
    pub depends: Vec<u32>,
    /// Its fee in satoshis.
    pub fee: u64,
    /// Its sigop cost, if bitcoind reported it.
    #[serde(default)]
    pub sigops: Option<u64>,
    /// Its weight.
    pub weight: u64,
}

/// `getblocktemplate`'s answer as JSON, before any checking. Unknown fields
/// are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawTemplate {
    /// The block version, with BIP9 signalling bits already set.
    pub version: i32,
    /// Active rules (`csv`, `!segwit`, `taproot`, …).
    #[serde(default)]
    pub rules: Vec<String>,
    /// The block this template builds on (display order).
    pub previousblockhash: BlockHash,
    /// Transactions to include after the coinbase, in block order.
    pub transactions: Vec<RawTemplateTx>,
    /// Subsidy plus fees, in satoshis: what the coinbase may pay out.
    pub coinbasevalue: u64,
    /// The network target, 64 hex digits, big-endian.
    pub target: String,
    /// The compact target, 8 hex digits, big-endian.
    pub bits: String,
    /// The node's current time.
    pub curtime: u64,
    /// The earliest header time the next block may have.
    pub mintime: u64,
    /// The height of the block being built.
    pub height: u64,
    /// The witness commitment output script, hex, if segwit is active.
    #[serde(default)]
    pub default_witness_commitment: Option<String>,
    /// Token for long-polling: pass it back to wait for the next template.
    #[serde(default)]
    pub longpollid: Option<String>,
    /// The block weight limit.
    #[serde(default)]
    pub weightlimit: Option<u64>,
    /// The block sigop-cost limit.
    #[serde(default)]
    pub sigoplimit: Option<u64>,
}

/// One transaction of a checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTx {
    /// The transaction, witness included.
    pub tx: Transaction,
    /// Its txid, checked against `data`.
    pub txid: Txid,
    /// Its wtxid, checked against `data`.
    pub wtxid: Wtxid,
    /// Its fee.
    pub fee: Amount,
    /// Its weight, as bitcoind reported it.
    pub weight: u64,
    /// Its sigop cost, if bitcoind reported it.
    pub sigops: Option<u64>,
    /// 1-based indexes of the template transactions it spends from.
    pub depends: Vec<u32>,
}

/// A checked `getblocktemplate` answer: hex decoded, transactions deserialized
/// and matched to their txids and wtxids, target matched to `bits`.
///
/// Deserialize it straight from the RPC result, or go through [`RawTemplate`]
/// and [`BlockTemplate::try_from`] to keep the typed [`TemplateError`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTemplate")]
pub struct BlockTemplate {
    version: u32,
    rules: Vec<String>,
    previous_block_hash: BlockHash,
    transactions: Vec<TemplateTx>,
    coinbase_value: Amount,
    target: U256,
    bits: CompactTarget,
    curtime: u32,
    mintime: u32,
    height: u32,
    default_witness_commitment: Option<ScriptBuf>,
    longpoll_id: Option<String>,
    weight_limit: Option<u64>,
    sigop_limit: Option<u64>,
}

impl BlockTemplate {
    /// Whether `other` asks for the same block as this template, apart from
    /// the time: same previous block, transactions, coinbase value, version,
    /// target and witness commitment, and the same long-poll id (a new one
    /// means bitcoind saw a change; keeping the old one would make the next
    /// long-poll return at once, forever).
    pub fn same_work(&self, other: &Self) -> bool {
        self.previous_block_hash == other.previous_block_hash
            && self.height == other.height
            && self.version == other.version
            && self.bits == other.bits
            && self.coinbase_value == other.coinbase_value
            && self.default_witness_commitment == other.default_witness_commitment
            && self.longpoll_id == other.longpoll_id
            && self.mintime == other.mintime
            && self.rules == other.rules
            && self.transactions.len() == other.transactions.len()
            && self
                .transactions
                .iter()
                .zip(&other.transactions)
                .all(|(a, b)| a.wtxid == b.wtxid)
    }

    /// The block version (BIP9 bits included), as the header's 32 bits.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The active rules bitcoind listed.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    /// The block this template builds on.
    pub fn previous_block_hash(&self) -> BlockHash {
        self.previous_block_hash
    }

    /// The transactions after the coinbase, in block order.
    pub fn transactions(&self) -> &[TemplateTx] {
        &self.transactions
    }

    /// Subsidy plus fees: what the coinbase may pay out.
    pub fn coinbase_value(&self) -> Amount {
        self.coinbase_value
    }

    /// The network target, checked against [`bits`](Self::bits).
    pub fn target(&self) -> U256 {
        self.target
    }

    /// The compact network target for the header.
    pub fn bits(&self) -> CompactTarget {
        self.bits
    }

    /// The node's clock when it made the template.
    pub fn curtime(&self) -> u32 {
        self.curtime
    }

    /// The earliest header time the block may have (median time past + 1).
    pub fn mintime(&self) -> u32 {
        self.mintime
    }

    /// The height of the block being built.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The witness commitment output script, when segwit is active.
    pub fn default_witness_commitment(&self) -> Option<&ScriptBuf> {
        self.default_witness_commitment.as_ref()
    }

    /// The long-poll token, if the node offers long-polling.
    pub fn longpoll_id(&self) -> Option<&str> {
        self.longpoll_id.as_deref()
    }

    /// The block weight limit, if reported.
    pub fn weight_limit(&self) -> Option<u64> {
        self.weight_limit
    }

    /// The block sigop-cost limit, if reported.
    pub fn sigop_limit(&self) -> Option<u64> {
        self.sigop_limit
    }

    /// A template built directly, for tests that need many transactions.
    #[cfg(test)]
    pub(crate) fn for_tests(
        height: u32,
        previous_block_hash: BlockHash,
        bits: CompactTarget,
        txs: Vec<Transaction>,
        witness_commitment: Option<ScriptBuf>,
    ) -> Self {
        let transactions = txs
            .into_iter()
            .map(|tx| TemplateTx {
                txid: tx.compute_txid(),
                wtxid: tx.compute_wtxid(),
                weight: tx.weight().to_wu(),
                tx,
                fee: Amount::ZERO,
                sigops: None,
                depends: Vec::new(),
            })
            .collect();
        Self {
            version: 0x2000_0000,
            rules: Vec::new(),
            previous_block_hash,
            transactions,
            coinbase_value: Amount::from_sat(50_0000_0000),
            target: target_of(bits),
            bits,
            curtime: 1_700_000_000,
            mintime: 1_699_999_000,
            height,
            default_witness_commitment: witness_commitment,
            longpoll_id: None,
            weight_limit: None,
            sigop_limit: None,
        }
    }
}

/// The 256-bit target a compact target expands to.
pub(crate) fn target_of(bits: CompactTarget) -> U256 {
    U256::from_be_bytes(Target::from_compact(bits).to_be_bytes())
}

impl TryFrom<RawTemplate> for BlockTemplate {
    type Error = TemplateError;

    fn try_from(raw: RawTemplate) -> Result<Self, Self::Error> {
        let target = U256::from_be_bytes(decode_fixed::<32>("target", &raw.target)?);
        let bits = CompactTarget::from_consensus(u32::from_be_bytes(decode_fixed::<4>(
            "bits", &raw.bits,
        )?));
        if target_of(bits) != target {
            return Err(TemplateError::TargetMismatch {
                bits: bits.to_consensus(),
            });
        }
        let coinbase_value = Amount::from_sat(raw.coinbasevalue);
        if coinbase_value > Amount::MAX_MONEY {
            return Err(TemplateError::OutOfRange {
                field: "coinbasevalue",
                value: raw.coinbasevalue,
            });
        }
        // Height 0 is the genesis block, which is never mined from a template;
        // BIP34 heights are script numbers, so they stay below 2^31.
        let height = u32::try_from(raw.height)
            .ok()
            .filter(|h| (1..=i32::MAX.cast_unsigned()).contains(h))
            .ok_or(TemplateError::OutOfRange {
                field: "height",
                value: raw.height,
            })?;
        let default_witness_commitment = raw
            .default_witness_commitment
            .as_deref()
            .map(|hex| {
                let script = decode("default_witness_commitment", hex)?;
                if script.len() != 38 || !script.starts_with(&WITNESS_COMMITMENT_PREFIX) {
                    return Err(TemplateError::BadWitnessCommitment);
                }
                Ok(ScriptBuf::from_bytes(script))
            })
            .transpose()?;
        let transactions = raw
            .transactions
            .into_iter()
            .enumerate()
            .map(|(index, raw)| check_tx(index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            version: raw.version.cast_unsigned(),
            rules: raw.rules,
            previous_block_hash: raw.previousblockhash,
            transactions,
            coinbase_value,
            target,
            bits,
            curtime: header_time("curtime", raw.curtime)?,
            mintime: header_time("mintime", raw.mintime)?,
            height,
            default_witness_commitment,
            longpoll_id: raw.longpollid,
            weight_limit: raw.weightlimit,
            sigop_limit: raw.sigoplimit,
        })
    }
}

fn check_tx(index: usize, raw: RawTemplateTx) -> Result<TemplateTx, TemplateError> {
    let bytes = decode("transactions[].data", &raw.data)?;
    let tx: Transaction = encode::deserialize(&bytes)
        .map_err(|source| TemplateError::BadTransaction { index, source })?;
    let txid = tx.compute_txid();
    if txid != raw.txid {
        return Err(TemplateError::TxidMismatch {
            index,
            reported: raw.txid,
            computed: txid,
        });
    }
    let wtxid = tx.compute_wtxid();
    if wtxid != raw.hash {
        return Err(TemplateError::WtxidMismatch {
            index,
            reported: raw.hash,
            computed: wtxid,
        });
    }
    Ok(TemplateTx {
        tx,
        txid,
        wtxid,
        fee: Amount::from_sat(raw.fee),
        weight: raw.weight,
        sigops: raw.sigops,
        depends: raw.depends,
    })
}

fn header_time(field: &'static str, value: u64) -> Result<u32, TemplateError> {
    u32::try_from(value).map_err(|_| TemplateError::OutOfRange { field, value })
}

fn decode(field: &'static str, hex: &str) -> Result<Vec<u8>, TemplateError> {
    hex::decode(hex).map_err(|_| TemplateError::BadHex { field })
}

fn decode_fixed<const N: usize>(field: &'static str, hex: &str) -> Result<[u8; N], TemplateError> {
    let bytes = decode(field, hex)?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| TemplateError::BadLength {
        field,
        expected: N,
        got,
    })
}

#[cfg(test)]
mod tests;
