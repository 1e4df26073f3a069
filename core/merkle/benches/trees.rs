//! Tree build and proof benchmarks: a share tree of 1M leaves, a reward tree of
//! 1M accounts, and one proof from the latter.

#![allow(missing_docs)]

use alloy_primitives::{Address, B256, U256};
use criterion::{Criterion, criterion_group, criterion_main};
use proofpool_merkle::{RewardDomain, RewardLeaf, RewardTree, ShareLeaf, ShareTree};
use proofpool_primitives::{EpochId, ShareHash, Work};
use std::hint::black_box;

const N: u64 = 1_000_000;

fn share_leaves() -> Vec<ShareLeaf> {
    (0..N)
        .map(|i| ShareLeaf {
            epoch: EpochId(42),
            seq: i,
            miner: Address::with_last_byte((i % 251) as u8),
            work: Work(U256::from(4_295_032_833u64 + i)),
            share_hash: ShareHash(B256::from(U256::from(
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ))),
        })
        .collect()
}

fn reward_leaves() -> Vec<RewardLeaf> {
    (0..N)
        .map(|i| {
            let mut a = [0u8; 20];
            a[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            a[12..].copy_from_slice(&i.to_be_bytes());
            RewardLeaf {
                account: Address::from(a),
                cumulative: U256::from(1_000 + i),
            }
        })
        .collect()
}

fn domain() -> RewardDomain {
    RewardDomain {
        chain_id: 31337,
        distributor: Address::repeat_byte(0xd1),
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("merkle");
    group.sample_size(10);
    let shares = share_leaves();
    group.bench_function("share_tree_1m", |b| {
        b.iter(|| {
            ShareTree::new(black_box(&shares))
                .expect("sequence order")
                .root()
        })
    });
    let rewards = reward_leaves();
    group.bench_function("reward_tree_1m", |b| {
        b.iter(|| {
            RewardTree::new(domain(), black_box(rewards.clone()))
                .expect("unique")
                .root()
        })
    });
    group.finish();

    let tree = RewardTree::new(domain(), rewards.clone()).expect("unique accounts");
    let account = rewards[777_777].account;
    c.bench_function("merkle/reward_proof_1m", |b| {
        b.iter(|| tree.proof_for(black_box(account)).expect("present"))
    });
}

criterion_group!(trees, benches);
criterion_main!(trees);
