//! Nothing acknowledged is ever lost: reference miners mine against the
//! `proofpool pool` process, which is killed with SIGKILL at random points
//! (20 times) and restarted on the same store, SQLite or PostgreSQL. Every
//! share a miner saw acknowledged is in the store exactly once, and sequence
//! numbers have no gaps.

use proofpool_devtools::{Bitcoind, Postgres, TempDir};
use proofpool_miner::{MinerConfig, MinerStats, ShareId};
use proofpool_store::{Store, StoreOptions};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const ITERATIONS: u64 = 20;

fn free_port() -> u16 {
    proofpool_devtools::free_port().unwrap()
}

fn start_pool(node: &Bitcoind, payout: &str, db: &str, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofpool"))
        .args(["pool", "--network", "regtest", "--payout-address", payout])
        .args(["--node-url", &node.rpc_url()])
        .arg("--cookie")
        .arg(node.cookie_path())
        .args([
            "--database-url",
            db,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--difficulty",
            "0.000000001",
            "--min-difficulty",
            "0.000000001",
        ])
        .args(["--no-vardiff", "--no-ban", "--max-shares-per-second", "0"])
        .env("PROOFPOOL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded wait for the listener.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the pool did not start listening");
}

/// splitmix64: a deterministic "random" kill point per iteration.
fn jitter(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_share_on_sqlite() {
    let dir = TempDir::new("pool-crash").unwrap();
    sigkill_loses_no_acknowledged_share(&dir.sqlite_url("pool.db")).await;
}

/// The PostgreSQL writer commits differently (its own connection; a batch
/// over 256 shares is a transaction of several statements), so it is killed
/// as often. The server itself stays up: what dies is the pool, mid-commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_share_on_postgres() {
    let pg = Postgres::start().expect("PostgreSQL (make setup installs it)");
    sigkill_loses_no_acknowledged_share(&pg.url()).await;
}

async fn sigkill_loses_no_acknowledged_share(db: &str) {
    let (node, payout) =
        Bitcoind::with_pool_payout(101).expect("bitcoind (make setup installs it)");

    let mut acknowledged: Vec<ShareId> = Vec::new();
    for i in 0..ITERATIONS {
        let port = free_port();
        let mut pool = start_pool(&node, &payout, db, port);
        let stats = Arc::new(MinerStats::default());
        stats.record_accepted.store(true, Ordering::Relaxed);
        let config = MinerConfig {
            address: format!("127.0.0.1:{port}"),
            user: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.crash".to_owned(),
            threads: 1,
            suggest_difficulty: None,
            max_shares: None,
            tls_ca: None,
            retry_up_to: None,
            share_log: None,
            sv2_authority: None,
            sv2_standard: false,
        };
        let miner = tokio::spawn(proofpool_miner::run(
            config,
            stats.clone(),
            std::future::pending(),
        ));
        // Kill somewhere between 150 ms and 1.2 s into mining.
        tokio::time::sleep(Duration::from_millis(150 + jitter(i) % 1050)).await;
        pool.kill().unwrap(); // SIGKILL
        pool.wait().unwrap();
        // The miner sees the connection drop and stops.
        let _ = tokio::time::timeout(Duration::from_secs(20), miner)
            .await
            .expect("the miner noticed the pool died");
        acknowledged.extend(stats.accepted_log.lock().unwrap().drain(..));
    }
    assert!(
        acknowledged.len() as u64 >= ITERATIONS,
        "miners saw shares acknowledged ({})",
        acknowledged.len()
    );

    let store = Store::open(db, &StoreOptions::default()).await.unwrap();
    let stored = store.shares_after(0, 10_000_000).await.unwrap();
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, s)| s.seq == i as u64 + 1),
        "sequence numbers have no gaps"
    );
    let hashes: HashSet<_> = stored.iter().map(|s| s.share.hash).collect();
    assert_eq!(hashes.len(), stored.len(), "no share stored twice");
    // A restarted pool may hand out an extranonce1 again, so the same
    // (extranonce1, extranonce2, ntime, nonce) can name distinct shares of
    // distinct jobs: compare as multisets.
    let mut in_store: HashMap<ShareId, usize> = HashMap::new();
    for s in &stored {
        *in_store
            .entry(ShareId {
                extranonce1: s.share.extranonce1.to_vec(),
                extranonce2: s.share.extranonce2.clone(),
                ntime: s.share.ntime,
                nonce: s.share.nonce,
            })
            .or_default() += 1;
    }
    let mut missing = Vec::new();
    for a in &acknowledged {
        match in_store.get_mut(a) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing.push(a),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged shares are missing: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{}: {ITERATIONS} SIGKILLs: {} shares acknowledged, {} stored (the rest were durable but the kill beat the reply)",
        db.split(':').next().unwrap_or(db),
        acknowledged.len(),
        stored.len()
    );
    store.close().await;
}
