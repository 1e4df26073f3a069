//! The web app in real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `web/node_modules`).
//!
//! Each test starts anvil with the contracts, fills a store through the real
//! `ShareLog` writer (two miners, both unlocked anvil accounts, and a mature
//! block), settles and finalizes its epochs with the real `Settler`, and
//! serves the API with `web_dir = web/dist` on loopback. A Node script from
//! `web/tests/` then drives the browser with an EIP-1193 wallet injected into
//! the page that forwards to anvil:
//! - `claim.spec.mjs`: no wallet, a reverted claim decoded into words, a
//!   rejected transaction, a claim whose receipt and balance are checked,
//!   then "already claimed"; "verify my shares" (the miner's shares proven
//!   against the committed roots in the browser; another miner's, an
//!   unknown one and a forged proof refused); the dashboard and the auditor
//!   page.
//! - `wrong-network.spec.mjs`: a wallet on another chain, a refused switch,
//!   an unknown chain, an accepted switch.
//!
//! The Rust side checks the chain afterwards. Screenshots are written to
//! `<target dir>/web-artifacts/`. `make setup` (scripts/bootstrap.sh) installs
//! Chromium and builds web/dist; the test rebuilds web/dist if its sources
//! changed since.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use proofpool_api::ApiState;
use proofpool_chain::{DeployParams, DistributorClient};
use proofpool_devtools::TempDir;
use proofpool_primitives::{Address as Addr, U256 as U};
use proofpool_settlement::{SettleConfig, Settler};
use proofpool_store::{
    BlockRecord, BlockStatus, EpochStatus, JobRecord, NewShare, ShareLog, Store, StoreOptions,
    WorkerSeen, WriterConfig,
};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The miner who claims: anvil's account 1, unlocked, so the injected wallet
/// can `eth_sendTransaction` from it.
const MINER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// A second miner (anvil's account 2), so the reward tree has two leaves.
const OTHER: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const EPOCH_SECS: u64 = 1000;
/// Longest a browser script may run before it is killed with its browser.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

/// One anvil and one Chromium at a time: the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn web_dir() -> PathBuf {
    proofpool_devtools::repo_root().join("web")
}

/// `<target dir>/web-artifacts` (the target dir is where cargo puts `tmp/`).
fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("web-artifacts")
}

/// Chromium, the npm packages and an up-to-date web/dist, or a clear panic.
fn prerequisites() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        assert!(
            Path::new("/usr/bin/chromium").is_file(),
            "/usr/bin/chromium is missing: run `make setup` (scripts/install-chromium.sh installs Debian's chromium)"
        );
        let root = proofpool_devtools::repo_root();
        // Quiet and quick when web/dist is current; rebuilds after edits.
        let built = std::process::Command::new(root.join("scripts/build-web.sh"))
            .stdin(Stdio::null())
            .status()
            .expect("run scripts/build-web.sh");
        assert!(built.success(), "scripts/build-web.sh failed");
        assert!(
            web_dir().join("node_modules/playwright-core").is_dir(),
            "web/node_modules/playwright-core is missing: run `make setup`"
        );
    });
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Two ended epochs of shares from both miners, with a mature block found in
/// the first, written through the pool's real share writer.
async fn fill(store: &Store, genesis: u64) {
    store.init_clock(EPOCH_SECS, genesis).await.unwrap();
    let (log, writer) = ShareLog::spawn(store.clone(), WriterConfig::default());
    let network_target = U::from(0x7f_ffffu64) << 232;
    log.record_job(JobRecord {
        instance: 0,
        job_id: 1,
        created_ms: genesis * 1000,
        height: 200,
        prev_hash: B256::repeat_byte(3),
        version: 0x2000_0000,
        nbits: 0x207f_ffff,
        template_time: genesis as u32,
        coinbase1: vec![1; 40],
        coinbase2: vec![2; 60],
        coinbase2_suffix: Vec::new(),
        log_head: Default::default(),
        branch: vec![],
        network_target,
        coinbase_value: 5_000_000_000,
    });
    let miners = [
        Addr::from_str(MINER).unwrap(),
        Addr::from_str(OTHER).unwrap(),
    ];
    for (miner, worker) in [(miners[0], "rig1"), (miners[0], "rig2"), (miners[1], "")] {
        log.record_worker(WorkerSeen {
            miner,
            worker: worker.into(),
            time_ms: (genesis + 90) * 1000,
        });
    }
    for i in 0..30u64 {
        let secs = if i < 20 { 100 + i * 30 } else { 1100 + i * 20 };
        let (miner, worker) = match i % 3 {
            0 => (miners[1], ""),
            1 => (miners[0], "rig1"),
            _ => (miners[0], "rig2"),
        };
        log.submit(NewShare {
            time_ms: (genesis + secs) * 1000,
            instance: 0,
            job_id: 1,
            miner,
            worker: worker.into(),
            extranonce1: [0, 0, 0, 1],
            extranonce2: i.to_be_bytes().to_vec(),
            ntime: genesis as u32,
            nonce: i as u32,
            version: 0x2000_0000,
            hash: B256::from(U::from(i + 1)),
            share_target: U::MAX >> 1,
            work: U::from(2u64),
            network_target,
        })
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    }
    log.record_block(BlockRecord {
        hash: B256::repeat_byte(0xbb),
        height: 200,
        coinbase_value: 5_000_000_000,
        finder: miners[0],
        worker: "rig1".into(),
        share_seq: 15,
        instance: 0,
        found_ms: (genesis + 550) * 1000,
        status: BlockStatus::Mature,
        confirmations: 100,
        reject_reason: None,
        paid_epoch: None,
    });
    log.flush().await;
    drop(log);
    writer.await.unwrap();
}

/// anvil, the contracts, a finalized epoch paying both miners, and the API
/// serving web/dist.
struct World {
    _dir: TempDir,
    anvil: alloy::node_bindings::AnvilInstance,
    store: Store,
    chain: DistributorClient<DynProvider>,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The miner's cumulative amount at the finalized epoch (token units).
    miner_credit: U256,
}

async fn world() -> World {
    let dir = TempDir::new("web-chromium").unwrap();
    let anvil = proofpool_devtools::spawn_anvil(None).expect("anvil (make setup)");
    let settler = PrivateKeySigner::from(anvil.keys()[0].clone());
    let provider = proofpool_chain::connect(anvil.endpoint_url(), settler.clone());
    // The shares are made up (no coinbase pays anything), so any payout
    // script will do.
    let payout =
        bitcoin::ScriptBuf::from_bytes(vec![0x00, 0x14].into_iter().chain([9; 20]).collect());
    let params = proofpool_settlement::PoolParams {
        pplns: proofpool_settlement::PplnsParams {
            window_x: 10,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: payout.to_bytes().into(),
        epoch_secs: EPOCH_SECS,
        maturity: 1,
        pool_tag: alloy::primitives::Bytes::from_static(b"/proofpool/"),
        scheme: proofpool_epoch::Scheme::Pplns,
    };
    let deployment = proofpool_chain::deploy(
        &provider,
        &DeployParams {
            token: None,
            owner: settler.address(),
            settler: settler.address(),
            guardian: settler.address(),
            challenge_period: 1,
            mint_to_settler: U256::from(10u64).pow(U256::from(12)),
            params: params.clone(),
        },
    )
    .await
    .unwrap();
    let chain = DistributorClient::new(deployment.distributor, provider.clone());

    // Epochs 1 and 2 have ended; epoch 3 runs for another ~500 s.
    let genesis = (now_secs() - 2500) / 100 * 100;
    let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    fill(&store, genesis).await;

    let epochs_dir = dir.path().join("epochs");
    let settle = Settler::new(
        store.clone(),
        chain.clone(),
        None,
        SettleConfig {
            params,
            verify_params: true,
            grace: Duration::ZERO,
            epochs_dir: epochs_dir.clone(),
            confirmations: 1,
            dry_run: false,
            settler: settler.address(),
        },
    );
    settle.run_once().await.unwrap();
    // The challenge period (1 s) passes; the second pass finalizes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    settle.run_once().await.unwrap();
    assert_eq!(
        chain.heads().await.unwrap(),
        (2, 2),
        "both epochs finalized"
    );
    assert_eq!(
        store.epoch(2).await.unwrap().unwrap().status,
        EpochStatus::Finalized
    );
    let balances = store.balances_at(2).await.unwrap();
    let miner_credit = U256::from(balances[&Address::from_str(MINER).unwrap()]);
    assert!(!miner_credit.is_zero(), "the miner earned something");

    let domain = chain.domain().await.unwrap();
    let mut state = ApiState::new(store.clone(), epochs_dir, domain);
    state.chain_rpc_url = Some(anvil.endpoint_url());
    state.web_dir = Some(web_dir().join("dist"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(proofpool_api::serve(listener, state, async move {
        stopped.await.ok();
    }));
    World {
        _dir: dir,
        anvil,
        store,
        chain,
        base,
        stop,
        api,
        miner_credit,
    }
}

impl World {
    /// Runs `web/tests/{script}` with node, bounded by [`SCRIPT_LIMIT`]; on
    /// timeout its whole process group (node and Chromium) is killed.
    async fn browser(&self, script: &str) -> std::process::Output {
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(web_dir().join("tests").join(script))
            .current_dir(web_dir())
            .env("WEB_URL", &self.base)
            .env("ANVIL_URL", self.anvil.endpoint())
            .env("MINER", MINER)
            .env("CHAIN_ID", self.anvil.chain_id().to_string())
            .env("ARTIFACTS", artifacts_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("node is installed (Node.js 20+)");
        let pid = child.id().expect("a running child has a pid");
        let output = match tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output()).await {
            Ok(out) => out.unwrap(),
            Err(_) => {
                kill_group(pid);
                panic!("{script} ran past {SCRIPT_LIMIT:?}; killed it and its browser");
            }
        };
        // Whatever happened, leave no Chromium behind.
        kill_group(pid);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!(
            "{script} took {:.1} s\n{stdout}{stderr}",
            started.elapsed().as_secs_f64()
        );
        assert!(
            output.status.success(),
            "{script} failed ({}); screenshots in {}",
            output.status,
            artifacts_dir().display()
        );
        output
    }

    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.api)
            .await
            .expect("the API stopped")
            .unwrap()
            .unwrap();
        self.store.close().await;
    }
}

/// SIGKILLs process group `pgid` (node and the browser it started), if any
/// of it is left.
fn kill_group(pgid: u32) {
    // The group is usually gone already, so kill's own exit status says
    // nothing; only failing to run it at all is worth a word.
    if let Err(e) = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        eprintln!("could not run kill for process group {pgid}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_in_chromium_pays_the_claimable_amount_then_shows_already_claimed() {
    let _serial = SERIAL.lock().await;
    prerequisites();
    let started = Instant::now();
    let w = world().await;
    let setup = started.elapsed();
    let miner = Address::from_str(MINER).unwrap();
    assert_eq!(w.chain.token_balance(miner).await.unwrap(), U256::ZERO);

    let out = w.browser("claim.spec.mjs").await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"));

    // The chain agrees with what the page showed: exactly the credit, once.
    assert_eq!(w.chain.token_balance(miner).await.unwrap(), w.miner_credit);
    assert_eq!(w.chain.claimed(miner).await.unwrap(), w.miner_credit);
    let other = Address::from_str(OTHER).unwrap();
    assert_eq!(w.chain.claimed(other).await.unwrap(), U256::ZERO);
    println!(
        "setup {:.1} s, total {:.1} s",
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    w.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_network_in_chromium_is_explained_and_switchable() {
    let _serial = SERIAL.lock().await;
    prerequisites();
    let started = Instant::now();
    let w = world().await;
    let out = w.browser("wrong-network.spec.mjs").await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"));
    // Nothing was sent.
    let miner = Address::from_str(MINER).unwrap();
    assert_eq!(w.chain.claimed(miner).await.unwrap(), U256::ZERO);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    w.shut_down().await;
}
