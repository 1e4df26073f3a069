//! The cheating operator, part one: with the powers of the pool's operator
//! (its database and the settler key), each forgery is written into the
//! store before its epoch is settled, the normal `Settler` commits it
//! on-chain, and `audit` must fail naming it: once with the chain and
//! bitcoind, once from the files and the chain alone, with a checkpoint
//! from bitcoind anchoring the headers the files carry (every forgery but
//! the dropped share, which only bitcoind's coinbases reveal).
//!
//! One pool session on a real regtest bitcoind finds the blocks; each case
//! then starts from a copy of that database, on a fresh anvil: an honest
//! control (nothing forged: the audit passes), a job with a forged `nbits`,
//! a job with a forged `prev_hash`, a job whose coinbase pays another
//! script (each with a sybil share of real proof of work on it), a moved
//! solving share, a found block deleted from the store, a best-chain block
//! marked orphaned, a block's solving share dropped from the log with the
//! later shares renumbered, and a share time moved out of its epoch.
//!
//! Part two, with the owner key as well: the fee raised to 100% for the
//! epochs that pay the blocks (unannounced, and announced too late for
//! them), and an over-allocated root committed by the operator's own
//! settler. Every case's guardian, with a key of its own, vetoes the first
//! failing epoch inside the challenge period; the sybil's claim never pays;
//! and a vetoed forgery, undone in the database, is recommitted clean.

use crate::common::{self, RegtestNode};
use alloy::primitives::{Address, B256, U256};
use proofpool_audit::{
    AuditOptions, AuditReport, BlockChecker, ChainReader, Checkpoint, EpochSource, Guardian,
    GuardianPass, NoObserver, Severity, Subject, audit,
};
use proofpool_chain::DistributorClient;
use proofpool_devtools::TempDir;
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_epoch::header::{HeaderParts, hash_value, target_from_nbits};
use proofpool_epoch::share_commitment::{ShareCommitment, committed_target};
use proofpool_node::NodeClient;
use proofpool_pool::Pool;
use proofpool_settlement::{PplnsParams, SettleConfig, Settler};
use proofpool_store::{BlockStatus, Store, StoreOptions};
use sqlx::Row;
use std::time::Duration;

const MINER_A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const MINER_B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
/// The operator's own address, credited with the forged shares.
const SYBIL: Address = Address::repeat_byte(0x5b);
const EPOCH_SECS: u64 = 2;
const MATURITY: u64 = 3;
/// The job id the forged jobs get.
const FORGED_JOB: i64 = 1_000_000;

/// The honest pool's database, with its blocks found and matured.
struct Base {
    dir: TempDir,
    regtest: RegtestNode,
}

async fn mine_base() -> Base {
    common::init_tracing();
    let dir = TempDir::new("cheating").unwrap();
    let regtest = common::regtest_node(110, 2);
    let store = Store::open(&dir.sqlite_url("honest.db"), &StoreOptions::default())
        .await
        .unwrap();
    let mut config = regtest.pool_config();
    config.epoch_secs = EPOCH_SECS;
    PAYOUT
        .set(config.payout_script.to_bytes())
        .expect("one base per test binary");
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;
    let pool = serving.pool.clone();
    // The miners mine through `proofpool watch`, which records every share
    // the pool accepts.
    let log = proofpool_watch::WatchLog::open(&dir.path().join("watch.db"))
        .await
        .unwrap();
    let watching = common::watch(serving.addr, log.clone()).await;
    let rounds: Vec<(String, u64)> = [MINER_A, MINER_B, MINER_A]
        .iter()
        .enumerate()
        .map(|(round, miner)| (format!("{miner}.rig{round}"), 4))
        .collect();
    let found = common::mine_blocks(&pool, watching.addr, &store, &rounds).await;
    let accepted = found
        .iter()
        .filter(|b| b.status == BlockStatus::Immature)
        .count();
    assert!(accepted >= 2, "the miners found blocks: {found:?}");
    watching.stop().await;
    log.close().await;
    serving.stop().await;
    // Deep enough that an unpaid block is a hidden one, not a pending one.
    regtest.mine_elsewhere(MATURITY + proofpool_audit::maturity_slack(EPOCH_SECS));
    // Every epoch with shares ends (plus the settler's grace).
    common::wait_for_last_epoch_end(&store, 1).await;
    store.close().await;
    Base { dir, regtest }
}

/// The pool's payout script in the regtest setup (the pool's config).
fn base_payout() -> Vec<u8> {
    PAYOUT.get().expect("set once the base is mined").clone()
}

/// Set by [`mine_base`] from the pool's config.
static PAYOUT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// What the honest block tracker would have done: every accepted block
/// matured. Each case starts with it (the settler runs without bitcoind, so
/// the statuses are the operator's to set).
const MATURE: &str =
    "UPDATE blocks SET status = 'mature', confirmations = 9 WHERE status = 'immature'";

/// The lowest matured block.
const FIRST_BLOCK: &str = "(SELECT MIN(height) FROM blocks WHERE status = 'mature')";
/// The highest matured block.
const LAST_BLOCK: &str = "(SELECT MAX(height) FROM blocks WHERE status = 'mature')";

/// One case's audits.
struct Reports {
    /// With the chain and bitcoind.
    node: AuditReport,
    /// With the chain and the files' headers, anchored by a checkpoint.
    files: AuditReport,
    /// The epoch files.
    epochs: std::path::PathBuf,
    /// The checkpoint the files were audited with.
    checkpoint: Checkpoint,
    /// What the guardian did, with its own key, inside the challenge period.
    guardian: GuardianPass,
    /// After a veto and the operator's correction: the settler's pass, the
    /// audit with bitcoind, and the guardian's next pass.
    recovered: Option<(proofpool_settlement::Report, AuditReport, GuardianPass)>,
    /// Whether the sybil's claim of its forged leaf (over-allocated, or
    /// credited by forged shares) paid, after the guardian's pass, if a
    /// committed file gave it one.
    thief_paid: Option<bool>,
}

/// Copies the base database into `name`'s directory, lets `forge` write into
/// it, settles it on a fresh anvil (the settler reads bitcoind, as the
/// devnet's does), and audits the result twice (see [`Reports`]).
async fn settle_and_audit<F, Fut>(base: &Base, name: &str, forge: F) -> Reports
where
    F: FnOnce(sqlx::SqlitePool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    settle_audit_and_recover(base, name, forge, None, Params::Pinned).await
}

/// The parameters the operator settles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Params {
    /// The ones deployed (in force for every epoch).
    Pinned,
    /// The fee raised to 100%, without announcing it.
    FeeRaised,
    /// The fee raised to 100%, announced on-chain just before settling:
    /// in force only an hour later, so not for the epochs already mined.
    FeeAnnouncedLate,
    /// The pinned parameters; then the operator's own settler commits one
    /// more epoch whose reward tree gives the sybil a leaf nobody funded.
    OverAllocated,
}

/// The pool's parameters in the regtest setup.
fn pinned_params(base: &Base) -> proofpool_settlement::PoolParams {
    common::pool_params(
        32,
        &base.regtest.pool_config().payout_script,
        EPOCH_SECS,
        MATURITY,
    )
}

/// [`settle_and_audit`]; then, if the guardian vetoed and `correct` is
/// given, the operator runs `correct` on its database (undoing the
/// forgery) and the settler's next pass recomputes and recommits the
/// vetoed epochs: that audit is in [`Reports::recovered`].
async fn settle_audit_and_recover<F, Fut>(
    base: &Base,
    name: &str,
    forge: F,
    correct: Option<&[&str]>,
    settle_with: Params,
) -> Reports
where
    F: FnOnce(sqlx::SqlitePool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let case = base.dir.path().join(name);
    std::fs::create_dir_all(&case).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = base.dir.path().join(format!("honest.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, case.join(format!("pool.db{suffix}"))).unwrap();
        }
    }
    let url = format!("sqlite://{}", case.join("pool.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(MATURE).execute(&db).await.unwrap();
    forge(db.clone()).await;
    db.close().await;

    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    // A challenge period the guardian acts well inside of.
    let pinned = pinned_params(base);
    let contracts = common::deploy(
        3_600,
        U256::from(21_000_000u64) * U256::from(100_000_000u64),
        &pinned,
    )
    .await;
    let raised = proofpool_settlement::PoolParams {
        pplns: PplnsParams {
            fee_bps: 10_000,
            ..pinned.pplns
        },
        ..pinned.clone()
    };
    if settle_with == Params::FeeAnnouncedLate {
        contracts.chain.queue_params(&raised).await.unwrap();
    }
    let client =
        || NodeClient::new(vec![base.regtest.endpoint()], Duration::from_secs(30)).unwrap();
    let node = client();
    let settler = Settler::new(
        store.clone(),
        contracts.chain.clone(),
        Some(std::sync::Arc::new(client())),
        SettleConfig {
            params: if matches!(settle_with, Params::Pinned | Params::OverAllocated) {
                pinned
            } else {
                raised
            },
            // The operator's own settler: it settles with whatever it is
            // given (the honest one refuses parameters not in force).
            verify_params: false,
            grace: Duration::from_secs(1),
            epochs_dir: case.join("epochs"),
            confirmations: 1,
            dry_run: false,
            settler: contracts.settler.address(),
        },
    );
    let pass = settler.run_once().await.unwrap();
    assert!(
        !pass.committed.is_empty(),
        "{name}: the settler committed: {pass:?}"
    );
    let theft = if settle_with == Params::OverAllocated {
        Some(over_allocate(&case.join("epochs"), &contracts).await)
    } else {
        sybil_leaf(&case.join("epochs"), &contracts).await
    };
    let reader = ChainReader::connect(
        contracts.anvil.endpoint_url(),
        contracts.deployment.distributor,
    );
    let checker = BlockChecker::new(client());
    let source = EpochSource::dir(case.join("epochs"));
    let with_node = audit(
        &source,
        Some(&reader),
        Some(&checker),
        &AuditOptions {
            maturity: MATURITY,
            ..AuditOptions::default()
        },
        &mut NoObserver,
    )
    .await
    .unwrap();
    // What an auditor without a node does: take one block's hash from a
    // source it trusts (here bitcoind; an explorer in real life), a little
    // above where the first file's headers start.
    let first: EpochFile = EpochFile::from_bytes(
        &std::fs::read(case.join("epochs").join(EpochFile::file_name(1))).unwrap(),
    )
    .unwrap();
    let height = first
        .bitcoin
        .expect("the settler carries headers")
        .start_height
        + 1;
    let hash = node.get_block_hash(height).await.unwrap().unwrap();
    let checkpoint: Checkpoint = format!("{height}:{hash}").parse().unwrap();
    let files = audit(
        &source,
        Some(&reader),
        None,
        &AuditOptions {
            maturity: MATURITY,
            checkpoint: Some(checkpoint),
            ..AuditOptions::default()
        },
        &mut NoObserver,
    )
    .await
    .unwrap();
    // The guardian audits the pending epochs and vetoes the first failing
    // one; the distributor rolls it back with every later one, so no root
    // holding the forgery can ever be finalized and claimed against.
    let guardian = Guardian::new(
        EpochSource::dir(case.join("epochs")),
        ChainReader::connect(
            contracts.anvil.endpoint_url(),
            contracts.deployment.distributor,
        ),
        DistributorClient::new(
            contracts.deployment.distributor,
            proofpool_chain::connect(contracts.anvil.endpoint_url(), contracts.guardian.clone()),
        ),
        Some(BlockChecker::new(client())),
        AuditOptions {
            maturity: MATURITY,
            ..AuditOptions::default()
        },
    );
    let vetoed = guardian.run_once().await.unwrap();
    // The sybil claims its leaf: nothing holding it can be finalized.
    let thief_paid = match &theft {
        Some((amount, proof)) => Some(
            contracts
                .chain
                .claim(SYBIL, *amount, proof.clone())
                .await
                .is_ok(),
        ),
        None => None,
    };
    let mut recovered = None;
    if let Some((epoch, _)) = vetoed.vetoed {
        let (committed, finalized) = contracts.chain.heads().await.unwrap();
        assert!(
            committed < epoch && finalized < epoch,
            "{name}: rolled back"
        );
        assert!(contracts.chain.epoch_hash(epoch).await.unwrap().is_zero());
        if let Some(correct) = correct {
            let db = sqlx::SqlitePool::connect(&url).await.unwrap();
            for sql in correct {
                run(&db, sql).await;
            }
            db.close().await;
            let pass = settler.run_once().await.unwrap();
            let audit_again = audit(
                &source,
                Some(&reader),
                Some(&checker),
                &AuditOptions {
                    maturity: MATURITY,
                    ..AuditOptions::default()
                },
                &mut NoObserver,
            )
            .await
            .unwrap();
            let guardian_again = guardian.run_once().await.unwrap();
            recovered = Some((pass, audit_again, guardian_again));
        }
    }
    store.close().await;
    drop(contracts);
    Reports {
        node: with_node,
        files,
        epochs: case.join("epochs"),
        checkpoint,
        guardian: vetoed,
        recovered,
        thief_paid,
    }
}

/// The reward tree an epoch file's `rewards` list, leaf for leaf.
fn reward_tree_of(
    domain: proofpool_merkle::RewardDomain,
    rewards: &[proofpool_epoch::epoch_file::FileReward],
) -> proofpool_merkle::RewardTree {
    let leaves = rewards
        .iter()
        .map(|r| proofpool_merkle::RewardLeaf {
            account: r.account,
            cumulative: r.cumulative_amount,
        })
        .collect();
    proofpool_merkle::RewardTree::new(domain, leaves).unwrap()
}

/// The sybil's newest leaf in the committed files, with its proof, if a
/// forgery credited it.
async fn sybil_leaf(
    epochs: &std::path::Path,
    contracts: &common::Contracts,
) -> Option<(U256, Vec<B256>)> {
    let (last, _) = contracts.chain.heads().await.unwrap();
    let domain = contracts.chain.domain().await.unwrap();
    for e in (1..=last).rev() {
        let file =
            EpochFile::from_bytes(&std::fs::read(epochs.join(EpochFile::file_name(e))).unwrap())
                .unwrap();
        if !file.rewards.iter().any(|r| r.account == SYBIL) {
            continue;
        }
        let tree = reward_tree_of(domain, &file.rewards);
        let (leaf, proof) = tree.proof_for(SYBIL).unwrap();
        return Some((leaf.cumulative, proof));
    }
    None
}

/// The operator's own settler commits one more epoch after the last: no
/// shares, no blocks, the same total as before, and a reward tree with one
/// more leaf, the sybil's 10 BTC, that nothing funds (its leaves add up to
/// more than its total). Returns the sybil's amount and proof.
async fn over_allocate(
    epochs: &std::path::Path,
    contracts: &common::Contracts,
) -> (U256, Vec<B256>) {
    use proofpool_epoch::epoch_file::{FileReward, data_hash};
    use proofpool_merkle::ShareTree;
    let (last, _) = contracts.chain.heads().await.unwrap();
    let prev =
        EpochFile::from_bytes(&std::fs::read(epochs.join(EpochFile::file_name(last))).unwrap())
            .unwrap();
    let domain = contracts.chain.domain().await.unwrap();
    let stolen = U256::from(1_000_000_000u64);
    let mut rewards = prev.rewards.clone();
    rewards.push(FileReward {
        account: SYBIL,
        cumulative_sats: 1_000_000_000,
        cumulative_amount: stolen,
    });
    rewards.sort_by_key(|r| r.account);
    let tree = reward_tree_of(domain, &rewards);
    let share_root = ShareTree::new(&[]).unwrap().root();
    let file = EpochFile {
        epoch: last + 1,
        start_unix: prev.end_unix,
        end_unix: prev.end_unix + (prev.end_unix - prev.start_unix),
        prev_epoch_hash: contracts.chain.epoch_hash(last).await.unwrap(),
        bitcoin: None,
        jobs: Vec::new(),
        shares: Vec::new(),
        share_root,
        blocks: Vec::new(),
        blocks_hash: proofpool_epoch::blocks_hash(&[]),
        orphaned: Vec::new(),
        expected: None,
        rewards,
        reward_root: tree.root(),
        total_cumulative: prev.total_cumulative,
        ..prev.clone()
    };
    let bytes = file.to_bytes().unwrap();
    std::fs::write(epochs.join(EpochFile::file_name(last + 1)), &bytes).unwrap();
    contracts
        .chain
        .commit_epoch(proofpool_epoch::EpochCommit {
            epoch: last + 1,
            shareRoot: share_root,
            rewardRoot: tree.root(),
            totalCumulative: prev.total_cumulative,
            blocksHash: file.blocks_hash,
            paramsHash: file.params.params_hash,
            dataHash: data_hash(&bytes),
            prevEpochHash: file.prev_epoch_hash,
        })
        .await
        .unwrap();
    let (_, proof) = tree.proof_for(SYBIL).unwrap();
    (stolen, proof)
}

/// Whether both audits fail on a mismatch about `field` of a subject `is`
/// (bitcoind's own check, `bitcoind.{field}`, too when `bitcoind`), and
/// the guardian vetoed the first failing epoch.
fn caught_twice(r: &Reports, is: impl Fn(&Subject) -> bool + Copy, field: &str, bitcoind: bool) {
    vetoed(r);
    assert!(
        caught(&r.files, is, field),
        "from the files:\n{}",
        every_finding(&r.files)
    );
    assert!(
        caught(&r.node, is, field),
        "with bitcoind:\n{}",
        every_finding(&r.node)
    );
    if bitcoind {
        let own = format!("bitcoind.{field}");
        assert!(
            caught(&r.node, is, &own),
            "bitcoind's own:\n{}",
            every_finding(&r.node)
        );
    }
}

/// The guardian vetoed the first epoch that fails the audit, and a sybil
/// credited by the forgery could not claim.
fn vetoed(r: &Reports) {
    assert_ne!(r.thief_paid, Some(true), "the sybil's claim paid");
    let first = r.node.failed_epochs().first().copied();
    assert!(first.is_some(), "the audit fails");
    assert_eq!(
        r.guardian.vetoed.map(|(epoch, _)| epoch),
        first,
        "the guardian vetoes the first failing epoch: {:?}",
        r.guardian
    );
}

/// Whether the report has a mismatch about `field` of a subject `is`.
fn caught(report: &AuditReport, is: impl Fn(&Subject) -> bool, field: &str) -> bool {
    report
        .verdicts
        .iter()
        .flat_map(|v| v.findings.iter())
        .chain(report.found.iter().map(|(_, f)| f))
        .any(|f| f.severity == Severity::Mismatch && is(&f.subject) && f.field == field)
}

fn every_finding(report: &AuditReport) -> String {
    let mut out = String::new();
    for v in &report.verdicts {
        out.push_str(&format!("{v}\n"));
        for f in &v.findings {
            out.push_str(&format!("  {f}\n"));
        }
    }
    for (epoch, f) in &report.found {
        out.push_str(&format!("found (epoch {epoch}): {f}\n"));
    }
    out
}

/// A job as the store holds it, and one share's fields on it.
struct Mined {
    prev_hash: B256,
    nbits: u32,
    coinbase1: Vec<u8>,
    coinbase2: Vec<u8>,
    coinbase2_suffix: Vec<u8>,
    log_head: B256,
    branch: Vec<B256>,
    extranonce1: Vec<u8>,
    extranonce2: Vec<u8>,
    ntime: u32,
    version: u32,
    share_target: U256,
}

impl Mined {
    /// Share `seq` and its job, from the store.
    async fn read(db: &sqlx::SqlitePool, seq: i64) -> (Self, i64, i64) {
        let row = sqlx::query(
            "SELECT s.instance, s.job_id, s.extranonce1, s.extranonce2, s.ntime, s.version, \
             s.share_target, j.prev_hash, j.nbits, j.coinbase1, j.coinbase2, j.coinbase2_suffix, \
             j.log_head, j.branch \
             FROM shares s JOIN jobs j ON j.instance = s.instance AND j.job_id = s.job_id \
             WHERE s.seq = $1",
        )
        .bind(seq)
        .fetch_one(db)
        .await
        .unwrap();
        let branch: Vec<u8> = row.get(13);
        let mined = Self {
            extranonce1: row.get(2),
            extranonce2: row.get(3),
            ntime: row.get::<i64, _>(4) as u32,
            version: row.get::<i64, _>(5) as u32,
            share_target: U256::from_be_slice(&row.get::<Vec<u8>, _>(6)),
            prev_hash: B256::from_slice(&row.get::<Vec<u8>, _>(7)),
            nbits: row.get::<i64, _>(8) as u32,
            coinbase1: row.get(9),
            coinbase2: row.get(10),
            coinbase2_suffix: row.get(11),
            log_head: B256::from_slice(&row.get::<Vec<u8>, _>(12)),
            branch: branch.chunks(32).map(B256::from_slice).collect(),
        };
        (mined, row.get(0), row.get(1))
    }

    /// Real proof of work by `miner`'s own rig on this job: its coinbase
    /// commits to `miner`, the share target and the job's log head, as the
    /// pool would have sent it. The nonce and the hash.
    fn mine(&self, miner: Address) -> (u32, B256) {
        let commitment = ShareCommitment {
            miner,
            target_bits: committed_target(self.share_target).0,
            log_head: self.log_head,
        };
        (0u32..10_000)
            .map(|nonce| {
                let hash = HeaderParts {
                    coinbase1: &self.coinbase1,
                    extranonce1: &self.extranonce1,
                    extranonce2: &self.extranonce2,
                    coinbase2: &self.coinbase2,
                    commitment: Some(commitment),
                    coinbase2_suffix: &self.coinbase2_suffix,
                    branch: &self.branch,
                    version: self.version,
                    prev_hash: self.prev_hash,
                    ntime: self.ntime,
                    nbits: self.nbits,
                    nonce,
                }
                .share_hash();
                (nonce, hash)
            })
            .find(|(_, hash)| hash_value(*hash) <= self.share_target)
            .expect("a share at difficulty 1e-9 within 10,000 nonces")
    }
}

/// Adds a job forged from the newest share's job (`prev_hash` and `nbits`
/// replaced) and a share on it credited to the sybil, with real proof of
/// work at the newest share's target: what a pool that served the forged
/// job to its own rig would hold.
async fn forge_job(
    db: &sqlx::SqlitePool,
    prev_hash: Option<[u8; 32]>,
    nbits: Option<u32>,
    payee: Option<&[u8]>,
) {
    let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM shares")
        .fetch_one(db)
        .await
        .unwrap();
    let (mut mined, instance, job_id) = Mined::read(db, seq).await;
    if let Some(payee) = payee {
        // The pool's script, in place, swapped for another of its length.
        let pool = base_payout();
        let at = mined
            .coinbase2
            .windows(pool.len())
            .position(|w| w == pool.as_slice())
            .expect("the coinbase pays the pool");
        mined.coinbase2[at..at + pool.len()].copy_from_slice(payee);
    }
    if let Some(prev) = prev_hash {
        mined.prev_hash = B256::from(prev);
    }
    mined.nbits = nbits.unwrap_or(mined.nbits);
    let net_target = target_from_nbits(mined.nbits);
    sqlx::query(
        "INSERT INTO jobs SELECT instance, $1, created, height, $2, version, $3, template_time, \
         coinbase1, $7, branch, $4, coinbase_value, coinbase2_suffix, log_head \
         FROM jobs WHERE instance = $5 AND job_id = $6",
    )
    .bind(FORGED_JOB)
    .bind(mined.prev_hash.as_slice())
    .bind(i64::from(mined.nbits))
    .bind(net_target.to_be_bytes::<32>().to_vec())
    .bind(instance)
    .bind(job_id)
    .bind(mined.coinbase2.clone())
    .execute(db)
    .await
    .unwrap();
    // Real proof of work on the forged header, as the operator's rig would do.
    let (nonce, hash) = mined.mine(SYBIL);
    let next: i64 = sqlx::query_scalar("SELECT next_seq FROM pool_state")
        .fetch_one(db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO shares SELECT $1, epoch, time_ms, instance, $2, $3, worker, extranonce1, \
         extranonce2, ntime, $4, version, $5, share_target, work, $6 FROM shares WHERE seq = $7",
    )
    .bind(next)
    .bind(FORGED_JOB)
    .bind(SYBIL.as_slice())
    .bind(i64::from(nonce))
    .bind(hash.as_slice())
    .bind(net_target.to_be_bytes::<32>().to_vec())
    .bind(seq)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("UPDATE pool_state SET next_seq = $1")
        .bind(next + 1)
        .execute(db)
        .await
        .unwrap();
}

/// The first share whose connection (instance and extranonce1) has another
/// share in its epoch: what the auditor can name the true miner or target
/// of, from the other share's proof of work.
const SHARE_WITH_A_SIBLING: &str = "SELECT MIN(s.seq) FROM shares s WHERE EXISTS \
     (SELECT 1 FROM shares t WHERE t.epoch = s.epoch AND t.instance = s.instance \
     AND t.extranonce1 = s.extranonce1 AND t.seq <> s.seq) \
     AND s.seq NOT IN (SELECT share_seq FROM blocks)";

/// Moves shares `from..` (and the blocks they found) `by` seqs up or down,
/// through negative numbers so no two rows ever share a seq; the share-log
/// checkpoints are dropped so the settler computes every listed head from
/// the shares as they now are (the forged files agree with themselves).
async fn renumber_from(db: &sqlx::SqlitePool, from: i64, by: i64) {
    for sql in [
        format!("UPDATE shares SET seq = -(seq + ({by})) WHERE seq >= {from}"),
        "UPDATE shares SET seq = -seq WHERE seq < 0".to_owned(),
        format!("UPDATE blocks SET share_seq = share_seq + ({by}) WHERE share_seq >= {from}"),
        format!("UPDATE pool_state SET next_seq = next_seq + ({by})"),
        "DELETE FROM share_log_heads".to_owned(),
    ] {
        run(db, &sql).await;
    }
}

async fn run(db: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(db)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheating_operator_is_caught_by_the_audit() {
    let base = mine_base().await;
    let job = |s: &Subject| matches!(s, Subject::Job { .. });
    let block = |s: &Subject| matches!(s, Subject::Block { .. });
    let share = |s: &Subject| matches!(s, Subject::Share { .. });

    let honest = settle_and_audit(&base, "honest", |_| async {}).await;
    for (how, r) in [
        ("with bitcoind", &honest.node),
        ("from the files", &honest.files),
    ] {
        assert!(
            r.is_ok(),
            "the honest control fails {how}:\n{}",
            every_finding(r)
        );
    }
    // The files carried headers, anchored: no warning that nothing ties
    // them to Bitcoin.
    assert!(
        !honest
            .files
            .found
            .iter()
            .any(|(_, f)| f.field.starts_with("bitcoin")),
        "{}",
        every_finding(&honest.files)
    );

    // proofpool watch: every share the pool accepted through the watcher is
    // in the honest files, credited to the miner and at the target its
    // proof of work commits to.
    let watch_log = proofpool_watch::WatchLog::open(&base.dir.path().join("watch.db"))
        .await
        .unwrap();
    let recorded = watch_log.shares().await.unwrap().len() as u64;
    assert!(recorded >= 12, "{recorded} shares recorded");
    let index = proofpool_watch::EpochIndex::from_dir(&honest.epochs).unwrap();
    let report = proofpool_watch::check(&watch_log, &index, None, 0)
        .await
        .unwrap();
    assert!(
        report.problems.is_empty() && report.unverifiable.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.included, recorded, "{report:?}");

    // One share dropped (the later ones renumbered) and another credited at
    // a lower target, in the store before settling: the audit fails on the
    // lowered one, and the watcher flags both with evidence that verifies.
    let forged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(B256, &str)>::new()));
    let noted = forged.clone();
    // The watcher vouches for the shares whose `true` it saw: the pool may
    // also have accepted a share a miner sent as it left.
    let seen: std::collections::HashSet<B256> = watch_log
        .shares()
        .await
        .unwrap()
        .iter()
        .map(|s| s.hash)
        .collect();
    let r = settle_and_audit(&base, "watched", |db| async move {
        let lowered: i64 = sqlx::query_scalar(SHARE_WITH_A_SIBLING)
            .fetch_one(&db)
            .await
            .unwrap();
        let candidates: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, hash FROM shares WHERE seq <> $1 \
             AND seq NOT IN (SELECT share_seq FROM blocks) ORDER BY seq DESC",
        )
        .bind(lowered)
        .fetch_all(&db)
        .await
        .unwrap();
        let dropped = candidates
            .iter()
            .find(|(_, hash)| seen.contains(&B256::from_slice(hash)))
            .map(|(seq, _)| *seq)
            .expect("a share the watcher recorded");
        for (seq, what) in [(lowered, "altered"), (dropped, "missing")] {
            let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM shares WHERE seq = $1")
                .bind(seq)
                .fetch_one(&db)
                .await
                .unwrap();
            noted.lock().unwrap().push((B256::from_slice(&hash), what));
        }
        let (mined, _, _) = Mined::read(&db, lowered).await;
        let lower = committed_target(mined.share_target >> 1).1;
        let work = proofpool_primitives::Work::from_target(lower).unwrap().0;
        sqlx::query("UPDATE shares SET share_target = $1, work = $2 WHERE seq = $3")
            .bind(lower.to_be_bytes::<32>().to_vec())
            .bind(work.to_be_bytes::<32>().to_vec())
            .bind(lowered)
            .execute(&db)
            .await
            .unwrap();
        run(&db, &format!("DELETE FROM shares WHERE seq = {dropped}")).await;
        renumber_from(&db, dropped + 1, -1).await;
    })
    .await;
    caught_twice(&r, share, "commitment.target", false);
    let index = proofpool_watch::EpochIndex::from_dir(&r.epochs).unwrap();
    let evidence_dir = base.dir.path().join("evidence");
    // No slack: the whole base was mined within seconds.
    let report = proofpool_watch::check(&watch_log, &index, Some(&evidence_dir), 0)
        .await
        .unwrap();
    let mut flagged: Vec<(B256, String)> = report
        .problems
        .iter()
        .map(|p| (p.hash, p.evidence.claim.as_ref().unwrap().problem.clone()))
        .collect();
    flagged.sort();
    let mut expected: Vec<(B256, String)> = forged
        .lock()
        .unwrap()
        .iter()
        .map(|(h, what)| (*h, (*what).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(flagged, expected, "{report:?}");
    assert_eq!(report.included + 2, recorded, "{report:?}");
    for problem in &report.problems {
        // The evidence, read back from its file, verifies for anyone: proof
        // of work by the miner it names, at its committed target.
        let path = problem.path.as_ref().unwrap();
        let evidence: proofpool_watch::ShareEvidence =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let verified = evidence.verify().unwrap();
        assert_eq!(verified.hash, problem.hash);
        let claim = evidence.claim.unwrap();
        if let Some(listed) = claim.listed {
            assert_eq!(listed.miner, verified.miner);
            assert!(listed.share_target < verified.target, "credited lower");
        }
    }
    watch_log.close().await;

    // An easier target than regtest's own: a cheap share outweighs the window.
    let r = settle_and_audit(&base, "nbits", |db| async move {
        forge_job(&db, None, Some(0x2100_ffff), None).await;
    })
    .await;
    caught_twice(&r, job, "nbits", true);

    let r = settle_and_audit(&base, "prev_hash", |db| async move {
        forge_job(&db, Some([0x42; 32]), None, None).await;
    })
    .await;
    caught_twice(&r, job, "prev_hash", true);

    // Pointing a block at share 1 empties its window for the operator (the
    // last block: share 1 may well have found the first).
    let r = settle_and_audit(&base, "moved", |db| async move {
        run(
            &db,
            &format!("UPDATE blocks SET share_seq = 1 WHERE height = {LAST_BLOCK}"),
        )
        .await;
    })
    .await;
    caught_twice(&r, block, "share_seq", false);

    let r = settle_and_audit(&base, "unlisted", |db| async move {
        run(
            &db,
            &format!("DELETE FROM blocks WHERE height = {FIRST_BLOCK}"),
        )
        .await;
    })
    .await;
    caught_twice(&r, block, "paid_epoch", true);

    // Listed as orphaned while bitcoind (and the carried headers) have it
    // in the best chain.
    let r = settle_and_audit(&base, "orphaned", |db| async move {
        run(
            &db,
            &format!("UPDATE blocks SET status = 'orphaned' WHERE height = {FIRST_BLOCK}"),
        )
        .await;
    })
    .await;
    caught_twice(&r, block, "orphaned", true);

    // A job whose coinbase pays the operator's own script, not the pool's.
    let r = settle_and_audit(&base, "payee", |db| async move {
        let other = vec![0x77; base_payout().len()];
        forge_job(&db, None, None, Some(&other)).await;
    })
    .await;
    caught_twice(&r, job, "coinbase2.payout_script", false);

    // A block's solving share dropped from the log, the later shares
    // renumbered so that no seq is missing, and the block deleted: only
    // bitcoind still shows a block paying the pool that no share found.
    let r = settle_and_audit(&base, "dropped", |db| async move {
        let seq: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT share_seq FROM blocks WHERE height = {FIRST_BLOCK}"
        )))
        .fetch_one(&db)
        .await
        .unwrap();
        for sql in [
            format!("DELETE FROM blocks WHERE share_seq = {seq}"),
            format!("DELETE FROM shares WHERE seq = {seq}"),
            format!("UPDATE shares SET seq = -(seq - 1) WHERE seq > {seq}"),
            "UPDATE shares SET seq = -seq WHERE seq < 0".to_owned(),
            format!("UPDATE blocks SET share_seq = share_seq - 1 WHERE share_seq > {seq}"),
            "UPDATE pool_state SET next_seq = next_seq - 1".to_owned(),
        ] {
            run(&db, &sql).await;
        }
    })
    .await;
    // The later jobs' share-log heads cover the dropped share, so the
    // files alone fail (`log_head`). bitcoind's block with no share behind
    // it (`hash`) shows only when another listed share was mined at its
    // height: when its solving share was its round's only one, no listed
    // job builds that height, and the block is within the first five
    // minutes of the span the files cover (see `check_unclaimed`).
    assert!(
        caught(&r.node, job, "log_head") || caught(&r.node, block, "hash"),
        "{}",
        every_finding(&r.node)
    );
    vetoed(&r);

    // A share moved an hour before its epoch began, still filed under it.
    let r = settle_and_audit(&base, "time", |db| async move {
        run(
            &db,
            "UPDATE shares SET time_ms = time_ms - 3600000 WHERE seq = (SELECT MAX(seq) FROM shares)",
        )
        .await;
    })
    .await;
    caught_twice(&r, share, "time_ms", false);

    // A share credited to the sybil instead of the miner whose coinbase it
    // was mined on: its proof of work names the miner.
    let r = settle_and_audit(&base, "reassigned", |db| async move {
        run(
            &db,
            &format!(
                "UPDATE shares SET miner = x'{}' WHERE seq = ({SHARE_WITH_A_SIBLING})",
                alloy::hex::encode(SYBIL)
            ),
        )
        .await;
    })
    .await;
    caught_twice(&r, share, "commitment.miner", false);

    // A share credited at a lower target (twice the work) than its job
    // committed to, its work consistent with the forged target.
    let r = settle_and_audit(&base, "target", |db| async move {
        let seq: i64 = sqlx::query_scalar(SHARE_WITH_A_SIBLING)
            .fetch_one(&db)
            .await
            .unwrap();
        let (mined, _, _) = Mined::read(&db, seq).await;
        let lower = committed_target(mined.share_target >> 1).1;
        let work = proofpool_primitives::Work::from_target(lower).unwrap().0;
        sqlx::query("UPDATE shares SET share_target = $1, work = $2 WHERE seq = $3")
            .bind(lower.to_be_bytes::<32>().to_vec())
            .bind(work.to_be_bytes::<32>().to_vec())
            .bind(seq)
            .execute(&db)
            .await
            .unwrap();
    })
    .await;
    caught_twice(&r, share, "commitment.target", false);

    // The sybil's own share, real proof of work on a real job (its coinbase
    // commits to the sybil), slipped into the log right after share 1: every
    // later job committed to a head that no longer follows from the log.
    let r = settle_and_audit(&base, "inserted", |db| async move {
        let (mut mined, _, job_id) = Mined::read(&db, 1).await;
        mined.extranonce2 = vec![0xee; mined.extranonce2.len()];
        let (nonce, hash) = mined.mine(SYBIL);
        renumber_from(&db, 2, 1).await;
        sqlx::query(
            "INSERT INTO shares SELECT 2, epoch, time_ms, instance, $1, $2, worker, extranonce1, \
             $3, ntime, $4, version, $5, share_target, work, network_target FROM shares WHERE seq = 1",
        )
        .bind(job_id)
        .bind(SYBIL.as_slice())
        .bind(mined.extranonce2.clone())
        .bind(i64::from(nonce))
        .bind(hash.as_slice())
        .execute(&db)
        .await
        .unwrap();
    })
    .await;
    caught_twice(&r, job, "log_head", false);

    // An ordinary share (no block's) dropped from the log, the later ones
    // renumbered so that no seq is missing.
    let r = settle_and_audit(&base, "dropped_share", |db| async move {
        let seq: i64 = sqlx::query_scalar(
            "SELECT MIN(seq) FROM shares WHERE seq > 1 AND seq NOT IN (SELECT share_seq FROM blocks)",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        run(&db, &format!("DELETE FROM shares WHERE seq = {seq}")).await;
        renumber_from(&db, seq + 1, -1).await;
    })
    .await;
    caught_twice(&r, job, "log_head", false);

    // The fee raised to 100% for the epochs that pay the blocks, and set
    // back after: miners would have been credited nothing. The files and
    // the commits agree with each other; the distributor's schedule does not.
    for (name, how) in [
        ("fee", Params::FeeRaised),
        ("fee_late", Params::FeeAnnouncedLate),
    ] {
        let r = settle_audit_and_recover(&base, name, |_| async {}, None, how).await;
        caught_twice(
            &r,
            |s: &Subject| matches!(s, Subject::Chain),
            "paramsAt(start_unix)",
            false,
        );
        assert!(
            !caught(
                &r.node,
                |s: &Subject| matches!(s, Subject::Epoch),
                "params.params_hash"
            ),
            "{name}: the file is consistent in itself; only the pinned parameters catch it"
        );
    }

    // An over-allocated root: one more epoch whose leaves add up to more
    // than its total, the difference the sybil's. The audit fails it, the
    // guardian vetoes it, and the sybil's claim never pays.
    let r =
        settle_audit_and_recover(&base, "over", |_| async {}, None, Params::OverAllocated).await;
    vetoed(&r);
    let over = r.guardian.vetoed.expect("vetoed").0;
    assert!(
        r.node.failed_epochs() == vec![over] && r.files.failed_epochs() == vec![over],
        "only the over-allocated epoch fails:\n{}",
        every_finding(&r.node)
    );
    assert!(
        caught(
            &r.node,
            |s: &Subject| matches!(s, Subject::Epoch),
            "reward_root"
        ),
        "{}",
        every_finding(&r.node)
    );
    assert_eq!(r.thief_paid, Some(false), "the sybil's claim paid");

    // The headers themselves, audited from the files alone (no chain, no
    // node): a checkpoint they contain passes; one they contradict, or one
    // below where they start, fails; a tampered header breaks the links.
    let files_only = |epochs: std::path::PathBuf, checkpoint: Checkpoint| async move {
        audit(
            &EpochSource::dir(epochs),
            None,
            None,
            &AuditOptions {
                maturity: MATURITY,
                checkpoint: Some(checkpoint),
                ..AuditOptions::default()
            },
            &mut NoObserver,
        )
        .await
        .unwrap()
    };
    let header = |s: &Subject| matches!(s, Subject::Header { .. });
    let good = honest.checkpoint;
    let r = files_only(honest.epochs.clone(), good).await;
    assert!(r.is_ok(), "{}", every_finding(&r));
    let wrong = Checkpoint {
        hash: B256::repeat_byte(0x11),
        ..good
    };
    let r = files_only(honest.epochs.clone(), wrong).await;
    assert!(caught(&r, header, "checkpoint"), "{}", every_finding(&r));
    let below = Checkpoint {
        height: good.height - 2,
        ..good
    };
    let r = files_only(honest.epochs.clone(), below).await;
    assert!(caught(&r, header, "checkpoint"), "{}", every_finding(&r));

    let tampered = base.dir.path().join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    for entry in std::fs::read_dir(&honest.epochs).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tampered.join(entry.file_name())).unwrap();
    }
    let path = tampered.join(EpochFile::file_name(1));
    let mut file = EpochFile::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let carried = file.bitcoin.as_mut().unwrap();
    assert!(
        carried.headers.len() >= 3,
        "epoch 1 carries the chain to the tip"
    );
    let mut raw = carried.headers[1].to_vec();
    raw[0] ^= 1; // the version: another hash, which the next header does not name
    carried.headers[1] = raw.into();
    std::fs::write(&path, file.to_bytes().unwrap()).unwrap();
    let r = files_only(tampered, good).await;
    assert!(
        caught(&r, header, "prev_blockhash"),
        "{}",
        every_finding(&r)
    );

    // The settler's recovery: the guardian vetoes the forged job's epoch,
    // the operator undoes the forgery in its database, and the next settle
    // pass forgets the vetoed epochs, computes them again and recommits
    // them; the audit then passes and the guardian has nothing to veto.
    let undo = [
        format!("DELETE FROM shares WHERE job_id = {FORGED_JOB}"),
        format!("DELETE FROM jobs WHERE job_id = {FORGED_JOB}"),
        "UPDATE pool_state SET next_seq = next_seq - 1".to_owned(),
    ];
    let undo: Vec<&str> = undo.iter().map(String::as_str).collect();
    let r = settle_audit_and_recover(
        &base,
        "recovery",
        |db| async move {
            forge_job(&db, None, Some(0x2100_ffff), None).await;
        },
        Some(&undo),
        Params::Pinned,
    )
    .await;
    vetoed(&r);
    let vetoed_epoch = r.guardian.vetoed.unwrap().0;
    let (pass, audit_again, guardian_again) = r.recovered.expect("recovered");
    assert_eq!(pass.rolled_back, Some(vetoed_epoch), "{pass:?}");
    assert!(
        pass.committed.iter().any(|(e, _)| *e == vetoed_epoch),
        "the corrected epoch is committed again: {pass:?}"
    );
    assert!(audit_again.is_ok(), "{}", every_finding(&audit_again));
    assert_eq!(guardian_again.vetoed, None, "{guardian_again:?}");
}
