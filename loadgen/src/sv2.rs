//! Stratum V2 load: the throughput phase's closed loop over extended
//! channels (`throughput-v2`), and idle V2 connections (`idle-v2`).
//!
//! A connection runs the miner's side as the reference miner does (the Noise
//! NX handshake pinning the pool's authority key, `SetupConnection`, one
//! `OpenExtendedMiningChannel`, its first job and `SetNewPrevHash`), on the
//! same crates. Its shares are ground from the V1 notify the job amounts to
//! ([`extended_job_as_notify`]), like a V1 connection's, and sent as
//! `SubmitSharesExtended`, several frames to a write. The pool answers with
//! `SubmitShares.Success`, which may cover several shares; each share's
//! latency runs from the write that carried it to the read of the success
//! that covered it (there is no kernel receive timestamp: Noise frames are
//! read on a task of their own).
//!
//! Every byte each connection writes and reads is counted, so the report
//! can give the bytes on the wire per share, V1 against V2.

use crate::drive::{ConnStats, Live};
use proofpool_primitives::U256;
use proofpool_stratum::NotifyOwned;
use proofpool_stratum::sv2::job::extended_job_as_notify;
use proofpool_stratum::sv2::noise::{Incoming, Sv2Connection, Sv2Writer};
use proofpool_stratum::sv2::setup::{REQUIRES_VERSION_ROLLING, mining_request};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use stratum_core::mining_sv2::{OpenExtendedMiningChannelOwned, SubmitSharesExtendedOwned};
use stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// Messages decoded ahead of the driver.
const READ_AHEAD: usize = 256;

/// A byte stream half whose traffic is counted.
#[derive(Debug)]
pub(crate) struct Counted<T> {
    inner: T,
    bytes: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Writer = Sv2Writer<Counted<OwnedWriteHalf>>;

/// A V2 connection with an open extended channel and its first job.
pub(crate) struct ReadyV2 {
    writer: Writer,
    rx: mpsc::Receiver<Incoming>,
    reading: tokio::task::JoinHandle<()>,
    channel_id: u32,
    /// The job to mine, as a V1 notify.
    pub(crate) job: NotifyOwned,
    /// The channel's extranonce prefix (the pool's extranonce1).
    pub(crate) extranonce_prefix: Vec<u8>,
    /// The miner's part of the extranonce, bytes.
    pub(crate) extranonce_size: usize,
    /// The channel's target.
    pub(crate) target: U256,
    /// Bytes written on the socket so far.
    pub(crate) written: Arc<AtomicU64>,
    /// Bytes read from the socket so far.
    pub(crate) read: Arc<AtomicU64>,
}

impl Drop for ReadyV2 {
    fn drop(&mut self) {
        self.reading.abort();
    }
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Result<AnyMessageOwned, String> {
    match rx.recv().await {
        Some(Ok(Some(m))) => Ok(*m),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(None)) | None => Err("the pool closed the connection".to_owned()),
    }
}

/// Connects to the pool's V2 port from `source`, pins `authority`, and opens
/// one extended channel for `user`, within `timeout`.
pub(crate) async fn connect(
    pool: SocketAddr,
    authority: [u8; 32],
    source: IpAddr,
    user: String,
    timeout: Duration,
) -> Result<ReadyV2, String> {
    tokio::time::timeout(timeout, handshake(pool, authority, source, user, timeout))
        .await
        .map_err(|_| format!("no V2 channel within {timeout:?}"))?
}

async fn handshake(
    pool: SocketAddr,
    authority: [u8; 32],
    source: IpAddr,
    user: String,
    timeout: Duration,
) -> Result<ReadyV2, String> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(pool).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (read, write) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));
    let read_bytes = Arc::new(AtomicU64::new(0));
    let read: BufReader<Counted<OwnedReadHalf>> = BufReader::with_capacity(
        4096,
        Counted {
            inner: read,
            bytes: read_bytes.clone(),
        },
    );
    let write = Counted {
        inner: write,
        bytes: written.clone(),
    };
    let connection = Sv2Connection::connect(read, write, authority, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let (reader, mut writer) = connection.into_split();
    let (reading, mut rx) = reader.spawn(READ_AHEAD);
    let request = mining_request(REQUIRES_VERSION_ROLLING, "proofpool-load", "0.1")
        .map_err(|e| e.to_string())?;
    writer.send(request).await.map_err(|e| e.to_string())?;
    match next(&mut rx).await? {
        AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(_)) => {}
        other => return Err(format!("SetupConnection answered with {other}")),
    }
    writer
        .send(AnyMessageOwned::Mining(
            MiningOwned::OpenExtendedMiningChannel(OpenExtendedMiningChannelOwned {
                request_id: 1,
                user_identity: user
                    .as_str()
                    .try_into()
                    .map_err(|_| "the user is longer than 255 bytes".to_owned())?,
                nominal_hash_rate: 0.0,
                max_target: [0xffu8; 32].into(),
                min_extranonce_size: 4,
            }),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let (channel_id, target, extranonce_prefix, extranonce_size) = match next(&mut rx).await? {
        AnyMessageOwned::Mining(MiningOwned::OpenExtendedMiningChannelSuccess(ok)) => (
            ok.channel_id,
            U256::from_le_bytes(ok.target.to_array()),
            ok.extranonce_prefix.as_ref().to_vec(),
            usize::from(ok.extranonce_size),
        ),
        other => return Err(format!("OpenExtendedMiningChannel answered with {other}")),
    };
    // Its first job waits for its SetNewPrevHash.
    let mut job = None;
    let notify = loop {
        match next(&mut rx).await? {
            AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(j)) => job = Some(j),
            AnyMessageOwned::Mining(MiningOwned::SetNewPrevHash(tip)) => {
                let Some(j) = job.as_ref().filter(|j| j.job_id == tip.job_id) else {
                    return Err("SetNewPrevHash for a job never sent".to_owned());
                };
                break extended_job_as_notify(j, &tip, true);
            }
            other => return Err(format!("expected the first job, got {other}")),
        }
    };
    Ok(ReadyV2 {
        writer,
        rx,
        reading,
        channel_id,
        job: notify,
        extranonce_prefix,
        extranonce_size,
        target,
        written,
        read: read_bytes,
    })
}

/// One V2 connection under closed-loop load.
pub(crate) struct DriverV2 {
    ready: ReadyV2,
    job_id: u32,
    extranonce2: Vec<u8>,
    ntime: u32,
    nonces: Vec<u32>,
    next_nonce: usize,
    next_sequence: u32,
    /// Each share in flight: its sequence number and when it was written.
    inflight: VecDeque<(u32, Instant)>,
    stats: ConnStats,
    live: Arc<Live>,
}

impl DriverV2 {
    /// A driver submitting `nonces` on `ready`'s job with `extranonce2`.
    pub(crate) fn new(
        ready: ReadyV2,
        extranonce2: Vec<u8>,
        nonces: Vec<u32>,
        live: Arc<Live>,
    ) -> Result<Self, String> {
        let job_id = u32::from_str_radix(&ready.job.job_id, 16)
            .map_err(|_| format!("job id {} is not hex", ready.job.job_id))?;
        let ntime = ready.job.ntime;
        Ok(Self {
            ready,
            job_id,
            extranonce2,
            ntime,
            nonces,
            next_nonce: 0,
            next_sequence: 1,
            inflight: VecDeque::new(),
            stats: ConnStats::new(),
            live,
        })
    }

    /// Queues up to `n` shares and writes them at once; returns how many.
    async fn send(&mut self, n: usize, clock: &crate::drive::Clock) -> Result<usize, String> {
        let now = Instant::now();
        let left = self.nonces.len() - self.next_nonce;
        if n > left && now < clock.stop_sending {
            self.stats.exhausted = true;
        }
        let n = n.min(left);
        for _ in 0..n {
            let share = SubmitSharesExtendedOwned {
                channel_id: self.ready.channel_id,
                sequence_number: self.next_sequence,
                job_id: self.job_id,
                nonce: self.nonces[self.next_nonce],
                ntime: self.ntime,
                version: self.ready.job.version,
                extranonce: self
                    .extranonce2
                    .clone()
                    .try_into()
                    .map_err(|e| format!("extranonce: {e:?}"))?,
            };
            self.ready
                .writer
                .queue(AnyMessageOwned::Mining(MiningOwned::SubmitSharesExtended(
                    share,
                )))
                .map_err(|e| e.to_string())?;
            self.inflight.push_back((self.next_sequence, now));
            self.next_sequence = self.next_sequence.wrapping_add(1);
            self.next_nonce += 1;
        }
        if n > 0 {
            self.ready.writer.flush().await.map_err(|e| e.to_string())?;
        }
        if clock.measuring(now) {
            self.stats.sent += n as u64;
        }
        self.stats.sent_all += n as u64;
        self.live.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Answers up to and including `last` (accepted), or just `one`
    /// (refused with `code`).
    fn answered(&mut self, last: u32, refused: Option<String>, clock: &crate::drive::Clock) {
        let now = Instant::now();
        let measuring = clock.measuring(now);
        let mut slowest = 0;
        while let Some(&(sequence, sent_at)) = self.inflight.front() {
            // Sequence numbers wrap; an answer covers those before it.
            if sequence.wrapping_sub(last) < u32::MAX / 2 && sequence != last {
                break;
            }
            self.inflight.pop_front();
            let us = u64::try_from(now.duration_since(sent_at).as_micros()).unwrap_or(u64::MAX);
            slowest = slowest.max(us);
            match &refused {
                None => {
                    self.live.accepted.fetch_add(1, Ordering::Relaxed);
                    if measuring {
                        self.stats.accepted += 1;
                    }
                }
                Some(code) => {
                    self.live.rejected.fetch_add(1, Ordering::Relaxed);
                    if measuring {
                        self.stats.rejected.entry(0).or_insert((0, code.clone())).0 += 1;
                    }
                }
            }
            if measuring {
                self.stats.latency_us.saturating_record(us.max(1));
                self.stats.read_latency_us.saturating_record(us.max(1));
                self.stats.unstamped += 1;
            }
            if sequence == last {
                break;
            }
        }
        self.live.slowest_us.fetch_max(slowest, Ordering::Relaxed);
    }

    fn finish(mut self, error: Option<String>) -> ConnStats {
        self.stats.error = error;
        self.stats.unanswered += self.inflight.len() as u64;
        self.stats.bytes_written = self.ready.written.load(Ordering::Relaxed);
        self.stats.bytes_read = self.ready.read.load(Ordering::Relaxed);
        self.stats
    }

    /// Closed loop: keep `window` shares in flight until the clock stops.
    pub(crate) async fn window(mut self, window: usize, clock: crate::drive::Clock) -> ConnStats {
        let give_up = tokio::time::sleep_until(clock.give_up.into());
        tokio::pin!(give_up);
        tokio::time::sleep_until(clock.start.into()).await;
        // Bytes from here on are the shares' (the handshake's are not).
        self.ready.written.store(0, Ordering::Relaxed);
        self.ready.read.store(0, Ordering::Relaxed);
        if let Err(e) = self.send(window, &clock).await {
            return self.finish(Some(e));
        }
        loop {
            let out_of_shares = self.next_nonce >= self.nonces.len();
            if self.inflight.is_empty() && (Instant::now() >= clock.stop_sending || out_of_shares) {
                return self.finish(None);
            }
            let message = tokio::select! {
                m = next(&mut self.ready.rx) => m,
                () = &mut give_up => return self.finish(None),
            };
            match message {
                Ok(AnyMessageOwned::Mining(MiningOwned::SubmitSharesSuccess(ok))) => {
                    self.answered(ok.last_sequence_number, None, &clock);
                }
                Ok(AnyMessageOwned::Mining(MiningOwned::SubmitSharesError(e))) => {
                    self.answered(
                        e.sequence_number,
                        Some(e.error_code.as_utf8_or_hex()),
                        &clock,
                    );
                }
                Ok(AnyMessageOwned::Mining(MiningOwned::SetNewPrevHash(_))) => {
                    self.stats.clean_jobs += 1;
                }
                Ok(_) => {}
                Err(e) => return self.finish(Some(e)),
            }
            if Instant::now() < clock.stop_sending && self.inflight.len() < window {
                let want = window - self.inflight.len();
                if let Err(e) = self.send(want, &clock).await {
                    return self.finish(Some(e));
                }
            }
        }
    }
}

/// How long the pool's memory gets to settle after the connections open.
const SETTLE: Duration = Duration::from_secs(3);

/// The idle V2 phase: the pool's resident memory with no miner, then with
/// `connections` V2 connections that completed the handshake, opened their
/// channel and got their first job, spread over `sources` loopback
/// addresses (one pool process: the phase is capped well below its
/// open-file limit).
pub(crate) async fn idle(
    pool: &crate::pool::PoolProcess,
    connections: usize,
    sources: u8,
) -> eyre::Result<crate::report::IdleV2Result> {
    use crate::procfs::{Pid, rss_kib};
    tokio::time::sleep(SETTLE).await;
    let baseline = rss_kib(Pid::Of(pool.pid()))?;
    eprintln!("[idle-v2] opening {connections} Stratum V2 connections");
    let started = Instant::now();
    let (ready, errors) =
        crate::drive::open_v2(pool.sv2, pool.authority, connections, 0, sources, "idle").await;
    let open_secs = started.elapsed().as_secs_f64();
    if ready.len() < connections {
        eyre::bail!(
            "only {} of {connections} V2 connections opened a channel; first error: {}",
            ready.len(),
            errors.first().map_or("none", String::as_str)
        );
    }
    tokio::time::sleep(SETTLE).await;
    let rss = rss_kib(Pid::Of(pool.pid()))?;
    let per_connection = rss.saturating_sub(baseline) as f64 * 1024.0 / ready.len() as f64;
    eprintln!(
        "[idle-v2] {} connections: pool RSS {} MiB, {per_connection:.0} bytes each",
        ready.len(),
        rss / 1024
    );
    drop(ready);
    Ok(crate::report::IdleV2Result {
        connections,
        baseline_rss_kib: baseline,
        pool_rss_kib: rss,
        pool_bytes_per_connection: per_connection,
        open_secs,
    })
}
