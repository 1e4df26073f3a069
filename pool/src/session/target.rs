//! A channel's share difficulty: the pool's start, what the miner asks for,
//! and vardiff's retargets, with the hashrate estimate that comes with them.
//!
//! Time is what the caller says it is: the time since the channel opened.

use crate::config::PoolConfig;
use crate::vardiff::{Vardiff, VardiffConfig};
use proofpool_primitives::{Difficulty, MAX_SCALE};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// The difficulty the channel's next job carries, and how it moves.
#[derive(Debug, Clone)]
pub struct Targeting {
    difficulty: Difficulty,
    /// The controller; it also estimates the hashrate when `retarget` is off.
    vardiff: Vardiff,
    /// Whether vardiff's difficulties are applied (`vardiff` is configured).
    retarget: bool,
    min: Difficulty,
    max: Difficulty,
}

impl Targeting {
    /// Starts at the pool's start difficulty.
    pub fn new(config: &PoolConfig) -> Self {
        let difficulty = config.start_difficulty;
        // Without vardiff a default controller still estimates the hashrate
        // for metrics; its difficulties are never applied.
        let vardiff_config = config.vardiff.unwrap_or(VardiffConfig {
            min_difficulty: config.min_difficulty,
            max_difficulty: config.max_difficulty,
            ..VardiffConfig::default()
        });
        let vardiff = Vardiff::new(vardiff_config, difficulty).unwrap_or_else(|e| {
            // Pool::new validated the configured one; this is the default.
            tracing::error!(error = %e, "vardiff config refused; using defaults");
            Vardiff::new(VardiffConfig::default(), difficulty)
                .expect("the default vardiff config is valid")
        });
        Self {
            difficulty,
            vardiff,
            retarget: config.vardiff.is_some(),
            min: config.min_difficulty,
            max: config.max_difficulty,
        }
    }

    /// The difficulty the next job carries.
    pub fn current(&self) -> Difficulty {
        self.difficulty
    }

    /// How often vardiff wants [`Targeting::on_tick`], at most.
    pub fn retarget_interval(&self) -> Duration {
        self.vardiff.config().retarget_interval
    }

    /// A difficulty the miner asked for (V1's `suggest_difficulty`, V2's
    /// nominal hashrate), clamped to the pool's range: vardiff's new
    /// starting point. Returns the difficulty now current.
    pub fn suggest(&mut self, elapsed: Duration, asked: Difficulty) -> Difficulty {
        let asked = asked.clamp(self.min, self.max);
        self.difficulty = if self.retarget {
            self.vardiff.suggest(elapsed, asked)
        } else {
            asked
        };
        self.difficulty
    }

    /// The difficulty for a miner of `hashrate` hashes a second to find
    /// shares at vardiff's target rate (cut to 13 significant digits), or
    /// `None` for a hashrate that is not a positive finite number.
    pub fn for_hashrate(&self, hashrate: f64) -> Option<Difficulty> {
        let per_minute = f64::from(self.vardiff.config().target_shares_per_minute.max(1));
        // Difficulty 1 is 2^32 hashes.
        let difficulty = hashrate * 60.0 / per_minute / 4_294_967_296.0;
        if !(difficulty.is_finite() && difficulty > 0.0) {
            return None;
        }
        // 13 significant digits, cut (not rounded) so the difficulty is
        // never above what the hashrate asks for: `d1.d2…d13 × 10^exponent`
        // is the integer `d1…d13` over `10^(12 - exponent)`.
        let text = format!("{difficulty:.15e}");
        let (digits, exponent) = text.split_once('e')?;
        let mantissa: u64 = digits.get(..14)?.replace('.', "").parse().ok()?;
        let exponent: i32 = exponent.parse().ok()?;
        let scale = 12 - exponent;
        if scale <= 0 {
            let whole = mantissa.checked_mul(10u64.checked_pow(scale.unsigned_abs())?)?;
            return Difficulty::from_integer(whole).ok();
        }
        // Past 18 decimal places the rest is cut too (at least 10^-18).
        let extra = (scale - MAX_SCALE as i32).max(0).unsigned_abs();
        let mantissa = mantissa / 10u64.checked_pow(extra).unwrap_or(u64::MAX);
        if mantissa == 0 {
            return Some(Difficulty::MIN);
        }
        Difficulty::from_parts(mantissa, scale.unsigned_abs() - extra).ok()
    }

    /// An accepted share credited at `credited`: the new difficulty, if
    /// vardiff retargets (and applies its choices).
    pub fn on_share(&mut self, elapsed: Duration, credited: Difficulty) -> Option<Difficulty> {
        let next = self.vardiff.on_share(elapsed, credited)?;
        self.retarget.then(|| self.take(next))
    }

    /// A periodic check: the new (lower) difficulty of a miner gone quiet,
    /// if vardiff cuts it.
    pub fn on_tick(&mut self, elapsed: Duration) -> Option<Difficulty> {
        if !self.retarget {
            return None;
        }
        let next = self.vardiff.on_tick(elapsed)?;
        Some(self.take(next))
    }

    /// The estimated hashrate, whole hashes a second (0 until two shares).
    pub fn estimated_hashrate(&self, elapsed: Duration) -> u64 {
        self.vardiff
            .estimated_hashrate(elapsed)
            .filter(|h| h.is_finite())
            .map_or(0, |h| h as u64)
    }

    fn take(&mut self, next: Difficulty) -> Difficulty {
        self.difficulty = next;
        next
    }
}
