//! Share validation against a real pool's accepted share and every rejection.

use super::*;
use crate::job::JobConfig;
use crate::job::tests::{LOG_HEAD, Notify, PUBLIC_POOL, be_u32, binding, unhex};
use crate::template::BlockTemplate;
use alloy_primitives::Address;
use bitcoin::ScriptBuf;
use bitcoin::hashes::sha256d;
use serde_json::Value;

const GBT_TXS: &str = include_str!("../../tests/fixtures/regtest_gbt_txs.json");

/// Bitcoin's difficulty-1 target (nBits 0x1d00ffff).
fn diff1() -> U256 {
    U256::from(0xffffu64) << 208
}

fn target_for_difficulty(difficulty: u64) -> U256 {
    diff1() / U256::from(difficulty)
}

/// The test connection's binding at (at most) `target`.
pub(crate) fn at_most(target: U256) -> Binding {
    Binding::new(Address::repeat_byte(0xa5), target)
}

#[test]
fn accepts_the_share_a_real_pool_accepted() {
    let f: Value = serde_json::from_str(PUBLIC_POOL).unwrap();
    let s = &f["submit"];
    let job = Job::from_notify(&Notify::from_fixture(&f), 4);
    let extranonce1 = unhex(&s["extranonce1"]);
    let extranonce2 = unhex(&s["extranonce2"]);
    let sub = ShareSubmission {
        extranonce2: &extranonce2,
        ntime: be_u32(&s["ntime"]),
        nonce: be_u32(&s["nonce"]),
        version_bits: Some(be_u32(&s["version_bits"])),
    };
    let mask = be_u32(&s["version_mask"]);
    let now = job.ntime() + 10;
    let target = target_for_difficulty(8192);

    let valid = validate(&job, &extranonce1, &sub, mask, &at_most(target), now).unwrap();
    assert_eq!(
        valid.block_hash().to_string(),
        f["share_hash"].as_str().unwrap()
    );
    // ESP-Miner logged "ver: 20B44000" for this share.
    assert_eq!(valid.version, 0x20b4_4000);
    assert!(!valid.meets_network);
    // Credited at the committed target: the asked one rounded down to its
    // compact form.
    assert_eq!(
        valid.work,
        Work::from_target(at_most(target).target()).unwrap()
    );
    assert!(at_most(target).target() <= target);
    assert_eq!(&valid.header[..4], &0x20b4_4000u32.to_le_bytes());

    // The hash's own difficulty is about 29588: a 30000 target refuses it.
    let err = validate(
        &job,
        &extranonce1,
        &sub,
        mask,
        &at_most(target_for_difficulty(30_000)),
        now,
    );
    assert_eq!(err, Err(ShareError::LowDifficulty { hash: valid.hash }));
    assert!(
        validate(
            &job,
            &extranonce1,
            &sub,
            mask,
            &at_most(target_for_difficulty(29_000)),
            now
        )
        .is_ok()
    );
}

pub(crate) fn regtest_job() -> Job {
    let template: BlockTemplate = serde_json::from_str(GBT_TXS).unwrap();
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(&[0x22; 20]);
    Job::new(
        42,
        &template,
        &JobConfig::new(ScriptBuf::from_bytes(script)),
        true,
        LOG_HEAD,
    )
    .unwrap()
}

pub(crate) const EN1: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
const EN2: [u8; 8] = [0, 0, 0, 0, 0, 0, 1, 2];

pub(crate) fn submission(job: &Job, nonce: u32) -> ShareSubmission<'static> {
    ShareSubmission {
        extranonce2: &EN2,
        ntime: job.ntime(),
        nonce,
        version_bits: None,
    }
}

#[test]
fn credits_the_share_target_and_spots_blocks() {
    let job = regtest_job();
    let now = job.ntime();
    // Every hash meets U256::MAX: the work credited is 1, whatever the luck.
    let shares: Vec<ValidShare> = (0..16)
        .map(|n| {
            validate(
                &job,
                &EN1,
                &submission(&job, n),
                0,
                &at_most(U256::MAX),
                now,
            )
            .unwrap()
        })
        .collect();
    assert!(shares.iter().all(|s| s.work == Work(U256::from(1u8))));
    // Regtest's target is about 2^255: some of 16 nonces solve a block, some don't.
    assert!(shares.iter().any(|s| s.meets_network));
    assert!(shares.iter().any(|s| !s.meets_network));
    for s in &shares {
        let value = U256::from_le_bytes(s.hash.0.0);
        assert_eq!(s.meets_network, value <= job.network_target());
        assert_eq!(
            s.header,
            job.header(&binding(), &EN1, &EN2, s.key.ntime, s.key.nonce, s.version)
        );
        assert_eq!(s.version, job.version());
    }
}

#[test]
fn the_key_names_the_header() {
    let job = regtest_job();
    let now = job.ntime();
    let a = validate(
        &job,
        &EN1,
        &submission(&job, 7),
        0,
        &at_most(U256::MAX),
        now,
    )
    .unwrap();
    let b = validate(
        &job,
        &EN1,
        &submission(&job, 7),
        0,
        &at_most(U256::MAX),
        now,
    )
    .unwrap();
    assert_eq!(a.key, b.key);
    assert_eq!(
        a.key,
        ShareKey {
            job_id: 42,
            target_bits: binding().target_bits(),
            extranonce2: 0x0102,
            ntime: job.ntime(),
            nonce: 7,
            version: job.version(),
        }
    );
    let other_en2 = [0, 0, 0, 0, 0, 0, 2, 1];
    let c = validate(
        &job,
        &EN1,
        &ShareSubmission {
            extranonce2: &other_en2,
            ..submission(&job, 7)
        },
        0,
        &at_most(U256::MAX),
        now,
    )
    .unwrap();
    assert_ne!(a.key, c.key);
    assert_ne!(a.hash, c.hash);
    let mut seen = std::collections::HashSet::new();
    assert!(seen.insert(a.key));
    assert!(!seen.insert(b.key));

    // The key can be had before hashing, and is the same.
    let sub = submission(&job, 7);
    assert_eq!(ShareKey::new(&job, &binding(), &sub, 0), Ok(a.key));
    // No version bits and bits that roll nothing give one header, so one key.
    let zero_bits = ShareSubmission {
        version_bits: Some(0),
        ..sub
    };
    let z = validate(
        &job,
        &EN1,
        &zero_bits,
        0x1fff_e000,
        &at_most(U256::MAX),
        now,
    )
    .unwrap();
    assert_eq!(z.hash, a.hash);
    assert_eq!(
        ShareKey::new(&job, &binding(), &zero_bits, 0x1fff_e000),
        Ok(a.key)
    );
    assert_eq!(z.key, a.key);
    let outside = ShareSubmission {
        version_bits: Some(1),
        ..sub
    };
    assert!(matches!(
        ShareKey::new(&job, &binding(), &outside, 0x1fff_e000),
        Err(ShareError::VersionBitsOutsideMask { .. })
    ));
}

#[test]
fn rolls_version_bits_within_the_mask() {
    assert_eq!(
        rolled_version(0x2000_0000, 0x00b4_4000, 0x1fff_e000),
        Ok(0x20b4_4000)
    );
    // Bits inside the mask replace the job's; bits outside are refused.
    assert_eq!(
        rolled_version(0x2000_4000, 0x0000_2000, 0x1fff_e000),
        Ok(0x2000_2000)
    );
    assert_eq!(
        rolled_version(0x2000_0000, 0x20b4_4000, 0x1fff_e000),
        Err(ShareError::VersionBitsOutsideMask {
            bits: 0x20b4_4000,
            mask: 0x1fff_e000
        })
    );
    // Without a negotiated mask only zero bits pass, leaving the version as is.
    assert_eq!(rolled_version(0x2000_0000, 0, 0), Ok(0x2000_0000));

    let job = regtest_job();
    let sub = ShareSubmission {
        version_bits: Some(0x0000_6000),
        ..submission(&job, 1)
    };
    let valid = validate(
        &job,
        &EN1,
        &sub,
        0x1fff_e000,
        &at_most(U256::MAX),
        job.ntime(),
    )
    .unwrap();
    assert_eq!(valid.version, job.version() | 0x6000);
    assert_eq!(valid.key.version, valid.version);
}

#[test]
fn every_rejection() {
    let job = regtest_job();
    let now = job.ntime();
    let ok = submission(&job, 1);
    let check = |en1: &[u8], sub: ShareSubmission<'_>, mask: u32, target: U256| {
        validate(&job, en1, &sub, mask, &at_most(target), now).unwrap_err()
    };

    assert_eq!(
        check(&EN1[..3], ok, 0, U256::MAX),
        ShareError::Extranonce1Length {
            expected: 4,
            got: 3
        }
    );
    for len in [0, 7, 9] {
        let en2 = vec![0u8; len];
        let sub = ShareSubmission {
            extranonce2: &en2,
            ..ok
        };
        assert_eq!(
            check(&EN1, sub, 0, U256::MAX),
            ShareError::Extranonce2Length {
                expected: 8,
                got: len
            }
        );
    }
    let rolled = ShareSubmission {
        version_bits: Some(0x0001_0000),
        ..ok
    };
    assert_eq!(
        check(&EN1, rolled, 0, U256::MAX),
        ShareError::VersionBitsOutsideMask {
            bits: 0x0001_0000,
            mask: 0
        }
    );
    let early = ShareSubmission {
        ntime: job.ntime() - 1,
        ..ok
    };
    assert_eq!(
        check(&EN1, early, 0, U256::MAX),
        ShareError::NtimeTooOld {
            ntime: job.ntime() - 1,
            min: job.ntime()
        }
    );
    // Mined more than five minutes before the pool's clock: stale.
    assert_eq!(
        validate(
            &job,
            &EN1,
            &ok,
            0,
            &at_most(U256::MAX),
            ok.ntime + MAX_NTIME_BEHIND + 1
        )
        .unwrap_err(),
        ShareError::NtimeStale {
            ntime: ok.ntime,
            min: u64::from(ok.ntime) + 1
        }
    );
    let late = ShareSubmission {
        ntime: now + MAX_NTIME_AHEAD + 1,
        ..ok
    };
    assert_eq!(
        check(&EN1, late, 0, U256::MAX),
        ShareError::NtimeTooNew {
            ntime: now + MAX_NTIME_AHEAD + 1,
            max: u64::from(now + MAX_NTIME_AHEAD)
        }
    );
    assert_eq!(check(&EN1, ok, 0, U256::ZERO), ShareError::ZeroTarget);
    // A target of 1 is met by no real hash.
    match check(&EN1, ok, 0, U256::from(1u8)) {
        ShareError::LowDifficulty { hash } => {
            assert_eq!(
                hash.0.0,
                sha256d::Hash::hash(&job.header(
                    &at_most(U256::from(1u8)),
                    &EN1,
                    &EN2,
                    ok.ntime,
                    ok.nonce,
                    job.version()
                ))
                .to_byte_array()
            );
        }
        other => panic!("expected LowDifficulty, got {other:?}"),
    }
}

#[test]
fn ntime_bounds_are_inclusive() {
    let job = regtest_job();
    let now = job.ntime() + MAX_NTIME_BEHIND;
    for ntime in [job.ntime(), now + MAX_NTIME_AHEAD] {
        let sub = ShareSubmission {
            ntime,
            ..submission(&job, 1)
        };
        assert!(validate(&job, &EN1, &sub, 0, &at_most(U256::MAX), now).is_ok());
    }
    // A pool clock near u32::MAX does not overflow the bound.
    let sub = ShareSubmission {
        ntime: u32::MAX,
        ..submission(&job, 1)
    };
    assert!(validate(&job, &EN1, &sub, 0, &at_most(U256::MAX), u32::MAX).is_ok());
}

#[test]
fn the_hash_equal_to_the_target_is_accepted() {
    let job = regtest_job();
    let sub = submission(&job, 3);
    let bits = binding().target_bits();
    let hash = sha256d::Hash::hash(&job.header(
        &binding(),
        &EN1,
        &EN2,
        sub.ntime,
        sub.nonce,
        job.version(),
    ));
    let exact = U256::from_le_bytes(hash.to_byte_array());
    // Targets no compact form holds, under the same commitment: the
    // comparison alone is under test.
    let at = |target| Binding::for_tests(Address::repeat_byte(0xa5), bits, target);
    assert!(validate(&job, &EN1, &sub, 0, &at(exact), job.ntime()).is_ok());
    assert!(matches!(
        validate(
            &job,
            &EN1,
            &sub,
            0,
            &at(exact - U256::from(1u8)),
            job.ntime()
        ),
        Err(ShareError::LowDifficulty { .. })
    ));
}

#[test]
fn errors_read_well() {
    let e = ShareError::VersionBitsOutsideMask {
        bits: 0x2000_0000,
        mask: 0x1fff_e000,
    };
    assert_eq!(
        e.to_string(),
        "version bits 0x20000000 fall outside the negotiated mask 0x1fffe000"
    );
    let low = ShareError::LowDifficulty {
        hash: ShareHash(B256::new([0xab; 32])),
    };
    assert!(low.to_string().starts_with("hash abab"));
}
