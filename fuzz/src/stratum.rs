//! `stratum_line`: from the bytes a miner sends to the lines the pool answers.
//!
//! The input is split at `\n` into lines, as the pool's reader does, and each
//! line goes through [`parse_line`]. A request is answered the way the pool's
//! V1 session answers it. The session's state is the pool's real session
//! core, [`Core`], driven through [`Core::handle`] with the events the V1
//! session sends it (the address bound, difficulties asked for, jobs to
//! send, shares, shares recorded): the jobs sent and what they commit to,
//! duplicates, every share check and the share log's record, and the
//! difficulty the miner asks for, clamped to the pool's bounds, told before
//! the job that carries it. The V1 front end around it
//! (`pool/src/sv1/session.rs`, tied to its socket) is modelled with the
//! public API: usernames through [`MinerId::parse`], difficulties sent back
//! with `mining.set_difficulty` and a job at the new target, and
//! `mining.configure` through [`configure_result`]. Its gates (subscribe and
//! authorize first, rate limits) are not modelled: every share is checked,
//! on the job id it names if the channel was sent it and on the latest job
//! otherwise, so that the fuzzer reaches the checks at once.
//!
//! Every share the core answers is also checked against an oracle built
//! apart from it: [`validate`] and [`ShareKey::new`] against the header and
//! hash recomputed here, a set of the keys accepted so far, and the record
//! the share log would get, field by field.
//!
//! What is asserted, beyond "no panic":
//! - every line the pool writes ends in one `\n`, has no other line break,
//!   is a JSON object and reads back with the miner's parser
//!   ([`parse_server_line`]); a reply carries the request's id unchanged;
//! - the `mining.submit` fast path of [`parse_line`] gives what the general
//!   parser gives, whenever it takes a line;
//! - a request re-encoded with the miner's builders parses to the same
//!   request (difficulties exactly when they have at most 15 significant
//!   digits, as the crate documents);
//! - a parsed username, difficulty and share are self-consistent (see
//!   [`check_miner_id`], [`check_difficulty`] and [`Session::submit`]);
//! - the core accepts exactly the shares the oracle accepts, refuses the
//!   others for the oracle's reason, and credits an accepted one at its
//!   job's committed target and difficulty.

use bitcoin::ScriptBuf;
use bitcoin::hashes::{Hash, sha256d};
use proofpool_pool::{
    Accepted, Action, Binding, BlockTemplate, Core, Event, Job, JobConfig, MAX_WORKER_LEN,
    MinerId, PoolConfig, Refusal, ShareError, ShareKey, ShareSubmission, Submit, validate,
};
use proofpool_primitives::{Difficulty, U256, Work};
use proofpool_stratum::{
    ClientMethod, ConfigureResult, ErrorCode, Id, MAX_LINE_BYTES, Message, ParseError, ReplyError,
    ServerMessage, SubscribeReply, configure_result, miner, parse_line, parse_line_general,
    parse_server_line, reply_error, reply_ok, reply_true, set_difficulty, subscribe_result,
};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const GBT_TXS: &str = include_str!("../../pool/tests/fixtures/regtest_gbt_txs.json");

/// The session's extranonce1, as the pool would lease it.
pub const EXTRANONCE1: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
/// The address every share's coinbase commits to in the harness.
pub const MINER: proofpool_primitives::Address = proofpool_primitives::Address::repeat_byte(0xa5);
/// The share-log head the harness's job commits to.
pub const LOG_HEAD: proofpool_primitives::B256 = proofpool_primitives::B256::repeat_byte(0x1c);
/// The version bits the pool lets miners roll (its default, BIP320's).
pub const POOL_VERSION_MASK: u32 = 0x1fff_e000;
/// How far the model's clock is past the job's ntime, in seconds: inside
/// the pool's 300 s window, so both an ntime too old and one too new are
/// within a fuzzer's reach of the job's.
pub const CLOCK_AHEAD: u32 = 120;

/// The job every share is checked against: the regtest template fixture
/// (four transactions; regtest's target, so about half the hashes solve a
/// block), job id 1, the default coinbase configuration.
pub fn job() -> &'static Arc<Job> {
    static JOB: OnceLock<Arc<Job>> = OnceLock::new();
    JOB.get_or_init(|| {
        let template: BlockTemplate =
            serde_json::from_str(GBT_TXS).expect("the fixture is a block template");
        let mut script = vec![0x00, 0x14];
        script.extend_from_slice(&[0x22; 20]);
        Arc::new(
            Job::new(
                1,
                &template,
                &JobConfig::new(ScriptBuf::from_bytes(script)),
                true,
                LOG_HEAD,
            )
            .expect("the fixture builds a job"),
        )
    })
}

/// The instance id the core writes into share records.
const INSTANCE: u8 = 7;

/// The pool's default difficulty bounds: `1e-5 ..= 2^40`.
fn bounds() -> (Difficulty, Difficulty) {
    (
        Difficulty::from_parts(1, 5).expect("1e-5 is a difficulty"),
        Difficulty::from_integer(1 << 40).expect("2^40 is a difficulty"),
    )
}

/// The pool's configuration for the core: defaults, without vardiff (the
/// fuzzer's shares come with no clock), starting below the pool's minimum
/// difficulty so that every share meets it until the miner suggests one:
/// the fuzzer reaches accepted shares and blocks without searching nonces.
fn config() -> PoolConfig {
    let mut config = PoolConfig::new(
        Vec::new(),
        bitcoin::Network::Regtest,
        ScriptBuf::from_bytes(vec![0x51]),
    );
    config.vardiff = None;
    config.start_difficulty = Difficulty::MIN;
    config
}

/// Runs one input: every line, in order, through one session.
pub fn run(data: &[u8]) {
    let mut session = Session::new(job());
    for line in data.split(|&b| b == b'\n') {
        session.line(line);
    }
}

/// What the pool's session remembers between lines: the real core, and the
/// oracle's own record of what it expects.
struct Session {
    job: &'static Arc<Job>,
    /// The mask granted by `mining.configure` (0: no rolling).
    version_mask: u32,
    /// The core: the jobs sent, the shares accepted on them and the
    /// difficulty the next job carries.
    core: Core,
    /// The worker shares are submitted for: the last one authorized.
    miner: MinerId,
    /// The oracle: the difficulty the latest job was sent at.
    difficulty: Difficulty,
    /// The oracle: keys of accepted shares.
    seen: HashSet<ShareKey>,
}

impl Session {
    fn new(job: &'static Arc<Job>) -> Self {
        let now = Instant::now();
        let mut core = Core::new(&config(), now);
        assert!(core.handle(Event::Bind(MINER), now).is_empty());
        let difficulty = core.difficulty();
        assert_eq!(difficulty, Difficulty::MIN, "the core starts where configured");
        let mut session = Self {
            job,
            version_mask: 0,
            core,
            miner: MinerId::parse(&format!("{MINER}.fuzz")).expect("a valid username"),
            difficulty,
            seen: HashSet::new(),
        };
        session.send_job(true);
        session
    }

    /// Sends the job at the current difficulty, as the session does at the
    /// start (`first`: clean, told the difficulty first) and after a
    /// difficulty change (told it first, not clean: work in flight stays
    /// valid at its own target).
    fn send_job(&mut self, first: bool) {
        let seq = self.core.channel().job_seq() + 1;
        let work = Event::Work {
            job: self.job,
            seq,
            resend: !first,
        };
        let binding = Binding::new(MINER, self.difficulty.to_target());
        let actions: Vec<Action> = self.core.handle(work, Instant::now()).into_iter().collect();
        match actions.as_slice() {
            [
                Action::NewTarget {
                    difficulty,
                    binding: told,
                },
                Action::SendJob {
                    job,
                    seq: sent,
                    clean,
                    first: was_first,
                    binding: committed,
                },
            ] => {
                assert_eq!(*difficulty, self.difficulty);
                assert_eq!((*told, *committed), (binding, binding));
                assert_eq!(job.id(), self.job.id());
                assert_eq!(*sent, seq);
                assert_eq!((*clean, *was_first), (first, first));
            }
            other => panic!("sending the job at a new difficulty brought {other:?}"),
        }
        assert!(self.core.told_current());
        assert_eq!(self.core.channel().job_seq(), seq);
        assert_eq!(self.core.channel().last_job_id(), Some(self.job.id()));
    }

    fn line(&mut self, bytes: &[u8]) {
        let parsed = parse_line(bytes);
        // The `mining.submit` fast path never disagrees with the general parser.
        assert_eq!(
            parsed,
            parse_line_general(bytes),
            "fast and general parsers differ"
        );
        match parsed {
            Ok(Message::Request { id, method }) => {
                check_reencoded(&id, &method);
                self.request(&id, method);
            }
            // A reply to the pool's `client.get_version`: nothing to answer.
            Ok(Message::ClientReply { .. }) => {}
            Err(ParseError::Empty) => {
                let text = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                assert!(
                    std::str::from_utf8(text).is_ok_and(|s| s.trim().is_empty()),
                    "a line with content parsed as empty"
                );
            }
            Err(e) => {
                let stripped = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                assert_eq!(
                    matches!(e, ParseError::TooLong { .. }),
                    stripped.len() > MAX_LINE_BYTES,
                    "the length limit: {e}"
                );
                // With an id the pool answers that request; without one it
                // says why on a null id and hangs up.
                let id = e.id().cloned().unwrap_or_default();
                let message = e.to_string();
                let line = reply_error(&id, ErrorCode::Other, &message);
                let (result, error) = check_reply(&line, &id);
                assert_eq!(result, Value::Null);
                assert_error(error, ErrorCode::Other, &message);
            }
        }
    }

    fn request(&mut self, id: &Id, method: ClientMethod) {
        match method {
            ClientMethod::Subscribe { user_agent, .. } => {
                // The pool names the subscription after the extranonce1; the
                // user agent is used instead so that arbitrary text goes
                // through the builder's string escaping.
                let sid = user_agent.unwrap_or_else(|| "deadbeef".to_owned());
                let en2_len = self.job.extranonce2_len();
                let line = subscribe_result(id, &sid, &EXTRANONCE1, en2_len);
                let (result, error) = check_reply(&line, id);
                assert_eq!(error, None);
                assert_eq!(
                    SubscribeReply::from_result(&result),
                    Some(SubscribeReply {
                        extranonce1: EXTRANONCE1.to_vec(),
                        extranonce2_size: en2_len,
                    })
                );
                assert_eq!(result[0][0][1].as_str(), Some(sid.as_str()));
                assert_eq!(result[0][1][1].as_str(), Some(sid.as_str()));
            }
            ClientMethod::Authorize { username, .. } => match MinerId::parse(&username) {
                Ok(miner) => {
                    check_miner_id(&username, &miner);
                    self.miner = miner;
                    expect_true(id);
                }
                Err(e) => {
                    let message = e.to_string();
                    let line = reply_error(id, ErrorCode::Unauthorized, &message);
                    let (_, error) = check_reply(&line, id);
                    assert_error(error, ErrorCode::Unauthorized, &message);
                }
            },
            ClientMethod::Configure {
                version_rolling,
                minimum_difficulty,
                subscribe_extranonce,
                unknown,
            } => {
                // As the session does: grant the overlap with the pool's
                // mask if it has enough bits, else refuse and stop rolling.
                let mut refused = unknown;
                let mut granted = None;
                if let Some(vr) = version_rolling {
                    let mask = POOL_VERSION_MASK & vr.mask;
                    if mask != 0 && mask.count_ones() >= vr.min_bit_count {
                        self.version_mask = mask;
                        granted = Some(mask);
                    } else {
                        self.version_mask = 0;
                        refused.push("version-rolling".to_owned());
                    }
                }
                if let Some(d) = minimum_difficulty {
                    self.suggest(d);
                }
                let result = ConfigureResult {
                    version_rolling: granted,
                    minimum_difficulty: minimum_difficulty.map(|_| true),
                    subscribe_extranonce: subscribe_extranonce.then_some(true),
                    refused: &refused,
                };
                let line = configure_result(id, &result);
                let (result, error) = check_reply(&line, id);
                assert_eq!(error, None);
                let object = result.as_object().expect("a configure result is an object");
                // Names the miner made up may clash with the keys the pool
                // writes (`version-rolling.mask`); then the grant is not
                // readable, and neither is it without version rolling.
                if !refused.iter().any(|n| n.starts_with("version-rolling")) {
                    assert_eq!(miner::configured_version_mask(&result), granted);
                }
                if !refused.iter().any(|n| n == "minimum-difficulty") {
                    assert_eq!(
                        object.get("minimum-difficulty").and_then(Value::as_bool),
                        minimum_difficulty.map(|_| true)
                    );
                }
                for name in &refused {
                    if !name.starts_with("version-rolling") {
                        assert_eq!(object.get(name), Some(&Value::Bool(false)), "{name:?}");
                    }
                }
            }
            ClientMethod::SuggestDifficulty(d) => {
                check_difficulty(d);
                self.suggest(d);
                expect_true(id);
            }
            ClientMethod::SuggestTarget(target) => {
                assert!(!target.is_zero(), "a zero target parsed");
                let d = Difficulty::from_target(target);
                assert!(
                    d.to_target() >= target,
                    "from_target({target:#x}) = {d} asks for more than the target"
                );
                check_difficulty(d);
                self.suggest(d);
                expect_true(id);
            }
            ClientMethod::ExtranonceSubscribe
            | ClientMethod::Capabilities
            | ClientMethod::MultiVersion => expect_true(id),
            ClientMethod::Submit {
                job_id,
                extranonce2,
                ntime,
                nonce,
                version_bits,
                ..
            } => {
                let sub = ShareSubmission {
                    extranonce2: &extranonce2,
                    ntime,
                    nonce,
                    version_bits,
                };
                self.submit(id, &job_id, &sub);
            }
            ClientMethod::GetTransactions { .. } => {
                let txids: Vec<String> = self
                    .job
                    .transactions()
                    .iter()
                    .map(|tx| tx.compute_txid().to_string())
                    .collect();
                let line = reply_ok(id, &txids).expect("strings encode as json");
                let (result, error) = check_reply(&line, id);
                assert_eq!(error, None);
                assert_eq!(result, serde_json::json!(txids));
            }
            ClientMethod::Unknown { method } => {
                let message = format!("unknown method {method}");
                let line = reply_error(id, ErrorCode::Other, &message);
                let (_, error) = check_reply(&line, id);
                assert_error(error, ErrorCode::Other, &message);
            }
        }
    }

    /// A difficulty the miner asked for: clamped, sent back at once, and
    /// the job sent again at its target.
    fn suggest(&mut self, d: Difficulty) {
        let (min, max) = bounds();
        let clamped = d.clamp(min, max);
        assert!(min <= clamped && clamped <= max, "{d} clamps to {clamped}");
        assert!(
            self.core
                .handle(Event::Suggest(d), Instant::now())
                .is_empty()
        );
        assert_eq!(
            self.core.difficulty(),
            clamped,
            "the core clamps {d} to the pool's bounds"
        );
        if clamped != self.difficulty {
            assert!(!self.core.told_current());
            self.difficulty = clamped;
            self.send_job(false);
        } else {
            // Nothing changed: nothing to send again.
            assert!(self.core.told_current());
            let again = Event::Work {
                job: self.job,
                seq: self.core.channel().job_seq() + 1,
                resend: true,
            };
            assert!(self.core.handle(again, Instant::now()).is_empty());
        }
        let line = set_difficulty(clamped);
        let body = check_line(&line);
        assert_eq!(body["method"], "mining.set_difficulty");
        assert_eq!(body["id"], Value::Null);
        match parse_server_line(line.as_bytes()) {
            Ok(ServerMessage::SetDifficulty(read)) => {
                if exact_in_json(clamped) {
                    assert_eq!(read, clamped, "set_difficulty {}", line.trim_end());
                }
            }
            // More than 15 significant digits go through f64, which may
            // need more than 18 decimal places: unreadable, as documented.
            Err(ParseError::BadParams { .. }) if !exact_in_json(clamped) => {}
            other => panic!("set_difficulty {} read back as {other:?}", line.trim_end()),
        }
    }

    /// The core's share checks, the oracle's, then the reply the session
    /// sends.
    fn submit(&mut self, id: &Id, job_id: &str, sub: &ShareSubmission<'_>) {
        let job = self.job;
        let mask = self.version_mask;
        let now = job.ntime() + CLOCK_AHEAD;
        let latest = format!("{:x}", self.core.channel().job_seq());
        let miner = &self.miner;
        let on = |job_id, now_ms| Submit {
            job_id,
            extranonce1: EXTRANONCE1,
            share: *sub,
            version_mask: mask,
            miner,
            instance: INSTANCE,
            now_ms,
        };
        let job_id = if self.core.channel().job(job_id).is_some() {
            job_id
        } else {
            // A job the channel was never sent (or forgot) is stale, in the
            // core as in the rules; the share is checked on the latest job.
            let core = check(&mut self.core, on(job_id, u64::from(now) * 1000));
            assert!(
                matches!(core, Err(Refusal::Stale(_))),
                "job {job_id:?} was never sent: {core:?}"
            );
            latest.as_str()
        };
        // The job's coinbase commits to the miner and the difficulty's
        // target in compact form; shares are checked and credited at that.
        // A job id the miner named may be one sent before a difficulty
        // change: its own target holds.
        let (binding, credited) = {
            let sent = self.core.channel().job(job_id).expect("the job was sent");
            (sent.binding, sent.difficulty)
        };
        assert_eq!(binding.miner(), MINER);
        assert_eq!(binding, Binding::new(MINER, credited.to_target()));
        if job_id == latest {
            assert_eq!(credited, self.difficulty);
        }
        let target = binding.target();
        assert!(target <= credited.to_target());
        let core = check(&mut self.core, on(job_id, u64::from(now) * 1000 + 999));
        let key = ShareKey::new(job, &binding, sub, mask);
        let result = validate(job, &EXTRANONCE1, sub, mask, &binding, now);
        assert_eq!(
            result,
            validate(job, &EXTRANONCE1, sub, mask, &binding, now),
            "validation is deterministic"
        );
        let en2_ok = sub.extranonce2.len() == job.extranonce2_len();
        let bits_ok = sub.version_bits.is_none_or(|bits| bits & !mask == 0);
        let time_ok = job.ntime() <= sub.ntime
            && u64::from(sub.ntime) + u64::from(proofpool_pool::MAX_NTIME_BEHIND) >= u64::from(now)
            && u64::from(sub.ntime) <= u64::from(now) + u64::from(proofpool_pool::MAX_NTIME_AHEAD);
        assert_eq!(
            key.is_ok(),
            bits_ok,
            "ShareKey::new refuses exactly the bad version bits"
        );
        match &result {
            Err(ShareError::Extranonce2Length { expected, got }) => {
                assert!(!en2_ok);
                assert_eq!(
                    (*expected, *got),
                    (job.extranonce2_len(), sub.extranonce2.len())
                );
            }
            Err(ShareError::VersionBitsOutsideMask { .. }) => {
                assert!(en2_ok && !bits_ok);
                assert_eq!(key.as_ref().err(), result.as_ref().err());
            }
            Err(
                ShareError::NtimeTooOld { .. }
                | ShareError::NtimeStale { .. }
                | ShareError::NtimeTooNew { .. },
            ) => {
                assert!(en2_ok && bits_ok && !time_ok);
            }
            Err(ShareError::LowDifficulty { hash }) => {
                assert!(en2_ok && bits_ok && time_ok);
                assert!(U256::from_le_bytes(hash.0.0) > target);
            }
            Err(e) => panic!("unexpected share error {e:?}"),
            Ok(share) => {
                assert!(en2_ok && bits_ok && time_ok);
                assert_eq!(key.as_ref().ok(), Some(&share.key));
                let version = match sub.version_bits {
                    Some(bits) => (job.version() & !mask) | bits,
                    None => job.version(),
                };
                assert_eq!(share.version, version);
                assert_eq!(
                    share.header,
                    job.header(
                        &binding,
                        &EXTRANONCE1,
                        sub.extranonce2,
                        sub.ntime,
                        sub.nonce,
                        version
                    )
                );
                assert_eq!(
                    share.hash.0.0,
                    sha256d::Hash::hash(&share.header).to_byte_array()
                );
                let value = U256::from_le_bytes(share.hash.0.0);
                assert!(value <= target);
                assert_eq!(Ok(share.work), Work::from_target(target));
                assert_eq!(share.meets_network, value <= job.network_target());
                if share.meets_network {
                    let block = job
                        .assemble_block(
                            &binding,
                            &EXTRANONCE1,
                            sub.extranonce2,
                            sub.ntime,
                            sub.nonce,
                            version,
                        )
                        .expect("a valid share's extranonces fit its job");
                    assert_eq!(block.block_hash(), share.block_hash());
                    assert!(block.check_merkle_root());
                    assert!(block.check_witness_commitment());
                }
            }
        }

        // The core's answer, in the session's order: bad bits, duplicate,
        // validation; and the reply the session sends for it.
        let (code, message) = match (&key, &result, core) {
            (Err(e), _, Err(Refusal::Invalid(m))) => {
                assert_eq!(m, e.to_string());
                (ErrorCode::Other, m)
            }
            (Ok(key), _, Err(Refusal::Duplicate)) if self.seen.contains(key) => {
                (ErrorCode::Duplicate, "duplicate share".to_owned())
            }
            (Ok(key), Ok(valid), Ok(accepted)) if !self.seen.contains(key) => {
                self.check_accepted(&accepted, valid, &binding, credited, sub, now);
                let recorded = Event::Recorded {
                    key: accepted.key,
                    credited: Some(credited),
                };
                // No vardiff: an accepted share never moves the difficulty.
                assert!(self.core.handle(recorded, Instant::now()).is_empty());
                self.seen.insert(*key);
                expect_true(id);
                return;
            }
            (Ok(key), Err(e @ ShareError::LowDifficulty { .. }), Err(Refusal::LowDifficulty(m)))
                if !self.seen.contains(key) =>
            {
                assert_eq!(m, e.to_string());
                (ErrorCode::LowDifficulty, m)
            }
            (Ok(key), Err(e @ ShareError::NtimeStale { .. }), Err(Refusal::Stale(m)))
                if !self.seen.contains(key) =>
            {
                assert_eq!(m, e.to_string());
                (ErrorCode::JobNotFound, m)
            }
            (Ok(key), Err(e), Err(Refusal::Invalid(m)))
                if !self.seen.contains(key)
                    && !matches!(
                        e,
                        ShareError::LowDifficulty { .. } | ShareError::NtimeStale { .. }
                    ) =>
            {
                assert_eq!(m, e.to_string());
                (ErrorCode::Other, m)
            }
            (key, result, core) => panic!(
                "the core answered {core:?}; the oracle expected key {key:?}, validation {result:?}, seen before: {}",
                key.as_ref().is_ok_and(|k| self.seen.contains(k))
            ),
        };
        let line = reply_error(id, code, &message);
        let (_, error) = check_reply(&line, id);
        assert_error(error, code, &message);
    }

    /// The share log's record and the block the core made of an accepted
    /// share, field by field from what was sent and what validation found.
    fn check_accepted(
        &self,
        accepted: &Accepted,
        valid: &proofpool_pool::ValidShare,
        binding: &Binding,
        credited: Difficulty,
        sub: &ShareSubmission<'_>,
        now: u32,
    ) {
        let r = &accepted.share;
        assert_eq!(accepted.credited, credited);
        assert_eq!(accepted.key, valid.key);
        assert_eq!(r.time_ms, u64::from(now) * 1000 + 999);
        assert_eq!(r.instance, INSTANCE);
        assert_eq!(r.job_id, self.job.id());
        // Credited to the address the coinbase commits to; the worker only
        // names the rig.
        assert_eq!(r.miner, MINER);
        assert_eq!(r.worker, self.miner.worker);
        assert_eq!(r.extranonce1, EXTRANONCE1);
        assert_eq!(r.extranonce2, sub.extranonce2);
        assert_eq!((r.ntime, r.nonce, r.version), (sub.ntime, sub.nonce, valid.version));
        assert_eq!(r.hash, valid.hash.0);
        assert_eq!(r.share_target, binding.target());
        assert_eq!(r.work, valid.work.0);
        assert_eq!(r.network_target, self.job.network_target());
        assert_eq!(accepted.solved.is_some(), valid.meets_network);
        if let Some(b) = &accepted.solved {
            assert_eq!(b.binding, *binding);
            assert_eq!(b.hash_display, valid.block_hash().to_string());
            assert_eq!(b.finder, self.miner.address.to_address());
            assert_eq!(b.worker, self.miner.worker);
            assert_eq!(
                (b.extranonce1, b.extranonce2.as_slice(), b.ntime, b.nonce, b.version),
                (EXTRANONCE1, sub.extranonce2, sub.ntime, sub.nonce, valid.version)
            );
        }
    }
}

/// Whether a difficulty survives a trip through a JSON number: integers are
/// read as `u64`, others as `f64`, exact to 15 significant digits.
fn exact_in_json(d: Difficulty) -> bool {
    d.is_integer() || d.mantissa() < 1_000_000_000_000_000
}

/// A username [`MinerId::parse`] accepted.
fn check_miner_id(username: &str, miner: &MinerId) {
    let (address, worker) = match username.split_once('.') {
        Some((a, w)) => (a, Some(w)),
        None => (username, None),
    };
    match worker {
        None => assert_eq!(miner.worker, "default"),
        Some(w) => assert_eq!(miner.worker, w),
    }
    assert!(!miner.worker.is_empty() && miner.worker.len() <= MAX_WORKER_LEN);
    assert!(
        miner
            .worker
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "worker {:?}",
        miner.worker
    );
    assert!(!miner.address.0.is_zero());
    let shown = miner.address.to_string();
    assert_eq!(
        shown[2..].to_ascii_lowercase(),
        address.trim()[2..].to_ascii_lowercase(),
        "the address is the one sent"
    );
    // The canonical form names the same miner.
    let canonical = format!("{shown}.{}", miner.worker);
    assert_eq!(MinerId::parse(&canonical).as_ref(), Ok(miner));
}

/// A difficulty that parsed: exact printing, and its target.
fn check_difficulty(d: Difficulty) {
    let text = d.to_string();
    assert_eq!(text.parse::<Difficulty>(), Ok(d), "{text} reads back");
    assert!(d.scale() <= proofpool_primitives::MAX_SCALE);
    assert!(
        d.scale() == 0 || !d.mantissa().is_multiple_of(10),
        "{d:?} is not normal"
    );
    let target = d.to_target();
    assert!(!target.is_zero());
    assert!(Difficulty::from_target(target).to_target() >= target);
    assert!(d.to_work().0 > U256::ZERO);
}

/// A request, re-encoded with the miner's builders, parses to itself.
fn check_reencoded(id: &Id, method: &ClientMethod) {
    let (line, expected) = match method {
        ClientMethod::Submit {
            worker,
            job_id,
            extranonce2,
            ntime,
            nonce,
            version_bits,
        } => (
            miner::submit(
                id,
                worker,
                job_id,
                extranonce2,
                *ntime,
                *nonce,
                *version_bits,
            ),
            method.clone(),
        ),
        ClientMethod::Authorize { username, password } => {
            let password = password.clone().unwrap_or_default();
            (
                miner::authorize(id, username, &password),
                ClientMethod::Authorize {
                    username: username.clone(),
                    password: Some(password),
                },
            )
        }
        ClientMethod::SuggestDifficulty(d) => {
            let line = miner::suggest_difficulty(id, *d);
            if !exact_in_json(*d) {
                // Read through f64: only check that it does not panic.
                let _ = parse_line(line.as_bytes());
                return;
            }
            (line, method.clone())
        }
        ClientMethod::ExtranonceSubscribe => (miner::extranonce_subscribe(id), method.clone()),
        _ => return,
    };
    check_line(&line);
    if line.len() > MAX_LINE_BYTES {
        // Escaping can lengthen a string the miner sent unescaped.
        return;
    }
    assert_eq!(
        parse_line(line.as_bytes()),
        Ok(Message::Request {
            id: id.clone(),
            method: expected,
        }),
        "re-encoded as {line:?}"
    );
}

/// One line as the pool writes it: a JSON object and exactly one `\n`.
fn check_line(line: &str) -> Value {
    let body = line.strip_suffix('\n').expect("a line ends in \\n");
    assert!(!body.contains(['\n', '\r']), "a line break inside {line:?}");
    let value: Value = serde_json::from_str(body).expect("a line is json");
    assert!(value.is_object(), "{line:?} is not an object");
    value
}

/// A reply: `id`, `result`, `error`, the id echoed; the miner reads it back.
fn check_reply(line: &str, id: &Id) -> (Value, Option<ReplyError>) {
    let value = check_line(line);
    let object = value.as_object().expect("checked by check_line");
    assert_eq!(object.len(), 3, "{line:?}");
    // serde_json alone reads some floats an ulp off, and an id kept as its
    // text is not a `Number`; the miner's parser below reads both exactly.
    if !matches!(id, Id::Literal(_)) && !matches!(id, Id::Number(n) if n.is_f64()) {
        assert_eq!(
            Id::from_json(&object["id"]).as_ref(),
            Some(id),
            "the reply {line:?} does not echo the id"
        );
    }
    if line.len() - 1 > MAX_LINE_BYTES {
        // Too long for the miner's reader (a huge id or method name echoed).
        return (
            object["result"].clone(),
            ReplyError::from_json(&object["error"]),
        );
    }
    match parse_server_line(line.as_bytes()) {
        Ok(ServerMessage::Reply {
            id: read,
            result,
            error,
        }) => {
            assert_eq!(&read, id);
            (result, error)
        }
        other => panic!("the miner reads {line:?} as {other:?}"),
    }
}

fn expect_true(id: &Id) {
    let line = reply_true(id);
    let (result, error) = check_reply(&line, id);
    assert_eq!((result, error), (Value::Bool(true), None));
}

fn assert_error(error: Option<ReplyError>, code: ErrorCode, message: &str) {
    let error = error.expect("an error reply has an error");
    assert_eq!(error.code, i64::from(code.code()));
    assert_eq!(error.message, message);
}

/// The core's answer to one share: accepted or refused, nothing else.
fn check(core: &mut Core, submit: Submit<'_>) -> Result<Box<Accepted>, Refusal> {
    let mut actions = core.handle(Event::Submit(submit), Instant::now()).into_iter();
    let answer = match actions.next() {
        Some(Action::Accept(accepted)) => Ok(accepted),
        Some(Action::Refuse(refusal)) => Err(refusal),
        other => panic!("a share brought {other:?}"),
    };
    assert!(actions.next().is_none(), "a share brings one action");
    answer
}
