//! Scale-out: two pool instances (instance ids 0 and 1) on one PostgreSQL
//! and one regtest bitcoind, with miners on both. Their shares land in the
//! same epochs in one gapless sequence, with no duplicate and no collision
//! (each extranonce1 starts with its instance id); two settlers race and
//! exactly one commits each epoch.

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use bitcoin::Network;
use proofpool_chain::{DeployParams, DistributorClient};
use proofpool_devtools::{Bitcoind, Postgres, TempDir};
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_pool::{NodeAuth, NodeEndpoint, Pool, PoolConfig};
use proofpool_settlement::{PplnsParams, SettleConfig, SettleError, Settler};
use proofpool_store::{Store, StoreOptions};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const EPOCH_SECS: u64 = 3;

async fn start_pool(
    instance: u8,
    endpoint: &NodeEndpoint,
    payout: &bitcoin::Address,
    url: &str,
) -> (
    Pool,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let mut config = PoolConfig::new(
        vec![endpoint.clone()],
        Network::Regtest,
        payout.script_pubkey(),
    );
    config.instance_id = instance;
    config.start_difficulty = "0.000000001".parse().unwrap();
    config.min_difficulty = "0.000000001".parse().unwrap();
    config.epoch_secs = EPOCH_SECS;
    config.vardiff = None;
    config.max_shares_per_second = None;
    // The reference miner floods stale shares after each regtest block.
    config.ban_threshold = None;
    let pool = Pool::new(config, store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let task = tokio::spawn(async move {
        runner
            .run(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (pool, addr, stop, task)
}

async fn mine(addr: std::net::SocketAddr, user: &str, shares: u64) {
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address: addr.to_string(),
        user: user.to_owned(),
        threads: 1,
        suggest_difficulty: None,
        max_shares: Some(shares),
        tls_ca: None,
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(config, stats, std::future::pending()),
    )
    .await
    .expect("miner finished in time")
    .expect("miner ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_postgres_without_collisions() {
    let dir = TempDir::new("multi").unwrap();
    let pg = Postgres::start().expect("PostgreSQL (make setup installs it)");
    let node = Bitcoind::start(&[]).expect("bitcoind (make setup installs it)");
    node.cli(&["createwallet", "w"]).unwrap();
    let funding = node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    node.cli(&["generatetoaddress", "101", &funding]).unwrap();
    let payout =
        bitcoin::Address::from_str(&node.cli(&["getnewaddress", "pool", "bech32m"]).unwrap())
            .unwrap()
            .require_network(Network::Regtest)
            .unwrap();
    let endpoint = NodeEndpoint {
        url: node.rpc_url().parse().unwrap(),
        auth: NodeAuth::Cookie(node.cookie_path()),
    };
    let url = pg.url();
    let (_p0, a0, stop0, t0) = start_pool(0, &endpoint, &payout, &url).await;
    let (_p1, a1, stop1, t1) = start_pool(1, &endpoint, &payout, &url).await;

    // Miners on both instances at once, across more than one epoch.
    for round in 0..2 {
        let (u0, u1) = (
            format!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.i0r{round}"),
            format!("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359.i1r{round}"),
        );
        tokio::join!(mine(a0, &u0, 15), mine(a1, &u1, 15));
        tokio::time::sleep(Duration::from_secs(EPOCH_SECS)).await;
    }
    stop0.send(()).unwrap();
    stop1.send(()).unwrap();
    t0.await.unwrap();
    t1.await.unwrap();

    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let shares = store.shares_after(0, 100_000).await.unwrap();
    assert!(shares.len() >= 60, "{} shares", shares.len());
    assert!(
        shares
            .iter()
            .enumerate()
            .all(|(i, s)| s.seq == i as u64 + 1),
        "one gapless sequence across both instances"
    );
    let hashes: HashSet<_> = shares.iter().map(|s| s.share.hash).collect();
    assert_eq!(hashes.len(), shares.len(), "no share stored twice");
    for s in &shares {
        assert_eq!(
            s.share.extranonce1[0], s.share.instance,
            "extranonce1 starts with the instance id"
        );
    }
    let from = |i: u8| {
        shares
            .iter()
            .filter(|s| s.share.instance == i)
            .map(|s| s.epoch)
            .collect::<HashSet<_>>()
    };
    let (e0, e1) = (from(0), from(1));
    assert!(
        !e0.is_disjoint(&e1),
        "shares from both instances share epochs: {e0:?} {e1:?}"
    );

    // Two settlers race: one holds the PostgreSQL advisory lock and commits.
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
            challenge_period: 1,
            mint_to_settler: U256::from(10u64).pow(U256::from(15)),
        },
    )
    .await
    .unwrap();
    let chain = DistributorClient::new(deployment.distributor, provider);
    let last_epoch = shares.last().unwrap().epoch;
    let (_, end) = store.clock().await.unwrap().bounds(last_epoch);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if end + 1 > now {
        tokio::time::sleep(Duration::from_secs(end + 2 - now)).await;
    }
    let settlers: Vec<_> = (0..2)
        .map(|i| {
            Settler::new(
                store.clone(),
                chain.clone(),
                None,
                SettleConfig {
                    params: PplnsParams {
                        window_x: 2,
                        fee_bps: 100,
                    },
                    token_per_sat: U256::from(1u64),
                    maturity: 1,
                    grace: Duration::from_secs(1),
                    epochs_dir: dir.path().join(format!("epochs{i}")),
                    confirmations: 1,
                    dry_run: false,
                    settler: settler.address(),
                },
            )
        })
        .collect();
    let (r0, r1) = tokio::join!(settlers[0].run_once(), settlers[1].run_once());
    let (won, lost) = match (r0, r1) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (Ok(a), Ok(b)) => {
            // One finished before the other took the lock: the second found nothing to do.
            assert!(
                a.committed.is_empty() || b.committed.is_empty(),
                "{a:?} {b:?}"
            );
            (
                if a.committed.is_empty() { b } else { a },
                SettleError::Locked,
            )
        }
        (Err(a), Err(b)) => panic!("both settlers failed: {a} / {b}"),
    };
    assert!(matches!(lost, SettleError::Locked), "{lost}");
    assert!(won.committed.len() as u64 >= last_epoch, "{won:?}");
    let (committed, _) = chain.heads().await.unwrap();
    assert_eq!(committed, store.last_settled_epoch().await.unwrap());
    for e in 1..=last_epoch {
        let record = store.epoch(e).await.unwrap().unwrap();
        assert_eq!(record.share_count, store.share_count(e).await.unwrap());
    }
    store.close().await;
    drop(anvil);
    drop(node);
}
