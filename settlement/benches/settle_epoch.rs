//! Settling a big epoch, measured (not a timed test: a benchmark binary).
//!
//! Generates a store with `SHARES` shares from `MINERS` miners in epoch 1
//! (written through the real group-commit writer, so the write rate is
//! reported too) and one matured block whose PPLNS window spans them all,
//! then on a real anvil: builds both trees and the epoch file, and runs a
//! full settlement pass to a confirmed commit. Runs on SQLite, and on a
//! throwaway PostgreSQL when `BENCH_POSTGRES=1`.
//!
//! `cargo bench --workspace --bench settle_epoch` (`SHARES=100000` for a quick
//! run). `SCHEME=fpps` (or `pps`) settles the same shares by their expected
//! value instead, every share credited and the block the operator's
//! revenue; those schemes settle with bitcoind, so a regtest node is
//! started and the job builds on its tip (the settler carries its header).

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use proofpool_chain::{DeployParams, DistributorClient};
use proofpool_settlement::{PoolParams, PplnsParams, SettleConfig, Settler};
use proofpool_store::{
    BlockRecord, BlockStatus, JobRecord, NewShare, ShareLog, Store, StoreOptions, WriterConfig,
};
use std::time::{Duration, Instant};

const MINERS: u64 = 10_000;
const EPOCH_SECS: u64 = 3600;

fn scheme() -> proofpool_epoch::Scheme {
    std::env::var("SCHEME")
        .ok()
        .map(|s| s.parse().expect("SCHEME is pplns, pps or fpps"))
        .unwrap_or_default()
}

fn shares() -> u64 {
    std::env::var("SHARES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// The job's previous block (internal byte order) and height: a real
/// regtest tip when the settler has bitcoind, else made up.
type Tip = (B256, u64);

async fn generate(store: &Store, n: u64, genesis: u64, tip: Tip) -> f64 {
    store.init_clock(EPOCH_SECS, genesis).await.unwrap();
    let config = WriterConfig {
        queue_capacity: 200_000,
        ..WriterConfig::default()
    };
    let (log, writer) = ShareLog::spawn(store.clone(), config);
    let net = U256::MAX >> 32;
    log.record_job(JobRecord {
        instance: 0,
        job_id: 1,
        created_ms: genesis * 1000,
        height: tip.1,
        prev_hash: tip.0,
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        template_time: genesis as u32,
        coinbase1: vec![1; 60],
        coinbase2: vec![2; 80],
        coinbase2_suffix: Vec::new(),
        log_head: Default::default(),
        branch: vec![B256::repeat_byte(3); 12],
        network_target: net,
        coinbase_value: 312_500_000,
    });
    let started = Instant::now();
    let mut acks = Vec::with_capacity(100_000);
    for i in 0..n {
        let share = NewShare {
            time_ms: (genesis + 1 + i % 3000) * 1000,
            instance: 0,
            job_id: 1,
            miner: Address::left_padding_from(&(i % MINERS + 1).to_be_bytes()),
            worker: format!("rig{}", i % 4),
            extranonce1: [0, 0, 0, 1],
            extranonce2: i.to_be_bytes().to_vec(),
            ntime: genesis as u32,
            nonce: i as u32,
            version: 0x2000_0000,
            hash: B256::from(U256::from(i + 1)),
            // A millionth of the network's work: the window (X = 1) spans
            // a million shares.
            share_target: net.saturating_mul(U256::from(1_000_000u64)),
            work: U256::from(4_294u64),
            network_target: net,
        };
        loop {
            match log.submit(share.clone()) {
                Ok(ack) => {
                    acks.push(ack);
                    break;
                }
                Err(_) => {
                    for ack in acks.drain(..) {
                        ack.await.unwrap().unwrap();
                    }
                }
            }
        }
        if acks.len() >= 100_000 {
            for ack in acks.drain(..) {
                ack.await.unwrap().unwrap();
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await.unwrap().unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    log.record_block(BlockRecord {
        hash: B256::repeat_byte(0xbb),
        height: tip.1,
        coinbase_value: 312_500_000,
        finder: Address::left_padding_from(&1u64.to_be_bytes()),
        worker: "rig0".into(),
        share_seq: n,
        instance: 0,
        found_ms: (genesis + 3000) * 1000,
        status: BlockStatus::Mature,
        confirmations: 100,
        reject_reason: None,
        paid_epoch: None,
    });
    log.flush().await;
    drop(log);
    writer.await.unwrap();
    rate
}

async fn bench(name: &str, url: &str, dir: &std::path::Path) {
    let n = shares();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let genesis = now - 2 * EPOCH_SECS;
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let node = (scheme() != proofpool_epoch::Scheme::Pplns).then(|| {
        let (node, _) = proofpool_devtools::Bitcoind::with_pool_payout(1).unwrap();
        node
    });
    let tip = match &node {
        Some(node) => {
            let hash: B256 = node.cli(&["getbestblockhash"]).unwrap().parse().unwrap();
            let mut internal = hash.0;
            internal.reverse();
            let height: u64 = node.cli(&["getblockcount"]).unwrap().parse().unwrap();
            (B256::from(internal), height + 1)
        }
        None => (B256::repeat_byte(1), 800_000),
    };
    let write_rate = generate(&store, n, genesis, tip).await;

    // The jobs are made up; any payout script will do.
    let params = PoolParams {
        pplns: PplnsParams {
            window_x: 1,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: alloy::primitives::Bytes::from_static(&[0x51, 0x20, 7, 7, 7]),
        epoch_secs: EPOCH_SECS,
        maturity: 100,
        pool_tag: alloy::primitives::Bytes::from_static(b"/proofpool/"),
        scheme: scheme(),
    };
    let anvil = proofpool_devtools::spawn_anvil(None).unwrap();
    let settler = PrivateKeySigner::from(anvil.keys()[0].clone());
    let provider = proofpool_chain::connect(anvil.endpoint_url(), settler.clone());
    let deployment = proofpool_chain::deploy(
        &provider,
        &DeployParams {
            token: None,
            owner: settler.address(),
            settler: settler.address(),
            guardian: settler.address(),
            challenge_period: 60,
            // Enough for any scheme (a regtest share is worth far more).
            mint_to_settler: U256::from(10u64).pow(U256::from(30)),
            params: params.clone(),
        },
    )
    .await
    .unwrap();
    let chain = DistributorClient::new(deployment.distributor, provider);
    let client = node.as_ref().map(|node| {
        std::sync::Arc::new(
            proofpool_node::NodeClient::new(
                vec![proofpool_node::NodeEndpoint {
                    url: node.rpc_url().parse().unwrap(),
                    auth: proofpool_node::NodeAuth::Cookie(node.cookie_path()),
                }],
                Duration::from_secs(30),
            )
            .unwrap(),
        )
    });
    let settlement = Settler::new(
        store.clone(),
        chain.clone(),
        client,
        SettleConfig {
            params,
            verify_params: true,
            grace: Duration::from_secs(1),
            epochs_dir: dir.join("epochs"),
            confirmations: 1,
            dry_run: false,
            settler: settler.address(),
        },
    );
    let domain = chain.domain().await.unwrap();
    let clock = store.clock().await.unwrap();
    let t = Instant::now();
    let built = settlement.build_epoch(1, &clock, domain).await.unwrap();
    let build = t.elapsed();
    let leaves = built.file.rewards.len();
    let bytes = built.bytes.len();
    drop(built);
    let t = Instant::now();
    let report = settlement.run_once().await.unwrap();
    let end_to_end = t.elapsed();
    assert!(report.committed.iter().any(|(e, _)| *e == 1));
    println!(
        "{name} {}: {n} shares, {leaves} reward leaves | writer {write_rate:.0} shares/s | build trees + epoch file {build:.2?} | settle pass to confirmed commit(s) {end_to_end:.2?} ({} epochs) | epoch file {:.1} MB ({:.0} MB per million shares)",
        scheme(),
        report.committed.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 * 1e6 / n as f64
    );
    store.close().await;
}

fn main() {
    // `cargo bench` passes --bench; there is nothing to filter.
    // RUST_LOG=proofpool_settlement=info shows each phase's time.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = proofpool_devtools::TempDir::new("bench-settle").unwrap();
        bench("sqlite", &dir.sqlite_url("pool.db"), dir.path()).await;
        if std::env::var("BENCH_POSTGRES").is_ok_and(|v| v == "1") {
            let pg = proofpool_devtools::Postgres::start_durable().unwrap();
            let dir = proofpool_devtools::TempDir::new("bench-settle-pg").unwrap();
            bench("postgres", &pg.url(), dir.path()).await;
        }
    });
}
