//! The tree itself: rs_merkle with keccak256 over sorted pairs.

use crate::leaf::{RewardDomain, RewardLeaf, ShareLeaf};
use alloy_primitives::{Address, B256, U256, keccak256};
use rs_merkle::MerkleTree;

/// Why a set of leaves cannot form a canonical tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// An account appears twice in a reward tree.
    #[error("account {0} appears twice in the reward tree")]
    DuplicateAccount(Address),
    /// Share leaves are not in strictly increasing sequence order.
    #[error(
        "share sequence {seq} follows {prev}: shares must be in strictly increasing sequence order"
    )]
    SequenceOrder {
        /// The previous sequence number.
        prev: u64,
        /// The offending sequence number.
        seq: u64,
    },
}

/// keccak256 of the sorted pair `(min(a, b), max(a, b))`, as OpenZeppelin's
/// `Hashes.commutativeKeccak256`.
#[inline]
pub fn hash_pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    buf[..32].copy_from_slice(lo);
    buf[32..].copy_from_slice(hi);
    keccak256(buf).0
}

/// The rs_merkle hasher: keccak256, sorted pairs, odd nodes promoted.
#[derive(Debug, Clone, Copy)]
pub struct KeccakSorted;

impl rs_merkle::Hasher for KeccakSorted {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        keccak256(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => hash_pair(left, right),
            None => *left,
        }
    }
}

/// Checks a proof with OpenZeppelin's `MerkleProof.verify` semantics: fold the
/// siblings bottom-up with [`hash_pair`] and compare with the root.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    let computed = proof
        .iter()
        .fold(leaf.0, |acc, sibling| hash_pair(&acc, &sibling.0));
    computed == root.0
}

/// Hashes `items` with `hash` on every available core, keeping the order.
///
/// Leaf hashing is two thirds of the keccak work of a tree build and is
/// embarrassingly parallel; scoped threads need no extra dependency.
fn hash_leaves<T: Sync>(items: &[T], hash: impl Fn(&T) -> [u8; 32] + Sync) -> Vec<[u8; 32]> {
    const MIN_PER_THREAD: usize = 16 * 1024;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&hash).collect();
    }
    let mut out = vec![[0u8; 32]; items.len()];
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (src, dst) in items.chunks(chunk).zip(out.chunks_mut(chunk)) {
            let hash = &hash;
            scope.spawn(move || {
                for (item, slot) in src.iter().zip(dst.iter_mut()) {
                    *slot = hash(item);
                }
            });
        }
    });
    out
}

/// A Merkle tree over leaf hashes given in canonical order.
///
/// Large trees are built as two rs_merkle trees on two threads: the largest
/// power-of-two prefix of `2^k` leaves and the remaining `r ≤ 2^k` leaves.
/// Pairing never crosses that boundary (every level of the prefix has an even
/// number of nodes until it is one node) and after `k` levels the rest has
/// been reduced to one node too, so the root is `hash_pair(left, right)` and
/// every proof is the half's proof plus the other half's root: exactly the
/// tree a single rs_merkle build over all leaves gives.
#[derive(Clone)]
pub struct Tree {
    shape: Shape,
    len: usize,
}

#[derive(Clone)]
enum Shape {
    Whole(MerkleTree<KeccakSorted>),
    Split(Box<(Tree, Tree)>),
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("len", &self.len)
            .field("root", &self.root())
            .finish()
    }
}

/// Below this many leaves a second thread costs more than it saves.
const MIN_SPLIT: usize = 1 << 15;

impl Tree {
    /// Builds the tree. The leaves are already double-hashed.
    pub fn from_leaf_hashes(leaves: &[[u8; 32]]) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::build(leaves, threads, MIN_SPLIT)
    }

    fn build(leaves: &[[u8; 32]], threads: usize, min_split: usize) -> Self {
        let len = leaves.len();
        if threads < 2 || len < min_split.max(2) {
            return Self {
                shape: Shape::Whole(MerkleTree::from_leaves(leaves)),
                len,
            };
        }
        // The largest power of two strictly below `len`.
        let k = 1usize << (usize::BITS - 1 - (len - 1).leading_zeros());
        let (left, right) = leaves.split_at(k);
        let right_threads = threads / 2;
        let (left, right) = std::thread::scope(|scope| {
            let right = scope.spawn(move || Self::build(right, right_threads, min_split));
            let left = Self::build(left, threads - right_threads, min_split);
            (left, right.join().expect("tree build thread panicked"))
        });
        Self {
            shape: Shape::Split(Box::new((left, right))),
            len,
        }
    }

    fn root_bytes(&self) -> Option<[u8; 32]> {
        match &self.shape {
            Shape::Whole(tree) => tree.root(),
            Shape::Split(halves) => {
                Some(hash_pair(&halves.0.root_bytes()?, &halves.1.root_bytes()?))
            }
        }
    }

    /// The root; zero for an empty tree (the contract treats a zero reward root
    /// as "nothing claimable").
    pub fn root(&self) -> B256 {
        self.root_bytes().map(B256::from).unwrap_or_default()
    }

    /// How many leaves the tree has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sibling hashes from the leaf at `index` up to the root, or `None`
    /// if the index is out of range. A promoted odd node contributes no
    /// sibling, so such proofs are shorter.
    pub fn proof(&self, index: usize) -> Option<Vec<B256>> {
        if index >= self.len {
            return None;
        }
        match &self.shape {
            Shape::Whole(tree) => Some(
                tree.proof(&[index])
                    .proof_hashes()
                    .iter()
                    .copied()
                    .map(B256::from)
                    .collect(),
            ),
            Shape::Split(halves) => {
                let (left, right) = &**halves;
                let (mut proof, other) = if index < left.len {
                    (left.proof(index)?, right)
                } else {
                    (right.proof(index - left.len)?, left)
                };
                proof.push(B256::from(other.root_bytes()?));
                Some(proof)
            }
        }
    }
}

/// The reward tree of one epoch: every miner's cumulative amount, sorted by account.
#[derive(Debug, Clone)]
pub struct RewardTree {
    domain: RewardDomain,
    leaves: Vec<RewardLeaf>,
    tree: Tree,
    total: U256,
}

impl RewardTree {
    /// Builds the tree for `domain`. Leaves may come in any order; they are
    /// sorted by account. An account listed twice is an error.
    pub fn new(domain: RewardDomain, mut leaves: Vec<RewardLeaf>) -> Result<Self, MerkleError> {
        leaves.sort_unstable_by_key(|leaf| leaf.account);
        if let Some(w) = leaves.windows(2).find(|w| w[0].account == w[1].account) {
            return Err(MerkleError::DuplicateAccount(w[0].account));
        }
        let hashes = hash_leaves(&leaves, |leaf| leaf.hash(&domain).0);
        let total = leaves
            .iter()
            .fold(U256::ZERO, |acc, leaf| acc.saturating_add(leaf.cumulative));
        Ok(Self {
            domain,
            tree: Tree::from_leaf_hashes(&hashes),
            leaves,
            total,
        })
    }

    /// The root committed on-chain as `rewardRoot`.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The sum of all cumulative amounts (`totalCumulative` on-chain).
    pub fn total(&self) -> U256 {
        self.total
    }

    /// The deployment the leaves are bound to.
    pub fn domain(&self) -> RewardDomain {
        self.domain
    }

    /// The leaves in canonical (account) order.
    pub fn leaves(&self) -> &[RewardLeaf] {
        &self.leaves
    }

    /// The account's leaf and its proof, in the form `claim` takes.
    pub fn proof_for(&self, account: Address) -> Option<(RewardLeaf, Vec<B256>)> {
        let index = self
            .leaves
            .binary_search_by_key(&account, |leaf| leaf.account)
            .ok()?;
        Some((self.leaves[index], self.tree.proof(index)?))
    }
}

/// The share tree of one epoch, in sequence order.
#[derive(Debug, Clone)]
pub struct ShareTree {
    tree: Tree,
}

impl ShareTree {
    /// Builds the tree; the leaves must be in strictly increasing sequence order.
    pub fn new(leaves: &[ShareLeaf]) -> Result<Self, MerkleError> {
        if let Some(w) = leaves.windows(2).find(|w| w[0].seq >= w[1].seq) {
            return Err(MerkleError::SequenceOrder {
                prev: w[0].seq,
                seq: w[1].seq,
            });
        }
        let hashes = hash_leaves(leaves, |leaf| leaf.hash().0);
        Ok(Self {
            tree: Tree::from_leaf_hashes(&hashes),
        })
    }

    /// The root committed on-chain as `shareRoot`.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The proof of the share at `index` (its position in sequence order).
    pub fn proof(&self, index: usize) -> Option<Vec<B256>> {
        self.tree.proof(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf::hash_leaf;
    use proptest::prelude::*;

    fn leaf(i: u64) -> [u8; 32] {
        hash_leaf(&i.to_be_bytes()).0
    }

    /// An independent root computation: pair up each level, promote the odd node.
    fn naive_root(mut level: Vec<[u8; 32]>) -> [u8; 32] {
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        hash_pair(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
        }
        level[0]
    }

    fn check_tree(n: usize, probes: &[usize]) {
        let leaves: Vec<[u8; 32]> = (0..n as u64).map(leaf).collect();
        let tree = Tree::from_leaf_hashes(&leaves);
        let root = tree.root();
        assert_eq!(root.0, naive_root(leaves.clone()), "root of {n} leaves");
        for &i in probes {
            let i = i % n;
            let proof = tree.proof(i).unwrap();
            assert!(proof.len() <= (usize::BITS - (n - 1).leading_zeros()) as usize);
            assert!(
                verify(&proof, root, B256::from(leaves[i])),
                "proof {i} of {n}"
            );
            // Any other leaf fails.
            let other = B256::from(leaf(n as u64 + 1));
            assert!(!verify(&proof, root, other));
            // Any altered sibling fails.
            for s in 0..proof.len() {
                let mut bad = proof.clone();
                bad[s].0[s % 32] ^= 1;
                assert!(
                    !verify(&bad, root, B256::from(leaves[i])),
                    "altered sibling {s}"
                );
            }
        }
    }

    #[test]
    fn sizes_named_by_the_spec() {
        for n in [1usize, 2, 3, 5, 1000] {
            check_tree(n, &(0..n).collect::<Vec<_>>());
        }
        check_tree((1 << 16) + 1, &[0, 1, 65535, 65536, 40000]);
    }

    /// The two-thread build gives the same tree as one rs_merkle build, for
    /// sizes around every power of two (a tiny split threshold forces splits
    /// down to two leaves, four ways deep).
    #[test]
    fn split_build_matches_the_single_tree() {
        for n in (2usize..=70).chain([127, 128, 129, 255, 256, 257, 1000, 1025]) {
            let leaves: Vec<[u8; 32]> = (0..n as u64).map(leaf).collect();
            let whole = Tree::build(&leaves, 1, 2);
            let split = Tree::build(&leaves, 16, 2);
            assert!(matches!(split.shape, Shape::Split(_)), "{n} leaves split");
            assert_eq!(split.root(), whole.root(), "root of {n} leaves");
            assert_eq!(split.root().0, naive_root(leaves.clone()));
            for i in 0..n {
                assert_eq!(split.proof(i), whole.proof(i), "proof {i} of {n}");
            }
            assert_eq!(split.proof(n), None);
        }
    }

    #[test]
    fn single_leaf_root_is_the_leaf() {
        let tree = Tree::from_leaf_hashes(&[leaf(7)]);
        assert_eq!(tree.root().0, leaf(7));
        assert_eq!(tree.proof(0).unwrap(), Vec::<B256>::new());
        assert_eq!(tree.proof(1), None);
        assert_eq!(Tree::from_leaf_hashes(&[]).root(), B256::ZERO);
    }

    fn domain() -> RewardDomain {
        RewardDomain {
            chain_id: 31337,
            distributor: Address::repeat_byte(0xd1),
        }
    }

    #[test]
    fn reward_tree_rejects_duplicates_and_sorts() {
        let a = RewardLeaf {
            account: Address::repeat_byte(2),
            cumulative: U256::from(5),
        };
        let b = RewardLeaf {
            account: Address::repeat_byte(1),
            cumulative: U256::from(7),
        };
        let tree = RewardTree::new(domain(), vec![a, b]).unwrap();
        assert_eq!(tree.leaves()[0], b);
        assert_eq!(tree.total(), U256::from(12));
        let dup = RewardTree::new(domain(), vec![a, b, a]).unwrap_err();
        assert_eq!(dup, MerkleError::DuplicateAccount(a.account));
    }

    #[test]
    fn share_tree_requires_sequence_order() {
        let mk = |seq| ShareLeaf {
            epoch: proofpool_primitives::EpochId(1),
            seq,
            miner: Address::repeat_byte(1),
            work: proofpool_primitives::Work(U256::from(1)),
            share_hash: proofpool_primitives::ShareHash(B256::ZERO),
        };
        assert!(ShareTree::new(&[mk(1), mk(2), mk(5)]).is_ok());
        assert_eq!(
            ShareTree::new(&[mk(1), mk(1)]).unwrap_err(),
            MerkleError::SequenceOrder { prev: 1, seq: 1 }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_reward_proof_verifies_and_tampering_fails(
            amounts in proptest::collection::btree_map(any::<[u8; 20]>(), any::<u128>(), 1..300),
            pick in any::<prop::sample::Index>(),
            tweak in 1u128..1000,
        ) {
            let leaves: Vec<RewardLeaf> = amounts.iter().map(|(a, v)| RewardLeaf { account: Address::from(*a), cumulative: U256::from(*v) }).collect();
            let tree = RewardTree::new(domain(), leaves.clone()).unwrap();
            let root = tree.root();
            let chosen = leaves[pick.index(leaves.len())];
            let (leaf, proof) = tree.proof_for(chosen.account).unwrap();
            prop_assert_eq!(leaf, chosen);
            prop_assert!(verify(&proof, root, leaf.hash(&domain())));
            // Another amount.
            let more = RewardLeaf { cumulative: leaf.cumulative + U256::from(tweak), ..leaf };
            prop_assert!(!verify(&proof, root, more.hash(&domain())));
            // Another account.
            let mut acct = leaf.account.0;
            acct[19] ^= 1;
            let other = RewardLeaf { account: Address::from(acct), ..leaf };
            prop_assert!(!verify(&proof, root, other.hash(&domain())));
            // Another deployment.
            let elsewhere = RewardDomain { chain_id: 1, ..domain() };
            prop_assert!(!verify(&proof, root, leaf.hash(&elsewhere)));
        }

        #[test]
        fn random_sizes_round_trip(n in 1usize..2100, probe in any::<prop::sample::Index>()) {
            check_tree(n, &[probe.index(n), 0, n - 1]);
        }
    }
}
