//! The whole payout path on real components: regtest bitcoind, anvil, the
//! pool with a SQLite store, and reference miners on four addresses, over
//! Stratum V1 and V2, directly and through the SRI translator.
//! Miners find blocks through the pool; the blocks mature; settlement closes
//! the epochs, computes PPLNS, commits and (after the challenge period)
//! finalizes on-chain; every miner claims with proofs built from the store;
//! their token balances equal their PPLNS credits to the base unit. One
//! miner's two workers mine through `proofpool watch`, the others keep the
//! same share log themselves (`--share-log`): over V1, over V2, and as a V1
//! miner behind `translator_sv2`, which mines for it on one aggregated V2
//! channel opened with the farm's address. Each log's check finds every
//! share the miner was told was accepted in the files, and the watcher's
//! replayed credit and "claimable now" are what the claim then pays, to the
//! base unit. The auditor then verifies every epoch against the chain and
//! bitcoind.
//!
//! [`cheating`]: the same path with the operator forging its store before
//! settlement; the audit must catch each forgery. [`schemes`]: PPS and FPPS
//! settled and audited, with tampered files and an unfunded settler.

use alloy::primitives::{Address, U256};
use proofpool_audit::{AuditOptions, BlockChecker, ChainReader, EpochSource, NoObserver, audit};
use proofpool_chain::MockBTC;
use proofpool_devtools::TempDir;
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_merkle::{RewardLeaf, RewardTree};
use proofpool_node::{NodeAuth, NodeClient, NodeEndpoint};
use proofpool_pool::Pool;
use proofpool_settlement::{SettleConfig, Settler};
use proofpool_store::{BlockStatus, EpochStatus, Store, StoreOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const MINER_A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const MINER_B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
/// Mines as a Stratum V1 miner behind the SRI translator.
const MINER_C: &str = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
/// Mines over Stratum V2 directly.
const MINER_D: &str = "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb";
const EPOCH_SECS: u64 = 2;
const MATURITY: u64 = 3;

mod common;

#[path = "cheating/mod.rs"]
mod cheating;

#[path = "schemes/mod.rs"]
mod schemes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mined_blocks_become_claimable_tokens() {
    common::init_tracing();
    let dir = TempDir::new("settle-regtest").unwrap();

    // bitcoind with spendable coins and rust-bitcoin-signed segwit spends in
    // the mempool.
    let regtest = common::regtest_node(110, 2);
    let node = &regtest.node;
    let endpoint = regtest.endpoint();

    // anvil with the contracts; the settler holds the mock BTC.
    // On regtest one share can fill a network difficulty; a wide window
    // spreads each block over both miners.
    let params = common::pool_params(
        32,
        &regtest.pool_config().payout_script,
        EPOCH_SECS,
        MATURITY,
    );
    let contracts = common::deploy(
        1,
        U256::from(21_000_000u64) * U256::from(100_000_000u64),
        &params,
    )
    .await;
    let (anvil, settler, deployment, chain) = (
        &contracts.anvil,
        &contracts.settler,
        contracts.deployment,
        contracts.chain.clone(),
    );
    let provider = chain.provider().clone();

    // The pool, on a SQLite store with short epochs.
    let db = dir.sqlite_url("pool.db");
    let store = Store::open(&db, &StoreOptions::default()).await.unwrap();
    let mut config = regtest.pool_config();
    config.epoch_secs = EPOCH_SECS;
    let serving = common::serve_with_sv2(Pool::new(config, store.clone()).await.unwrap()).await;
    let (pool, addr) = (serving.pool.clone(), serving.addr);
    let (sv2_addr, authority) = serving.sv2.clone().unwrap();

    // The SRI translator in front of miner C's V1 hardware, on the pool's
    // V2 port. It sets its miners' difficulty from the hashrate it assumes
    // at 18 shares a minute (here 3e5 × 60 / 18 / 2^32 ≈ 2.3e-4, which
    // prints with more than 18 decimal places) and opens the channel with
    // that nominal hashrate, from which the pool (at vardiff's default 18
    // a minute) sets the same difficulty, cut to 13 digits: never harder.
    // (On regtest a share that misses the channel's target but meets the
    // network's is passed on as a block and refused as low difficulty, so
    // the two must agree; vardiff is off on both sides.)
    let translator = proofpool_devtools::Translator::start(&proofpool_devtools::TranslatorConfig {
        upstream: sv2_addr,
        authority_pubkey: authority.public_b58(),
        user_identity: MINER_C.to_owned(),
        miner_hashrate: 300_000.0,
        shares_per_minute: 18.0,
    })
    .unwrap();

    // Four miners on four addresses take turns, so blocks are found at
    // several heights and each block's PPLNS window spans several miners'
    // shares (on regtest nearly every share meets the network target).
    let rounds: Vec<(String, u64)> = [
        (MINER_A, 6),
        (MINER_B, 3),
        (MINER_C, 3),
        (MINER_D, 3),
        (MINER_A, 6),
        (MINER_B, 3),
    ]
    .iter()
    .enumerate()
    .map(|(round, (miner, shares))| (format!("{miner}.rig{round}"), *shares))
    .collect();
    // Miner A's two workers mine through `proofpool watch`; the others keep
    // the same share log themselves (`proofpool miner --share-log`).
    let watch_db = dir.path().join("watch.db");
    let proxied = proofpool_watch::WatchLog::open(&watch_db).await.unwrap();
    let watching = common::watch(addr, proxied.clone()).await;
    let log_of = |miner: &str| dir.path().join(format!("{miner}-shares.db"));
    let found = common::mine_blocks_via(&pool, &store, &rounds, |user| {
        let miner = &user[..42];
        match miner {
            MINER_A => common::Via::v1(watching.addr),
            MINER_B => common::Via::v1(addr).logged(&log_of(miner)),
            MINER_C => common::Via::v1(translator.addr()).logged(&log_of(miner)),
            _ => common::Via {
                sv2_authority: Some(*authority.public()),
                ..common::Via::v1(sv2_addr).logged(&log_of(miner))
            },
        }
    })
    .await;
    watching.stop().await;
    proxied.close().await;
    // The translator's own account: the pool accepted what it passed on,
    // and refused none of it.
    let said = translator.log();
    assert!(
        said.contains("SubmitSharesSuccess") && !said.contains("SubmitSharesError"),
        "{said}"
    );
    let accepted: Vec<_> = found
        .iter()
        .filter(|b| b.status == BlockStatus::Immature)
        .cloned()
        .collect();
    assert!(!accepted.is_empty(), "the miners found blocks: {found:?}");
    serving.stop().await;

    // Mature them with blocks paid elsewhere.
    regtest.mine_elsewhere(MATURITY);

    // Settle once every epoch with shares has ended (plus grace).
    let last_share_epoch = common::wait_for_last_epoch_end(&store, 1).await;
    let settle_config = SettleConfig {
        params: params.clone(),
        verify_params: true,
        grace: Duration::from_secs(1),
        epochs_dir: dir.path().join("epochs"),
        confirmations: 1,
        dry_run: false,
        settler: settler.address(),
    };
    let node_client = Arc::new(NodeClient::new(vec![endpoint], Duration::from_secs(30)).unwrap());
    let settlement = Settler::new(
        store.clone(),
        chain.clone(),
        Some(node_client),
        settle_config,
    );
    let first = settlement.run_once().await.unwrap();
    assert!(first.settled.len() as u64 >= last_share_epoch, "{first:?}");
    assert_eq!(first.committed.len(), first.settled.len());
    assert!(
        first
            .blocks_updated
            .iter()
            .all(|(_, s)| *s == BlockStatus::Mature),
        "{first:?}"
    );
    // A second pass right away commits nothing twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = settlement.run_once().await.unwrap();
    assert!(
        second
            .committed
            .iter()
            .all(|(e, _)| !first.settled.contains(e))
    );
    // (The second pass may have settled a newer, empty epoch; it waits out
    // its own challenge period.)
    let (_, last) = chain.heads().await.unwrap();
    assert!(last >= *first.settled.iter().max().unwrap(), "{second:?}");
    let record = store.epoch(last).await.unwrap().unwrap();
    assert_eq!(record.status, EpochStatus::Finalized, "{second:?}");
    assert_eq!(
        chain.finalized_reward_root().await.unwrap(),
        record.reward_root
    );

    // Every matured block is paid exactly once; credits + operator = R.
    let blocks = store.blocks().await.unwrap();
    let mut paid_sats = std::collections::BTreeMap::<Address, u64>::new();
    for e in 1..=last {
        let r = store.epoch(e).await.unwrap().unwrap();
        let bytes = std::fs::read(dir.path().join("epochs").join(&r.file_name)).unwrap();
        let file = EpochFile::from_bytes(&bytes).unwrap();
        assert_eq!(alloy::primitives::keccak256(&bytes), r.data_hash);
        for fb in &file.blocks {
            let credited: u64 = fb.credits.iter().map(|c| c.sats).sum();
            assert_eq!(
                credited + fb.operator,
                fb.coinbase_value,
                "block {}",
                fb.height
            );
            for c in &fb.credits {
                *paid_sats.entry(c.miner).or_default() += c.sats;
            }
        }
    }
    for b in blocks.iter().filter(|b| b.status == BlockStatus::Mature) {
        assert!(b.paid_epoch.is_some(), "matured block {} paid", b.height);
    }

    // The miners' own check, from their share log, the epoch files and the
    // chain: every accepted share is listed as mined, and the PPLNS replay
    // of the files gives each miner the amount its finalized leaf pays.
    let index = proofpool_watch::EpochIndex::from_dir(&dir.path().join("epochs")).unwrap();
    let watch_chain = proofpool_watch::credit::distributor(&index, anvil.endpoint_url()).unwrap();
    let mut watched = Vec::new();
    let mut logs = Vec::new();
    for (miner, path, least) in [
        (MINER_A, watch_db.clone(), 12),
        (MINER_B, log_of(MINER_B), 6),
        (MINER_C, log_of(MINER_C), 3),
        (MINER_D, log_of(MINER_D), 3),
    ] {
        let log = proofpool_watch::WatchLog::open(&path).await.unwrap();
        let recorded = log.shares().await.unwrap().len() as u64;
        assert!(recorded >= least, "{recorded} shares in {miner}'s log");
        let seen = proofpool_watch::check(&log, &index, None, 0).await.unwrap();
        assert!(
            seen.problems.is_empty() && seen.unverifiable.is_empty() && seen.included == recorded,
            "{seen:?}"
        );
        let account = Address::from_str(miner).unwrap();
        assert_eq!(seen.miners.iter().copied().collect::<Vec<_>>(), [account]);
        let mut credit = proofpool_watch::credits(&index, [account]).unwrap();
        credit[0].on_chain(&index, &watch_chain).await.unwrap();
        assert!(credit[0].problems.is_empty(), "{credit:?}");
        watched.append(&mut credit);
        logs.push(log);
    }

    // Both miners claim with proofs from the store and get exactly their credits.
    let balances = store.balances_at(last).await.unwrap();
    let domain = chain.domain().await.unwrap();
    let tree = RewardTree::new(
        domain,
        balances
            .iter()
            .map(|(a, s)| RewardLeaf {
                account: *a,
                cumulative: U256::from(*s),
            })
            .collect(),
    )
    .unwrap();
    assert_eq!(tree.root(), record.reward_root);
    let token = MockBTC::new(deployment.token, provider.clone());
    for miner in [MINER_A, MINER_B, MINER_C, MINER_D] {
        let account = Address::from_str(miner).unwrap();
        let credit = paid_sats.get(&account).copied().unwrap_or(0);
        assert!(
            credit > 0,
            "{miner} earned something: {blocks:?} {paid_sats:?}"
        );
        assert_eq!(balances.get(&account), Some(&credit));
        let (leaf, proof) = tree.proof_for(account).unwrap();
        chain.claim(account, leaf.cumulative, proof).await.unwrap();
        let balance = token.balanceOf(account).call().await.unwrap();
        assert_eq!(
            balance,
            U256::from(credit),
            "{miner} holds its PPLNS credits"
        );
        // What the watcher said a claim would pay, to the base unit.
        let w = watched.iter().find(|w| w.miner == account).unwrap();
        assert_eq!(w.on_chain.as_ref().unwrap().claimable_now, balance, "{w:?}");
        assert_eq!(w.recomputed_amount, balance, "{w:?}");
    }
    // Claimed: the watcher now sees nothing more to claim.
    for w in &mut watched {
        w.on_chain(&index, &watch_chain).await.unwrap();
        let on_chain = w.on_chain.as_ref().unwrap();
        assert_eq!(on_chain.claimed, w.recomputed_amount, "{w:?}");
        assert_eq!(on_chain.claimable_now, U256::ZERO, "{w:?}");
    }
    for log in logs {
        log.close().await;
    }
    // The auditor recomputes every epoch from the files alone and agrees
    // with the chain and with bitcoind.
    let source = EpochSource::dir(dir.path().join("epochs"));
    let reader = ChainReader::connect(anvil.endpoint_url(), deployment.distributor);
    let checker = BlockChecker::new(
        NodeClient::new(
            vec![NodeEndpoint {
                url: node.rpc_url().parse().unwrap(),
                auth: NodeAuth::Cookie(node.cookie_path()),
            }],
            Duration::from_secs(30),
        )
        .unwrap(),
    );
    let report = audit(
        &source,
        Some(&reader),
        Some(&checker),
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert!(report.is_ok(), "audit failed: {:?}", report.verdicts);
    assert!(report.chain_checked && report.blocks_checked);
    assert_eq!(report.verdicts.len() as u64, chain.heads().await.unwrap().0);

    // One credit changed by a satoshi in a copy of the files: caught.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    for entry in std::fs::read_dir(dir.path().join("epochs")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tampered.join(path.file_name().unwrap())).unwrap();
    }
    let paying = (1..=last)
        .find(|e| {
            let name = EpochFile::file_name(*e);
            let file =
                EpochFile::from_bytes(&std::fs::read(tampered.join(&name)).unwrap()).unwrap();
            !file.blocks.is_empty()
        })
        .unwrap();
    let name = EpochFile::file_name(paying);
    let mut file = EpochFile::from_bytes(&std::fs::read(tampered.join(&name)).unwrap()).unwrap();
    file.blocks[0].credits[0].sats += 1;
    std::fs::write(tampered.join(&name), file.to_bytes().unwrap()).unwrap();
    let report = audit(
        &EpochSource::dir(&tampered),
        Some(&reader),
        None,
        &AuditOptions::default(),
        &mut NoObserver,
    )
    .await
    .unwrap();
    assert_eq!(report.failed_epochs().first(), Some(&paying));
    drop(translator);
    drop(contracts);
    drop(regtest);
}
