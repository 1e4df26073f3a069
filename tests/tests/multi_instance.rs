//! Scale-out: two pool instances (instance ids 0 and 1) on one PostgreSQL
//! and one regtest bitcoind, with miners on both. Their shares land in the
//! same epochs in one gapless sequence, with no duplicate and no collision
//! (each extranonce1 starts with its instance id); two settlers race and
//! exactly one commits each epoch.

use alloy::primitives::U256;
use proofpool_devtools::{Postgres, TempDir};
use proofpool_pool::Pool;
use proofpool_settlement::{SettleConfig, SettleError, Settler};
use proofpool_store::{Store, StoreOptions};
use std::collections::HashSet;
use std::time::Duration;

const EPOCH_SECS: u64 = 3;

mod common;
use common::mine;

/// Instance `instance` on the store at `url`, with short epochs and no
/// limits that the reference miner's stale shares after each regtest block
/// would trip.
async fn start_pool(instance: u8, regtest: &common::RegtestNode, url: &str) -> common::Serving {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let mut config = regtest.pool_config();
    config.instance_id = instance;
    config.epoch_secs = EPOCH_SECS;
    config.vardiff = None;
    config.max_shares_per_second = None;
    config.ban_threshold = None;
    common::serve(Pool::new(config, store).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_postgres_without_collisions() {
    let dir = TempDir::new("multi").unwrap();
    let pg = Postgres::start().expect("PostgreSQL (make setup installs it)");
    let regtest = common::regtest_node(101, 0);
    let url = pg.url();
    let p0 = start_pool(0, &regtest, &url).await;
    let p1 = start_pool(1, &regtest, &url).await;
    let (a0, a1) = (p0.addr, p1.addr);

    // Miners on both instances at once, across more than one epoch.
    for round in 0..2 {
        let (u0, u1) = (
            format!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.i0r{round}"),
            format!("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359.i1r{round}"),
        );
        tokio::join!(mine(a0, &u0, 15), mine(a1, &u1, 15));
        tokio::time::sleep(Duration::from_secs(EPOCH_SECS)).await;
    }
    tokio::join!(p0.stop(), p1.stop());

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
    let params = common::pool_params(2, &regtest.pool_config().payout_script, EPOCH_SECS, 1);
    let contracts = common::deploy(1, U256::from(10u64).pow(U256::from(15)), &params).await;
    let (settler, chain) = (&contracts.settler, contracts.chain.clone());
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
                    params: params.clone(),
                    verify_params: true,
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
    drop(contracts);
    drop(regtest);
}
