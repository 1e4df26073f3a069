//! PPS and FPPS credits for one epoch (issue 25): every accepted share is
//! paid its expected value when the epoch closes, whether or not a block is
//! found.
//!
//! A share's expected value is its chance of solving the block times what
//! the block pays:
//! - **PPS:** `W_share / W_net × subsidy(height)`;
//! - **FPPS:** `W_share / W_net × coinbase_value(job)`, the subsidy plus the
//!   fees of exactly the template the share's job was built from (its
//!   coinbase pays that much, so the share's own proof of work commits to
//!   it).
//!
//! `W_share / W_net` is the PPLNS score ([`share_score`]: `2^128` units per
//! network difficulty, floored per share), at most one block: a share
//! whose target is harder than its network target is always a block, so it
//! can earn no more than one. Everything else is exact:
//! - a miner's credit for the epoch is
//!   `floor(Σ score_i · base_i · (10000 − fee_bps) / (2^128 · 10000))` over
//!   its shares, summed in 512 bits and floored once, so no miner's credit
//!   depends on the order of the shares or on the other miners;
//! - the epoch's gross value is `G = floor(Σ score_i · base_i / 2^128)` over
//!   every share, the fee is `F = floor(G · fee_bps / 10000)`, and the dust
//!   the miners' floors leave is `G − F − Σ credits` (never negative, at
//!   most one base unit a miner): `Σ credits + F + dust = G` exactly.
//!
//! **Worked example** (also a unit test): fee 1 % (100 bps), one job of
//! network work `W_net = 1000` paying 50 BTC = 5,000,000,000 sat under
//! PPS. Miner A submits three shares of work 1 (scores `2^128/1000`, which
//! is not whole: each floors to `340282366920938463463374607431768211`),
//! miner B one share of work 7 (score
//! `2381976568446569244243622252022377480`, floored too).
//! - A's exact value is `3/1000 × 5·10^9 = 15,000,000` sat; the floored
//!   scores make it 14,999,999.99…, so with the fee A gets
//!   `floor(14,999,999.99… × 0.99) = 14,849,999` sat.
//! - B's exact value is 35,000,000 sat, 34,999,999.99… floored per score,
//!   and `floor(… × 0.99) = 34,649,999` sat.
//! - `G = floor(49,999,999.99…) = 49,999,999`, `F = floor(G / 100) =
//!   499,999`, and the dust is `49,999,999 − 499,999 − 14,849,999 −
//!   34,649,999 = 2` sat.

use crate::pplns::{SCORE_BITS, ScoreError, share_score, widen};
use alloy_primitives::{U256, U512};
use proofpool_primitives::{MinerAddress, Sats, Work};
use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// Basis points in 100 %.
const BPS_PER_UNIT: u64 = 10_000;

/// How a pool pays its miners.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Pay per last N shares: blocks are split among the shares before them
    /// once they mature.
    #[default]
    Pplns,
    /// Pay per share: each share's expected share of the block subsidy.
    Pps,
    /// Full pay per share: each share's expected share of the subsidy and
    /// the fees of its job's template.
    Fpps,
}

impl Scheme {
    /// The distributor's `PoolParams.scheme`: 0 PPLNS, 1 PPS, 2 FPPS.
    pub fn code(self) -> u8 {
        match self {
            Scheme::Pplns => 0,
            Scheme::Pps => 1,
            Scheme::Fpps => 2,
        }
    }

    /// The scheme with distributor code `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Scheme::Pplns),
            1 => Some(Scheme::Pps),
            2 => Some(Scheme::Fpps),
            _ => None,
        }
    }

    /// Whether this is PPLNS (the epoch file leaves the field out then).
    pub fn is_pplns(&self) -> bool {
        *self == Scheme::Pplns
    }

    /// Its name in the config and the epoch file.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Pplns => "pplns",
            Scheme::Pps => "pps",
            Scheme::Fpps => "fpps",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pplns" => Ok(Scheme::Pplns),
            "pps" => Ok(Scheme::Pps),
            "fpps" => Ok(Scheme::Fpps),
            other => Err(format!(
                "unknown payout scheme {other:?}: expected pplns, pps or fpps"
            )),
        }
    }
}

/// The block subsidy at `height` on `network`: 50 BTC halved every 210,000
/// blocks (every 150 on regtest), nothing after 64 halvings.
pub fn subsidy(network: bitcoin::Network, height: u32) -> Sats {
    let interval = if network == bitcoin::Network::Regtest {
        150
    } else {
        210_000
    };
    let halvings = height / interval;
    if halvings >= 64 {
        return Sats(0);
    }
    Sats(5_000_000_000u64 >> halvings)
}

/// The network bitcoind calls `name` (`getblockchaininfo`'s `chain`, the
/// epoch file's `bitcoin.network`): `main`, `test`, `testnet4`, `signet` or
/// `regtest`.
pub fn network_named(name: &str) -> Option<bitcoin::Network> {
    bitcoin::Network::from_core_arg(name).ok()
}

/// One accepted share, as the expected-value schemes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedShare {
    /// Who is credited.
    pub miner: MinerAddress,
    /// The work it is credited at (`2^256 / (share target + 1)`).
    pub share_work: Work,
    /// The network work of its job.
    pub net_work: Work,
    /// What a block on its job pays under the scheme: the subsidy at its
    /// height (PPS) or its coinbase value (FPPS), see [`ExpectedShare::base`].
    pub base: Sats,
}

impl ExpectedShare {
    /// What a block on a job at `height` paying `coinbase_value` is worth
    /// to a share under `scheme` on `network`; `None` for PPLNS, which pays
    /// blocks, not shares.
    pub fn base(
        scheme: Scheme,
        network: bitcoin::Network,
        height: u32,
        coinbase_value: Sats,
    ) -> Option<Sats> {
        match scheme {
            Scheme::Pplns => None,
            Scheme::Pps => Some(subsidy(network, height)),
            Scheme::Fpps => Some(coinbase_value),
        }
    }
}

/// An epoch's expected-value credits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpectedPayout {
    /// Each miner's credit for the epoch, base units (satoshis).
    pub credits: BTreeMap<MinerAddress, Sats>,
    /// `G`: the epoch's shares' expected value before the fee, floored once.
    pub gross: Sats,
    /// `F = floor(G · fee_bps / 10000)`: the operator's fee.
    pub fee: Sats,
    /// `G − F − Σ credits`: what the miners' floors leave, the operator's.
    pub dust: Sats,
}

impl ExpectedPayout {
    /// `Σ credits`: what the epoch adds to the distributor's total.
    pub fn total(&self) -> Sats {
        Sats(self.credits.values().map(|s| s.0).sum())
    }
}

/// Why an epoch's expected-value credits cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpectedError {
    /// A share could not be scored.
    #[error("share score: {0}")]
    Score(#[from] ScoreError),
    /// The fee is above 100 %.
    #[error("fee {fee_bps} bps is above 10000")]
    FeeTooHigh {
        /// The configured fee.
        fee_bps: u64,
    },
    /// A credit does not fit 64 bits (no real epoch comes near).
    #[error("a credit does not fit 64 bits")]
    Overflow,
}

/// The expected-value credits of an epoch's `shares` at `fee_bps`.
pub fn credit_epoch(
    shares: impl IntoIterator<Item = ExpectedShare>,
    fee_bps: u64,
) -> Result<ExpectedPayout, ExpectedError> {
    if fee_bps > BPS_PER_UNIT {
        return Err(ExpectedError::FeeTooHigh { fee_bps });
    }
    // Σ score · base per miner and in all: a score is below 2^256 and a
    // base below 2^64, so each term is below 2^320 and any realistic sum
    // far below 2^512.
    let mut values: BTreeMap<MinerAddress, U512> = BTreeMap::new();
    let mut all = U512::ZERO;
    for share in shares {
        // A share harder than its network target is a block whenever it is
        // a share, so it is worth one block, not more (only on a testnet,
        // where the network can be easier than the pool's difficulties).
        let score = share_score(share.share_work, share.net_work)?.min(U256::ONE << SCORE_BITS);
        let value = widen(score) * U512::from(share.base.0);
        *values.entry(share.miner).or_default() += value;
        all += value;
    }
    let keep = U512::from(BPS_PER_UNIT - fee_bps);
    let unit = U512::from(BPS_PER_UNIT) << SCORE_BITS;
    let mut credits = BTreeMap::new();
    let mut paid = 0u64;
    for (miner, value) in values {
        let credit = to_u64(value * keep / unit)?;
        paid = paid.checked_add(credit).ok_or(ExpectedError::Overflow)?;
        if credit > 0 {
            credits.insert(miner, Sats(credit));
        }
    }
    let gross = to_u64(all >> SCORE_BITS)?;
    let fee = to_u64(U512::from(gross) * U512::from(fee_bps) / U512::from(BPS_PER_UNIT))?;
    // Σ floor(x_m · k) ≤ floor(X · k) ≤ G − F (module docs): never negative.
    let dust = gross
        .checked_sub(fee)
        .and_then(|rest| rest.checked_sub(paid))
        .ok_or(ExpectedError::Overflow)?;
    Ok(ExpectedPayout {
        credits,
        gross: Sats(gross),
        fee: Sats(fee),
        dust: Sats(dust),
    })
}

fn to_u64(v: U512) -> Result<u64, ExpectedError> {
    u64::try_from(v).map_err(|_| ExpectedError::Overflow)
}
