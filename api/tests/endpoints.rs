//! Every endpoint and every error case of the API, over real HTTP, on
//! SQLite and on a real throwaway PostgreSQL.
//!
//! The store is filled by the real code paths: the group-commit `ShareLog`
//! writes jobs, workers, shares and blocks; `record_settled_epoch` and
//! `set_epoch_status` write epochs and credits the way the settler does, with
//! reward roots built by `RewardTree` from the cumulative balances. Proofs
//! served by the API are checked with `proofpool_merkle::verify` against the
//! stored root. (`tests/tests/api_settlement.rs` runs the whole path with the
//! real pool, settler, bitcoind and anvil, and claims on-chain.)

mod common;
mod hardening;

use alloy::primitives::keccak256;
use common::*;
use proofpool_api::types::{
    BlockPage, ChainInfo, EpochDetail, EpochPage, HashrateSeries, MinerDetail, MinerPage, Proof,
    ShareProof, Summary,
};
use proofpool_api::{ApiState, DEFAULT_EXPLORER_URL};
use proofpool_devtools::{Postgres, TempDir};
use proofpool_merkle::RewardLeaf;
use proofpool_primitives::{B256, Difficulty, U256, Work};
use proofpool_store::{NewShare, Store, StoreOptions};
use reqwest::StatusCode;
use std::str::FromStr;

async fn exercise(url: &str) {
    let f = fill(url).await;
    let api = Server::start(state(&f)).await;
    let now = now_ms();
    let current = f.clock.epoch_of_ms(now);
    let recent = |s: &NewShare| s.time_ms + 600_000 >= now;

    // Summary.
    let s: Summary = api.ok("/api/v1/summary").await;
    assert_eq!(s.epoch_secs, Some(EPOCH_SECS));
    let ce = s.current_epoch.unwrap();
    assert_eq!(ce.number, current);
    assert_eq!((ce.start_unix, ce.end_unix), f.clock.bounds(current));
    assert_eq!(ce.shares, f.work_where(|_, e| e == current).1);
    assert_eq!(
        (
            s.last_settled_epoch,
            s.last_committed_epoch,
            s.last_finalized_epoch
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!((s.miners, s.workers), (3, 4));
    assert_eq!((s.active_miners, s.active_workers), (2, 3));
    let (work, n) = f.work_where(|s, _| recent(s));
    assert_eq!(s.hashrate.window_secs, 600);
    assert_eq!(s.hashrate.work, work.to_string());
    assert_eq!(s.hashrate.shares, n);
    assert_eq!(
        s.hashrate.hashes_per_second,
        (work / U256::from(600)).to_string()
    );
    let net = s.network.unwrap();
    assert_eq!(net.height, Some(201));
    assert_eq!(
        net.difficulty,
        Difficulty::from_target(network_target()).to_string()
    );
    assert_eq!(U256::from_str(&net.target).unwrap(), network_target());
    let last = s.last_block.unwrap();
    assert_eq!((last.height, s.blocks_found), (103, 4));
    // The newest settled epoch paid FPPS: the current epoch's shares are
    // credited when it ends. Luck: the four blocks (the orphan too, all
    // found by share 3) against the 0.5 + 1 + 1.5 blocks the fixture's
    // epochs expected.
    assert_eq!(s.scheme.as_deref(), Some("fpps"));
    assert_eq!(s.next_credit_unix, Some(ce.end_unix));
    let luck = s.luck.unwrap();
    assert_eq!((luck.first_epoch, luck.last_epoch), (1, 3));
    assert_eq!(luck.expected_blocks, "3.0000");
    assert_eq!((luck.blocks_found, luck.percent), (4, Some(133)));
    let s: Summary = api.ok("/api/v1/summary?window=86400").await;
    assert_eq!(s.hashrate.work, f.work_where(|_, _| true).0.to_string());
    api.err(
        "/api/v1/summary?window=59",
        StatusCode::BAD_REQUEST,
        Some("window"),
        "between 60 and 86400",
    )
    .await;
    api.err(
        "/api/v1/summary?window=ten",
        StatusCode::BAD_REQUEST,
        Some("window"),
        "whole number",
    )
    .await;
    api.err(
        "/api/v1/summary?windw=60",
        StatusCode::BAD_REQUEST,
        Some("query"),
        "unknown query parameter",
    )
    .await;
    api.err(
        "/api/v1/summary?window=60&window=70",
        StatusCode::BAD_REQUEST,
        Some("window"),
        "more than once",
    )
    .await;

    // Hashrate series: every share of the last 24 hours lands in a bucket.
    let h: HashrateSeries = api.ok("/api/v1/hashrate").await;
    assert_eq!((h.bucket_secs, h.points.len(), h.miner), (600, 144, None));
    let total: U256 = h
        .points
        .iter()
        .map(|p| U256::from_str(&p.work).unwrap())
        .sum();
    assert_eq!(total, f.work_where(|_, _| true).0);
    assert_eq!(
        h.points.iter().map(|p| p.shares).sum::<u64>(),
        f.shares.len() as u64
    );
    assert!(
        h.points
            .windows(2)
            .all(|w| w[1].start_unix == w[0].start_unix + 600)
    );
    assert!(h.points.iter().all(|p| p.start_unix % 600 == 0));
    for p in &h.points {
        let expect = U256::from_str(&p.work).unwrap() / U256::from(p.seconds);
        assert_eq!(p.hashes_per_second, expect.to_string());
    }
    let last_point = h.points.last().unwrap();
    assert!(last_point.seconds <= 600 && last_point.start_unix * 1000 <= now);
    let h: HashrateSeries = api
        .ok(&format!(
            "/api/v1/hashrate?miner={}&bucket=3600&hours=720",
            B.to_lowercase()
        ))
        .await;
    assert_eq!(
        (h.miner.as_deref(), h.bucket_secs, h.points.len()),
        (Some(B), 3600, 720)
    );
    let total: U256 = h
        .points
        .iter()
        .map(|p| U256::from_str(&p.work).unwrap())
        .sum();
    assert_eq!(total, f.work_where(|s, _| s.miner == addr(B)).0);
    api.err(
        "/api/v1/hashrate?bucket=60&hours=720",
        StatusCode::BAD_REQUEST,
        Some("bucket"),
        "at most 5000",
    )
    .await;
    api.err(
        "/api/v1/hashrate?bucket=7200&hours=1",
        StatusCode::BAD_REQUEST,
        Some("bucket"),
        "longer than",
    )
    .await;
    api.err(
        "/api/v1/hashrate?bucket=59",
        StatusCode::BAD_REQUEST,
        Some("bucket"),
        "between 60",
    )
    .await;
    api.err(
        "/api/v1/hashrate?hours=721",
        StatusCode::BAD_REQUEST,
        Some("hours"),
        "between 1 and 720",
    )
    .await;
    let typo = A.replace("aAeb", "AAeb");
    api.err(
        &format!("/api/v1/hashrate?miner={typo}"),
        StatusCode::BAD_REQUEST,
        Some("miner"),
        "EIP-55",
    )
    .await;
    api.err(
        "/api/v1/hashrate?miner=0x1234",
        StatusCode::BAD_REQUEST,
        Some("miner"),
        "40 hex digits",
    )
    .await;

    // Miners.
    let m: MinerPage = api.ok("/api/v1/miners").await;
    assert_eq!((m.total, m.offset, m.limit, m.items.len()), (3, 0, 50, 3));
    // Most recently seen first: C authorized last.
    assert_eq!(m.items[0].address, C);
    let a = m.items.iter().find(|i| i.address == A).unwrap();
    assert_eq!(a.workers, 2);
    assert_eq!(
        a.hashrate.work,
        f.work_where(|s, _| recent(s) && s.miner == addr(A))
            .0
            .to_string()
    );
    let p1: MinerPage = api.ok("/api/v1/miners?limit=2").await;
    let p2: MinerPage = api.ok("/api/v1/miners?offset=2&limit=2").await;
    assert_eq!((p1.items.len(), p2.items.len(), p2.total), (2, 1, 3));
    assert_eq!(p2.items[0], m.items[2]);
    api.err(
        "/api/v1/miners?limit=501",
        StatusCode::BAD_REQUEST,
        Some("limit"),
        "between 1 and 500",
    )
    .await;
    api.err(
        "/api/v1/miners?limit=0",
        StatusCode::BAD_REQUEST,
        Some("limit"),
        "between 1 and 500",
    )
    .await;
    api.err(
        "/api/v1/miners?offset=-1",
        StatusCode::BAD_REQUEST,
        Some("offset"),
        "whole number",
    )
    .await;

    // One miner: workers (no IPs), hashrate, shares per epoch, credits.
    let d: MinerDetail = api
        .ok(&format!("/api/v1/miners/{}", A.to_lowercase()))
        .await;
    assert_eq!(d.address, A);
    assert_eq!(d.worker_count, 2);
    assert_eq!(
        d.workers
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["rig2", "rig1"],
        "most recently seen first"
    );
    let rig1 = d.workers.iter().find(|w| w.name == "rig1").unwrap();
    let (w1, n1) = f.work_where(|s, _| recent(s) && s.miner == addr(A) && s.worker == "rig1");
    assert_eq!(
        (rig1.hashrate.work.as_str(), rig1.hashrate.shares),
        (w1.to_string().as_str(), n1)
    );
    assert!(rig1.last_share_ms.unwrap() + 600_000 >= now);
    let raw: serde_json::Value = api.ok(&format!("/api/v1/miners/{A}")).await;
    let keys: Vec<&str> = raw["workers"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "firstSeenMs",
            "hashrate",
            "lastSeenMs",
            "lastShareMs",
            "name"
        ]
    );
    assert!(!raw.to_string().contains("127.0.0.1"));
    for e in [1u64, 2, 3] {
        let row = d.shares_per_epoch.iter().find(|r| r.epoch == e).unwrap();
        let (w, n) = f.work_where(|s, se| se == e && s.miner == addr(A));
        assert_eq!((row.shares, row.work.clone()), (n, w.to_string()));
    }
    assert!(
        d.shares_per_epoch
            .windows(2)
            .all(|w| w[0].epoch > w[1].epoch)
    );
    let c = &d.credits;
    assert_eq!(
        (c.claimable_sats, c.pending_sats, c.claimable_epoch),
        (3_000, 500, Some(1))
    );
    assert_eq!(
        (c.claimable_amount.as_str(), c.pending_amount.as_str()),
        ("30000", "5000")
    );
    assert_eq!(
        c.per_epoch
            .iter()
            .map(|p| (p.epoch, p.sats, p.claimable))
            .collect::<Vec<_>>(),
        [(2, 500, false), (1, 3_000, true)]
    );
    assert_eq!((d.on_chain, d.on_chain_error), (None, None));
    let d: MinerDetail = api
        .ok(&format!("/api/v1/miners/{A}?limit=1&offset=1&epochs=1"))
        .await;
    assert_eq!(
        (
            d.workers.len(),
            d.workers[0].name.as_str(),
            d.workers_offset
        ),
        (1, "rig1", 1)
    );
    assert!(d.shares_per_epoch.iter().all(|r| r.epoch == current));
    assert_eq!(d.credits.per_epoch.len(), 1);
    let d: MinerDetail = api.ok(&format!("/api/v1/miners/{C}")).await;
    assert_eq!((d.credits.claimable_sats, d.credits.pending_sats), (0, 700));
    assert_eq!(d.hashrate.shares, 0);
    api.err(
        &format!("/api/v1/miners/{D}"),
        StatusCode::NOT_FOUND,
        Some("address"),
        "never mined",
    )
    .await;
    api.err(
        &format!("/api/v1/miners/{typo}"),
        StatusCode::BAD_REQUEST,
        Some("address"),
        "EIP-55",
    )
    .await;
    api.err(
        "/api/v1/miners/0xzz",
        StatusCode::BAD_REQUEST,
        Some("address"),
        "not a valid address",
    )
    .await;
    api.err(
        "/api/v1/miners/5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        StatusCode::BAD_REQUEST,
        Some("address"),
        "0x",
    )
    .await;
    api.err(
        &format!("/api/v1/miners/0x{}", "0".repeat(40)),
        StatusCode::BAD_REQUEST,
        Some("address"),
        "zero address",
    )
    .await;
    api.err(
        "/api/v1/miners/%FF%FE",
        StatusCode::BAD_REQUEST,
        Some("path"),
        "malformed path",
    )
    .await;
    api.err(
        &format!("/api/v1/miners/{A}?epochs=0"),
        StatusCode::BAD_REQUEST,
        Some("epochs"),
        "between 1 and 1000",
    )
    .await;

    // Blocks.
    let b: BlockPage = api.ok("/api/v1/blocks").await;
    assert_eq!(b.total, 4);
    assert_eq!(
        b.items.iter().map(|x| x.height).collect::<Vec<_>>(),
        [103, 102, 101, 100]
    );
    let b100 = &b.items[3];
    let hash = "b1".repeat(32);
    assert_eq!(b100.hash, hash);
    assert_eq!(
        b100.explorer_url,
        format!("{DEFAULT_EXPLORER_URL}/block/{hash}")
    );
    assert_eq!(
        (b100.finder.as_str(), b100.reward_sats, b100.paid_epoch),
        (A, 5_000_000_177, Some(1))
    );
    assert_eq!(serde_json::to_value(b100.status).unwrap(), "mature");
    assert_eq!(b100.confirmations, 120);
    assert_eq!(serde_json::to_value(b.items[0].status).unwrap(), "orphaned");
    assert_eq!(serde_json::to_value(b.items[1].status).unwrap(), "immature");
    let b: BlockPage = api.ok("/api/v1/blocks?offset=1&limit=2").await;
    assert_eq!(
        b.items.iter().map(|x| x.height).collect::<Vec<_>>(),
        [102, 101]
    );
    api.err(
        "/api/v1/blocks?limit=1000",
        StatusCode::BAD_REQUEST,
        Some("limit"),
        "500",
    )
    .await;
    api.err(
        "/api/v1/blocks?page=2",
        StatusCode::BAD_REQUEST,
        Some("query"),
        "offset, limit",
    )
    .await;

    // Epochs.
    let e: EpochPage = api.ok("/api/v1/epochs").await;
    assert_eq!(e.total, 3);
    assert_eq!(
        e.items.iter().map(|x| x.epoch).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    let statuses: Vec<String> = e
        .items
        .iter()
        .map(|x| {
            serde_json::to_value(x.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["closed", "committed", "finalized"]);
    let e1 = &e.items[2];
    let r1 = f.store.epoch(1).await.unwrap().unwrap();
    assert_eq!(e1.reward_root, r1.reward_root.to_string());
    assert_eq!(e1.data_hash, keccak256(&f.files[&1]).to_string());
    assert_eq!(e1.commit_tx, Some(B256::repeat_byte(0xc1).to_string()));
    assert_eq!(e1.finalize_tx, Some(B256::repeat_byte(0xf1).to_string()));
    assert_eq!(
        (e1.start_unix, e1.end_unix),
        (Some(f.clock.bounds(1).0), Some(f.clock.bounds(1).1))
    );
    assert_eq!(e1.total_cumulative, "40000");
    assert_eq!(e1.file_url, "/api/v1/epochs/1/file");
    assert_eq!(e.items[0].commit_tx, None);
    let e: EpochPage = api.ok("/api/v1/epochs?offset=2&limit=1").await;
    assert_eq!((e.items.len(), e.items[0].epoch), (1, 1));
    api.err(
        "/api/v1/epochs?offset=1.5",
        StatusCode::BAD_REQUEST,
        Some("offset"),
        "whole number",
    )
    .await;

    let d: EpochDetail = api.ok("/api/v1/epochs/2").await;
    assert_eq!(d.record.epoch, 2);
    assert_eq!(
        (d.credited_sats, d.credited_amount.as_str(), d.accounts),
        (1_200, "12000", 3)
    );
    assert_eq!(d.blocks.iter().map(|b| b.height).collect::<Vec<_>>(), [101]);
    assert_eq!(d.total_work, f.work_where(|_, e| e == 2).0.to_string());
    let d: EpochDetail = api.ok("/api/v1/epochs/3").await;
    assert_eq!((d.credited_sats, d.accounts, d.blocks.len()), (0, 3, 0));
    api.err(
        "/api/v1/epochs/9",
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "the newest settled epoch is 3",
    )
    .await;
    api.err(
        "/api/v1/epochs/0",
        StatusCode::BAD_REQUEST,
        Some("epoch"),
        "whole number from 1",
    )
    .await;
    api.err(
        "/api/v1/epochs/one",
        StatusCode::BAD_REQUEST,
        Some("epoch"),
        "whole number from 1",
    )
    .await;
    api.err(
        "/api/v1/epochs/1?x=1",
        StatusCode::BAD_REQUEST,
        Some("query"),
        "no query parameters",
    )
    .await;

    // Proofs verify against the stored root, for every account of every epoch.
    for (e, balances) in &f.balances {
        let root = f.store.epoch(*e).await.unwrap().unwrap().reward_root;
        for (account, sats) in balances {
            let p: Proof = api.ok(&format!("/api/v1/epochs/{e}/proof/{account}")).await;
            let cumulative = U256::from_str(&p.cumulative_amount).unwrap();
            assert_eq!(cumulative, U256::from(*sats * TOKEN_PER_SAT));
            assert_eq!((p.epoch, p.reward_root.clone()), (*e, root.to_string()));
            assert_eq!(p.account, account.to_checksum(None));
            assert_eq!(
                (p.chain_id, p.distributor.as_str()),
                (31337, domain().distributor.to_checksum(None).as_str())
            );
            assert_eq!(p.claimable_now, *e == 1);
            let proof: Vec<B256> = p.proof.iter().map(|h| B256::from_str(h).unwrap()).collect();
            let leaf = RewardLeaf {
                account: *account,
                cumulative,
            }
            .hash(&domain());
            assert!(
                proofpool_merkle::verify(&proof, root, leaf),
                "epoch {e} {account}"
            );
            let other = RewardLeaf {
                account: *account,
                cumulative: cumulative + U256::from(1),
            }
            .hash(&domain());
            assert!(!proofpool_merkle::verify(&proof, root, other));
        }
    }
    let latest: Proof = api.ok(&format!("/api/v1/epochs/latest/proof/{A}")).await;
    assert_eq!(
        (
            latest.epoch,
            latest.claimable_now,
            latest.cumulative_amount.as_str()
        ),
        (1, true, "30000")
    );
    assert_eq!(
        serde_json::to_value(latest.epoch_status).unwrap(),
        "finalized"
    );
    api.err(
        &format!("/api/v1/epochs/1/proof/{C}"),
        StatusCode::NOT_FOUND,
        Some("address"),
        "nothing to claim in epoch 1",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/1/proof/{D}"),
        StatusCode::NOT_FOUND,
        Some("address"),
        "nothing to claim",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/9/proof/{A}"),
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "not settled",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/x/proof/{A}"),
        StatusCode::BAD_REQUEST,
        Some("epoch"),
        "whole number",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/1/proof/{typo}"),
        StatusCode::BAD_REQUEST,
        Some("address"),
        "EIP-55",
    )
    .await;

    // Share inclusion proofs: every share of epoch 1, by its hash, proves
    // into the stored share root; the leaf is recomputed here from the
    // share's own fields.
    let record = f.store.epoch(1).await.unwrap().unwrap();
    let stored = f.store.shares_of_epoch(1, 1, 1_000).await.unwrap();
    assert!(!stored.is_empty());
    for s in &stored {
        let p: ShareProof = api
            .ok(&format!("/api/v1/epochs/1/shares/{}/proof", s.share.hash))
            .await;
        let leaf = proofpool_merkle::ShareLeaf {
            epoch: proofpool_primitives::EpochId(1),
            seq: s.seq,
            miner: s.share.miner,
            work: Work(s.share.work),
            share_hash: proofpool_primitives::ShareHash(s.share.hash),
        }
        .hash();
        assert_eq!(p.seq, s.seq);
        assert_eq!(p.leaf, leaf.to_string());
        assert_eq!(p.share_root, record.share_root.to_string());
        let proof: Vec<B256> = p.proof.iter().map(|h| h.parse().unwrap()).collect();
        assert!(
            proofpool_merkle::verify(&proof, record.share_root, leaf),
            "share {} proves into the root",
            s.seq
        );
    }
    api.err(
        &format!("/api/v1/epochs/1/shares/{}/proof", B256::repeat_byte(0xee)),
        StatusCode::NOT_FOUND,
        Some("hash"),
        "no share of epoch 1",
    )
    .await;
    api.err(
        "/api/v1/epochs/1/shares/0x1234/proof",
        StatusCode::BAD_REQUEST,
        Some("hash"),
        "64 hex digits",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/9/shares/{}/proof", stored[0].share.hash),
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "not settled",
    )
    .await;

    // Epoch files: the exact bytes, their committed hash in a header.
    let r = api.raw("/api/v1/epochs/1/file").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.headers()["x-data-hash"].to_str().unwrap(),
        r1.data_hash.to_string()
    );
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), f.files[&1].as_slice());
    assert_eq!(keccak256(&bytes), r1.data_hash);
    let part = api
        .http
        .get(format!("{}/api/v1/epochs/2/file", api.base))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &f.files[&2][..10]);
    api.err(
        "/api/v1/epochs/3/file",
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "not in this API's epochs directory",
    )
    .await;
    api.err(
        "/api/v1/epochs/9/file",
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "not settled",
    )
    .await;
    api.err(
        "/api/v1/epochs/-1/file",
        StatusCode::BAD_REQUEST,
        Some("epoch"),
        "whole number",
    )
    .await;

    // Chain info without an RPC endpoint.
    let c: ChainInfo = api.ok("/api/v1/chain").await;
    assert_eq!(
        (c.chain_id, c.distributor),
        (31337, domain().distributor.to_checksum(None))
    );
    assert_eq!(
        (c.token_per_sat.as_str(), c.explorer_base_url.as_str()),
        ("10", DEFAULT_EXPLORER_URL)
    );
    assert!(!c.rpc_configured && c.token.is_none() && c.on_chain.is_none());
    api.err(
        "/api/v1/chain?x",
        StatusCode::BAD_REQUEST,
        Some("query"),
        "no query parameters",
    )
    .await;

    // Unknown API paths are JSON 404s.
    api.err(
        "/api/v1/nope",
        StatusCode::NOT_FOUND,
        None,
        "no API endpoint at /api/v1/nope",
    )
    .await;
    api.err(
        "/api/v2/summary",
        StatusCode::NOT_FOUND,
        None,
        "openapi.json",
    )
    .await;
    api.err(
        "/elsewhere",
        StatusCode::NOT_FOUND,
        None,
        "nothing at /elsewhere",
    )
    .await;

    // The OpenAPI document lists every route.
    let doc: serde_json::Value = api.ok("/api/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/summary",
        "/api/v1/hashrate",
        "/api/v1/miners",
        "/api/v1/miners/{address}",
        "/api/v1/blocks",
        "/api/v1/epochs",
        "/api/v1/epochs/{n}",
        "/api/v1/epochs/{n}/proof/{address}",
        "/api/v1/epochs/{n}/file",
        "/api/v1/epochs/{n}/shares/{hash}/proof",
        "/api/v1/chain",
        "/api/openapi.json",
        "/metrics",
        "/healthz",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} in the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["Proof"]["properties"]["cumulativeAmount"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    // Health and metrics.
    let h = api.raw("/healthz").await;
    assert_eq!(h.status(), StatusCode::OK);
    let m = api.raw("/metrics").await;
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = m.text().await.unwrap();
    for line in [
        "proofpool_api_requests_total{route=\"/api/v1/summary\",method=\"GET\",status=\"200\"} 2",
        "proofpool_api_requests_total{route=\"/api/v1/summary\",method=\"GET\",status=\"400\"} 4",
        "proofpool_api_requests_total{route=\"/api/v1/epochs/{n}/proof/{address}\",method=\"GET\",status=\"404\"} 3",
        "proofpool_api_requests_total{route=\"/api/v1/epochs/{n}/file\",method=\"GET\",status=\"206\"} 1",
        "proofpool_api_requests_total{route=\"fallback\",method=\"GET\",status=\"404\"} 1",
        "proofpool_api_request_duration_seconds_count{route=\"/api/v1/miners\"} 6",
        "proofpool_api_requests_in_flight 1",
        "proofpool_api_reward_trees_cached 3",
    ] {
        assert!(text.contains(line), "metrics lack {line}:\n{text}");
    }
    api.shutdown().await;

    // A replica configured with another scale than the settler's refuses to
    // serve proofs that could not verify on-chain.
    let mut wrong = state(&f);
    wrong.token_per_sat = U256::from(1u64);
    let api = Server::start(wrong).await;
    api.err(
        &format!("/api/v1/epochs/1/proof/{A}"),
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "token-per-sat (1) must differ from the settler's",
    )
    .await;
    api.shutdown().await;

    // The web app: files, with index.html for its client-side routes, but
    // never for /api or for a file it does not have.
    let web = TempDir::new("api-web").unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>proofpool</title>",
    )
    .unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    let mut with_web = state(&f);
    with_web.web_dir = Some(web.path().to_path_buf());
    with_web.explorer_base_url = "https://blockstream.info/testnet/".into();
    let api = Server::start(with_web).await;
    let r = api.raw("/app.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "console.log(1)");
    for spa in ["/", "/miner/0xabc", "/auditor"] {
        let r = api.raw(spa).await;
        assert_eq!(r.status(), StatusCode::OK, "{spa}");
        assert!(
            r.text().await.unwrap().contains("<title>proofpool</title>"),
            "{spa}"
        );
    }
    api.err(
        "/api/v1/nope",
        StatusCode::NOT_FOUND,
        None,
        "no API endpoint",
    )
    .await;
    api.err(
        "/epochs/3",
        StatusCode::NOT_FOUND,
        None,
        "nothing at /epochs/3",
    )
    .await;
    let b: BlockPage = api.ok("/api/v1/blocks?limit=1").await;
    assert_eq!(
        b.items[0].explorer_url,
        format!("https://blockstream.info/testnet/block/{}", "b4".repeat(32))
    );
    api.shutdown().await;
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_sqlite() {
    let dir = TempDir::new("api-sqlite").unwrap();
    exercise(&dir.sqlite_url("pool.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_postgres() {
    let pg = Postgres::start().expect("PostgreSQL (make setup installs it)");
    exercise(&pg.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_answers_without_data() {
    let dir = TempDir::new("api-empty").unwrap();
    let store = Store::open(&dir.sqlite_url("empty.db"), &StoreOptions::default())
        .await
        .unwrap();
    let api = Server::start(ApiState::new(store, dir.path().join("epochs"), domain())).await;
    let s: Summary = api.ok("/api/v1/summary").await;
    assert_eq!(
        (s.current_epoch, s.network, s.last_block),
        (None, None, None)
    );
    assert_eq!((s.miners, s.hashrate.work.as_str()), (0, "0"));
    let h: HashrateSeries = api.ok("/api/v1/hashrate?bucket=3600&hours=2").await;
    assert_eq!(h.points.len(), 2);
    let e: EpochPage = api.ok("/api/v1/epochs").await;
    assert_eq!((e.total, e.items.len()), (0, 0));
    api.err(
        "/api/v1/epochs/1",
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "no epoch has been settled yet",
    )
    .await;
    api.err(
        &format!("/api/v1/epochs/latest/proof/{A}"),
        StatusCode::NOT_FOUND,
        Some("epoch"),
        "no epoch has been finalized yet",
    )
    .await;
    api.err(
        &format!("/api/v1/miners/{A}"),
        StatusCode::NOT_FOUND,
        Some("address"),
        "never mined",
    )
    .await;
    api.shutdown().await;
}
