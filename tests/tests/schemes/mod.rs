//! PPS and FPPS on real components (issue 25): one pool session on a real
//! regtest bitcoind; then, from copies of its database, each scheme is
//! settled on a fresh anvil with the normal `Settler`.
//!
//! - Every epoch with shares credits each of its miners, whether its shares
//!   found a block or not (under PPS every block the pool found is taken
//!   off the best chain first: none is paid, all are listed orphaned, and
//!   the credits are the same), and each credit is
//!   what the spec's formula gives, worked out here from the epoch file with
//!   separate integer code: `floor(Σ W_share × base / W_net × (1 − fee))`,
//!   give or take the one unit the per-share score floors may take.
//! - The blocks the shares found are the operator's revenue: listed once
//!   mature, crediting nobody.
//! - The audit (chain and bitcoind) passes, and the distributor pulled
//!   each epoch's credits from the settler at commit.
//! - Tampered files fail the audit: a job's inflated `coinbase_value`, a fee
//!   skimmed beyond `fee_bps`, a share credited twice, another network
//!   claimed.
//! - A settler that cannot fund an epoch's credits is refused with a clear
//!   error, and commits nothing.

use crate::common;
use alloy::primitives::{Address, U256, U512};
use proofpool_audit::{
    AuditOptions, AuditReport, BlockChecker, ChainReader, EpochSource, NoObserver, Severity,
    Subject, audit,
};
use proofpool_devtools::TempDir;
use proofpool_epoch::Scheme;
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_node::NodeClient;
use proofpool_pool::Pool;
use proofpool_settlement::{SettleConfig, SettleError, Settler};
use proofpool_store::{Store, StoreOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MINER_A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const MINER_B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const EPOCH_SECS: u64 = 2;
const MATURITY: u64 = 3;

/// `floor(2^256 / (target + 1))`, the spec's work, computed here in 512
/// bits rather than through `Work::from_target`.
fn work_of(target: U256) -> U512 {
    (U512::from(1u8) << 256) / (U512::from(target) + U512::from(1u8))
}

/// The compact `nbits` as a target (Bitcoin's rule), written out here.
fn target_of(nbits: u32) -> U256 {
    let exponent = nbits >> 24;
    let mantissa = U256::from(nbits & 0x007f_ffff);
    if exponent <= 3 {
        mantissa >> (8 * (3 - exponent))
    } else {
        mantissa << (8 * (exponent - 3))
    }
}

/// Regtest's subsidy: 50 BTC halved every 150 blocks.
fn regtest_subsidy(height: u64) -> u64 {
    5_000_000_000u64 >> (height / 150)
}

/// Each miner's credit as the spec defines it, from the file alone:
/// `floor(Σ_i min(W_i, W_net_i) · base_i / W_net_i · (10000 − fee) / 10000)`.
fn spec_credits(file: &EpochFile) -> BTreeMap<Address, U512> {
    let jobs: BTreeMap<(u8, u64), &proofpool_epoch::epoch_file::FileJob> = file
        .jobs
        .iter()
        .map(|j| ((j.instance, j.job_id), j))
        .collect();
    // Σ W_i · base_i / W_net_i over a common denominator: on regtest every
    // job has the same nbits, which this checks.
    let mut net: Option<U512> = None;
    let mut sums: BTreeMap<Address, U512> = BTreeMap::new();
    for s in &file.shares {
        let job = jobs[&(s.instance, s.job_id)];
        let w_net = work_of(target_of(job.nbits));
        assert!(net.is_none_or(|n| n == w_net), "one network target");
        net = Some(w_net);
        let base = match file.params.scheme {
            Scheme::Pps => regtest_subsidy(job.height),
            Scheme::Fpps => job.coinbase_value,
            Scheme::Pplns => unreachable!("PPS and FPPS only"),
        };
        // A share is worth at most one block (on regtest every share is one).
        *sums.entry(s.miner).or_default() += work_of(s.share_target).min(w_net) * U512::from(base);
    }
    let keep = U512::from(10_000 - file.params.fee_bps);
    sums.into_iter()
        .map(|(m, sum)| {
            (
                m,
                sum * keep / (net.expect("shares") * U512::from(10_000u64)),
            )
        })
        .collect()
}

fn caught(report: &AuditReport, is: impl Fn(&Subject) -> bool, field: &str) -> bool {
    report
        .verdicts
        .iter()
        .flat_map(|v| v.findings.iter())
        .any(|f| f.severity == Severity::Mismatch && is(&f.subject) && f.field == field)
}

fn findings(report: &AuditReport) -> String {
    report
        .verdicts
        .iter()
        .flat_map(|v| {
            v.findings
                .iter()
                .map(move |f| format!("epoch {}: {f}\n", v.epoch))
        })
        .collect()
}

/// Audits the files in `dir` alone (no chain, no bitcoind), told the
/// network is regtest.
async fn audit_files(dir: &Path) -> AuditReport {
    audit(
        &EpochSource::dir(dir.to_path_buf()),
        None,
        None,
        &AuditOptions {
            maturity: MATURITY,
            network: Some(bitcoin::Network::Regtest),
            ..AuditOptions::default()
        },
        &mut NoObserver,
    )
    .await
    .unwrap()
}

/// Audits the files in `dir` against the chain and bitcoind.
async fn audit_all(dir: &Path, contracts: &common::Contracts, node: NodeClient) -> AuditReport {
    audit(
        &EpochSource::dir(dir.to_path_buf()),
        Some(&ChainReader::connect(
            contracts.anvil.endpoint_url(),
            contracts.deployment.distributor,
        )),
        Some(&BlockChecker::new(node)),
        &AuditOptions {
            maturity: MATURITY,
            ..AuditOptions::default()
        },
        &mut NoObserver,
    )
    .await
    .unwrap()
}

/// A copy of the epoch files in `from`, with epoch `e`'s file changed by
/// `tamper`, written compact as the settler writes it.
fn tampered(from: &Path, to: PathBuf, e: u64, tamper: impl FnOnce(&mut EpochFile)) -> PathBuf {
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let path = to.join(EpochFile::file_name(e));
    let mut file = EpochFile::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    tamper(&mut file);
    std::fs::write(&path, file.to_bytes().unwrap()).unwrap();
    to
}

/// The normal settler on `store`, committing to `contracts`' distributor
/// with bitcoind `node`, checking `params` against the chain's schedule.
fn settler_for(
    store: &Store,
    contracts: &common::Contracts,
    node: NodeClient,
    params: proofpool_settlement::PoolParams,
    epochs_dir: PathBuf,
) -> Settler<alloy::providers::DynProvider> {
    Settler::new(
        store.clone(),
        contracts.chain.clone(),
        Some(std::sync::Arc::new(node)),
        SettleConfig {
            params,
            verify_params: true,
            grace: Duration::from_secs(1),
            epochs_dir,
            confirmations: 1,
            dry_run: false,
            settler: contracts.settler.address(),
        },
    )
}

/// Copies the pool's database into `case` and opens it.
async fn store_copy(db: &Path, case: &Path) -> Store {
    std::fs::create_dir_all(case).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        if from.exists() {
            std::fs::copy(&from, case.join(format!("pool.db{suffix}"))).unwrap();
        }
    }
    let url = format!("sqlite://{}", case.join("pool.db").display());
    Store::open(&url, &StoreOptions::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pps_and_fpps_credit_every_epoch_and_the_audit_recomputes_them() {
    common::init_tracing();
    let dir = TempDir::new("schemes").unwrap();
    // Spends in the mempool, so templates carry fees and FPPS pays more
    // than PPS.
    let regtest = common::regtest_node(110, 2);
    let db = dir.path().join("pool.db");
    let store = Store::open(
        &format!("sqlite://{}", db.display()),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let mut config = regtest.pool_config();
    config.epoch_secs = EPOCH_SECS;
    let payout = config.payout_script.clone();
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;
    let rounds: Vec<(String, u64)> = [MINER_A, MINER_B, MINER_A]
        .iter()
        .enumerate()
        .map(|(round, miner)| (format!("{miner}.rig{round}"), 3))
        .collect();
    let found = common::mine_blocks(&serving.pool, serving.addr, &store, &rounds).await;
    assert!(!found.is_empty(), "the miners found blocks");
    serving.stop().await;
    let last_epoch = common::wait_for_last_epoch_end(&store, 1).await;
    store.close().await;
    let node = || NodeClient::new(vec![regtest.endpoint()], Duration::from_secs(30)).unwrap();

    let mut fpps_epochs = None;
    let mut gross = std::collections::HashMap::new();
    // The pool's first block, display order: invalidating it takes every
    // pool block off the best chain.
    let first_block = alloy::hex::encode(found.iter().min_by_key(|b| b.height).unwrap().hash);
    for scheme in [Scheme::Pps, Scheme::Fpps] {
        if scheme == Scheme::Pps {
            // No block found survives: PPS credits every epoch's shares
            // all the same.
            regtest
                .node
                .cli(&["invalidateblock", &first_block])
                .unwrap();
        } else {
            // The pool's blocks back in the best chain, and every one of
            // them mature (the last ones too).
            regtest
                .node
                .cli(&["reconsiderblock", &first_block])
                .unwrap();
            regtest.mine_elsewhere(MATURITY);
        }
        let case = dir.path().join(scheme.as_str());
        let store = store_copy(&db, &case).await;
        let params = proofpool_settlement::PoolParams {
            scheme,
            ..common::pool_params(32, &payout, EPOCH_SECS, MATURITY)
        };
        // On regtest every share is a block, worth one block's value.
        let contracts = common::deploy(1, U256::from(10u64).pow(U256::from(30u64)), &params).await;
        let held_before = contracts
            .chain
            .token_balance(contracts.settler.address())
            .await
            .unwrap();
        let epochs = case.join("epochs");
        let settler = settler_for(&store, &contracts, node(), params.clone(), epochs.clone());
        let pass = settler.run_once().await.unwrap();
        assert!(pass.committed.len() as u64 >= last_epoch, "{pass:?}");

        // Every epoch with shares credits each of its miners what the spec
        // says; blocks credit nobody.
        let mut total = 0u64;
        let mut credited_epochs = 0;
        let mut orphaned = 0;
        for e in 1..=last_epoch {
            let bytes = std::fs::read(epochs.join(EpochFile::file_name(e))).unwrap();
            let file = EpochFile::from_bytes(&bytes).unwrap();
            assert_eq!(file.params.scheme, scheme);
            let expected = file.expected.as_ref().expect("an expected section");
            let spec = spec_credits(&file);
            let listed: BTreeMap<Address, u64> =
                expected.credits.iter().map(|c| (c.miner, c.sats)).collect();
            assert_eq!(
                listed.keys().collect::<Vec<_>>(),
                spec.keys().collect::<Vec<_>>(),
                "epoch {e}: every miner with shares is credited"
            );
            for (miner, exact) in &spec {
                let credit = U512::from(listed[miner]);
                assert!(
                    credit <= *exact && credit + U512::from(1u8) >= *exact,
                    "epoch {e} {miner}: {credit} against the spec's {exact}"
                );
            }
            let sum: u64 = listed.values().sum();
            assert_eq!(
                sum + expected.fee + expected.dust,
                expected.gross,
                "epoch {e}"
            );
            // The fee is fee_bps of the gross, to the unit.
            assert_eq!(expected.fee, expected.gross / 100, "epoch {e}");
            for b in &file.blocks {
                assert!(b.credits.is_empty(), "epoch {e}: block {}", b.height);
                assert_eq!(b.operator, b.coinbase_value);
            }
            if scheme == Scheme::Pps {
                assert!(
                    file.blocks.is_empty(),
                    "epoch {e}: every block was orphaned"
                );
                orphaned += file.orphaned.len();
            }
            total += sum;
            *gross.entry(scheme).or_insert(0u64) += expected.gross;
            credited_epochs += usize::from(!listed.is_empty());
        }
        assert!(credited_epochs >= 1);
        if scheme == Scheme::Pps {
            assert!(orphaned >= 1, "the files list the orphaned blocks");
        }
        // The distributor pulled the credits from the settler at commit
        // (and the escrow's lasting base unit with its first funding).
        let (committed, _) = contracts.chain.heads().await.unwrap();
        let held_after = contracts
            .chain
            .token_balance(contracts.settler.address())
            .await
            .unwrap();
        assert_eq!(
            held_before - held_after,
            contracts.chain.committed_total().await.unwrap() + U256::from(1u8),
            "committed through epoch {committed}"
        );
        assert!(contracts.chain.committed_total().await.unwrap() >= U256::from(total));

        // The audit with the chain and bitcoind recomputes every credit.
        let report = audit_all(&epochs, &contracts, node()).await;
        assert!(report.is_ok(), "{scheme}:\n{}", findings(&report));
        // Each miner's own replay (`proofpool watch check`) finds its
        // credits in its reward leaf.
        let mut index = proofpool_watch::EpochIndex::from_dir(&epochs).unwrap();
        index.expect_network(bitcoin::Network::Regtest);
        let miners = [MINER_A, MINER_B].map(|m| m.parse::<Address>().unwrap());
        for check in proofpool_watch::credits(&index, miners).unwrap() {
            assert!(check.problems.is_empty(), "{scheme}: {check:?}");
            assert!(
                !check.epochs.is_empty() && check.blocks.is_empty(),
                "{check:?}"
            );
            assert_eq!(
                check.leaf.map(|l| l.cumulative_sats),
                Some(check.recomputed_sats)
            );
        }
        store.close().await;
        if scheme == Scheme::Fpps {
            fpps_epochs = Some(epochs);
        }
    }

    // The same shares are worth more with their templates' fees (the
    // spends in the first templates' mempool).
    assert!(gross[&Scheme::Fpps] > gross[&Scheme::Pps], "{gross:?}");

    // Tampered FPPS files, audited from the files alone.
    let epochs = fpps_epochs.unwrap();
    assert!(audit_files(&epochs).await.is_ok());
    let credited = (1..=last_epoch)
        .find(|e| {
            let file = EpochFile::from_bytes(
                &std::fs::read(epochs.join(EpochFile::file_name(*e))).unwrap(),
            )
            .unwrap();
            file.expected.is_some_and(|x| !x.credits.is_empty())
        })
        .unwrap();

    // A job's coinbase value inflated (every share on it worth more).
    let inflated = tampered(&epochs, dir.path().join("inflated"), credited, |f| {
        f.jobs[0].coinbase_value += 1_000_000;
    });
    let report = audit_files(&inflated).await;
    assert!(
        caught(
            &report,
            |s| matches!(s, Subject::Job { .. }),
            "coinbase_value"
        ),
        "{}",
        findings(&report)
    );

    // A fee skimmed: one miner's credit cut by 1% more, the fee raised to
    // match, so the file still adds up.
    let skimmed = tampered(&epochs, dir.path().join("skimmed"), credited, |f| {
        let x = f.expected.as_mut().unwrap();
        let cut = x.credits[0].sats / 100;
        x.credits[0].sats -= cut;
        x.fee += cut;
    });
    let report = audit_files(&skimmed).await;
    assert!(
        caught(&report, |s| *s == Subject::Epoch, "expected.fee")
            && caught(&report, |s| matches!(s, Subject::Expected { .. }), "sats"),
        "{}",
        findings(&report)
    );

    // The files claim another network (on mainnet, a file claiming regtest
    // would halve PPS's subsidy to nothing): held to the one audited.
    let elsewhere = tampered(&epochs, dir.path().join("network"), credited, |f| {
        f.bitcoin.as_mut().unwrap().network = "signet".to_owned();
    });
    let report = audit_files(&elsewhere).await;
    assert!(
        caught(&report, |s| *s == Subject::Epoch, "bitcoin.network"),
        "{}",
        findings(&report)
    );

    // A share credited twice: a copy of it under a new seq.
    let twice = tampered(&epochs, dir.path().join("twice"), credited, |f| {
        let mut copy = f.shares.last().unwrap().clone();
        copy.seq += 1_000_000;
        f.shares.push(copy);
    });
    let report = audit_files(&twice).await;
    assert!(
        caught(&report, |s| matches!(s, Subject::Share { .. }), "hash"),
        "{}",
        findings(&report)
    );

    // The miner's own replay (`proofpool watch check --network regtest`)
    // catches what concerns it: a file on another network, and a block
    // handed to another share (and so, in an FPPS epoch, to the operator).
    let watched = |dir: &Path| {
        let mut index = proofpool_watch::EpochIndex::from_dir(dir).unwrap();
        index.expect_network(bitcoin::Network::Regtest);
        let miners = [MINER_A, MINER_B].map(|m| m.parse::<Address>().unwrap());
        proofpool_watch::credits(&index, miners)
            .unwrap()
            .into_iter()
            .flat_map(|c| c.problems)
            .collect::<Vec<_>>()
    };
    assert!(watched(&epochs).is_empty());
    let problems = watched(&elsewhere);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("names the signet network")),
        "{problems:?}"
    );
    let with_block = (1..=last_epoch)
        .find(|e| {
            EpochFile::from_bytes(&std::fs::read(epochs.join(EpochFile::file_name(*e))).unwrap())
                .unwrap()
                .blocks
                .iter()
                .any(|b| b.share_seq > 1)
        })
        .expect("a listed block");
    let moved = tampered(&epochs, dir.path().join("moved"), with_block, |f| {
        let b = f.blocks.iter_mut().find(|b| b.share_seq > 1).unwrap();
        b.share_seq -= 1;
    });
    let problems = watched(&moved);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("does not hash to the block")),
        "{problems:?}"
    );

    // A settler without the tokens to fund the credits is refused before it
    // sends anything, and says so.
    let case = dir.path().join("unfunded");
    let store = store_copy(&db, &case).await;
    let params = proofpool_settlement::PoolParams {
        scheme: Scheme::Fpps,
        ..common::pool_params(32, &payout, EPOCH_SECS, MATURITY)
    };
    let contracts = common::deploy(1, U256::from(1_000u64), &params).await;
    let settler = settler_for(&store, &contracts, node(), params, case.join("epochs"));
    let err = settler.run_once().await.unwrap_err();
    assert!(matches!(err, SettleError::Unfunded { .. }), "{err}");
    assert!(
        err.to_string().contains("fund the settler account"),
        "{err}"
    );
    assert_eq!(
        contracts.chain.heads().await.unwrap().0,
        0,
        "nothing committed"
    );
    store.close().await;
}

/// A pool that switches from PPLNS to FPPS with `proofpool params queue`:
/// the settler, configured for PPLNS, settles the epochs that start after
/// the notice under FPPS (the version the distributor has in force), blocks
/// found by PPLNS shares before the switch are still paid by PPLNS when they
/// mature after it, blocks found under FPPS credit nobody, and the audit
/// with the chain and bitcoind passes over both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_fpps_still_pays_the_pplns_blocks_when_they_mature() {
    common::init_tracing();
    let dir = TempDir::new("scheme-switch").unwrap();
    let regtest = common::regtest_node(110, 2);
    let store = Store::open(&dir.sqlite_url("pool.db"), &StoreOptions::default())
        .await
        .unwrap();
    let mut config = regtest.pool_config();
    config.epoch_secs = EPOCH_SECS;
    let pplns = common::pool_params(32, &config.payout_script, EPOCH_SECS, MATURITY);
    let fpps = proofpool_settlement::PoolParams {
        scheme: Scheme::Fpps,
        ..pplns.clone()
    };
    // A one-second challenge period: the switch is in force a second after
    // it is announced.
    let contracts = common::deploy(1, U256::from(10u64).pow(U256::from(30u64)), &pplns).await;
    let node = || NodeClient::new(vec![regtest.endpoint()], Duration::from_secs(30)).unwrap();
    let epochs = dir.path().join("epochs");
    let settler = settler_for(&store, &contracts, node(), pplns.clone(), epochs.clone());

    // Under PPLNS: blocks found, the newest still immature when the epochs
    // are settled.
    let serving = common::serve(Pool::new(config.clone(), store.clone()).await.unwrap()).await;
    let rounds: Vec<(String, u64)> = [MINER_A, MINER_B]
        .iter()
        .enumerate()
        .map(|(round, miner)| (format!("{miner}.rig{round}"), 3))
        .collect();
    let before = common::mine_blocks(&serving.pool, serving.addr, &store, &rounds).await;
    serving.stop().await;
    let pplns_blocks: Vec<_> = before
        .iter()
        .filter(|b| b.status == proofpool_store::BlockStatus::Immature)
        .map(|b| b.hash)
        .collect();
    assert!(!pplns_blocks.is_empty(), "{before:?}");
    common::wait_for_last_epoch_end(&store, 1).await;
    settler.run_once().await.unwrap();
    let owed: Vec<_> = store
        .blocks()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| pplns_blocks.contains(&b.hash) && b.paid_epoch.is_none())
        .map(|b| b.hash)
        .collect();
    assert!(!owed.is_empty(), "a PPLNS block still waits for maturity");

    // The owner announces FPPS; the pool mines on once it is in force.
    let version = contracts.chain.queue_params(&fpps).await.unwrap();
    // (The pool's epochs run on the wall clock; anvil's block times follow it.)
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    while now() < version.effective_at + EPOCH_SECS {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;
    let rounds = vec![(format!("{MINER_B}.rig9"), 3)];
    common::mine_blocks(&serving.pool, serving.addr, &store, &rounds).await;
    serving.stop().await;
    regtest.mine_elsewhere(MATURITY);
    let last_epoch = common::wait_for_last_epoch_end(&store, 1).await;
    settler.run_once().await.unwrap();

    // Every epoch starting after the notice paid FPPS; the owed PPLNS
    // blocks were paid by PPLNS; the FPPS epochs' blocks credit nobody.
    let clock = store.clock().await.unwrap();
    let mut paid_owed = 0;
    let mut revenue = 0;
    let mut fpps_epochs = 0;
    for e in 1..=last_epoch {
        let file =
            EpochFile::from_bytes(&std::fs::read(epochs.join(EpochFile::file_name(e))).unwrap())
                .unwrap();
        let (start, _) = clock.bounds(e);
        let scheme = if start >= version.effective_at {
            Scheme::Fpps
        } else {
            Scheme::Pplns
        };
        assert_eq!(file.params.scheme, scheme, "epoch {e}");
        if scheme == Scheme::Fpps && !file.shares.is_empty() {
            fpps_epochs += 1;
            assert!(
                file.expected
                    .as_ref()
                    .is_some_and(|x| !x.credits.is_empty()),
                "epoch {e}"
            );
        }
        for b in &file.blocks {
            if owed.contains(&b.hash) {
                paid_owed += 1;
                assert!(!b.credits.is_empty(), "epoch {e}: {b:?}");
            } else if !pplns_blocks.contains(&b.hash) {
                // Found by a share of an FPPS epoch.
                revenue += 1;
                assert!(b.credits.is_empty(), "epoch {e}: {b:?}");
            }
        }
    }
    assert!(fpps_epochs >= 1);
    assert_eq!(paid_owed, owed.len(), "every owed PPLNS block was paid");
    assert!(
        revenue >= 1,
        "a block found under FPPS is listed as revenue"
    );

    let report = audit_all(&epochs, &contracts, node()).await;
    assert!(report.is_ok(), "{}", findings(&report));
    // The miners' own replay agrees across the switch: PPLNS blocks, then
    // FPPS epochs.
    let mut index = proofpool_watch::EpochIndex::from_dir(&epochs).unwrap();
    index.expect_network(bitcoin::Network::Regtest);
    let miners = [MINER_A, MINER_B].map(|m| m.parse::<Address>().unwrap());
    for check in proofpool_watch::credits(&index, miners).unwrap() {
        assert!(check.problems.is_empty(), "{check:?}");
        assert_eq!(
            check.leaf.map(|l| l.cumulative_sats),
            Some(check.recomputed_sats)
        );
    }
    store.close().await;
}
