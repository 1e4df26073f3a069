//! The scan for blocks that pay the pool but that no listed share found,
//! against a real regtest bitcoind whose block times are set with
//! `setmocktime`.

use crate::BlockChecker;
use alloy::primitives::B256;
use proofpool_devtools::Bitcoind;
use proofpool_node::{NodeAuth, NodeClient, NodeEndpoint};
use std::collections::HashSet;
use std::time::Duration;

/// Mines one block paying `address` with its time set to `time`.
fn mine_at(node: &Bitcoind, address: &str, time: u64) -> B256 {
    node.cli(&["setmocktime", &time.to_string()]).unwrap();
    let out = node.cli(&["generatetoaddress", "1", address]).unwrap();
    let hashes: Vec<String> = serde_json::from_str(&out).unwrap();
    hashes[0].parse().unwrap()
}

#[tokio::test]
async fn pool_blocks_below_the_highest_job_or_long_before_the_audited_end_are_flagged() {
    let node = Bitcoind::start(&[]).expect("bitcoind (make setup)");
    node.cli(&["createwallet", "w"]).unwrap();
    let pool = node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    let other = node.cli(&["getnewaddress", "", "bech32"]).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&node.cli(&["getaddressinfo", &pool]).unwrap()).unwrap();
    let script = alloy::hex::decode(info["scriptPubKey"].as_str().unwrap()).unwrap();

    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    mine_at(&node, &pool, t0); // height 1: before the lowest job's
    mine_at(&node, &other, t0 + 5); // height 2: the lowest job's
    let inside = mine_at(&node, &pool, t0 + 10); // height 3
    mine_at(&node, &pool, t0 + 1_000); // height 4: the highest job's
    mine_at(&node, &other, t0 + 2_000); // height 5

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
    let flagged = |from: u64, until: u64, known: HashSet<B256>| {
        let checker = &checker;
        let script = &script;
        async move {
            let mut heights: Vec<u64> = checker
                .check_unclaimed(2..=4, (from, until), script, &known)
                .await
                .unwrap()
                .into_iter()
                .map(|f| match f.subject {
                    crate::Subject::Block { height } => height,
                    other => panic!("a finding about {other}"),
                })
                .collect();
            heights.sort_unstable();
            heights
        }
    };
    // Worked from the rule: height 3 lies between the jobs' heights, so it
    // is flagged whatever the times; height 4 (the highest job's) only once
    // the audited epochs end more than 305 s after its header time, and
    // height 1 (below the lowest) only if they began at least 305 s before
    // it: the share time bound then puts the solving share inside them.
    let none = HashSet::new;
    assert_eq!(flagged(t0 + 1, t0 + 1_000 + 305, none()).await, [3]);
    assert_eq!(flagged(t0 + 1, t0 + 1_000 + 306, none()).await, [3, 4]);
    assert_eq!(flagged(t0 - 305, t0 + 1_000 + 305, none()).await, [1, 3]);
    assert_eq!(flagged(t0 - 304, t0 + 1_000 + 305, none()).await, [3]);
    // A block a listed share found is no finding.
    assert_eq!(
        flagged(t0 + 1, t0 + 1_000 + 306, HashSet::from([inside])).await,
        [4]
    );
}
