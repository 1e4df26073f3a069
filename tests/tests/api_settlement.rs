//! The API over a store filled by the whole real payout path: regtest
//! bitcoind, the pool, two reference miners, the settler committing and
//! finalizing on anvil. Then, through the API only: the summary, blocks and
//! epochs match the store; every epoch file hashes to its committed
//! `dataHash`; both miners fetch their proof, it verifies against the
//! finalized root, `claim` with it pays them on-chain, and the miner page
//! shows it claimed. Run on SQLite and on PostgreSQL.

use alloy::primitives::{Address, B256, U256, keccak256};
use proofpool_api::ApiState;
use proofpool_api::types::{BlockPage, ChainInfo, EpochPage, MinerDetail, Proof, Summary};
use proofpool_chain::MockBTC;
use proofpool_devtools::{Postgres, TempDir};
use proofpool_epoch::epoch_file::EpochFile;
use proofpool_merkle::RewardLeaf;
use proofpool_node::NodeClient;
use proofpool_pool::Pool;
use proofpool_settlement::{SettleConfig, Settler};
use proofpool_store::{BlockStatus, EpochStatus, Store, StoreOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const MINER_A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const MINER_B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const EPOCH_SECS: u64 = 2;
const MATURITY: u64 = 3;

/// One bitcoind and one anvil at a time: the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod common;

async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, base: &str, path: &str) -> T {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "GET {path}");
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

async fn run(db: &str) {
    let _serial = SERIAL.lock().await;
    let dir = TempDir::new("api-e2e").unwrap();

    // bitcoind with spendable coins and a pool payout address.
    let regtest = common::regtest_node(110, 0);
    let node = &regtest.node;
    let endpoint = regtest.endpoint();

    // anvil with the contracts.
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

    // The pool with short epochs; two miners take turns finding blocks.
    let store = Store::open(db, &StoreOptions::default()).await.unwrap();
    let mut config = regtest.pool_config();
    config.epoch_secs = EPOCH_SECS;
    let serving = common::serve(Pool::new(config, store.clone()).await.unwrap()).await;
    let (pool, addr) = (serving.pool.clone(), serving.addr);
    let rounds: Vec<(String, u64)> = (0..4)
        .map(|round| {
            let (miner, shares) = if round % 2 == 0 {
                (MINER_A, 6)
            } else {
                (MINER_B, 3)
            };
            (format!("{miner}.rig{round}"), shares)
        })
        .collect();
    common::mine_blocks(&pool, addr, &store, &rounds).await;
    serving.stop().await;

    // Mature the blocks, then settle once every epoch with shares has ended.
    regtest.mine_elsewhere(MATURITY);
    let last_share_epoch = common::wait_for_last_epoch_end(&store, 1).await;
    let epochs_dir = dir.path().join("epochs");
    let settle_config = SettleConfig {
        params: params.clone(),
        verify_params: true,
        grace: Duration::from_secs(1),
        epochs_dir: epochs_dir.clone(),
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
    settlement.run_once().await.unwrap();
    // The challenge period (1 s) passes; the second pass finalizes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    settlement.run_once().await.unwrap();
    let (_, finalized) = chain.heads().await.unwrap();
    assert!(
        finalized >= last_share_epoch,
        "settled through the last share's epoch"
    );
    let record = store.epoch(finalized).await.unwrap().unwrap();
    assert_eq!(record.status, EpochStatus::Finalized);

    // The API, reading the store, the epoch files and the chain.
    let domain = chain.domain().await.unwrap();
    let mut state = ApiState::new(store.clone(), epochs_dir.clone(), domain);
    state.chain_rpc_url = Some(anvil.endpoint_url());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(proofpool_api::serve(listener, state, async move {
        api_stopped.await.ok();
    }));
    let http = reqwest::Client::new();

    let summary: Summary = get(&http, &base, "/api/v1/summary").await;
    let blocks = store.blocks().await.unwrap();
    assert_eq!(summary.blocks_found, blocks.len() as u64);
    assert_eq!((summary.miners, summary.workers), (2, 4));
    assert_eq!(summary.last_finalized_epoch, Some(finalized));
    assert_eq!(
        summary.last_settled_epoch,
        Some(store.last_settled_epoch().await.unwrap())
    );
    assert!(summary.network.unwrap().height.unwrap() > 110);

    let page: BlockPage = get(&http, &base, "/api/v1/blocks?limit=500").await;
    assert_eq!(page.total, blocks.len() as u64);
    for b in &blocks {
        let item = page
            .items
            .iter()
            .find(|i| i.height == b.height && i.hash == alloy::hex::encode(b.hash))
            .unwrap();
        assert_eq!(item.paid_epoch, b.paid_epoch);
        assert_eq!(item.reward_sats, b.coinbase_value);
        assert_eq!(item.finder, b.finder.to_checksum(None));
        assert!(
            item.explorer_url
                .ends_with(&format!("/block/{}", item.hash))
        );
        // The hash the API shows is the one bitcoind knows.
        if b.status == BlockStatus::Mature {
            assert_eq!(serde_json::to_value(item.status).unwrap(), "mature");
            let header = node.cli(&["getblockheader", &item.hash]).unwrap();
            assert!(
                header.contains(&format!("\"height\": {}", b.height)),
                "{header}"
            );
        }
    }

    // Every epoch file is served byte for byte, hashing to the committed dataHash.
    let epochs: EpochPage = get(&http, &base, "/api/v1/epochs?limit=500").await;
    assert_eq!(epochs.total, store.last_settled_epoch().await.unwrap());
    for e in &epochs.items {
        let stored = store.epoch(e.epoch).await.unwrap().unwrap();
        assert_eq!(e.reward_root, stored.reward_root.to_string());
        assert!(e.commit_tx.is_some(), "epoch {} committed", e.epoch);
        let r = http
            .get(format!("{base}{}", e.file_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let header = r.headers()["x-data-hash"].to_str().unwrap().to_owned();
        let bytes = r.bytes().await.unwrap();
        assert_eq!(keccak256(&bytes), stored.data_hash);
        assert_eq!(header, stored.data_hash.to_string());
        let file = EpochFile::from_bytes(&bytes).unwrap();
        assert_eq!(
            (file.epoch, file.reward_root),
            (e.epoch, stored.reward_root)
        );
    }

    let info: ChainInfo = get(&http, &base, "/api/v1/chain").await;
    assert_eq!(info.chain_id, domain.chain_id);
    assert_eq!(info.distributor, deployment.distributor.to_checksum(None));
    let token = info.token.expect("token read from the chain");
    assert_eq!(token.address, deployment.token.to_checksum(None));
    assert_eq!(token.decimals, 8);
    let heads = info.on_chain.expect("heads read from the chain");
    assert_eq!(heads.last_finalized_epoch, finalized);
    assert_eq!(heads.finalized_reward_root, record.reward_root.to_string());

    // Both miners claim with the API's proof and get exactly their credits.
    let balances = store.balances_at(finalized).await.unwrap();
    let token = MockBTC::new(deployment.token, provider.clone());
    for miner in [MINER_A, MINER_B] {
        let account = Address::from_str(miner).unwrap();
        let sats = balances.get(&account).copied().unwrap_or(0);
        assert!(sats > 0, "{miner} earned something");
        let detail: MinerDetail = get(&http, &base, &format!("/api/v1/miners/{miner}")).await;
        assert_eq!(detail.credits.claimable_sats, sats);
        assert_eq!(detail.credits.claimable_epoch, Some(finalized));
        let before = detail.on_chain.expect("claimed read from the chain");
        assert_eq!(
            (before.claimed.as_str(), before.unclaimed),
            ("0", sats.to_string())
        );

        let proof: Proof = get(
            &http,
            &base,
            &format!("/api/v1/epochs/latest/proof/{miner}"),
        )
        .await;
        assert_eq!((proof.epoch, proof.claimable_now), (finalized, true));
        let amount = U256::from_str(&proof.cumulative_amount).unwrap();
        assert_eq!(amount, U256::from(sats));
        let siblings: Vec<B256> = proof
            .proof
            .iter()
            .map(|h| B256::from_str(h).unwrap())
            .collect();
        let leaf = RewardLeaf {
            account,
            cumulative: amount,
        }
        .hash(&domain);
        assert!(proofpool_merkle::verify(
            &siblings,
            record.reward_root,
            leaf
        ));
        chain.claim(account, amount, siblings).await.unwrap();
        assert_eq!(token.balanceOf(account).call().await.unwrap(), amount);

        let after: MinerDetail = get(&http, &base, &format!("/api/v1/miners/{miner}")).await;
        let after = after.on_chain.unwrap();
        assert_eq!(
            (after.claimed, after.unclaimed.as_str()),
            (amount.to_string(), "0")
        );
    }

    stop_api.send(()).unwrap();
    api.await.unwrap().unwrap();
    store.close().await;
    drop(contracts);
    drop(regtest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_claimable_proofs_on_sqlite() {
    let dir = TempDir::new("api-e2e-db").unwrap();
    run(&dir.sqlite_url("pool.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_claimable_proofs_on_postgres() {
    let pg = Postgres::start().expect("PostgreSQL (make setup installs it)");
    run(&pg.url()).await;
}
