//! The pool's operational limits against a real regtest bitcoind: the
//! per-address cap, handshake, idle and write timeouts, the share-rate limit, bans
//! (by reject ratio, by malformed requests and by authorize floods), the
//! per-connection worker cap, workers stored only with their first accepted
//! share, sessions reaped as they end, the reference miner coming back after
//! a ban, vardiff retargeting a fast reference miner, and the Prometheus
//! endpoint.
//!
//! Every scenario connects from its own loopback address (127.0.0.x), so
//! per-address limits and bans of one never touch another. Three bitcoinds
//! in all: one per test.

mod common;

use common::Raw;

use bitcoin::{Address, Network};
use proofpool_devtools::{Bitcoind, TempDir};
use proofpool_pool::{BanThreshold, NodeAuth, NodeEndpoint, Pool, PoolConfig, VardiffConfig};
use proofpool_store::{Store, StoreOptions};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const MINER: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// A regtest node with coins and a payout address.
struct Node {
    node: Bitcoind,
    payout: Address,
}

fn start_node() -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (node, payout) =
        Bitcoind::with_pool_payout(101).expect("bitcoind (make setup installs it)");
    let payout = Address::from_str(&payout)
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    Node { node, payout }
}

impl Node {
    /// Pool defaults at regtest's easy difficulty, metrics on a free port.
    fn config(&self) -> PoolConfig {
        let mut config = PoolConfig::new(
            vec![NodeEndpoint {
                url: self.node.rpc_url().parse().unwrap(),
                auth: NodeAuth::Cookie(self.node.cookie_path()),
            }],
            Network::Regtest,
            self.payout.script_pubkey(),
        );
        config.start_difficulty = "0.000000001".parse().unwrap();
        config.min_difficulty = "0.000000001".parse().unwrap();
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        config
    }
}

/// A pool serving on loopback until `teardown`.
struct Running {
    _dir: TempDir,
    pool: Pool,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn start_pool(config: PoolConfig) -> Running {
    let dir = TempDir::new("pool-limits").unwrap();
    let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    let pool = Pool::new(config, store).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let server = tokio::spawn(async move {
        runner
            .run(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        _dir: dir,
        pool,
        addr,
        stop,
        server,
    }
}

impl Running {
    async fn teardown(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .unwrap()
            .unwrap();
    }

    /// `GET /metrics` over HTTP.
    async fn scrape(&self) -> String {
        let addr = self.pool.metrics_addr().expect("metrics are on");
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: pool\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    }

    /// Scrapes until `metric` reaches `at_least` (bounded), returning the page.
    async fn scrape_until(&self, metric: &str, at_least: f64) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.scrape().await;
            if value(&page, metric).is_some_and(|v| v >= at_least) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "{metric} never reached {at_least}:\n{page}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The value of the sample `series` (name plus labels, as rendered).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Connects to `addr` from `127.0.0.<last>`.
async fn connect_from(last: u8, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Connects from 127.0.0.`from`.
async fn raw_from(from: u8, addr: SocketAddr) -> Raw {
    Raw::over(connect_from(from, addr).await)
}

/// Subscribes and authorizes `raw`; returns the current job's id and ntime.
async fn handshake(raw: &mut Raw) -> (String, String) {
    raw.send(&format!(
        "{}\n{}\n",
        r#"{"id":1,"method":"mining.subscribe","params":["limits-test"]}"#,
        format_args!(r#"{{"id":2,"method":"mining.authorize","params":["{MINER}.t","x"]}}"#),
    ))
    .await;
    let (auth, mut seen) = raw.reply(2).await;
    assert_eq!(auth["result"], true, "{auth}");
    loop {
        if let Some(n) = seen.iter().rev().find(|m| m["method"] == "mining.notify") {
            return (
                n["params"][0].as_str().unwrap().to_owned(),
                n["params"][7].as_str().unwrap().to_owned(),
            );
        }
        seen.push(raw.recv().await.expect("closed before work"));
    }
}

fn submit(id: u64, job: &str, ntime: &str) -> String {
    format!(
        r#"{{"id":{id},"method":"mining.submit","params":["{MINER}.t","{job}","0000000000000000","{ntime}","00000000"]}}"#
    ) + "\n"
}

fn error_code(reply: &Value) -> Option<i64> {
    reply["error"][0].as_i64()
}

/// Whether a connection from a refused address is closed without a reply.
async fn refused(from: u8, addr: SocketAddr) -> bool {
    let mut c = raw_from(from, addr).await;
    c.send("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await;
    c.recv().await.is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_timeouts_rate_limit_and_bans() {
    let node = start_node();
    let mut config = node.config();
    config.max_connections_per_ip = Some(2);
    config.handshake_timeout = Some(Duration::from_secs(1));
    config.idle_timeout = Some(Duration::from_secs(2));
    config.write_timeout = Some(Duration::from_secs(1));
    config.max_shares_per_second = Some(10);
    config.ban_threshold = Some(BanThreshold {
        min_shares: 30,
        reject_percent: 50,
        invalid_inputs: 8,
        window: Duration::from_secs(600),
    });
    config.ban_duration = Duration::from_secs(120);
    config.vardiff = None;
    let s = start_pool(config).await;

    // Per-address cap: two from 127.0.0.2 are served, a third is closed.
    let mut a = raw_from(2, s.addr).await;
    handshake(&mut a).await;
    let mut b = raw_from(2, s.addr).await;
    handshake(&mut b).await;
    assert!(
        refused(2, s.addr).await,
        "third connection from one address"
    );
    // Another address is unaffected.
    handshake(&mut raw_from(3, s.addr).await).await;
    // Once one closes, the address may connect again.
    drop(a);
    let mut again = None;
    for _ in 0..50 {
        let mut c = raw_from(2, s.addr).await;
        c.send("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
            .await;
        if c.recv().await.is_some() {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a slot freed up");
    drop(b);

    // Handshake timeout: subscribed but never authorized.
    let mut h = raw_from(4, s.addr).await;
    let opened = Instant::now();
    h.send("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await;
    let seen = h.drain().await;
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert!(
        seen.iter().any(|m| m["method"] == "client.show_message"),
        "{seen:?}"
    );

    // Idle timeout: a miner that goes silent after the handshake.
    let mut idle = raw_from(5, s.addr).await;
    let opened = Instant::now();
    handshake(&mut idle).await;
    idle.drain().await;
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "closed after {took:?}"
    );

    // Rate limit: 10/s with bursts of 20. Forty submits at once for a job
    // that does not exist: the first 20 are judged (stale), the rest get
    // 20 "rate limited", and the connection stays open.
    let mut r = raw_from(6, s.addr).await;
    handshake(&mut r).await;
    let burst: String = (0..40)
        .map(|i| submit(100 + i, "ffff", "00000000"))
        .collect();
    r.send(&burst).await;
    let (mut stale, mut limited) = (0, 0);
    for i in 0..40 {
        let (reply, _) = r.reply(100 + i).await;
        match error_code(&reply) {
            Some(21) => stale += 1,
            Some(20) => {
                assert_eq!(reply["error"][1], "rate limited", "{reply}");
                limited += 1;
            }
            _ => panic!("unexpected reply {reply}"),
        }
    }
    assert!(
        stale >= 20 && limited >= 15,
        "{stale} judged, {limited} limited"
    );
    // It recovers: a second later submits are judged again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    r.send(&submit(500, "ffff", "00000000")).await;
    let (reply, _) = r.reply(500).await;
    assert_eq!(error_code(&reply), Some(21), "{reply}");
    drop(r);

    // Ban by reject ratio: 30 invalid shares (ntime far before the job's;
    // stale shares do not count, every miner sends some after a block),
    // 100% of at least 30, paced to stay inside the rate limit. The 30th
    // bans 127.0.0.7.
    let mut bad = raw_from(7, s.addr).await;
    let (job, _) = handshake(&mut bad).await;
    let first: String = (0..15).map(|i| submit(100 + i, &job, "00000000")).collect();
    bad.send(&first).await;
    bad.reply(114).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second: String = (15..30)
        .map(|i| submit(100 + i, &job, "00000000"))
        .collect();
    bad.send(&second).await;
    let seen = bad.drain().await;
    assert!(
        seen.iter().any(|m| m["method"] == "client.show_message"
            && m["params"][0].as_str().unwrap_or("").contains("banned")),
        "told why: {seen:?}"
    );
    assert!(refused(7, s.addr).await, "a banned address is refused");

    // Ban by malformed requests: 8 submits without parameters ban 127.0.0.8.
    let mut junk = raw_from(8, s.addr).await;
    let lines: String = (0..8)
        .map(|i| format!("{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[]}}\n"))
        .collect();
    junk.send(&lines).await;
    let seen = junk.drain().await;
    assert_eq!(
        seen.iter().filter(|m| error_code(m) == Some(20)).count(),
        8,
        "{seen:?}"
    );
    assert!(refused(8, s.addr).await);
    // A well-behaved address still gets in.
    handshake(&mut raw_from(9, s.addr).await).await;

    // Write timeout: a miner that keeps sending but never reads. Its tiny
    // receive buffer fills, then the pool's send buffer; the pool's write
    // then waits, and after `write_timeout` (1 s) the pool closes the
    // connection, so the miner's writes fail. Without the timeout the
    // session would wait forever (no timer runs during a write).
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 10), 0)))
        .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut deaf = Raw::over(socket.connect(s.addr).await.unwrap());
    let (job, _) = handshake(&mut deaf).await;
    let chunk: String = (0..2000)
        .map(|i| {
            format!(
                r#"{{"id":{},"method":"mining.get_transactions","params":["{job}"]}}"#,
                10 + i
            ) + "\n"
        })
        .collect();
    let started = Instant::now();
    let mut closed = None;
    for sent in 0..500 {
        match tokio::time::timeout(Duration::from_secs(20), deaf.try_send(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                closed = Some((sent, e));
                break;
            }
            Err(_) => panic!("a write waited 20 s: the pool neither read nor closed"),
        }
    }
    let (chunks, error) = closed.expect("the pool closed a connection that never reads");
    eprintln!(
        "non-reading miner closed after {chunks} chunks of 2000 requests, {:?}: {error}",
        started.elapsed()
    );
    drop(deaf);

    // All of it is visible in /metrics (the banned gauge is swept every few s).
    let page = s.scrape_until("pool_banned_ips", 2.0).await;
    assert_eq!(value(&page, "pool_bans_total"), Some(2.0), "{page}");
    let refused_banned = value(&page, r#"pool_connections_refused_total{reason="banned"}"#);
    assert!(refused_banned >= Some(2.0), "{page}");
    let refused_cap = value(
        &page,
        r#"pool_connections_refused_total{reason="per_ip_limit"}"#,
    );
    assert!(refused_cap >= Some(1.0), "{page}");
    let limited_total = value(
        &page,
        r#"pool_shares_rejected_total{reason="rate_limited"}"#,
    );
    assert_eq!(limited_total, Some(f64::from(limited)), "{page}");
    let stale_total = value(&page, r#"pool_shares_rejected_total{reason="stale"}"#);
    assert!(stale_total >= Some(f64::from(stale + 1)), "{page}");
    let invalid_total = value(&page, r#"pool_shares_rejected_total{reason="invalid"}"#);
    assert!(invalid_total >= Some(30.0), "{page}");
    assert!(
        value(&page, "pool_connections_total") >= Some(10.0),
        "{page}"
    );
    assert_eq!(
        value(&page, "pool_write_timeouts_total"),
        Some(1.0),
        "{page}"
    );

    // On shutdown a connected miner is told why and to reconnect (to the
    // same address: no `reconnect_to` is configured), then the pool closes.
    let mut last = raw_from(40, s.addr).await;
    handshake(&mut last).await;
    s.teardown().await;
    let seen = last.drain().await;
    let methods: Vec<&str> = seen.iter().filter_map(|m| m["method"].as_str()).collect();
    let shown = methods.iter().position(|m| *m == "client.show_message");
    let reconnect = methods.iter().position(|m| *m == "client.reconnect");
    assert!(
        shown.is_some() && reconnect > shown,
        "show_message then client.reconnect: {seen:?}"
    );
    let params = &seen[reconnect.unwrap_or_default()]["params"];
    assert_eq!(params, &serde_json::json!([]), "{seen:?}");
}

/// A line relay between a miner and the pool that records what the pool
/// sends, connecting to the pool from `127.0.0.<from>`.
async fn relay(pool: SocketAddr, from: u8) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (miner, _) = listener.accept().await.unwrap();
        let upstream = connect_from(from, pool).await;
        let (mut miner_read, mut miner_write) = miner.into_split();
        let (pool_read, mut pool_write) = upstream.into_split();
        tokio::spawn(async move {
            // Ends when either side closes.
            let _ = tokio::io::copy(&mut miner_read, &mut pool_write).await;
        });
        let mut lines = BufReader::new(pool_read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap().push(line.clone());
            if miner_write
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vardiff_retargets_a_fast_miner_and_metrics_are_served() {
    let node = start_node();
    let mut config = node.config();
    // Retarget after 4 shares (or 2 s): the CPU miner at 1e-9 finds a
    // share with nearly every hash, far above 18 a minute.
    config.vardiff = Some(VardiffConfig {
        retarget_shares: 4,
        retarget_interval: Duration::from_secs(2),
        ..VardiffConfig::default()
    });
    config.max_shares_per_second = None;
    config.ban_threshold = None;
    let s = start_pool(config).await;

    let (via, seen) = relay(s.addr, 10).await;
    let mining = common::start_mining(via.to_string(), &format!("{MINER}.cpu"));
    let stats = mining.stats.clone();

    // Mine until vardiff has raised the difficulty, shares are accepted at
    // the new one, and a tick has reported a hashrate.
    let start: f64 = 1e-9;
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        let raised = seen.lock().unwrap().iter().any(|l| {
            let m: Value = serde_json::from_str(l).unwrap();
            m["method"] == "mining.set_difficulty"
                && m["params"][0].as_f64().is_some_and(|d| d > start * 1.5)
        });
        let page = s.scrape().await;
        let accepted = stats.accepted.load(Ordering::Relaxed);
        if raised
            && accepted >= 12
            && value(&page, "pool_hashrate_estimated").is_some_and(|h| h > 0.0)
        {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "raised {raised}, accepted {accepted}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    mining.stop().await;

    // The wire: set_difficulty at the start, then a higher one followed at
    // once by the current job again, without clean_jobs.
    let lines: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let difficulties: Vec<(usize, f64)> = lines
        .iter()
        .enumerate()
        .filter(|(_, m)| m["method"] == "mining.set_difficulty")
        .map(|(i, m)| (i, m["params"][0].as_f64().unwrap()))
        .collect();
    assert_eq!(difficulties[0].1, start, "{difficulties:?}");
    let (at, raised) = difficulties
        .iter()
        .copied()
        .find(|&(_, d)| d > start * 1.5)
        .unwrap();
    let next = &lines[at + 1];
    assert_eq!(next["method"], "mining.notify", "{next}");
    // A retarget does not clean, unless the job it goes out with is the
    // miner's first on a new previous block (a block was just found).
    let before = lines[..at]
        .iter()
        .rev()
        .find(|m| m["method"] == "mining.notify")
        .expect("a job before the retarget");
    let new_block = next["params"][1] != before["params"][1];
    assert_eq!(
        next["params"][8], new_block,
        "a retarget cleans only on a new block: {next}"
    );
    assert!(
        raised < 1.0,
        "a CPU miner stays far below difficulty 1: {raised}"
    );

    // Every metric the operator dashboards use is there.
    for name in [
        "pool_connections_active",
        "pool_connections_total",
        "pool_shares_accepted_total",
        r#"pool_shares_rejected_total{reason="stale"}"#,
        r#"pool_shares_rejected_total{reason="duplicate"}"#,
        r#"pool_shares_rejected_total{reason="low_difficulty"}"#,
        r#"pool_shares_rejected_total{reason="unauthorized"}"#,
        r#"pool_shares_rejected_total{reason="not_subscribed"}"#,
        r#"pool_shares_rejected_total{reason="invalid"}"#,
        r#"pool_shares_rejected_total{reason="rate_limited"}"#,
        r#"pool_shares_rejected_total{reason="store_overloaded"}"#,
        "pool_blocks_found_total",
        "pool_hashrate_estimated",
        "pool_share_validation_duration_seconds_count",
        "pool_template_age_seconds",
        "pool_node_connected",
        "pool_store_batch_size",
        "pool_store_commit_seconds",
        "pool_bans_total",
        "pool_banned_ips",
        "pool_vardiff_retargets_total",
        "pool_submit_duration_seconds_count",
        r#"pool_submit_replies_total{path="direct"}"#,
        r#"pool_submit_replies_total{path="session"}"#,
    ] {
        assert!(value(&page, name).is_some(), "{name} missing:\n{page}");
    }
    assert!(
        page.contains("# TYPE pool_share_validation_duration_seconds histogram"),
        "{page}"
    );
    assert!(value(&page, "pool_shares_accepted_total") >= Some(12.0));
    assert!(value(&page, "pool_vardiff_retargets_total") >= Some(1.0));
    assert!(value(&page, "pool_share_validation_duration_seconds_count") >= Some(1.0));
    // Every accepted share's reply was written by one of the two, and
    // timed (read once the miner has stopped and its last shares are in).
    let settled = |page: &str| {
        let accepted = value(page, "pool_shares_accepted_total");
        let replies = value(page, r#"pool_submit_replies_total{path="direct"}"#).unwrap_or(0.0)
            + value(page, r#"pool_submit_replies_total{path="session"}"#).unwrap_or(0.0);
        accepted == Some(replies) && accepted == value(page, "pool_submit_duration_seconds_count")
    };
    let mut last = s.scrape().await;
    for _ in 0..40 {
        if settled(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        last = s.scrape().await;
    }
    assert!(settled(&last), "{last}");
    assert!(
        page.contains("# TYPE pool_submit_duration_seconds histogram"),
        "{page}"
    );
    assert_eq!(value(&page, "pool_node_connected"), Some(1.0));
    assert!(value(&page, "pool_store_batch_size") > Some(0.0), "{page}");
    assert!(
        value(&page, "pool_store_commit_seconds") > Some(0.0),
        "{page}"
    );
    let blocks = s.scrape_until("pool_blocks_found_total", 1.0).await;
    assert!(value(&blocks, "pool_template_age_seconds") < Some(60.0));
    s.teardown().await;
}

/// `n` distinct valid miner addresses (lowercase, so no checksum to get right).
fn addresses(n: usize, salt: u8) -> Vec<String> {
    (0..n)
        .map(|i| format!("0x{salt:02x}{:038x}", i + 1))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_floods_store_nothing_and_end_in_a_ban_and_banned_miners_come_back() {
    let node = start_node();
    let mut config = node.config();
    config.max_workers_per_connection = 5;
    config.ban_threshold = Some(BanThreshold {
        min_shares: 1000,
        reject_percent: 90,
        invalid_inputs: 8,
        window: Duration::from_secs(600),
    });
    config.ban_duration = Duration::from_secs(3);
    config.vardiff = None;
    let s = start_pool(config).await;

    // One connection authorizes five workers (the cap; one payout address
    // per connection), any of them again for free, then is refused, with a
    // clear error, for every new one: the eighth refusal bans the address.
    let mut flood = raw_from(20, s.addr).await;
    flood
        .send("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await;
    flood.reply(1).await;
    let owner = addresses(1, 0xa1).remove(0);
    let many: Vec<String> = (0..13).map(|i| format!("{owner}.w{i}")).collect();
    for (i, worker) in many.iter().take(5).enumerate() {
        flood
            .send(&format!(
                "{{\"id\":{},\"method\":\"mining.authorize\",\"params\":[\"{worker}\",\"x\"]}}\n",
                10 + i
            ))
            .await;
        let (reply, _) = flood.reply(10 + i as u64).await;
        assert_eq!(reply["result"], true, "{reply}");
    }
    flood
        .send(&format!(
            "{{\"id\":20,\"method\":\"mining.authorize\",\"params\":[\"{}\",\"x\"]}}\n",
            many[0]
        ))
        .await;
    assert_eq!(flood.reply(20).await.0["result"], true);
    for (i, worker) in many.iter().skip(5).take(7).enumerate() {
        let id = 30 + i as u64;
        flood
            .send(&format!(
                "{{\"id\":{id},\"method\":\"mining.authorize\",\"params\":[\"{worker}\",\"x\"]}}\n"
            ))
            .await;
        let (reply, _) = flood.reply(id).await;
        assert_eq!(error_code(&reply), Some(24), "{reply}");
        assert!(
            reply["error"][1]
                .as_str()
                .unwrap()
                .contains("already authorized 5 workers"),
            "{reply}"
        );
    }
    // A bad username is refused too, and is the eighth refusal.
    flood
        .send("{\"id\":40,\"method\":\"mining.authorize\",\"params\":[\"not-an-address\",\"x\"]}\n")
        .await;
    let seen = flood.drain().await;
    assert!(
        seen.iter()
            .any(|m| m["id"] == 40 && error_code(m) == Some(24)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|m| m["method"] == "client.show_message"
            && m["params"][0].as_str().unwrap_or("").contains("banned")),
        "{seen:?}"
    );
    assert!(refused(20, s.addr).await, "the flooding address is banned");

    // Echoes stay short and exact: an id that is not an integer comes back
    // as sent, and a 10 KB worker name is quoted as a 48-character prefix.
    let mut echo = raw_from(22, s.addr).await;
    handshake(&mut echo).await;
    let long = "w".repeat(10_000);
    echo.send(&format!(
        "{{\"id\":1.50,\"method\":\"mining.submit\",\"params\":[\"{MINER}.{long}\",\"1\",\"00\",\"00000000\",\"00000000\"]}}\n"
    ))
    .await;
    let reply = echo.line_starting("{\"id\":1.5").await;
    assert!(reply.starts_with("{\"id\":1.50,"), "{reply}");
    assert!(reply.len() < 300, "a {}-byte reply: {reply}", reply.len());
    assert!(reply.contains("bytes)"), "{reply}");
    drop(echo);

    // A miner that mines: its worker is recorded with its first accepted
    // share, and is the only one the store knows.
    let mut honest = raw_from(21, s.addr).await;
    let (job, ntime) = handshake(&mut honest).await;
    // At difficulty 1e-9 about three hashes in four meet the share target:
    // try nonces until one does.
    let mut accepted = false;
    for nonce in 0..40u64 {
        honest
            .send(&format!(
                r#"{{"id":{},"method":"mining.submit","params":["{MINER}.t","{job}","0000000000000000","{ntime}","{nonce:08x}"]}}"#,
                50 + nonce
            ))
            .await;
        honest.send("\n").await;
        let (reply, _) = honest.reply(50 + nonce).await;
        if reply["result"] == true {
            accepted = true;
            break;
        }
        assert_eq!(error_code(&reply), Some(23), "{reply}");
    }
    assert!(accepted, "no share met the target in 40 nonces");
    let store = Store::open(&s._dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let miners = loop {
        let miners = store.miner_records(0, 100).await.unwrap();
        if !miners.is_empty() || Instant::now() > deadline {
            break miners;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let known: Vec<String> = miners.iter().map(|m| m.miner.to_checksum(None)).collect();
    assert_eq!(known, [MINER], "authorizations alone were stored");
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.miners, counts.workers), (1, 1));
    drop(honest);
    store.close().await;

    // Ended sessions are reaped as they end, not at the next accept.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = s.scrape().await;
        if value(&page, "pool_session_tasks") == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "sessions never reaped:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The reference miner on a banned address waits and comes back: ban
    // 127.0.0.1 with malformed lines, then start a miner from it.
    let mut junk = raw_from(1, s.addr).await;
    let lines: String = (0..8)
        .map(|i| format!("{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[]}}\n"))
        .collect();
    junk.send(&lines).await;
    junk.drain().await;
    let banned_at = Instant::now();
    assert!(refused(1, s.addr).await, "127.0.0.1 is banned");
    let stats = Arc::new(proofpool_miner::MinerStats::default());
    let miner = proofpool_miner::run(
        proofpool_miner::MinerConfig {
            address: s.addr.to_string(),
            user: format!("{MINER}.back"),
            threads: 1,
            suggest_difficulty: None,
            max_shares: Some(1),
            tls_ca: None,
            retry_up_to: Some(Duration::from_secs(1)),
            share_log: None,
            sv2_authority: None,
            sv2_standard: false,
        },
        stats.clone(),
        std::future::pending(),
    );
    tokio::time::timeout(Duration::from_secs(30), miner)
        .await
        .expect("the miner came back within 30 s")
        .expect("the miner ended well");
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 1);
    assert!(
        banned_at.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        banned_at.elapsed()
    );
    s.teardown().await;
}
