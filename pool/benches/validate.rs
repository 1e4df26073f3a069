//! Share validation throughput: one share against a job whose template holds
//! 2,100 transactions, so the merkle branch has 12 levels, as on mainnet.
//!
//! `accepted` cycles through nonces that meet a 1-in-256 share target (so it
//! pays for the work division too); `low_difficulty` is refused after hashing.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use bitcoin::hashes::Hash;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness, absolute,
    transaction,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proofpool_pool::{Binding, BlockTemplate, Job, JobConfig, ShareSubmission, validate};
use proofpool_primitives::{Address, B256, U256};
use std::hint::black_box;

const TRANSACTIONS: u32 = 2100;
const EXTRANONCE1: [u8; 4] = [0x01, 0x02, 0x03, 0x04];
const EXTRANONCE2: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 7];
const VERSION_MASK: u32 = 0x1fff_e000;

fn transaction(i: u32) -> Transaction {
    let mut prev = [0u8; 32];
    prev[..4].copy_from_slice(&i.to_le_bytes());
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array(prev), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0x30u8; 72], [0x02u8; 72]]),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(10_000 + u64::from(i)),
            script_pubkey: ScriptBuf::from_bytes(vec![0x00; 22]),
        }],
    }
}

/// A mainnet-shaped template, built as bitcoind's JSON and parsed like one.
fn template() -> BlockTemplate {
    let transactions: Vec<serde_json::Value> = (0..TRANSACTIONS)
        .map(|i| {
            let tx = transaction(i);
            serde_json::json!({
                "data": bitcoin::consensus::encode::serialize_hex(&tx),
                "txid": tx.compute_txid().to_string(),
                "hash": tx.compute_wtxid().to_string(),
                "depends": [],
                "fee": 1000,
                "sigops": 1,
                "weight": tx.weight().to_wu(),
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "version": 0x2000_0000,
        "rules": ["csv", "!segwit", "taproot"],
        "previousblockhash": "00000000000000000001a0a448d6cf2546b06801389cc030b2b18c6491266815",
        "transactions": transactions,
        "coinbasevalue": 312_500_000 + 1000 * u64::from(TRANSACTIONS),
        "target": "000000000000000000023a040000000000000000000000000000000000000000",
        "bits": "17023a04",
        "curtime": 1_750_000_000,
        "mintime": 1_749_990_000,
        "height": 900_000,
        "default_witness_commitment": "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9",
    }))
    .expect("the benchmark template parses")
}

fn submission(job: &Job, nonce: u32) -> ShareSubmission<'static> {
    ShareSubmission {
        extranonce2: &EXTRANONCE2,
        ntime: job.ntime(),
        nonce,
        version_bits: Some(0x0040_0000),
    }
}

fn bench(c: &mut Criterion) {
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x42; 20]);
    let job = Job::new(
        1,
        &template(),
        &JobConfig::new(ScriptBuf::from_bytes(script)),
        true,
        B256::repeat_byte(0x1c),
    )
    .expect("the benchmark job builds");
    assert_eq!(job.merkle_branch().len(), 12);
    let now = job.ntime();

    // A 1-in-256 target, and nonces that meet it; the connection's coinbase
    // commits to its miner and that target.
    let share_target = Binding::new(Address::repeat_byte(0xa5), U256::MAX >> 8);
    let impossible = Binding::new(Address::repeat_byte(0xa5), U256::from(1u8));
    let winners: Vec<u32> = (0..)
        .filter(|&n| {
            validate(
                &job,
                &EXTRANONCE1,
                &submission(&job, n),
                VERSION_MASK,
                &share_target,
                now,
            )
            .is_ok()
        })
        .take(64)
        .collect();

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("accepted", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % winners.len();
            let sub = submission(&job, winners[i]);
            let share = validate(
                black_box(&job),
                black_box(&EXTRANONCE1),
                black_box(&sub),
                VERSION_MASK,
                &share_target,
                now,
            );
            black_box(share.expect("a winning nonce"))
        });
    });
    group.bench_function("low_difficulty", |b| {
        let mut nonce = 0u32;
        b.iter(|| {
            nonce = nonce.wrapping_add(1);
            let sub = submission(&job, nonce);
            let share = validate(
                black_box(&job),
                black_box(&EXTRANONCE1),
                black_box(&sub),
                VERSION_MASK,
                &impossible,
                now,
            );
            black_box(share.expect_err("no hash meets a target of 1"))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
