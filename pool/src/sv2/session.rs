//! A Stratum V2 miner's connection: the Noise handshake and
//! `SetupConnection` ([`proofpool_stratum::sv2`]), then its channels, whose jobs and
//! shares go through the session core (a [`Core`] a channel), the same checks,
//! share log, blocks and epochs as Stratum V1.
//!
//! Channels are extended (`NewExtendedMiningJob`: the coinbase around the
//! extranonce prefix, a leased extranonce1, and the miner's part) or
//! standard, for header-only miners (`NewMiningJob`: the merkle root of a
//! coinbase whose extranonce the pool fixed, the channel's leased
//! extranonce1 then zeros). A connection may open up to [`MAX_CHANNELS`];
//! every channel is in the connection's one group, and on a new block the
//! standard channels' future jobs are activated by one `SetNewPrevHash` to
//! the group (job ids are the connection's, so one id names each channel's
//! job), extended channels' by their own.
//!
//! One task drives the connection: it alone writes to the socket. A reader
//! task of its own decodes frames (a read is not cancellation-safe) and
//! hands the messages over a bounded channel. Shares are acknowledged with
//! `SubmitShares.Success` once durable, in submission order, several at a
//! time when their commits land together (as the spec allows).
//!
//! The channel's difficulty is its core's, as a V1 session's: the nominal hashrate of `OpenExtendedMiningChannel` and
//! `UpdateChannel` is the miner's suggestion (its maximum target a floor on
//! the difficulty), vardiff retargets it, and each change goes out as
//! `SetTarget` followed by a job committing to the new target (older jobs
//! keep theirs).
//!
//! With job declaration on (docs/job-declaration.md), a connection whose
//! `SetupConnection` names the job declaration protocol is served by
//! [`super::jds`], and a mining connection that selects its own work sets its
//! jobs with `SetCustomMiningJob`: the pool sends it none, and its channels
//! mine at their tokens' targets.

use super::keys::AuthorityKey;
use super::noise::{FrameLimit, Incoming, Sv2Connection, Sv2Error, Sv2Writer};
use super::setup::{SetupReply, negotiate};
use crate::job::{Binding, CustomJob, DeclaredError, Job};
use crate::server::blocks;
use crate::server::guard::{Admission, Fault, RateLimiter, Verdict};
use crate::server::telemetry::{Protocol, Reject};
use crate::server::{Shared, unix_ms};
use crate::session::{Accepted, Action, Core, Event, Refusal, Submit};
use crate::share::ShareSubmission;
use crate::username::MinerId;
use bitcoin::hashes::Hash as _;
use proofpool_epoch::share_commitment::target_of_bits;
use proofpool_primitives::Difficulty;
use proofpool_store::{Committed, WorkerSeen, WriteError};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratum_core::binary_sv2::{B032Owned, B064KOwned, Seq0255Owned, Sv2OptionOwned, U256Owned};
use stratum_core::mining_sv2::{
    ERROR_CODE_OPEN_MINING_CHANNEL_CHANNEL_CAPACITY_EXHAUSTED,
    ERROR_CODE_OPEN_MINING_CHANNEL_INVALID_USER_IDENTITY,
    ERROR_CODE_OPEN_MINING_CHANNEL_UNSUPPORTED_MIN_EXTRANONCE_SIZE,
    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_CHANNEL_ID,
    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_PREFIX,
    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MINING_JOB_TOKEN,
    ERROR_CODE_SET_CUSTOM_MINING_JOB_JD_NOT_SUPPORTED,
    ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE, ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW,
    ERROR_CODE_SUBMIT_SHARES_DUPLICATE_SHARE, ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID,
    ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT,
    ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE, ERROR_CODE_SUBMIT_SHARES_STALE_SHARE,
    ERROR_CODE_UPDATE_CHANNEL_INVALID_CHANNEL_ID,
    ERROR_CODE_UPDATE_CHANNEL_INVALID_NOMINAL_HASHRATE,
    ERROR_CODE_UPDATE_CHANNEL_MAX_TARGET_OUT_OF_RANGE, NewExtendedMiningJobOwned,
    NewMiningJobOwned, OpenExtendedMiningChannelSuccessOwned, OpenMiningChannelErrorOwned,
    OpenStandardMiningChannelSuccessOwned, SetCustomMiningJobErrorOwned, SetCustomMiningJobOwned,
    SetCustomMiningJobSuccessOwned, SetNewPrevHashOwned, SetTargetOwned, SubmitSharesErrorOwned,
    SubmitSharesSuccessOwned, UpdateChannelErrorOwned, UpdateChannelOwned,
};
use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

/// How long the pool's Noise certificate is valid: a miner accepts it from
/// its `valid_from` (the handshake's time) to this much later.
pub(crate) const CERT_VALIDITY: Duration = Duration::from_secs(3600);

/// The connection's group channel; its channels are numbered from 2 (the
/// SRI translator requires a group id that is no channel's).
const GROUP_CHANNEL_ID: u32 = 1;
const FIRST_CHANNEL_ID: u32 = 2;

/// The most channels one connection may have open (each leases an
/// extranonce1, so a proxy's devices never share a coinbase).
pub(crate) const MAX_CHANNELS: usize = 256;

/// The error code of a submit (or declared job) past the connection's rate
/// limit: the pool's own, as the spec has none for it.
const RATE_LIMITED: &str = "rate-limited";

/// The error code of a declared job past [`MAX_DECLARED_PER_TIP`] (the
/// pool's own).
const TOO_MANY_DECLARED: &str = "too-many-declared-jobs";

/// Messages decoded ahead of the session.
const READ_AHEAD: usize = 64;

/// Bytes read from the socket at a time: a dozen submits (71 bytes each),
/// kept small as every idle connection holds one.
const READ_BUFFER: usize = 1024;

/// The handshake and setup time limit without `handshake_timeout`.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an open channel reports its hashrate and lets vardiff cut a
/// quiet miner (more often if vardiff's retarget interval is shorter), as
/// a V1 session does.
const TICK: Duration = Duration::from_secs(10);

/// What a miner asks for when it opens a channel, standard or extended.
struct OpenRequest {
    request_id: u32,
    user_identity: String,
    nominal_hash_rate: f32,
    max_target: [u8; 32],
    /// Extended channels only: the least extranonce the miner can roll.
    min_extranonce_size: Option<usize>,
}

/// A share as submitted on either kind of channel.
struct Submitted {
    channel_id: u32,
    sequence_number: u32,
    job_id: u32,
    /// Extended channels only: the miner's part of the extranonce.
    extranonce2: Option<Vec<u8>>,
    ntime: u32,
    nonce: u32,
    version: u32,
}

/// The job id for the connection's job counter `seq`.
fn job_id(seq: u64) -> Result<u32, Sv2Error> {
    u32::try_from(seq).map_err(|_| Sv2Error::Encode("job ids exhausted".into()))
}

/// A share whose `SubmitShares.Success` waits for its commit.
struct PendingAck {
    channel_id: u32,
    sequence_number: u32,
    /// Its credited difficulty, whole (the spec's `new_shares_sum`).
    difficulty: u64,
    /// When the session took the submit: `pool_submit_duration_seconds`
    /// runs from here to its success being written.
    read_at: Instant,
    outcome: oneshot::Receiver<Result<Committed, WriteError>>,
    /// Tells the block task the solving share's number.
    block: Option<oneshot::Sender<Result<u64, WriteError>>>,
}

/// An open channel.
struct Open {
    /// Header-only: the pool fixes the whole extranonce.
    standard: bool,
    miner: MinerId,
    /// Whether the worker was recorded (with its first accepted share).
    recorded: bool,
    extranonce1: [u8; 4],
    /// The miner's part of the extranonce (extended), or the zeros the
    /// pool put there (standard).
    extranonce_size: usize,
    /// The jobs sent, what they commit to, the shares accepted on them,
    /// and vardiff.
    core: Core,
    /// Jobs the miner declared on the current tip, by what their headers
    /// are made of: the same job declared again gets the same id, so one
    /// header is never credited under two ids.
    declared: std::collections::HashMap<[u8; 32], u64>,
    /// The tip `declared` is for.
    declared_tip: Option<bitcoin::BlockHash>,
}

/// Jobs one channel may declare on one tip: fewer than the channel keeps
/// (`MAX_SENT_JOBS`), so no declared job (and no duplicate key) is forgotten
/// before the tip moves.
const MAX_DECLARED_PER_TIP: usize = crate::session::MAX_SENT_JOBS / 2;

/// Declared jobs a connection may set a second, and in a burst: each is
/// checked, kept and recorded.
const DECLARED_PER_SECOND: u32 = 1;
const DECLARED_BURST: u32 = 10;

/// What a declared job's headers are made of, as one digest: its coinbase
/// with the channel's commitment, merkle branch, tip, bits and version
/// (less the bits a miner may roll).
fn declared_digest(job: &Job, binding: &Binding, version_mask: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(job.coinbase1());
    h.update(job.coinbase2_prefix());
    h.update(job.commitment_output(binding));
    h.update(job.coinbase2_suffix());
    for sibling in job.merkle_branch() {
        h.update(sibling);
    }
    h.update(job.prev_hash().to_byte_array());
    h.update(job.bits().to_consensus().to_le_bytes());
    h.update((job.version() & !version_mask).to_le_bytes());
    h.finalize().into()
}

/// Serves one Stratum V2 connection until it closes or the pool stops.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    admission: Admission,
    key: Arc<AuthorityKey>,
) {
    shared.metrics.connections_total.increment(1);
    shared.metrics.connections_active.increment(1.0);
    let timeout = shared.config.handshake_timeout.unwrap_or(SETUP_TIMEOUT);
    let (read, write) = socket.into_split();
    // A frame is read as its header, then its body: buffered, that is one
    // read from the socket for every frame that has arrived, not two a frame.
    let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
    let connection = match Sv2Connection::accept(read, write, &key, CERT_VALIDITY, timeout).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "Stratum V2 handshake failed");
            shared.metrics.noise_handshake_failures.increment(1);
            shared.metrics.connections_active.decrement(1.0);
            return;
        }
    };
    shared.metrics.connections_noise.increment(1);
    let (reader, writer) = connection.into_split();
    let frame_limit = reader.frame_limit();
    let (reading, rx) = reader.spawn(READ_AHEAD);
    let mut session = Sv2Session {
        shared: shared.clone(),
        peer,
        limiter: shared
            .config
            .max_shares_per_second
            .map(|rate| RateLimiter::new(rate, rate.saturating_mul(2))),
        declare_limiter: RateLimiter::new(DECLARED_PER_SECOND, DECLARED_BURST),
        admission,
        unscored_accepted: 0,
        writer,
        channels: std::collections::BTreeMap::new(),
        next_channel_id: FIRST_CHANNEL_ID,
        job_seq: 0,
        pending: VecDeque::new(),
        reported_hashrate: 0,
        work_selection: false,
        frame_limit,
    };
    if let Err(e) = session.run(rx, timeout).await {
        tracing::debug!(%peer, error = %e, "Stratum V2 connection ended");
    }
    reading.abort();
    session.finish();
}

struct Sv2Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The address's connection slot, and its ban score.
    admission: Admission,
    /// Submits (and declared jobs) a second, as for a V1 connection.
    limiter: Option<RateLimiter>,
    /// Accepted shares not yet handed to the ban score.
    unscored_accepted: u32,
    /// Declared jobs a second (`SetCustomMiningJob`).
    declare_limiter: RateLimiter,
    writer: Sv2Writer<OwnedWriteHalf>,
    channels: std::collections::BTreeMap<u32, Open>,
    next_channel_id: u32,
    /// The connection's job counter: one id names a job on every channel.
    job_seq: u64,
    pending: VecDeque<PendingAck>,
    /// This connection's share of [`Shared::hashrate`].
    reported_hashrate: u64,
    /// The miner chooses its own work (job declaration): its channels get
    /// no jobs from the pool, only the ones it sets, at its tokens'
    /// targets (vardiff does not move them).
    work_selection: bool,
    /// The reader's frame limit: raised for job declaration.
    frame_limit: FrameLimit,
}

/// Why the session's task woke.
enum Wake {
    Incoming(Option<Incoming>),
    /// A new job (`false`: the work source is gone).
    Job(bool),
    Outcome(Result<Committed, WriteError>),
    Tick,
    Stop,
}

impl Sv2Session {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Incoming>,
        timeout: Duration,
    ) -> Result<(), Sv2Error> {
        // SetupConnection first, within the handshake time limit.
        let first = tokio::time::timeout(timeout, rx.recv()).await;
        let first = match first {
            Ok(Some(Ok(Some(message)))) => match *message {
                AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(s)) => Ok(Ok(s)),
                _ => Ok(Err(None)),
            },
            Ok(Some(Err(e))) => Ok(Err(Some(e))),
            Ok(Some(Ok(None)) | None) => Ok(Err(None)),
            Err(elapsed) => Err(elapsed),
        };
        let setup = match first {
            Ok(Ok(s)) => s,
            failed => {
                self.shared.metrics.noise_handshake_failures.increment(1);
                return Err(match failed {
                    Err(_) => Sv2Error::HandshakeTimeout(timeout),
                    Ok(Err(Some(e))) => e,
                    _ => Sv2Error::Frame("the first message was not SetupConnection".into()),
                });
            }
        };
        match negotiate(&setup, self.shared.config.jd.is_some()) {
            SetupReply::Accepted(ok, negotiated) if negotiated.job_declaration => {
                return super::jds::serve(
                    &self.shared,
                    self.peer,
                    &self.admission,
                    &mut self.writer,
                    &mut rx,
                    &self.frame_limit,
                    ok,
                )
                .await;
            }
            SetupReply::Accepted(ok, negotiated) => {
                self.work_selection = negotiated.work_selection;
                self.writer.send(ok).await?;
            }
            SetupReply::Refused(error) => {
                tracing::debug!(peer = %self.peer, %error, "Stratum V2 setup refused");
                self.writer.send(error).await?;
                return Ok(());
            }
        }
        let mut jobs = self.shared.work.subscribe();
        let stop = self.shared.stop.clone().cancelled_owned();
        tokio::pin!(stop);
        let tick_every =
            TICK.min(Core::new(&self.shared.config, Instant::now()).retarget_interval());
        let mut ticks = tokio::time::interval(tick_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                incoming = rx.recv() => Wake::Incoming(incoming),
                changed = jobs.changed() => Wake::Job(changed.is_ok()),
                outcome = next_outcome(&mut self.pending) => Wake::Outcome(outcome),
                _ = ticks.tick() => Wake::Tick,
                () = &mut stop => Wake::Stop,
            };
            match event {
                Wake::Incoming(Some(Ok(Some(message)))) => self.handle(*message).await?,
                Wake::Incoming(Some(Err(e))) => return Err(e),
                // Closed between frames.
                Wake::Incoming(Some(Ok(None)) | None) | Wake::Job(false) | Wake::Stop => break,
                Wake::Job(true) => {
                    let job = jobs.borrow_and_update().clone();
                    if let Some(job) = job {
                        self.send_jobs(&job).await?;
                    }
                }
                Wake::Outcome(outcome) => self.acknowledge(outcome).await?,
                Wake::Tick => self.tick().await?,
            }
        }
        // Shares in flight are answered before the connection closes.
        while !self.pending.is_empty() {
            let outcome = next_outcome(&mut self.pending).await;
            self.acknowledge(outcome).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, message: AnyMessageOwned) -> Result<(), Sv2Error> {
        match message {
            AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannel(m)) => {
                let request = OpenRequest {
                    request_id: m.request_id,
                    user_identity: m.user_identity.as_utf8_or_hex(),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: m.max_target.to_array(),
                    min_extranonce_size: Some(usize::from(m.min_extranonce_size)),
                };
                self.open(request).await
            }
            AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannel(m)) => {
                let request = OpenRequest {
                    request_id: m.request_id,
                    user_identity: m.user_identity.as_utf8_or_hex(),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: m.max_target.to_array(),
                    min_extranonce_size: None,
                };
                self.open(request).await
            }
            AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(s)) => {
                let share = Submitted {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    job_id: s.job_id,
                    extranonce2: Some(s.extranonce.as_ref().to_vec()),
                    ntime: s.ntime,
                    nonce: s.nonce,
                    version: s.version,
                };
                self.submit(share).await
            }
            AnyMessageOwned::Mining(MiningOwned::SubmitSharesStandard(s)) => {
                let share = Submitted {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    job_id: s.job_id,
                    extranonce2: None,
                    ntime: s.ntime,
                    nonce: s.nonce,
                    version: s.version,
                };
                self.submit(share).await
            }
            AnyMessageOwned::Mining(MiningOwned::UpdateChannel(u)) => self.update(u).await,
            AnyMessageOwned::Mining(MiningOwned::SetCustomMiningJob(m)) => self.custom_job(m).await,
            AnyMessageOwned::Mining(MiningOwned::CloseChannel(c)) => {
                if let Some(open) = self.channels.remove(&c.channel_id) {
                    self.shared.release_extranonce1(open.extranonce1);
                }
                Ok(())
            }
            other => {
                tracing::debug!(peer = %self.peer, message = %other, "Stratum V2 message ignored");
                Ok(())
            }
        }
    }

    /// `SetCustomMiningJob`: a job the miner declared, on one of its
    /// extended channels, with a token issued to the channel's address
    /// (docs/job-declaration.md). Accepted, it is the channel's job like any
    /// other, at the token's target: shares on it are credited to the token's
    /// address at that target, which its coinbase commits to.
    async fn custom_job(&mut self, m: SetCustomMiningJobOwned) -> Result<(), Sv2Error> {
        let (channel_id, request_id) = (m.channel_id, m.request_id);
        let refuse = |code: &str| {
            AnyMessageOwned::Mining(MiningOwned::SetCustomMiningJobError(
                SetCustomMiningJobErrorOwned {
                    channel_id,
                    request_id,
                    error_code: code
                        .try_into()
                        .expect("the spec's error codes are short ASCII, well under 255 bytes"),
                },
            ))
        };
        if !self.declare_limiter.allow(Instant::now()) {
            return self.writer.send(refuse(RATE_LIMITED)).await;
        }
        if self.shared.config.jd.is_none() || !self.work_selection {
            return self
                .writer
                .send(refuse(ERROR_CODE_SET_CUSTOM_MINING_JOB_JD_NOT_SUPPORTED))
                .await;
        }
        let Some(open) = self.channels.get(&channel_id).filter(|o| !o.standard) else {
            return self
                .writer
                .send(refuse(ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_CHANNEL_ID))
                .await;
        };
        let token = self
            .shared
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(m.token.as_ref(), Instant::now());
        // An expired token is a race a client loses now and then; another
        // address's is its fault.
        let foreign = token
            .as_ref()
            .is_some_and(|t| t.miner != open.miner.address.to_address());
        let Some(token) = token.filter(|_| !foreign) else {
            if foreign {
                self.score(Some(Fault::Malformed))?;
            }
            return self
                .writer
                .send(refuse(
                    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MINING_JOB_TOKEN,
                ))
                .await;
        };
        if token.template.is_none()
            && self
                .shared
                .config
                .jd
                .is_some_and(|jd| jd.full_template_only)
        {
            // The operator wants every declared block checked by its node.
            return self
                .writer
                .send(refuse(
                    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MINING_JOB_TOKEN,
                ))
                .await;
        }
        let custom = CustomJob {
            version: m.version,
            prev_hash: bitcoin::BlockHash::from_byte_array(m.prev_hash.to_array()),
            min_ntime: m.min_ntime,
            nbits: m.nbits,
            coinbase_tx_version: m.coinbase_tx_version,
            coinbase_prefix: m.coinbase_prefix.as_ref(),
            coinbase_tx_input_n_sequence: m.coinbase_tx_input_n_sequence,
            coinbase_tx_outputs: m.coinbase_tx_outputs.as_ref(),
            coinbase_tx_locktime: m.coinbase_tx_locktime,
            merkle_path: crate::sv2::job::merkle_path(&m.merkle_path),
        };
        let now_secs = (unix_ms() / 1000) as u32;
        let job = match self.shared.work.declared_job(
            &custom,
            token.commitment(),
            token.template.as_deref(),
            open.extranonce1.len(),
            now_secs,
            self.shared.config.network,
        ) {
            Ok(job) => job,
            Err(e) => {
                tracing::debug!(peer = %self.peer, channel_id, error = %e, "declared job refused");
                // A job on the tip just replaced is a race, not a fault.
                if !matches!(
                    e,
                    DeclaredError::StaleChainTip | DeclaredError::InvalidMinNtime(_)
                ) {
                    self.score(Some(Fault::Malformed))?;
                }
                return self.writer.send(refuse(e.code())).await;
            }
        };
        if job.extranonce2_len() != open.extranonce_size {
            // The pool's extranonce size changed since the channel opened.
            return self
                .writer
                .send(refuse(
                    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_COINBASE_PREFIX,
                ))
                .await;
        }
        let Some(target) = target_of_bits(token.target_bits) else {
            return self
                .writer
                .send(refuse(
                    ERROR_CODE_SET_CUSTOM_MINING_JOB_INVALID_MINING_JOB_TOKEN,
                ))
                .await;
        };
        let binding = Binding::new(token.miner, target);
        let digest = declared_digest(&job, &binding, self.shared.config.version_mask);
        let Some(open) = self.channels.get_mut(&channel_id) else {
            return Ok(());
        };
        if open.declared_tip != Some(job.prev_hash()) {
            open.declared.clear();
            open.declared_tip = Some(job.prev_hash());
        }
        let seq = match open.declared.get(&digest) {
            // Declared before on this tip: the same job, under its id.
            Some(&seq) => seq,
            None if open.declared.len() >= MAX_DECLARED_PER_TIP => {
                return self.writer.send(refuse(TOO_MANY_DECLARED)).await;
            }
            None => {
                self.job_seq += 1;
                let seq = self.job_seq;
                self.shared.work.record_declared(&job);
                // A job on a new tip makes the channel's older ones stale;
                // the channel mines at its token's target from now on.
                let declared = Event::Declared { job, seq, binding };
                for action in open.core.handle(declared, Instant::now()) {
                    if let Action::NewTarget { binding, .. } = action {
                        self.writer.queue(set_target(channel_id, &binding))?;
                    }
                }
                open.declared.insert(digest, seq);
                self.shared.metrics.jd_jobs_declared.increment(1);
                seq
            }
        };
        let job_id = job_id(seq)?;
        self.writer
            .send(AnyMessageOwned::Mining(
                MiningOwned::SetCustomMiningJobSuccess(SetCustomMiningJobSuccessOwned {
                    channel_id,
                    request_id,
                    job_id,
                }),
            ))
            .await
    }

    async fn refuse_channel(&mut self, request_id: u32, code: &str) -> Result<(), Sv2Error> {
        self.writer
            .send(AnyMessageOwned::Mining(
                MiningOwned::OpenMiningChannelError(OpenMiningChannelErrorOwned {
                    request_id,
                    error_code: code
                        .try_into()
                        .expect("the spec's error codes are short ASCII, well under 255 bytes"),
                }),
            ))
            .await
    }

    /// `OpenExtendedMiningChannel` or `OpenStandardMiningChannel`: the user
    /// identity is the payout address (and worker), as in Stratum V1; the
    /// extranonce starts with a leased extranonce1, so no two channels (V1
    /// or V2, on any instance) share a coinbase.
    async fn open(&mut self, m: OpenRequest) -> Result<(), Sv2Error> {
        if self.channels.len() >= MAX_CHANNELS {
            return self
                .refuse_channel(
                    m.request_id,
                    ERROR_CODE_OPEN_MINING_CHANNEL_CHANNEL_CAPACITY_EXHAUSTED,
                )
                .await;
        }
        let Ok(miner) = MinerId::parse(&m.user_identity) else {
            self.score(Some(Fault::Malformed))?;
            return self
                .refuse_channel(
                    m.request_id,
                    ERROR_CODE_OPEN_MINING_CHANNEL_INVALID_USER_IDENTITY,
                )
                .await;
        };
        // Before the pool's first job (it is starting) the channel opens
        // all the same, on the configured extranonce size, and gets its
        // first job with everyone else's.
        let current = self.shared.work.current();
        let extranonce_size = current.as_ref().map_or_else(
            || self.shared.work.job_config().extranonce2_len,
            |job| job.extranonce2_len(),
        );
        if m.min_extranonce_size
            .is_some_and(|min| min > extranonce_size)
        {
            return self
                .refuse_channel(
                    m.request_id,
                    ERROR_CODE_OPEN_MINING_CHANNEL_UNSUPPORTED_MIN_EXTRANONCE_SIZE,
                )
                .await;
        }
        let Some(extranonce1) = self.shared.lease_extranonce1(None) else {
            return self
                .refuse_channel(
                    m.request_id,
                    ERROR_CODE_OPEN_MINING_CHANNEL_CHANNEL_CAPACITY_EXHAUSTED,
                )
                .await;
        };
        // The difficulty for the nominal hashrate (the pool's start if it
        // is 0, "not known yet"), or harder if the maximum target asks.
        let opened = Instant::now();
        let mut core = Core::new(&self.shared.config, opened);
        core.handle(Event::Bind(miner.address.to_address()), opened);
        let max_target = proofpool_primitives::U256::from_le_bytes(m.max_target);
        let asked = asked_difficulty(&core, m.nominal_hash_rate, max_target);
        if asked != core.difficulty() {
            core.handle(Event::Suggest(asked), opened);
        }
        // The success message tells the miner its target.
        core.handle(Event::Told, opened);
        let channel_id = self.next_channel_id;
        self.next_channel_id = self.next_channel_id.wrapping_add(1).max(FIRST_CHANNEL_ID);
        let standard = m.min_extranonce_size.is_none();
        tracing::debug!(peer = %self.peer, miner = %m.user_identity, channel_id, standard, "Stratum V2 channel opened");
        // The target the channel's jobs commit to (compact-rounded), which
        // its shares are checked at: not the difficulty's exact target.
        let committed = core
            .binding()
            .map_or(core.difficulty().to_target(), |b| b.target());
        let target_bytes = U256Owned::from(committed.to_le_bytes::<32>());
        let encode = |e: stratum_core::binary_sv2::Error| Sv2Error::Encode(format!("{e:?}"));
        let success = if standard {
            // The whole extranonce: the miner has none to roll.
            let mut full = extranonce1.to_vec();
            full.resize(extranonce1.len() + extranonce_size, 0);
            MiningOwned::OpenStandardMiningChannelSuccess(OpenStandardMiningChannelSuccessOwned {
                request_id: m.request_id,
                channel_id,
                target: target_bytes,
                extranonce_prefix: B032Owned::try_from(full).map_err(encode)?,
                group_channel_id: GROUP_CHANNEL_ID,
            })
        } else {
            MiningOwned::OpenExtendedMiningChannelSuccess(OpenExtendedMiningChannelSuccessOwned {
                request_id: m.request_id,
                channel_id,
                target: target_bytes,
                extranonce_size: extranonce_size as u16,
                extranonce_prefix: B032Owned::try_from(extranonce1.to_vec()).map_err(encode)?,
                group_channel_id: GROUP_CHANNEL_ID,
            })
        };
        self.writer.send(AnyMessageOwned::Mining(success)).await?;
        self.channels.insert(
            channel_id,
            Open {
                standard,
                miner,
                recorded: false,
                extranonce1,
                extranonce_size,
                core,
                declared: std::collections::HashMap::new(),
                declared_tip: None,
            },
        );
        let Some(job) = current.filter(|_| !self.work_selection) else {
            // It sets its own jobs (SetCustomMiningJob), or the pool has
            // none yet.
            return Ok(());
        };
        // Its first job, with its own tip.
        self.job_seq += 1;
        let seq = self.job_seq;
        self.send_to(channel_id, &job, seq, false, false)?;
        self.writer.flush().await
    }

    /// `UpdateChannel`: the nominal hashrate is a new suggestion, and the
    /// maximum target a floor on the difficulty ("the upstream must
    /// reflect" a lower one); a changed difficulty goes out at once.
    async fn update(&mut self, u: UpdateChannelOwned) -> Result<(), Sv2Error> {
        let max_target = proofpool_primitives::U256::from_le_bytes(u.maximum_target.to_array());
        let refusal = if !self.channels.contains_key(&u.channel_id) {
            Some(ERROR_CODE_UPDATE_CHANNEL_INVALID_CHANNEL_ID)
        } else if !(u.nominal_hash_rate >= 0.0 && u.nominal_hash_rate.is_finite()) {
            Some(ERROR_CODE_UPDATE_CHANNEL_INVALID_NOMINAL_HASHRATE)
        } else if max_target.is_zero() {
            Some(ERROR_CODE_UPDATE_CHANNEL_MAX_TARGET_OUT_OF_RANGE)
        } else {
            None
        };
        if let Some(code) = refusal {
            return self
                .writer
                .send(AnyMessageOwned::Mining(MiningOwned::UpdateChannelError(
                    UpdateChannelErrorOwned {
                        channel_id: u.channel_id,
                        error_code: code
                            .try_into()
                            .expect("the spec's error codes are short ASCII, well under 255 bytes"),
                    },
                )))
                .await;
        }
        if self.work_selection {
            // Its channels mine at their tokens' targets: the nominal
            // hashrate changes nothing.
            return Ok(());
        }
        let Some(open) = self.channels.get_mut(&u.channel_id) else {
            return Ok(());
        };
        let asked = asked_difficulty(&open.core, u.nominal_hash_rate, max_target);
        open.core.handle(Event::Suggest(asked), Instant::now());
        // A changed difficulty goes out at once.
        self.retarget(u.channel_id).await
    }

    /// Reports the hashrate estimate and lets vardiff lower the difficulty
    /// of a miner gone quiet, channel by channel.
    async fn tick(&mut self) -> Result<(), Sv2Error> {
        let mut estimate = 0u64;
        let mut cut = Vec::new();
        let now = Instant::now();
        for (&id, open) in &mut self.channels {
            for action in open.core.handle(Event::Tick, now) {
                match action {
                    Action::Hashrate(h) => estimate = estimate.saturating_add(h),
                    Action::Retarget(_) => cut.push(id),
                    _ => {}
                }
            }
        }
        self.report_hashrate(estimate);
        if self.unscored_accepted > 0 {
            self.score(None)?;
        }
        for id in cut {
            self.shared.metrics.retargets.increment(1);
            self.retarget(id).await?;
        }
        Ok(())
    }

    /// Hands the accepted shares counted so far and `fault` to the ban
    /// score, as a V1 session does; an error (which ends the connection)
    /// once the address is banned.
    fn score(&mut self, fault: Option<Fault>) -> Result<(), Sv2Error> {
        let accepted = std::mem::take(&mut self.unscored_accepted);
        match self.admission.record(accepted, fault, Instant::now()) {
            Verdict::Fine => Ok(()),
            Verdict::Banned => {
                let duration = self.shared.config.ban_duration.as_secs();
                tracing::warn!(peer = %self.peer, address = %self.admission.key(), ban_secs = duration, "banned: too many rejected shares or malformed requests");
                self.shared.metrics.bans.increment(1);
                Err(Sv2Error::Frame(format!(
                    "too many rejected shares or malformed requests: banned for {duration} s"
                )))
            }
            Verdict::AlreadyBanned => Err(Sv2Error::Frame("this address is banned".into())),
        }
    }

    /// Whether the rate limit lets one more submit (or declared job) in.
    fn allowed(&mut self) -> bool {
        self.limiter
            .as_mut()
            .is_none_or(|limiter| limiter.allow(Instant::now()))
    }

    /// Replaces this connection's contribution to the pool's hashrate.
    fn report_hashrate(&mut self, estimate: u64) {
        let delta = estimate.wrapping_sub(self.reported_hashrate);
        self.shared
            .hashrate
            .fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
        self.reported_hashrate = estimate;
    }

    /// A channel's difficulty may have changed: if so, `SetTarget`, then
    /// the current job again (live at once) committing to the new target.
    /// Shares on the older jobs are still checked at the targets those
    /// committed to.
    async fn retarget(&mut self, channel_id: u32) -> Result<(), Sv2Error> {
        if self.work_selection {
            return Ok(());
        }
        let Some(job) = self.shared.work.current() else {
            return Ok(());
        };
        let seq = self.job_seq + 1;
        if self.send_to(channel_id, &job, seq, true, false)? {
            tracing::debug!(peer = %self.peer, channel_id, "Stratum V2 retarget");
            self.job_seq = seq;
            self.writer.flush().await?;
        }
        Ok(())
    }

    /// Sends a new job to every channel that has not had it: on a new
    /// previous block (or a job the pool marks clean) as future jobs, then
    /// `SetNewPrevHash` (each extended channel its own, the standard ones
    /// one to the group), which makes every older job stale; otherwise live
    /// at once.
    async fn send_jobs(&mut self, job: &Arc<Job>) -> Result<(), Sv2Error> {
        if self.work_selection {
            return Ok(());
        }
        self.job_seq += 1;
        let seq = self.job_seq;
        let due: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, open)| open.core.channel().last_job_id() != Some(job.id()))
            .map(|(&id, _)| id)
            .collect();
        let mut group_tip = false;
        for id in due {
            group_tip |= self.send_to(id, job, seq, false, true)?;
        }
        if group_tip {
            self.writer.queue(prev_hash(GROUP_CHANNEL_ID, job, seq)?)?;
        }
        self.writer.flush().await
    }

    /// Queues what the channel's core makes of `job` under id `seq`:
    /// `SetTarget` if the difficulty changed, then the job (a future one,
    /// with its `SetNewPrevHash`, if it makes the channel's older jobs
    /// stale; live otherwise). A standard channel's `SetNewPrevHash` is
    /// left to the caller if `grouped`: true if it is due. Returns whether
    /// anything went out, or with `grouped` whether the group's
    /// `SetNewPrevHash` is due.
    fn send_to(
        &mut self,
        channel_id: u32,
        job: &Arc<Job>,
        seq: u64,
        resend: bool,
        grouped: bool,
    ) -> Result<bool, Sv2Error> {
        let Some(open) = self.channels.get_mut(&channel_id) else {
            return Ok(false);
        };
        if job.extranonce2_len() != open.extranonce_size {
            // A reload changed the extranonce2 size: the channel's terms no
            // longer hold. The miner opens a new one.
            return Err(Sv2Error::Frame("the pool's extranonce size changed".into()));
        }
        let mut sent = false;
        let work = Event::Work { job, seq, resend };
        for action in open.core.handle(work, Instant::now()) {
            match action {
                Action::NewTarget { binding, .. } => {
                    self.writer.queue(set_target(channel_id, &binding))?;
                    sent = !grouped;
                }
                Action::SendJob {
                    job,
                    clean,
                    binding,
                    ..
                } => {
                    let job_id = job_id(seq)?;
                    let message = if open.standard {
                        let zeros = [0u8; 8];
                        let extranonce2 = zeros.get(..open.extranonce_size).ok_or_else(|| {
                            Sv2Error::Encode("extranonce2 is longer than 8 bytes".into())
                        })?;
                        let txid = job.coinbase_txid(&open.extranonce1, extranonce2, &binding);
                        MiningOwned::NewMiningJob(NewMiningJobOwned {
                            channel_id,
                            job_id,
                            min_ntime: Sv2OptionOwned::new((!clean).then(|| job.ntime())),
                            version: job.version(),
                            merkle_root: U256Owned::from(job.merkle_root(txid)),
                        })
                    } else {
                        MiningOwned::NewExtendedMiningJob(extended_job(
                            &job, &binding, channel_id, job_id, !clean,
                        )?)
                    };
                    self.writer.queue(AnyMessageOwned::Mining(message))?;
                    if clean && (!open.standard || !grouped) {
                        self.writer.queue(prev_hash(channel_id, &job, seq)?)?;
                    }
                    sent = if grouped {
                        clean && open.standard
                    } else {
                        true
                    };
                }
                other => debug_assert!(false, "work brought {other:?}"),
            }
        }
        Ok(sent)
    }

    async fn submit_error(
        &mut self,
        s: &Submitted,
        code: &str,
        reason: Reject,
    ) -> Result<(), Sv2Error> {
        self.shared.metrics.reject(Protocol::V2, reason);
        if let Some(fault) = reason.fault() {
            self.score(Some(fault))?;
        }
        self.writer
            .send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesError(
                SubmitSharesErrorOwned {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    error_code: code
                        .try_into()
                        .expect("the spec's error codes are short ASCII, well under 255 bytes"),
                },
            )))
            .await
    }

    /// `SubmitSharesExtended` or `SubmitSharesStandard`: the same checks as
    /// a V1 share, then the share log; its success waits for the commit.
    async fn submit(&mut self, s: Submitted) -> Result<(), Sv2Error> {
        if !self.allowed() {
            return self
                .submit_error(&s, RATE_LIMITED, Reject::RateLimited)
                .await;
        }
        let mask = self.shared.config.version_mask;
        let Some(open) = self.channels.get_mut(&s.channel_id) else {
            return self
                .submit_error(
                    &s,
                    ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID,
                    Reject::Invalid,
                )
                .await;
        };
        // A standard channel's extranonce is the pool's: zeros after the
        // extranonce1. An extended share on a standard channel (or the
        // reverse) has the wrong size.
        let extranonce2 = match (&s.extranonce2, open.standard) {
            (Some(sent), false) => sent.clone(),
            (None, true) => vec![0u8; open.extranonce_size],
            (Some(_), true) | (None, false) => Vec::new(),
        };
        if extranonce2.len() != open.extranonce_size {
            return self
                .submit_error(
                    &s,
                    ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE,
                    Reject::Invalid,
                )
                .await;
        }
        let job_id = format!("{:x}", s.job_id);
        // A job the miner declared stays live until the pool's tip moves
        // past it (no SetNewPrevHash tells the channel).
        if let Some(sent) = open.core.channel().job(&job_id)
            && sent.job.is_declared()
            && self
                .shared
                .work
                .current()
                .is_none_or(|tip| tip.prev_hash() != sent.job.prev_hash())
        {
            return self
                .submit_error(&s, ERROR_CODE_SUBMIT_SHARES_STALE_SHARE, Reject::Stale)
                .await;
        }
        // The whole version is sent; only the rolled bits may differ from
        // the job's.
        if let Some(sent) = open.core.channel().job(&job_id)
            && (s.version ^ sent.job.version()) & !mask != 0
        {
            return self
                .submit_error(
                    &s,
                    ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT,
                    Reject::Invalid,
                )
                .await;
        }
        let now = Instant::now();
        let submit = Submit {
            job_id: &job_id,
            extranonce1: open.extranonce1,
            share: ShareSubmission {
                extranonce2: &extranonce2,
                ntime: s.ntime,
                nonce: s.nonce,
                version_bits: Some(s.version & mask),
            },
            version_mask: mask,
            miner: &open.miner,
            instance: self.shared.config.instance_id,
            now_ms: unix_ms(),
        };
        let checked = open.core.handle(Event::Submit(submit), now);
        let accepted = match checked.into_iter().next() {
            Some(Action::Accept(accepted)) => accepted,
            Some(Action::Refuse(refusal)) => {
                let (code, reason) = match refusal {
                    Refusal::Stale(_) => (ERROR_CODE_SUBMIT_SHARES_STALE_SHARE, Reject::Stale),
                    Refusal::Duplicate => {
                        (ERROR_CODE_SUBMIT_SHARES_DUPLICATE_SHARE, Reject::Duplicate)
                    }
                    Refusal::LowDifficulty(_) => (
                        ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW,
                        Reject::LowDifficulty,
                    ),
                    Refusal::Invalid(_) => {
                        (ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE, Reject::Invalid)
                    }
                };
                return self.submit_error(&s, code, reason).await;
            }
            other => {
                debug_assert!(false, "a submit brought {other:?}");
                return Ok(());
            }
        };
        let Accepted {
            share,
            solved,
            credited,
            key,
        } = *accepted;
        let now_ms = share.time_ms;
        let (submitted, block) = blocks::hand_over(&self.shared, share, solved, |share| {
            self.shared.log.submit(share)
        });
        match submitted {
            Ok(outcome) => {
                if !open.recorded {
                    open.recorded = true;
                    self.shared.log.record_worker(WorkerSeen {
                        miner: open.miner.address.to_address(),
                        worker: open.miner.worker.clone(),
                        time_ms: now_ms,
                    });
                }
                // Scored with the next fault or tick: no lock per share.
                self.unscored_accepted = self.unscored_accepted.saturating_add(1);
                self.pending.push_back(PendingAck {
                    channel_id: s.channel_id,
                    sequence_number: s.sequence_number,
                    difficulty: whole(credited),
                    read_at: now,
                    outcome,
                    block,
                });
                let recorded = Event::Recorded {
                    key,
                    credited: Some(credited),
                };
                let retarget = open
                    .core
                    .handle(recorded, now)
                    .into_iter()
                    .any(|a| matches!(a, Action::Retarget(_)));
                if retarget && !self.work_selection {
                    self.shared.metrics.retargets.increment(1);
                    self.retarget(s.channel_id).await?;
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "share refused");
                if let Some(block) = block {
                    // The block task writes the share once the store takes
                    // shares again.
                    let _ = block.send(Err(WriteError(e.to_string())));
                    let filed = Event::Recorded {
                        key,
                        credited: None,
                    };
                    open.core.handle(filed, now);
                }
                self.submit_error(
                    &s,
                    ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE,
                    Reject::StoreOverloaded,
                )
                .await
            }
        }
    }

    /// Answers the share at the front of `pending` whose commit came back
    /// (`outcome`), and every share after it on the same channel already
    /// committed, in one `SubmitShares.Success`.
    async fn acknowledge(
        &mut self,
        outcome: Result<Committed, WriteError>,
    ) -> Result<(), Sv2Error> {
        let Some(first) = self.pending.pop_front() else {
            return Ok(());
        };
        let channel_id = first.channel_id;
        let mut accepted = Vec::new();
        let mut failed = None;
        let mut settle = |ack: PendingAck,
                          outcome: Result<Committed, WriteError>,
                          accepted: &mut Vec<(u32, u64, Instant)>| {
            match outcome {
                Ok(committed) => {
                    if let Some(block) = ack.block {
                        let _ = block.send(Ok(committed.seq));
                    }
                    accepted.push((ack.sequence_number, ack.difficulty, ack.read_at));
                }
                Err(e) => {
                    if let Some(block) = ack.block {
                        let _ = block.send(Err(e.clone()));
                    }
                    failed = Some(ack.sequence_number);
                }
            }
        };
        settle(first, outcome, &mut accepted);
        while let Some(next) = self
            .pending
            .front_mut()
            .filter(|next| next.channel_id == channel_id)
        {
            let Ok(outcome) = next.outcome.try_recv() else {
                break;
            };
            let Some(ack) = self.pending.pop_front() else {
                break;
            };
            settle(ack, outcome, &mut accepted);
        }
        if let Some(&(last, ..)) = accepted.last() {
            self.shared
                .metrics
                .accept(Protocol::V2, accepted.len() as u64);
            self.writer
                .send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesSuccess(
                    SubmitSharesSuccessOwned {
                        channel_id,
                        last_sequence_number: last,
                        new_submits_accepted_count: accepted.len() as u32,
                        new_shares_sum: accepted.iter().map(|(_, d, _)| d).sum(),
                    },
                )))
                .await?;
            let now = Instant::now();
            for (.., read_at) in &accepted {
                self.shared
                    .metrics
                    .submit_seconds
                    .record(now.saturating_duration_since(*read_at));
            }
        }
        if let Some(sequence_number) = failed {
            self.shared
                .metrics
                .reject(Protocol::V2, Reject::StoreFailed);
            self.writer
                .send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesError(
                    SubmitSharesErrorOwned {
                        channel_id,
                        sequence_number,
                        error_code: ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE
                            .try_into()
                            .expect("the spec's error codes are short ASCII, well under 255 bytes"),
                    },
                )))
                .await?;
        }
        Ok(())
    }

    fn finish(&mut self) {
        if self.unscored_accepted > 0 {
            // The address's next connection starts from these; a ban it
            // brings changes nothing for a connection already closing.
            let _ = self.score(None);
        }
        for open in std::mem::take(&mut self.channels).into_values() {
            self.shared.release_extranonce1(open.extranonce1);
        }
        self.report_hashrate(0);
        self.shared.metrics.connections_active.decrement(1.0);
    }
}

/// The outcome of the share at the front of `pending`; never, with none.
async fn next_outcome(pending: &mut VecDeque<PendingAck>) -> Result<Committed, WriteError> {
    match pending.front_mut() {
        Some(ack) => (&mut ack.outcome)
            .await
            .unwrap_or_else(|_| Err(WriteError("the share writer stopped".into()))),
        None => std::future::pending().await,
    }
}

/// The difficulty a miner asks for over V2: the one for its nominal hashrate
/// (the channel's current one if it is 0, not known yet), or harder if its
/// maximum target is below that difficulty's target.
fn asked_difficulty(
    core: &Core,
    nominal_hash_rate: f32,
    max_target: proofpool_primitives::U256,
) -> Difficulty {
    let for_rate = core
        .for_hashrate(f64::from(nominal_hash_rate))
        .unwrap_or(core.difficulty());
    if max_target.is_zero() {
        return for_rate;
    }
    for_rate.max(Difficulty::from_target(max_target))
}

/// A difficulty's whole part (at least 1), for `new_shares_sum`.
fn whole(d: Difficulty) -> u64 {
    // Difficulty 1 is 2^32 hashes of work, to a part in 65,536.
    let work = d.to_work().0 >> 32;
    u64::try_from(work).unwrap_or(u64::MAX).max(1)
}

/// `NewExtendedMiningJob` for `job` on the channel bound to `binding`: the
/// coinbase around the full extranonce (the leased extranonce1, then the
/// miner's extranonce2), legacy serialization, with the channel's share
/// commitment; `live` jobs apply at once, the others wait for their
/// `SetNewPrevHash`.
fn extended_job(
    job: &Job,
    binding: &Binding,
    channel_id: u32,
    job_id: u32,
    live: bool,
) -> Result<NewExtendedMiningJobOwned, Sv2Error> {
    let encode = |e: stratum_core::binary_sv2::Error| Sv2Error::Encode(format!("{e:?}"));
    let path: Vec<U256Owned> = job
        .merkle_branch()
        .iter()
        .map(|h| U256Owned::from(*h))
        .collect();
    Ok(NewExtendedMiningJobOwned {
        channel_id,
        job_id,
        min_ntime: Sv2OptionOwned::new(live.then(|| job.ntime())),
        version: job.version(),
        version_rolling_allowed: true,
        merkle_path: Seq0255Owned::new(path).map_err(encode)?,
        coinbase_tx_prefix: B064KOwned::try_from(job.coinbase1().to_vec()).map_err(encode)?,
        coinbase_tx_suffix: B064KOwned::try_from(job.coinbase2(binding)).map_err(encode)?,
    })
}

/// `SetTarget` for a channel now committing to `binding`.
fn set_target(channel_id: u32, binding: &Binding) -> AnyMessageOwned {
    AnyMessageOwned::Mining(MiningOwned::SetTarget(SetTargetOwned {
        channel_id,
        maximum_target: U256Owned::from(binding.target().to_le_bytes::<32>()),
    }))
}

/// `SetNewPrevHash` for `job`, sent under id `seq`, to a channel or the
/// group.
fn prev_hash(to: u32, job: &Job, seq: u64) -> Result<AnyMessageOwned, Sv2Error> {
    Ok(AnyMessageOwned::Mining(MiningOwned::SetNewPrevHash(
        SetNewPrevHashOwned {
            channel_id: to,
            job_id: job_id(seq)?,
            prev_hash: U256Owned::from(job.prev_hash().to_byte_array()),
            min_ntime: job.ntime(),
            nbits: job.bits().to_consensus(),
        },
    )))
}
