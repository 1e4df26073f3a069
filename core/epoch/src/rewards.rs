//! Cumulative balances (satoshis) to the reward tree (token base units).

use crate::commitment::sats_to_token;
use alloy_primitives::{Address, U256};
use proofpool_merkle::{MerkleError, RewardDomain, RewardLeaf, RewardTree};
use proofpool_primitives::Sats;

/// Why balances do not make a reward tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewardsError {
    /// A balance times the scale does not fit 256 bits.
    #[error("{sats} sats × token-per-sat {scale} overflows 256 bits")]
    Overflow {
        /// The balance.
        sats: u64,
        /// The scale.
        scale: U256,
    },
    /// The tree refused the leaves (an account twice).
    #[error(transparent)]
    Tree(#[from] MerkleError),
}

/// The reward tree of cumulative `balances` (sats per account) at
/// `token_per_sat`, bound to `domain`; accounts with nothing are left out.
/// The settler, the auditor and the API all build it this way, so their
/// roots agree.
pub fn reward_tree(
    domain: RewardDomain,
    balances: impl IntoIterator<Item = (Address, u64)>,
    token_per_sat: U256,
) -> Result<RewardTree, RewardsError> {
    let mut leaves = Vec::new();
    for (account, sats) in balances {
        if sats == 0 {
            continue;
        }
        let cumulative =
            sats_to_token(Sats(sats), token_per_sat).ok_or(RewardsError::Overflow {
                sats,
                scale: token_per_sat,
            })?;
        leaves.push(RewardLeaf {
            account,
            cumulative,
        });
    }
    Ok(RewardTree::new(domain, leaves)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_balances_are_left_out_and_amounts_scaled() {
        let domain = RewardDomain {
            chain_id: 1,
            distributor: Address::repeat_byte(9),
        };
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let tree = reward_tree(domain, [(b, 0), (a, 3)], U256::from(10u64)).unwrap();
        // One leaf: 3 sats at 10 units each, by hand.
        assert_eq!(tree.total(), U256::from(30u64));
        let (leaf, _) = tree.proof_for(a).unwrap();
        assert_eq!(leaf.cumulative, U256::from(30u64));
        assert!(tree.proof_for(b).is_none());
        assert!(matches!(
            reward_tree(domain, [(a, u64::MAX)], U256::MAX),
            Err(RewardsError::Overflow { .. })
        ));
    }
}
