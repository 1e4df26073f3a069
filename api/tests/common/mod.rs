//! The fixture for the endpoint tests: a store filled through the real
//! writer and settlement-record paths, and an API served on 127.0.0.1:0.

use alloy::primitives::keccak256;
use proofpool_api::ApiState;
use proofpool_api::types::ErrorBody;
use proofpool_devtools::TempDir;
use proofpool_merkle::{RewardDomain, RewardLeaf, RewardTree, ShareLeaf, ShareTree};
use proofpool_primitives::{Address, B256, Difficulty, MinerAddress, U256, Work};
use proofpool_store::{
    BlockRecord, BlockStatus, CreditRow, EpochClock, EpochRecord, EpochStatus, JobRecord, NewShare,
    SettledEpoch, ShareLog, Store, StoreOptions, WorkerSeen, WriterConfig,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

pub(crate) const A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
pub(crate) const B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
pub(crate) const C: &str = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
/// Never seen by the pool.
pub(crate) const D: &str = "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb";
pub(crate) const EPOCH_SECS: u64 = 600;
pub(crate) const TOKEN_PER_SAT: u64 = 10;
/// Regtest's compact target.
pub(crate) const NBITS: u32 = 0x207f_ffff;

pub(crate) fn addr(s: &str) -> Address {
    MinerAddress::from_str(s).unwrap().to_address()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) fn network_target() -> U256 {
    U256::from(0x7f_ffffu64) << (8 * (0x20 - 3))
}

pub(crate) fn domain() -> RewardDomain {
    RewardDomain {
        chain_id: 31337,
        distributor: Address::repeat_byte(0xd1),
    }
}

pub(crate) fn job(job_id: u64, height: u64) -> JobRecord {
    JobRecord {
        instance: 0,
        job_id,
        created_ms: now_ms(),
        height,
        prev_hash: B256::repeat_byte(7),
        version: 0x2000_0000,
        nbits: NBITS,
        template_time: 1_700_000_001,
        coinbase1: vec![1, 2, 3],
        coinbase2: vec![4, 5],
        coinbase2_suffix: Vec::new(),
        log_head: Default::default(),
        branch: vec![B256::repeat_byte(1)],
        network_target: network_target(),
        coinbase_value: 5_000_000_000,
    }
}

/// A share at integer difficulty `diff`.
pub(crate) fn share(
    miner: &str,
    worker: &str,
    diff: u64,
    time_ms: u64,
    job_id: u64,
    n: u64,
) -> NewShare {
    let target = Difficulty::from_integer(diff).unwrap().to_target();
    NewShare {
        time_ms,
        instance: 0,
        job_id,
        miner: addr(miner),
        worker: worker.to_owned(),
        extranonce1: [0, 0, 0, 1],
        extranonce2: n.to_be_bytes().to_vec(),
        ntime: 1_700_000_100,
        nonce: n as u32,
        version: 0x2000_0000,
        hash: B256::from(U256::from(n + 1)),
        share_target: target,
        work: Work::from_target(target).unwrap().to_u256(),
        network_target: network_target(),
    }
}

pub(crate) fn block(
    hash: u8,
    height: u64,
    finder: &str,
    status: BlockStatus,
    share_seq: u64,
) -> BlockRecord {
    BlockRecord {
        hash: B256::repeat_byte(hash),
        height,
        coinbase_value: 5_000_000_000 + u64::from(hash),
        finder: addr(finder),
        worker: "rig1".into(),
        share_seq,
        instance: 0,
        found_ms: now_ms(),
        status,
        confirmations: match status {
            BlockStatus::Mature => 120,
            BlockStatus::Immature => 3,
            _ => 0,
        },
        reject_reason: None,
        paid_epoch: None,
    }
}

/// What the fixture wrote, for the assertions.
pub(crate) struct Fixture {
    pub(crate) store: Store,
    pub(crate) _dir: TempDir,
    pub(crate) epochs_dir: PathBuf,
    pub(crate) clock: EpochClock,
    /// Every share with the epoch the writer gave it.
    pub(crate) shares: Vec<(NewShare, u64)>,
    /// Cumulative sats per epoch, per account.
    pub(crate) balances: BTreeMap<u64, BTreeMap<Address, u64>>,
    pub(crate) files: BTreeMap<u64, Vec<u8>>,
}

impl Fixture {
    pub(crate) fn work_where(&self, f: impl Fn(&NewShare, u64) -> bool) -> (U256, u64) {
        self.shares
            .iter()
            .filter(|(s, e)| f(s, *e))
            .fold((U256::ZERO, 0), |(w, n), (s, _)| (w + s.work, n + 1))
    }
}

/// Fills a store: 10 epochs of clock, shares in epochs 1–3 and in the last
/// few minutes, four workers, four blocks, and epochs 1 (finalized),
/// 2 (committed) and 3 (closed, its file missing).
/// Epoch `e`'s share root over its stored shares, leaves in sequence order
/// (as the settler commits it).
async fn share_root(store: &Store, e: u64) -> B256 {
    let leaves: Vec<ShareLeaf> = store
        .shares_of_epoch(e, 1, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|s| ShareLeaf {
            epoch: proofpool_primitives::EpochId(e),
            seq: s.seq,
            miner: s.share.miner,
            work: Work(s.share.work),
            share_hash: proofpool_primitives::ShareHash(s.share.hash),
        })
        .collect();
    ShareTree::new(&leaves).unwrap().root()
}

pub(crate) async fn fill(url: &str) -> Fixture {
    let dir = TempDir::new("api-endpoints").unwrap();
    let epochs_dir = dir.path().join("epochs");
    std::fs::create_dir_all(&epochs_dir).unwrap();
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let now_s = now_ms() / 1000;
    let genesis = now_s - now_s % EPOCH_SECS - 9 * EPOCH_SECS;
    let clock = store.init_clock(EPOCH_SECS, genesis).await.unwrap();

    let (log, writer) = ShareLog::spawn(store.clone(), WriterConfig::default());
    log.record_job(job(1, 200));
    log.record_job(job(2, 201));
    for (m, w, t) in [
        (A, "rig1", genesis * 1000),
        (A, "rig2", genesis * 1000 + 5),
        (B, "rig1", genesis * 1000 + 10),
        (C, "", genesis * 1000 + 20),
    ] {
        log.record_worker(WorkerSeen {
            miner: addr(m),
            worker: w.into(),
            time_ms: t,
        });
    }
    let mut plan = Vec::new();
    // Epochs 1–3: A (two rigs), B, and C in epoch 2 only.
    for e in 1..=3u64 {
        let start = clock.bounds(e).0 * 1000;
        for k in 0..5u64 {
            plan.push(share(A, "rig1", 2, start + k * 1000, 1, plan.len() as u64));
            plan.push(share(
                A,
                "rig2",
                1,
                start + k * 1000 + 1,
                1,
                plan.len() as u64,
            ));
            plan.push(share(
                B,
                "rig1",
                3,
                start + k * 1000 + 2,
                1,
                plan.len() as u64,
            ));
            if e == 2 {
                plan.push(share(C, "", 1, start + k * 1000 + 3, 1, plan.len() as u64));
            }
        }
    }
    // The last few minutes: A's two rigs and B.
    let now = now_ms();
    for k in 0..10u64 {
        let t = now - 200_000 + k * 15_000;
        plan.push(share(A, "rig1", 4, t, 2, plan.len() as u64));
        plan.push(share(A, "rig2", 1, t + 1, 2, plan.len() as u64));
        plan.push(share(B, "rig1", 2, t + 2, 2, plan.len() as u64));
    }
    let mut shares = Vec::new();
    for s in plan {
        let committed = log.submit(s.clone()).unwrap().await.unwrap().unwrap();
        assert_eq!(committed.epoch, clock.epoch_of_ms(s.time_ms));
        shares.push((s, committed.epoch));
    }
    for (hash, height, finder, status) in [
        (0xb1, 100, A, BlockStatus::Mature),
        (0xb2, 101, B, BlockStatus::Mature),
        (0xb3, 102, A, BlockStatus::Immature),
        (0xb4, 103, C, BlockStatus::Orphaned),
    ] {
        log.record_block(block(hash, height, finder, status, 3));
    }
    log.flush().await;
    drop(log);
    writer.await.unwrap();

    // Settle epochs 1–3 as the settler records them.
    let credits: [&[(u8, &str, u64)]; 3] = [
        &[(0xb1, A, 3_000), (0xb1, B, 1_000)],
        &[(0xb2, A, 500), (0xb2, C, 700)],
        &[],
    ];
    let mut balances = BTreeMap::new();
    let mut running: BTreeMap<Address, u64> = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (i, paid) in credits.iter().enumerate() {
        let e = i as u64 + 1;
        store.close_epoch(e).await.unwrap();
        for (_, m, sats) in paid.iter() {
            *running.entry(addr(m)).or_default() += sats;
        }
        balances.insert(e, running.clone());
        let tree = RewardTree::new(
            domain(),
            running
                .iter()
                .map(|(a, s)| RewardLeaf {
                    account: *a,
                    cumulative: U256::from(*s) * U256::from(TOKEN_PER_SAT),
                })
                .collect(),
        )
        .unwrap();
        let bytes = format!("{{\"format\":\"proofpool-epoch\",\"epoch\":{e}}}\n").into_bytes();
        let name = format!("epoch-{e:08}.json");
        if e < 3 {
            std::fs::write(epochs_dir.join(&name), &bytes).unwrap();
        }
        let in_epoch = shares.iter().filter(|(_, se)| *se == e).count();
        let record = EpochRecord {
            epoch: e,
            status: EpochStatus::Closed,
            share_count: in_epoch as u64,
            seq_range: Some((1, 2)),
            share_root: share_root(&store, e).await,
            reward_root: tree.root(),
            total_cumulative: tree.total(),
            blocks_hash: B256::repeat_byte(0x60),
            params_hash: B256::repeat_byte(0x61),
            data_hash: keccak256(&bytes),
            prev_epoch_hash: B256::ZERO,
            file_name: name,
            commit_tx: None,
            finalize_tx: None,
            updated_ms: now_ms(),
        };
        let paid_blocks: Vec<B256> = paid
            .first()
            .map(|(h, _, _)| B256::repeat_byte(*h))
            .into_iter()
            .collect();
        store
            .record_settled_epoch(&SettledEpoch {
                record,
                credits: paid
                    .iter()
                    .map(|(h, m, sats)| CreditRow {
                        block_hash: B256::repeat_byte(*h),
                        miner: addr(m),
                        sats: *sats,
                    })
                    .collect(),
                paid_blocks,
                orphaned_blocks: Vec::new(),
                // Epoch 3 paid FPPS; each epoch's shares expected e/2
                // blocks (3 in all).
                scheme: if e == 3 { "fpps" } else { "pplns" },
                expected_work: U256::from(e) << 127,
            })
            .await
            .unwrap();
        files.insert(e, bytes);
    }
    let t = now_ms();
    for e in [1, 2] {
        store
            .set_epoch_status(
                e,
                EpochStatus::Committed,
                Some(B256::repeat_byte(0xc0 + e as u8)),
                t,
            )
            .await
            .unwrap();
    }
    store
        .set_epoch_status(1, EpochStatus::Finalized, Some(B256::repeat_byte(0xf1)), t)
        .await
        .unwrap();
    Fixture {
        store,
        _dir: dir,
        epochs_dir,
        clock,
        shares,
        balances,
        files,
    }
}

/// A running API on 127.0.0.1:0.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub(crate) async fn start(state: ApiState) -> Self {
        Self::start_with(state, proofpool_api::ServeConfig::default()).await
    }

    /// Serves `state` under the given connection limits and timeouts.
    pub(crate) async fn start_with(state: ApiState, config: proofpool_api::ServeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(proofpool_api::serve_with(
            listener,
            state,
            config,
            async move {
                stopped.await.ok();
            },
        ));
        Self {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) async fn raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// GETs `path`, expecting `status` and a JSON body of type `T`.
    pub(crate) async fn json<T: DeserializeOwned>(&self, path: &str, status: StatusCode) -> T {
        let r = self.raw(path).await;
        assert_eq!(r.status(), status, "GET {path}");
        let ct = r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with("application/json"), "GET {path}: {ct}");
        let text = r.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    pub(crate) async fn ok<T: DeserializeOwned>(&self, path: &str) -> T {
        self.json(path, StatusCode::OK).await
    }

    /// GETs `path`, expecting an error with `status` that names `parameter`
    /// and says `contains`.
    pub(crate) async fn err(
        &self,
        path: &str,
        status: StatusCode,
        parameter: Option<&str>,
        contains: &str,
    ) {
        let body: ErrorBody = self.json(path, status).await;
        assert_eq!(body.parameter.as_deref(), parameter, "GET {path}: {body:?}");
        assert!(
            body.error.contains(contains),
            "GET {path}: {body:?} lacks {contains:?}"
        );
    }

    pub(crate) async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

pub(crate) fn state(f: &Fixture) -> ApiState {
    let mut s = ApiState::new(f.store.clone(), f.epochs_dir.clone(), domain());
    s.token_per_sat = U256::from(TOKEN_PER_SAT);
    s
}
