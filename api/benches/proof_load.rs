//! The proof endpoint under load, measured (a benchmark binary, not a timed
//! test).
//!
//! Writes `SHARES` shares (default 1,000,000) from `MINERS` accounts
//! (default 10,000) through the real group-commit writer, records a
//! finalized epoch crediting every account the way the settler does
//! (credits plus a reward root built by `RewardTree`), serves the API on
//! 127.0.0.1:0 over that SQLite store, and then has
//! `CLIENTS` (default 64) keep-alive HTTP clients ask
//! `/api/v1/epochs/latest/proof/{account}` for random accounts for
//! `SECONDS` (default 10). Every answer is checked: status 200 and the
//! account's amount. It reports the first (cold) proof, requests per
//! second and the latency percentiles.
//!
//! `cargo bench -p proofpool-api --bench proof_load`

use hdrhistogram::Histogram;
use proofpool_api::ApiState;
use proofpool_merkle::{RewardDomain, RewardLeaf, RewardTree};
use proofpool_primitives::{Address, B256, U256};
use proofpool_store::{
    CreditRow, EpochRecord, EpochStatus, JobRecord, NewShare, SettledEpoch, ShareLog, Store,
    StoreOptions, WriterConfig,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn account(i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&(i + 1).to_be_bytes());
    bytes[19] = 0xaa;
    Address::from(bytes)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes `n` shares into epoch 1 from `miners` accounts.
async fn shares(store: &Store, n: u64, miners: u64, genesis: u64) {
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
        height: 800_000,
        prev_hash: B256::repeat_byte(1),
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
    let mut acks = Vec::with_capacity(100_000);
    for i in 0..n {
        let share = NewShare {
            time_ms: (genesis + 1 + i % 500) * 1000,
            instance: 0,
            job_id: 1,
            miner: account(i % miners),
            worker: format!("rig{}", i % 4),
            extranonce1: [0, 0, 0, 1],
            extranonce2: i.to_be_bytes().to_vec(),
            ntime: genesis as u32,
            nonce: i as u32,
            version: 0x2000_0000,
            hash: B256::from(U256::from(i + 1)),
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
    log.flush().await;
    drop(log);
    writer.await.unwrap();
}

/// Settles epoch 1 with `miners` accounts and marks it finalized.
async fn record(store: &Store, domain: RewardDomain, miners: u64) {
    store.close_epoch(1).await.unwrap();
    let sats = |i: u64| 1_000 + i * 7;
    let tree = RewardTree::new(
        domain,
        (0..miners)
            .map(|i| RewardLeaf {
                account: account(i),
                cumulative: U256::from(sats(i)),
            })
            .collect(),
    )
    .unwrap();
    let record = EpochRecord {
        epoch: 1,
        status: EpochStatus::Closed,
        share_count: miners,
        seq_range: Some((1, miners)),
        share_root: B256::repeat_byte(0x50),
        reward_root: tree.root(),
        total_cumulative: tree.total(),
        blocks_hash: B256::repeat_byte(0x60),
        params_hash: B256::repeat_byte(0x61),
        data_hash: B256::repeat_byte(0x62),
        prev_epoch_hash: B256::ZERO,
        file_name: "epoch-00000001.json".into(),
        commit_tx: None,
        finalize_tx: None,
        updated_ms: now_ms(),
    };
    store
        .record_settled_epoch(&SettledEpoch {
            record,
            credits: (0..miners)
                .map(|i| CreditRow {
                    block_hash: B256::repeat_byte(0xb1),
                    miner: account(i),
                    sats: sats(i),
                })
                .collect(),
            paid_blocks: Vec::new(),
            orphaned_blocks: Vec::new(),
            scheme: "pplns",
            expected_work: U256::ZERO,
        })
        .await
        .unwrap();
    let t = now_ms();
    store
        .set_epoch_status(1, EpochStatus::Committed, Some(B256::repeat_byte(0xc1)), t)
        .await
        .unwrap();
    store
        .set_epoch_status(1, EpochStatus::Finalized, Some(B256::repeat_byte(0xf1)), t)
        .await
        .unwrap();
}

/// Asks for `i`'s proof and checks the amount.
async fn proof(http: &reqwest::Client, base: &str, i: u64) {
    let r = http
        .get(format!("{base}/api/v1/epochs/latest/proof/{}", account(i)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["cumulativeAmount"].as_str().unwrap(),
        (1_000 + i * 7).to_string(),
        "{body}"
    );
}

fn main() {
    let n_shares = env("SHARES", 1_000_000);
    let miners = env("MINERS", 10_000).max(1);
    let clients = env("CLIENTS", 64).clamp(1, 1024);
    let seconds = env("SECONDS", 10).clamp(1, 300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = proofpool_devtools::TempDir::new("bench-proof").unwrap();
        let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
            .await
            .unwrap();
        let domain = RewardDomain {
            chain_id: 31337,
            distributor: Address::repeat_byte(0xd1),
        };
        // Three hours ago: the shares' hashrate buckets have all ended, so the
        // series below is served from rollups once they are made.
        let genesis = now_ms() / 1000 - 3 * 3600;
        store.init_clock(600, genesis).await.unwrap();
        shares(&store, n_shares, miners, genesis).await;
        record(&store, domain, miners).await;
        let mut state = ApiState::new(store.clone(), dir.path().join("epochs"), domain);
        state.token_per_sat = U256::from(1u64);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Arc::new(format!("http://{}", listener.local_addr().unwrap()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Every client comes from 127.0.0.1: no per-address cap.
        let limits = proofpool_api::ServeConfig {
            max_connections_per_ip: 0,
            ..proofpool_api::ServeConfig::default()
        };
        let server = tokio::spawn(proofpool_api::serve_with(
            listener,
            state,
            limits,
            async move {
                stopped.await.ok();
            },
        ));

        let http = reqwest::Client::new();
        let t = Instant::now();
        proof(&http, &base, 0).await;
        let cold = t.elapsed();

        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let (http, base) = (http.clone(), base.clone());
            tasks.spawn(async move {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                // A cheap, deterministic spread over the accounts.
                let mut x = c.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                while Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let t = Instant::now();
                    proof(&http, &base, x % miners).await;
                    h.saturating_record(
                        u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
                    );
                }
                h
            });
        }
        let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        while let Some(h) = tasks.join_next().await {
            all.add(h.unwrap()).unwrap();
        }
        let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "proof endpoint, {n_shares} shares, {miners} accounts, SQLite, {clients} clients, {seconds} s: first (cold) proof {:.1} ms | {:.0} proofs/s | p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
            cold.as_secs_f64() * 1000.0,
            all.len() as f64 / seconds as f64,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            all.max() as f64 / 1000.0,
        );
        // The pool's hashrate series over a day in 10-minute buckets: the
        // first request computes the ended buckets from the shares and keeps
        // them in the rollup table, later ones read them.
        let mut series_ms = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/api/v1/hashrate?bucket=600&hours=24"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let body: serde_json::Value = r.json().await.unwrap();
            let shares: u64 = body["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["shares"].as_u64().unwrap())
                .sum();
            assert_eq!(shares, n_shares, "every share is in the series");
            series_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "hashrate series, 24 h in 10-minute buckets over {n_shares} shares: first {:.1} ms (computes and stores the rollups), then {:.1} ms and {:.1} ms",
            series_ms[0], series_ms[1], series_ms[2]
        );
        stop.send(()).ok();
        server.await.unwrap().unwrap();
        store.close().await;
    });
}
