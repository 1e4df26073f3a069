use super::*;
use proofpool_primitives::Difficulty;

fn d(s: &str) -> Difficulty {
    s.parse().unwrap()
}

fn config(vardiff: Option<VardiffConfig>) -> PoolConfig {
    let mut config = PoolConfig::new(
        Vec::new(),
        bitcoin::Network::Regtest,
        bitcoin::ScriptBuf::new(),
    );
    config.start_difficulty = d("8");
    config.min_difficulty = d("1");
    config.max_difficulty = d("1024");
    config.vardiff = vardiff;
    config
}

#[test]
fn without_vardiff_only_the_miner_moves_the_difficulty() {
    let mut t = Targeting::new(&config(None));
    assert_eq!(t.current(), d("8"));
    // However fast shares come, nothing is retargeted.
    for i in 0..200u64 {
        assert_eq!(t.on_share(Duration::from_millis(i * 10), d("8")), None);
    }
    assert_eq!(t.on_tick(Duration::from_secs(3600)), None);
    assert_eq!(t.current(), d("8"));
    // A suggestion is clamped to the pool's range.
    assert_eq!(t.suggest(Duration::from_secs(1), d("0.5")), d("1"));
    assert_eq!(t.suggest(Duration::from_secs(1), d("4096")), d("1024"));
    assert_eq!(t.suggest(Duration::from_secs(1), d("16")), d("16"));
    assert_eq!(t.current(), d("16"));
}

#[test]
fn with_vardiff_a_quiet_miner_is_cut_and_a_fast_one_raised() {
    let vardiff = VardiffConfig {
        min_difficulty: d("1"),
        max_difficulty: d("1024"),
        ..VardiffConfig::default()
    };
    let mut quiet = Targeting::new(&config(Some(vardiff)));
    // Nothing found for ten retarget intervals: the difficulty goes down.
    let cut = quiet
        .on_tick(vardiff.retarget_interval * 10)
        .expect("a silent miner is cut");
    assert!(cut < d("8"), "{cut}");
    assert_eq!(quiet.current(), cut);

    // 36 shares of difficulty 8 in 36 seconds is 60 a minute, against 18:
    // the difficulty goes up once the 36th arrives.
    let mut fast = Targeting::new(&config(Some(vardiff)));
    let raised = (1..=36u64)
        .filter_map(|i| fast.on_share(Duration::from_secs(i), d("8")))
        .last()
        .expect("a fast miner is raised");
    assert!(raised > d("8"), "{raised}");
    assert_eq!(fast.current(), raised);
}

#[test]
fn a_hashrate_asks_for_the_difficulty_of_vardiffs_share_rate() {
    // 18 shares a minute (the default): a 2^32 H/s miner finds a
    // difficulty-1 share every second, so 60/18 = 3.333… of them a share.
    let t = Targeting::new(&config(None));
    assert_eq!(t.for_hashrate(4_294_967_296.0), Some(d("3.333333333333")));
    // 60 a minute: 1e6 H/s gives 1e6 / 2^32 = 0.000232830643653869628…,
    // cut (not rounded up) to 13 significant digits.
    let per_second = VardiffConfig {
        target_shares_per_minute: 60,
        min_difficulty: d("1"),
        max_difficulty: d("1024"),
        ..VardiffConfig::default()
    };
    let t = Targeting::new(&config(Some(per_second)));
    assert_eq!(t.for_hashrate(1e6), Some(d("0.0002328306436538")));
    // 1 H/s: 1 / 2^32 = 2.3283064365386963e-10, cut to 18 decimal places.
    assert_eq!(t.for_hashrate(1.0), Some(d("0.000000000232830643")));
    // Below 10^-18, the smallest difficulty.
    assert_eq!(t.for_hashrate(1e-12), Some(Difficulty::MIN));
    // 2^52 H/s: 2^20 exactly, a whole number.
    assert_eq!(t.for_hashrate(4_503_599_627_370_496.0), Some(d("1048576")));
    for nonsense in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(t.for_hashrate(nonsense), None, "{nonsense}");
    }
}
