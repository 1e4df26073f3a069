//! The coinbase settings change while the pool runs, against a real regtest
//! bitcoind: a miner that subscribed to extranonce changes gets
//! `mining.set_extranonce` and a clean job in the new layout and keeps
//! mining, its share in flight on an older job still good; one that did not
//! is asked to reconnect; the reference miner mines straight through a new
//! payout address, and the next block pays it. New jobs reach idle miners
//! through the fan-out, which writes them straight to their sockets.

mod common;

use common::Raw;

use bitcoin::{Address, Network};
use proofpool_miner::{MinerConfig, MinerStats};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MINER: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// A regtest node and a pool on it with metrics on and a SQLite store in a
/// temp dir named `name`, serving on loopback.
async fn metered_pool(
    name: &str,
) -> (
    common::RegtestNode,
    proofpool_devtools::TempDir,
    common::Serving,
) {
    let regtest = common::regtest_node(101, 0);
    let mut config = regtest.pool_config();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let dir = proofpool_devtools::TempDir::new(name).unwrap();
    let serving = common::serve(common::sqlite_pool(config, &dir).await).await;
    (regtest, dir, serving)
}

/// Connects, optionally subscribes to extranonce changes, subscribes and
/// authorizes; returns the connection, its extranonce1 and extranonce2
/// size, and its first job.
async fn miner(addr: std::net::SocketAddr, extranonce: bool) -> (Raw, String, u64, Value) {
    handshake(Raw::connect(addr).await, extranonce).await
}

/// [`miner`] on a connection already open.
async fn handshake(mut raw: Raw, extranonce: bool) -> (Raw, String, u64, Value) {
    if extranonce {
        raw.send("{\"id\":1,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n")
            .await;
    }
    raw.send(&format!(
        "{}\n{}\n",
        r#"{"id":2,"method":"mining.subscribe","params":["raw/1"]}"#,
        format_args!(r#"{{"id":3,"method":"mining.authorize","params":["{MINER}.raw","x"]}}"#),
    ))
    .await;
    let (subscribe, _) = raw.reply(2).await;
    let en1 = subscribe["result"][1].as_str().unwrap().to_owned();
    let en2_size = subscribe["result"][2].as_u64().unwrap();
    assert_eq!(raw.reply(3).await.0["result"], true);
    let job = raw.notify().await;
    (raw, en1, en2_size, job)
}

fn submit(id: u64, job: &Value, en2: &str, nonce: u32) -> String {
    format!(
        r#"{{"id":{id},"method":"mining.submit","params":["{MINER}.raw","{}","{en2}","{}","{nonce:08x}"]}}"#,
        job["params"][0].as_str().unwrap(),
        job["params"][7].as_str().unwrap(),
    ) + "\n"
}

/// Submits `job` with extranonce2 `en2` and nonces from 0 until the pool
/// answers anything but low difficulty (about half of all nonces at this
/// difficulty); returns that reply and the messages before it.
async fn first_not_low(raw: &mut Raw, job: &Value, en2: &str, id: u64) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    for nonce in 0u32..64 {
        raw.send(&submit(id + u64::from(nonce), job, en2, nonce))
            .await;
        let (r, before) = raw.reply(id + u64::from(nonce)).await;
        seen.extend(before);
        if r["error"][0] != 23 {
            return (r, seen);
        }
    }
    panic!("64 nonces in a row were low difficulty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_settings_change_while_miners_mine() {
    common::init_tracing();
    let (regtest, _dir, serving) = metered_pool("pool-reload").await;
    let (addr, pool) = (serving.addr, &serving.pool);
    let old_payout = regtest.payout.script_pubkey();

    // Phase 1, no other miner (so no block moves the tip unless these
    // raw miners find one): a new tag and extranonce2 size.
    let (mut subscribed, en1, en2_size, before) = miner(addr, true).await;
    assert_eq!(en2_size, 8);
    let (mut plain, _, _, _) = miner(addr, false).await;
    let tag = b"/reloaded/".to_vec();
    // Settings that cannot work change nothing.
    assert!(
        pool.set_coinbase(old_payout.clone(), tag.clone(), 9)
            .is_err()
    );
    assert!(
        pool.set_coinbase(old_payout.clone(), vec![b'x'; 90], 4)
            .is_err()
    );
    assert!(
        pool.set_coinbase(old_payout.clone(), tag.clone(), 4)
            .unwrap(),
        "the settings changed"
    );
    assert!(
        !pool
            .set_coinbase(old_payout.clone(), tag.clone(), 4)
            .unwrap(),
        "the same settings again change nothing"
    );
    // The subscribed miner: set_extranonce, then a clean job in the new
    // layout with the new tag.
    let set = subscribed
        .next("mining.set_extranonce")
        .await
        .expect("mining.set_extranonce");
    assert_eq!(set["params"], serde_json::json!([en1, 4]));
    let job = subscribed.notify().await;
    assert_eq!(job["params"][8], true, "clean after set_extranonce: {job}");
    assert!(
        job["params"][2]
            .as_str()
            .unwrap()
            .contains(&hex::encode(&tag)),
        "{job}"
    );
    // A share in flight on the job from before the change, in the old
    // size, is still good (it is also a block, which moves the tip).
    let (r, _) = first_not_low(&mut subscribed, &before, "0000000000000000", 100).await;
    assert_eq!(r["result"], true, "old job, old size: {r}");
    // The new block's job has the new size: the old one is refused with
    // the reason, the new one accepted.
    let job = subscribed.notify().await;
    assert_eq!(job["params"][8], true);
    subscribed
        .send(&submit(10, &job, "0000000000000000", 0))
        .await;
    let (r, _) = subscribed.reply(10).await;
    assert_eq!(r["error"][0], 20, "{r}");
    assert!(
        r["error"][1]
            .as_str()
            .unwrap()
            .contains("extranonce2 must be 4 bytes"),
        "{r}"
    );
    let (r, _) = first_not_low(&mut subscribed, &job, "00000001", 200).await;
    assert_eq!(r["result"], true, "new job, new size: {r}");
    // The miner that cannot take a new extranonce is asked to reconnect.
    let reconnect = plain
        .next("client.reconnect")
        .await
        .expect("client.reconnect");
    assert_eq!(reconnect["params"], serde_json::json!([]));
    assert!(plain.recv().await.is_none(), "and disconnected");
    // New miners get the new size.
    let (_late, _, en2_size, _) = miner(addr, false).await;
    assert_eq!(en2_size, 4);

    // Phase 2: the reference miner mines through a change of payout
    // address, whose job is clean for everyone.
    let mining = common::start_mining(addr.to_string(), &format!("{MINER}.cpu"));
    let stats = mining.stats.clone();
    for _ in 0..200 {
        if stats.accepted.load(Ordering::Relaxed) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted_before = stats.accepted.load(Ordering::Relaxed);
    assert!(accepted_before >= 2, "the miner mines before the change");
    let new_payout = Address::from_str(
        &regtest
            .node
            .cli(&["getnewaddress", "rotated", "bech32"])
            .unwrap(),
    )
    .unwrap()
    .require_network(Network::Regtest)
    .unwrap();
    let new_script = hex::encode(new_payout.script_pubkey().as_bytes());
    assert!(
        pool.set_coinbase(new_payout.script_pubkey(), tag.clone(), 4)
            .unwrap()
    );
    let mut paying = None;
    for _ in 0..100 {
        let n = subscribed.notify().await;
        if n["params"][3].as_str().unwrap().contains(&new_script) {
            paying = Some(n);
            break;
        }
    }
    let paying = paying.expect("a job paying the new address");
    assert_eq!(paying["params"][8], true, "clean: {paying}");
    // The reference miner kept mining, and a block found after the change
    // pays the new address.
    let mut paid = false;
    for _ in 0..600 {
        if let Some(block) = pool.blocks().iter().rev().find(|b| b.accepted) {
            let full: Value =
                serde_json::from_str(&regtest.node.cli(&["getblock", &block.hash, "2"]).unwrap())
                    .unwrap();
            paid = full["tx"][0]["vout"][0]["scriptPubKey"]["address"] == new_payout.to_string();
        }
        if paid && stats.accepted.load(Ordering::Relaxed) >= accepted_before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(paid, "a block after the change pays the new address");
    assert!(
        stats.accepted.load(Ordering::Relaxed) >= accepted_before + 3,
        "the reference miner mined on after the change"
    );
    // The subscribed raw miner; the plain one. (The reference miner came
    // after the size changed.)
    assert_eq!(metric(pool, "pool_extranonce_changes_total"), 1.0);
    assert_eq!(metric(pool, "pool_extranonce_reconnects_total"), 1.0);

    mining.stop().await;
    serving.stop().await;
}

/// The reference miner honours `client.reconnect`: a listener that only
/// redirects (as a pool does when it moves miners to another instance on
/// the same host) sends it to the real pool, where it mines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_miner_follows_client_reconnect() {
    common::init_tracing();
    let regtest = common::regtest_node(101, 0);
    let dir = proofpool_devtools::TempDir::new("pool-redirect").unwrap();
    let serving = common::serve(common::sqlite_pool(regtest.pool_config(), &dir).await).await;
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let from = redirector.local_addr().unwrap();
    let port = serving.addr.port();
    let redirect = tokio::spawn(async move {
        let (socket, _) = redirector.accept().await.unwrap();
        let (r, mut w) = socket.into_split();
        let mut lines = BufReader::new(r).lines();
        // Answer nothing; once the opening arrived, send the miner on.
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("mining.subscribe") {
                break;
            }
        }
        w.write_all(
            format!(
                "{{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"127.0.0.1\",{port},1]}}\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    });
    let stats = Arc::new(MinerStats::default());
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        proofpool_miner::run(
            MinerConfig {
                address: from.to_string(),
                user: format!("{MINER}.cpu"),
                threads: 1,
                suggest_difficulty: None,
                max_shares: Some(2),
                tls_ca: None,
                retry_up_to: None,
                share_log: None,
                sv2_authority: None,
                sv2_standard: false,
            },
            stats.clone(),
            std::future::pending(),
        ),
    )
    .await
    .expect("the miner finished in time")
    .expect("the miner followed the redirect");
    redirect.await.unwrap();
    assert!(stats.accepted.load(Ordering::Relaxed) >= 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the miner waited the second it was asked to"
    );
    serving.stop().await;
}

/// A counter or gauge from the pool's metrics page (0 if absent).
fn metric(pool: &proofpool_pool::Pool, name: &str) -> f64 {
    let page = pool.render_metrics().expect("metrics are on");
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const DIRECT: &str = "pool_job_notifies_total{path=\"direct\"}";

/// Waits (at most 5 s) until `name` is above `than`: the fan-out counts its
/// writes once it has done its share of the sessions, just after the write.
async fn metric_above(pool: &proofpool_pool::Pool, name: &str, than: f64) -> bool {
    for _ in 0..100 {
        if metric(pool, name) > than {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
const WOKEN: &str = "pool_job_notifies_total{path=\"session\"}";

/// A miner whose connection is idle gets new jobs written by the pool's
/// fan-out, not by its session; the session files them before it reads
/// the next submit, so shares on them are credited, a clean one makes the
/// older jobs stale and a fee refresh does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_miners_get_new_jobs_from_the_fan_out() {
    common::init_tracing();
    let (regtest, _dir, serving) = metered_pool("pool-fanout").await;
    let (addr, pool) = (serving.addr, &serving.pool);
    let (mut raw, _, _, first) = miner(addr, false).await;
    assert_eq!(first["params"][0], "1");
    // The session's task goes back to waiting once the job is written.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let direct = metric(pool, DIRECT);

    // A block elsewhere: the new job is clean, next in this connection's ids.
    regtest.mine_elsewhere(1);
    let on_block = raw.notify().await;
    assert_eq!(on_block["params"][0], "2", "{on_block}");
    assert_eq!(on_block["params"][8], true, "{on_block}");
    assert_ne!(
        on_block["params"][1], first["params"][1],
        "a new previous block"
    );
    assert!(
        metric_above(pool, DIRECT, direct).await,
        "written by the fan-out"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A new tag is a job on the same block, not clean.
    let direct = metric(pool, DIRECT);
    let tag = b"/fanned/".to_vec();
    assert!(
        pool.set_coinbase(regtest.payout.script_pubkey(), tag.clone(), 8)
            .unwrap()
    );
    let refresh = raw.notify().await;
    assert_eq!(refresh["params"][0], "3", "{refresh}");
    assert_eq!(refresh["params"][8], false, "{refresh}");
    assert!(
        refresh["params"][2]
            .as_str()
            .unwrap()
            .contains(&hex::encode(&tag))
    );
    assert!(
        metric_above(pool, DIRECT, direct).await,
        "written by the fan-out"
    );

    // The job from before the block is stale; the block's job is still
    // live after the refresh, and credited.
    raw.send(&submit(10, &first, "0000000000000000", 0)).await;
    let (r, _) = raw.reply(10).await;
    assert_eq!(r["error"][0], 21, "{r}");
    let (r, _) = first_not_low(&mut raw, &on_block, "0000000000000001", 100).await;
    assert_eq!(r["result"], true, "a share on a job the fan-out sent: {r}");
    serving.stop().await;
}

/// A miner that stops reading: once its socket is full the fan-out leaves
/// the job to its session (which waits for room), and when the miner reads
/// again every line it gets is whole, its job ids follow each other, the
/// last job is the newest, and a share on it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_stops_reading_gets_whole_lines() {
    common::init_tracing();
    let (regtest, _dir, serving) = metered_pool("pool-stalled").await;
    let (addr, pool) = (serving.addr, &serving.pool);
    // A small receive buffer fills sooner.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (mut raw, _, _, first) =
        handshake(Raw::over(socket.connect(addr).await.unwrap()), false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // New jobs (a new tag each) while the miner reads nothing, until the
    // fan-out found its socket full and woke the session instead.
    let payout = regtest.payout.script_pubkey();
    let woken = metric(pool, WOKEN);
    let mut published = 0u32;
    while metric(pool, WOKEN) == woken {
        assert!(published < 20_000, "the socket never filled");
        for _ in 0..100 {
            published += 1;
            let tag = format!("/t{published}/").into_bytes();
            assert!(pool.set_coinbase(payout.clone(), tag, 8).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metric(pool, DIRECT) > 0.0, "the fan-out wrote jobs before");
    eprintln!("the socket filled after {published} jobs");
    let last_tag = hex::encode(format!("/t{published}/"));

    // Everything arrives whole and in order, up to the newest job.
    let mut id = u64::from_str_radix(first["params"][0].as_str().unwrap(), 16).unwrap();
    let last = loop {
        let job = raw.notify().await;
        let next = u64::from_str_radix(job["params"][0].as_str().unwrap(), 16).unwrap();
        assert_eq!(next, id + 1, "job ids follow each other");
        id = next;
        if job["params"][2].as_str().unwrap().contains(&last_tag) {
            break job;
        }
    };
    let (r, _) = first_not_low(&mut raw, &last, "0000000000000001", 100).await;
    assert_eq!(r["result"], true, "a share on the newest job: {r}");
    serving.stop().await;
}

/// The sum of `pool_shares_rejected_total` over every reason.
fn rejected(pool: &proofpool_pool::Pool) -> f64 {
    let page = pool.render_metrics().expect("metrics are on");
    page.lines()
        .filter(|l| l.starts_with("pool_shares_rejected_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const REPLIED_DIRECT: &str = "pool_submit_replies_total{path=\"direct\"}";
const REPLIED_SESSION: &str = "pool_submit_replies_total{path=\"session\"}";

/// A miner keeps submitting while an earlier share waits for its commit:
/// the session reads and handles the later submits meanwhile (here one on
/// an unknown job, rejected at once) instead of leaving them unread until
/// the commit, yet the miner still gets the replies in the order it sent
/// the submits, the durable `true` first. With nothing else to write, the
/// `true` comes from the share writer itself once the commit is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_are_read_while_an_earlier_share_waits_for_its_commit() {
    use sqlx::Connection;
    common::init_tracing();
    let regtest = common::regtest_node(101, 0);
    let mut config = regtest.pool_config();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    // Every share meets this target: the first one is accepted.
    config.start_difficulty = "0.0000000001".parse().unwrap();
    config.min_difficulty = config.start_difficulty;
    let dir = proofpool_devtools::TempDir::new("pool-pipelined").unwrap();
    let serving = common::serve(common::sqlite_pool(config, &dir).await).await;
    let (addr, pool) = (serving.addr, &serving.pool);
    let (mut raw, _, _, job) = miner(addr, false).await;

    // Another connection holds SQLite's write lock: the share log's next
    // commit waits for it.
    let mut blocker = sqlx::SqliteConnection::connect(&dir.sqlite_url("pool.db"))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let before = rejected(pool);
    raw.send(&submit(10, &job, "0000000000000001", 7)).await;
    let mut unknown = job.clone();
    unknown["params"][0] = Value::from("7fffffff");
    raw.send(&submit(11, &unknown, "0000000000000001", 8)).await;
    let mut handled = false;
    for _ in 0..100 {
        if rejected(pool) > before {
            handled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        handled,
        "the submit after a share waiting for its commit was not handled"
    );
    // Its reply waits behind the share's.
    let early = tokio::time::timeout(Duration::from_millis(300), raw.recv()).await;
    assert!(early.is_err(), "a reply before the commit: {early:?}");

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let (first, before_first) = raw.reply(10).await;
    assert_eq!(first["result"], true, "{first}");
    assert!(
        before_first
            .iter()
            .all(|m| m.get("id") != Some(&Value::from(11))),
        "the later submit's reply came first: {before_first:?}"
    );
    let (second, before_second) = raw.reply(11).await;
    assert_eq!(second["error"][0], 21, "an unknown job: {second}");
    assert_eq!(
        metric(pool, REPLIED_SESSION),
        1.0,
        "an error waited behind it: the session wrote the reply"
    );

    // Every share meets this target, and on regtest about half of them
    // the network's: the first such share on a block claims the next one
    // (its session hands the block task the share's number), and the job
    // changes after its reply.
    const BLOCKS: &str = "pool_blocks_found_total";
    let notified = before_first
        .into_iter()
        .chain(before_second)
        .rfind(|m| m["method"] == "mining.notify");
    let mut job = match notified {
        Some(newer) => newer,
        None if metric(pool, BLOCKS) > 0.0 => raw.notify().await,
        None => job,
    };

    // A share alone: its session goes idle waiting for the commit, and the
    // share writer writes the `true` itself (unless the share claimed a
    // block: then try again on the new job).
    let mut went_direct = false;
    for nonce in 9u32..25 {
        let (direct, blocks) = (metric(pool, REPLIED_DIRECT), metric(pool, BLOCKS));
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut blocker)
            .await
            .unwrap();
        let id = 100 + u64::from(nonce);
        raw.send(&submit(id, &job, "0000000000000001", nonce)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
        let (reply, before) = raw.reply(id).await;
        assert_eq!(reply["result"], true, "{reply}");
        assert!(before.is_empty(), "{before:?}");
        if metric(pool, REPLIED_DIRECT) == direct + 1.0 {
            went_direct = true;
            break;
        }
        assert!(
            metric(pool, BLOCKS) > blocks,
            "the session wrote a reply it could have left to the share writer"
        );
        job = raw.notify().await;
    }
    assert!(went_direct, "16 blocks in a row");
    blocker.close().await.unwrap();
    serving.stop().await;
}
