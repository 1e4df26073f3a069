//! Rust-built Merkle proofs claim real tokens from the real contract on anvil.
//!
//! Deploys MockBTC and the distributor with the project's deploy code,
//! commits a reward root built in Rust over 1,200 accounts, checks the stored
//! record hash against Rust's, waits out the challenge period, finalizes,
//! claims with Rust-built proofs, and checks balances and decoded reverts.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use proofpool_chain::Distributor::DistributorErrors;
use proofpool_chain::{DeployParams, DistributorClient, EpochStatusView, MockBTC, record_hash};
use proofpool_epoch::EpochCommit;
use proofpool_merkle::{RewardLeaf, RewardTree, ShareLeaf, ShareTree, verify};
use proofpool_primitives::{EpochId, Sats, ShareHash, Work};
use proofpool_settlement::{EpochInputs, PaidBlock, PplnsParams, blocks_hash};

const CHALLENGE: u64 = 600;

/// Deterministic pseudo-random accounts and amounts (splitmix64).
fn accounts(n: u64, salt: u64) -> Vec<RewardLeaf> {
    (0..n)
        .map(|i| {
            let mut x = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let account = Address::from_slice(&keccak256(x.to_be_bytes())[..20]);
            RewardLeaf {
                account,
                cumulative: U256::from(1_000 + (x % 5_000_000)),
            }
        })
        .collect()
}

async fn advance(provider: &impl Provider, secs: u64) {
    let _: serde_json::Value = provider
        .raw_request("evm_increaseTime".into(), (secs,))
        .await
        .unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
}

fn share_root(epoch: u64, miners: &[Address]) -> B256 {
    let leaves: Vec<ShareLeaf> = (0..50u64)
        .map(|seq| ShareLeaf {
            epoch: EpochId(epoch),
            seq,
            miner: miners[seq as usize % miners.len()],
            work: Work(U256::from(4_295_032_833u64)),
            share_hash: ShareHash(keccak256(seq.to_be_bytes())),
        })
        .collect();
    ShareTree::new(&leaves).unwrap().root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_proofs_claim_real_tokens() {
    let anvil =
        proofpool_devtools::spawn_anvil(None).expect("anvil from node_modules (make setup)");
    let keys = anvil.keys().to_vec();
    let settler = PrivateKeySigner::from(keys[0].clone());
    let guardian = PrivateKeySigner::from(keys[1].clone());
    let miner_a = PrivateKeySigner::from(keys[2].clone());
    let miner_b = PrivateKeySigner::from(keys[3].clone());
    let mut wallet = EthereumWallet::from(settler.clone());
    wallet.register_signer(guardian.clone());
    let provider = proofpool_chain::connect(anvil.endpoint_url(), wallet);

    let pool = proofpool_settlement::PoolParams {
        pplns: PplnsParams {
            window_x: 2,
            fee_bps: 100,
        },
        token_per_sat: U256::from(1u64),
        payout_script: alloy::primitives::Bytes::from_static(&[0x51, 0x20, 1, 2, 3]),
        epoch_secs: 600,
        maturity: 100,
        pool_tag: alloy::primitives::Bytes::from_static(b"/proofpool/"),
        scheme: proofpool_epoch::Scheme::Pplns,
    };
    let params = DeployParams {
        params: pool.clone(),
        token: None,
        owner: settler.address(),
        settler: settler.address(),
        guardian: guardian.address(),
        challenge_period: CHALLENGE,
        mint_to_settler: U256::from(10u64).pow(U256::from(16)),
    };
    let deployment = proofpool_chain::deploy(&provider, &params).await.unwrap();
    let client = DistributorClient::new(deployment.distributor, provider.clone());
    let token = MockBTC::new(deployment.token, provider.clone());
    client.approve_funding(U256::MAX).await.unwrap();
    let domain = client.domain().await.unwrap();
    assert_eq!(domain.chain_id, anvil.chain_id());
    // Solidity's `abi.encode` and alloy's agree on the parameters' hash,
    // and the deployment's are in force from the start.
    assert_eq!(client.hash_params(&pool).await.unwrap(), pool.hash());
    assert_eq!(client.params_at(0).await.unwrap(), pool.hash());
    let raised = proofpool_settlement::PoolParams {
        pplns: PplnsParams {
            fee_bps: 10_000,
            ..pool.pplns
        },
        ..pool.clone()
    };
    assert_eq!(client.hash_params(&raised).await.unwrap(), raised.hash());
    let announced = client.queue_params(&raised).await.unwrap();
    let now = client.chain_time().await.unwrap();
    assert_eq!(announced.hash, raised.hash());
    assert!(
        announced.effective_at >= now + CHALLENGE,
        "a change waits out the challenge period"
    );
    assert_eq!(client.params_at(now).await.unwrap(), pool.hash());
    assert_eq!(
        client.params_at(announced.effective_at).await.unwrap(),
        raised.hash()
    );
    assert_eq!(client.params_schedule().await.unwrap().len(), 2);
    // Miners read the announced parameters in full from the event.
    assert_eq!(
        client.announced_params(raised.hash()).await.unwrap(),
        Some(raised.clone())
    );
    assert_eq!(
        client.announced_params(pool.hash()).await.unwrap(),
        Some(pool.clone())
    );
    client.cancel_params().await.unwrap();
    assert_eq!(client.params_schedule().await.unwrap().len(), 1);
    assert_eq!(client.params_at(u64::MAX).await.unwrap(), pool.hash());

    // Epoch 1: 1,200 accounts, two of them anvil accounts that claim for themselves.
    let mut leaves = accounts(1_198, 1);
    leaves.push(RewardLeaf {
        account: miner_a.address(),
        cumulative: U256::from(123_456_789u64),
    });
    leaves.push(RewardLeaf {
        account: miner_b.address(),
        cumulative: U256::from(5_000_000_000u64),
    });
    let tree1 = RewardTree::new(domain, leaves.clone()).unwrap();
    let blocks = [PaidBlock {
        height: 101,
        hash: B256::repeat_byte(7),
        coinbase_value: Sats(5_000_000_000),
    }];
    let commit1: EpochCommit = EpochInputs {
        epoch: EpochId(1),
        share_root: share_root(1, &[miner_a.address(), miner_b.address()]),
        rewards: &tree1,
        blocks_hash: blocks_hash(&blocks),
        params_hash: pool.hash(),
        data_hash: keccak256(b"epoch file 1"),
        prev_epoch_hash: B256::ZERO,
    }
    .commit();

    let settler_before = token.balanceOf(settler.address()).call().await.unwrap();
    let (record1, receipt) = client.commit_epoch(commit1.clone()).await.unwrap();
    println!(
        "commitEpoch (first, fresh balance) gas: {}",
        receipt.gas_used
    );
    assert_eq!(record1.commit, commit1);
    assert_eq!(
        record_hash(&record1),
        client.epoch_hash(1).await.unwrap(),
        "Rust and Solidity hash the record alike"
    );
    // Pending: the funding waits in the escrow, with its lasting base unit
    // (pulled on the first funding), out of every claim's reach.
    let escrow = client.escrow().await.unwrap();
    assert_eq!(
        token
            .balanceOf(deployment.distributor)
            .call()
            .await
            .unwrap(),
        U256::ZERO
    );
    assert_eq!(
        token.balanceOf(escrow).call().await.unwrap(),
        tree1.total() + U256::from(1u64)
    );
    assert_eq!(
        token.balanceOf(settler.address()).call().await.unwrap(),
        settler_before - tree1.total() - U256::from(1u64)
    );
    assert_eq!(
        client.epoch_status(1).await.unwrap(),
        EpochStatusView::Pending
    );

    // Repeating epoch 1 is refused.
    let repeat = client.commit_epoch(commit1.clone()).await.unwrap_err();
    assert!(
        matches!(repeat.revert(), Some(DistributorErrors::EpochNotNext(e)) if e.epoch == 1 && e.expected == 2),
        "{repeat}"
    );

    // Nothing is claimable while the epoch is pending.
    let (leaf_a, proof_a) = tree1.proof_for(miner_a.address()).unwrap();
    let early = client
        .claim(leaf_a.account, leaf_a.cumulative, proof_a.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(early.revert(), Some(DistributorErrors::NoFinalizedEpoch(_))),
        "{early}"
    );
    let too_soon = client.finalize(record1.clone()).await.unwrap_err();
    assert!(
        matches!(
            too_soon.revert(),
            Some(DistributorErrors::ChallengePeriodActive(_))
        ),
        "{too_soon}"
    );

    advance(&provider, CHALLENGE + 1).await;
    client.finalize(record1.clone()).await.unwrap();
    assert_eq!(
        client.epoch_status(1).await.unwrap(),
        EpochStatusView::Finalized
    );
    assert_eq!(client.finalized_reward_root().await.unwrap(), tree1.root());

    // Claims for several accounts, sent by the settler on their behalf.
    for pick in [0usize, 1, 599, 1_197] {
        let leaf = tree1.leaves()[pick];
        let (_, proof) = tree1.proof_for(leaf.account).unwrap();
        assert!(verify(&proof, tree1.root(), leaf.hash(&domain)));
        let receipt = client
            .claim(leaf.account, leaf.cumulative, proof)
            .await
            .unwrap();
        assert!(receipt.gas_used > 0);
        assert_eq!(
            token.balanceOf(leaf.account).call().await.unwrap(),
            leaf.cumulative
        );
        assert_eq!(client.claimed(leaf.account).await.unwrap(), leaf.cumulative);
    }
    // A miner claims for itself with its own key.
    let miner_provider = proofpool_chain::connect(anvil.endpoint_url(), miner_a.clone());
    let miner_client = DistributorClient::new(deployment.distributor, miner_provider);
    let receipt = miner_client
        .claim(leaf_a.account, leaf_a.cumulative, proof_a.clone())
        .await
        .unwrap();
    println!(
        "claim (first, {}-level proof) gas: {}",
        proof_a.len(),
        receipt.gas_used
    );
    assert_eq!(
        token.balanceOf(miner_a.address()).call().await.unwrap(),
        leaf_a.cumulative
    );

    // A second identical claim pays nothing and says why.
    let twice = client
        .claim(leaf_a.account, leaf_a.cumulative, proof_a.clone())
        .await
        .unwrap_err();
    match twice.revert() {
        Some(DistributorErrors::NothingToClaim(e)) => {
            assert_eq!(e.account, leaf_a.account);
            assert_eq!(e.alreadyClaimed, leaf_a.cumulative);
        }
        other => panic!("expected NothingToClaim, got {other:?} ({twice})"),
    }
    assert_eq!(
        token.balanceOf(miner_a.address()).call().await.unwrap(),
        leaf_a.cumulative
    );

    // Forged proofs: another amount, another account, a tampered sibling.
    let (leaf_b, proof_b) = tree1.proof_for(miner_b.address()).unwrap();
    let inflated = client
        .claim(
            leaf_b.account,
            leaf_b.cumulative + U256::from(1),
            proof_b.clone(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(inflated.revert(), Some(DistributorErrors::InvalidProof(e)) if e.account == leaf_b.account),
        "{inflated}"
    );
    let stolen = client
        .claim(miner_a.address(), leaf_b.cumulative, proof_b.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(stolen.revert(), Some(DistributorErrors::InvalidProof(_))),
        "{stolen}"
    );
    let mut bent = proof_b.clone();
    bent[0].0[0] ^= 0x80;
    let bent_err = client
        .claim(leaf_b.account, leaf_b.cumulative, bent)
        .await
        .unwrap_err();
    assert!(
        matches!(bent_err.revert(), Some(DistributorErrors::InvalidProof(_))),
        "{bent_err}"
    );

    // Epoch 2: miner A earns more; cumulative amounts only grow.
    let mut leaves2 = leaves.clone();
    for leaf in leaves2.iter_mut() {
        if leaf.account == miner_a.address() {
            leaf.cumulative += U256::from(1_000_000u64);
        }
    }
    let tree2 = RewardTree::new(domain, leaves2).unwrap();
    let commit2 = EpochInputs {
        epoch: EpochId(2),
        share_root: share_root(2, &[miner_a.address()]),
        rewards: &tree2,
        blocks_hash: blocks_hash(&[]),
        params_hash: pool.hash(),
        data_hash: keccak256(b"epoch file 2"),
        prev_epoch_hash: record_hash(&record1),
    }
    .commit();
    let (record2, receipt) = client.commit_epoch(commit2).await.unwrap();
    println!("commitEpoch (steady state) gas: {}", receipt.gas_used);
    let mut paid = leaf_a.cumulative;
    for pick in [0usize, 1, 599, 1_197] {
        paid += tree1.leaves()[pick].cumulative;
    }
    // Epoch 1's funding became claimable when it was finalized; epoch 2's
    // waits in the escrow.
    assert_eq!(
        token
            .balanceOf(deployment.distributor)
            .call()
            .await
            .unwrap(),
        tree1.total() - paid
    );
    assert_eq!(
        token.balanceOf(escrow).call().await.unwrap(),
        tree2.total() - tree1.total() + U256::from(1u64)
    );
    advance(&provider, CHALLENGE + 1).await;
    client.finalize(record2).await.unwrap();

    // A claim built against epoch 1's root and sent after epoch 2 was
    // finalized still pays: the previous finalized root is accepted.
    client
        .claim(leaf_b.account, leaf_b.cumulative, proof_b)
        .await
        .unwrap();
    assert_eq!(
        token.balanceOf(leaf_b.account).call().await.unwrap(),
        leaf_b.cumulative
    );
    // A repeat claim pays only the difference.
    let (leaf_a2, proof_a2) = tree2.proof_for(miner_a.address()).unwrap();
    let receipt = client
        .claim(leaf_a2.account, leaf_a2.cumulative, proof_a2)
        .await
        .unwrap();
    println!("claim (repeat) gas: {}", receipt.gas_used);
    assert_eq!(
        token.balanceOf(miner_a.address()).call().await.unwrap(),
        leaf_a2.cumulative
    );
    assert_eq!(
        leaf_a2.cumulative - leaf_a.cumulative,
        U256::from(1_000_000u64)
    );
}
