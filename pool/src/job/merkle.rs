//! The Stratum merkle branch: the coinbase's path to the block's merkle root.

use super::sha::sha256d_64;

/// `sha256d(left ‖ right)`, the inner node of Bitcoin's transaction tree.
fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    sha256d_64(&buf)
}

/// The siblings of the coinbase (leaf 0) on its way to the root, bottom up,
/// given the other transactions' txids in block order (internal byte order).
///
/// At each level the coinbase's node is still unknown, so only the rest of the
/// level is hashed: its first node is the sibling, the others pair up, the
/// last one paired with itself when they are odd in number, as Bitcoin does.
pub(crate) fn branch(txids: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut branch = Vec::new();
    let mut level = txids.to_vec();
    while let Some((&sibling, rest)) = level.split_first() {
        branch.push(sibling);
        level = rest
            .chunks(2)
            .filter_map(|pair| {
                let left = pair.first()?;
                Some(hash_pair(left, pair.get(1).unwrap_or(left)))
            })
            .collect();
    }
    branch
}

/// Folds a branch into the merkle root, starting from the coinbase txid.
pub(crate) fn fold(coinbase_txid: [u8; 32], branch: &[[u8; 32]]) -> [u8; 32] {
    branch
        .iter()
        .fold(coinbase_txid, |node, sibling| hash_pair(&node, sibling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::TxMerkleNode;
    use bitcoin::hashes::Hash;
    use bitcoin::merkle_tree::calculate_root;
    use proptest::prelude::*;

    fn root_by_bitcoin(leaves: &[[u8; 32]]) -> [u8; 32] {
        let nodes = leaves.iter().map(|l| TxMerkleNode::from_byte_array(*l));
        calculate_root(nodes)
            .expect("at least the coinbase")
            .to_byte_array()
    }

    #[test]
    fn no_transactions_means_an_empty_branch() {
        assert!(branch(&[]).is_empty());
        let coinbase = [7u8; 32];
        assert_eq!(fold(coinbase, &[]), coinbase);
    }

    #[test]
    fn branch_depth_is_the_tree_height() {
        // With n transactions besides the coinbase the tree has n + 1 leaves.
        for (others, depth) in [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (7, 3),
            (8, 4),
            (2047, 11),
            (2048, 12),
        ] {
            let txids: Vec<[u8; 32]> = (0..others).map(|i: u32| [i as u8; 32]).collect();
            assert_eq!(branch(&txids).len(), depth, "{others} transactions");
        }
        let txids = vec![[1u8; 32]; 2100];
        assert_eq!(branch(&txids).len(), 12);
    }

    proptest! {
        #[test]
        fn folding_the_branch_gives_bitcoins_root(
            coinbase in any::<[u8; 32]>(),
            txids in prop::collection::vec(any::<[u8; 32]>(), 0..70),
        ) {
            let mut leaves = vec![coinbase];
            leaves.extend_from_slice(&txids);
            prop_assert_eq!(fold(coinbase, &branch(&txids)), root_by_bitcoin(&leaves));
        }
    }
}
