//! The core's rules, event by event, with the expected actions worked out
//! from the rules in the module's documentation (not from its code).

use super::*;
use crate::job::JobConfig;
use crate::share::tests::{EN1, submission};
use crate::template::BlockTemplate;
use crate::username::MinerId;
use crate::vardiff::VardiffConfig;
use bitcoin::ScriptBuf;
use std::time::Duration;

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);

fn d(s: &str) -> Difficulty {
    s.parse().unwrap()
}

/// Without vardiff, starting (and allowed down to) the least difficulty,
/// so that every share meets its target.
fn config() -> PoolConfig {
    let mut config = PoolConfig::new(
        Vec::new(),
        bitcoin::Network::Regtest,
        ScriptBuf::from_bytes(vec![0x51]),
    );
    config.vardiff = None;
    config.start_difficulty = Difficulty::MIN;
    config.min_difficulty = Difficulty::MIN;
    config
}

fn worker() -> MinerId {
    MinerId::parse(&format!("{ALICE}.rig")).unwrap()
}

/// The regtest job again as job `id`, on the previous block `prev` (the
/// fixture's if `None`), marked clean or not.
fn job_on(id: u64, prev: Option<u8>, clean: bool) -> Arc<Job> {
    let mut raw: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/regtest_gbt_txs.json")).unwrap();
    if let Some(byte) = prev {
        raw["previousblockhash"] = serde_json::json!(hex::encode([byte; 32]));
    }
    let template: BlockTemplate = serde_json::from_value(raw).unwrap();
    let job = Job::new(
        id,
        &template,
        &JobConfig::new(ScriptBuf::from_bytes(vec![0x51])),
        clean,
        proofpool_primitives::B256::ZERO,
    )
    .unwrap();
    Arc::new(job)
}

fn all(actions: Actions) -> Vec<Action> {
    actions.into_iter().collect()
}

/// A share with `nonce` on the job sent under `job_id`.
fn submit(core: &mut Core, job: &Job, job_id: &str, nonce: u32, miner: &MinerId) -> Action {
    let share = submission(job, nonce);
    let s = Submit {
        job_id,
        extranonce1: EN1,
        share,
        version_mask: 0,
        miner,
        instance: 1,
        now_ms: u64::from(job.ntime()) * 1000,
    };
    let mut actions = all(core.handle(Event::Submit(s), Instant::now()));
    assert_eq!(actions.len(), 1, "{actions:?}");
    actions.remove(0)
}

fn bound(config: &PoolConfig, at: Instant) -> Core {
    let mut core = Core::new(config, at);
    assert!(core.handle(Event::Bind(ALICE), at).is_empty());
    core
}

#[test]
fn nothing_is_sent_before_the_channel_is_bound() {
    let now = Instant::now();
    let mut core = Core::new(&config(), now);
    let job = job_on(1, None, true);
    let work = Event::Work {
        job: &job,
        seq: 1,
        resend: false,
    };
    assert!(core.handle(work, now).is_empty());
    assert!(core.channel().is_empty());
    assert_eq!(core.binding(), None);
}

#[test]
fn the_first_job_comes_after_its_difficulty_and_is_clean() {
    let now = Instant::now();
    let mut core = bound(&config(), now);
    assert!(!core.told_current());
    let job = job_on(1, None, false);
    let work = Event::Work {
        job: &job,
        seq: 1,
        resend: false,
    };
    let expected = Binding::new(ALICE, Difficulty::MIN.to_target());
    match all(core.handle(work, now)).as_slice() {
        [
            Action::NewTarget {
                difficulty,
                binding,
            },
            Action::SendJob {
                job: sent,
                seq: 1,
                clean: true,
                first: true,
                binding: job_binding,
            },
        ] => {
            assert_eq!(*difficulty, Difficulty::MIN);
            assert_eq!(*binding, expected);
            assert_eq!(*job_binding, expected);
            assert_eq!(sent.id(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(core.told_current());
    assert_eq!(core.channel().job_seq(), 1);
    // The same job again with nothing changed: nothing to resend.
    let again = Event::Work {
        job: &job,
        seq: 2,
        resend: true,
    };
    assert!(core.handle(again, now).is_empty());
}

#[test]
fn a_new_difficulty_goes_out_with_the_job_again_and_work_out_keeps_its_target() {
    let now = Instant::now();
    let mut core = bound(&config(), now);
    let job = job_on(1, None, true);
    let miner = worker();
    core.handle(
        Event::Work {
            job: &job,
            seq: 1,
            resend: false,
        },
        now,
    );
    assert!(core.handle(Event::Suggest(d("16")), now).is_empty());
    assert!(!core.told_current());
    assert_eq!(
        core.binding(),
        Some(Binding::new(ALICE, d("16").to_target()))
    );
    let resend = Event::Work {
        job: &job,
        seq: 2,
        resend: true,
    };
    match all(core.handle(resend, now)).as_slice() {
        [
            Action::NewTarget { difficulty, .. },
            Action::SendJob {
                seq: 2,
                clean: false,
                first: false,
                binding,
                ..
            },
        ] => {
            assert_eq!(*difficulty, d("16"));
            assert_eq!(binding.target(), d("16").to_target());
        }
        other => panic!("{other:?}"),
    }
    // Job 1 still counts, at the least difficulty it was sent with.
    match submit(&mut core, &job, "1", 7, &miner) {
        Action::Accept(accepted) => {
            assert_eq!(accepted.credited, Difficulty::MIN);
            // The target the job committed to (in compact form).
            let committed = Binding::new(ALICE, Difficulty::MIN.to_target()).target();
            assert_eq!(accepted.share.share_target, committed);
            assert_eq!(accepted.share.miner, ALICE);
        }
        other => panic!("{other:?}"),
    }
    // Job 2 wants difficulty 16: one hash in 2^36 meets it, not this one.
    assert!(matches!(
        submit(&mut core, &job, "2", 7, &miner),
        Action::Refuse(Refusal::LowDifficulty(_))
    ));
}

#[test]
fn a_new_block_makes_older_jobs_stale_and_a_fee_refresh_does_not() {
    let now = Instant::now();
    let mut core = bound(&config(), now);
    let miner = worker();
    let first = job_on(1, None, true);
    let refresh = job_on(2, None, false);
    let next_block = job_on(3, Some(0x77), false);
    for (job, seq) in [(&first, 1), (&refresh, 2)] {
        core.handle(
            Event::Work {
                job,
                seq,
                resend: false,
            },
            now,
        );
    }
    assert!(matches!(
        submit(&mut core, &first, "1", 1, &miner),
        Action::Accept(_)
    ));
    let work = Event::Work {
        job: &next_block,
        seq: 3,
        resend: false,
    };
    // Not marked clean, but on another previous block: clean.
    assert!(matches!(
        all(core.handle(work, now)).as_slice(),
        [Action::SendJob { clean: true, .. }]
    ));
    for (job, id) in [(&first, "1"), (&refresh, "2")] {
        assert!(matches!(
            submit(&mut core, job, id, 1, &miner),
            Action::Refuse(Refusal::Stale(_))
        ));
    }
    assert!(matches!(
        submit(&mut core, &next_block, "3", 1, &miner),
        Action::Accept(_)
    ));
}

#[test]
fn a_share_is_a_duplicate_once_recorded() {
    let now = Instant::now();
    let mut core = bound(&config(), now);
    let miner = worker();
    let job = job_on(1, None, true);
    core.handle(
        Event::Work {
            job: &job,
            seq: 1,
            resend: false,
        },
        now,
    );
    let Action::Accept(accepted) = submit(&mut core, &job, "1", 9, &miner) else {
        panic!("accepted");
    };
    // Not handed on yet: the same share checks again.
    assert!(matches!(
        submit(&mut core, &job, "1", 9, &miner),
        Action::Accept(_)
    ));
    // Filed without credit (the store refused, a block task holds it).
    let filed = Event::Recorded {
        key: accepted.key,
        credited: None,
    };
    assert!(core.handle(filed, now).is_empty());
    assert!(matches!(
        submit(&mut core, &job, "1", 9, &miner),
        Action::Refuse(Refusal::Duplicate)
    ));
    assert!(matches!(
        submit(&mut core, &job, "1", 10, &miner),
        Action::Accept(_)
    ));
}

fn vardiff_config() -> PoolConfig {
    let mut config = config();
    config.start_difficulty = d("8");
    config.min_difficulty = d("1");
    config.max_difficulty = d("1024");
    config.vardiff = Some(VardiffConfig {
        min_difficulty: d("1"),
        max_difficulty: d("1024"),
        ..VardiffConfig::default()
    });
    config
}

/// A share of difficulty 8 a second for `n` seconds, recorded: the
/// retargets they bring.
fn fast_shares(core: &mut Core, opened: Instant, n: u64) -> Vec<Difficulty> {
    (1..=n)
        .flat_map(|i| {
            let key = crate::share::ShareKey {
                job_id: 1,
                target_bits: 0,
                extranonce2: 0,
                ntime: 0,
                nonce: i as u32,
                version: 0,
            };
            let recorded = Event::Recorded {
                key,
                credited: Some(d("8")),
            };
            all(core.handle(recorded, opened + Duration::from_secs(i)))
        })
        .map(|a| match a {
            Action::Retarget(next) => next,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn vardiff_raises_a_fast_miner_from_recorded_shares_and_cuts_a_quiet_one_on_ticks() {
    let opened = Instant::now();
    let config = vardiff_config();
    let mut core = bound(&config, opened);
    // No work yet: a tick reports nothing.
    assert!(core.handle(Event::Tick, opened).is_empty());
    let job = job_on(1, None, true);
    core.handle(
        Event::Work {
            job: &job,
            seq: 1,
            resend: false,
        },
        opened,
    );
    // 60 shares a minute against vardiff's 18: raised by the 36th.
    let raised = fast_shares(&mut core, opened, 36);
    let last = *raised.last().expect("a fast miner is raised");
    assert!(last > d("8"), "{last}");
    assert_eq!(core.difficulty(), last);
    assert_eq!(core.binding(), Some(Binding::new(ALICE, last.to_target())));
    assert!(!core.told_current(), "goes out with the next job");

    // A quiet channel: ten intervals without a share bring a cut.
    let mut quiet = bound(&config, opened);
    quiet.handle(
        Event::Work {
            job: &job,
            seq: 1,
            resend: false,
        },
        opened,
    );
    let later = opened + quiet.retarget_interval() * 10;
    match all(quiet.handle(Event::Tick, later)).as_slice() {
        [Action::Hashrate(0), Action::Retarget(cut)] => assert!(*cut < d("8"), "{cut}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_channel_mining_declared_jobs_stays_at_its_tokens_target() {
    let opened = Instant::now();
    let mut core = bound(&vardiff_config(), opened);
    let job = job_on(1, None, true);
    let token = Binding::new(BOB, d("2").to_target());
    let declared = Event::Declared {
        job: job.clone(),
        seq: 1,
        binding: token,
    };
    match all(core.handle(declared, opened)).as_slice() {
        [
            Action::NewTarget {
                difficulty,
                binding,
            },
        ] => {
            assert_eq!(*binding, token);
            assert_eq!(*difficulty, Difficulty::from_target(token.target()));
        }
        other => panic!("{other:?}"),
    }
    // Its jobs are credited to the token's address at its target.
    let sent = core.channel().job("1").expect("filed");
    assert_eq!(sent.binding, token);
    // The same token again: no new target.
    let again = Event::Declared {
        job: job.clone(),
        seq: 2,
        binding: token,
    };
    assert!(core.handle(again, opened).is_empty());
    // The pool's work and vardiff's choices do not apply.
    let work = Event::Work {
        job: &job,
        seq: 3,
        resend: false,
    };
    assert!(core.handle(work, opened).is_empty());
    assert!(fast_shares(&mut core, opened, 60).is_empty());
    assert_eq!(core.binding(), Some(token));
}
