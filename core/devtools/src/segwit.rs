//! Segwit transactions built and signed with rust-bitcoin, for tests that need
//! real witness data in the mempool (and so a witness commitment in the
//! template) without relying on bitcoind's wallet to make them.

use crate::{Bitcoind, BitcoindError};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    Address, Amount, CompressedPublicKey, Network, OutPoint, PrivateKey, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness, absolute::LockTime,
};
use std::str::FromStr;

/// Why a segwit spend could not be built or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegwitError {
    /// bitcoind refused a call.
    #[error(transparent)]
    Node(#[from] BitcoindError),
    /// bitcoind's answer was not what the call documents.
    #[error("unexpected answer from bitcoind: {0}")]
    Answer(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A P2WPKH key that owns coinbase outputs on a regtest node and spends them
/// with transactions it signs itself (BIP143 sighash, ECDSA, low-R).
pub struct SegwitWallet {
    secp: Secp256k1<All>,
    key: SecretKey,
    public: CompressedPublicKey,
    address: Address,
    /// Coinbase outputs paid to [`Self::address`], in the order mined.
    coinbases: Vec<Txid>,
}

impl std::fmt::Debug for SegwitWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegwitWallet")
            .field("address", &self.address)
            .field("coinbases", &self.coinbases.len())
            .finish_non_exhaustive()
    }
}

/// The fee every spend pays, in satoshis (about 10 sat/vB for one input and one output).
pub const SPEND_FEE_SATS: u64 = 1_100;

impl SegwitWallet {
    /// A wallet whose secret key is 32 bytes of `seed` (1..=255; test keys only).
    pub fn new(seed: u8) -> Result<Self, SegwitError> {
        let secp = Secp256k1::new();
        let key =
            SecretKey::from_slice(&[seed; 32]).map_err(|e| SegwitError::Sign(e.to_string()))?;
        let public =
            CompressedPublicKey::from_private_key(&secp, &PrivateKey::new(key, Network::Regtest))
                .map_err(|e| SegwitError::Sign(e.to_string()))?;
        let address = Address::p2wpkh(&public, Network::Regtest);
        Ok(Self {
            secp,
            key,
            public,
            address,
            coinbases: Vec::new(),
        })
    }

    /// The wallet's regtest bech32 address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Mines `blocks` blocks paying their coinbase to this wallet. They become
    /// spendable after 100 more blocks.
    pub fn mine_coinbases(&mut self, node: &Bitcoind, blocks: u32) -> Result<(), SegwitError> {
        let hashes = node.cli(&[
            "generatetoaddress",
            &blocks.to_string(),
            &self.address.to_string(),
        ])?;
        let hashes: Vec<String> =
            serde_json::from_str(&hashes).map_err(|e| SegwitError::Answer(e.to_string()))?;
        for hash in hashes {
            let block: serde_json::Value =
                serde_json::from_str(&node.cli(&["getblock", &hash, "1"])?)
                    .map_err(|e| SegwitError::Answer(e.to_string()))?;
            let txid = block["tx"][0]
                .as_str()
                .and_then(|t| Txid::from_str(t).ok())
                .ok_or_else(|| SegwitError::Answer(format!("block {hash} has no coinbase txid")))?;
            self.coinbases.push(txid);
        }
        Ok(())
    }

    /// Signs a one-input, one-output P2WPKH spend of `outpoint` (worth `value`)
    /// back to this wallet, paying [`SPEND_FEE_SATS`].
    pub fn sign_spend(
        &self,
        outpoint: OutPoint,
        value: Amount,
    ) -> Result<Transaction, SegwitError> {
        let fee = Amount::from_sat(SPEND_FEE_SATS);
        let out = value
            .checked_sub(fee)
            .ok_or_else(|| SegwitError::Sign(format!("{value} does not cover the fee")))?;
        let script = self.address.script_pubkey();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::default(),
            }],
            output: vec![TxOut {
                value: out,
                script_pubkey: script.clone(),
            }],
        };
        let mut cache = SighashCache::new(&mut tx);
        let sighash = cache
            .p2wpkh_signature_hash(0, &script, value, EcdsaSighashType::All)
            .map_err(|e| SegwitError::Sign(e.to_string()))?;
        let signature = self
            .secp
            .sign_ecdsa_low_r(&Message::from(sighash), &self.key);
        let signature = bitcoin::ecdsa::Signature {
            signature,
            sighash_type: EcdsaSighashType::All,
        };
        *cache
            .witness_mut(0)
            .ok_or_else(|| SegwitError::Sign("no input 0".into()))? =
            Witness::p2wpkh(&signature, &self.public.0);
        Ok(tx)
    }

    /// Spends every mature coinbase this wallet mined with a signed segwit
    /// transaction, then spends the first of those again while it is still
    /// unconfirmed (a parent and child in one template), and sends them all
    /// with `sendrawtransaction`. Returns the txids in the order sent.
    pub fn send_spends(&mut self, node: &Bitcoind) -> Result<Vec<Txid>, SegwitError> {
        let mut sent = Vec::new();
        let mut first: Option<(OutPoint, Amount)> = None;
        for txid in std::mem::take(&mut self.coinbases) {
            let out = node.cli(&["gettxout", &txid.to_string(), "0"])?;
            let out: serde_json::Value =
                serde_json::from_str(&out).map_err(|e| SegwitError::Answer(e.to_string()))?;
            if out["confirmations"].as_u64().unwrap_or(0) < 101 {
                return Err(SegwitError::Answer(format!(
                    "coinbase {txid} is not mature yet (mine 100 more blocks)"
                )));
            }
            let value = out["value"]
                .as_f64()
                .and_then(|btc| Amount::from_btc(btc).ok())
                .ok_or_else(|| SegwitError::Answer(format!("gettxout {txid}: no value")))?;
            let tx = self.sign_spend(OutPoint { txid, vout: 0 }, value)?;
            let spent = self.send(node, &tx)?;
            if first.is_none() {
                first = Some((
                    OutPoint {
                        txid: spent,
                        vout: 0,
                    },
                    tx.output[0].value,
                ));
            }
            sent.push(spent);
        }
        if let Some((outpoint, value)) = first {
            let child = self.sign_spend(outpoint, value)?;
            sent.push(self.send(node, &child)?);
        }
        Ok(sent)
    }

    fn send(&self, node: &Bitcoind, tx: &Transaction) -> Result<Txid, SegwitError> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let txid = node.cli(&["sendrawtransaction", &hex])?;
        let txid = Txid::from_str(&txid).map_err(|e| SegwitError::Answer(e.to_string()))?;
        if txid != tx.compute_txid() {
            return Err(SegwitError::Answer(format!(
                "bitcoind reported txid {txid}, expected {}",
                tx.compute_txid()
            )));
        }
        Ok(txid)
    }
}
