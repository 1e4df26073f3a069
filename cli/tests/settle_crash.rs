//! `proofpool settle` is crash-safe and idempotent: killed with SIGKILL
//! before the commit is sent, after it is sent but before its receipt, and
//! after the receipt but before the store write, a rerun ends with the chain
//! and the store in the same state as an uninterrupted run; a concurrent run
//! is refused by the settlement lock; a dead RPC, an unfunded settler and a
//! reverted transaction each give a clear error and a non-zero exit.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use proofpool_chain::{DeployParams, DistributorClient};
use proofpool_devtools::TempDir;
use proofpool_epoch::EpochCommit;
use proofpool_primitives::{Address as Addr, U256 as U};
use proofpool_store::{
    BlockRecord, BlockStatus, EpochStatus, JobRecord, NewShare, ShareLog, Store, StoreOptions,
    WriterConfig,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const EPOCH_SECS: u64 = 1000;

/// The pool's payout address in these scenarios (a regtest P2WPKH).
fn payout() -> bitcoin::Address {
    use bitcoin::hashes::Hash as _;
    let script = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]));
    bitcoin::Address::from_script(&script, bitcoin::Network::Regtest).unwrap()
}

/// The parameters deployed, and passed to `proofpool settle` as flags
/// (`--maturity 1 --epoch-secs 1000 --payout-address … --network regtest`,
/// defaults for the rest).
fn params() -> proofpool_epoch::PoolParams {
    proofpool_epoch::PoolParams {
        pplns: proofpool_epoch::PplnsParams {
            window_x: 2,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: payout().script_pubkey().to_bytes().into(),
        epoch_secs: EPOCH_SECS,
        maturity: 1,
        pool_tag: alloy::primitives::Bytes::from_static(b"/proofpool/"),
        scheme: proofpool_epoch::Scheme::Pplns,
    }
}

/// Epochs 1 and 2 have ended; epoch 3 runs for another ~500 s.
fn genesis() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - 2500) / 100 * 100
}

async fn fill(url: &str, genesis: u64) {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    store.init_clock(EPOCH_SECS, genesis).await.unwrap();
    let (log, writer) = ShareLog::spawn(store.clone(), WriterConfig::default());
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
        network_target: U::from(0x7f_ffffu64) << 232,
        coinbase_value: 5_000_000_000,
    });
    let miners = [Addr::repeat_byte(0xa1), Addr::repeat_byte(0xb2)];
    for i in 0..30u64 {
        let secs = if i < 20 { 100 + i } else { 1100 + i };
        log.submit(NewShare {
            time_ms: (genesis + secs) * 1000,
            instance: 0,
            job_id: 1,
            miner: miners[(i % 3 == 0) as usize],
            worker: "w".into(),
            extranonce1: [0, 0, 0, 1],
            extranonce2: i.to_be_bytes().to_vec(),
            ntime: genesis as u32,
            nonce: i as u32,
            version: 0x2000_0000,
            hash: B256::from(U::from(i + 1)),
            share_target: U::MAX >> 1,
            work: U::from(2u64),
            network_target: U::from(0x7f_ffffu64) << 232,
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
        worker: "w".into(),
        share_seq: 15,
        instance: 0,
        found_ms: (genesis + 115) * 1000,
        status: BlockStatus::Mature,
        confirmations: 100,
        reject_reason: None,
        paid_epoch: None,
    });
    log.flush().await;
    drop(log);
    writer.await.unwrap();
    store.close().await;
}

struct Scenario {
    _dir: TempDir,
    _anvil: alloy::node_bindings::AnvilInstance,
    db: String,
    rpc: String,
    distributor: Address,
    settler_key: String,
    epochs_dir: std::path::PathBuf,
    client: DistributorClient<alloy::providers::DynProvider>,
    provider: alloy::providers::DynProvider,
}

async fn scenario(genesis: u64, funded: bool) -> Scenario {
    let dir = TempDir::new("settle-crash").unwrap();
    let anvil = proofpool_devtools::spawn_anvil(None).unwrap();
    let key = anvil.keys()[0].clone();
    let settler = PrivateKeySigner::from(key.clone());
    let provider = proofpool_chain::connect(anvil.endpoint_url(), settler.clone());
    let deployment = proofpool_chain::deploy(
        &provider,
        &DeployParams {
            token: None,
            owner: settler.address(),
            settler: settler.address(),
            guardian: settler.address(),
            challenge_period: 1,
            mint_to_settler: if funded {
                U256::from(10u64).pow(U256::from(12))
            } else {
                U256::ZERO
            },
            params: params(),
        },
    )
    .await
    .unwrap();
    let db = dir.sqlite_url("pool.db");
    fill(&db, genesis).await;
    Scenario {
        db,
        rpc: anvil.endpoint(),
        distributor: deployment.distributor,
        settler_key: format!("0x{}", alloy::hex::encode(key.to_bytes())),
        epochs_dir: dir.path().join("epochs"),
        client: DistributorClient::new(deployment.distributor, provider.clone()),
        provider,
        _dir: dir,
        _anvil: anvil,
    }
}

impl Scenario {
    fn settle(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proofpool"));
        cmd.args(["settle", "--once", "--maturity", "1", "--grace-secs", "0"])
            .args([
                "--epoch-secs",
                &EPOCH_SECS.to_string(),
                "--network",
                "regtest",
            ])
            .args(["--payout-address", &payout().to_string()])
            .args(["--database-url", &self.db, "--rpc-url", &self.rpc])
            .args(["--distributor", &self.distributor.to_string()])
            .arg("--epochs-dir")
            .arg(&self.epochs_dir)
            .env("PROOFPOOL_SETTLER_KEY", &self.settler_key)
            .env("PROOFPOOL_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self) -> Output {
        self.settle().output().unwrap()
    }

    /// Starts settle with a failpoint and returns once it hangs there.
    fn hang_at(&self, point: &str) -> Child {
        let mut child = self
            .settle()
            .env("PROOFPOOL_FAILPOINT", point)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("FAILPOINT") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("reached the failpoint");
        assert_eq!(line, format!("FAILPOINT {point}"));
        child
    }

    async fn state(&self) -> State {
        let store = Store::open(&self.db, &StoreOptions::default())
            .await
            .unwrap();
        let mut epochs = Vec::new();
        for r in store.epochs(0, 100).await.unwrap().into_iter().rev() {
            epochs.push((
                r.epoch,
                r.status,
                r.share_root,
                r.reward_root,
                r.total_cumulative,
                r.data_hash,
            ));
        }
        store.close().await;
        let (committed, finalized) = self.client.heads().await.unwrap();
        let mut commits = Vec::new();
        for e in 1..=committed {
            let mut c = self
                .client
                .committed_record(e)
                .await
                .unwrap()
                .unwrap()
                .0
                .commit;
            // The store and the chain agree on the file and the hash chain.
            let stored = epochs.iter().find(|r| r.0 == e).expect("stored epoch");
            assert_eq!(stored.5, c.dataHash, "epoch {e} data hash");
            let prev = if e > 1 {
                self.client.epoch_hash(e - 1).await.unwrap()
            } else {
                B256::ZERO
            };
            assert_eq!(c.prevEpochHash, prev, "epoch {e} hash chain");
            // Both depend on commit-block timestamps, which differ between
            // runs; everything else must be identical.
            c.dataHash = B256::ZERO;
            c.prevEpochHash = B256::ZERO;
            commits.push(c);
        }
        for e in &mut epochs {
            e.5 = B256::ZERO;
        }
        State {
            epochs,
            commits,
            heads: (committed, finalized),
            committed_total: self.client.committed_total().await.unwrap(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct State {
    epochs: Vec<(u64, EpochStatus, B256, B256, U256, B256)>,
    commits: Vec<EpochCommit>,
    heads: (u64, u64),
    committed_total: U256,
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "settle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs settle to completion twice (the second pass finalizes).
async fn finish(s: &Scenario) -> State {
    ok(&s.run());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    ok(&s.run());
    s.state().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_settle_recovers_to_the_uninterrupted_state() {
    let genesis = genesis();
    let reference = finish(&scenario(genesis, true).await).await;
    assert_eq!(reference.heads, (2, 2), "{reference:?}");
    assert!(
        reference
            .epochs
            .iter()
            .all(|e| e.1 == EpochStatus::Finalized)
    );
    assert!(
        !reference.committed_total.is_zero(),
        "the block paid something"
    );

    for point in ["before-send", "after-send", "after-receipt"] {
        let s = scenario(genesis, true).await;
        let mut hung = s.hang_at(point);
        // While it holds the lock, a second settle is refused.
        let concurrent = s.run();
        assert!(!concurrent.status.success());
        let err = String::from_utf8_lossy(&concurrent.stderr);
        assert!(err.contains("settlement lock"), "{err}");
        hung.kill().unwrap(); // SIGKILL
        hung.wait().unwrap();
        let state = finish(&s).await;
        assert_eq!(state, reference, "after a kill at {point}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_clear_errors_with_a_non_zero_exit() {
    let genesis = genesis();
    // An unfunded settler.
    let s = scenario(genesis, false).await;
    let out = s.run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fund the settler"), "{err}");
    assert_eq!(s.client.heads().await.unwrap(), (0, 0), "nothing committed");

    // A funded key that is not the contract's settler: the commit reverts.
    let s = scenario(genesis, true).await;
    let other: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        .parse()
        .unwrap();
    let token = proofpool_chain::MockBTC::new(s.client.token().await.unwrap(), s.provider.clone());
    let sent = token
        .transfer(other, U256::from(10u64).pow(U256::from(11)))
        .send()
        .await
        .unwrap();
    s.client.wait(*sent.tx_hash()).await.unwrap();
    let out = s
        .settle()
        .env(
            "PROOFPOOL_SETTLER_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotSettler"), "{err}");

    // The chain's RPC is down.
    let out = s
        .settle()
        .args(["--rpc-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("rpc") || err.contains("connect"),
        "{err}"
    );
}
