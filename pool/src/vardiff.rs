//! Per-connection variable difficulty (vardiff), in the style of ckpool.
//!
//! One [`Vardiff`] lives in each miner session. The session feeds it every
//! accepted share with [`Vardiff::on_share`] and calls [`Vardiff::on_tick`]
//! every few seconds; when either returns a difficulty, the session sends
//! `mining.set_difficulty` with the next job. The controller is pure: time is
//! passed in as a [`Duration`] since the controller was created, so it never
//! reads a clock, does no I/O and does not allocate.
//!
//! [`Vardiff`]'s own docs describe the estimator and the retarget rule.

use proofpool_primitives::Difficulty;
use std::time::Duration;

/// Hashes per unit of difficulty: a share of difficulty `d` takes about
/// `d * 2^32` hashes (exactly `2^256 / (DIFF1_TARGET + 1)`, which is 0.0015%
/// more).
const HASHES_PER_DIFFICULTY: f64 = 4_294_967_296.0;

/// Below and above these the rounded difficulty saturates; they are far
/// outside what [`Difficulty`] can hold, and keep `powi` finite.
const ROUND_FLOOR: f64 = 1e-19;
const ROUND_CEILING: f64 = 1e20;

/// Why a [`VardiffConfig`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VardiffConfigError {
    /// The target share rate is zero.
    #[error("target share rate must be at least 1 share per minute")]
    ZeroTargetRate,
    /// The tolerance band does not contain the target rate.
    #[error("share-rate band {low_percent}%..{high_percent}% must satisfy 0 < low < 100 < high")]
    BandExcludesTarget {
        /// The configured lower edge, in percent of the target rate.
        low_percent: u32,
        /// The configured upper edge, in percent of the target rate.
        high_percent: u32,
    },
    /// The retarget interval is zero.
    #[error("retarget interval must be positive")]
    ZeroRetargetInterval,
    /// The retarget share count is zero.
    #[error("retarget share count must be positive")]
    ZeroRetargetShares,
    /// The decay window is zero.
    #[error("decay window must be positive")]
    ZeroDecayWindow,
    /// The minimum difficulty is above the maximum.
    #[error("min difficulty {min} is above max difficulty {max}")]
    MinAboveMax {
        /// The configured minimum.
        min: Difficulty,
        /// The configured maximum.
        max: Difficulty,
    },
}

/// Tuning for [`Vardiff`].
///
/// [`Default`] keeps ckpool's target and band (18 shares a minute, left alone
/// between 9 and 24) and its 5-minute decay window, and considers retargets
/// twice as often (120 s or 36 shares, against 240 s or 72), which halves the
/// time a silent miner waits between cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VardiffConfig {
    /// The share rate the controller aims for, in shares per minute.
    pub target_shares_per_minute: u32,
    /// No retarget while the share rate is at least this percentage of the
    /// target (below 100).
    pub band_low_percent: u32,
    /// No retarget while the share rate is at most this percentage of the
    /// target (above 100).
    pub band_high_percent: u32,
    /// A retarget is considered once this much time has passed since the
    /// last one...
    pub retarget_interval: Duration,
    /// ...or once this many shares have arrived since it, if that is sooner.
    pub retarget_shares: u32,
    /// Time constant of the decayed difficulty rate: older shares weigh
    /// `exp(-age / decay_window)`.
    pub decay_window: Duration,
    /// The lowest difficulty the controller assigns.
    pub min_difficulty: Difficulty,
    /// The highest difficulty the controller assigns.
    pub max_difficulty: Difficulty,
}

impl Default for VardiffConfig {
    fn default() -> Self {
        Self {
            target_shares_per_minute: 18,
            // ckpool keeps 0.15..0.4 shares/s around its 0.3 optimum.
            band_low_percent: 50,
            band_high_percent: 133,
            retarget_interval: Duration::from_secs(120),
            retarget_shares: 36,
            // ckpool's dsps5.
            decay_window: Duration::from_secs(300),
            // 0.00001 is exactly 1 / 10^5.
            min_difficulty: Difficulty::from_parts(1, 5).expect("1e-5 is a valid difficulty"),
            max_difficulty: Difficulty::from_integer(1 << 40).expect("2^40 is not zero"),
        }
    }
}

impl VardiffConfig {
    /// Checks that the settings describe a working controller.
    pub fn validate(&self) -> Result<(), VardiffConfigError> {
        if self.target_shares_per_minute == 0 {
            return Err(VardiffConfigError::ZeroTargetRate);
        }
        if self.band_low_percent == 0
            || self.band_low_percent >= 100
            || self.band_high_percent <= 100
        {
            return Err(VardiffConfigError::BandExcludesTarget {
                low_percent: self.band_low_percent,
                high_percent: self.band_high_percent,
            });
        }
        if self.retarget_interval.is_zero() {
            return Err(VardiffConfigError::ZeroRetargetInterval);
        }
        if self.retarget_shares == 0 {
            return Err(VardiffConfigError::ZeroRetargetShares);
        }
        if self.decay_window.is_zero() {
            return Err(VardiffConfigError::ZeroDecayWindow);
        }
        if self.min_difficulty > self.max_difficulty {
            return Err(VardiffConfigError::MinAboveMax {
                min: self.min_difficulty,
                max: self.max_difficulty,
            });
        }
        Ok(())
    }
}

/// One connection's vardiff controller.
///
/// # Estimator
///
/// The controller tracks the exponentially decayed rate of accepted
/// difficulty, in difficulty per second (ckpool's `dsps`):
///
/// ```text
/// S(t)  = sum of credited difficulty d_i * exp(-(t - t_i) / window)
/// E(t)  = window * (1 - exp(-(t - t_0) / window))
/// rate  = S(t) / E(t)
/// ```
///
/// `E` is the decayed exposure since the first share `t_0`, which removes the
/// bias of a young average (ckpool's `time_bias`); the first share only
/// starts the clock and is not counted, which makes `rate` an unbiased
/// estimate for a miner of constant hashrate. Because it counts credited
/// difficulty rather than shares, the rate does not change when the
/// difficulty does: shares still in flight at the old difficulty are
/// evidence as good as new ones. It is `hashrate / 2^32`.
///
/// # Retargeting
///
/// A retarget is considered once [`VardiffConfig::retarget_interval`] has
/// passed or [`VardiffConfig::retarget_shares`] shares have arrived since the
/// last one, whichever is first. If the share rate at the current difficulty
/// (`rate / difficulty`) is inside the band around the target rate, nothing
/// happens; otherwise the new difficulty is `rate / target rate`, rounded to
/// two significant decimal digits (`155_221.7` becomes `160000`, `0.000351`
/// becomes `0.00035`) and clamped to `[min_difficulty, max_difficulty]`.
/// Rounding keeps the values people see short and stable, and costs at most
/// 5% of share rate, well inside the band. The result is an exact
/// [`Difficulty`], so its share target is integer arithmetic; the `f64`
/// above only ever estimates a rate and never touches work or money.
///
/// A miner whose difficulty is far too high finds no shares at all, so
/// [`Vardiff::on_tick`] also considers lowering it: it pretends a share of
/// the current difficulty arrived just now, and if even that optimistic rate
/// is below the band it retargets to it. A silent miner's difficulty falls by
/// a factor of about 30 per interval with the default settings.
///
/// # Time
///
/// Every `now` is the time since the controller was created; it should be
/// monotonic, and a `now` earlier than a previous one counts as no time
/// passing.
#[derive(Debug, Clone)]
pub struct Vardiff {
    config: VardiffConfig,
    /// The difficulty most recently assigned.
    current: Difficulty,
    /// When `current` was assigned (creation, a suggestion or a retarget).
    last_retarget: Duration,
    /// Shares since `last_retarget`.
    shares_since_retarget: u32,
    /// The first share, which starts the estimator's exposure.
    first_share: Option<Duration>,
    /// `S` as of `decayed_at`: decayed credited difficulty after the first share.
    decayed: f64,
    decayed_at: Duration,
}

/// Which way a retarget may move the difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Either,
    DownOnly,
}

impl Vardiff {
    /// A controller that starts at `start`, clamped to the configured range.
    ///
    /// Pass the pool's start difficulty, or the miner's
    /// `mining.suggest_difficulty` if it came first (see [`Vardiff::suggest`]).
    pub fn new(config: VardiffConfig, start: Difficulty) -> Result<Self, VardiffConfigError> {
        config.validate()?;
        Ok(Self {
            current: start.clamp(config.min_difficulty, config.max_difficulty),
            config,
            last_retarget: Duration::ZERO,
            shares_since_retarget: 0,
            first_share: None,
            decayed: 0.0,
            decayed_at: Duration::ZERO,
        })
    }

    /// The settings this controller runs with.
    pub fn config(&self) -> &VardiffConfig {
        &self.config
    }

    /// The difficulty most recently assigned: the one the next job carries.
    pub fn current(&self) -> Difficulty {
        self.current
    }

    /// Restarts from the miner's `mining.suggest_difficulty` (or
    /// `suggest_target`), clamped to the configured range, and returns the
    /// difficulty to send.
    ///
    /// The suggestion is a starting point, not a floor (ckpool treats it as
    /// one): a miner that suggests too much is still brought down. The
    /// hashrate estimate is kept, and the retarget clock restarts at `now`.
    pub fn suggest(&mut self, now: Duration, suggested: Difficulty) -> Difficulty {
        self.current = suggested.clamp(self.config.min_difficulty, self.config.max_difficulty);
        self.last_retarget = now;
        self.shares_since_retarget = 0;
        self.current
    }

    /// Records an accepted share credited at `credited` (the difficulty of
    /// the job it was mined for, which may still be the previous one), and
    /// returns the new difficulty if a retarget is due and the share rate is
    /// outside the band.
    pub fn on_share(&mut self, now: Duration, credited: Difficulty) -> Option<Difficulty> {
        self.record(now, credited);
        self.shares_since_retarget = self.shares_since_retarget.saturating_add(1);
        let elapsed = now.saturating_sub(self.last_retarget);
        if self.shares_since_retarget < self.config.retarget_shares
            && elapsed < self.config.retarget_interval
        {
            return None;
        }
        let rate = self.difficulty_rate(now)?;
        self.retarget(now, rate, Direction::Either)
    }

    /// Lowers the difficulty of a miner that has gone quiet. Call it every
    /// few seconds while the miner has work (a miner with no job finds
    /// nothing, and would be cut for it).
    ///
    /// At most once per [`VardiffConfig::retarget_interval`], it assumes a
    /// share of the current difficulty arrived at `now`; if even that rate is
    /// below the band, it returns the difficulty for that rate. It never
    /// raises the difficulty.
    pub fn on_tick(&mut self, now: Duration) -> Option<Difficulty> {
        if now.saturating_sub(self.last_retarget) < self.config.retarget_interval {
            return None;
        }
        // Without any share, the exposure is the time since the current
        // difficulty was assigned: the only evidence is that it found nothing.
        let since = self.first_share.unwrap_or(self.last_retarget);
        let exposure = self.exposure(since, now)?;
        let optimistic = (self.decayed_at(now) + to_f64(self.current)) / exposure;
        self.retarget(now, optimistic, Direction::DownOnly)
    }

    /// The estimated hashrate in hashes per second: the decayed difficulty
    /// rate times `2^32`. `None` until two shares have arrived.
    ///
    /// For metrics only; it is an estimate, not work.
    pub fn estimated_hashrate(&self, now: Duration) -> Option<f64> {
        self.difficulty_rate(now)
            .map(|rate| rate * HASHES_PER_DIFFICULTY)
    }

    /// Adds a share to the decayed sum; the first share only starts the clock.
    fn record(&mut self, now: Duration, credited: Difficulty) {
        if self.first_share.is_none() {
            self.first_share = Some(now);
            self.decayed = 0.0;
            self.decayed_at = now;
            return;
        }
        self.decayed = self.decayed_at(now) + to_f64(credited);
        self.decayed_at = self.decayed_at.max(now);
    }

    /// `S(now)`: the decayed sum carried forward to `now`.
    fn decayed_at(&self, now: Duration) -> f64 {
        let age = now.saturating_sub(self.decayed_at).as_secs_f64();
        self.decayed * (-age / self.config.decay_window.as_secs_f64()).exp()
    }

    /// `E`: the decayed exposure from `since` to `now`, in seconds, or `None`
    /// if no time has passed.
    fn exposure(&self, since: Duration, now: Duration) -> Option<f64> {
        let window = self.config.decay_window.as_secs_f64();
        let span = now.saturating_sub(since).as_secs_f64();
        // 1 - exp(-x), accurate for the tiny x of a fast miner's first shares.
        let exposure = -(-span / window).exp_m1() * window;
        (exposure > 0.0).then_some(exposure)
    }

    /// Accepted difficulty per second, or `None` before two shares.
    fn difficulty_rate(&self, now: Duration) -> Option<f64> {
        let exposure = self.exposure(self.first_share?, now)?;
        Some(self.decayed_at(now) / exposure)
    }

    /// Moves to the difficulty for `rate` if the share rate at the current
    /// difficulty is outside the band.
    fn retarget(&mut self, now: Duration, rate: f64, direction: Direction) -> Option<Difficulty> {
        let target = f64::from(self.config.target_shares_per_minute) / 60.0;
        let share_rate = rate / to_f64(self.current);
        let low = target * f64::from(self.config.band_low_percent) / 100.0;
        let high = target * f64::from(self.config.band_high_percent) / 100.0;
        let too_slow = share_rate < low;
        let too_fast = share_rate > high && direction == Direction::Either;
        if !too_slow && !too_fast {
            return None;
        }
        let next = round_two_digits(rate / target)
            .clamp(self.config.min_difficulty, self.config.max_difficulty);
        if next == self.current {
            // Pinned at a bound: nothing to send.
            return None;
        }
        self.current = next;
        self.last_retarget = now;
        self.shares_since_retarget = 0;
        Some(next)
    }
}

/// The difficulty as a float, for rate arithmetic only.
fn to_f64(difficulty: Difficulty) -> f64 {
    difficulty.mantissa() as f64 / 10f64.powi(difficulty.scale() as i32)
}

/// `value` rounded half away from zero to two significant decimal digits, as
/// an exact [`Difficulty`]. Zero, negative and NaN give [`Difficulty::MIN`],
/// anything too large [`Difficulty::MAX`].
fn round_two_digits(value: f64) -> Difficulty {
    if value.is_nan() || value < ROUND_FLOOR {
        return Difficulty::MIN;
    }
    if value > ROUND_CEILING {
        return Difficulty::MAX;
    }
    // value ≈ digits * 10^exponent with digits in 10..=99.
    let mut exponent = value.log10().floor() as i32 - 1;
    let mut digits = (value / 10f64.powi(exponent)).round();
    // log10 can be off by one ulp near powers of ten, and 99.5 rounds up.
    while digits >= 100.0 {
        exponent += 1;
        digits = (value / 10f64.powi(exponent)).round();
    }
    while digits < 10.0 {
        exponent -= 1;
        digits = (value / 10f64.powi(exponent)).round();
    }
    // A whole number from 10 to 99 (100 only if float noise lands on 99.5
    // exactly, which is still exact), so the cast is exact.
    let digits = digits as u64;
    if exponent >= 0 {
        10u64
            .checked_pow(exponent.unsigned_abs())
            .and_then(|scale| digits.checked_mul(scale))
            .and_then(|mantissa| Difficulty::from_integer(mantissa).ok())
            .unwrap_or(Difficulty::MAX)
    } else {
        // Only too many decimal places can fail: the value is below 10^-17.
        Difficulty::from_parts(digits, exponent.unsigned_abs()).unwrap_or(Difficulty::MIN)
    }
}

#[cfg(test)]
mod tests;
