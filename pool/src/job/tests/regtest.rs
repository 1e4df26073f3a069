//! Jobs from bitcoind-shaped regtest templates: assembled blocks that bitcoind
//! would accept, configuration errors, and a property test against rust-bitcoin.

use super::*;
use crate::template::BlockTemplate;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::sha256d;
use bitcoin::{Amount, OutPoint, Sequence, TxIn, TxOut, Txid, Witness};
use proptest::prelude::*;

const GBT_EMPTY: &str = include_str!("../../../tests/fixtures/regtest_gbt_empty.json");
const GBT_TXS: &str = include_str!("../../../tests/fixtures/regtest_gbt_txs.json");

fn config() -> JobConfig {
    // A P2WPKH payout script.
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x11; 20]);
    JobConfig::new(ScriptBuf::from_bytes(script))
}

fn template(json: &str) -> BlockTemplate {
    serde_json::from_str(json).expect("fixture parses")
}

/// Assembles a block for the job, round-trips it through hex and checks it the
/// way bitcoind would before looking at proof of work.
fn assemble_and_check(job: &Job, t: &BlockTemplate) -> Block {
    let (en1, en2) = ([1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12]);
    let (ntime, nonce, version) = (job.ntime() + 3, 0x1234_5678, job.version() | 0x2000);
    let hex = job
        .block_hex(&binding(), &en1, &en2, ntime, nonce, version)
        .unwrap();
    let block: Block = deserialize(&hex::decode(&hex).unwrap()).unwrap();
    assert_eq!(
        block,
        job.assemble_block(&binding(), &en1, &en2, ntime, nonce, version)
            .unwrap()
    );
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    if t.height() > 16 {
        assert_eq!(block.bip34_block_height().unwrap(), u64::from(t.height()));
    } else {
        // rust-bitcoin only reads data pushes; bitcoind writes OP_1..OP_16 here.
        let first = block.txdata[0].input[0].script_sig.as_bytes()[0];
        assert_eq!(u32::from(first), 0x50 + t.height());
    }
    assert_eq!(
        serialize(&block.header)[..],
        job.header(&binding(), &en1, &en2, ntime, nonce, version)[..]
    );
    assert_eq!(block.header.prev_blockhash, t.previous_block_hash());
    assert_eq!(block.header.bits, t.bits());
    let coinbase = &block.txdata[0];
    assert!(coinbase.is_coinbase());
    assert_eq!(coinbase.output[0].value, t.coinbase_value());
    assert_eq!(coinbase.output[0].script_pubkey, config().payout_script);
    // The second output is the connection's share commitment: its miner,
    // its compact target and the job's share-log head, worth nothing.
    let commitment =
        ShareCommitment::from_script(coinbase.output[1].script_pubkey.as_bytes()).unwrap();
    assert_eq!(commitment.miner, binding().miner());
    assert_eq!(commitment.target_bits, binding().target_bits());
    assert_eq!(commitment.log_head, LOG_HEAD);
    assert_eq!(coinbase.output[1].value, Amount::ZERO);
    let script_sig = coinbase.input[0].script_sig.as_bytes();
    assert!(script_sig.len() <= 100);
    assert!(script_sig.ends_with(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    assert_eq!(
        block.txdata[1..]
            .iter()
            .map(Transaction::compute_txid)
            .collect::<Vec<_>>(),
        t.transactions()
            .iter()
            .map(|tx| tx.txid)
            .collect::<Vec<_>>()
    );
    block
}

#[test]
fn assembles_a_valid_empty_regtest_block() {
    let t = template(GBT_EMPTY);
    let job = Job::new(1, &t, &config(), true, LOG_HEAD).unwrap();
    assert!(job.merkle_branch().is_empty());
    assert_eq!(job.ntime(), 1_718_000_000);
    assert!(job.clean_jobs());
    let block = assemble_and_check(&job, &t);
    // Height 1 is pushed as OP_1, as bitcoind's own miner does.
    assert_eq!(block.txdata[0].input[0].script_sig.as_bytes()[0], 0x51);
    assert_eq!(
        block.txdata[0].input[0].witness.to_vec(),
        vec![vec![0u8; 32]]
    );
    assert_eq!(
        block.txdata[0].output[2].script_pubkey,
        *t.default_witness_commitment().unwrap()
    );
    assert_eq!(block.txdata[0].output[2].value, Amount::ZERO);
}

#[test]
fn assembles_a_valid_regtest_block_with_transactions() {
    let t = template(GBT_TXS);
    let job = Job::new(7, &t, &config(), false, LOG_HEAD).unwrap();
    // Five leaves: coinbase and four transactions.
    assert_eq!(job.merkle_branch().len(), 3);
    // mintime is later than curtime in this template.
    assert_eq!(job.ntime(), 1_718_000_301);
    assert_eq!(job.coinbase_value(), Sats(2_500_000_000 + 41_375));
    assert_eq!(job.transactions().len(), 4);
    let block = assemble_and_check(&job, &t);
    assert_eq!(block.txdata.len(), 5);
    // Payout, share commitment, witness commitment.
    assert_eq!(block.txdata[0].output.len(), 3);
}

#[test]
fn without_a_witness_commitment_the_coinbase_has_no_witness() {
    let mut raw: crate::template::RawTemplate = serde_json::from_str(GBT_EMPTY).unwrap();
    raw.default_witness_commitment = None;
    let t = BlockTemplate::try_from(raw).unwrap();
    let job = Job::new(1, &t, &config(), true, LOG_HEAD).unwrap();
    let block = job
        .assemble_block(&binding(), &[0; 4], &[0; 8], job.ntime(), 0, job.version())
        .unwrap();
    assert!(block.txdata[0].input[0].witness.is_empty());
    // Payout and share commitment.
    assert_eq!(block.txdata[0].output.len(), 2);
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
}

#[test]
fn witness_transactions_need_a_commitment() {
    let mut raw: crate::template::RawTemplate = serde_json::from_str(GBT_TXS).unwrap();
    raw.default_witness_commitment = None;
    let t = BlockTemplate::try_from(raw.clone()).unwrap();
    assert_eq!(
        Job::new(1, &t, &config(), true, LOG_HEAD).unwrap_err(),
        JobError::MissingWitnessCommitment
    );
    // Only the legacy transaction left: no commitment needed.
    raw.transactions.drain(..3);
    let t = BlockTemplate::try_from(raw).unwrap();
    let job = Job::new(1, &t, &config(), true, LOG_HEAD).unwrap();
    let block = job
        .assemble_block(&binding(), &[0; 4], &[0; 8], job.ntime(), 0, job.version())
        .unwrap();
    assert!(block.check_merkle_root() && block.check_witness_commitment());
}

#[test]
fn mines_a_regtest_block_that_meets_its_target() {
    let t = template(GBT_TXS);
    let job = Job::new(3, &t, &config(), true, LOG_HEAD).unwrap();
    let (en1, en2) = ([9, 9, 9, 9], [0; 8]);
    // The regtest target is 2^255-ish: about every second nonce solves it.
    let nonce = (0..64u32)
        .find(|&n| {
            let h = sha256d::Hash::hash(&job.header(
                &binding(),
                &en1,
                &en2,
                job.ntime(),
                n,
                job.version(),
            ));
            U256::from_le_bytes(h.to_byte_array()) <= job.network_target()
        })
        .expect("a solution among 64 nonces");
    let block = job
        .assemble_block(&binding(), &en1, &en2, job.ntime(), nonce, job.version())
        .unwrap();
    assert!(block.header.validate_pow(block.header.target()).is_ok());
}

#[test]
fn every_job_has_its_own_coinbase() {
    let t = template(GBT_TXS);
    let a = Job::new(1, &t, &config(), false, LOG_HEAD).unwrap();
    let b = Job::new(2, &t, &config(), false, LOG_HEAD).unwrap();
    assert_ne!(a.coinbase1(), b.coinbase1());
    assert_ne!(
        a.header(&binding(), &[0; 4], &[0; 8], a.ntime(), 0, a.version()),
        b.header(&binding(), &[0; 4], &[0; 8], b.ntime(), 0, b.version())
    );
    // coinbase1 ends with the push opcode covering both extranonces.
    assert_eq!(a.coinbase1().last(), Some(&12));
    // coinbase2 starts with the input's sequence.
    assert_eq!(a.coinbase2_prefix()[..4], [0xff; 4]);
}

#[test]
fn each_connection_gets_its_own_coinbase_on_one_job() {
    let t = template(GBT_TXS);
    let job = Job::new(4, &t, &config(), false, LOG_HEAD).unwrap();
    let alice = Binding::new(Address::repeat_byte(1), U256::MAX >> 40);
    let bob = Binding::new(Address::repeat_byte(2), U256::MAX >> 40);
    let alice_harder = Binding::new(Address::repeat_byte(1), U256::MAX >> 48);
    let headers: Vec<[u8; 80]> = [alice, bob, alice_harder]
        .iter()
        .map(|b| job.header(b, &[0; 4], &[0; 8], job.ntime(), 0, job.version()))
        .collect();
    assert_ne!(headers[0], headers[1], "another miner, another header");
    assert_ne!(headers[0], headers[2], "another target, another header");
    // The notify line each gets carries its own coinbase2, whole.
    for b in [alice, bob, alice_harder] {
        let mut line = String::new();
        job.push_notify(&mut line, 9, false, &b);
        let coinbase2 = hex::encode(job.coinbase2(&b));
        assert!(line.contains(&format!("\"{coinbase2}\"")), "{line}");
        // The coinbase2 hex holds the address and the compact target.
        assert!(coinbase2.contains(&format!(
            "{}{:08x}{}",
            hex::encode(b.miner()),
            b.target_bits(),
            hex::encode(LOG_HEAD)
        )));
    }
}

#[test]
fn notify_params_carry_the_job() {
    let t = template(GBT_TXS);
    let job = Job::new(9, &t, &config(), false, LOG_HEAD).unwrap();
    let coinbase2 = job.coinbase2(&binding());
    let p = job.notify_params("1f", true, &coinbase2);
    assert_eq!(p.job_id, "1f");
    assert!(p.clean_jobs);
    assert_eq!(p.prevhash_hex, job.stratum_prevhash());
    assert_eq!(p.coinbase1, job.coinbase1());
    assert_eq!(p.coinbase2, &coinbase2[..]);
    assert_eq!(p.merkle_branch, job.merkle_branch());
    assert_eq!(p.version, 0x2000_0000);
    assert_eq!(p.nbits, 0x207f_ffff);
    assert_eq!(p.ntime, job.ntime());
    // Word-swapped: the display hash reversed, then each word reversed again.
    let display = t.previous_block_hash().to_string();
    assert_eq!(&p.prevhash_hex[..8], &display[56..64]);
    assert_eq!(&p.prevhash_hex[56..], &display[..8]);
}

#[test]
fn refuses_bad_configurations() {
    let t = template(GBT_EMPTY);
    type Patch = fn(&mut JobConfig);
    let cases: [(Patch, JobError); 6] = [
        (
            |c| c.extranonce2_len = 0,
            JobError::InvalidExtranonce2Len { len: 0 },
        ),
        (
            |c| c.extranonce2_len = 9,
            JobError::InvalidExtranonce2Len { len: 9 },
        ),
        (
            |c| c.extranonce1_len = 0,
            JobError::InvalidExtranonce1Len { len: 0 },
        ),
        (
            |c| c.extranonce1_len = 9,
            JobError::InvalidExtranonce1Len { len: 9 },
        ),
        (
            |c| c.payout_script = ScriptBuf::new(),
            JobError::EmptyPayoutScript,
        ),
        (
            |c| c.pool_tag = vec![b'x'; 73],
            JobError::TagTooLong { len: 73, max: 72 },
        ),
    ];
    for (patch, expected) in cases {
        let mut cfg = config();
        patch(&mut cfg);
        assert_eq!(cfg.validate(), Err(expected.clone()));
        assert_eq!(Job::new(1, &t, &cfg, true, LOG_HEAD).unwrap_err(), expected);
    }
}

#[test]
fn the_longest_tag_fits_at_the_largest_height() {
    let mut cfg = config();
    cfg.pool_tag = vec![b'x'; cfg.max_tag_len()];
    let mut raw: crate::template::RawTemplate = serde_json::from_str(GBT_EMPTY).unwrap();
    raw.height = i32::MAX as u64;
    let t = BlockTemplate::try_from(raw).unwrap();
    let job = Job::new(u64::MAX, &t, &cfg, true, LOG_HEAD).unwrap();
    let block = job
        .assemble_block(&binding(), &[0; 4], &[0; 8], job.ntime(), 0, job.version())
        .unwrap();
    assert_eq!(block.txdata[0].input[0].script_sig.len(), 100);
    assert_eq!(block.bip34_block_height().unwrap(), i32::MAX as u64);
    // And an empty tag is simply left out.
    cfg.pool_tag.clear();
    let job = Job::new(1, &t, &cfg, true, LOG_HEAD).unwrap();
    assert_eq!(job.coinbase1().len(), 42 + 5 + 9 + 1);
}

#[test]
fn assembly_refuses_extranonces_of_the_wrong_length() {
    let job = Job::new(1, &template(GBT_EMPTY), &config(), true, LOG_HEAD).unwrap();
    assert_eq!(
        job.block_hex(&binding(), &[0; 3], &[0; 8], 0, 0, 0)
            .unwrap_err(),
        JobError::Extranonce1Length {
            expected: 4,
            got: 3
        }
    );
    assert_eq!(
        job.assemble_block(&binding(), &[0; 4], &[0; 9], 0, 0, 0)
            .unwrap_err(),
        JobError::Extranonce2Length {
            expected: 8,
            got: 9
        }
    );
}

#[test]
fn debug_output_is_a_summary() {
    let job = Job::new(5, &template(GBT_TXS), &config(), false, LOG_HEAD).unwrap();
    let text = format!("{job:?}");
    assert!(
        text.contains("id: 5") && text.contains("transactions: 4"),
        "{text}"
    );
}

fn arbitrary_tx(seed: u32) -> Transaction {
    let mut txid = [0u8; 32];
    txid[..4].copy_from_slice(&seed.to_le_bytes());
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array(txid), seed % 7),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[seed.to_be_bytes()]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(u64::from(seed)),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streaming_header_equals_rust_bitcoins_block(
        n_txs in 0u32..40,
        seed in any::<u32>(),
        en1 in any::<[u8; 4]>(),
        en2 in prop::collection::vec(any::<u8>(), 1..=8),
        ntime in any::<u32>(),
        nonce in any::<u32>(),
        version in any::<u32>(),
        height in 1u32..2_000_000,
    ) {
        let txs: Vec<Transaction> = (0..n_txs).map(|i| arbitrary_tx(seed.wrapping_add(i))).collect();
        let commitment = ScriptBuf::from_bytes(
            hex::decode("6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9").unwrap(),
        );
        let t = BlockTemplate::for_tests(
            height,
            BlockHash::from_byte_array([seed as u8; 32]),
            CompactTarget::from_consensus(0x1d00_ffff),
            txs,
            Some(commitment),
        );
        let mut cfg = config();
        cfg.extranonce2_len = en2.len();
        let job = Job::new(u64::from(seed), &t, &cfg, false, LOG_HEAD).unwrap();
        let block = job.assemble_block(&binding(), &en1, &en2, ntime, nonce, version).unwrap();
        let header = job.header(&binding(), &en1, &en2, ntime, nonce, version);
        prop_assert_eq!(
            job.coinbase_txid(&en1, &en2, &binding()),
            block.txdata[0].compute_txid().to_byte_array()
        );
        prop_assert_eq!(
            block.compute_merkle_root().unwrap().to_byte_array(),
            job.merkle_root(job.coinbase_txid(&en1, &en2, &binding()))
        );
        prop_assert_eq!(&header[..], &serialize(&block.header)[..]);
        prop_assert_eq!(
            sha256d::Hash::hash(&header).to_byte_array(),
            block.block_hash().to_byte_array()
        );
        prop_assert!(block.check_merkle_root());
    }
}

#[test]
fn the_cached_notify_line_is_the_formatted_one() {
    let t = template(GBT_TXS);
    let job = Job::new(7, &t, &config(), false, LOG_HEAD).unwrap();
    for clean in [false, true] {
        for (seq, id) in [(1, "1"), (0xff, "ff"), (0x123abc, "123abc")] {
            let mut line = String::from("before\n");
            job.push_notify(&mut line, seq, clean, &binding());
            assert_eq!(
                line,
                format!(
                    "before\n{}",
                    proofpool_stratum::notify(&job.notify_params(
                        id,
                        clean,
                        &job.coinbase2(&binding())
                    ))
                )
            );
        }
    }
}
