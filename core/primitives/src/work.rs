//! Proof-of-work as an integer quantity.

use alloy_primitives::U256;

/// Why a target cannot be turned into work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// A zero target would mean infinite work.
    #[error("target is zero")]
    ZeroTarget,
    /// Summing work overflowed 256 bits.
    #[error("work overflowed 256 bits")]
    Overflow,
}

/// Work is a measure of how difficult it is to find a hash below a given
/// target: `floor(2^256 / (target + 1))`, as in Bitcoin chainwork.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Work(pub U256);

impl Work {
    /// No work.
    pub const ZERO: Self = Self(U256::ZERO);

    /// The expected work to find a hash at or below `target`.
    ///
    /// Uses `2^256 / (t + 1) = (!t / (t + 1)) + 1`, which never overflows for
    /// a non-zero target.
    pub fn from_target(target: U256) -> Result<Self, WorkError> {
        if target.is_zero() {
            return Err(WorkError::ZeroTarget);
        }
        let Some(denominator) = target.checked_add(U256::from(1u8)) else {
            // target = 2^256 - 1: exactly one unit of work.
            return Ok(Self(U256::from(1u8)));
        };
        Ok(Self((!target / denominator) + U256::from(1u8)))
    }

    /// Adds two amounts of work.
    pub fn checked_add(self, other: Self) -> Result<Self, WorkError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(WorkError::Overflow)
    }

    /// The raw 256-bit value.
    pub const fn to_u256(self) -> U256 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bitcoin's difficulty-1 target (nBits 0x1d00ffff).
    fn diff1_target() -> U256 {
        U256::from(0xffffu64) << 208
    }

    #[test]
    fn difficulty_one_is_about_two_to_the_32() {
        let w = Work::from_target(diff1_target()).unwrap().to_u256();
        // 2^256 / (0xffff * 2^208 + 1) = 4295032833 (Bitcoin Core's chainwork for block 1).
        assert_eq!(w, U256::from(4_295_032_833u64));
    }

    #[test]
    fn extreme_targets() {
        assert_eq!(Work::from_target(U256::ZERO), Err(WorkError::ZeroTarget));
        assert_eq!(
            Work::from_target(U256::MAX).unwrap().to_u256(),
            U256::from(1u8)
        );
        assert_eq!(
            Work::from_target(U256::from(1u8)).unwrap().to_u256(),
            U256::MAX / U256::from(2u8) + U256::from(1u8)
        );
    }

    proptest! {
        #[test]
        fn matches_exact_division(t in any::<[u64; 4]>()) {
            let target = U256::from_limbs(t);
            prop_assume!(!target.is_zero());
            let w = Work::from_target(target).unwrap().to_u256();
            // w = floor(2^256 / (t+1)) iff w*(t+1) <= 2^256 < (w+1)*(t+1), checked in 512 bits.
            let t1 = alloy_primitives::U512::from(target) + alloy_primitives::U512::from(1u8);
            let two256 = alloy_primitives::U512::from(1u8) << 256;
            let w512 = alloy_primitives::U512::from(w);
            prop_assert!(w512 * t1 <= two256);
            prop_assert!((w512 + alloy_primitives::U512::from(1u8)) * t1 > two256);
        }
    }
}
