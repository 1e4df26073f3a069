//! Mining over Stratum V2 (`stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY`):
//! the Noise handshake pinning the pool's authority key, `SetupConnection`,
//! one channel, and the same hashing threads as Stratum V1. On an extended
//! channel a job is ground as the V1 notify it amounts to; on a standard one
//! (`sv2_standard`, header-only, as SV2 firmware mines) the header is built
//! from the pool's merkle root, and only version bits and nonces roll.

use crate::hasher::Template;
use crate::{Ended, Found, MinerConfig, MinerError, MinerStats, Slot, record};
use proofpool_primitives::U256;
use proofpool_stratum::NotifyOwned;
use proofpool_stratum::sv2::job::extended_job_as_notify;
use proofpool_stratum::sv2::noise::{Sv2Connection, Sv2Error};
use proofpool_stratum::sv2::setup::{
    REQUIRES_STANDARD_JOBS, REQUIRES_VERSION_ROLLING, mining_request,
};
use proofpool_watch::{ShareEvidence, ShareParts, WatchLog};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use stratum_core::mining_sv2::{
    NewExtendedMiningJobOwned, NewMiningJobOwned, OpenExtendedMiningChannelOwned,
    OpenStandardMiningChannelOwned, SetNewPrevHashOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandardOwned,
};
use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The version bits rolled (BIP320's), as the pool allows.
const VERSION_MASK: u32 = 0x1fff_e000;

/// How long the handshake and setup may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

fn protocol(e: impl std::fmt::Display) -> MinerError {
    MinerError::Protocol(e.to_string())
}

impl From<Sv2Error> for MinerError {
    fn from(e: Sv2Error) -> Self {
        match e {
            Sv2Error::Io(e) => Self::Io(e),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// A share submitted and not yet answered.
struct Submitted {
    evidence: Option<ShareEvidence>,
}

/// What the pool has told the channel.
struct Channel {
    id: u32,
    target: U256,
    extranonce_prefix: Vec<u8>,
    extranonce_size: usize,
    /// Jobs by id, future ones included.
    jobs: HashMap<u32, NewExtendedMiningJobOwned>,
    tip: Option<SetNewPrevHashOwned>,
    /// The job being mined, as a V1 notify.
    current: Option<NotifyOwned>,
    /// A standard channel (header-only): its jobs, and the one mined.
    standard: bool,
    standard_jobs: HashMap<u32, NewMiningJobOwned>,
    current_standard: Option<u32>,
}

impl Channel {
    /// The V1 notify `job` amounts to on the current tip.
    fn notify(&self, job: &NewExtendedMiningJobOwned, clean: bool) -> Option<NotifyOwned> {
        let tip = self.tip.as_ref()?;
        Some(extended_job_as_notify(job, tip, clean))
    }

    /// The id (hex) of the job being mined, either kind.
    fn current_id(&self) -> Option<String> {
        if self.standard {
            return self.current_standard.map(|id| format!("{id:x}"));
        }
        self.current.as_ref().map(|n| n.job_id.clone())
    }

    fn publish(&self, slot: &Slot) {
        let template = if self.standard {
            let (Some(id), Some(tip)) = (self.current_standard, self.tip.as_ref()) else {
                return;
            };
            let Some(job) = self.standard_jobs.get(&id) else {
                return;
            };
            let min_ntime = job.min_ntime.clone().into_inner().unwrap_or(tip.min_ntime);
            Some(Template::standard(
                format!("{id:x}"),
                tip.prev_hash.to_array(),
                job.merkle_root.to_array(),
                job.version,
                tip.nbits,
                min_ntime.max(tip.min_ntime),
                self.target,
                VERSION_MASK,
            ))
        } else {
            let Some(n) = &self.current else {
                return;
            };
            Template::new(
                n,
                &self.extranonce_prefix,
                self.extranonce_size,
                self.target,
                VERSION_MASK,
            )
        };
        if let Some(t) = template {
            *slot.template.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(t));
            slot.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// Mines over Stratum V2 on `stream` until `shutdown` resolves, the pool
/// closes, or `max_shares` are accepted.
pub(crate) async fn mine(
    config: &MinerConfig,
    authority: [u8; 32],
    stats: Arc<MinerStats>,
    share_log: Option<&WatchLog>,
    shutdown: impl std::future::Future<Output = ()>,
    stream: TcpStream,
) -> Result<Ended, MinerError> {
    let (read, write) = stream.into_split();
    let connection = Sv2Connection::connect(read, write, authority, SETUP_TIMEOUT).await?;
    let (reader, mut writer) = connection.into_split();
    let (reading, mut rx) = reader.spawn(64);
    let result = session(config, stats, share_log, shutdown, &mut writer, &mut rx).await;
    reading.abort();
    result
}

async fn next(
    rx: &mut mpsc::Receiver<proofpool_stratum::sv2::noise::Incoming>,
) -> Result<AnyMessageOwned, MinerError> {
    match rx.recv().await {
        Some(Ok(Some(m))) => Ok(*m),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(None)) | None => Err(MinerError::Closed),
    }
}

async fn session<W: tokio::io::AsyncWrite + Unpin>(
    config: &MinerConfig,
    stats: Arc<MinerStats>,
    share_log: Option<&WatchLog>,
    shutdown: impl std::future::Future<Output = ()>,
    writer: &mut proofpool_stratum::sv2::noise::Sv2Writer<W>,
    rx: &mut mpsc::Receiver<proofpool_stratum::sv2::noise::Incoming>,
) -> Result<Ended, MinerError> {
    if config.sv2_standard && share_log.is_some() {
        return Err(protocol(
            "a share log needs the coinbase, which a standard channel never shows: mine on an extended channel",
        ));
    }
    let flags = if config.sv2_standard {
        REQUIRES_VERSION_ROLLING | REQUIRES_STANDARD_JOBS
    } else {
        REQUIRES_VERSION_ROLLING
    };
    writer
        .send(mining_request(
            flags,
            "proofpool-miner",
            env!("CARGO_PKG_VERSION"),
        )?)
        .await?;
    match tokio::time::timeout(SETUP_TIMEOUT, next(rx))
        .await
        .map_err(|_| protocol("no answer to SetupConnection"))??
    {
        AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(_)) => {}
        AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionError(e)) => {
            return Err(protocol(format!("the pool refused the connection: {e}")));
        }
        other => {
            return Err(protocol(format!(
                "expected SetupConnection.Success, got {other}"
            )));
        }
    }
    let user_identity = config
        .user
        .as_str()
        .try_into()
        .map_err(|_| protocol("the user is longer than 255 bytes"))?;
    // Not measured yet: the pool starts at its own difficulty, or at the
    // suggested one if that is harder (the maximum target is a floor on the
    // difficulty).
    let max_target = config
        .suggest_difficulty
        .map_or([0xffu8; 32], |d| d.to_target().to_le_bytes::<32>())
        .into();
    let open = if config.sv2_standard {
        MiningOwned::OpenStandardMiningChannel(OpenStandardMiningChannelOwned {
            request_id: 1,
            user_identity,
            nominal_hash_rate: 0.0,
            max_target,
        })
    } else {
        MiningOwned::OpenExtendedMiningChannel(OpenExtendedMiningChannelOwned {
            request_id: 1,
            user_identity,
            nominal_hash_rate: 0.0,
            max_target,
            min_extranonce_size: 4,
        })
    };
    writer.send(AnyMessageOwned::Mining(open)).await?;
    let channel =
        |id: u32, target: &[u8; 32], prefix: &[u8], size: usize, standard: bool| Channel {
            id,
            target: U256::from_le_bytes(*target),
            extranonce_prefix: prefix.to_vec(),
            extranonce_size: size,
            jobs: HashMap::new(),
            tip: None,
            current: None,
            standard,
            standard_jobs: HashMap::new(),
            current_standard: None,
        };
    let mut channel = match next(rx).await? {
        AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannelSuccess(ok)) => channel(
            ok.channel_id,
            &ok.target.to_array(),
            ok.extranonce_prefix.as_ref(),
            usize::from(ok.extranonce_size),
            false,
        ),
        AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannelSuccess(ok)) => channel(
            ok.channel_id,
            &ok.target.to_array(),
            ok.extranonce_prefix.as_ref(),
            0,
            true,
        ),
        AnyMessageOwned::Mining(MiningOwned::OpenMiningChannelError(e)) => {
            return Err(MinerError::Unauthorized(e.error_code.as_utf8_or_hex()));
        }
        other => return Err(protocol(format!("expected the channel, got {other}"))),
    };

    let (slot, threads, mut found_rx) = crate::spawn_hashers(config, &stats);
    let mut pending: std::collections::BTreeMap<u32, Submitted> = Default::default();
    let mut accepted_evidence: Vec<ShareEvidence> = Vec::new();
    let mut sequence = 0u32;
    tokio::pin!(shutdown);
    let result = loop {
        let event = tokio::select! {
            () = &mut shutdown => break Ok(Ended::Done),
            found = found_rx.recv() => Event::Found(found),
            message = next(rx) => Event::Message(message),
        };
        match event {
            Event::Found(None) => break Err(protocol("hashing threads stopped")),
            Event::Found(Some(f)) => {
                // A share for a job the tip has moved past is stale; so are
                // shares past the cap in flight (a miner far faster than its
                // share difficulty must not flood the pool).
                if channel.current_id().as_deref() != Some(f.job_id.as_str())
                    || pending.len() >= crate::MAX_IN_FLIGHT
                {
                    stats.discarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Ok(job_id) = u32::from_str_radix(&f.job_id, 16) else {
                    continue;
                };
                sequence = sequence.wrapping_add(1);
                let evidence = share_log.and(channel.current.as_ref()).map(|n| {
                    ShareEvidence::new(ShareParts::of_job(
                        n,
                        &f.extranonce1,
                        &f.extranonce2,
                        f.version,
                        f.ntime,
                        f.nonce,
                    ))
                });
                pending.insert(sequence, Submitted { evidence });
                let share = if channel.standard {
                    MiningOwned::SubmitSharesStandard(SubmitSharesStandardOwned {
                        channel_id: channel.id,
                        sequence_number: sequence,
                        job_id,
                        nonce: f.nonce,
                        ntime: f.ntime,
                        version: f.version,
                    })
                } else {
                    MiningOwned::SubmitSharesExtended(SubmitSharesExtendedOwned {
                        channel_id: channel.id,
                        sequence_number: sequence,
                        job_id,
                        nonce: f.nonce,
                        ntime: f.ntime,
                        version: f.version,
                        extranonce: f
                            .extranonce2
                            .clone()
                            .try_into()
                            .map_err(|e| protocol(format!("{e:?}")))?,
                    })
                };
                if let Err(e) = writer.send(AnyMessageOwned::Mining(share)).await {
                    break Err(e.into());
                }
            }
            Event::Message(Err(e)) => break Err(e),
            Event::Message(Ok(AnyMessageOwned::Mining(m))) => match m {
                MiningOwned::NewExtendedMiningJob(job) => {
                    let live = job.min_ntime.clone().into_inner().is_some();
                    let id = job.job_id;
                    channel.jobs.insert(id, job);
                    if live
                        && let Some(n) =
                            channel.jobs.get(&id).and_then(|j| channel.notify(j, false))
                    {
                        channel.current = Some(n);
                        channel.publish(&slot);
                    }
                }
                MiningOwned::NewMiningJob(job) => {
                    let live = job.min_ntime.clone().into_inner().is_some();
                    let id = job.job_id;
                    channel.standard_jobs.insert(id, job);
                    if live {
                        channel.current_standard = Some(id);
                        channel.publish(&slot);
                    }
                }
                MiningOwned::SetNewPrevHash(tip) if channel.standard => {
                    // To the group: it activates the standard channel's
                    // future job of that id.
                    let id = tip.job_id;
                    channel.tip = Some(tip);
                    channel.standard_jobs.retain(|j, _| *j == id);
                    channel.current_standard =
                        channel.standard_jobs.contains_key(&id).then_some(id);
                    channel.publish(&slot);
                }
                MiningOwned::SetNewPrevHash(tip) => {
                    let id = tip.job_id;
                    channel.tip = Some(tip);
                    // Every other job is on the old tip.
                    channel.jobs.retain(|j, _| *j == id);
                    channel.current = channel.jobs.get(&id).and_then(|j| channel.notify(j, true));
                    channel.publish(&slot);
                }
                MiningOwned::SetTarget(t) if t.channel_id == channel.id => {
                    channel.target = U256::from_le_bytes(t.maximum_target.to_array());
                    channel.publish(&slot);
                }
                MiningOwned::SubmitSharesSuccess(ok) => {
                    let last = ok.last_sequence_number;
                    let done: Vec<u32> = pending.range(..=last).map(|(s, _)| *s).collect();
                    for s in done {
                        if let Some(sub) = pending.remove(&s) {
                            accepted_evidence.extend(sub.evidence);
                        }
                    }
                    stats
                        .accepted
                        .fetch_add(u64::from(ok.new_submits_accepted_count), Ordering::Relaxed);
                    if let Some(log) = share_log
                        && let Err(e) = record(log, &config.user, &mut accepted_evidence).await
                    {
                        break Err(e);
                    }
                    if config
                        .max_shares
                        .is_some_and(|m| stats.accepted.load(Ordering::Relaxed) >= m)
                    {
                        break Ok(Ended::Done);
                    }
                }
                MiningOwned::SubmitSharesError(e) => {
                    pending.remove(&e.sequence_number);
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(code = %e.error_code.as_utf8_or_hex(), "share rejected");
                }
                other => tracing::debug!(message = %other, "ignored"),
            },
            Event::Message(Ok(other)) => tracing::debug!(message = %other, "ignored"),
        }
    };
    crate::stop_hashers(&slot, threads);
    result
}

enum Event {
    Found(Option<Found>),
    Message(Result<AnyMessageOwned, MinerError>),
}
