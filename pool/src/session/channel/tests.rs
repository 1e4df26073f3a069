//! The channel's checks, from the rules: a share counts once, only on a
//! live job, only at the target its job committed to.

use super::*;
use crate::share::tests::{EN1, at_most, regtest_job, submission};
use alloy_primitives::U256;
use bitcoin::hashes::Hash as _;
use proofpool_primitives::Difficulty;

fn difficulty() -> Difficulty {
    Difficulty::from_target(U256::MAX)
}

/// The worker every share in these tests is submitted for.
fn worker() -> &'static MinerId {
    static WORKER: std::sync::OnceLock<MinerId> = std::sync::OnceLock::new();
    WORKER
        .get_or_init(|| MinerId::parse("0x00000000000000000000000000000000000000b7.rig-7").unwrap())
}

/// `share` on the job sent under `id`, with no version rolling, at `now_ms`.
fn check(
    channel: &Channel,
    id: &str,
    share: &ShareSubmission<'_>,
    now_ms: u64,
) -> Result<Accepted, Refusal> {
    channel.submit(&Submit {
        job_id: id,
        extranonce1: EN1,
        share: *share,
        version_mask: 0,
        miner: worker(),
        instance: 3,
        now_ms,
    })
}

fn now_ms(job: &Job) -> u64 {
    u64::from(job.ntime()) * 1000
}

#[test]
fn a_share_counts_once_and_only_on_a_job_the_channel_was_sent() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let share = submission(&job, 7);
    let now = now_ms(&job);
    assert!(matches!(
        check(&channel, "1", &share, now),
        Err(Refusal::Stale(_))
    ));
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    assert_eq!(channel.job_seq(), 1);
    assert_eq!(channel.last_job_id(), Some(job.id()));
    let checked = check(&channel, "1", &share, now).unwrap();
    assert_eq!(checked.credited, difficulty());
    // Not yet handed on: checking again is no duplicate.
    assert!(check(&channel, "1", &share, now).is_ok());
    channel.accepted(checked.key);
    assert_eq!(
        check(&channel, "1", &share, now).unwrap_err(),
        Refusal::Duplicate
    );
    // Another nonce is another share.
    assert!(check(&channel, "1", &submission(&job, 8), now).is_ok());
}

#[test]
fn a_clean_job_makes_the_older_ones_stale_and_a_resend_does_not() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job);
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    channel.record_job(job.clone(), 2, false, at_most(U256::MAX), difficulty());
    assert!(check(&channel, "1", &submission(&job, 1), now).is_ok());
    channel.record_job(job.clone(), 3, true, at_most(U256::MAX), difficulty());
    for id in ["1", "2"] {
        assert!(matches!(
            check(&channel, id, &submission(&job, 1), now),
            Err(Refusal::Stale(_))
        ));
    }
    assert!(check(&channel, "3", &submission(&job, 1), now).is_ok());
}

#[test]
fn an_old_job_is_forgotten_but_its_shares_stay_duplicates_while_a_resend_names_it() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job);
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    let share = submission(&job, 3);
    let key = check(&channel, "1", &share, now).unwrap().key;
    channel.accepted(key);
    // The same pool job sent again under ids 2 to MAX_SENT_JOBS + 1: id 1
    // is the oldest of one too many, and goes.
    for seq in 2..=(MAX_SENT_JOBS as u64 + 1) {
        channel.record_job(job.clone(), seq, false, at_most(U256::MAX), difficulty());
    }
    assert!(channel.job("1").is_none());
    assert!(matches!(
        check(&channel, "1", &share, now),
        Err(Refusal::Stale(_))
    ));
    // Under another id of the same job and target it is the same share.
    assert_eq!(
        check(&channel, "2", &share, now).unwrap_err(),
        Refusal::Duplicate
    );
}

#[test]
fn a_share_is_held_to_its_own_jobs_target_and_time() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job);
    // A target of 1: no real hash meets it.
    channel.record_job(job.clone(), 1, true, at_most(U256::from(1u8)), difficulty());
    assert!(matches!(
        check(&channel, "1", &submission(&job, 1), now),
        Err(Refusal::LowDifficulty(_))
    ));
    channel.record_job(job.clone(), 2, false, at_most(U256::MAX), difficulty());
    // Mined more than five minutes before the pool's clock.
    assert!(matches!(
        check(&channel, "2", &submission(&job, 1), now + 301_000),
        Err(Refusal::Stale(_))
    ));
    // Version bits outside the negotiated mask (none).
    let rolled = ShareSubmission {
        version_bits: Some(0x0001_0000),
        ..submission(&job, 1)
    };
    assert!(matches!(
        check(&channel, "2", &rolled, now),
        Err(Refusal::Invalid(_))
    ));
}

/// The record handed to the share log, field by field from what was sent
/// and what the job committed to: credited to the address in the job's
/// coinbase (not the worker's, which only names the rig and the finder), at
/// the work of the job's target, 2^256 / (target + 1).
#[test]
fn the_record_is_what_was_sent_credited_at_the_jobs_commitment() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job) + 5_000;
    // 0xffff * 2^240 (compact 0x2100ffff, so the binding keeps it as it
    // is): all but one hash in 65,536 meet it, and its work,
    // 2^256 / (2^256 - 2^240 + 1), is 1.
    let target = U256::from(0xffffu32) << 240;
    channel.record_job(job.clone(), 9, true, at_most(target), difficulty());
    let mut seen = [false, false];
    for nonce in 0..64u32 {
        let share = submission(&job, nonce);
        let Ok(a) = check(&channel, "9", &share, now) else {
            continue;
        };
        let r = &a.share;
        assert_eq!(r.time_ms, now);
        assert_eq!(r.instance, 3);
        assert_eq!(r.job_id, job.id());
        assert_eq!(r.miner, proofpool_primitives::Address::repeat_byte(0xa5));
        assert_eq!(r.worker, "rig-7");
        assert_eq!(r.extranonce1, EN1);
        assert_eq!(r.extranonce2, share.extranonce2);
        assert_eq!((r.ntime, r.nonce), (job.ntime(), nonce));
        assert_eq!(r.version, job.version());
        assert_eq!(r.share_target, target);
        assert_eq!(r.work, U256::from(1u8));
        assert_eq!(r.network_target, job.network_target());
        // The hash is the header's, recomputed here from its parts.
        let header = bitcoin::block::Header {
            version: bitcoin::block::Version::from_consensus(r.version as i32),
            prev_blockhash: job.prev_hash(),
            merkle_root: bitcoin::TxMerkleNode::from_byte_array(
                job.merkle_root(job.coinbase_txid(&EN1, share.extranonce2, &at_most(target))),
            ),
            time: r.ntime,
            bits: job.bits(),
            nonce,
        };
        let hash = header.block_hash();
        assert_eq!(r.hash.0, hash.to_byte_array());
        let solves = U256::from_le_bytes(hash.to_byte_array()) <= job.network_target();
        assert_eq!(a.solved.is_some(), solves);
        if let Some(b) = &a.solved {
            assert_eq!(b.hash_display, hash.to_string());
            assert_eq!(
                b.finder.to_string().to_lowercase(),
                "0x00000000000000000000000000000000000000b7"
            );
            assert_eq!((b.worker.as_str(), b.nonce), ("rig-7", nonce));
        }
        seen[usize::from(solves)] = true;
    }
    // Regtest's target is 0x7fffff * 2^232, about half of all hashes:
    // both kinds of share turned up.
    assert_eq!(seen, [true, true]);
}
