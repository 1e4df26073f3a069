//! The coinbase transaction and its Stratum split.
//!
//! The scriptSig is
//! `<height> <pool tag> <job id: 8 bytes LE> <push(en1 + en2)> en1 en2`:
//! the BIP34 height as `CScript() << height` writes it, the operator's tag,
//! the job id (so two jobs never share a coinbase, see [`super::Job`]), and one
//! push opcode whose length covers both extranonces, which the miner fills in.
//! `coinbase1` is the non-witness serialization up to and including that
//! opcode, `coinbase2` everything after the extranonces.
//!
//! The outputs are the payout, the connection's share commitment
//! (docs/share-commitment.md) and the witness commitment if any. The share
//! commitment differs per connection, so `coinbase2` is kept in two parts
//! around it: `coinbase2_prefix` (sequence, output count, payout output) and
//! `coinbase2_suffix` (the witness commitment output and the lock time).

use super::JobError;
use bitcoin::absolute::LockTime;
use bitcoin::script::{Builder, PushBytes};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use proofpool_epoch::share_commitment::{OUTPUT_LEN, SCRIPT_LEN};

/// Consensus bounds on a coinbase scriptSig's size.
pub(crate) const SCRIPT_SIG_MAX: usize = 100;

/// The longest height push: a 4-byte script number (heights below 2^31) and its opcode.
const HEIGHT_PUSH_MAX: usize = 5;

/// The job id push: 8 bytes and their opcode.
const JOB_ID_PUSH: usize = 9;

/// Bytes before the serialized scriptSig in a one-input transaction:
/// version (4), input count (1), outpoint (36), scriptSig length (1, as it is
/// at most 100).
const SCRIPT_SIG_OFFSET: usize = 4 + 1 + 36 + 1;

/// The BIP34 height push, exactly as bitcoind's `CScript() << height`: `OP_1`
/// to `OP_16` for heights 1 to 16, else the minimal script number.
pub(crate) fn height_push(height: u32) -> ScriptBuf {
    Builder::new().push_int(i64::from(height)).into_script()
}

/// Bytes a push of `len` bytes takes, opcode included.
fn push_len(len: usize) -> usize {
    match len {
        0 => 0, // an empty tag is left out, not pushed
        1..=75 => 1 + len,
        76..=255 => 2 + len,
        _ => 3 + len,
    }
}

/// The longest pool tag that fits beside any height, the job id and
/// `extranonce_len` bytes of extranonce.
pub(crate) fn max_tag_len(extranonce_len: usize) -> usize {
    let budget = SCRIPT_SIG_MAX.saturating_sub(HEIGHT_PUSH_MAX + JOB_ID_PUSH + 1 + extranonce_len);
    (0..=budget)
        .rev()
        .find(|&len| push_len(len) <= budget)
        .unwrap_or(0)
}

/// A coinbase with zeroed extranonces, and where they go.
#[derive(Debug, Clone)]
pub(crate) struct Coinbase {
    /// The transaction, without witness, extranonces zeroed.
    pub(crate) tx: Transaction,
    /// The scriptSig up to and including the extranonce push opcode.
    pub(crate) script_sig_prefix: Vec<u8>,
    /// Non-witness serialization before the extranonces.
    pub(crate) coinbase1: Vec<u8>,
    /// Non-witness serialization after the extranonces, up to the share
    /// commitment output.
    pub(crate) coinbase2_prefix: Vec<u8>,
    /// Non-witness serialization after the share commitment output.
    pub(crate) coinbase2_suffix: Vec<u8>,
}

/// What the coinbase pays and commits to.
pub(crate) struct CoinbaseSpec<'a> {
    pub(crate) height: u32,
    pub(crate) job_id: u64,
    pub(crate) pool_tag: &'a [u8],
    pub(crate) extranonce_len: usize,
    pub(crate) payout_script: &'a ScriptBuf,
    pub(crate) value: Amount,
    pub(crate) witness_commitment: Option<&'a ScriptBuf>,
}

impl Coinbase {
    /// Builds the coinbase. The caller has checked the configuration, so the
    /// scriptSig fits; this checks again rather than trusting it.
    pub(crate) fn new(spec: &CoinbaseSpec<'_>) -> Result<Self, JobError> {
        let tag_too_long = || JobError::TagTooLong {
            len: spec.pool_tag.len(),
            max: max_tag_len(spec.extranonce_len),
        };
        let mut builder = Builder::from(height_push(spec.height).into_bytes());
        if !spec.pool_tag.is_empty() {
            let tag = <&PushBytes>::try_from(spec.pool_tag).map_err(|_| tag_too_long())?;
            builder = builder.push_slice(tag);
        }
        builder = builder.push_slice(spec.job_id.to_le_bytes());
        let mut script_sig_prefix = builder.into_bytes();
        let push = u8::try_from(spec.extranonce_len)
            .ok()
            .filter(|len| (1..=75).contains(len))
            .ok_or(JobError::InvalidExtranonceLen {
                len: spec.extranonce_len,
            })?;
        script_sig_prefix.push(push);
        let script_sig_len = script_sig_prefix.len() + spec.extranonce_len;
        if script_sig_len > SCRIPT_SIG_MAX {
            return Err(tag_too_long());
        }
        let mut script_sig = script_sig_prefix.clone();
        script_sig.resize(script_sig_len, 0);

        let mut output = vec![
            TxOut {
                value: spec.value,
                script_pubkey: spec.payout_script.clone(),
            },
            // Each connection's share commitment goes here.
            TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(vec![0; SCRIPT_LEN]),
            },
        ];
        let mut suffix_len = 4; // the lock time
        if let Some(commitment) = spec.witness_commitment {
            let out = TxOut {
                value: Amount::ZERO,
                script_pubkey: commitment.clone(),
            };
            suffix_len += bitcoin::consensus::serialize(&out).len();
            output.push(out);
        }
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output,
        };
        // No input has a witness, so this is the legacy (txid) serialization.
        let bytes = bitcoin::consensus::serialize(&tx);
        let split = SCRIPT_SIG_OFFSET + script_sig_prefix.len();
        let coinbase1 = bytes
            .get(..split)
            .expect("the serialization holds the whole scriptSig")
            .to_vec();
        let coinbase2 = bytes
            .get(split + spec.extranonce_len..)
            .expect("the serialization holds the whole scriptSig");
        let suffix_at = coinbase2.len() - suffix_len;
        let coinbase2_prefix = coinbase2[..suffix_at - OUTPUT_LEN].to_vec();
        let coinbase2_suffix = coinbase2[suffix_at..].to_vec();
        Ok(Self {
            tx,
            script_sig_prefix,
            coinbase1,
            coinbase2_prefix,
            coinbase2_suffix,
        })
    }

    /// The coinbase with the given extranonces and share commitment script,
    /// and the 32-byte zero witness reserved value when the block commits to
    /// witnesses (BIP141).
    pub(crate) fn with_extranonces(
        &self,
        en1: &[u8],
        en2: &[u8],
        commitment: &[u8; SCRIPT_LEN],
        witness: bool,
    ) -> Transaction {
        let mut tx = self.tx.clone();
        if let Some(out) = tx.output.get_mut(1) {
            out.script_pubkey = ScriptBuf::from_bytes(commitment.to_vec());
        }
        let mut script_sig = Vec::with_capacity(SCRIPT_SIG_MAX);
        script_sig.extend_from_slice(&self.script_sig_prefix);
        script_sig.extend_from_slice(en1);
        script_sig.extend_from_slice(en2);
        if let Some(input) = tx.input.first_mut() {
            input.script_sig = ScriptBuf::from_bytes(script_sig);
            if witness {
                input.witness = Witness::from_slice(&[[0u8; 32]]);
            }
        }
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip34_heights_match_bitcoind() {
        // CScript() << n: OP_1..OP_16 for 1..16, else a minimal little-endian
        // script number, with a 0x00 pad when the top bit would read as a sign.
        let cases: [(u32, &str); 12] = [
            (1, "51"),
            (16, "60"),
            (17, "0111"),
            (127, "017f"),
            (128, "028000"),
            (255, "02ff00"),
            (256, "020001"),
            (32767, "02ff7f"),
            (32768, "03008000"),
            (8_388_607, "03ffff7f"),
            (8_388_608, "0400008000"),
            (840_000, "0340d10c"),
        ];
        for (height, hex) in cases {
            assert_eq!(
                hex::encode(height_push(height).as_bytes()),
                hex,
                "height {height}"
            );
        }
    }

    #[test]
    fn the_tag_budget_leaves_room_for_the_worst_height() {
        // 100 - 5 (height) - 9 (job id) - 1 (extranonce push) - 12 = 73 bytes,
        // one of which is the tag's own push opcode.
        assert_eq!(max_tag_len(12), 72);
        assert_eq!(max_tag_len(2), 81); // 83 left: a PUSHDATA1 of 81 bytes
        assert_eq!(push_len(0), 0);
        assert_eq!(push_len(75), 76);
        assert_eq!(push_len(76), 78);
    }

    #[test]
    fn splits_around_the_extranonces() {
        let payout = ScriptBuf::from_bytes(vec![0x51]);
        let spec = CoinbaseSpec {
            height: 840_000,
            job_id: 0x0102,
            pool_tag: b"/proofpool/",
            extranonce_len: 12,
            payout_script: &payout,
            value: Amount::from_sat(312_500_000),
            witness_commitment: None,
        };
        let cb = Coinbase::new(&spec).unwrap();
        let expected_prefix = "0340d10c0b2f70726f6f66706f6f6c2f0802010000000000000c";
        assert_eq!(hex::encode(&cb.script_sig_prefix), expected_prefix);
        let commitment = [0x6a; SCRIPT_LEN];
        let mut whole = cb.coinbase1.clone();
        whole.extend_from_slice(&[0xaa; 12]);
        whole.extend_from_slice(&cb.coinbase2_prefix);
        whole.extend_from_slice(&[0; 8]);
        whole.push(SCRIPT_LEN as u8);
        whole.extend_from_slice(&commitment);
        whole.extend_from_slice(&cb.coinbase2_suffix);
        let tx: Transaction = bitcoin::consensus::deserialize(&whole).unwrap();
        let script_sig = tx.input[0].script_sig.as_bytes();
        assert_eq!(&script_sig[..26], &cb.script_sig_prefix[..]);
        assert_eq!(&script_sig[26..], &[0xaa; 12]);
        assert_eq!(
            tx,
            cb.with_extranonces(&[0xaa; 4], &[0xaa; 8], &commitment, false)
        );
        // The payout, then the commitment; the suffix is the lock time.
        assert_eq!(tx.output.len(), 2);
        assert_eq!(tx.output[1].script_pubkey.as_bytes(), &commitment[..]);
        assert_eq!(cb.coinbase2_suffix, [0; 4]);
        // The scriptSig is all pushes, and the extranonce is its last one.
        let pushes: Vec<_> = tx.input[0]
            .script_sig
            .instructions()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(pushes.len(), 4);
        assert_eq!(tx.input[0].sequence, Sequence::MAX);
        assert!(tx.is_coinbase());
    }
}
