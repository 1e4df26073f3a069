//! The controller against simulated miners from 1 kH/s to 200 TH/s, plus
//! its edges: clamping, suggestions, silent miners, rounding and config errors.

use super::*;

const SEC: Duration = Duration::from_secs(1);
const HOUR: f64 = 3600.0;

/// From a 1 kH/s toy through NerdMiner-class (50 and 500 kH/s) and a Bitaxe
/// to a 100 TH/s rig and a 200 TH/s farm, with the most retargets each may
/// need from difficulty 1. Slow miners start silent and are cut on ticks, a
/// factor of about 30 per 120 s; fast ones flood difficulty 1 and are raised
/// after 36 shares.
const HASHRATES: [(&str, f64, usize); 6] = [
    ("1 kH/s", 1e3, 6),
    ("50 kH/s", 50e3, 6),
    ("500 kH/s", 500e3, 6),
    ("1.2 TH/s", 1.2e12, 2),
    ("100 TH/s", 100e12, 2),
    ("200 TH/s", 200e12, 2),
];

/// Seeds per scenario: every bound below holds for each of them.
const SEEDS: u64 = 8;

fn diff(text: &str) -> Difficulty {
    text.parse().unwrap()
}

/// splitmix64: a tiny deterministic generator, so no dependency is needed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Seconds to the next event of a Poisson process with `rate` per second.
    fn exponential(&mut self, rate: f64) -> f64 {
        -self.unit().ln() / rate
    }
}

/// How the simulated pool and miner behave around the controller.
#[derive(Clone, Copy)]
struct Scenario {
    config: VardiffConfig,
    hashrate: f64,
    start: Difficulty,
    /// New difficulties take effect with the next job, sent this often;
    /// zero sends a job at once.
    job_interval: f64,
    /// The session calls `on_tick` this often.
    tick_interval: f64,
    /// Simulated time, in seconds.
    horizon: f64,
}

impl Scenario {
    fn new(hashrate: f64, start: Difficulty) -> Self {
        Self {
            config: VardiffConfig::default(),
            hashrate,
            start,
            job_interval: 30.0,
            tick_interval: 10.0,
            horizon: 25.0 * HOUR,
        }
    }

    /// Shares per minute a difficulty gives this miner, on average.
    fn shares_per_minute(&self, difficulty: Difficulty) -> f64 {
        self.hashrate / (to_f64(difficulty) * HASHES_PER_DIFFICULTY) * 60.0
    }

    /// Whether `difficulty` is as good as the controller can do: inside the
    /// band, or pinned at the bound the band lies beyond.
    fn settled(&self, difficulty: Difficulty) -> bool {
        let rate = self.shares_per_minute(difficulty);
        let target = f64::from(self.config.target_shares_per_minute);
        let low = target * f64::from(self.config.band_low_percent) / 100.0;
        let high = target * f64::from(self.config.band_high_percent) / 100.0;
        (low..=high).contains(&rate)
            || (rate < low && difficulty == self.config.min_difficulty)
            || (rate > high && difficulty == self.config.max_difficulty)
    }

    fn run(&self, seed: u64) -> Run {
        let mut rng = Rng(seed);
        let mut vardiff = Vardiff::new(self.config, self.start).unwrap();
        let mut working = vardiff.current();
        let share_rate = |d: Difficulty| self.hashrate / (to_f64(d) * HASHES_PER_DIFFICULTY);
        let mut now = 0.0;
        let mut next_share = rng.exponential(share_rate(working));
        let mut next_tick = self.tick_interval;
        let mut next_job = if self.job_interval > 0.0 {
            self.job_interval
        } else {
            f64::INFINITY
        };
        let mut run = Run {
            retargets: Vec::new(),
            shares: 0,
            hashrate_estimate: None,
            end: 0.0,
        };
        loop {
            let event = next_share.min(next_tick).min(next_job);
            if event > self.horizon {
                break;
            }
            now = event;
            let at = Duration::from_secs_f64(now);
            let retarget = if event == next_share {
                run.shares += 1;
                next_share = now + rng.exponential(share_rate(working));
                vardiff.on_share(at, working)
            } else if event == next_tick {
                next_tick += self.tick_interval;
                vardiff.on_tick(at)
            } else {
                next_job += self.job_interval;
                if working != vardiff.current() {
                    working = vardiff.current();
                    // Memoryless: the wait can be redrawn at the new rate.
                    next_share = now + rng.exponential(share_rate(working));
                }
                None
            };
            if let Some(difficulty) = retarget {
                assert_eq!(difficulty, vardiff.current());
                run.retargets.push((now, difficulty));
                if self.job_interval == 0.0 {
                    working = difficulty;
                    next_share = now + rng.exponential(share_rate(working));
                }
            }
        }
        run.hashrate_estimate = vardiff.estimated_hashrate(Duration::from_secs_f64(now));
        run.end = now;
        run
    }
}

struct Run {
    /// Every retarget: seconds since start and the new difficulty.
    retargets: Vec<(f64, Difficulty)>,
    shares: u64,
    hashrate_estimate: Option<f64>,
    /// The time of the last event.
    end: f64,
}

/// What a run shows about convergence and stability.
#[derive(Debug)]
struct Verdict {
    /// Retargets until the assigned difficulty first settled.
    to_converge: usize,
    /// Seconds until then.
    converged_at: f64,
    /// Retargets after that.
    after: usize,
    /// The share of the time after that spent settled.
    settled_fraction: f64,
}

impl Run {
    fn verdict(&self, scenario: &Scenario) -> Verdict {
        let config = &scenario.config;
        let start = scenario
            .start
            .clamp(config.min_difficulty, config.max_difficulty);
        let assigned: Vec<(f64, Difficulty)> = std::iter::once((0.0, start))
            .chain(self.retargets.iter().copied())
            .collect();
        let first = assigned
            .iter()
            .position(|&(_, d)| scenario.settled(d))
            .unwrap_or_else(|| {
                panic!(
                    "{} H/s from {} never settled: {:?}",
                    scenario.hashrate, scenario.start, self.retargets
                )
            });
        let converged_at = assigned[first].0;
        let mut settled_time = 0.0;
        for (i, &(from, difficulty)) in assigned.iter().enumerate().skip(first) {
            let until = assigned.get(i + 1).map_or(self.end, |&(at, _)| at);
            if scenario.settled(difficulty) {
                settled_time += until - from;
            }
        }
        Verdict {
            to_converge: first,
            converged_at,
            after: assigned.len() - 1 - first,
            settled_fraction: settled_time / (self.end - converged_at),
        }
    }
}

/// Runs every seed and returns the worst case of each measure. Once settled,
/// a miner must stay settled at least 97% of the time: noise may push it out
/// of the band briefly, and the next retarget brings it back.
fn worst_case(scenario: &Scenario) -> (usize, f64, usize) {
    let mut worst = (0, 0.0f64, 0);
    for seed in 0..SEEDS {
        let run = scenario.run(seed);
        let verdict = run.verdict(scenario);
        assert!(
            verdict.settled_fraction >= 0.97,
            "{} H/s seed {seed} settled only {:.3} of the time: {:?}",
            scenario.hashrate,
            verdict.settled_fraction,
            run.retargets
        );
        worst.0 = worst.0.max(verdict.to_converge);
        worst.1 = worst.1.max(verdict.converged_at);
        worst.2 = worst.2.max(verdict.after);
    }
    worst
}

#[test]
fn converges_from_difficulty_one_and_stays() {
    for (name, hashrate, bound) in HASHRATES {
        let scenario = Scenario::new(hashrate, Difficulty::ONE);
        let (retargets, seconds, after) = worst_case(&scenario);
        println!(
            "{name:>9} from 1: settles after {retargets} retargets ({seconds:.1} s), \
             {after} more in the next 25 h (worst of {SEEDS} seeds)"
        );
        assert!(
            retargets <= bound,
            "{name}: {retargets} retargets to converge"
        );
        assert!(seconds <= 1800.0, "{name}: {seconds} s to converge");
        assert!(after <= 3, "{name}: {after} retargets after converging");
    }
}

#[test]
fn converges_from_a_suggested_difficulty() {
    // Plausible suggestions: about right for a small miner and a Bitaxe,
    // 65536 for big rigs (1.2x and 2.4x too low).
    let cases = [
        ("500 kH/s", 500e3, "0.0005", 0),
        ("1.2 TH/s", 1.2e12, "1000", 0),
        ("100 TH/s", 100e12, "65536", 3),
        ("200 TH/s", 200e12, "65536", 3),
        // A suggestion far too high still comes down.
        ("50 kH/s", 50e3, "1000", 6),
    ];
    for (name, hashrate, suggested, bound) in cases {
        let scenario = Scenario::new(hashrate, diff(suggested));
        let (retargets, seconds, after) = worst_case(&scenario);
        println!(
            "{name:>9} from {suggested}: settles after {retargets} retargets ({seconds:.1} s), \
             {after} more in the next 25 h"
        );
        assert!(
            retargets <= bound,
            "{name}: {retargets} retargets from {suggested}"
        );
        assert!(after <= 3, "{name}: {after} retargets after converging");
    }
}

#[test]
fn a_suggestion_in_the_band_is_kept() {
    // 1.2 TH/s at 1000 gives 16.8 shares/min: nothing to do.
    let scenario = Scenario::new(1.2e12, diff("1000"));
    for seed in 0..SEEDS {
        let run = scenario.run(seed);
        assert!(run.retargets.is_empty(), "seed {seed}: {:?}", run.retargets);
    }
}

#[test]
fn converges_with_new_difficulty_applied_at_once() {
    // The other extreme from 30 s jobs: the miner switches immediately.
    for (name, hashrate, bound) in HASHRATES {
        let scenario = Scenario {
            job_interval: 0.0,
            horizon: 6.0 * HOUR,
            ..Scenario::new(hashrate, Difficulty::ONE)
        };
        let (retargets, _, after) = worst_case(&scenario);
        assert!(
            retargets <= bound,
            "{name}: {retargets} retargets to converge"
        );
        assert!(after <= 3, "{name}: {after} retargets after converging");
    }
}

#[test]
fn estimates_the_hashrate() {
    for (name, hashrate, _) in HASHRATES.into_iter().skip(1) {
        let scenario = Scenario::new(hashrate, Difficulty::ONE);
        let estimate = scenario.run(7).hashrate_estimate.unwrap();
        let error = (estimate / hashrate - 1.0).abs();
        // About 90 shares of evidence in a 5-minute window: 7.5% standard error.
        assert!(
            error < 0.3,
            "{name}: estimated {estimate:e}, off by {error:.3}"
        );
    }
}

#[test]
fn a_tiny_miner_goes_to_the_minimum_and_stays_quiet() {
    // 1 kH/s gives 1.4 shares/min even at 0.00001: the band is out of reach.
    let scenario = Scenario::new(1e3, Difficulty::ONE);
    let min = diff("0.00001");
    for seed in 0..SEEDS {
        let run = scenario.run(seed);
        let &(_, last) = run.retargets.last().unwrap();
        assert_eq!(last, min, "seed {seed}");
        assert!(run.retargets.len() <= 5, "seed {seed}: {:?}", run.retargets);
        assert!(run.shares > 1000, "seed {seed}: {} shares", run.shares);
    }
}

#[test]
fn a_lower_minimum_lets_a_tiny_miner_reach_the_band() {
    let config = VardiffConfig {
        min_difficulty: diff("0.0000001"),
        ..VardiffConfig::default()
    };
    let scenario = Scenario {
        config,
        ..Scenario::new(1e3, Difficulty::ONE)
    };
    let (retargets, _, after) = worst_case(&scenario);
    assert!(retargets <= 6, "{retargets} retargets to converge");
    assert!(after <= 3, "{after} retargets after converging");
}

#[test]
fn a_huge_miner_is_held_at_the_maximum() {
    let config = VardiffConfig {
        max_difficulty: diff("10000"),
        ..VardiffConfig::default()
    };
    let scenario = Scenario {
        config,
        job_interval: 0.0,
        horizon: HOUR,
        ..Scenario::new(200e12, Difficulty::ONE)
    };
    for seed in 0..SEEDS {
        let run = scenario.run(seed);
        // Straight to the cap, and no further messages once there.
        assert_eq!(run.retargets.len(), 1, "seed {seed}: {:?}", run.retargets);
        assert_eq!(run.retargets[0].1, diff("10000"));
    }
}

#[test]
fn start_and_suggestions_are_clamped() {
    let config = VardiffConfig {
        min_difficulty: diff("0.00001"),
        max_difficulty: diff("5000"),
        ..VardiffConfig::default()
    };
    let vardiff = Vardiff::new(config, diff("0.000000001")).unwrap();
    assert_eq!(vardiff.current(), diff("0.00001"));
    let mut vardiff = Vardiff::new(config, diff("1000000")).unwrap();
    assert_eq!(vardiff.current(), diff("5000"));

    assert_eq!(vardiff.suggest(SEC, diff("0.5")), diff("0.5"));
    assert_eq!(vardiff.current(), diff("0.5"));
    assert_eq!(vardiff.suggest(SEC, diff("0.000001")), diff("0.00001"));
    assert_eq!(vardiff.suggest(SEC, diff("99999")), diff("5000"));
}

#[test]
fn a_suggestion_restarts_the_retarget_clock() {
    let mut vardiff = Vardiff::new(VardiffConfig::default(), Difficulty::ONE).unwrap();
    assert_eq!(vardiff.suggest(100 * SEC, diff("2000")), diff("2000"));
    // Silent since the suggestion, but the interval has not passed.
    assert_eq!(vardiff.on_tick(200 * SEC), None);
    assert!(vardiff.on_tick(220 * SEC).is_some());
}

#[test]
fn a_silent_miner_is_lowered_on_tick() {
    let config = VardiffConfig::default();
    let mut vardiff = Vardiff::new(config, diff("1000")).unwrap();
    // Nothing before the interval.
    assert_eq!(vardiff.on_tick(SEC), None);
    assert_eq!(vardiff.on_tick(119 * SEC), None);
    // At 120 s the optimistic rate is one share of 1000 over the decayed
    // exposure 300 * (1 - e^-0.4) = 98.9 s: 10.1/s, so 1000 / 29.7 = 33.7.
    let first = vardiff.on_tick(120 * SEC).unwrap();
    assert_eq!(first, diff("34"));
    assert_eq!(vardiff.current(), first);
    // The clock restarted, so the next cut waits another interval.
    assert_eq!(vardiff.on_tick(200 * SEC), None);
    let second = vardiff.on_tick(240 * SEC).unwrap();
    assert!(second < first);
    // Down to the minimum, then nothing more to send.
    let mut now = 240;
    while vardiff.current() > config.min_difficulty {
        now += 120;
        assert!(vardiff.on_tick(now * SEC).is_some());
        assert!(now < 2000, "stuck at {}", vardiff.current());
    }
    assert_eq!(vardiff.on_tick((now + 120) * SEC), None);
    assert_eq!(vardiff.on_tick((now + 10_000) * SEC), None);
}

#[test]
fn ticks_leave_a_miner_in_the_band_alone() {
    // 18 shares/min exactly at difficulty 100, one every 10/3 s.
    let mut vardiff = Vardiff::new(VardiffConfig::default(), diff("100")).unwrap();
    let mut now = Duration::ZERO;
    for _ in 0..2000 {
        now += Duration::from_millis(3333);
        assert_eq!(vardiff.on_share(now, diff("100")), None);
        assert_eq!(vardiff.on_tick(now + SEC), None);
    }
    let hashrate = vardiff.estimated_hashrate(now).unwrap();
    let expected = 100.0 * HASHES_PER_DIFFICULTY * 0.3;
    assert!((hashrate / expected - 1.0).abs() < 0.01, "{hashrate:e}");
}

#[test]
fn retargets_wait_for_the_interval_or_the_share_count() {
    let config = VardiffConfig {
        retarget_shares: 10,
        ..VardiffConfig::default()
    };
    // One share a second at difficulty 1: 60/min, far above the band.
    let mut vardiff = Vardiff::new(config, Difficulty::ONE).unwrap();
    for second in 1..10 {
        assert_eq!(vardiff.on_share(second * SEC, Difficulty::ONE), None);
    }
    // The tenth share triggers it: 1 diff/s over 0.3 shares/s.
    assert_eq!(
        vardiff.on_share(10 * SEC, Difficulty::ONE),
        Some(diff("3.3"))
    );

    // Slow shares: the interval triggers it instead.
    let mut vardiff = Vardiff::new(config, Difficulty::ONE).unwrap();
    assert_eq!(vardiff.on_share(SEC, Difficulty::ONE), None);
    assert_eq!(vardiff.on_share(60 * SEC, Difficulty::ONE), None);
    assert_eq!(vardiff.on_share(119 * SEC, Difficulty::ONE), None);
    let lowered = vardiff.on_share(121 * SEC, Difficulty::ONE).unwrap();
    assert!(lowered < Difficulty::ONE, "{lowered}");
}

#[test]
fn the_estimate_ignores_a_difficulty_change() {
    // Credited difficulty, not share count: 0.3 shares/s at 10 and then
    // 0.03 shares/s at 100 is the same hashrate.
    // Both are read half-way between shares: right after one, the estimate
    // holds all of it, which is 11% of the window's worth at 100.
    let mut vardiff = Vardiff::new(VardiffConfig::default(), diff("10")).unwrap();
    let mut now = Duration::ZERO;
    let step = Duration::from_millis(3333);
    for _ in 0..300 {
        now += step;
        vardiff.on_share(now, diff("10"));
    }
    let before = vardiff.estimated_hashrate(now + step / 2).unwrap();
    let step = step * 10;
    for _ in 0..30 {
        now += step;
        vardiff.on_share(now, diff("100"));
    }
    let after = vardiff.estimated_hashrate(now + step / 2).unwrap();
    assert!(
        (after / before - 1.0).abs() < 0.02,
        "{before:e} -> {after:e}"
    );
}

#[test]
fn no_estimate_before_two_shares() {
    let mut vardiff = Vardiff::new(VardiffConfig::default(), Difficulty::ONE).unwrap();
    assert_eq!(vardiff.estimated_hashrate(10 * SEC), None);
    assert_eq!(vardiff.on_share(SEC, Difficulty::ONE), None);
    assert_eq!(vardiff.estimated_hashrate(10 * SEC), Some(0.0));
    assert_eq!(vardiff.estimated_hashrate(SEC), None);
}

#[test]
fn time_running_backwards_is_harmless() {
    let mut vardiff = Vardiff::new(VardiffConfig::default(), Difficulty::ONE).unwrap();
    for second in (0..200).rev() {
        vardiff.on_share(second * SEC, Difficulty::ONE);
        vardiff.on_tick(second * SEC);
    }
    assert_eq!(vardiff.estimated_hashrate(Duration::ZERO), None);
    assert!(vardiff.current() >= VardiffConfig::default().min_difficulty);
}

#[test]
fn rounds_to_two_significant_digits() {
    let cases = [
        (155_221.7, "160000"),
        (154_999.0, "150000"),
        (931.3, "930"),
        (99.5, "100"),
        (99.49, "99"),
        (10.0, "10"),
        (9.96, "10"),
        (3.333, "3.3"),
        (1.0, "1"),
        (0.000351, "0.00035"),
        (0.000344, "0.00034"),
        (0.00001, "0.00001"),
        (6.0e-5, "0.00006"),
        (1e15, "1000000000000000"),
    ];
    for (value, expected) in cases {
        let rounded = round_two_digits(value);
        assert_eq!(rounded, diff(expected), "{value}");
        // Two significant digits, so exact and short on the wire.
        let mut mantissa = rounded.mantissa();
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
        }
        assert!(mantissa < 100, "{value} -> {rounded}");
    }
    // Every power of ten, despite log10 rounding.
    for exponent in -17..19 {
        let value = 10f64.powi(exponent);
        assert_eq!(round_two_digits(value), diff(&format!("1e{exponent}")));
    }
}

#[test]
fn rounding_saturates() {
    assert_eq!(round_two_digits(0.0), Difficulty::MIN);
    assert_eq!(round_two_digits(-1.0), Difficulty::MIN);
    assert_eq!(round_two_digits(f64::NAN), Difficulty::MIN);
    assert_eq!(round_two_digits(1e-30), Difficulty::MIN);
    assert_eq!(round_two_digits(1e25), Difficulty::MAX);
    assert_eq!(round_two_digits(f64::INFINITY), Difficulty::MAX);
    // Above u64::MAX once rounded.
    assert_eq!(round_two_digits(1.9e19), Difficulty::MAX);
}

#[test]
fn fractional_difficulties_have_exact_targets() {
    use proofpool_primitives::{DIFF1_TARGET, U256};
    let rounded = round_two_digits(0.000_351);
    assert_eq!(
        rounded.to_target(),
        DIFF1_TARGET * U256::from(100_000u64) / U256::from(35u64)
    );
}

#[test]
fn default_config_is_valid() {
    let config = VardiffConfig::default();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.target_shares_per_minute, 18);
    assert_eq!(config.min_difficulty, diff("0.00001"));
}

#[test]
fn invalid_configs_are_rejected() {
    let base = VardiffConfig::default();
    let cases = [
        (
            VardiffConfig {
                target_shares_per_minute: 0,
                ..base
            },
            VardiffConfigError::ZeroTargetRate,
        ),
        (
            VardiffConfig {
                band_low_percent: 100,
                ..base
            },
            VardiffConfigError::BandExcludesTarget {
                low_percent: 100,
                high_percent: 133,
            },
        ),
        (
            VardiffConfig {
                band_low_percent: 0,
                ..base
            },
            VardiffConfigError::BandExcludesTarget {
                low_percent: 0,
                high_percent: 133,
            },
        ),
        (
            VardiffConfig {
                band_high_percent: 100,
                ..base
            },
            VardiffConfigError::BandExcludesTarget {
                low_percent: 50,
                high_percent: 100,
            },
        ),
        (
            VardiffConfig {
                retarget_interval: Duration::ZERO,
                ..base
            },
            VardiffConfigError::ZeroRetargetInterval,
        ),
        (
            VardiffConfig {
                retarget_shares: 0,
                ..base
            },
            VardiffConfigError::ZeroRetargetShares,
        ),
        (
            VardiffConfig {
                decay_window: Duration::ZERO,
                ..base
            },
            VardiffConfigError::ZeroDecayWindow,
        ),
        (
            VardiffConfig {
                min_difficulty: diff("2"),
                max_difficulty: diff("1"),
                ..base
            },
            VardiffConfigError::MinAboveMax {
                min: diff("2"),
                max: diff("1"),
            },
        ),
    ];
    for (config, error) in cases {
        assert_eq!(config.validate(), Err(error.clone()));
        assert_eq!(Vardiff::new(config, Difficulty::ONE).unwrap_err(), error);
    }
    assert_eq!(
        VardiffConfigError::MinAboveMax {
            min: diff("2"),
            max: diff("1.5"),
        }
        .to_string(),
        "min difficulty 2 is above max difficulty 1.5"
    );
}
