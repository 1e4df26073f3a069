use super::*;
use proofpool_epoch::epoch_file::EpochFile;
use proptest::prelude::*;
use std::sync::OnceLock;

mod headers;
mod settle;
mod sources;
mod unclaimed;

use settle::{Fixture, Plan, build, default_plan, miner};

/// Mining takes a moment; every test shares one fixture.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build(&default_plan()))
}

fn listing(v: &EpochVerdict) -> String {
    v.findings
        .iter()
        .map(|f| format!("  {f}\n"))
        .collect::<String>()
}

fn has(v: &EpochVerdict, subject: Subject, field: &str) -> bool {
    v.findings
        .iter()
        .any(|f| f.severity == Severity::Mismatch && f.subject == subject && f.field == field)
}

#[track_caller]
fn assert_fails_with(v: &EpochVerdict, subject: Subject, field: &str) {
    assert!(!v.is_ok(), "epoch {} passed", v.epoch);
    assert!(
        has(v, subject, field),
        "epoch {}: expected a `{field}` mismatch about {subject}; got:\n{}",
        v.epoch,
        listing(v)
    );
}

#[track_caller]
fn assert_ok(v: &EpochVerdict) {
    assert!(v.is_ok(), "epoch {} failed:\n{}", v.epoch, listing(v));
}

/// An auditor that has audited (and passed) the first `n` epochs.
fn auditor_after(fx: &Fixture, n: usize, chain: bool) -> Auditor {
    let mut auditor = Auditor::new();
    for i in 0..n {
        let v = auditor.audit_epoch(&fx.bytes[i], chain.then(|| &fx.onchain[i]));
        assert_ok(&v);
    }
    auditor
}

/// Epoch `index + 1`'s file, changed by `change` and re-serialized.
fn tampered(fx: &Fixture, index: usize, change: impl FnOnce(&mut EpochFile)) -> Vec<u8> {
    let mut file = fx.files[index].clone();
    change(&mut file);
    file.to_bytes().unwrap()
}

/// Audits a tampered epoch `index + 1` after its untouched predecessors.
fn audit_tampered(
    fx: &Fixture,
    index: usize,
    chain: bool,
    change: impl FnOnce(&mut EpochFile),
) -> EpochVerdict {
    let bytes = tampered(fx, index, change);
    let mut auditor = auditor_after(fx, index, chain);
    auditor.audit_epoch(&bytes, chain.then(|| &fx.onchain[index]))
}

#[test]
fn untouched_epochs_pass_with_and_without_the_chain() {
    let fx = fixture();
    // The data exercises what it should.
    let e2 = &fx.files[1];
    assert!(e2.blocks[0].young_pool_remainder > 0, "a young-pool block");
    assert!(e2.blocks[1].window_oldest_partial, "a partial oldest share");
    assert!(
        fx.files[2].shares.is_empty(),
        "an empty epoch paying a block"
    );
    for chain in [false, true] {
        let mut auditor = Auditor::new();
        for (i, bytes) in fx.bytes.iter().enumerate() {
            let v = auditor.audit_epoch(bytes, chain.then(|| &fx.onchain[i]));
            assert_ok(&v);
            assert!(v.findings.is_empty(), "{}", listing(&v));
            assert_eq!(v.epoch, i as u64 + 1);
            assert_eq!(v.onchain_checked, chain);
            assert_eq!(v.shares, fx.files[i].shares.len() as u64);
            assert_eq!(v.blocks.len(), fx.files[i].blocks.len());
            assert_eq!(v.total_cumulative, fx.files[i].total_cumulative);
        }
        assert!(auditor.open_gaps().is_empty());
        assert_eq!(auditor.next_epoch(), 4);
    }
}

#[test]
fn a_changed_nonce_fails_naming_the_share() {
    let fx = fixture();
    let v = audit_tampered(fx, 0, false, |f| f.shares[2].nonce ^= 1);
    assert_fails_with(&v, Subject::Share { seq: 3 }, "hash");
}

#[test]
fn a_changed_miner_fails_the_share_root_and_later_credits() {
    let fx = fixture();
    let thief = miner(2);
    let v = audit_tampered(fx, 0, false, |f| f.shares[3].miner = thief);
    assert_fails_with(&v, Subject::Epoch, "share_root");

    // The history now credits share 4 to the thief: epoch 2's block at
    // height 201 (whose window holds share 4) no longer adds up.
    let mut auditor = Auditor::new();
    let bytes = tampered(fx, 0, |f| f.shares[3].miner = thief);
    auditor.audit_epoch(&bytes, None);
    let v2 = auditor.audit_epoch(&fx.bytes[1], None);
    assert_fails_with(
        &v2,
        Subject::Credit {
            height: 201,
            account: miner(1),
        },
        "sats",
    );

    // A self-consistent forgery (share root recomputed) still fails against the chain.
    let mut forged = fx.files[0].clone();
    forged.shares[3].miner = thief;
    let leaves: Vec<_> = forged
        .shares
        .iter()
        .map(|s| shares::leaf_of(1, s))
        .collect();
    forged.share_root = proofpool_merkle::ShareTree::new(&leaves).unwrap().root();
    let v = Auditor::new().audit_epoch(&forged.to_bytes().unwrap(), Some(&fx.onchain[0]));
    assert_fails_with(&v, Subject::Chain, "shareRoot");
    assert_fails_with(&v, Subject::Chain, "dataHash");
}

#[test]
fn a_credit_one_sat_higher_fails_naming_block_and_account() {
    let fx = fixture();
    let account = fx.files[1].blocks[1].credits[0].miner;
    let v = audit_tampered(fx, 1, false, |f| f.blocks[1].credits[0].sats += 1);
    let credit = Subject::Credit {
        height: 201,
        account,
    };
    assert_fails_with(&v, credit, "sats");
    assert_fails_with(&v, Subject::Block { height: 201 }, "operator");
    let finding = v.findings.iter().find(|f| f.subject == credit).unwrap();
    let expected = fx.files[1].blocks[1].credits[0].sats;
    assert_eq!(finding.expected, expected.to_string());
    assert_eq!(finding.found, (expected + 1).to_string());
}

#[test]
fn a_changed_coinbase_value_fails() {
    let fx = fixture();
    let v = audit_tampered(fx, 1, false, |f| f.blocks[0].coinbase_value += 1);
    assert_fails_with(&v, Subject::Block { height: 200 }, "coinbase_value");
    assert_fails_with(&v, Subject::Epoch, "blocks_hash");
    // Even with every derived field made consistent, the block's own coinbase
    // (inside the proof of work) disagrees.
    let v = audit_tampered(fx, 1, true, |f| {
        f.blocks[0].coinbase_value += 1_000_000;
        f.blocks[0].operator += 1_000_000;
    });
    assert_fails_with(&v, Subject::Block { height: 200 }, "coinbase_value");
    assert_fails_with(&v, Subject::Chain, "blocksHash");
}

#[test]
fn a_changed_reward_root_or_balance_fails() {
    let fx = fixture();
    let v = audit_tampered(fx, 1, false, |f| f.reward_root = B256::repeat_byte(7));
    assert_fails_with(&v, Subject::Epoch, "reward_root");
    let account = fx.files[1].rewards[0].account;
    let v = audit_tampered(fx, 1, true, |f| f.rewards[0].cumulative_sats += 1);
    assert_fails_with(&v, Subject::Reward { account }, "cumulative_sats");
    let v = audit_tampered(fx, 1, false, |f| f.total_cumulative += U256::from(1));
    assert_fails_with(&v, Subject::Epoch, "total_cumulative");
}

#[test]
fn changed_parameters_fail_without_panicking() {
    let fx = fixture();
    let v = audit_tampered(fx, 1, false, |f| f.params.window_x = 0);
    assert_fails_with(&v, Subject::Epoch, "params.params_hash");
    assert_fails_with(&v, Subject::Block { height: 200 }, "credits");
    let v = audit_tampered(fx, 1, false, |f| f.params.fee_bps = 20_000);
    assert_fails_with(&v, Subject::Block { height: 200 }, "credits");
    let v = audit_tampered(fx, 1, false, |f| f.jobs[0].nbits = 0);
    assert!(!v.is_ok());
}

/// The committed `paramsHash` must be the version the distributor's
/// schedule has in force at the epoch's start: one announced for later (or
/// never) fails the epoch, even when the file and the commit agree.
#[test]
fn parameters_not_in_force_at_the_epoch_start_fail() {
    let fx = fixture();
    let start = fx.files[1].start_unix;
    let honest = fx.onchain[1].record.commit.paramsHash;
    let audit_with = |schedule: Vec<proofpool_chain::ParamsVersion>| {
        let mut onchain = fx.onchain[1].clone();
        onchain.params_schedule = schedule;
        let mut auditor = auditor_after(fx, 1, true);
        auditor.audit_epoch(&fx.bytes[1], Some(&onchain))
    };
    let version = |hash, effective_at| proofpool_chain::ParamsVersion { hash, effective_at };
    // In force from exactly the start: passes.
    let v = audit_with(vec![
        version(B256::repeat_byte(1), 0),
        version(honest, start),
    ]);
    assert_ok(&v);
    // Announced to take effect a second after the epoch began: the epoch
    // was mined under the old parameters.
    let v = audit_with(vec![
        version(B256::repeat_byte(1), 0),
        version(honest, start + 1),
    ]);
    assert_fails_with(&v, Subject::Chain, "paramsAt(start_unix)");
    // Replaced before the epoch began.
    let v = audit_with(vec![
        version(honest, 0),
        version(B256::repeat_byte(2), start),
    ]);
    assert_fails_with(&v, Subject::Chain, "paramsAt(start_unix)");
}

/// An epoch must have ended by the time its commit was mined: a timeline
/// shifted into the future (to bring earlier shares under parameters
/// announced for later) is refused.
#[test]
fn an_epoch_ending_after_its_commit_fails() {
    let fx = fixture();
    let end = fx.files[1].end_unix;
    let audit_at = |at: u64| {
        let mut onchain = fx.onchain[1].clone();
        onchain.committed_at = Some(at);
        let mut auditor = auditor_after(fx, 1, true);
        auditor.audit_epoch(&fx.bytes[1], Some(&onchain))
    };
    assert_ok(&audit_at(end));
    assert_ok(&audit_at(end + 3_600));
    assert_fails_with(&audit_at(end - 1), Subject::Epoch, "end_unix");
}

#[test]
fn an_epoch_length_other_than_the_parameters_fails() {
    let fx = fixture();
    let v = audit_tampered(fx, 1, false, |f| f.params.epoch_secs += 1);
    assert_fails_with(&v, Subject::Epoch, "params.epoch_secs");
    assert_fails_with(&v, Subject::Epoch, "params.params_hash");
}

#[test]
fn bytes_other_than_the_committed_ones_fail_the_data_hash() {
    let fx = fixture();
    // Same content, other bytes.
    let pretty = serde_json::to_vec_pretty(&fx.files[0]).unwrap();
    let v = Auditor::new().audit_epoch(&pretty, Some(&fx.onchain[0]));
    assert_fails_with(&v, Subject::Chain, "dataHash");
    assert_eq!(v.failures, 1, "{}", listing(&v));
    // Without the chain there is nothing to compare the bytes with.
    assert_ok(&Auditor::new().audit_epoch(&pretty, None));
}

#[test]
fn a_record_for_another_epoch_or_hash_fails() {
    let fx = fixture();
    let mut auditor = auditor_after(fx, 1, true);
    let mut wrong = fx.onchain[1].clone();
    wrong.stored_hash = B256::repeat_byte(9);
    let v = auditor.audit_epoch(&fx.bytes[1], Some(&wrong));
    assert_fails_with(&v, Subject::Chain, "epochHash");
    // Epoch 3's record: another epoch, after credits were paid.
    let v = Auditor::new().audit_epoch(&fx.bytes[0], Some(&fx.onchain[2]));
    assert_fails_with(&v, Subject::Chain, "epoch");
    assert_fails_with(&v, Subject::Chain, "prevTotalCumulative");
}

#[test]
fn garbage_and_truncated_files_give_a_clear_error() {
    let fx = fixture();
    let valid = &fx.bytes[1];
    let truncated = &valid[..valid.len() / 2];
    for bytes in [
        &b""[..],
        b"{",
        b"garbage",
        b"null",
        b"[]",
        b"{\"format\":\"proofpool-epoch\"}",
        truncated,
    ] {
        let v = Auditor::new().audit_epoch(bytes, Some(&fx.onchain[0]));
        assert_fails_with(&v, Subject::File, "json");
        let finding = &v.findings[0];
        assert!(
            finding.found.contains("does not parse"),
            "unclear: {finding}"
        );
    }
    // Version 1 files predate the share commitment: nothing in them binds
    // a share to its miner, so this auditor refuses them.
    let v1 = tampered(fx, 0, |f| f.version = 1);
    let v = Auditor::new().audit_epoch(&v1, None);
    assert_fails_with(&v, Subject::File, "format");
    assert!(v.findings[0].found.contains("version 1"), "{}", listing(&v));
}

#[test]
fn a_missing_epoch_fails() {
    let fx = fixture();
    let mut auditor = auditor_after(fx, 1, false);
    let v = auditor.missing_epoch("not found", Some(&fx.onchain[1]));
    assert_fails_with(&v, Subject::File, "file");
    assert_eq!(v.epoch, 2);
    assert_eq!(auditor.next_epoch(), 3);
}

#[test]
fn a_seq_gap_fails_once_the_next_epoch_cannot_close_it() {
    let fx = fixture();
    // Drop share 5 (no job of epoch 1 committed to a head after it) and
    // keep epoch 1 otherwise consistent.
    let mut file = fx.files[0].clone();
    file.shares.remove(4);
    let leaves: Vec<_> = file.shares.iter().map(|s| shares::leaf_of(1, s)).collect();
    file.share_root = proofpool_merkle::ShareTree::new(&leaves).unwrap().root();
    let head = leaves.iter().fold(B256::ZERO, settle::next_head);
    file.share_log[0].head = head;
    let mut auditor = Auditor::new();
    assert_ok(&auditor.audit_epoch(&file.to_bytes().unwrap(), None));
    assert_eq!(auditor.open_gaps().len(), 1);
    let v = auditor.audit_epoch(&fx.bytes[1], None);
    assert_fails_with(&v, Subject::Epoch, "seq");
    assert!(auditor.open_gaps().is_empty());
    // The next job's head covers share 5: the log behind it is not the one
    // the files list.
    assert_fails_with(&v, Subject::Epoch, "share_log.prev_head");
}

#[test]
fn seqs_interleaved_across_an_epoch_boundary_pass() {
    // Two pool instances can commit share 7 (epoch 1) after share 6 (epoch
    // 2): each instance's log stays in epoch order.
    let mut plan: Plan = default_plan();
    plan.shares[5].0 = 2;
    plan.shares[6].0 = 1;
    plan.instances = vec![1, 1, 2, 2];
    let fx = build(&plan);
    let mut auditor = Auditor::new();
    for (i, bytes) in fx.bytes.iter().enumerate() {
        assert_ok(&auditor.audit_epoch(bytes, Some(&fx.onchain[i])));
    }
    assert!(auditor.open_gaps().is_empty());
}

#[test]
fn a_duplicated_share_fails() {
    let fx = fixture();
    let v = audit_tampered(fx, 1, false, |f| {
        let mut copy = fx.files[0].shares[0].clone();
        copy.seq = 11;
        f.jobs.push(fx.files[0].jobs[0].clone());
        f.shares.push(copy);
    });
    assert_fails_with(&v, Subject::Share { seq: 11 }, "hash");
    let v = audit_tampered(fx, 1, false, |f| f.shares[0].seq = 6);
    assert_fails_with(&v, Subject::Share { seq: 6 }, "seq");
}

#[test]
fn replaying_earlier_epochs_then_auditing_later_ones_passes() {
    let fx = fixture();
    let mut auditor = Auditor::new();
    auditor.replay(&fx.bytes[0]).unwrap();
    for i in 1..3 {
        assert_ok(&auditor.audit_epoch(&fx.bytes[i], Some(&fx.onchain[i])));
    }
    assert!(matches!(
        Auditor::new().replay(&fx.bytes[1]),
        Err(AuditError::Replay { epoch: 1, .. })
    ));
    assert!(Auditor::new().replay(b"nope").is_err());
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const INTERESTING: &[u8] = b"0123456789abcdefx\",:{}[]-.eE ntf";
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len().max(1));
        match rng.below(4) {
            0 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
            1 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            2 => bytes.insert(
                at.min(bytes.len()),
                INTERESTING[rng.below(INTERESTING.len())],
            ),
            _ if !bytes.is_empty() => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
            _ => bytes.push(b'{'),
        }
    }
}

#[test]
fn random_byte_mutations_never_panic_and_always_fail_against_the_chain() {
    let fx = fixture();
    let base = auditor_after(fx, 1, true);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for round in 0..3000 {
        let mut bytes = fx.bytes[1].clone();
        mutate(&mut rng, &mut bytes);
        let chain = round % 2 == 0;
        let v = base
            .clone()
            .audit_epoch(&bytes, chain.then(|| &fx.onchain[1]));
        if EpochFile::from_bytes(&bytes).is_ok() {
            parsed += 1;
        }
        if chain && bytes != fx.bytes[1] {
            assert!(!v.is_ok(), "changed bytes passed against the chain");
        }
    }
    // Most mutations break the JSON; enough of them must not, to test the checks.
    assert!(parsed > 100, "only {parsed} mutations parsed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let v = Auditor::new().audit_epoch(&bytes, None);
        prop_assert!(!v.is_ok());
    }

    #[test]
    fn single_byte_changes_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let fx = fixture();
        let mut bytes = fx.bytes[0].clone();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let v = Auditor::new().audit_epoch(&bytes, Some(&fx.onchain[0]));
        prop_assert_eq!(v.is_ok(), bytes == fx.bytes[0]);
    }
}

#[test]
fn a_served_block_yields_its_hash_and_coinbase_value() {
    let fx = fixture();
    let file = &fx.files[0];
    let share = &file.shares[1];
    let job = &file.jobs[0];
    let parts = settle::header_parts(job, share);
    let mut raw = parts.header().to_vec();
    raw.push(1);
    raw.extend_from_slice(&parts.coinbase_bytes());
    let (hash, value) = bitcoind::coinbase_value_of_block(&raw).unwrap();
    assert_eq!(hash, settle::reversed(share.hash));
    assert_eq!(hash, fx.files[1].blocks[0].hash);
    assert_eq!(value, job.coinbase_value);
    assert!(bitcoind::coinbase_value_of_block(&raw[..100]).is_err());
}

/// The pipelined encoder (serialize on one thread, hash on another, in 4 MiB
/// chunks) gives exactly the bytes of `to_bytes` and their keccak, for a
/// small file and for one spanning several chunks.
#[test]
fn bytes_and_hash_match_the_plain_encoding() {
    let fx = fixture();
    let small = fx.files[0].clone();
    let mut big = small.clone();
    let template = big.shares[0].clone();
    big.shares = (0..30_000u64)
        .map(|i| proofpool_epoch::epoch_file::FileShare {
            seq: i + 1,
            nonce: i as u32,
            ..template.clone()
        })
        .collect();
    for file in [small, big] {
        let plain = file.to_bytes().unwrap();
        let (bytes, hash) = file.to_bytes_and_hash().unwrap();
        assert_eq!(bytes, plain);
        assert_eq!(hash, proofpool_epoch::epoch_file::data_hash(&plain));
    }
}

#[test]
fn a_share_time_before_its_epoch_fails_naming_the_share() {
    let fx = fixture();
    let v = audit_tampered(fx, 0, false, |f| {
        f.shares[1].time_ms = f.start_unix * 1000 - 1;
    });
    assert_fails_with(&v, Subject::Share { seq: 2 }, "time_ms");
}

#[test]
fn a_job_claiming_another_height_than_its_coinbase_fails() {
    let fx = fixture();
    let job = &fx.files[0].jobs[0];
    let subject = Subject::Job {
        instance: job.instance,
        job_id: job.job_id,
    };
    let v = audit_tampered(fx, 0, false, |f| f.jobs[0].height += 1);
    assert_fails_with(&v, subject, "coinbase1.bip34_height");
}

#[test]
fn found_blocks_that_no_epoch_pays_are_listed_for_bitcoind() {
    let fx = fixture();
    let auditor = auditor_after(fx, fx.bytes.len(), false);
    let paid: std::collections::HashSet<B256> = fx
        .files
        .iter()
        .flat_map(|f| f.blocks.iter().map(|b| b.hash))
        .collect();
    let unpaid = auditor.unpaid_found_blocks();
    // Every listed one is a verified share meeting its network target that
    // no epoch paid, in share order, with the epoch that holds it.
    assert!(unpaid.windows(2).all(|w| w[0].seq < w[1].seq));
    for b in &unpaid {
        assert!(!paid.contains(&b.hash), "{b:?} is paid");
        let file = &fx.files[(b.epoch - 1) as usize];
        assert!(file.shares.iter().any(|s| s.seq == b.seq), "{b:?}");
    }
    // Paying none of them leaves every block listed.
    let mut fresh = Auditor::new();
    for bytes in &fx.bytes {
        let mut file = EpochFile::from_bytes(bytes).unwrap();
        file.blocks.clear();
        // The verdicts fail (blocks_hash, credits); only the history matters.
        fresh.audit_epoch(&file.to_bytes().unwrap(), None);
    }
    let all = fresh.unpaid_found_blocks();
    assert!(all.len() >= unpaid.len() + paid.len(), "{all:?}");
    for hash in &paid {
        assert!(all.iter().any(|b| b.hash == *hash), "{hash} not listed");
    }
}

#[test]
fn a_token_per_sat_that_is_not_one_token_per_bitcoin_fails() {
    assert_eq!(token_per_sat(8), Some(U256::from(1u64)));
    assert_eq!(token_per_sat(18), Some(U256::from(10_000_000_000u64)));
    assert_eq!(token_per_sat(6), None);
    assert_eq!(token_per_sat(255), None);
    let fx = fixture();
    // The fixture's token has 18 decimals and pays 10^10 units per sat; in
    // epoch 1 nothing earlier constrains the scale but the token itself.
    let v = audit_tampered(fx, 0, true, |f| {
        f.chain.token_per_sat = U256::from(1u64);
    });
    assert_fails_with(&v, Subject::Epoch, "chain.token_per_sat");
    let mut onchain = fx.onchain[0].clone();
    onchain.token_decimals = 6;
    let v = Auditor::new().audit_epoch(&fx.bytes[0], Some(&onchain));
    assert_fails_with(&v, Subject::Chain, "token.decimals");
}

#[test]
fn a_coinbase_that_does_not_pay_the_declared_script_fails_naming_the_job() {
    let fx = fixture();
    let job = &fx.files[0].jobs[0];
    let subject = Subject::Job {
        instance: job.instance,
        job_id: job.job_id,
    };
    // The file declares another script than its coinbases pay.
    let v = audit_tampered(fx, 0, false, |f| {
        f.params.payout_script = Some(vec![0x51, 0x20, 0x77].into());
    });
    assert_fails_with(&v, subject, "coinbase2.payout_script");
    // A later epoch that declares another script is shown, not failed: the
    // operator may move its address.
    let v = audit_tampered(fx, 1, false, |f| f.params.payout_script = None);
    assert!(
        v.findings
            .iter()
            .any(|f| f.severity == Severity::Warning && f.field == "params.payout_script"),
        "{}",
        listing(&v)
    );
}

#[test]
fn the_found_block_slack_is_two_epochs_of_blocks_and_an_hour() {
    // By hand: hourly epochs hold 6 blocks each, so 12 + 6.
    assert_eq!(maturity_slack(3600), 18);
    // Ten-second epochs: part of one block each, rounded up, so 1 + 6.
    assert_eq!(maturity_slack(10), 7);
    assert_eq!(maturity_slack(0), 6);
}

/// Writes the fixture's epoch files as the fuzz seeds
/// (`fuzz/seeds/epoch_file`), after a change to the format: run with
/// `cargo test -p proofpool-audit write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes the fuzz seeds; run by hand after a format change"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/epoch_file");
    for (i, bytes) in fixture().bytes.iter().enumerate() {
        std::fs::write(dir.join(EpochFile::file_name(i as u64 + 1)), bytes).unwrap();
    }
}

/// Makes a tampered epoch 1 consistent in itself again, as an operator
/// rewriting its files would: the share root and the listed share-log chain
/// recomputed over the shares as they now are.
fn relist(file: &mut EpochFile) {
    let leaves: Vec<_> = file
        .shares
        .iter()
        .map(|s| shares::leaf_of(file.epoch, s))
        .collect();
    file.share_root = proofpool_merkle::ShareTree::new(&leaves).unwrap().root();
    let log = &mut file.share_log[0];
    log.head = leaves.iter().fold(log.prev_head, settle::next_head);
    log.last_seq = leaves.last().unwrap().seq;
}

#[test]
fn a_share_credited_to_another_miner_fails_naming_the_committed_one() {
    let fx = fixture();
    let honest = fx.files[0].shares[0].miner;
    let v = audit_tampered(fx, 0, false, |f| {
        f.shares[0].miner = miner(1);
        relist(f);
    });
    assert_fails_with(&v, Subject::Share { seq: 1 }, "commitment.miner");
    let finding = v
        .findings
        .iter()
        .find(|f| f.field == "commitment.miner")
        .unwrap();
    assert!(finding.expected.contains(&honest.to_string()), "{finding}");
}

#[test]
fn a_share_credited_at_another_target_fails_naming_the_committed_one() {
    let fx = fixture();
    // Share 2 was mined at half the network target; credit it at a quarter
    // (twice the work), consistently.
    let v = audit_tampered(fx, 0, false, |f| {
        let s = &mut f.shares[1];
        let target = proofpool_epoch::share_commitment::committed_target(s.share_target >> 1).1;
        s.share_target = target;
        s.work = proofpool_primitives::Work::from_target(target).unwrap().0;
        relist(f);
    });
    assert_fails_with(&v, Subject::Share { seq: 2 }, "commitment.target");
    // A target no compact form holds cannot have been committed at all.
    let v = audit_tampered(fx, 0, false, |f| {
        let s = &mut f.shares[1];
        s.share_target -= U256::from(1u8);
        s.work = proofpool_primitives::Work::from_target(s.share_target)
            .unwrap()
            .0;
        relist(f);
    });
    assert_fails_with(&v, Subject::Share { seq: 2 }, "commitment.target");
}

#[test]
fn a_share_inserted_or_dropped_behind_a_committed_head_fails() {
    let fx = fixture();
    // Job 101 (shares 4 to 6) committed to the head after share 3.
    let job = Subject::Job {
        instance: settle::INSTANCE,
        job_id: 101,
    };
    // Inserted: a share slipped in after share 2, the later ones renumbered
    // so no seq is missing.
    let v = audit_tampered(fx, 0, false, |f| {
        let mut extra = f.shares[0].clone();
        extra.seq = 3;
        extra.extranonce2 = vec![0xee; 8].into();
        f.shares.insert(2, extra);
        for s in &mut f.shares[3..] {
            s.seq += 1;
        }
        relist(f);
    });
    assert_fails_with(&v, job, "log_head");
    // Dropped: share 2 left out, the later ones renumbered.
    let v = audit_tampered(fx, 0, false, |f| {
        f.shares.remove(1);
        for s in &mut f.shares[1..] {
            s.seq -= 1;
        }
        relist(f);
    });
    assert_fails_with(&v, job, "log_head");
    // Untouched, the same chain passes: the findings are the forgeries'.
    let v = audit_tampered(fx, 0, false, relist);
    assert_ok(&v);
}

#[test]
fn a_share_on_a_job_whose_head_already_covers_it_fails() {
    let fx = fixture();
    // Job 101 says it was built after share 5: its share 4 would then be
    // behind its own job's head. (Its proof of work fails too: the head is
    // in the coinbase.)
    let v = audit_tampered(fx, 0, false, |f| {
        let leaves: Vec<_> = f.shares[..5]
            .iter()
            .map(|s| shares::leaf_of(1, s))
            .collect();
        let head = leaves.iter().fold(B256::ZERO, settle::next_head);
        f.jobs[1].log_head = head;
    });
    assert_fails_with(&v, Subject::Share { seq: 4 }, "log_head");
}

#[test]
fn a_job_on_a_stale_head_fails() {
    let fx = fixture();
    // Job 101 built more than the allowed lag after shares 1 to 3 were
    // accepted, still committing to the empty log: it pins nothing.
    let v = audit_tampered(fx, 0, false, |f| {
        f.jobs[1].log_head = B256::ZERO;
        f.jobs[1].template_time += (shares::HEAD_LAG_SECS + 100) as u32;
    });
    assert_fails_with(
        &v,
        Subject::Job {
            instance: settle::INSTANCE,
            job_id: 101,
        },
        "log_head",
    );
}

#[test]
fn a_share_timed_before_the_previous_one_of_its_instance_fails() {
    let fx = fixture();
    let v = audit_tampered(fx, 0, false, |f| {
        f.shares[3].time_ms = f.shares[2].time_ms - 1;
    });
    assert_fails_with(&v, Subject::Share { seq: 4 }, "time_ms");
}

#[test]
fn a_backdated_job_on_a_stale_head_fails_by_its_shares_header_times() {
    let fx = fixture();
    // Job 101 keeps its early template time but commits to the empty log,
    // and one of its shares was mined 700 s after that time (its header
    // says so, and its proof of work fixes the header): the job was in use
    // long after shares 1 to 3 were accepted, so its head is stale.
    let v = audit_tampered(fx, 0, false, |f| {
        f.jobs[1].log_head = B256::ZERO;
        let job = f.jobs[1].clone();
        let s = f
            .shares
            .iter_mut()
            .find(|s| s.job_id == job.job_id)
            .unwrap();
        s.ntime = job.template_time + (shares::HEAD_LAG_SECS + 100) as u32;
        s.nonce = (0..100_000u32)
            .find(|&nonce| {
                s.nonce = nonce;
                proofpool_epoch::header::hash_value(settle::header_parts(&job, s).share_hash())
                    <= s.share_target
            })
            .unwrap();
        s.hash = settle::header_parts(&job, s).share_hash();
        relist(f);
    });
    assert_fails_with(
        &v,
        Subject::Job {
            instance: settle::INSTANCE,
            job_id: 101,
        },
        "log_head",
    );
}
