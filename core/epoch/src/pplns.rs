//! PPLNS credits for one found block (DESIGN.md, "PPLNS").
//!
//! The settler streams the accepted shares from the block's solving share
//! backwards, newest first, into [`credit_block`]. Each share is scored with
//! [`share_score`] (`2^128` units per network difficulty), the scores fill a
//! window of `X · 2^128` units, and the block's pot is split in proportion to
//! each miner's weight in that window. Everything is integer arithmetic, so
//! an auditor who replays the same shares gets the same satoshis, and what the
//! floors leave over, together with the fee and a young pool's unfilled
//! window, goes to the operator: `Σ credits + operator = R` exactly.
//!
//! **Why `2^128` and not DESIGN.md's `2^64`** (scoring version 2): a score is
//! floored per share, so a share worth very little of the network's
//! difficulty loses most of its score to the floor. On mainnet (network
//! difficulty about `1.1·10^14`) a NerdMiner share at difficulty 0.0001
//! scores about 14 units at `2^64`, so the floor costs it up to 7 %, and at
//! the pool's lowest difficulty (0.00001) a share scores 1 unit where it is
//! worth 1.6: a systematic underpayment of exactly the smallest miners. At
//! `2^128` the same share scores about `2.6·10^20` units and the floor costs
//! less than `10^-20` of it. Nothing else changes: the window is
//! `X · 2^128 < 2^192` for any `u64` X, `P · S_m < 2^256`, and a share
//! scores in 256 bits up to `2^128` network difficulties.

use crate::commitment::PplnsParams;
use alloy_primitives::{U256, U512};
use proofpool_primitives::{MinerAddress, Sats, Work};
use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// Basis points in 100 %.
const BPS_PER_UNIT: u64 = 10_000;

/// A share whose work equals the network's scores `2^SCORE_BITS`.
pub const SCORE_BITS: usize = 128;

/// The window of `window_x` network difficulties, in score units:
/// `window_x · 2^SCORE_BITS`.
pub fn window_units(window_x: u64) -> U256 {
    U256::from(window_x) << SCORE_BITS
}

/// Why a share cannot be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The network work is zero, which no real target produces.
    #[error("network work is zero")]
    ZeroNetworkWork,
    /// The share's work exceeds the network's by a factor of `2^128` or more,
    /// so its score does not fit 256 bits.
    #[error("score does not fit 256 bits")]
    Overflow,
}

/// Why a block's credits cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PplnsError {
    /// `window_x` is zero, so the window holds nothing.
    #[error("pplns window must be at least one network difficulty, got window_x = 0")]
    ZeroWindow,
    /// The fee is more than the whole reward.
    #[error("pplns fee of {fee_bps} bps exceeds 10000 bps (100%)")]
    FeeTooHigh {
        /// The configured fee.
        fee_bps: u64,
    },
    /// The shares are not newest first.
    #[error("share {seq} follows share {newer}; shares must come in strictly descending seq order")]
    OutOfOrder {
        /// The share that came before it.
        newer: u64,
        /// The share that came out of order.
        seq: u64,
    },
    /// A share in the window cannot be scored.
    #[error("share {seq} cannot be scored: {source}")]
    Score {
        /// The share.
        seq: u64,
        /// Why.
        #[source]
        source: ScoreError,
    },
    /// An intermediate value left its range. The bounds in [`credit_block`]
    /// make this unreachable; it is reported rather than panicking.
    #[error("pplns arithmetic overflowed")]
    Overflow,
}

/// One accepted share, as [`credit_block`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShare {
    /// The pool's sequence number; newer shares have larger numbers.
    pub seq: u64,
    /// Who is paid for it. Workers are irrelevant to PPLNS.
    pub miner: MinerAddress,
    /// The work of the target it was credited at (its assigned difficulty,
    /// not the luck of its hash).
    pub share_work: Work,
    /// The work of the network target of the job it was mined on.
    pub net_work: Work,
}

/// How one block's coinbase value is split.
///
/// `Σ credits + operator = value`, and `operator = fee +
/// young_pool_remainder + dust`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPayout {
    /// `R`: the block's coinbase value.
    pub value: Sats,
    /// `F = floor(R · fee_bps / 10000)`.
    pub fee: Sats,
    /// The part of the pot `P = R − F` for the unfilled window:
    /// `P − floor(P · filled / window)`. Zero once the pool has produced a
    /// full window of shares.
    pub young_pool_remainder: Sats,
    /// What the per-miner floors leave of `floor(P · filled / window)`.
    pub dust: Sats,
    /// `fee + young_pool_remainder + dust`: stays with the operator.
    pub operator: Sats,
    /// `floor(P · S_m / window)` for each miner with a non-zero credit.
    pub credits: BTreeMap<MinerAddress, Sats>,
    /// Score units of the window that shares filled: `Σ S_m`.
    pub filled: U256,
    /// The window, `window_x · 2^128` score units.
    pub window: U256,
    /// How many shares were read, the solving share included.
    pub shares_used: u64,
    /// The oldest share read, or `None` if there were none.
    pub oldest_seq: Option<u64>,
    /// Whether the oldest share counted for only part of its score.
    pub oldest_partial: bool,
}

/// A share's PPLNS score: `floor(2^128 · share_work / net_work)`.
///
/// A share at the network's difficulty scores `2^128`. On regtest a share's
/// work can exceed the network's, so the score can exceed `2^128`; it is
/// computed in 512 bits and is an error only if it does not fit 256.
pub fn share_score(share_work: Work, net_work: Work) -> Result<U256, ScoreError> {
    if net_work.0.is_zero() {
        return Err(ScoreError::ZeroNetworkWork);
    }
    let score = (widen(share_work.0) << SCORE_BITS) / widen(net_work.0);
    narrow(score).ok_or(ScoreError::Overflow)
}

/// Splits a block's coinbase `value` among the miners in its PPLNS window.
///
/// `shares` yields the block's solving share first, then older shares in
/// strictly descending `seq` order. It is read only until the window is full,
/// so shares beyond the window are never pulled, scored or checked. If it runs
/// out first (a young pool), the unfilled part of the window is not
/// renormalised: it goes to the operator.
pub fn credit_block(
    shares: impl IntoIterator<Item = WindowShare>,
    value: Sats,
    params: &PplnsParams,
) -> Result<BlockPayout, PplnsError> {
    if params.window_x == 0 {
        return Err(PplnsError::ZeroWindow);
    }
    if params.fee_bps > BPS_PER_UNIT {
        return Err(PplnsError::FeeTooHigh {
            fee_bps: params.fee_bps,
        });
    }
    // Below 2^192, and every weight and sum below is at most the window.
    let window = window_units(params.window_x);

    let mut weights: BTreeMap<MinerAddress, U256> = BTreeMap::new();
    let mut filled = U256::ZERO;
    let mut shares_used = 0u64;
    let mut oldest_seq: Option<u64> = None;
    let mut oldest_partial = false;
    let mut shares = shares.into_iter();
    while filled < window {
        let Some(share) = shares.next() else {
            break;
        };
        if let Some(newer) = oldest_seq
            && share.seq >= newer
        {
            return Err(PplnsError::OutOfOrder {
                newer,
                seq: share.seq,
            });
        }
        let score =
            share_score(share.share_work, share.net_work).map_err(|source| PplnsError::Score {
                seq: share.seq,
                source,
            })?;
        // `filled < window`, so the room is positive and the sums stay within the window.
        let weight = score.min(window - filled);
        oldest_partial = weight < score;
        filled += weight;
        *weights.entry(share.miner).or_default() += weight;
        shares_used = shares_used.checked_add(1).ok_or(PplnsError::Overflow)?;
        oldest_seq = Some(share.seq);
    }

    // `fee_bps <= 10000`, so the fee is at most the value.
    let fee = u128::from(value.0) * u128::from(params.fee_bps) / u128::from(BPS_PER_UNIT);
    let fee = u64::try_from(fee).map_err(|_| PplnsError::Overflow)?;
    let pot = value.0.checked_sub(fee).ok_or(PplnsError::Overflow)?;
    let paid = mul_div(pot, filled, window)?;

    let mut credits = BTreeMap::new();
    let mut credited = 0u64;
    for (miner, weight) in weights {
        let credit = mul_div(pot, weight, window)?;
        if credit != 0 {
            credits.insert(miner, Sats(credit));
            credited = credited.checked_add(credit).ok_or(PplnsError::Overflow)?;
        }
    }

    // Σ floor(P·S_m/W) <= floor(P·ΣS_m/W) = paid <= P, so neither subtraction underflows.
    let young_pool_remainder = pot.checked_sub(paid).ok_or(PplnsError::Overflow)?;
    let dust = paid.checked_sub(credited).ok_or(PplnsError::Overflow)?;
    let operator = fee
        .checked_add(young_pool_remainder)
        .and_then(|o| o.checked_add(dust))
        .ok_or(PplnsError::Overflow)?;

    Ok(BlockPayout {
        value,
        fee: Sats(fee),
        young_pool_remainder: Sats(young_pool_remainder),
        dust: Sats(dust),
        operator: Sats(operator),
        credits,
        filled,
        window,
        shares_used,
        oldest_seq,
        oldest_partial,
    })
}

/// `floor(amount · numerator / window)` for `numerator <= window < 2^192`,
/// which is at most `amount`.
fn mul_div(amount: u64, numerator: U256, window: U256) -> Result<u64, PplnsError> {
    let product = U256::from(amount)
        .checked_mul(numerator)
        .ok_or(PplnsError::Overflow)?;
    u64::try_from(product / window).map_err(|_| PplnsError::Overflow)
}

pub(crate) fn widen(x: U256) -> U512 {
    let [a, b, c, d] = x.into_limbs();
    U512::from_limbs([a, b, c, d, 0, 0, 0, 0])
}

fn narrow(x: U512) -> Option<U256> {
    match x.into_limbs() {
        [a, b, c, d, 0, 0, 0, 0] => Some(U256::from_limbs([a, b, c, d])),
        _ => None,
    }
}
