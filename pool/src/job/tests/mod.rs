//! Job tests against real mainnet blocks, a real pool's job, and bitcoind-shaped
//! regtest templates. Fixture sources are listed in `pool/tests/fixtures/README.md`.

mod declared;
mod mainnet;
mod regtest;

use super::*;
use serde_json::Value;

pub(crate) const PUBLIC_POOL: &str = include_str!("../../../tests/fixtures/public_pool_share.json");

/// The parts of a `mining.notify`, decoded.
pub(crate) struct Notify {
    pub(crate) prev_hash: BlockHash,
    pub(crate) coinbase1: Vec<u8>,
    pub(crate) coinbase2: Vec<u8>,
    pub(crate) merkle_branch: Vec<[u8; 32]>,
    pub(crate) version: u32,
    pub(crate) bits: CompactTarget,
    pub(crate) ntime: u32,
    pub(crate) extranonce2_len: usize,
}

pub(crate) fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("valid hex")
}

pub(crate) fn hash32(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

pub(crate) fn be_u32(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().expect("a hex string"), 16).expect("8 hex digits")
}

impl Notify {
    /// Decodes the `notify` object of `public_pool_share.json`.
    pub(crate) fn from_fixture(fixture: &Value) -> Self {
        let n = &fixture["notify"];
        // Stratum's prevhash: undo the per-word byte reversal.
        let mut prev = hash32(&n["prevhash"]);
        for word in prev.chunks_exact_mut(4) {
            word.reverse();
        }
        Self {
            prev_hash: BlockHash::from_byte_array(prev),
            coinbase1: unhex(&n["coinbase1"]),
            coinbase2: unhex(&n["coinbase2"]),
            merkle_branch: n["merkle_branch"]
                .as_array()
                .expect("a list")
                .iter()
                .map(hash32)
                .collect(),
            version: be_u32(&n["version"]),
            bits: CompactTarget::from_consensus(be_u32(&n["nbits"])),
            ntime: be_u32(&n["ntime"]),
            extranonce2_len: unhex(&fixture["submit"]["extranonce2"]).len(),
        }
    }
}

/// The share-log head the tests' jobs commit to.
pub(crate) const LOG_HEAD: B256 = B256::repeat_byte(0x1c);

/// A connection's binding for tests: any share target passes.
pub(crate) fn binding() -> Binding {
    Binding::new(Address::repeat_byte(0xa5), U256::MAX)
}

impl Job {
    /// A job from the parts of a captured `mining.notify`, for checking the
    /// hashing path against real pools. It has no transactions to assemble.
    pub(crate) fn from_notify(notify: &Notify, extranonce1_len: usize) -> Self {
        let coinbase1_state = sha::Midstate::after(&notify.coinbase1);
        let extranonce2_len = notify.extranonce2_len;
        Self {
            id: 0,
            clean_jobs: false,
            height: 0,
            prev_hash: notify.prev_hash,
            stratum_prevhash: stratum_prevhash(notify.prev_hash),
            version: notify.version,
            bits: notify.bits,
            ntime: notify.ntime,
            mintime: notify.ntime,
            network_target: crate::template::target_of(notify.bits),
            coinbase_value: Sats::ZERO,
            longpoll_id: None,
            extranonce1_len,
            extranonce2_len,
            coinbase: Coinbase {
                tx: Transaction {
                    version: bitcoin::transaction::Version::TWO,
                    lock_time: bitcoin::absolute::LockTime::ZERO,
                    input: Vec::new(),
                    output: Vec::new(),
                },
                script_sig_prefix: Vec::new(),
                coinbase1: notify.coinbase1.clone(),
                coinbase2_prefix: notify.coinbase2.clone(),
                coinbase2_suffix: Vec::new(),
            },
            coinbase1_state,
            merkle_branch: notify.merkle_branch.clone(),
            witness_commitment: false,
            transactions: Vec::new().into(),
            // As before declared jobs: tests assemble blocks from these.
            knows_transactions: true,
            declared: false,
            log_head: B256::ZERO,
            binds: false,
            notify_lines: Default::default(),
            built: std::time::Instant::now(),
        }
    }
}
