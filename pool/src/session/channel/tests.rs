//! The channel's checks, from the rules: a share counts once, only on a
//! live job, only at the target its job committed to.

use super::*;
use crate::share::tests::{EN1, at_most, regtest_job, submission};
use alloy_primitives::U256;
use proofpool_primitives::Difficulty;

fn difficulty() -> Difficulty {
    Difficulty::from_target(U256::MAX)
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
        channel.check("1", &EN1, &share, 0, now),
        Err(Refusal::Stale(_))
    ));
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    assert_eq!(channel.job_seq(), 1);
    assert_eq!(channel.last_job_id(), Some(job.id()));
    let checked = channel.check("1", &EN1, &share, 0, now).unwrap();
    assert_eq!(checked.credited, difficulty());
    assert_eq!(checked.binding, at_most(U256::MAX));
    // Not yet handed on: checking again is no duplicate.
    assert!(channel.check("1", &EN1, &share, 0, now).is_ok());
    channel.accepted(checked.key);
    assert_eq!(
        channel.check("1", &EN1, &share, 0, now).unwrap_err(),
        Refusal::Duplicate
    );
    // Another nonce is another share.
    assert!(
        channel
            .check("1", &EN1, &submission(&job, 8), 0, now)
            .is_ok()
    );
}

#[test]
fn a_clean_job_makes_the_older_ones_stale_and_a_resend_does_not() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job);
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    channel.record_job(job.clone(), 2, false, at_most(U256::MAX), difficulty());
    assert!(
        channel
            .check("1", &EN1, &submission(&job, 1), 0, now)
            .is_ok()
    );
    channel.record_job(job.clone(), 3, true, at_most(U256::MAX), difficulty());
    for id in ["1", "2"] {
        assert!(matches!(
            channel.check(id, &EN1, &submission(&job, 1), 0, now),
            Err(Refusal::Stale(_))
        ));
    }
    assert!(
        channel
            .check("3", &EN1, &submission(&job, 1), 0, now)
            .is_ok()
    );
}

#[test]
fn an_old_job_is_forgotten_but_its_shares_stay_duplicates_while_a_resend_names_it() {
    let job = Arc::new(regtest_job());
    let mut channel = Channel::default();
    let now = now_ms(&job);
    channel.record_job(job.clone(), 1, true, at_most(U256::MAX), difficulty());
    let share = submission(&job, 3);
    let key = channel.check("1", &EN1, &share, 0, now).unwrap().key;
    channel.accepted(key);
    // The same pool job sent again under ids 2 to MAX_SENT_JOBS + 1: id 1
    // is the oldest of one too many, and goes.
    for seq in 2..=(MAX_SENT_JOBS as u64 + 1) {
        channel.record_job(job.clone(), seq, false, at_most(U256::MAX), difficulty());
    }
    assert!(channel.job("1").is_none());
    assert!(matches!(
        channel.check("1", &EN1, &share, 0, now),
        Err(Refusal::Stale(_))
    ));
    // Under another id of the same job and target it is the same share.
    assert_eq!(
        channel.check("2", &EN1, &share, 0, now).unwrap_err(),
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
        channel.check("1", &EN1, &submission(&job, 1), 0, now),
        Err(Refusal::LowDifficulty(_))
    ));
    channel.record_job(job.clone(), 2, false, at_most(U256::MAX), difficulty());
    // Mined more than five minutes before the pool's clock.
    assert!(matches!(
        channel.check("2", &EN1, &submission(&job, 1), 0, now + 301_000),
        Err(Refusal::Stale(_))
    ));
    // Version bits outside the negotiated mask (none).
    let rolled = ShareSubmission {
        version_bits: Some(0x0001_0000),
        ..submission(&job, 1)
    };
    assert!(matches!(
        channel.check("2", &EN1, &rolled, 0, now),
        Err(Refusal::Invalid(_))
    ));
}
