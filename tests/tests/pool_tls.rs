//! Stratum over TLS against a real regtest bitcoind: the reference miner
//! mines through the TLS port with a self-signed certificate, and clients
//! that do not speak TLS or do not trust the certificate are turned away
//! without disturbing anyone.

use bitcoin::{Address, Network};
use proofpool_devtools::{Bitcoind, TempDir};
use proofpool_miner::{MinerConfig, MinerError, MinerStats};
use proofpool_pool::{NodeAuth, NodeEndpoint, Pool, PoolConfig, TlsFiles};
use proofpool_store::{Store, StoreOptions};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MINER: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// Writes a self-signed certificate for 127.0.0.1 and localhost and its key.
fn self_signed(dir: &Path, name: &str) -> TlsFiles {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, cert.cert.pem()).unwrap();
    std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
    files
}

fn miner(addr: std::net::SocketAddr, ca: &Path, max_shares: u64) -> MinerConfig {
    MinerConfig {
        address: addr.to_string(),
        user: format!("{MINER}.tls"),
        threads: 1,
        // Rare enough to stay under the pool's default rate limit (at the
        // pool's start difficulty every hash is a share).
        suggest_difficulty: Some("0.0001".parse().unwrap()),
        max_shares: Some(max_shares),
        tls_ca: Some(ca.to_owned()),
        retry_up_to: None,
        share_log: None,
        sv2_authority: None,
        sv2_standard: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miners_mine_over_tls_and_bad_handshakes_are_turned_away() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = TempDir::new("pool-tls").unwrap();
    let node = Bitcoind::start(&[]).expect("bitcoind (make setup installs it)");
    let payout = Address::from_str("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    node.cli(&["generatetoaddress", "1", &payout.to_string()])
        .unwrap();
    let tls = self_signed(dir.path(), "pool");
    let stranger = self_signed(dir.path(), "stranger");
    let mut config = PoolConfig::new(
        vec![NodeEndpoint {
            url: node.rpc_url().parse().unwrap(),
            auth: NodeAuth::Cookie(node.cookie_path()),
        }],
        Network::Regtest,
        payout.script_pubkey(),
    );
    config.start_difficulty = "0.000000001".parse().unwrap();
    config.min_difficulty = "0.000000001".parse().unwrap();
    config.handshake_timeout = Some(Duration::from_secs(3));
    config.tls = Some(tls.clone());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    let pool = Pool::new(config, store.clone()).await.unwrap();
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls_listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let server = tokio::spawn(async move {
        runner
            .run_with_tls(plain, Some(tls_listener), async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });

    // A plain Stratum line on the TLS port: no reply, the connection closes.
    let mut raw = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    raw.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut buf))
        .await
        .expect("the pool closes a non-TLS client");
    assert!(
        read.is_err() || !String::from_utf8_lossy(&buf).contains("\"result\""),
        "a plain client got a Stratum reply: {buf:?}"
    );

    // A miner that trusts another certificate refuses the pool.
    let err = proofpool_miner::run(
        miner(tls_addr, &stranger.cert, 1),
        Arc::new(MinerStats::default()),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MinerError::Tls(_)), "{err}");

    // The reference miner mines over TLS; bitcoind accepts its blocks.
    let height_before: u64 = node.cli(&["getblockcount"]).unwrap().parse().unwrap();
    let stats = Arc::new(MinerStats::default());
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(
            miner(tls_addr, &tls.cert, 3),
            stats.clone(),
            std::future::pending(),
        ),
    )
    .await
    .expect("the TLS miner finished in time")
    .unwrap();
    assert!(stats.accepted.load(Ordering::Relaxed) >= 3);
    // Each block makes the shares in flight for the old job stale; nothing
    // else is rejected.
    let rejected = stats.rejected.load(Ordering::Relaxed);
    assert!(rejected <= 5, "{rejected} shares rejected");
    for _ in 0..100 {
        if pool.blocks().iter().any(|b| b.accepted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pool.blocks().iter().any(|b| b.accepted),
        "no block accepted"
    );
    let height_after: u64 = node.cli(&["getblockcount"]).unwrap().parse().unwrap();
    assert!(height_after > height_before);

    // Every acknowledged share is durable, and the failed handshakes counted.
    let metrics = pool.render_metrics().unwrap();
    let failures = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pool_tls_handshake_failures_total "))
        .unwrap_or_else(|| panic!("no TLS failure counter in\n{metrics}"));
    assert!(failures.trim().parse::<f64>().unwrap() >= 2.0, "{failures}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(store.last_seq().await.unwrap() >= 3);
}
