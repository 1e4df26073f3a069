use super::*;
use crate::Work;
use proptest::prelude::*;

fn d(s: &str) -> Difficulty {
    s.parse().unwrap()
}

#[test]
fn diff1_target_is_pdiff_one() {
    assert_eq!(DIFF1_TARGET, U256::from(0xffffu64) << 208);
    assert_eq!(Difficulty::ONE.to_target(), DIFF1_TARGET);
    assert_eq!(
        format!("{DIFF1_TARGET:064x}"),
        "00000000ffff0000000000000000000000000000000000000000000000000000"
    );
}

#[test]
fn parses_the_forms_miners_send() {
    assert_eq!(d("1"), Difficulty::ONE);
    assert_eq!(d("512"), Difficulty::from_integer(512).unwrap());
    assert_eq!(d("0.0001"), Difficulty::from_parts(1, 4).unwrap());
    assert_eq!(d("1e-4"), d("0.0001"));
    assert_eq!(d("1.5E3"), Difficulty::from_integer(1500).unwrap());
    assert_eq!(d("65536.0"), Difficulty::from_integer(65536).unwrap());
    assert_eq!(d(".5"), Difficulty::from_parts(5, 1).unwrap());
    assert_eq!(d("5."), Difficulty::from_integer(5).unwrap());
    assert_eq!(d("+2"), Difficulty::from_integer(2).unwrap());
    assert_eq!(d(" 0.00001 "), Difficulty::from_parts(1, 5).unwrap());
    assert_eq!(d("0.000100000000000000000000"), d("0.0001"));
    assert_eq!(d("00012.3400e+2"), Difficulty::from_integer(1234).unwrap());
    assert_eq!(d("1e-18"), Difficulty::MIN);
    assert_eq!(d("18446744073709551615"), Difficulty::MAX);
    assert_eq!(d("1844674407370955161.5e1"), Difficulty::MAX);
}

#[test]
fn rejects_bad_text_with_a_reason() {
    use DifficultyError::*;
    let cases = [
        ("", Empty),
        ("  ", Empty),
        ("abc", Syntax),
        (".", Syntax),
        ("1.2.3", Syntax),
        ("1e", Syntax),
        ("e5", Syntax),
        ("0x10", Syntax),
        ("1_000", Syntax),
        ("--1", Syntax),
        ("-", Syntax),
        ("NaN", NotFinite),
        ("-inf", NotFinite),
        ("Infinity", NotFinite),
        ("-1", Negative),
        ("-0.0001", Negative),
        ("0", Zero),
        ("0.000", Zero),
        ("-0", Zero),
        ("0e99999999999999999999", Zero),
        ("1e-19", TooPrecise),
        ("0.0000000000000000001", TooPrecise),
        ("1.0000000000000000001", TooPrecise),
        ("1e-99999999999999999999", TooPrecise),
        ("18446744073709551616", Overflow),
        ("1e20", Overflow),
        ("1e99999999999999999999", Overflow),
        ("123456789012345678901.5", Overflow),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Difficulty>(), Err(want), "{text:?}");
    }
}

#[test]
fn from_f64_at_least_rounds_only_what_cannot_be_written_up() {
    // 1e6 H/s at one share a second, as the SRI translator prints it:
    // 1e6 / 2^32 = 0.000232830643653869628906..., whose shortest f64 text
    // has 20 places; the 18th place goes from 6 (…653869|63) up to 7.
    let translator = 1e6 / 4_294_967_296.0;
    assert_eq!(translator.to_string(), "0.00023283064365386963");
    assert_eq!(
        Difficulty::from_f64_at_least(translator).unwrap(),
        d("0.000232830643653870")
    );
    // Below 10^-18 the smallest difficulty is the ceiling.
    assert_eq!(
        Difficulty::from_f64_at_least(1e-30).unwrap(),
        Difficulty::MIN
    );
    // Anything from_f64 reads exactly, or refuses for another reason, is unchanged.
    assert_eq!(Difficulty::from_f64_at_least(0.0001).unwrap(), d("0.0001"));
    assert_eq!(
        Difficulty::from_f64_at_least(0.0),
        Err(DifficultyError::Zero)
    );
    assert_eq!(
        Difficulty::from_f64_at_least(1e300),
        Err(DifficultyError::Overflow)
    );
}

#[test]
fn from_f64_recovers_the_written_decimal() {
    assert_eq!(Difficulty::from_f64(0.0001).unwrap(), d("0.0001"));
    assert_eq!(Difficulty::from_f64(0.00001).unwrap(), d("0.00001"));
    assert_eq!(Difficulty::from_f64(1e-4).unwrap(), d("0.0001"));
    assert_eq!(Difficulty::from_f64(512.0).unwrap(), d("512"));
    assert_eq!(
        Difficulty::from_f64(0.1 + 0.2).unwrap(),
        d("0.30000000000000004")
    );
    assert_eq!(Difficulty::from_f64(0.0), Err(DifficultyError::Zero));
    assert_eq!(Difficulty::from_f64(-0.0), Err(DifficultyError::Zero));
    assert_eq!(Difficulty::from_f64(-1.0), Err(DifficultyError::Negative));
    assert_eq!(
        Difficulty::from_f64(f64::NAN),
        Err(DifficultyError::NotFinite)
    );
    assert_eq!(
        Difficulty::from_f64(f64::INFINITY),
        Err(DifficultyError::NotFinite)
    );
    assert_eq!(Difficulty::from_f64(1e300), Err(DifficultyError::Overflow));
    assert_eq!(
        Difficulty::from_f64(1e-30),
        Err(DifficultyError::TooPrecise)
    );
}

#[test]
fn displays_exactly() {
    assert_eq!(d("0.0001").to_string(), "0.0001");
    assert_eq!(d("1e-5").to_string(), "0.00001");
    assert_eq!(d("512").to_string(), "512");
    assert_eq!(d("1.5").to_string(), "1.5");
    assert_eq!(d("1234.000567").to_string(), "1234.000567");
    assert_eq!(Difficulty::MIN.to_string(), "0.000000000000000001");
    assert_eq!(format!("{:?}", d("0.25")), "Difficulty(0.25)");
}

#[test]
fn normal_form_makes_eq_numeric() {
    assert_eq!(Difficulty::from_parts(1000, 3).unwrap(), Difficulty::ONE);
    assert_eq!(Difficulty::from_parts(10, 19).unwrap(), Difficulty::MIN);
    assert_eq!(
        Difficulty::from_parts(1, 19),
        Err(DifficultyError::TooPrecise)
    );
    assert_eq!(Difficulty::from_parts(0, 3), Err(DifficultyError::Zero));
    assert_eq!(Difficulty::from_integer(0), Err(DifficultyError::Zero));
    let x = Difficulty::from_parts(12_300, 4).unwrap();
    assert_eq!((x.mantissa(), x.scale(), x.is_integer()), (123, 2, false));
}

#[test]
fn orders_by_value() {
    assert!(d("0.0001") < d("0.001"));
    assert!(d("0.5") < Difficulty::ONE);
    assert!(d("1.5") > Difficulty::ONE);
    assert!(Difficulty::MIN < d("0.0001"));
    assert!(Difficulty::MAX > d("18446744073709551614"));
    assert_eq!(d("2").cmp(&d("2.0")), Ordering::Equal);
}

#[test]
fn clamp_never_panics() {
    let (lo, hi) = (d("0.001"), d("1000"));
    assert_eq!(d("0.0001").clamp(lo, hi), lo);
    assert_eq!(d("5000").clamp(lo, hi), hi);
    assert_eq!(d("7").clamp(lo, hi), d("7"));
    assert_eq!(d("7").clamp(hi, lo), hi);
}

#[test]
fn targets() {
    assert_eq!(d("2").to_target(), DIFF1_TARGET / U256::from(2u8));
    assert_eq!(d("0.5").to_target(), DIFF1_TARGET * U256::from(2u8));
    assert_eq!(
        d("0.0001").to_target(),
        DIFF1_TARGET * U256::from(10_000u32)
    );
    // Below about 2^-32 the target would exceed 256 bits.
    assert_eq!(d("1e-10").to_target(), U256::MAX);
    assert_eq!(Difficulty::MIN.to_target(), U256::MAX);
    assert!(d("1e-9").to_target() < U256::MAX);
    assert!(!Difficulty::MAX.to_target().is_zero());
}

#[test]
fn work_is_about_two_to_the_32_times_difficulty() {
    let two32 = U256::from(1u64 << 32);
    for (text, expected) in [
        ("1", two32),
        ("1024", two32 * U256::from(1024u32)),
        ("0.0001", two32 / U256::from(10_000u32)),
    ] {
        let work = Work::from_target(d(text).to_target()).unwrap().to_u256();
        assert_eq!(work, d(text).to_work().to_u256());
        // DIFF1_TARGET is 2^224 * (1 - 2^-16), so work exceeds 2^32 * d by about 1/65536.
        let diff = work.abs_diff(expected);
        assert!(
            diff <= expected / U256::from(60_000u32) + U256::from(1u8),
            "{text}: {work}"
        );
        assert!(work >= expected, "{text}: {work}");
    }
    assert_eq!(d("1").to_work().to_u256(), U256::from(4_295_032_833u64));
}

#[test]
fn from_target_inverts_to_target() {
    assert_eq!(Difficulty::from_target(DIFF1_TARGET), Difficulty::ONE);
    for text in ["0.0001", "0.00001", "512", "1.5", "65536", "0.001"] {
        assert_eq!(
            Difficulty::from_target(d(text).to_target()),
            d(text),
            "{text}"
        );
    }
    assert_eq!(Difficulty::from_target(U256::ZERO), Difficulty::MAX);
    assert_eq!(Difficulty::from_target(U256::from(1u8)), Difficulty::MAX);
    assert_eq!(Difficulty::from_target(U256::MAX), d("0.00000000023282709"));
    // DIFF1 / 3 = 0.333…: truncated, with as many places as fit.
    assert_eq!(
        Difficulty::from_target(DIFF1_TARGET * U256::from(3u8)),
        d("0.333333333333333333")
    );
}

#[test]
fn deserializes_numbers_and_strings() {
    use serde::de::value::{Error, F64Deserializer, I64Deserializer, StrDeserializer};
    use serde::de::{Deserialize, IntoDeserializer};
    let f: F64Deserializer<Error> = 0.0001f64.into_deserializer();
    assert_eq!(Difficulty::deserialize(f).unwrap(), d("0.0001"));
    let s: StrDeserializer<Error> = "1e-5".into_deserializer();
    assert_eq!(Difficulty::deserialize(s).unwrap(), d("0.00001"));
    let i: I64Deserializer<Error> = (-3i64).into_deserializer();
    assert!(Difficulty::deserialize(i).is_err());
    let i: I64Deserializer<Error> = 3i64.into_deserializer();
    assert_eq!(Difficulty::deserialize(i).unwrap(), d("3"));
}

fn any_difficulty() -> impl Strategy<Value = Difficulty> {
    (1u64.., 0u32..=MAX_SCALE).prop_map(|(m, s)| Difficulty::from_parts(m, s).unwrap())
}

proptest! {
    #[test]
    fn display_round_trips(x in any_difficulty()) {
        prop_assert_eq!(x.to_string().parse::<Difficulty>(), Ok(x));
    }

    #[test]
    fn to_target_is_non_increasing(a in any_difficulty(), b in any_difficulty()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(lo.to_target() >= hi.to_target());
    }

    #[test]
    fn integer_target_is_exact_division(n in 1u64..) {
        let x = Difficulty::from_integer(n).unwrap();
        prop_assert_eq!(x.to_target(), DIFF1_TARGET / U256::from(n));
    }

    #[test]
    fn ord_matches_exact_rationals(a in any_difficulty(), b in any_difficulty()) {
        // Compare a.m * 10^(18 - a.s) with b.m * 10^(18 - b.s) in 256 bits.
        let scaled = |x: Difficulty| U256::from(x.mantissa())
            * U256::from(POW10[(MAX_SCALE - x.scale()) as usize]);
        prop_assert_eq!(a.cmp(&b), scaled(a).cmp(&scaled(b)));
        prop_assert_eq!(a == b, scaled(a) == scaled(b));
    }

    #[test]
    fn from_target_rounds_down(t in any::<[u64; 4]>()) {
        let target = U256::from_limbs(t);
        prop_assume!(!target.is_zero());
        let x = Difficulty::from_target(target);
        if x != Difficulty::MIN && x != Difficulty::MAX {
            prop_assert!(x.to_target() >= target);
        }
    }

    #[test]
    fn from_f64_is_close(v in 1e-9f64..1e15) {
        let x = Difficulty::from_f64(v).unwrap();
        let back: f64 = x.to_string().parse().unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<Difficulty>();
    }
}
