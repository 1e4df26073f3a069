//! Typed quantities shared by every proofpool component.
//!
//! Everything that crosses a component boundary is an integer newtype: share
//! [`Work`] is `floor(2^256 / (target + 1))` in [`U256`], Bitcoin amounts are
//! [`Sats`], Stratum share [`Difficulty`] is an exact decimal (`0.0001` is
//! `1/10^4`, never a float) that converts to a target with integer
//! arithmetic, epochs are [`EpochId`]s and miners are identified by a
//! [`MinerAddress`] parsed once, at the Stratum or API boundary, with its
//! EIP-55 checksum enforced. No floating point is used for work or money.

mod address;
mod amount;
mod difficulty;
mod excerpt;
mod net;
mod work;

pub use address::{AddressError, MinerAddress};
pub use alloy_primitives::{Address, B256, U256};
pub use amount::Sats;
pub use difficulty::{DIFF1_TARGET, Difficulty, DifficultyError, MAX_SCALE};
pub use excerpt::{EXCERPT_CHARS, Excerpt};
pub use net::ip_key;
pub use work::{Work, WorkError};

/// A settlement epoch number. Epochs are consecutive and start at 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EpochId(pub u64);

impl EpochId {
    /// The epoch after this one, or `None` on overflow.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl std::fmt::Display for EpochId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The double-SHA256 of a share's 80-byte block header, in internal byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ShareHash(pub B256);
