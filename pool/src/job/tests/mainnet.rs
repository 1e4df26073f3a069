//! The streaming hash path rebuilds real mainnet headers and a real pool's job.

use super::*;
use bitcoin::Witness;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::sha256d;

const B0C5_HEX: &str = include_str!("../../../tests/fixtures/mainnet_block_00000000b0c5a240.hex");
const BLOCK_100000: &str = include_str!("../../../tests/fixtures/mainnet_block_100000.json");
const BLOCK_881423: &str = include_str!("../../../tests/fixtures/mainnet_block_881423.json");

fn display_hash(v: &Value) -> [u8; 32] {
    let mut h = hash32(v);
    h.reverse();
    h
}

/// Splits a real coinbase (non-witness serialization) at `at` into
/// coinbase1 ‖ en1 ‖ en2 ‖ coinbase2 and rebuilds the block header through the
/// job's streaming path; returns the header.
fn rebuild_header(
    coinbase: &[u8],
    at: usize,
    en1_len: usize,
    en2_len: usize,
    branch: Vec<[u8; 32]>,
    header: &Header,
) -> [u8; 80] {
    let (coinbase1, rest) = coinbase.split_at(at);
    let (en1, rest) = rest.split_at(en1_len);
    let (en2, coinbase2) = rest.split_at(en2_len);
    let notify = Notify {
        prev_hash: header.prev_blockhash,
        coinbase1: coinbase1.to_vec(),
        coinbase2: coinbase2.to_vec(),
        merkle_branch: branch,
        version: header.version.to_consensus().cast_unsigned(),
        bits: header.bits,
        ntime: header.time,
        extranonce2_len: en2_len,
    };
    let job = Job::from_notify(&notify, en1_len);
    let txid = job.coinbase_txid(en1, en2, &binding());
    assert_eq!(txid, sha256d::Hash::hash(coinbase).to_byte_array());
    assert_eq!(job.merkle_root(txid), header.merkle_root.to_byte_array());
    job.header(
        &binding(),
        en1,
        en2,
        header.time,
        header.nonce,
        job.version(),
    )
}

#[test]
fn rebuilds_mainnet_block_00000000b0c5a240() {
    let block: Block = deserialize(&hex::decode(B0C5_HEX.trim()).unwrap()).unwrap();
    assert_eq!(block.txdata.len(), 2);
    let coinbase = serialize(&block.txdata[0]);
    // scriptSig 04ffff001d 026e04 starts at byte 42: take its last 4 bytes
    // (`1d 02 6e 04`) as a 2-byte extranonce1 and a 2-byte extranonce2.
    let txids: Vec<[u8; 32]> = block.txdata[1..]
        .iter()
        .map(|tx| tx.compute_txid().to_byte_array())
        .collect();
    let header = rebuild_header(&coinbase, 46, 2, 2, merkle::branch(&txids), &block.header);
    assert_eq!(header[..], serialize(&block.header)[..]);
    assert_eq!(
        BlockHash::from_byte_array(sha256d::Hash::hash(&header).to_byte_array()).to_string(),
        "00000000b0c5a240b2a61d2e75692224efd4cbecdf6eaf4cc2cf477ca7c270e7"
    );
}

#[test]
fn rebuilds_mainnet_block_100000() {
    let f: Value = serde_json::from_str(BLOCK_100000).unwrap();
    let coinbase = unhex(&f["coinbase_tx"]);
    let txids: Vec<[u8; 32]> = f["txids"]
        .as_array()
        .unwrap()
        .iter()
        .map(display_hash)
        .collect();
    assert_eq!(sha256d::Hash::hash(&coinbase).to_byte_array(), txids[0]);
    let header = Header {
        version: Version::from_consensus(f["version"].as_i64().unwrap() as i32),
        prev_blockhash: BlockHash::from_byte_array(display_hash(&f["prev_blockhash"])),
        merkle_root: TxMerkleNode::from_byte_array(display_hash(&f["merkle_root"])),
        time: f["time"].as_u64().unwrap() as u32,
        bits: CompactTarget::from_consensus(be_u32(&f["bits"])),
        nonce: f["nonce"].as_u64().unwrap() as u32,
    };
    // scriptSig 044c86041b 020602: the last 4 bytes as 1 + 3 bytes of extranonce.
    let rebuilt = rebuild_header(&coinbase, 46, 1, 3, merkle::branch(&txids[1..]), &header);
    assert_eq!(merkle::branch(&txids[1..]).len(), 2);
    let hash = BlockHash::from_byte_array(sha256d::Hash::hash(&rebuilt).to_byte_array());
    assert_eq!(hash.to_string(), f["block_hash"].as_str().unwrap());
    assert_eq!(hash, header.block_hash());
}

#[test]
fn rebuilds_mainnet_block_881423_with_a_segwit_coinbase() {
    let f: Value = serde_json::from_str(BLOCK_881423).unwrap();
    let mut tx: Transaction = deserialize(&unhex(&f["coinbase_tx_witness"])).unwrap();
    assert_eq!(tx.input[0].witness.len(), 1);
    // Stratum hashes the non-witness serialization.
    tx.input[0].witness = Witness::new();
    let coinbase = serialize(&tx);
    let branch: Vec<[u8; 32]> = f["merkle_branch"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash32)
        .collect();
    assert_eq!(branch.len(), 11); // 1,514 transactions
    let header = Header {
        version: Version::from_consensus(f["version"].as_i64().unwrap() as i32),
        prev_blockhash: BlockHash::from_byte_array(display_hash(&f["prev_blockhash"])),
        merkle_root: TxMerkleNode::from_byte_array(display_hash(&f["merkle_root"])),
        time: f["time"].as_u64().unwrap() as u32,
        bits: CompactTarget::from_consensus(be_u32(&f["bits"])),
        nonce: f["nonce"].as_u64().unwrap() as u32,
    };
    // The pool's extranonces sit at bytes 52..60 of the non-witness coinbase.
    let rebuilt = rebuild_header(&coinbase, 52, 4, 4, branch, &header);
    let hash = BlockHash::from_byte_array(sha256d::Hash::hash(&rebuilt).to_byte_array());
    assert_eq!(hash.to_string(), f["block_hash"].as_str().unwrap());
}

#[test]
fn stratum_prevhash_matches_a_real_pool() {
    let f: Value = serde_json::from_str(PUBLIC_POOL).unwrap();
    let notify = Notify::from_fixture(&f);
    assert_eq!(
        notify.prev_hash.to_string(),
        "000000000000000000015296bc96391d0d67f4a301f2d4fc6db962c16b6455fd"
    );
    let job = Job::from_notify(&notify, 4);
    assert_eq!(
        job.stratum_prevhash(),
        f["notify"]["prevhash"].as_str().unwrap()
    );
}
