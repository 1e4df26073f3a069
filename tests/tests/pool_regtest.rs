//! The Stratum V1 pool against a real regtest bitcoind: the reference miner
//! finds blocks through it, bitcoind accepts them with the mempool's segwit
//! transactions and the coinbase pays the pool; the protocol's error paths
//! answer with the right codes without disturbing other miners; and a block
//! found while the (PostgreSQL) store is down, or whose share the full share
//! queue refused, is still submitted and gets its solving share once the
//! store is back.

mod common;

use common::Raw;

use bitcoin::{Address, Network};
use proofpool_devtools::{Bitcoind, SegwitWallet, TempDir};
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_pool::sv2::keys::AuthorityKey;
use proofpool_pool::sv2::noise::Sv2Connection;
use proofpool_pool::{Pool, PoolConfig};
use proofpool_store::{BlockStatus, Store, StoreOptions};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;

const MINER: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

struct Setup {
    _dir: TempDir,
    node: Bitcoind,
    /// The rust-bitcoin-signed segwit transactions in the mempool at the start.
    spends: Vec<bitcoin::Txid>,
    payout: Address,
    pool: Pool,
    addr: std::net::SocketAddr,
    /// The Stratum V2 listener and the authority key it proves.
    sv2: Option<(std::net::SocketAddr, AuthorityKey)>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn setup() -> Setup {
    setup_with(false).await
}

/// [`setup`], serving Stratum V2 as well if `sv2`.
async fn setup_with(sv2: bool) -> Setup {
    setup_full(sv2, |_| {}).await
}

/// [`setup_with`], with the pool's config changed by `tweak` last.
async fn setup_full(sv2: bool, tweak: impl FnOnce(&mut PoolConfig)) -> Setup {
    common::init_tracing();
    let node = Bitcoind::start(&[]).expect("bitcoind (make setup installs it)");
    node.cli(&["createwallet", "w"]).unwrap();
    // Segwit spends in the mempool, built and signed with rust-bitcoin, so the
    // first template carries them and a witness commitment: three coinbase
    // spends and a child of the first.
    let mut spender = SegwitWallet::new(0x5e).unwrap();
    spender.mine_coinbases(&node, 3).unwrap();
    let funding = node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    node.cli(&["generatetoaddress", "110", &funding]).unwrap();
    let spends = spender.send_spends(&node).unwrap();
    assert_eq!(spends.len(), 4);
    let payout = Address::from_str(&node.cli(&["getnewaddress", "pool", "bech32m"]).unwrap())
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    let mut config = PoolConfig::new(
        vec![common::endpoint(&node)],
        Network::Regtest,
        payout.script_pubkey(),
    );
    // On regtest every share at a workable difficulty is also a block (the
    // network target is about 2^255), so shares are easy: p(share) about 1/2.
    config.start_difficulty = "0.000000001".parse().unwrap();
    config.min_difficulty = "0.000000001".parse().unwrap();
    tweak(&mut config);
    let dir = TempDir::new("pool-regtest").unwrap();
    let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    let pool = Pool::new(config, store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let (sv2_listener, sv2) = if sv2 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let key = AuthorityKey::generate().unwrap();
        let at = l.local_addr().unwrap();
        (Some((l, Arc::new(key.clone()))), Some((at, key)))
    } else {
        (None, None)
    };
    let server = tokio::spawn(async move {
        runner
            .run_with_listeners(listener, None, sv2_listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Setup {
        _dir: dir,
        node,
        spends,
        payout,
        pool,
        addr,
        sv2,
        stop,
        server,
    }
}

impl Setup {
    async fn teardown(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .unwrap()
            .unwrap();
        drop(self.node);
    }
}

fn error_code(reply: &Value) -> i64 {
    reply["error"][0]
        .as_i64()
        .unwrap_or_else(|| panic!("no error code in {reply}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_miner_finds_blocks_that_bitcoind_accepts() {
    let s = setup().await;
    let height_before: u64 = s.node.cli(&["getblockcount"]).unwrap().parse().unwrap();
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address: s.addr.to_string(),
        user: format!("{MINER}.cpu"),
        threads: 1,
        suggest_difficulty: Some("0.0001".parse().unwrap()),
        max_shares: Some(3),
        tls_ca: None,
        retry_up_to: None,
        share_log: None,
        sv2_authority: None,
        sv2_standard: false,
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(config, stats.clone(), std::future::pending()),
    )
    .await
    .expect("miner finished in time")
    .unwrap();
    assert!(stats.accepted.load(Ordering::Relaxed) >= 3);
    // Block submission runs in the background; wait for it to be confirmed.
    let mut blocks = Vec::new();
    for _ in 0..100 {
        blocks = s.pool.blocks();
        if blocks.iter().any(|b| b.accepted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let block = blocks
        .iter()
        .find(|b| b.accepted)
        .expect("an accepted block");
    let height_after: u64 = s.node.cli(&["getblockcount"]).unwrap().parse().unwrap();
    assert!(
        height_after > height_before,
        "tip advanced from {height_before} to {height_after}"
    );
    let full: Value =
        serde_json::from_str(&s.node.cli(&["getblock", &block.hash, "2"]).unwrap()).unwrap();
    let coinbase = &full["tx"][0];
    assert_eq!(
        coinbase["vout"][0]["scriptPubKey"]["address"],
        s.payout.to_string()
    );
    let first = &blocks[0];
    let first_block: Value =
        serde_json::from_str(&s.node.cli(&["getblock", &first.hash, "2"]).unwrap()).unwrap();
    // The first block carries every rust-bitcoin-signed spend (the child
    // after its parent) with its witness, so bitcoind accepted the pool's
    // witness commitment.
    let txs = first_block["tx"].as_array().unwrap();
    let position = |txid: &bitcoin::Txid| {
        txs.iter()
            .position(|tx| tx["txid"] == txid.to_string())
            .unwrap_or_else(|| panic!("spend {txid} is in the first block"))
    };
    for txid in &s.spends {
        let tx = &txs[position(txid)];
        assert_eq!(
            tx["vin"][0]["txinwitness"].as_array().map(Vec::len),
            Some(2),
            "P2WPKH witness"
        );
    }
    assert!(
        position(&s.spends[3]) > position(&s.spends[0]),
        "child after parent"
    );
    assert!(
        first_block["tx"][0]["vout"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["scriptPubKey"]["hex"]
                .as_str()
                .is_some_and(|h| h.starts_with("6a24aa21a9ed"))),
        "the coinbase carries the witness commitment"
    );
    // Every acknowledged share is durable, in a gapless sequence, with its
    // job; the block is recorded with its solving share.
    let store = s.pool.store().clone();
    let shares = store.shares_after(0, 10_000).await.unwrap();
    assert!(shares.len() as u64 >= stats.accepted.load(Ordering::Relaxed));
    assert!(
        shares.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "gapless sequence"
    );
    assert_eq!(shares[0].seq, 1);
    assert_eq!(shares[0].share.miner.to_checksum(None), MINER);
    assert!(
        !store
            .jobs_for_epoch(shares[0].epoch)
            .await
            .unwrap()
            .is_empty()
    );
    let mut recorded = Vec::new();
    for _ in 0..100 {
        recorded = store.blocks().await.unwrap();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = recorded
        .iter()
        .find(|b| b.hash.to_string().trim_start_matches("0x") == block.hash)
        .expect("the accepted block is in the store");
    assert_eq!(stored.status, BlockStatus::Immature);
    assert_eq!(stored.share_seq, block.share_seq);
    // The block bitcoind accepted commits, in its coinbase, to the miner, to
    // the target its solving share was credited at and to its job's
    // share-log head, as the store recorded them.
    let solving = shares
        .iter()
        .find(|sh| sh.seq == stored.share_seq)
        .expect("the solving share is stored");
    use proofpool_epoch::share_commitment::{ShareCommitment, target_of_bits};
    let commitment = coinbase["vout"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["scriptPubKey"]["hex"].as_str())
        .filter_map(|hex| alloy::hex::decode(hex).ok())
        .find_map(|bytes| ShareCommitment::from_script(&bytes).ok())
        .expect("the coinbase carries the share commitment");
    assert_eq!(commitment.miner.to_checksum(None), MINER);
    assert_eq!(
        target_of_bits(commitment.target_bits),
        Some(solving.share.share_target)
    );
    let jobs = store.jobs_for_epoch(solving.epoch).await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j.job_id == solving.share.job_id)
        .expect("the solving share's job is stored");
    assert_eq!(commitment.log_head, job.log_head);
    s.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_have_codes_and_do_not_stop_other_miners() {
    let s = setup().await;
    let mut a = Raw::connect(s.addr).await;
    // Submitting before subscribing: 25.
    a.send(
        r#"{"id":1,"method":"mining.submit","params":["x","1","00000000","00000000","00000000"]}"#,
    )
    .await;
    a.send("\n").await;
    let (r, _) = a.reply(1).await;
    assert_eq!(error_code(&r), 25, "{r}");

    // A Bitaxe-style pipelined opening.
    a.send(concat!(
        r#"{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":16}]}"#, "\n",
        r#"{"id":3,"method":"mining.subscribe","params":["bitaxe/BM1366/v2.4.0"]}"#, "\n",
        r#"{"id":4,"method":"mining.authorize","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.bitaxe","x"]}"#, "\n",
        r#"{"id":5,"method":"mining.suggest_difficulty","params":[0.000000001]}"#, "\n",
    ))
    .await;
    let (configure, before) = a.reply(2).await;
    assert!(before.is_empty());
    assert_eq!(configure["result"]["version-rolling"], true);
    assert_eq!(configure["result"]["version-rolling.mask"], "1fffe000");
    let (subscribe, before) = a.reply(3).await;
    assert!(
        before.is_empty(),
        "nothing before the subscribe result: {before:?}"
    );
    let en2_size = subscribe["result"][2].as_u64().unwrap();
    assert_eq!(en2_size, 8);
    let (auth, mut pushed) = a.reply(4).await;
    assert_eq!(auth["result"], true);
    let (suggest, more) = a.reply(5).await;
    assert_eq!(suggest["result"], true);
    pushed.extend(more);
    // Work arrives with (or right after) the replies; use the newest job.
    let job = match pushed.iter().rev().find(|m| m["method"] == "mining.notify") {
        Some(job) => job.clone(),
        None => a.notify().await,
    };
    let job_id = job["params"][0].as_str().unwrap().to_owned();
    let ntime = job["params"][7].as_str().unwrap().to_owned();

    // A second, well-behaved connection that must keep working throughout.
    let mut b = Raw::connect(s.addr).await;
    b.send(concat!(
        r#"{"id":1,"method":"mining.subscribe","params":[]}"#, "\n",
        r#"{"id":2,"method":"mining.authorize","params":["0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","x"]}"#, "\n",
    ))
    .await;
    assert_eq!(b.reply(2).await.0["result"], true);

    let submit = |id: u64, worker: &str, job: &str, ntime: &str, en2: &str, nonce: &str| {
        format!(
            r#"{{"id":{id},"method":"mining.submit","params":["{worker}","{job}","{en2}","{ntime}","{nonce}"]}}"#
        ) + "\n"
    };
    let worker = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.bitaxe";
    // Unknown job: 21.
    a.send(&submit(
        10,
        worker,
        "ffffff",
        &ntime,
        "0000000000000000",
        "00000000",
    ))
    .await;
    assert_eq!(error_code(&a.reply(10).await.0), 21);
    // Worker not authorized on this connection: 24.
    a.send(&submit(
        11,
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.other",
        &job_id,
        &ntime,
        "0000000000000000",
        "00000000",
    ))
    .await;
    assert_eq!(error_code(&a.reply(11).await.0), 24);
    // Wrong extranonce2 length: 20.
    a.send(&submit(12, worker, &job_id, &ntime, "00", "00000000"))
        .await;
    let r = a.reply(12).await.0;
    assert_eq!(error_code(&r), 20, "{r}");
    // Invalid hex: 20.
    a.send(&submit(
        13,
        worker,
        &job_id,
        &ntime,
        "zz00000000000000",
        "00000000",
    ))
    .await;
    assert_eq!(error_code(&a.reply(13).await.0), 20);
    // ntime before the job's, ntime more than two hours ahead, and version
    // bits outside the negotiated mask (0x1fffe000): 20, each saying why.
    let job_ntime = u32::from_str_radix(&ntime, 16).unwrap();
    let early = format!("{:08x}", job_ntime - 1);
    let late = format!("{:08x}", job_ntime + 3 * 3600);
    let en2 = "00".repeat(usize::try_from(en2_size).unwrap());
    for (id, time, version, why) in [
        (30, early.as_str(), None, "before the job"),
        (31, late.as_str(), None, "past the pool's clock"),
        (
            32,
            ntime.as_str(),
            Some("00000001"),
            "outside the negotiated mask",
        ),
    ] {
        let mut line = submit(id, worker, &job_id, time, &en2, "00000000");
        if let Some(bits) = version {
            line = line.replace("\"]}", &format!("\",\"{bits}\"]}}"));
        }
        a.send(&line).await;
        let r = a.reply(id).await.0;
        assert_eq!(error_code(&r), 20, "{line} -> {r}");
        assert!(r["error"][1].as_str().unwrap().contains(why), "{why}: {r}");
    }
    // Another payout address on the same connection: 24, naming both; a
    // second worker of the same address is fine.
    a.send(r#"{"id":16,"method":"mining.authorize","params":["0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359.rig","x"]}"#).await;
    a.send("\n").await;
    let r = a.reply(16).await.0;
    assert_eq!(error_code(&r), 24, "{r}");
    let why = r["error"][1].as_str().unwrap();
    assert!(
        why.contains("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
            && why.contains("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"),
        "{r}"
    );
    a.send(r#"{"id":17,"method":"mining.authorize","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.second","x"]}"#).await;
    a.send("\n").await;
    assert_eq!(a.reply(17).await.0["result"], true);
    // Bad EIP-55 checksum on authorize: 24.
    a.send(r#"{"id":14,"method":"mining.authorize","params":["0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","x"]}"#).await;
    a.send("\n").await;
    let r = a.reply(14).await.0;
    assert_eq!(error_code(&r), 24);
    assert!(r["error"][1].as_str().unwrap().contains("checksum"), "{r}");
    // Unknown method: an error reply, not a disconnect.
    a.send("{\"id\":15,\"method\":\"mining.frobnicate\",\"params\":[]}\n")
        .await;
    assert_eq!(error_code(&a.reply(15).await.0), 20);
    // Low difficulty (23): about half of all nonces fail difficulty 1e-9. An
    // accepted share is also a block here, which makes the job stale, so
    // follow the new job when that happens.
    let (mut job_id, mut ntime) = (job_id, ntime);
    let mut saw_low = false;
    let mut accepted = None;
    for nonce in 0u32..64 {
        let id = 1000 + u64::from(nonce);
        a.send(&submit(
            id,
            worker,
            &job_id,
            &ntime,
            "0000000000000001",
            &format!("{nonce:08x}"),
        ))
        .await;
        let (r, seen) = a.reply(id).await;
        match (r["result"] == true, r["error"][0].as_i64()) {
            (true, _) => {
                accepted.get_or_insert((job_id.clone(), ntime.clone(), nonce));
            }
            (false, Some(23)) => saw_low = true,
            (false, Some(21)) => {}
            _ => panic!("unexpected reply {r}"),
        }
        if let Some(n) = seen.iter().rev().find(|m| m["method"] == "mining.notify") {
            job_id = n["params"][0].as_str().unwrap().to_owned();
            ntime = n["params"][7].as_str().unwrap().to_owned();
        }
        if saw_low && accepted.is_some() {
            break;
        }
    }
    assert!(saw_low, "a low-difficulty share was rejected with 23");
    // Duplicate (22): the same share again (21 if its block already made the job stale).
    let (dup_job, dup_ntime, nonce) = accepted.expect("a share was accepted");
    a.send(&submit(
        5000,
        worker,
        &dup_job,
        &dup_ntime,
        "0000000000000001",
        &format!("{nonce:08x}"),
    ))
    .await;
    let r = a.reply(5000).await.0;
    assert!(matches!(error_code(&r), 21 | 22), "{r}");

    // Garbage and oversized lines close only the offending connection.
    let mut c = Raw::connect(s.addr).await;
    c.send("\u{1}\u{2}not json\n").await;
    let r = c.recv().await.unwrap();
    assert_eq!(error_code(&r), 20);
    assert!(c.recv().await.is_none(), "closed after invalid JSON");
    let mut d = Raw::connect(s.addr).await;
    d.send(&"x".repeat(20 * 1024)).await;
    let r = d.recv().await.unwrap();
    assert_eq!(error_code(&r), 20);
    assert!(d.recv().await.is_none(), "closed after an oversized line");
    // A half-open connection that never speaks does not block anyone.
    let _silent = TcpStream::connect(s.addr).await.unwrap();

    // The good miner still gets answers.
    b.send("{\"id\":3,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n")
        .await;
    assert_eq!(b.reply(3).await.0["result"], true);

    // Resuming an extranonce1 (the subscribe hint): not one released during
    // this block, whose jobs are still live (the miner could replay its
    // accepted shares); once a new block makes them stale, it is honoured.
    async fn subscribe_with(addr: std::net::SocketAddr, hint: Option<&str>) -> (Raw, String) {
        let mut r = Raw::connect(addr).await;
        let params = hint.map_or(String::new(), |h| format!(r#""resume-test","{h}""#));
        r.send(&format!(
            "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[{params}]}}\n"
        ))
        .await;
        let en1 = r.reply(1).await.0["result"][1].as_str().unwrap().to_owned();
        (r, en1)
    }
    // (A block the shares above found may still move the tip between a
    // release and the next lease, which rightly resets the rule; so try a
    // few times, and expect a refusal once the tip holds still.)
    let mut refused = None;
    for _ in 0..20 {
        let (first, en1) = subscribe_with(s.addr, None).await;
        drop(first);
        // The pool releases it once it sees the connection close.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_second, other) = subscribe_with(s.addr, Some(&en1)).await;
        if other != en1 {
            refused = Some(en1);
            break;
        }
    }
    let en1 = refused.expect("a hint released during this block is not resumed");
    let to = s.node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    s.node.cli(&["generatetoaddress", "1", &to]).unwrap();
    let mut resumed = false;
    for _ in 0..50 {
        let (_conn, got) = subscribe_with(s.addr, Some(&en1)).await;
        if got == en1 {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(resumed, "after a new block the hint is honoured");
    s.teardown().await;
}

/// The value of an unlabelled series in a metrics page, 0 when absent.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmq_hashblock_brings_blocks_found_elsewhere() {
    common::init_tracing();
    let zmq = format!(
        "tcp://127.0.0.1:{}",
        proofpool_devtools::free_port().unwrap()
    );
    let node = Bitcoind::start(&[&format!("-zmqpubhashblock={zmq}")]).unwrap();
    let payout = Address::from_str("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    // Blocks "found elsewhere" pay a P2WSH(OP_TRUE) address, not the pool.
    let elsewhere =
        Address::p2wsh(&bitcoin::ScriptBuf::from(vec![0x51]), Network::Regtest).to_string();
    node.cli(&["generatetoaddress", "1", &elsewhere]).unwrap();
    let dir = TempDir::new("pool-zmq").unwrap();
    let config = |endpoint: &str| {
        let mut config = PoolConfig::new(
            vec![common::endpoint(&node)],
            Network::Regtest,
            payout.script_pubkey(),
        );
        config.zmq_hashblock = Some(endpoint.to_owned());
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        config
    };
    let store = || async {
        Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
            .await
            .unwrap()
    };

    // An endpoint that is not one is refused at start, naming the key.
    let err = Pool::new(config("127.0.0.1:28332"), store().await)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("zmq_hashblock"), "{err}");

    let serving = common::serve(Pool::new(config(&zmq), store().await).await.unwrap()).await;
    let pool = serving.pool.clone();
    let mut miner = Raw::connect(serving.addr).await;
    miner
        .send(concat!(
            r#"{"id":1,"method":"mining.subscribe","params":[]}"#,
            "\n",
            r#"{"id":2,"method":"mining.authorize","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","x"]}"#,
            "\n",
        ))
        .await;
    let first = miner.notify().await;
    // Subscribed before any block is announced (a SUB socket misses what
    // was published before it joined).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&pool.render_metrics().unwrap(), "pool_zmq_connected") != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Blocks from another miner: each reaches this one as clean work, and
    // each was announced over ZMQ (retried a few times, bounded, in case the
    // subscription was still on its way to bitcoind).
    let mut announced = 0.0;
    for _ in 0..3 {
        node.cli(&["generatetoaddress", "1", &elsewhere]).unwrap();
        let job = loop {
            let job = miner.notify().await;
            if job["params"][8] == true {
                break job;
            }
        };
        assert_ne!(job["params"][1], first["params"][1], "work on the new tip");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            announced = metric(&pool.render_metrics().unwrap(), "pool_zmq_hashblock_total");
            if announced >= 1.0 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if announced >= 1.0 {
            break;
        }
    }
    assert!(announced >= 1.0, "no hashblock message arrived");
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_share_the_store_failed_still_gets_its_share() {
    common::init_tracing();
    let regtest = common::regtest_node(110, 0);
    let pg = proofpool_devtools::Postgres::start().expect("PostgreSQL (make setup installs it)");
    let store = Store::open(&pg.url(), &StoreOptions::default())
        .await
        .unwrap();
    let mut config = regtest.pool_config();
    config.vardiff = None;
    config.writer.give_up_after = Duration::from_secs(1);
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;

    let mut raw = Raw::connect(serving.addr).await;
    raw.send(&format!(
        "{}\n{}\n",
        r#"{"id":1,"method":"mining.subscribe","params":["store-outage"]}"#,
        format_args!(r#"{{"id":2,"method":"mining.authorize","params":["{MINER}.o","x"]}}"#),
    ))
    .await;
    raw.reply(2).await;
    let notify = raw.notify().await;
    let job = notify["params"][0].as_str().unwrap().to_owned();
    let ntime = notify["params"][7].as_str().unwrap().to_owned();

    // The database goes away; the next valid share (on regtest, a block)
    // cannot be written and its miner is told so.
    pg.pause().unwrap();
    let mut failed = None;
    for nonce in 0..40u64 {
        raw.send(&format!(
            r#"{{"id":{},"method":"mining.submit","params":["{MINER}.o","{job}","0000000000000000","{ntime}","{nonce:08x}"]}}"#,
            100 + nonce
        ))
        .await;
        raw.send("\n").await;
        let (reply, _) = raw.reply(100 + nonce).await;
        match error_code(&reply) {
            23 => continue,
            20 => {
                failed = Some(reply);
                break;
            }
            other => panic!("unexpected {other}: {reply}"),
        }
    }
    let failed = failed.expect("a valid share within 40 nonces");
    assert!(
        failed["error"][1]
            .as_str()
            .unwrap()
            .contains("not recorded"),
        "{failed}"
    );
    // bitcoind took the block regardless; once the database is back the
    // pool writes the share again and ties the block to it.
    pg.resume().unwrap();
    let mut block = None;
    for _ in 0..300 {
        if let Some(b) = serving.pool.blocks().first().cloned() {
            block = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let block = block.expect("the block was recorded within 30 s");
    assert!(block.accepted, "{block:?}");
    assert!(block.share_seq > 0, "the block has no share: {block:?}");
    serving.stop().await;
    let shares = store.shares_after(0, 100).await.unwrap();
    let share = shares
        .iter()
        .find(|s| s.seq == block.share_seq)
        .expect("the solving share is in the store");
    let mut display = share.share.hash;
    display.reverse();
    assert_eq!(alloy::hex::encode(display), block.hash, "{share:?}");
    let recorded = store.blocks().await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].share_seq, block.share_seq);
    store.close().await;
}

/// A block-solving share that the full share queue refuses is still a
/// block: bitcoind gets it at once, the miner is told, and the share is
/// written once the store takes shares again (a full queue must not cost the
/// pool a block, nor leave the block without its share).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_share_the_full_queue_refused_is_still_submitted_and_recorded() {
    common::init_tracing();
    let regtest = common::regtest_node(110, 0);
    let pg = proofpool_devtools::Postgres::start().expect("PostgreSQL (make setup installs it)");
    let store = Store::open(&pg.url(), &StoreOptions::default())
        .await
        .unwrap();
    let mut config = regtest.pool_config();
    config.vardiff = None;
    // One share fits in the queue; the batch the writer holds waits out the
    // outage instead of failing.
    config.writer.queue_capacity = 1;
    config.writer.give_up_after = Duration::from_secs(20);
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;

    let node =
        proofpool_node::NodeClient::new(vec![regtest.endpoint()], Duration::from_secs(30)).unwrap();
    let tip = || async { node.get_blockchain_info().await.unwrap().blocks };

    // The database goes away. On regtest every valid share is a block. Each
    // miner below connects once the pool works on the newest tip and mines
    // until one share is valid: the first two are queued (the writer holds
    // one, the queue the other: their replies wait for the database) and
    // their blocks submitted; the third is refused by the full queue, at
    // once. Replies on one connection keep their order, so each miner has
    // its own connection.
    pg.pause().unwrap();
    let mut refused = None;
    let mut queued = 0;
    'miners: for m in 0..6u64 {
        // The pool's newest work builds on bitcoind's tip.
        let height = tip().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(tip().await, height, "only the pool mines here");
        let mut raw = Raw::connect(serving.addr).await;
        raw.send(&format!(
            "{}\n{}\n",
            r#"{"id":1,"method":"mining.subscribe","params":["queue-full"]}"#,
            format_args!(r#"{{"id":2,"method":"mining.authorize","params":["{MINER}.q{m}","x"]}}"#),
        ))
        .await;
        raw.reply(2).await;
        let notify = raw.notify().await;
        let job = notify["params"][0].as_str().unwrap().to_owned();
        let ntime = notify["params"][7].as_str().unwrap().to_owned();
        for n in 0..64u64 {
            let id = 100 + n;
            raw.send(&format!(
                r#"{{"id":{id},"method":"mining.submit","params":["{MINER}.q{m}","{job}","0000000000000000","{ntime}","{n:08x}"]}}"#,
            ))
            .await;
            raw.send("\n").await;
            // A queued share's reply waits for its commit.
            let reply = tokio::time::timeout(Duration::from_secs(1), raw.reply(id)).await;
            let Ok((reply, _)) = reply else {
                queued += 1;
                // Its block went to bitcoind: the tip moves.
                for _ in 0..100 {
                    if tip().await > height {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue 'miners;
            };
            let text = reply["error"][1].as_str().unwrap_or_default().to_owned();
            match error_code(&reply) {
                23 => {}
                20 if text.contains("solved a block") => {
                    refused = Some((reply, height + 1));
                    break 'miners;
                }
                other => panic!("unexpected {other}: {reply}"),
            }
        }
        panic!("no valid share in 64 nonces");
    }
    let (refused, block_height) = refused.expect("a block-solving share refused by the full queue");
    assert!(queued >= 1, "the queue held shares before it refused one");
    assert!(
        refused["error"][1].as_str().unwrap().contains("overloaded"),
        "{refused}"
    );
    // bitcoind takes the refused share's block although the share is not
    // recorded yet (its reply can come back before the submit is done).
    let mut height = tip().await;
    for _ in 0..100 {
        if height >= block_height {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        height = tip().await;
    }
    assert_eq!(height, block_height, "the refused share's block is the tip");

    // Once the database is back, the refused share is written and the block
    // is tied to it; so are the queued shares' blocks.
    pg.resume().unwrap();
    let tied = |blocks: &[proofpool_pool::FoundBlock]| {
        blocks.len() == queued + 1
            && blocks.iter().all(|b| b.accepted && b.share_seq > 0)
            && blocks.iter().any(|b| b.height == block_height)
    };
    let mut blocks = Vec::new();
    for _ in 0..300 {
        blocks = serving.pool.blocks();
        if tied(&blocks) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    serving.stop().await;
    assert!(
        tied(&blocks),
        "every block recorded with its share within 30 s: {blocks:?}"
    );
    assert_eq!(tip().await, 110 + blocks.len() as u64, "{blocks:?}");
    let shares = store.shares_after(0, 1_000).await.unwrap();
    for block in &blocks {
        let share = shares
            .iter()
            .find(|s| s.seq == block.share_seq)
            .expect("the solving share is in the store");
        let mut display = share.share.hash;
        display.reverse();
        assert_eq!(alloy::hex::encode(display), block.hash, "{share:?}");
    }
    store.close().await;
}

/// The per-connection share commitment (docs/share-commitment.md) is a
/// coinbase output real bitcoind accepts in a block, and reads back from it.
#[test]
fn a_block_whose_coinbase_carries_the_share_commitment_is_accepted() {
    use proofpool_epoch::share_commitment::ShareCommitment;
    let regtest = common::regtest_node(101, 0);
    let commitment = ShareCommitment {
        miner: MINER.parse().unwrap(),
        target_bits: 0x207f_ffff,
        log_head: alloy::primitives::B256::repeat_byte(0x42),
    };
    let script = alloy::hex::encode(commitment.script());
    let out = regtest
        .node
        .cli(&["generateblock", &format!("raw({script})"), "[]"])
        .unwrap();
    let hash = serde_json::from_str::<Value>(&out).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let block: Value =
        serde_json::from_str(&regtest.node.cli(&["getblock", &hash, "2"]).unwrap()).unwrap();
    assert_eq!(block["confirmations"], 1, "in the best chain: {block}");
    let outputs = block["tx"][0]["vout"].as_array().unwrap();
    let found = outputs
        .iter()
        .filter_map(|o| o["scriptPubKey"]["hex"].as_str())
        .filter_map(|hex| alloy::hex::decode(hex).ok())
        .find_map(|bytes| ShareCommitment::from_script(&bytes).ok());
    assert_eq!(found, Some(commitment), "{outputs:?}");
}

/// A Stratum V2 miner written for the test from the spec, on the SRI
/// message crates: the pool's jobs are rebuilt and hashed here, not with
/// the pool's code.
mod sv2_miner {
    use bitcoin::hashes::{Hash, sha256d};
    use proofpool_primitives::U256;
    use stratum_core::common_messages_sv2::SetupConnectionOwned;
    use stratum_core::mining_sv2::{
        NewExtendedMiningJobOwned, OpenExtendedMiningChannelOwned, SetNewPrevHashOwned,
        SubmitSharesExtendedOwned,
    };
    use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};

    pub(super) fn setup() -> SetupConnectionOwned {
        proofpool_pool::sv2::setup::mining_request(0b100, "proofpool-test", "").unwrap()
    }

    pub(super) fn open(user: &str) -> AnyMessageOwned {
        AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannel(
            OpenExtendedMiningChannelOwned {
                request_id: 7,
                user_identity: user.try_into().unwrap(),
                // "Not known yet": the pool's start difficulty.
                nominal_hash_rate: 0.0,
                max_target: [0xffu8; 32].into(),
                min_extranonce_size: 4,
            },
        ))
    }

    pub(super) fn mining(message: Option<AnyMessageOwned>) -> MiningOwned {
        match message {
            Some(AnyMessageOwned::Mining(m)) => m,
            Some(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionError(e))) => {
                panic!("setup refused: {e}")
            }
            other => panic!("not a mining message: {other:?}"),
        }
    }

    /// The channel as the pool opened it, and its current work.
    pub(super) struct Work {
        pub(super) channel_id: u32,
        pub(super) target: U256,
        pub(super) prefix: Vec<u8>,
        pub(super) size: usize,
        pub(super) job: Option<NewExtendedMiningJobOwned>,
        pub(super) tip: Option<SetNewPrevHashOwned>,
    }

    impl Work {
        /// Takes a job or a new tip.
        pub(super) fn update(&mut self, m: MiningOwned) -> bool {
            match m {
                MiningOwned::NewExtendedMiningJob(j) => self.job = Some(j),
                MiningOwned::SetNewPrevHash(p) => self.tip = Some(p),
                _ => return false,
            }
            true
        }

        /// A share on the current job with extranonce `en` (its size), at
        /// the channel's target: the nonce is ground until the header's
        /// hash meets it.
        pub(super) fn mine(
            &self,
            sequence_number: u32,
            en: u64,
        ) -> (SubmitSharesExtendedOwned, [u8; 32]) {
            self.mine_where(sequence_number, en, |hash| hash <= self.target)
        }

        /// [`Work::mine`], grinding until the hash (as a number) passes `keep`.
        pub(super) fn mine_where(
            &self,
            sequence_number: u32,
            en: u64,
            keep: impl Fn(U256) -> bool,
        ) -> (SubmitSharesExtendedOwned, [u8; 32]) {
            let job = self.job.as_ref().unwrap();
            let tip = self.tip.as_ref().unwrap();
            let en2 = en.to_be_bytes()[8 - self.size..].to_vec();
            let mut coinbase = job.coinbase_tx_prefix.as_ref().to_vec();
            coinbase.extend_from_slice(&self.prefix);
            coinbase.extend_from_slice(&en2);
            coinbase.extend_from_slice(job.coinbase_tx_suffix.as_ref());
            let mut root = sha256d::Hash::hash(&coinbase).to_byte_array();
            for h in job.merkle_path.clone().into_inner() {
                let mut pair = root.to_vec();
                pair.extend_from_slice(&h.to_array());
                root = sha256d::Hash::hash(&pair).to_byte_array();
            }
            let ntime = tip.min_ntime;
            for nonce in 0u32.. {
                let mut header = Vec::with_capacity(80);
                header.extend_from_slice(&job.version.to_le_bytes());
                header.extend_from_slice(&tip.prev_hash.to_array());
                header.extend_from_slice(&root);
                header.extend_from_slice(&ntime.to_le_bytes());
                header.extend_from_slice(&tip.nbits.to_le_bytes());
                header.extend_from_slice(&nonce.to_le_bytes());
                let hash = sha256d::Hash::hash(&header).to_byte_array();
                if keep(U256::from_le_bytes(hash)) {
                    let share = SubmitSharesExtendedOwned {
                        channel_id: self.channel_id,
                        sequence_number,
                        job_id: job.job_id,
                        nonce,
                        ntime,
                        version: job.version,
                        extranonce: en2.try_into().unwrap(),
                    };
                    return (share, hash);
                }
            }
            unreachable!("some nonce meets a regtest share target")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stratum_v2_miner_finds_blocks_that_bitcoind_accepts() {
    use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
    let s = setup_with(true).await;
    let (sv2_addr, key) = s.sv2.clone().unwrap();
    let height_before: u64 = s.node.cli(&["getblockcount"]).unwrap().parse().unwrap();

    // A miner pinning another key is refused in the handshake.
    let other = AuthorityKey::generate().unwrap();
    let (r, w) = TcpStream::connect(sv2_addr).await.unwrap().into_split();
    assert!(
        Sv2Connection::connect(r, w, *other.public(), Duration::from_secs(5))
            .await
            .is_err()
    );

    let (r, w) = TcpStream::connect(sv2_addr).await.unwrap().into_split();
    let mut conn = Sv2Connection::connect(r, w, *key.public(), Duration::from_secs(5))
        .await
        .unwrap();
    conn.send(sv2_miner::setup()).await.unwrap();
    match conn.read_message().await.unwrap() {
        Some(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(ok))) => {
            assert_eq!(ok.used_version, 2)
        }
        other => panic!("{other:?}"),
    }
    conn.send(sv2_miner::open(&format!("{MINER}.v2rig")))
        .await
        .unwrap();
    let MiningOwned::OpenExtendedMiningChannelSuccess(open) =
        sv2_miner::mining(conn.read_message().await.unwrap())
    else {
        panic!("channel not opened");
    };
    assert_eq!(open.request_id, 7);
    assert_ne!(open.channel_id, open.group_channel_id);
    let mut work = sv2_miner::Work {
        channel_id: open.channel_id,
        target: proofpool_primitives::U256::from_le_bytes(open.target.to_array()),
        prefix: open.extranonce_prefix.as_ref().to_vec(),
        size: usize::from(open.extranonce_size),
        job: None,
        tip: None,
    };
    assert!(work.size >= 4);
    // A future job, then the tip that activates it.
    for _ in 0..2 {
        assert!(work.update(sv2_miner::mining(conn.read_message().await.unwrap())));
    }
    assert_eq!(
        work.job.as_ref().unwrap().job_id,
        work.tip.as_ref().unwrap().job_id
    );
    assert!(
        work.job
            .as_ref()
            .unwrap()
            .min_ntime
            .clone()
            .into_inner()
            .is_none()
    );

    // UpdateChannel: another channel's id and a hashrate that is not a
    // number are refused by name.
    let update = |channel_id: u32, nominal_hash_rate: f32, max_target: [u8; 32]| {
        AnyMessageOwned::Mining(MiningOwned::UpdateChannel(
            stratum_core::mining_sv2::UpdateChannelOwned {
                channel_id,
                nominal_hash_rate,
                maximum_target: max_target.into(),
            },
        ))
    };
    conn.send(update(work.channel_id + 40, 1.0, [0xff; 32]))
        .await
        .unwrap();
    conn.send(update(work.channel_id, f32::NAN, [0xff; 32]))
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::UpdateChannelError(e) => codes.push(e.error_code.as_utf8_or_hex()),
            other => {
                let shown = format!("{other:?}");
                assert!(work.update(other), "{shown}")
            }
        }
    }
    assert_eq!(codes, ["invalid-channel-id", "invalid-nominal-hashrate"]);
    // 2^15 H/s at vardiff's 18 shares a minute asks for difficulty
    // 2^15 × 60 / 18 / 2^32 = 1 / 39321.6 = 2.5431315104166…e-5, cut to 13
    // significant digits; its target, rounded down to the compact form the
    // coinbase commits to (docs/share-commitment.md), is what SetTarget
    // says, and a job live at once commits to it.
    conn.send(update(work.channel_id, 32768.0, [0xff; 32]))
        .await
        .unwrap();
    let exact = "0.00002543131510416"
        .parse::<proofpool_primitives::Difficulty>()
        .unwrap()
        .to_target();
    let compact = bitcoin::Target::from_le_bytes(exact.to_le_bytes::<32>()).to_compact_lossy();
    let new_target = proofpool_primitives::U256::from_le_bytes(
        bitcoin::Target::from_compact(compact).to_le_bytes(),
    );
    assert!(new_target <= exact);
    loop {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::SetTarget(t) => {
                assert_eq!(t.channel_id, work.channel_id);
                assert_eq!(
                    proofpool_primitives::U256::from_le_bytes(t.maximum_target.to_array()),
                    new_target
                );
                break;
            }
            other => {
                let shown = format!("{other:?}");
                assert!(work.update(other), "{shown}")
            }
        }
    }
    let MiningOwned::NewExtendedMiningJob(retargeted) =
        sv2_miner::mining(conn.read_message().await.unwrap())
    else {
        panic!("no job after SetTarget");
    };
    assert!(retargeted.min_ntime.clone().into_inner().is_some());
    work.job = Some(retargeted);
    let old_target = std::mem::replace(&mut work.target, new_target);
    // A share meeting the old target but not the new one, on the new job:
    // too low.
    let (low, _) = work.mine_where(90, 90, |hash| hash <= old_target && hash > new_target);
    conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
        low,
    )))
    .await
    .unwrap();
    loop {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesError(e) => {
                assert_eq!(e.error_code.as_utf8_or_hex(), "difficulty-too-low");
                break;
            }
            other => {
                let shown = format!("{other:?}");
                assert!(work.update(other), "{shown}")
            }
        }
    }

    // Three shares, each acknowledged once durable. On regtest a share is
    // often a block, and the pool's new tip can cross a share mined on the
    // old one: that share is stale, and the miner mines again on the tip.
    let mut accepted = 0u32;
    let mut hashes = Vec::new();
    let mut seq = 0u32;
    let mut stale = 0;
    while accepted < 3 {
        seq += 1;
        let (share, hash) = work.mine(seq, u64::from(seq));
        conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
            share.clone(),
        )))
        .await
        .unwrap();
        let ok = loop {
            match sv2_miner::mining(conn.read_message().await.unwrap()) {
                MiningOwned::SubmitSharesSuccess(ok) => {
                    assert_eq!(ok.last_sequence_number, seq);
                    accepted += ok.new_submits_accepted_count;
                    break true;
                }
                MiningOwned::SubmitSharesError(e) => {
                    assert_eq!(e.error_code.as_utf8_or_hex(), "stale-share", "share {seq}");
                    break false;
                }
                other => assert!(work.update(other)),
            }
        };
        if !ok {
            stale += 1;
            assert!(stale <= 5, "{stale} stale shares in a row");
            // The new tip is on its way, if it has not arrived already.
            while work.tip.as_ref().unwrap().job_id == share.job_id {
                let next = sv2_miner::mining(conn.read_message().await.unwrap());
                assert!(work.update(next));
            }
            continue;
        }
        hashes.push(hash);
        // The same share again is a duplicate (or stale, once a block
        // moved the tip).
        conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
            share,
        )))
        .await
        .unwrap();
        loop {
            match sv2_miner::mining(conn.read_message().await.unwrap()) {
                MiningOwned::SubmitSharesError(e) => {
                    let code = e.error_code.as_utf8_or_hex();
                    assert!(code == "duplicate-share" || code == "stale-share", "{code}");
                    break;
                }
                other => {
                    let shown = format!("{other:?}");
                    assert!(work.update(other), "{shown}")
                }
            }
        }
    }
    assert_eq!(accepted, 3);
    // A wrong extranonce size and another channel's id are refused by name.
    let (mut bad, _) = work.mine(9, 9);
    bad.extranonce = vec![0u8; work.size + 1].try_into().unwrap();
    conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
        bad.clone(),
    )))
    .await
    .unwrap();
    bad.channel_id = work.channel_id + 40;
    conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
        bad,
    )))
    .await
    .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesError(e) => codes.push(e.error_code.as_utf8_or_hex()),
            other => {
                let shown = format!("{other:?}");
                assert!(work.update(other), "{shown}")
            }
        }
    }
    assert_eq!(codes, ["bad-extranonce-size", "invalid-channel-id"]);

    // The shares are in the store, credited to the miner, on the V2
    // connection's extranonce prefix; on regtest they found blocks, which
    // bitcoind accepted, paying the pool.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = s.pool.blocks();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!found.is_empty(), "a V2 share found a block");
    let height_after: u64 = s.node.cli(&["getblockcount"]).unwrap().parse().unwrap();
    assert!(height_after > height_before);
    let block: Value =
        serde_json::from_str(&s.node.cli(&["getblock", &found[0].hash, "2"]).unwrap()).unwrap();
    let paid = block["tx"][0]["vout"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["scriptPubKey"]["address"] == s.payout.to_string());
    assert!(paid, "the block pays the pool: {block}");
    drop(conn);
    let store = s.pool.store().clone();
    let mut shares = Vec::new();
    for _ in 0..100 {
        shares = store.shares_after(0, 1000).await.unwrap();
        if shares.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shares.len(), 3, "{shares:?}");
    for (share, hash) in shares.iter().zip(&hashes) {
        assert_eq!(share.share.miner.to_checksum(None), MINER);
        assert_eq!(share.share.worker, "v2rig");
        assert_eq!(share.share.extranonce1.to_vec(), work.prefix);
        assert_eq!(share.share.hash.0, *hash);
    }

    // The reference miner over Stratum V2, keeping the watcher's share log:
    // every share it was told was accepted is recorded, with evidence of
    // proof of work bound to its address.
    let dir = TempDir::new("sv2-miner").unwrap();
    let log_path = dir.path().join("shares.db");
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address: sv2_addr.to_string(),
        user: format!("{MINER}.v2ref"),
        threads: 1,
        suggest_difficulty: None,
        max_shares: Some(4),
        tls_ca: None,
        retry_up_to: None,
        share_log: Some(log_path.clone()),
        sv2_authority: Some(*key.public()),
        sv2_standard: false,
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(config, stats.clone(), std::future::pending()),
    )
    .await
    .expect("the V2 miner finished in time")
    .expect("the V2 miner ran");
    // (On regtest nearly every other share is a block, so the tip moves
    // under the miner all the time and some of its shares are stale.)
    let accepted = stats.accepted.load(Ordering::Relaxed);
    assert!(accepted >= 4, "{accepted} accepted");
    let log = proofpool_watch::WatchLog::open(&log_path).await.unwrap();
    let recorded = log.shares().await.unwrap();
    assert_eq!(recorded.len() as u64, accepted);
    for r in &recorded {
        let verified = r.evidence.verify().unwrap();
        assert_eq!(verified.miner.to_checksum(None), MINER);
        assert_eq!(verified.hash, r.hash);
    }
    log.close().await;
    let mut ours = 0;
    for _ in 0..100 {
        ours = store
            .shares_after(0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.share.worker == "v2ref")
            .count() as u64;
        if ours >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Shares still in flight when the miner stopped were accepted too.
    assert!(ours >= accepted, "{ours} stored, {accepted} acknowledged");

    // The reference miner on a standard channel (header-only, as SV2
    // firmware mines): it hashes the pool's merkle roots and submits
    // SubmitSharesStandard; its shares are stored under the channel's
    // extranonce1 then zeros. A share log is refused there: the miner never
    // sees the coinbase its evidence would need.
    let standard = |max_shares: u64, share_log: Option<std::path::PathBuf>| MinerConfig {
        address: sv2_addr.to_string(),
        user: format!("{MINER}.v2std"),
        threads: 2,
        suggest_difficulty: None,
        max_shares: Some(max_shares),
        tls_ca: None,
        retry_up_to: None,
        share_log,
        sv2_authority: Some(*key.public()),
        sv2_standard: true,
    };
    let refused = proofpool_miner::run(
        standard(1, Some(dir.path().join("std.db"))),
        Arc::new(MinerStats::default()),
        std::future::pending(),
    )
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("extended channel")),
        "{refused:?}"
    );
    let stats = Arc::new(MinerStats::default());
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(standard(6, None), stats.clone(), std::future::pending()),
    )
    .await
    .expect("the standard-channel miner finished in time")
    .expect("the standard-channel miner ran");
    let accepted = stats.accepted.load(Ordering::Relaxed);
    assert!(accepted >= 6, "{accepted} accepted");
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = store
            .shares_after(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.share.worker == "v2std")
            .collect();
        if stored.len() as u64 >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored.len() as u64 >= accepted, "{} stored", stored.len());
    for sh in &stored {
        assert!(sh.share.extranonce2.iter().all(|b| *b == 0), "{sh:?}");
    }

    // Header-only mining: one connection (a proxy, say) opens two standard
    // channels. Each gets the whole extranonce (a leased extranonce1, then
    // zeros) and merkle roots; the shares are hashed here from the header
    // alone, and the pool rebuilds the coinbase to check them.
    let (r, w) = TcpStream::connect(sv2_addr).await.unwrap().into_split();
    let mut conn = Sv2Connection::connect(r, w, *key.public(), Duration::from_secs(5))
        .await
        .unwrap();
    // REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING
    conn.send(proofpool_pool::sv2::setup::mining_request(0b101, "proofpool-test", "").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        conn.read_message().await.unwrap(),
        Some(AnyMessageOwned::Common(
            CommonMessagesOwned::SetupConnectionSuccess(_)
        ))
    ));
    let mut standard = Vec::new();
    for (request_id, worker) in [(1u32, "hdr1"), (2, "hdr2")] {
        conn.send(AnyMessageOwned::Mining(
            MiningOwned::OpenStandardMiningChannel(
                stratum_core::mining_sv2::OpenStandardMiningChannelOwned {
                    request_id,
                    user_identity: format!("{MINER}.{worker}").as_str().try_into().unwrap(),
                    nominal_hash_rate: 0.0,
                    max_target: [0xff; 32].into(),
                },
            ),
        ))
        .await
        .unwrap();
        let MiningOwned::OpenStandardMiningChannelSuccess(ok) =
            sv2_miner::mining(conn.read_message().await.unwrap())
        else {
            panic!("standard channel not opened");
        };
        assert_eq!(ok.extranonce_prefix.as_ref().len(), 4 + work.size);
        assert!(ok.extranonce_prefix.as_ref()[4..].iter().all(|b| *b == 0));
        let MiningOwned::NewMiningJob(job) = sv2_miner::mining(conn.read_message().await.unwrap())
        else {
            panic!("no job on the standard channel");
        };
        assert!(job.min_ntime.clone().into_inner().is_none(), "a future job");
        let MiningOwned::SetNewPrevHash(tip) =
            sv2_miner::mining(conn.read_message().await.unwrap())
        else {
            panic!("no tip on the standard channel");
        };
        assert_eq!((tip.channel_id, tip.job_id), (ok.channel_id, job.job_id));
        standard.push((ok, job, tip));
    }
    assert_ne!(standard[0].0.channel_id, standard[1].0.channel_id);
    assert_eq!(
        standard[0].0.group_channel_id,
        standard[1].0.group_channel_id
    );
    // Two channels, two extranonces: two coinbases, two merkle roots.
    assert_ne!(standard[0].1.merkle_root, standard[1].1.merkle_root);
    use bitcoin::hashes::Hash as _;
    let header_only = |job: &stratum_core::mining_sv2::NewMiningJobOwned,
                       tip: &stratum_core::mining_sv2::SetNewPrevHashOwned,
                       target: proofpool_primitives::U256| {
        (0u32..)
            .find_map(|nonce| {
                let mut header = Vec::with_capacity(80);
                header.extend_from_slice(&job.version.to_le_bytes());
                header.extend_from_slice(&tip.prev_hash.to_array());
                header.extend_from_slice(&job.merkle_root.to_array());
                header.extend_from_slice(&tip.min_ntime.to_le_bytes());
                header.extend_from_slice(&tip.nbits.to_le_bytes());
                header.extend_from_slice(&nonce.to_le_bytes());
                let hash = bitcoin::hashes::sha256d::Hash::hash(&header).to_byte_array();
                (proofpool_primitives::U256::from_le_bytes(hash) <= target).then_some((nonce, hash))
            })
            .unwrap()
    };
    let (ok, job, tip) = &standard[1];
    let target = proofpool_primitives::U256::from_le_bytes(ok.target.to_array());
    // The target the pool announces is the one its jobs commit to, in
    // compact form, exactly: a looser one would have the miner send shares
    // the pool refuses (one in 65,536 at the saturated difficulty).
    assert_eq!(
        proofpool_epoch::share_commitment::committed_target(target).1,
        target
    );
    let (nonce, hash) = header_only(job, tip, target);
    conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesStandard(
        stratum_core::mining_sv2::SubmitSharesStandard {
            channel_id: ok.channel_id,
            sequence_number: 1,
            job_id: job.job_id,
            nonce,
            ntime: tip.min_ntime,
            version: job.version,
        },
    )))
    .await
    .unwrap();
    // Accepted on its channel; on regtest it is a block, and the new tip
    // comes as a future job on each channel and one SetNewPrevHash to the
    // group.
    let mut acked = false;
    let mut future = Vec::new();
    let mut group_tip = None;
    while !acked || group_tip.is_none() {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesSuccess(done) => {
                assert_eq!(
                    (done.channel_id, done.last_sequence_number),
                    (ok.channel_id, 1)
                );
                acked = true;
            }
            MiningOwned::NewMiningJob(next) if next.min_ntime.clone().into_inner().is_none() => {
                future.push((next.channel_id, next.job_id));
            }
            MiningOwned::NewMiningJob(_) => {}
            MiningOwned::SetNewPrevHash(next) => group_tip = Some(next),
            other => panic!("{other:?}"),
        }
    }
    let group_tip = group_tip.unwrap();
    assert_eq!(group_tip.channel_id, ok.group_channel_id);
    assert_ne!(group_tip.prev_hash, tip.prev_hash);
    let mut channels: Vec<u32> = future
        .iter()
        .filter(|(_, id)| *id == group_tip.job_id)
        .map(|(channel, _)| *channel)
        .collect();
    channels.sort_unstable();
    assert_eq!(
        channels,
        [standard[0].0.channel_id, standard[1].0.channel_id]
    );
    // The share is stored with the channel's extranonce, zeros after the
    // extranonce1.
    let mut stored = None;
    for _ in 0..100 {
        stored = store
            .shares_after(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.share.worker == "hdr2");
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the header-only share is stored");
    assert_eq!(stored.share.hash.0, hash);
    assert_eq!(
        stored.share.extranonce1.to_vec(),
        ok.extranonce_prefix.as_ref()[..4]
    );
    assert!(stored.share.extranonce2.iter().all(|b| *b == 0));
    drop(conn);
    s.teardown().await;
}

/// A Noise connection to the pool's V2 port, pinning `key`.
async fn sv2_connect(
    addr: std::net::SocketAddr,
    key: &AuthorityKey,
) -> Sv2Connection<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf> {
    let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    Sv2Connection::connect(r, w, *key.public(), Duration::from_secs(5))
        .await
        .unwrap()
}

/// Opens an extended channel for `user`, again while the pool refuses it
/// for want of its first job (it has one within seconds of starting).
async fn open_when_ready(
    conn: &mut Sv2Connection<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf>,
    user: &str,
) -> stratum_core::mining_sv2::OpenExtendedMiningChannelSuccessOwned {
    use stratum_core::parsers_sv2::MiningOwned;
    for _ in 0..100 {
        conn.send(sv2_miner::open(user)).await.unwrap();
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::OpenExtendedMiningChannelSuccess(open) => return open,
            MiningOwned::OpenMiningChannelError(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{other}"),
        }
    }
    panic!("no channel within 10 s")
}

/// A Noise connection to the pool's V2 port.
type V2Conn = Sv2Connection<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf>;

/// A job declaration connection, set up, and a token for `user` with the
/// pool's required outputs (payout first, the token's share commitment
/// second).
async fn jd_token(
    addr: std::net::SocketAddr,
    key: &AuthorityKey,
    user: &str,
    request_id: u32,
) -> (V2Conn, Vec<u8>, Vec<bitcoin::TxOut>) {
    use stratum_core::common_messages_sv2::Protocol;
    use stratum_core::job_declaration_sv2::AllocateMiningJobTokenOwned;
    use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, JobDeclarationOwned};
    let mut jd = sv2_connect(addr, key).await;
    let mut setup = sv2_miner::setup();
    setup.protocol = Protocol::JobDeclarationProtocol;
    setup.flags = 0;
    jd.send(setup).await.unwrap();
    assert!(matches!(
        jd.read_message().await.unwrap(),
        Some(AnyMessageOwned::Common(
            CommonMessagesOwned::SetupConnectionSuccess(_)
        ))
    ));
    jd.send(AnyMessageOwned::JobDeclaration(
        JobDeclarationOwned::AllocateMiningJobToken(AllocateMiningJobTokenOwned {
            user_identifier: user.to_owned().try_into().unwrap(),
            request_id,
        }),
    ))
    .await
    .unwrap();
    let Some(AnyMessageOwned::JobDeclaration(JobDeclarationOwned::AllocateMiningJobTokenSuccess(
        allocated,
    ))) = jd.read_message().await.unwrap()
    else {
        panic!("no token");
    };
    assert_eq!(allocated.request_id, request_id);
    let token = allocated.mining_job_token.as_ref().to_vec();
    let outputs = bitcoin::consensus::deserialize(allocated.coinbase_outputs.as_ref()).unwrap();
    (jd, token, outputs)
}

/// A mining connection that selects its own work (its channels get no job
/// from the pool), with an extended channel open for `user`.
async fn work_selecting_channel(
    addr: std::net::SocketAddr,
    key: &AuthorityKey,
    user: &str,
) -> (
    V2Conn,
    stratum_core::mining_sv2::OpenExtendedMiningChannelSuccessOwned,
) {
    use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned};
    let mut mining = sv2_connect(addr, key).await;
    mining
        .send(proofpool_pool::sv2::setup::mining_request(0b110, "jdc", "").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        mining.read_message().await.unwrap(),
        Some(AnyMessageOwned::Common(
            CommonMessagesOwned::SetupConnectionSuccess(_)
        ))
    ));
    let open = open_when_ready(&mut mining, user).await;
    (mining, open)
}

/// The coinbase's merkle branch for a block of the coinbase then `txids`
/// (internal byte order), worked out level by level here: the sibling at
/// each level, the last hash of an odd level paired with itself.
fn coinbase_branch(txids: &[[u8; 32]]) -> Vec<[u8; 32]> {
    use bitcoin::hashes::{Hash, sha256d};
    let mut level: Vec<Option<[u8; 32]>> = std::iter::once(None)
        .chain(txids.iter().copied().map(Some))
        .collect();
    let mut branch = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().unwrap());
        }
        branch.push(level[1].unwrap());
        level = level
            .chunks(2)
            .map(|pair| match (pair[0], pair[1]) {
                (Some(a), Some(b)) => {
                    let mut both = a.to_vec();
                    both.extend_from_slice(&b);
                    Some(sha256d::Hash::hash(&both).to_byte_array())
                }
                _ => None,
            })
            .collect();
    }
    branch
}

/// Job declaration in coinbase-only mode, driven with the SRI crates as
/// SRI's job declarator client drives it (its binary needs a template
/// provider this machine cannot build): a token with the pool's required
/// outputs, a coinbase built around them from bitcoind's own template, the
/// job set on a work-selecting extended channel, shares credited to the
/// token's address at its target, a block the client propagates itself and
/// the pool records, and the shares' headers rebuilt from the stored job
/// the auditor's way. Refusals carry the spec's codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_job_mines_blocks_credited_to_its_token() {
    use bitcoin::consensus::{deserialize, serialize};
    use bitcoin::hashes::{Hash, sha256d};
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
    use proofpool_epoch::share_commitment::{ShareCommitment, target_of_bits};
    use proofpool_primitives::U256;
    use stratum_core::binary_sv2::{B064KOwned, B0255Owned, Seq0255Owned, U256Owned};
    use stratum_core::mining_sv2::{SetCustomMiningJobOwned, SubmitSharesExtendedOwned};
    use stratum_core::parsers_sv2::{AnyMessageOwned, MiningOwned};
    let s = setup_full(true, |config| {
        config.jd = Some(proofpool_pool::JdConfig::default());
        // Metrics on, for the job declaration counters.
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (sv2_addr, key) = s.sv2.clone().unwrap();

    // The job declaration connection: a token and the required outputs.
    let (_jd, token, mut outputs) = jd_token(sv2_addr, &key, &format!("{MINER}.jdc"), 41).await;
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].script_pubkey, s.payout.script_pubkey());
    let commitment = ShareCommitment::from_script(outputs[1].script_pubkey.as_bytes()).unwrap();
    assert_eq!(commitment.miner.to_checksum(None), MINER);
    let token_target = target_of_bits(commitment.target_bits).unwrap();

    // The mining connection selects its own work: its channel gets no job.
    let (mut mining, open) = work_selecting_channel(sv2_addr, &key, &format!("{MINER}.jdc")).await;
    let channel_id = open.channel_id;
    let prefix = open.extranonce_prefix.as_ref().to_vec();
    let size = usize::from(open.extranonce_size);

    // A coinbase-only job on bitcoind's template, as the client builds it.
    let gbt: Value = serde_json::from_str(
        &s.node
            .cli(&["getblocktemplate", r#"{"rules":["segwit"]}"#])
            .unwrap(),
    )
    .unwrap();
    let height = gbt["height"].as_u64().unwrap();
    let mut coinbase_prefix = bitcoin::script::Builder::new()
        .push_int(height as i64)
        .into_bytes();
    coinbase_prefix.extend_from_slice(b"/jdc/");
    outputs[0].value = Amount::from_sat(gbt["coinbasevalue"].as_u64().unwrap());
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(
            alloy::hex::decode(gbt["default_witness_commitment"].as_str().unwrap()).unwrap(),
        ),
    });
    let txs: Vec<Transaction> = gbt["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| deserialize(&alloy::hex::decode(t["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert!(!txs.is_empty(), "the template carries the segwit spends");
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    let path = coinbase_branch(&txids);
    let mut prev_hash = alloy::hex::decode(gbt["previousblockhash"].as_str().unwrap()).unwrap();
    prev_hash.reverse();
    let prev_hash: [u8; 32] = prev_hash.try_into().unwrap();
    let nbits = u32::from_str_radix(gbt["bits"].as_str().unwrap(), 16).unwrap();
    let version = gbt["version"].as_u64().unwrap() as u32;
    let ntime = gbt["curtime"].as_u64().unwrap() as u32;
    let set_job = |request_id: u32, prefix: &[u8], outputs: &[TxOut]| {
        AnyMessageOwned::Mining(MiningOwned::SetCustomMiningJob(SetCustomMiningJobOwned {
            channel_id,
            request_id,
            token: B0255Owned::try_from(token.clone()).unwrap(),
            version,
            prev_hash: U256Owned::from(prev_hash),
            min_ntime: ntime,
            nbits,
            coinbase_tx_version: 2,
            coinbase_prefix: B0255Owned::try_from(prefix.to_vec()).unwrap(),
            coinbase_tx_input_n_sequence: u32::MAX,
            coinbase_tx_outputs: B064KOwned::try_from(serialize(&outputs.to_vec())).unwrap(),
            coinbase_tx_locktime: 0,
            merkle_path: Seq0255Owned::new(path.iter().map(|h| U256Owned::from(*h)).collect())
                .unwrap(),
        }))
    };
    let custom_error = |m: Option<AnyMessageOwned>| match sv2_miner::mining(m) {
        MiningOwned::SetCustomMiningJobError(e) => e.error_code.as_utf8_or_hex(),
        other => panic!("expected SetCustomMiningJob.Error, got {other}"),
    };

    // Refused: a scriptSig without the next block's height, and outputs
    // that pay someone else.
    let wrong_height = bitcoin::script::Builder::new()
        .push_int(height as i64 + 1)
        .into_bytes();
    mining
        .send(set_job(1, &wrong_height, &outputs))
        .await
        .unwrap();
    assert_eq!(
        custom_error(mining.read_message().await.unwrap()),
        "invalid-coinbase-prefix"
    );
    let mut paying_elsewhere = outputs.clone();
    paying_elsewhere[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51]);
    mining
        .send(set_job(2, &coinbase_prefix, &paying_elsewhere))
        .await
        .unwrap();
    assert_eq!(
        custom_error(mining.read_message().await.unwrap()),
        "invalid-coinbase-tx-outputs"
    );
    // A coinbase-only job claiming a satoshi more than the pool's own
    // template for the tip pays: fees nothing checks (FPPS would pay them).
    let mut overpaying = outputs.clone();
    overpaying[0].value += Amount::from_sat(1);
    mining
        .send(set_job(5, &coinbase_prefix, &overpaying))
        .await
        .unwrap();
    assert_eq!(
        custom_error(mining.read_message().await.unwrap()),
        "invalid-coinbase-tx-outputs"
    );
    // Accepted; the channel mines at the token's target.
    mining
        .send(set_job(3, &coinbase_prefix, &outputs))
        .await
        .unwrap();
    let job_id = loop {
        match sv2_miner::mining(mining.read_message().await.unwrap()) {
            MiningOwned::SetTarget(t) => {
                assert_eq!(
                    U256::from_le_bytes(t.maximum_target.to_array()),
                    token_target
                )
            }
            MiningOwned::SetCustomMiningJobSuccess(ok) => {
                assert_eq!((ok.channel_id, ok.request_id), (channel_id, 3));
                break ok.job_id;
            }
            other => panic!("expected SetCustomMiningJob.Success, got {other}"),
        }
    };
    // The same job declared again is the same job, under the same id: one
    // header cannot be credited under two.
    mining
        .send(set_job(4, &coinbase_prefix, &outputs))
        .await
        .unwrap();
    match sv2_miner::mining(mining.read_message().await.unwrap()) {
        MiningOwned::SetCustomMiningJobSuccess(ok) => {
            assert_eq!((ok.request_id, ok.job_id), (4, job_id))
        }
        other => panic!("expected SetCustomMiningJob.Success, got {other}"),
    }

    // Shares: the header from the client's own coinbase. On regtest every
    // share at this target is a block too; the pool takes the first as the
    // block (its client propagates it), the second as a share.
    let en2 = vec![0x42u8; size];
    let mut coinbase = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(
                [coinbase_prefix.clone(), prefix.clone(), en2.clone()].concat(),
            ),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs.clone(),
    };
    let mut root = coinbase.compute_txid().to_byte_array();
    for h in &path {
        root = sha256d::Hash::hash(&[root.as_slice(), h].concat()).to_byte_array();
    }
    let network = target_of_bits(nbits).unwrap();
    let header_of = |version: u32, nonce: u32| bitcoin::block::Header {
        version: bitcoin::block::Version::from_consensus(version as i32),
        prev_blockhash: bitcoin::BlockHash::from_byte_array(prev_hash),
        merkle_root: bitcoin::TxMerkleNode::from_byte_array(root),
        time: ntime,
        bits: bitcoin::CompactTarget::from_consensus(nbits),
        nonce,
    };
    let value = |h: &bitcoin::block::Header| U256::from_le_bytes(h.block_hash().to_byte_array());
    assert!(token_target <= network);
    let share_nonce = |version: u32, from: u32| {
        (from..)
            .find(|&n| value(&header_of(version, n)) <= token_target)
            .unwrap()
    };
    let solving = share_nonce(version, 0);
    let second = share_nonce(version, solving + 1);
    let submit = |sequence_number: u32, nonce: u32, version: u32| {
        AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
            SubmitSharesExtendedOwned {
                channel_id,
                sequence_number,
                job_id,
                nonce,
                ntime,
                version,
                extranonce: en2.clone().try_into().unwrap(),
            },
        ))
    };
    mining.send(submit(1, solving, version)).await.unwrap();
    mining.send(submit(2, second, version)).await.unwrap();
    let mut acknowledged = 0;
    while acknowledged < 2 {
        match sv2_miner::mining(mining.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesSuccess(ok) => {
                acknowledged += ok.new_submits_accepted_count;
            }
            other => panic!("expected SubmitShares.Success, got {other}"),
        }
    }
    // The first share again is a duplicate.
    mining.send(submit(3, solving, version)).await.unwrap();
    match sv2_miner::mining(mining.read_message().await.unwrap()) {
        MiningOwned::SubmitSharesError(e) => {
            assert_eq!(e.error_code.as_utf8_or_hex(), "duplicate-share")
        }
        other => panic!("expected SubmitShares.Error, got {other}"),
    }

    // The client propagates its block; the pool sees it and records it.
    coinbase.input[0].witness = Witness::from_slice(&[[0u8; 32]]);
    let block = bitcoin::Block {
        header: header_of(version, solving),
        txdata: std::iter::once(coinbase).chain(txs).collect(),
    };
    assert!(block.check_merkle_root() && block.check_witness_commitment());
    let answer = s
        .node
        .cli(&[
            "submitblock",
            &bitcoin::consensus::encode::serialize_hex(&block),
        ])
        .unwrap_or_default();
    assert!(
        answer.is_empty() || answer == "null",
        "submitblock: {answer}"
    );
    let hash = block.block_hash().to_string();
    let mut found = None;
    for _ in 0..200 {
        found = s.pool.blocks().into_iter().find(|b| b.hash == hash);
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = found.expect("the pool records the declared job's block");
    assert!(found.accepted, "{found:?}");
    assert_eq!(found.finder.to_checksum(None), MINER);
    assert_eq!(found.height, height);

    // Stored: both shares, credited to the token's address at its target,
    // and the job whose record rebuilds their headers the auditor's way.
    let store = s.pool.store().clone();
    let shares = store.shares_after(0, 100).await.unwrap();
    let ours: Vec<_> = shares
        .iter()
        .filter(|sh| sh.share.worker == "jdc")
        .collect();
    assert_eq!(ours.len(), 2);
    let jobs = store.jobs_for_epoch(ours[0].epoch).await.unwrap();
    for sh in &ours {
        assert_eq!(sh.share.miner.to_checksum(None), MINER);
        assert_eq!(sh.share.share_target, token_target);
        let job = jobs
            .iter()
            .find(|j| j.job_id == sh.share.job_id)
            .expect("the declared job is stored");
        assert_eq!(job.log_head, commitment.log_head);
        let parts = proofpool_epoch::header::HeaderParts {
            coinbase1: &job.coinbase1,
            extranonce1: &sh.share.extranonce1,
            extranonce2: &sh.share.extranonce2,
            coinbase2: &job.coinbase2,
            commitment: Some(ShareCommitment {
                miner: sh.share.miner,
                target_bits: commitment.target_bits,
                log_head: job.log_head,
            }),
            coinbase2_suffix: &job.coinbase2_suffix,
            branch: &job.branch,
            version: sh.share.version,
            prev_hash: job.prev_hash,
            ntime: sh.share.ntime,
            nbits: job.nbits,
            nonce: sh.share.nonce,
        };
        assert_eq!(parts.share_hash(), sh.share.hash);
    }
    let stored_block = store
        .blocks()
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.hash.to_string().trim_start_matches("0x") == hash);
    assert!(stored_block.is_some_and(|b| b.status == BlockStatus::Immature));

    // Once the pool's tip moved past it, a share on the declared job is
    // stale (another rolled version each time: never a duplicate).
    let mut stale = None;
    for i in 0u32..100 {
        let rolled = version | ((i + 1) << 13);
        let nonce = share_nonce(rolled, 0);
        mining.send(submit(10 + i, nonce, rolled)).await.unwrap();
        match sv2_miner::mining(mining.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesError(e) => {
                stale = Some(e.error_code.as_utf8_or_hex());
                break;
            }
            MiningOwned::SubmitSharesSuccess(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(stale.as_deref(), Some("stale-share"));
    let metrics = s.pool.render_metrics().expect("metrics are on");
    assert!(metrics.contains("jd_tokens_allocated_total 1"), "{metrics}");
    assert!(metrics.contains("jd_jobs_declared_total 1"), "{metrics}");
    s.teardown().await;
}

/// Job declaration in full-template mode, driven with the SRI crates: the
/// client declares a block of the mempool's transactions and one only it
/// has; the pool asks for that one (`ProvideMissingTransactions`), has its
/// node check the whole block, and issues a token for it. A declaration
/// whose coinbase claims a satoshi more than subsidy and fees is refused
/// with the node's reason; the pool takes full-template jobs only, so the
/// token that declared nothing is refused, as is a job set with the new
/// token but another merkle path; the declared job's solving share becomes
/// a block the pool assembles and submits itself, with the client's
/// transaction in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_template_declaration_is_checked_by_the_node_and_its_block_submitted_by_the_pool() {
    use bitcoin::consensus::{deserialize, serialize};
    use bitcoin::hashes::{Hash, sha256d};
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
    use proofpool_epoch::share_commitment::target_of_bits;
    use proofpool_primitives::U256;
    use stratum_core::binary_sv2::{B064KOwned, B0255Owned, Seq064KOwned, Seq0255Owned, U256Owned};
    use stratum_core::job_declaration_sv2::{
        DeclareMiningJobOwned, ProvideMissingTransactionsSuccessOwned,
    };
    use stratum_core::mining_sv2::{SetCustomMiningJobOwned, SubmitSharesExtendedOwned};
    use stratum_core::parsers_sv2::{AnyMessageOwned, JobDeclarationOwned, MiningOwned};
    let s = setup_full(true, |config| {
        config.jd = Some(proofpool_pool::JdConfig {
            full_template_only: true,
            ..proofpool_pool::JdConfig::default()
        });
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (sv2_addr, key) = s.sv2.clone().unwrap();

    // A transaction only the client has: funded and signed by the node's
    // wallet, never broadcast.
    let to = s.node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    let raw = s
        .node
        .cli(&[
            "createrawtransaction",
            "[]",
            &format!(r#"[{{"{to}":1.0}}]"#),
        ])
        .unwrap();
    let funded: Value =
        serde_json::from_str(&s.node.cli(&["fundrawtransaction", &raw]).unwrap()).unwrap();
    let fee = Amount::from_btc(funded["fee"].as_f64().unwrap()).unwrap();
    let signed: Value = serde_json::from_str(
        &s.node
            .cli(&[
                "signrawtransactionwithwallet",
                funded["hex"].as_str().unwrap(),
            ])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(signed["complete"], true);
    let private: Transaction =
        deserialize(&alloy::hex::decode(signed["hex"].as_str().unwrap()).unwrap()).unwrap();

    // The block: the node's template's transactions, then the private one.
    let gbt: Value = serde_json::from_str(
        &s.node
            .cli(&["getblocktemplate", r#"{"rules":["segwit"]}"#])
            .unwrap(),
    )
    .unwrap();
    let mut txs: Vec<Transaction> = gbt["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| deserialize(&alloy::hex::decode(t["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert!(!txs.is_empty(), "the template carries the segwit spends");
    txs.push(private.clone());
    let height = gbt["height"].as_u64().unwrap();
    let value = Amount::from_sat(gbt["coinbasevalue"].as_u64().unwrap()) + fee;
    let version = gbt["version"].as_u64().unwrap() as u32;
    let nbits = u32::from_str_radix(gbt["bits"].as_str().unwrap(), 16).unwrap();
    let ntime = gbt["curtime"].as_u64().unwrap() as u32;
    let mut prev_hash = alloy::hex::decode(gbt["previousblockhash"].as_str().unwrap()).unwrap();
    prev_hash.reverse();
    let prev_hash: [u8; 32] = prev_hash.try_into().unwrap();
    let txids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_txid().to_byte_array())
        .collect();
    let wtxids: Vec<[u8; 32]> = txs
        .iter()
        .map(|t| t.compute_wtxid().to_byte_array())
        .collect();
    // The witness commitment over these transactions, by BIP141: the
    // merkle root of the wtxids (the coinbase's as zeros), hashed with the
    // zero reserved value.
    let mut level: Vec<[u8; 32]> = std::iter::once([0u8; 32])
        .chain(wtxids.iter().copied())
        .collect();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().unwrap());
        }
        level = level
            .chunks(2)
            .map(|p| sha256d::Hash::hash(&[p[0], p[1]].concat()).to_byte_array())
            .collect();
    }
    let witness_commitment = sha256d::Hash::hash(&[level[0], [0u8; 32]].concat()).to_byte_array();
    let witness_output = TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(
            [
                &[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed][..],
                &witness_commitment,
            ]
            .concat(),
        ),
    };

    // The job declaration connection: a token and the required outputs.
    let (mut jd, token, mut outputs) = jd_token(sv2_addr, &key, &format!("{MINER}.full"), 1).await;
    let commitment = proofpool_epoch::share_commitment::ShareCommitment::from_script(
        outputs[1].script_pubkey.as_bytes(),
    )
    .unwrap();
    let token_target = target_of_bits(commitment.target_bits).unwrap();
    outputs[0].value = value;
    outputs.push(witness_output);

    // The coinbase around a 12-byte extranonce (the mining channel's 4 and
    // 8), split there as the declaration carries it.
    let mut script_prefix = bitcoin::script::Builder::new()
        .push_int(height as i64)
        .into_bytes();
    script_prefix.extend_from_slice(b"/full/");
    let coinbase_with = |outputs: &[TxOut], extranonce: &[u8]| Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes([script_prefix.as_slice(), extranonce].concat()),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs.to_vec(),
    };
    let declare_naming = |request_id: u32, outputs: &[TxOut], wtxids: &[[u8; 32]]| {
        let bytes = serialize(&coinbase_with(outputs, &[0u8; 12]));
        let cut = 4 + 1 + 36 + 1 + script_prefix.len();
        AnyMessageOwned::JobDeclaration(JobDeclarationOwned::DeclareMiningJob(
            DeclareMiningJobOwned {
                request_id,
                mining_job_token: B0255Owned::try_from(token.clone()).unwrap(),
                version,
                coinbase_tx_prefix: B064KOwned::try_from(bytes[..cut].to_vec()).unwrap(),
                coinbase_tx_suffix: B064KOwned::try_from(bytes[cut + 12..].to_vec()).unwrap(),
                wtxid_list: Seq064KOwned::new(wtxids.iter().map(|w| U256Owned::from(*w)).collect())
                    .unwrap(),
                excess_data: B064KOwned::try_from(Vec::new()).unwrap(),
            },
        ))
    };
    // Answers the pool's questions about transactions until it decides;
    // the private transaction is always among those asked for.
    async fn decide(jd: &mut V2Conn, txs: &[Transaction]) -> JobDeclarationOwned {
        let last = (txs.len() - 1) as u16;
        loop {
            match jd.read_message().await.unwrap() {
                Some(AnyMessageOwned::JobDeclaration(
                    JobDeclarationOwned::ProvideMissingTransactions(ask),
                )) => {
                    let positions = ask.unknown_tx_position_list.into_inner();
                    assert!(positions.contains(&last), "{positions:?}");
                    let list = positions
                        .iter()
                        .map(|&p| serialize(&txs[usize::from(p)]).try_into().unwrap())
                        .collect();
                    jd.send(AnyMessageOwned::JobDeclaration(
                        JobDeclarationOwned::ProvideMissingTransactionsSuccess(
                            ProvideMissingTransactionsSuccessOwned {
                                request_id: ask.request_id,
                                transaction_list: Seq064KOwned::new(list).unwrap(),
                            },
                        ),
                    ))
                    .await
                    .unwrap();
                }
                Some(AnyMessageOwned::JobDeclaration(decided)) => return decided,
                other => panic!("{other:?}"),
            }
        }
    }
    let declare = |request_id: u32, outputs: &[TxOut]| declare_naming(request_id, outputs, &wtxids);
    // A declaration naming 3,000 transactions (96 KB, more than a mining
    // frame may be) is read whole: the pool asks for all of them, and an
    // answer providing none is refused.
    let made_up: Vec<[u8; 32]> = (0..3000u32)
        .map(|i| {
            let mut w = [0xeeu8; 32];
            w[..4].copy_from_slice(&i.to_le_bytes());
            w
        })
        .collect();
    jd.send(declare_naming(4, &outputs, &made_up))
        .await
        .unwrap();
    match jd.read_message().await.unwrap() {
        Some(AnyMessageOwned::JobDeclaration(JobDeclarationOwned::ProvideMissingTransactions(
            ask,
        ))) => {
            assert_eq!(ask.request_id, 4);
            assert_eq!(ask.unknown_tx_position_list.into_inner().len(), 3000);
        }
        other => panic!("{other:?}"),
    }
    jd.send(AnyMessageOwned::JobDeclaration(
        JobDeclarationOwned::ProvideMissingTransactionsSuccess(
            ProvideMissingTransactionsSuccessOwned {
                request_id: 4,
                transaction_list: Seq064KOwned::new(Vec::new()).unwrap(),
            },
        ),
    ))
    .await
    .unwrap();
    match jd.read_message().await.unwrap() {
        Some(AnyMessageOwned::JobDeclaration(JobDeclarationOwned::DeclareMiningJobError(e))) => {
            assert_eq!(e.error_code.as_utf8_or_hex(), "missing-txs")
        }
        other => panic!("{other:?}"),
    }
    // A coinbase claiming one satoshi more than subsidy and fees: the node
    // refuses the block.
    let mut greedy = outputs.clone();
    greedy[0].value += Amount::from_sat(1);
    jd.send(declare(2, &greedy)).await.unwrap();
    match decide(&mut jd, &txs).await {
        JobDeclarationOwned::DeclareMiningJobError(e) => {
            assert_eq!(e.request_id, 2);
            assert_eq!(e.error_code.as_utf8_or_hex(), "invalid-job");
            let details = String::from_utf8_lossy(e.error_details.as_ref()).into_owned();
            assert!(details.contains("bad-cb-amount"), "{details}");
        }
        other => panic!("{other}"),
    }
    jd.send(declare(3, &outputs)).await.unwrap();
    let declared_token = match decide(&mut jd, &txs).await {
        JobDeclarationOwned::DeclareMiningJobSuccess(ok) => {
            assert_eq!(ok.request_id, 3);
            ok.new_mining_job_token.as_ref().to_vec()
        }
        other => panic!("{other}"),
    };

    // The mining connection sets the declared job with the new token.
    let (mut mining, open) = work_selecting_channel(sv2_addr, &key, &format!("{MINER}.full")).await;
    let channel_id = open.channel_id;
    let prefix = open.extranonce_prefix.as_ref().to_vec();
    let size = usize::from(open.extranonce_size);
    assert_eq!(prefix.len() + size, 12);
    let set_job_with = |token: &[u8], request_id: u32, path: &[[u8; 32]]| {
        AnyMessageOwned::Mining(MiningOwned::SetCustomMiningJob(SetCustomMiningJobOwned {
            channel_id,
            request_id,
            token: B0255Owned::try_from(token.to_vec()).unwrap(),
            version,
            prev_hash: U256Owned::from(prev_hash),
            min_ntime: ntime,
            nbits,
            coinbase_tx_version: 2,
            coinbase_prefix: B0255Owned::try_from(script_prefix.clone()).unwrap(),
            coinbase_tx_input_n_sequence: u32::MAX,
            coinbase_tx_outputs: B064KOwned::try_from(serialize(&outputs)).unwrap(),
            coinbase_tx_locktime: 0,
            merkle_path: Seq0255Owned::new(path.iter().map(|h| U256Owned::from(*h)).collect())
                .unwrap(),
        }))
    };
    let set_job =
        |request_id: u32, path: &[[u8; 32]]| set_job_with(&declared_token, request_id, path);
    let path = coinbase_branch(&txids);
    // The pool takes full-template jobs only: the token that declared
    // nothing is refused.
    mining.send(set_job_with(&token, 9, &path)).await.unwrap();
    match sv2_miner::mining(mining.read_message().await.unwrap()) {
        MiningOwned::SetCustomMiningJobError(e) => {
            assert_eq!(e.error_code.as_utf8_or_hex(), "invalid-mining-job-token")
        }
        other => panic!("expected SetCustomMiningJob.Error, got {other}"),
    }
    // Without the private transaction: not the declared block.
    mining
        .send(set_job(1, &coinbase_branch(&txids[..txids.len() - 1])))
        .await
        .unwrap();
    match sv2_miner::mining(mining.read_message().await.unwrap()) {
        MiningOwned::SetCustomMiningJobError(e) => {
            assert_eq!(e.error_code.as_utf8_or_hex(), "invalid-merkle-path")
        }
        other => panic!("expected SetCustomMiningJob.Error, got {other}"),
    }
    mining.send(set_job(2, &path)).await.unwrap();
    let job_id = loop {
        match sv2_miner::mining(mining.read_message().await.unwrap()) {
            MiningOwned::SetTarget(_) => {}
            MiningOwned::SetCustomMiningJobSuccess(ok) => break ok.job_id,
            other => panic!("expected SetCustomMiningJob.Success, got {other}"),
        }
    };

    // A share at the token's target is a block on regtest: the pool
    // assembles it with the declared transactions and submits it.
    let en2 = vec![0x42u8; size];
    let coinbase = coinbase_with(&outputs, &[prefix.as_slice(), &en2].concat());
    let mut root = coinbase.compute_txid().to_byte_array();
    for h in &path {
        root = sha256d::Hash::hash(&[root.as_slice(), h].concat()).to_byte_array();
    }
    let header_of = |nonce: u32| bitcoin::block::Header {
        version: bitcoin::block::Version::from_consensus(version as i32),
        prev_blockhash: bitcoin::BlockHash::from_byte_array(prev_hash),
        merkle_root: bitcoin::TxMerkleNode::from_byte_array(root),
        time: ntime,
        bits: bitcoin::CompactTarget::from_consensus(nbits),
        nonce,
    };
    let nonce = (0u32..)
        .find(|&n| U256::from_le_bytes(header_of(n).block_hash().to_byte_array()) <= token_target)
        .unwrap();
    assert!(token_target <= target_of_bits(nbits).unwrap());
    mining
        .send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
            SubmitSharesExtendedOwned {
                channel_id,
                sequence_number: 1,
                job_id,
                nonce,
                ntime,
                version,
                extranonce: en2.clone().try_into().unwrap(),
            },
        )))
        .await
        .unwrap();
    match sv2_miner::mining(mining.read_message().await.unwrap()) {
        MiningOwned::SubmitSharesSuccess(ok) => assert_eq!(ok.new_submits_accepted_count, 1),
        other => panic!("expected SubmitShares.Success, got {other}"),
    }
    let hash = header_of(nonce).block_hash().to_string();
    let mut found = None;
    for _ in 0..200 {
        found = s.pool.blocks().into_iter().find(|b| b.hash == hash);
        if found.as_ref().is_some_and(|b| b.accepted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let found = found.expect("the pool submits the declared block");
    assert!(found.accepted, "{found:?}");
    assert_eq!(found.finder.to_checksum(None), MINER);
    let block: Value = serde_json::from_str(&s.node.cli(&["getblock", &hash]).unwrap()).unwrap();
    let in_block: Vec<&str> = block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(in_block.len(), txs.len() + 1);
    assert!(in_block.contains(&private.compute_txid().to_string().as_str()));
    let metrics = s.pool.render_metrics().expect("metrics are on");
    assert!(
        metrics.contains("jd_full_template_jobs_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jd_tokens_allocated_total 2"), "{metrics}");
    s.teardown().await;
}

/// A Stratum V2 connection answers to the same limits as a V1 one: submits
/// past `max_shares_per_second` (and its burst of twice that) are refused
/// with `rate-limited`, and an address that keeps sending what the pool
/// refuses for its own fault (here channels for no payout address) is
/// banned: its connection is closed, and the next one refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stratum_v2_connection_is_rate_limited_and_banned_like_a_v1_one() {
    use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
    let s = setup_full(true, |config| {
        // Easier than regtest's own target: shares that are not blocks, so
        // no new tip makes the ones in flight stale.
        config.start_difficulty = "0.00000000001".parse().unwrap();
        config.min_difficulty = "0.00000000001".parse().unwrap();
        config.max_shares_per_second = Some(5);
        config.ban_threshold = Some(proofpool_pool::BanThreshold {
            min_shares: 1000,
            reject_percent: 90,
            invalid_inputs: 4,
            window: Duration::from_secs(600),
        });
    })
    .await;
    let (sv2_addr, key) = s.sv2.clone().unwrap();
    let connect = || async {
        let mut conn = sv2_connect(sv2_addr, &key).await;
        conn.send(sv2_miner::setup()).await.unwrap();
        assert!(matches!(
            conn.read_message().await.unwrap(),
            Some(AnyMessageOwned::Common(
                CommonMessagesOwned::SetupConnectionSuccess(_)
            ))
        ));
        conn
    };

    // Thirty shares at once: the burst of ten passes, then about five a
    // second; the rest are refused, each with the pool's code.
    let mut conn = connect().await;
    let open = open_when_ready(&mut conn, &format!("{MINER}.fast")).await;
    let mut work = sv2_miner::Work {
        channel_id: open.channel_id,
        target: proofpool_primitives::U256::from_le_bytes(open.target.to_array()),
        prefix: open.extranonce_prefix.as_ref().to_vec(),
        size: usize::from(open.extranonce_size),
        job: None,
        tip: None,
    };
    for _ in 0..2 {
        assert!(work.update(sv2_miner::mining(conn.read_message().await.unwrap())));
    }
    let network =
        proofpool_epoch::share_commitment::target_of_bits(work.tip.as_ref().unwrap().nbits)
            .unwrap();
    for i in 1..=30u32 {
        let (share, _) = work.mine_where(i, u64::from(i), |h| h > network);
        conn.send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
            share,
        )))
        .await
        .unwrap();
    }
    let (mut accepted, mut limited) = (0u32, 0u32);
    while accepted + limited < 30 {
        match sv2_miner::mining(conn.read_message().await.unwrap()) {
            MiningOwned::SubmitSharesSuccess(ok) => accepted += ok.new_submits_accepted_count,
            MiningOwned::SubmitSharesError(e) => {
                assert_eq!(e.error_code.as_utf8_or_hex(), "rate-limited");
                limited += 1;
            }
            // A template refresh: a job live beside the others.
            MiningOwned::NewExtendedMiningJob(_) => {}
            other => panic!("{other}"),
        }
    }
    assert!((10..=15).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + limited, 30);

    // Channels for no payout address, past invalid_inputs: banned.
    let mut bad = connect().await;
    let mut closed = false;
    for _ in 0..10 {
        if bad.send(sv2_miner::open("not-an-address")).await.is_err() {
            closed = true;
            break;
        }
        match bad.read_message().await {
            Ok(Some(AnyMessageOwned::Mining(MiningOwned::OpenMiningChannelError(e)))) => {
                assert_eq!(e.error_code.as_utf8_or_hex(), "invalid-user-identity")
            }
            Ok(None) | Err(_) => {
                closed = true;
                break;
            }
            Ok(Some(other)) => panic!("{other}"),
        }
    }
    assert!(closed, "the banned connection is closed");
    // The next connection from the address is closed before its handshake.
    let (r, w) = TcpStream::connect(sv2_addr).await.unwrap().into_split();
    assert!(
        Sv2Connection::connect(r, w, *key.public(), Duration::from_secs(5))
            .await
            .is_err()
    );
    s.teardown().await;
}
