//! Setup the payout-path integration tests share: a regtest node with coins
//! and a pool payout address, a pool serving on loopback at regtest's easy
//! difficulty, the contracts on anvil, and the reference miner for a bounded
//! number of shares.
//!
//! Each test binary compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

use alloy::primitives::U256;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use bitcoin::Network;
use proofpool_chain::{DeployParams, Deployment, DistributorClient};
use proofpool_devtools::{Bitcoind, SegwitWallet};
use proofpool_miner::{MinerConfig, MinerStats};
use proofpool_pool::{NodeAuth, NodeEndpoint, Pool, PoolConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Logs to the test writer, filtered by `RUST_LOG`.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `node`'s RPC endpoint, with cookie auth.
pub(crate) fn endpoint(node: &Bitcoind) -> NodeEndpoint {
    NodeEndpoint {
        url: node.rpc_url().parse().unwrap(),
        auth: NodeAuth::Cookie(node.cookie_path()),
    }
}

/// A regtest bitcoind with a wallet, mature coins and a pool payout address.
pub(crate) struct RegtestNode {
    /// The node (stopped and its datadir removed on drop).
    pub(crate) node: Bitcoind,
    /// A bech32m address of the node's wallet, for the coinbase.
    pub(crate) payout: bitcoin::Address,
}

/// Starts a regtest node, mines `blocks` blocks to its wallet and, with
/// `spends > 0`, puts that many segwit spends (built and signed with
/// rust-bitcoin, see [`SegwitWallet`]) in the mempool so templates carry
/// transactions and a witness commitment.
pub(crate) fn regtest_node(blocks: u32, spends: u8) -> RegtestNode {
    let node = Bitcoind::start(&[]).expect("bitcoind (make setup installs it)");
    node.cli(&["createwallet", "w"]).unwrap();
    let mut spender = SegwitWallet::new(0x5e).unwrap();
    if spends > 0 {
        spender.mine_coinbases(&node, u32::from(spends)).unwrap();
    }
    let funding = node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    node.cli(&["generatetoaddress", &blocks.to_string(), &funding])
        .unwrap();
    if spends > 0 {
        spender.send_spends(&node).unwrap();
    }
    let payout =
        bitcoin::Address::from_str(&node.cli(&["getnewaddress", "pool", "bech32m"]).unwrap())
            .unwrap()
            .require_network(Network::Regtest)
            .unwrap();
    RegtestNode { node, payout }
}

impl RegtestNode {
    /// The node's RPC endpoint, with cookie auth.
    pub(crate) fn endpoint(&self) -> NodeEndpoint {
        endpoint(&self.node)
    }

    /// Pool defaults on this node, paying [`Self::payout`], at a difficulty
    /// where on regtest nearly every share is also a block.
    pub(crate) fn pool_config(&self) -> PoolConfig {
        let mut config = PoolConfig::new(
            vec![self.endpoint()],
            Network::Regtest,
            self.payout.script_pubkey(),
        );
        config.start_difficulty = "0.000000001".parse().unwrap();
        config.min_difficulty = "0.000000001".parse().unwrap();
        config
    }

    /// Mines `n` blocks to an address of the node's wallet (not the pool's).
    pub(crate) fn mine_elsewhere(&self, n: u64) {
        let elsewhere = self.node.cli(&["getnewaddress", "", "bech32"]).unwrap();
        self.node
            .cli(&["generatetoaddress", &n.to_string(), &elsewhere])
            .unwrap();
    }
}

/// A pool serving Stratum on a free loopback port.
pub(crate) struct Serving {
    /// The pool.
    pub(crate) pool: Pool,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its Stratum V2 listener and authority key, if it serves V2
    /// ([`serve_with_sv2`]).
    pub(crate) sv2: Option<(SocketAddr, Arc<proofpool_pool::sv2::keys::AuthorityKey>)>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves `pool` on 127.0.0.1 until [`Serving::stop`].
pub(crate) async fn serve(pool: Pool) -> Serving {
    serve_on(pool, false).await
}

/// [`serve`], with Stratum V2 on another free port under a new authority key.
pub(crate) async fn serve_with_sv2(pool: Pool) -> Serving {
    serve_on(pool, true).await
}

async fn serve_on(pool: Pool, with_sv2: bool) -> Serving {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut sv2 = None;
    let mut sv2_listener = None;
    if with_sv2 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let key = Arc::new(proofpool_pool::sv2::keys::AuthorityKey::generate().unwrap());
        sv2 = Some((l.local_addr().unwrap(), key.clone()));
        sv2_listener = Some((l, key));
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = pool.clone();
    let task = tokio::spawn(async move {
        runner
            .run_with_listeners(listener, None, sv2_listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Serving {
        pool,
        addr,
        sv2,
        stop,
        task,
    }
}

/// `proofpool watch run` in-process: a proxy on 127.0.0.1 in front of the
/// pool at `pool`, recording every share the pool accepts in `log`.
pub(crate) struct Watching {
    /// Where miners connect.
    pub(crate) addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), proofpool_watch::WatchError>>,
}

/// Starts a watch proxy in front of `pool`.
pub(crate) async fn watch(pool: SocketAddr, log: proofpool_watch::WatchLog) -> Watching {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(proofpool_watch::proxy::serve(
        listener,
        pool.to_string(),
        log,
        Arc::new(proofpool_watch::Stats::default()),
        async {
            let _ = stopped.await;
        },
    ));
    Watching { addr, stop, task }
}

impl Watching {
    /// Stops accepting miners (the connections already proxied finish on
    /// their own) within 20 s.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the watcher stopped within 20 s")
            .unwrap()
            .unwrap();
    }
}

impl Serving {
    /// Stops the pool (every acknowledged share flushed) within 20 s.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the pool stopped within 20 s")
            .unwrap();
    }
}

/// Runs the reference miner (one thread) against `addr` as `user` until it
/// has `shares` accepted (at most 120 s); returns how many were accepted.
pub(crate) async fn mine(addr: SocketAddr, user: &str, shares: u64) -> u64 {
    mine_logged(&Via::v1(addr), user, shares).await
}

/// How a reference miner reaches the pool.
#[derive(Debug, Clone)]
pub(crate) struct Via {
    /// Where it connects.
    pub(crate) addr: SocketAddr,
    /// The `proofpool watch` share log it keeps, if any.
    pub(crate) share_log: Option<std::path::PathBuf>,
    /// The authority key a Stratum V2 pool at `addr` must prove; `None`
    /// speaks Stratum V1.
    pub(crate) sv2_authority: Option<[u8; 32]>,
}

impl Via {
    /// Stratum V1 to `addr`, keeping no share log.
    pub(crate) fn v1(addr: SocketAddr) -> Self {
        Self {
            addr,
            share_log: None,
            sv2_authority: None,
        }
    }

    /// This route, the miner keeping the share log `path`.
    pub(crate) fn logged(mut self, path: &std::path::Path) -> Self {
        self.share_log = Some(path.to_path_buf());
        self
    }
}

/// [`mine`] over `via`.
pub(crate) async fn mine_logged(via: &Via, user: &str, shares: u64) -> u64 {
    let stats = Arc::new(MinerStats::default());
    let config = MinerConfig {
        address: via.addr.to_string(),
        user: user.to_owned(),
        threads: 1,
        suggest_difficulty: None,
        max_shares: Some(shares),
        tls_ca: None,
        retry_up_to: None,
        share_log: via.share_log.clone(),
        sv2_authority: via.sv2_authority,
        sv2_standard: false,
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        proofpool_miner::run(config, stats.clone(), std::future::pending()),
    )
    .await
    .expect("miner finished in time")
    .expect("miner ran");
    stats.accepted.load(Ordering::Relaxed)
}

/// Mines `rounds` through the pool at `addr`, one reference miner per
/// round (`(user, shares)`), waiting after each for the block it found (on
/// regtest nearly every share meets the network target) and for the new
/// template; then waits until every block is recorded in `store` with a
/// final status. Returns the blocks.
pub(crate) async fn mine_blocks(
    pool: &Pool,
    addr: SocketAddr,
    store: &proofpool_store::Store,
    rounds: &[(String, u64)],
) -> Vec<proofpool_store::BlockRecord> {
    mine_blocks_via(pool, store, rounds, |_| Via::v1(addr)).await
}

/// [`mine_blocks`], each round's miner taking the route `via` gives for
/// its user.
pub(crate) async fn mine_blocks_via(
    pool: &Pool,
    store: &proofpool_store::Store,
    rounds: &[(String, u64)],
    via: impl Fn(&str) -> Via,
) -> Vec<proofpool_store::BlockRecord> {
    for (user, shares) in rounds {
        let before = pool.blocks().len();
        assert!(mine_logged(&via(user), user, *shares).await >= *shares);
        for _ in 0..100 {
            if pool.blocks().len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the new template reach the pool before the next round.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut found = Vec::new();
    for _ in 0..100 {
        found = store.blocks().await.unwrap();
        if !found.is_empty()
            && found.len() == pool.blocks().len()
            && found
                .iter()
                .all(|b| b.status != proofpool_store::BlockStatus::Submitted)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

/// Waits until the epoch of the newest share in `store` has ended, plus
/// `grace` seconds (so a settler with that grace closes it).
pub(crate) async fn wait_for_last_epoch_end(store: &proofpool_store::Store, grace: u64) -> u64 {
    let last = store
        .shares_after(0, 100_000)
        .await
        .unwrap()
        .last()
        .unwrap()
        .epoch;
    let (_, end) = store.clock().await.unwrap().bounds(last);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if end + grace > now {
        tokio::time::sleep(Duration::from_secs(end + grace - now + 1)).await;
    }
    last
}

/// A pool with `config` on a fresh SQLite store in `dir`.
pub(crate) async fn sqlite_pool(config: PoolConfig, dir: &proofpool_devtools::TempDir) -> Pool {
    let store = proofpool_store::Store::open(
        &dir.sqlite_url("pool.db"),
        &proofpool_store::StoreOptions::default(),
    )
    .await
    .unwrap();
    Pool::new(config, store).await.unwrap()
}

/// The reference miner (one thread) mining in the background until
/// [`Mining::stop`].
pub(crate) struct Mining {
    /// Its counters.
    pub(crate) stats: Arc<MinerStats>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), proofpool_miner::MinerError>>,
}

/// Starts the reference miner against `address` as `user`.
pub(crate) fn start_mining(address: String, user: &str) -> Mining {
    let stats = Arc::new(MinerStats::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = MinerConfig {
        address,
        user: user.to_owned(),
        threads: 1,
        suggest_difficulty: None,
        max_shares: None,
        tls_ca: None,
        retry_up_to: None,
        share_log: None,
        sv2_authority: None,
        sv2_standard: false,
    };
    let task = tokio::spawn(proofpool_miner::run(config, stats.clone(), async move {
        let _ = stopped.await;
    }));
    Mining { stats, stop, task }
}

impl Mining {
    /// Stops the miner, which must have run without an error, within 20 s.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the miner stopped within 20 s")
            .unwrap()
            .expect("the miner ran without an error");
    }
}

/// MockBTC and the distributor on a fresh anvil, anvil's first account as
/// owner and settler, its second as guardian.
pub(crate) struct Contracts {
    /// anvil (killed on drop).
    pub(crate) anvil: alloy::node_bindings::AnvilInstance,
    /// Owner and settler; holds the minted MockBTC.
    pub(crate) settler: PrivateKeySigner,
    /// The guardian, a key of its own.
    pub(crate) guardian: PrivateKeySigner,
    /// Where the contracts are.
    pub(crate) deployment: Deployment,
    /// The distributor, signing as the settler.
    pub(crate) chain: DistributorClient<DynProvider>,
}

/// The pool parameters a test pool runs under: the given window, payout
/// script (the pool config's), epoch length and maturity, fee 1%, the
/// 8-decimal mock token, the pool's default tag.
pub(crate) fn pool_params(
    window_x: u64,
    payout_script: &bitcoin::ScriptBuf,
    epoch_secs: u64,
    maturity: u64,
) -> proofpool_settlement::PoolParams {
    proofpool_settlement::PoolParams {
        pplns: proofpool_settlement::PplnsParams {
            window_x,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: payout_script.to_bytes().into(),
        epoch_secs,
        maturity,
        pool_tag: proofpool_pool::PoolConfig::DEFAULT_POOL_TAG.to_vec().into(),
        scheme: proofpool_epoch::Scheme::Pplns,
    }
}

/// Deploys with `challenge_period` seconds, `mint` MockBTC base units
/// minted to the settler, and `params` pinned.
pub(crate) async fn deploy(
    challenge_period: u64,
    mint: U256,
    params: &proofpool_settlement::PoolParams,
) -> Contracts {
    let anvil = proofpool_devtools::spawn_anvil(None).expect("anvil (make setup)");
    let settler = PrivateKeySigner::from(anvil.keys()[0].clone());
    let guardian = PrivateKeySigner::from(anvil.keys()[1].clone());
    let provider = proofpool_chain::connect(anvil.endpoint_url(), settler.clone());
    let deployment = proofpool_chain::deploy(
        &provider,
        &DeployParams {
            token: None,
            owner: settler.address(),
            settler: settler.address(),
            guardian: guardian.address(),
            challenge_period,
            mint_to_settler: mint,
            params: params.clone(),
        },
    )
    .await
    .unwrap();
    let chain = DistributorClient::new(deployment.distributor, provider);
    Contracts {
        anvil,
        settler,
        guardian,
        deployment,
        chain,
    }
}

/// A raw Stratum V1 connection, for protocol tests.
pub(crate) struct Raw {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self::over(tokio::net::TcpStream::connect(addr).await.unwrap())
    }

    /// Speaks over an open connection.
    pub(crate) fn over(stream: tokio::net::TcpStream) -> Self {
        use tokio::io::AsyncBufReadExt;
        let (r, w) = stream.into_split();
        Self {
            lines: tokio::io::BufReader::new(r).lines(),
            write: w,
        }
    }

    /// Sends `text` as it is (lines end in `\n`); a write to a connection
    /// the server closed is ignored (what it said first can still be read).
    pub(crate) async fn send(&mut self, text: &str) {
        if let Err(e) = self.try_send(text).await {
            eprintln!("write failed (server closed?): {e}");
        }
    }

    /// Sends `text`, saying whether the write failed.
    pub(crate) async fn try_send(&mut self, text: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.write.write_all(text.as_bytes()).await
    }

    /// The next JSON message, or `None` once the server closed.
    pub(crate) async fn recv(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("no message or close within 20 s")
            .ok()??;
        Some(serde_json::from_str(&line).unwrap())
    }

    /// Reads until the reply with `id`, returning it and what came before.
    pub(crate) async fn reply(&mut self, id: u64) -> (Value, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            let m = self.recv().await.expect("closed before the reply");
            if m.get("id") == Some(&Value::from(id)) && m.get("method").is_none() {
                return (m, seen);
            }
            seen.push(m);
        }
    }

    /// The next notification named `method`, skipping others; `None` if
    /// the server closed first.
    pub(crate) async fn next(&mut self, method: &str) -> Option<Value> {
        loop {
            let m = self.recv().await?;
            if m["method"] == method {
                return Some(m);
            }
        }
    }

    /// The next line that starts with `prefix`, as sent (the exact text, for
    /// what a JSON parser would normalise).
    pub(crate) async fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("no line within 20 s")
                .expect("the connection failed")
                .expect("the server closed before the line");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The next `mining.notify`.
    pub(crate) async fn notify(&mut self) -> Value {
        self.next("mining.notify")
            .await
            .expect("closed before a mining.notify")
    }

    /// Reads until the server closes, returning everything it sent.
    pub(crate) async fn drain(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }
}
