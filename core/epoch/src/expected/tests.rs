//! Expected-value credits: the module's worked example by hand, the
//! invariant, and the properties issue 25 names, checked against a float
//! model built apart from the integer code.

use super::*;
use alloy_primitives::{Address, U256};
use proptest::prelude::*;

fn miner(i: u8) -> MinerAddress {
    MinerAddress(Address::repeat_byte(i + 1))
}

/// A share of work `work` on a job of network work `net`, paying `base`.
fn share(who: u8, work: u64, net: u64, base: u64) -> ExpectedShare {
    ExpectedShare {
        miner: miner(who),
        share_work: Work(U256::from(work)),
        net_work: Work(U256::from(net)),
        base: Sats(base),
    }
}

#[test]
fn the_worked_example_pays_what_the_docs_say() {
    let shares = [
        share(0, 1, 1000, 5_000_000_000),
        share(0, 1, 1000, 5_000_000_000),
        share(1, 7, 1000, 5_000_000_000),
        share(0, 1, 1000, 5_000_000_000),
    ];
    let payout = credit_epoch(shares, 100).unwrap();
    assert_eq!(payout.credits[&miner(0)], Sats(14_849_999));
    assert_eq!(payout.credits[&miner(1)], Sats(34_649_999));
    assert_eq!(payout.gross, Sats(49_999_999));
    assert_eq!(payout.fee, Sats(499_999));
    assert_eq!(payout.dust, Sats(2));
    assert_eq!(payout.total(), Sats(49_499_998));
}

#[test]
fn a_share_at_the_network_difficulty_is_worth_a_block() {
    // Work equal to the network's: the whole base, less the fee, exactly
    // (a score of 2^128 floors nothing).
    let payout = credit_epoch([share(3, 1 << 40, 1 << 40, 312_500_000)], 250).unwrap();
    assert_eq!(payout.credits[&miner(3)], Sats(312_500_000 - 7_812_500));
    assert_eq!(payout.fee, Sats(7_812_500));
    assert_eq!(payout.dust, Sats(0));
}

#[test]
fn the_schemes_base_is_the_subsidy_or_the_coinbase_value() {
    use bitcoin::Network::{Bitcoin, Regtest};
    let value = Sats(5_000_012_345);
    assert_eq!(ExpectedShare::base(Scheme::Pplns, Bitcoin, 1, value), None);
    assert_eq!(
        ExpectedShare::base(Scheme::Fpps, Bitcoin, 1, value),
        Some(value)
    );
    // Mainnet halves every 210,000 blocks, regtest every 150.
    assert_eq!(
        ExpectedShare::base(Scheme::Pps, Bitcoin, 840_000, value),
        Some(Sats(312_500_000))
    );
    assert_eq!(
        ExpectedShare::base(Scheme::Pps, Regtest, 300, value),
        Some(Sats(1_250_000_000))
    );
    assert_eq!(subsidy(Regtest, 149), Sats(5_000_000_000));
    assert_eq!(subsidy(Bitcoin, 64 * 210_000), Sats(0));
    for s in ["pplns", "pps", "fpps"] {
        assert_eq!(s.parse::<Scheme>().unwrap().to_string(), s);
    }
    assert!("ppl".parse::<Scheme>().is_err());
}

#[test]
fn a_fee_above_all_is_refused() {
    assert_eq!(
        credit_epoch([share(0, 1, 2, 10)], 10_001),
        Err(ExpectedError::FeeTooHigh { fee_bps: 10_001 })
    );
}

fn arb_share() -> impl Strategy<Value = ExpectedShare> {
    (
        0u8..4,
        1u64..1_000_000,
        1u64..10_000_000_000,
        0u64..6_000_000_000,
    )
        .prop_map(|(who, work, net, base)| share(who, work, net, base))
}

proptest! {
    #[test]
    fn credits_follow_the_rules(
        shares in prop::collection::vec(arb_share(), 0..40),
        fee_bps in 0u64..=10_000,
        rotate in 0usize..40,
    ) {
        let payout = credit_epoch(shares.clone(), fee_bps).unwrap();
        // The invariant: credits, fee and dust make the gross exactly.
        prop_assert_eq!(payout.total().0 + payout.fee.0 + payout.dust.0, payout.gross.0);
        // The dust is what the floors leave: under one unit a miner, and
        // one for the fee's own floor.
        let miners: std::collections::BTreeSet<_> = shares.iter().map(|s| s.miner).collect();
        prop_assert!(payout.dust.0 <= miners.len() as u64 + 1);
        // No credit depends on the order of the shares.
        let mut turned = shares.clone();
        if !turned.is_empty() {
            let n = rotate % turned.len();
            turned.rotate_left(n);
            turned.reverse();
        }
        prop_assert_eq!(&credit_epoch(turned, fee_bps).unwrap(), &payout);
        // Each credit is the float model's value, to within a unit (the
        // model rounds; the score floors lose under 2^-128 a share).
        let keep = (10_000 - fee_bps) as f64 / 10_000.0;
        for who in 0u8..4 {
            let model: f64 = shares
                .iter()
                .filter(|s| s.miner == miner(who))
                .map(|s| {
                    let w: u64 = s.share_work.0.to();
                    let n: u64 = s.net_work.0.to();
                    // A share is worth at most the block it would be.
                    (w as f64 / n as f64).min(1.0) * s.base.0 as f64
                })
                .sum::<f64>() * keep;
            let got = payout.credits.get(&miner(who)).map_or(0, |s| s.0) as f64;
            prop_assert!((got - model).abs() <= 1.0 + model * 1e-12, "{} vs {}", got, model);
            prop_assert!(got <= model + model * 1e-12 + 1e-6);
        }
    }

    #[test]
    fn two_epochs_pay_what_one_would_up_to_a_unit_a_miner(
        first in prop::collection::vec(arb_share(), 0..20),
        second in prop::collection::vec(arb_share(), 0..20),
        fee_bps in 0u64..=10_000,
    ) {
        let a = credit_epoch(first.clone(), fee_bps).unwrap();
        let b = credit_epoch(second.clone(), fee_bps).unwrap();
        let joint = credit_epoch(first.into_iter().chain(second), fee_bps).unwrap();
        for who in 0u8..4 {
            let get = |p: &ExpectedPayout| p.credits.get(&miner(who)).map_or(0, |s| s.0);
            let apart = get(&a) + get(&b);
            // floor(x) + floor(y) ≤ floor(x + y) ≤ floor(x) + floor(y) + 1.
            prop_assert!(apart <= get(&joint) && get(&joint) <= apart + 1);
        }
        prop_assert!(joint.total().0 <= joint.gross.0 - joint.fee.0);
    }
}

/// On regtest (or any testnet easier than the pool's difficulties) a share
/// is a block whenever it is a share: worth one block, not its work ratio.
#[test]
fn a_share_harder_than_its_network_is_worth_one_block() {
    let payout = credit_epoch(
        [
            share(0, 4_000_000, 2, 5_000_000_000),
            share(1, 1, 2, 5_000_000_000),
        ],
        0,
    )
    .unwrap();
    assert_eq!(payout.credits[&miner(0)].0, 5_000_000_000);
    assert_eq!(payout.credits[&miner(1)].0, 2_500_000_000);
    assert_eq!(payout.gross.0, 7_500_000_000);
}
