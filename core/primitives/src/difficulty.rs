//! Stratum share difficulty as an exact decimal.
//!
//! Miners speak difficulty as a JSON number (`512`, `0.0001`), and the pool
//! turns it into a target to check shares against. A [`Difficulty`] is the
//! decimal rational `mantissa / 10^scale`, so `0.0001` is exactly `1/10^4`
//! and converting to a target is integer arithmetic with one rounding step.

use alloy_primitives::{U256, U512};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The target of difficulty 1 ("pdiff 1"): `0xffff << 208`, Bitcoin's nBits
/// `0x1d00ffff`.
pub const DIFF1_TARGET: U256 = U256::from_limbs([0, 0, 0, 0xffff_0000]);

/// The most decimal places a [`Difficulty`] can carry.
pub const MAX_SCALE: u32 = 18;

/// `10^0 ..= 10^MAX_SCALE`.
const POW10: [u64; MAX_SCALE as usize + 1] = {
    let mut table = [1u64; MAX_SCALE as usize + 1];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Why a value is not a valid difficulty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DifficultyError {
    /// The text is empty.
    #[error("difficulty is empty")]
    Empty,
    /// The text is not a decimal number such as `512`, `0.0001` or `1e-4`.
    #[error("difficulty is not a decimal number")]
    Syntax,
    /// `NaN` or an infinity.
    #[error("difficulty is not finite")]
    NotFinite,
    /// The value is below zero.
    #[error("difficulty is negative")]
    Negative,
    /// The value is zero, which would accept every hash.
    #[error("difficulty is zero")]
    Zero,
    /// The value needs more than 18 decimal places.
    #[error("difficulty has more than 18 decimal places")]
    TooPrecise,
    /// The digits do not fit a 64-bit mantissa.
    #[error("difficulty does not fit a 64-bit decimal mantissa")]
    Overflow,
}

/// Stratum share difficulty: the target is `DIFF1_TARGET / difficulty`.
///
/// Stored as `mantissa / 10^scale` with `mantissa > 0`, `scale <= 18` and no
/// trailing zero in the mantissa when `scale > 0`. That normal form makes the
/// derived `Eq` and `Hash` agree with numeric equality; `Ord` compares values.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Difficulty {
    mantissa: u64,
    scale: u8,
}

impl Difficulty {
    /// Difficulty 1.
    pub const ONE: Self = Self {
        mantissa: 1,
        scale: 0,
    };

    /// The smallest representable difficulty, `10^-18`.
    pub const MIN: Self = Self {
        mantissa: 1,
        scale: MAX_SCALE as u8,
    };

    /// The largest representable difficulty, `u64::MAX`.
    pub const MAX: Self = Self {
        mantissa: u64::MAX,
        scale: 0,
    };

    /// A whole-number difficulty. Fails only for zero.
    pub fn from_integer(value: u64) -> Result<Self, DifficultyError> {
        Self::from_parts(value, 0)
    }

    /// The difficulty `mantissa / 10^scale`, normalized.
    pub fn from_parts(mut mantissa: u64, mut scale: u32) -> Result<Self, DifficultyError> {
        if mantissa == 0 {
            return Err(DifficultyError::Zero);
        }
        while scale > 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            scale -= 1;
        }
        if scale > MAX_SCALE {
            return Err(DifficultyError::TooPrecise);
        }
        Ok(Self {
            mantissa,
            // `scale <= MAX_SCALE` was checked above.
            scale: scale as u8,
        })
    }

    /// Converts a float that came from a JSON number.
    ///
    /// The float is printed as its shortest round-trip decimal (`0.0001`, not
    /// `0.000100000000000000004792…`) and that text is parsed, so the decimal
    /// the miner wrote is recovered exactly.
    pub fn from_f64(value: f64) -> Result<Self, DifficultyError> {
        if !value.is_finite() {
            return Err(DifficultyError::NotFinite);
        }
        if value == 0.0 {
            return Err(DifficultyError::Zero);
        }
        if value < 0.0 {
            return Err(DifficultyError::Negative);
        }
        // Display for f64 is the shortest round-trip form, never exponential.
        value.to_string().parse()
    }

    /// Like [`Difficulty::from_f64`], but a value with more than 18 decimal
    /// places is rounded *up* to 18 places instead of refused.
    ///
    /// For a miner reading `mining.set_difficulty`: proxies such as the SRI
    /// translator print a difficulty derived from a hashrate with all of an
    /// f64's digits (`0.00023283064365386963`). Rounding up asks for a target
    /// at most one part in `10^18 / difficulty` harder, so every share the
    /// miner sends still meets the target the server meant.
    pub fn from_f64_at_least(value: f64) -> Result<Self, DifficultyError> {
        match Self::from_f64(value) {
            Err(DifficultyError::TooPrecise) => {
                // Display is plain decimal; TooPrecise means digits past the 18th place.
                let text = value.to_string();
                let (int, frac) = text.split_once('.').ok_or(DifficultyError::Syntax)?;
                let int: u64 = int.parse().map_err(|_| DifficultyError::Overflow)?;
                let places: u64 = frac
                    .get(..MAX_SCALE as usize)
                    .and_then(|digits| digits.parse().ok())
                    .ok_or(DifficultyError::Syntax)?;
                let mantissa = int
                    .checked_mul(POW10[MAX_SCALE as usize])
                    .and_then(|m| m.checked_add(places))
                    .and_then(|m| m.checked_add(1))
                    .ok_or(DifficultyError::Overflow)?;
                Self::from_parts(mantissa, MAX_SCALE)
            }
            other => other,
        }
    }

    /// The decimal mantissa: the value is `mantissa() / 10^scale()`.
    pub const fn mantissa(self) -> u64 {
        self.mantissa
    }

    /// The number of decimal places (0 to 18).
    pub const fn scale(self) -> u32 {
        self.scale as u32
    }

    /// Whether the difficulty is a whole number.
    pub const fn is_integer(self) -> bool {
        self.scale == 0
    }

    /// The share target: `floor(DIFF1_TARGET * 10^scale / mantissa)`.
    ///
    /// Difficulties below about `2^-32` (`DIFF1_TARGET / U256::MAX`) would
    /// need a target above 256 bits; their target saturates at `U256::MAX`,
    /// which accepts every hash. The result is never zero.
    pub fn to_target(self) -> U256 {
        let numerator = U512::from(DIFF1_TARGET) * U512::from(POW10[self.scale as usize]);
        (numerator / U512::from(self.mantissa)).saturating_to::<U256>()
    }

    /// The expected work of one share at this difficulty, about
    /// `2^32 * difficulty`.
    pub fn to_work(self) -> crate::Work {
        crate::Work::from_target(self.to_target())
            .expect("to_target is never zero: mantissa <= u64::MAX and DIFF1_TARGET > 2^223")
    }

    /// The difficulty of a target: `DIFF1_TARGET / target`, rounded down.
    ///
    /// The value is truncated to the most decimal places (at most 18) whose
    /// mantissa still fits in 64 bits, which keeps 19 or 20 significant
    /// digits. Rounding down means `from_target(t).to_target() >= t`: the
    /// difficulty never asks for more than the target did. Out-of-range
    /// targets saturate at [`Difficulty::MAX`]: zero and targets below
    /// `DIFF1_TARGET / u64::MAX`. The smallest result, for `U256::MAX`, is
    /// about `2.3e-10`.
    pub fn from_target(target: U256) -> Self {
        if target.is_zero() {
            return Self::MAX;
        }
        let mut quotient =
            U512::from(DIFF1_TARGET) * U512::from(POW10[MAX_SCALE as usize]) / U512::from(target);
        let mut scale = MAX_SCALE;
        let ten = U512::from(10u8);
        // floor(floor(x / a) / b) = floor(x / (a * b)), so dropping one
        // decimal place at a time is the same as dividing once.
        while quotient > U512::from(u64::MAX) {
            if scale == 0 {
                return Self::MAX;
            }
            quotient /= ten;
            scale -= 1;
        }
        // quotient >= DIFF1_TARGET * 10^18 / U256::MAX > 2^27, so it is never zero.
        Self::from_parts(quotient.saturating_to::<u64>(), scale).unwrap_or(Self::MIN)
    }

    /// Limits the difficulty to `[min, max]`.
    ///
    /// Unlike [`Ord::clamp`] this never panics: if `min > max`, `min` wins.
    #[must_use]
    pub fn clamp(self, min: Self, max: Self) -> Self {
        if self > max {
            max.max(min)
        } else {
            self.max(min)
        }
    }
}

impl Ord for Difficulty {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/10^s < b/10^t  <=>  a*10^t < b*10^s; both sides are below 2^64 * 10^18 < 2^128.
        let left = u128::from(self.mantissa) * u128::from(POW10[other.scale as usize]);
        let right = u128::from(other.mantissa) * u128::from(POW10[self.scale as usize]);
        left.cmp(&right)
    }
}

impl PartialOrd for Difficulty {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Difficulty {
    /// The exact decimal, without exponent: `512`, `0.0001`, `1.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let unit = POW10[self.scale as usize];
        write!(
            f,
            "{}.{:0width$}",
            self.mantissa / unit,
            self.mantissa % unit,
            width = self.scale as usize
        )
    }
}

impl fmt::Debug for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Difficulty({self})")
    }
}

impl FromStr for Difficulty {
    type Err = DifficultyError;

    /// Parses `512`, `0.0001`, `.5`, `1e-4`, `1.5E3` or `65536.0`.
    ///
    /// Surrounding whitespace and a leading `+` are accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DifficultyError::Empty);
        }
        let (negative, unsigned) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if ["nan", "inf", "infinity"]
            .iter()
            .any(|word| unsigned.eq_ignore_ascii_case(word))
        {
            return Err(DifficultyError::NotFinite);
        }
        let parsed = parse_unsigned(unsigned);
        if negative {
            return match parsed {
                Err(DifficultyError::Syntax) => Err(DifficultyError::Syntax),
                Err(DifficultyError::Zero) => Err(DifficultyError::Zero),
                _ => Err(DifficultyError::Negative),
            };
        }
        parsed
    }
}

/// Parses `digits[.digits][(e|E)[+-]digits]` without a sign.
fn parse_unsigned(s: &str) -> Result<Difficulty, DifficultyError> {
    let (number, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], parse_exponent(&s[at + 1..])?),
        None => (s, 0),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(DifficultyError::Syntax);
    }

    let digits = int.bytes().chain(frac.bytes());
    let Some(first) = digits.clone().position(|b| b != b'0') else {
        return Err(DifficultyError::Zero);
    };
    let trailing = digits.clone().rev().take_while(|&b| b == b'0').count();
    let count = int.len() + frac.len() - first - trailing;

    // value = significant digits * 10^exp10; lengths are bounded by the input size.
    let exp10 = exponent
        .saturating_sub(frac.len() as i64)
        .saturating_add(trailing as i64);
    if exp10 < -i64::from(MAX_SCALE) {
        return Err(DifficultyError::TooPrecise);
    }

    let mut mantissa: u64 = 0;
    for b in digits.skip(first).take(count) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or(DifficultyError::Overflow)?;
    }
    if exp10 >= 0 {
        let factor = u32::try_from(exp10)
            .ok()
            .and_then(|e| 10u64.checked_pow(e))
            .ok_or(DifficultyError::Overflow)?;
        let mantissa = mantissa
            .checked_mul(factor)
            .ok_or(DifficultyError::Overflow)?;
        Difficulty::from_parts(mantissa, 0)
    } else {
        // -exp10 <= MAX_SCALE was checked above.
        Difficulty::from_parts(mantissa, exp10.unsigned_abs() as u32)
    }
}

/// Parses an exponent, saturating far outside any representable range.
fn parse_exponent(s: &str) -> Result<i64, DifficultyError> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DifficultyError::Syntax);
    }
    let magnitude = digits.bytes().fold(0i64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(b - b'0'))
            .min(1 << 40)
    });
    Ok(if negative { -magnitude } else { magnitude })
}

impl<'de> serde::Deserialize<'de> for Difficulty {
    /// Accepts a JSON/TOML number (via [`Difficulty::from_f64`] for floats) or
    /// a decimal string, which is exact at any precision.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Difficulty;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive difficulty as a number or decimal string")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Difficulty, E> {
                Difficulty::from_integer(v).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Difficulty, E> {
                if v < 0 {
                    return Err(E::custom(DifficultyError::Negative));
                }
                Difficulty::from_integer(v.unsigned_abs()).map_err(E::custom)
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Difficulty, E> {
                Difficulty::from_f64(v).map_err(E::custom)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Difficulty, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests;
