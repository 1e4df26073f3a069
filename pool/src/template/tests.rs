//! Template parsing against bitcoind-shaped regtest answers, and every refusal.

use super::*;

const EMPTY: &str = include_str!("../../tests/fixtures/regtest_gbt_empty.json");
const WITH_TXS: &str = include_str!("../../tests/fixtures/regtest_gbt_txs.json");

fn raw(json: &str) -> RawTemplate {
    serde_json::from_str(json).expect("fixture parses")
}

#[test]
fn parses_an_empty_regtest_template() {
    let t: BlockTemplate = serde_json::from_str(EMPTY).unwrap();
    assert_eq!(t.height(), 1);
    assert_eq!(t.version(), 0x2000_0000);
    assert_eq!(t.bits().to_consensus(), 0x207f_ffff);
    assert_eq!(t.target(), U256::from(0x7f_ffffu64) << 232);
    assert_eq!(t.coinbase_value(), Amount::from_sat(50_0000_0000));
    assert_eq!(t.curtime(), 1_718_000_000);
    assert_eq!(t.mintime(), 1_296_688_603);
    assert!(t.transactions().is_empty());
    assert_eq!(
        t.previous_block_hash().to_string(),
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    assert_eq!(
        t.default_witness_commitment().unwrap().as_bytes()[6..],
        hex::decode("e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9").unwrap()
    );
    assert!(t.longpoll_id().unwrap().starts_with("0f9188f1"));
    assert_eq!(t.weight_limit(), Some(4_000_000));
    assert_eq!(t.sigop_limit(), Some(80_000));
    assert_eq!(t.rules(), ["csv", "!segwit", "taproot"]);
}

#[test]
fn parses_transactions_and_checks_their_ids() {
    let t: BlockTemplate = serde_json::from_str(WITH_TXS).unwrap();
    assert_eq!(t.height(), 201);
    assert_eq!(t.transactions().len(), 4);
    let first = &t.transactions()[0];
    assert_eq!(
        first.txid.to_string(),
        "6c972fe677b6ed76e51c6eb9eb3f50958932919f1858948bbc1be0b1474ccca9"
    );
    assert_eq!(first.weight, 565);
    assert_eq!(first.tx.weight().to_wu(), 565);
    assert_eq!(first.fee, Amount::from_sat(2820));
    // The last one is a legacy transaction: wtxid equals txid.
    let legacy = &t.transactions()[3];
    assert_eq!(legacy.txid.to_raw_hash(), legacy.wtxid.to_raw_hash());
}

#[test]
fn a_missing_witness_commitment_is_allowed() {
    let mut r = raw(EMPTY);
    r.default_witness_commitment = None;
    let t = BlockTemplate::try_from(r).unwrap();
    assert!(t.default_witness_commitment().is_none());
}

#[test]
fn refuses_bad_hex_and_lengths() {
    let mut r = raw(EMPTY);
    r.target = "zz".repeat(32);
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadHex { field: "target" })
    ));
    let mut r = raw(EMPTY);
    r.bits = "207fff".into();
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadLength {
            field: "bits",
            expected: 4,
            got: 3
        })
    ));
    let mut r = raw(EMPTY);
    r.default_witness_commitment = Some("6a24aa21a9ed".into());
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadWitnessCommitment)
    ));
    let mut r = raw(EMPTY);
    r.default_witness_commitment = Some("0".into());
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadHex {
            field: "default_witness_commitment"
        })
    ));
}

#[test]
fn refuses_a_target_that_is_not_bits() {
    let mut r = raw(EMPTY);
    r.bits = "207ffffe".into();
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::TargetMismatch { bits: 0x207f_fffe })
    ));
}

#[test]
fn refuses_out_of_range_numbers() {
    for (field, patch) in [
        (
            "height",
            (|r: &mut RawTemplate| r.height = 0) as fn(&mut RawTemplate),
        ),
        ("height", |r| r.height = 1 << 31),
        ("curtime", |r| r.curtime = 1 << 32),
        ("mintime", |r| r.mintime = u64::MAX),
        ("coinbasevalue", |r| r.coinbasevalue = 2_100_000_000_000_001),
    ] {
        let mut r = raw(EMPTY);
        patch(&mut r);
        match BlockTemplate::try_from(r) {
            Err(TemplateError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn refuses_transactions_that_do_not_match_their_ids() {
    let mut r = raw(WITH_TXS);
    r.transactions[1].txid = r.transactions[0].txid;
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::TxidMismatch { index: 1, .. })
    ));
    let mut r = raw(WITH_TXS);
    r.transactions[2].hash = r.transactions[0].hash;
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::WtxidMismatch { index: 2, .. })
    ));
    let mut r = raw(WITH_TXS);
    r.transactions[3].data.truncate(20);
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadTransaction { index: 3, .. })
    ));
    let mut r = raw(WITH_TXS);
    r.transactions[0].data.push('x');
    assert!(matches!(
        BlockTemplate::try_from(r),
        Err(TemplateError::BadHex { .. })
    ));
}

#[test]
fn serde_reports_template_errors_as_text() {
    let broken = EMPTY.replace("\"207fffff\"", "\"1d00ffff\"");
    let err = serde_json::from_str::<BlockTemplate>(&broken).unwrap_err();
    assert!(err.to_string().contains("does not match its bits"), "{err}");
}
