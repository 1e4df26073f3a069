//! The notify phase: how long after a block is found every connected miner
//! has the new job.
//!
//! K connections handshake and then only listen. One more connection, the
//! finder, submits a share that is also a block (on regtest about half of
//! all hashes are). The clock starts when the finder's submit is written
//! and stops, for each listener, when a `mining.notify` with
//! `clean_jobs = true` arrives. So each figure covers the whole path a real
//! block takes: the pool validating the share and calling `submitblock`,
//! bitcoind accepting it and answering the pool's long-poll, the pool
//! building the new job and fanning it out to every connection, and the
//! kernel delivering it.
//!
//! "Arrives" is the kernel's receive timestamp (`SO_TIMESTAMPNS`) by
//! default: when the notify reached the listener's socket. Real miners are
//! not on the pool's host, so the load generator stays off the CPU for a
//! quiet window after each submit (its thread sleeps; the listeners read
//! afterwards) instead of taking the cores the pool fans out on. With
//! `--notify-clock read` the listeners read as the notifies come and each
//! one counts when it is read: an upper bound that includes the load
//! generator's own reading.
//!
//! Bounded: `blocks` rounds, each waiting at most [`ROUND_LIMIT`].

use crate::client::{self, Ready};
use crate::drive;
use crate::hash::Work;
use crate::pool::PoolProcess;
use crate::procfs::CpuSample;
use crate::report::{Fanout, NotifyCpu, NotifyResult, Percentiles};
use eyre::{WrapErr, bail, eyre};
use proofpool_stratum::{self as sv1, ServerMessage};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

/// Longest one round may wait for every listener.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

/// When a notify counts as arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Clock {
    /// The kernel's receive timestamp; listeners read after a quiet window.
    Kernel,
    /// When the listener read it, reading as notifies come.
    Read,
}

/// How the phase times notifies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) clock: Clock,
    /// Kernel clock: how long the load generator stays off the CPU after
    /// each submit.
    pub(crate) quiet: Duration,
}

/// A listener's clean notify: when it arrived, and whether the kernel
/// stamped it (a read without a stamp counts when it was read).
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: SystemTime,
    stamped: bool,
}

/// Whether `line` is a `mining.notify` with `clean_jobs = true`, without
/// parsing it: the listeners' reading must cost as little as possible.
fn is_clean_notify(line: &[u8]) -> bool {
    let line = line.trim_ascii_end();
    line.windows(15).any(|w| w == b"\"mining.notify\"") && line.ends_with(b"true]}")
}

/// Runs `blocks` rounds with `connections` listeners.
pub(crate) async fn run(
    pool: &PoolProcess,
    connections: usize,
    blocks: usize,
    sources: u8,
    timing: Timing,
) -> eyre::Result<NotifyResult> {
    eprintln!("[notify] opening {connections} listening connections");
    let began = std::time::Instant::now();
    let (ready, errors) = drive::open(pool.stratum, connections, 0, sources, "listen").await;
    if ready.len() < connections {
        bail!(
            "only {} of {connections} connections opened: {}",
            ready.len(),
            errors.first().map_or("", String::as_str)
        );
    }
    eprintln!(
        "[notify] {connections} connections ready in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    // Kernel clock: the start of the round the listeners may read for.
    let (round_tx, round_rx) = watch::channel::<Option<SystemTime>>(None);
    let mut listeners = tokio::task::JoinSet::new();
    for r in ready {
        if timing.clock == Clock::Kernel {
            client::stamp_arrivals(&r.stream)
                .wrap_err("cannot turn on kernel receive timestamps")?;
        }
        listeners.spawn(listen(r, timing.clock, round_rx.clone(), tx.clone()));
    }
    drop(tx);

    let mut finder = finder(pool).await?;
    let mut histogram = drive::new_histogram();
    let mut first_ms = Vec::new();
    let mut last_ms = Vec::new();
    let mut missing = 0usize;
    let mut unstamped = 0usize;
    let cpu_from = CpuSample::take(pool.pid(), None);
    for round in 0..blocks {
        let (work, nonce) = block_share(&finder)?;
        let mut line = Vec::new();
        client::SubmitFormat::new(&finder.worker, &work.job_id, &work.extranonce2, work.ntime)
            .push(&mut line, 1000 + round as u64, nonce);
        // Late notifies of the previous round must not count in this one.
        while rx.try_recv().is_ok() {}
        let t0 = SystemTime::now();
        finder.stream.write_all(&line).await?;
        if timing.clock == Clock::Kernel {
            quiet(timing.quiet);
            round_tx.send_replace(Some(t0));
        }
        let mut got = 0usize;
        let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
        let mut first = None;
        let mut last = Duration::ZERO;
        while got < connections {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(arrival)) => {
                    if arrival.at < t0 {
                        // A notify from before this round's submit.
                        continue;
                    }
                    let after = arrival.at.duration_since(t0).unwrap_or_default();
                    let us = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
                    histogram.saturating_record(us.max(1));
                    first = Some(first.map_or(after, |f: Duration| f.min(after)));
                    last = last.max(after);
                    unstamped += usize::from(timing.clock == Clock::Kernel && !arrival.stamped);
                    got += 1;
                }
                Ok(None) => bail!("every listener stopped"),
                Err(_) => break,
            }
        }
        missing += connections - got;
        first_ms.push(first.map_or(f64::NAN, |f| f.as_secs_f64() * 1000.0));
        last_ms.push(last.as_secs_f64() * 1000.0);
        eprintln!(
            "[notify] block {}: {got}/{connections} notified, first after {:.1} ms, last after {:.1} ms",
            round + 1,
            first_ms.last().copied().unwrap_or(f64::NAN),
            last_ms.last().copied().unwrap_or(f64::NAN)
        );
        // The finder takes the new job (and difficulty) for the next round.
        if round + 1 < blocks {
            next_job(&mut finder).await?;
        }
    }
    let cpu = NotifyCpu::per_notify(
        &cpu_from,
        &CpuSample::take(pool.pid(), None),
        connections * blocks,
    );
    listeners.abort_all();
    let pool_fanout = pool
        .scrape()
        .await
        .ok()
        .and_then(|m| Fanout::from_metrics(&m));
    Ok(NotifyResult {
        connections,
        blocks,
        clock: timing.clock,
        quiet_ms: match timing.clock {
            Clock::Kernel => timing.quiet.as_secs_f64() * 1000.0,
            Clock::Read => 0.0,
        },
        unstamped,
        latency_us: Percentiles::of(&histogram),
        first_ms,
        last_ms,
        missing,
        pool_fanout,
        cpu,
    })
}

/// Keeps the load generator off the CPU while the pool fans out: the
/// thread sleeps, so on the default single-threaded runtime not even the
/// reactor runs (the kernel queues the listeners' readiness meanwhile).
fn quiet(window: Duration) {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => std::thread::sleep(window),
        // Other workers keep polling, but the listeners wait for the round.
        _ => tokio::task::block_in_place(|| std::thread::sleep(window)),
    }
}

/// Reads a listener's socket, reporting each clean notify's arrival. On
/// the kernel clock it reads only once a round has started, until that
/// round's clean notify (stamped at or after the round's start) is in.
async fn listen(
    mut r: Ready,
    clock: Clock,
    mut round: watch::Receiver<Option<SystemTime>>,
    tx: mpsc::UnboundedSender<Arrival>,
) {
    let mut arrival = Arrival {
        at: SystemTime::UNIX_EPOCH,
        stamped: false,
    };
    let mut since = SystemTime::UNIX_EPOCH;
    loop {
        let mut seen = false;
        while let Some(range) = r.lines.pop() {
            if is_clean_notify(r.lines.get(range)) && arrival.at >= since {
                seen = true;
                if tx.send(arrival).is_err() {
                    return;
                }
            }
        }
        let read = match clock {
            Clock::Kernel => {
                if seen || since == SystemTime::UNIX_EPOCH {
                    // Wait for the next round before reading again.
                    match round.changed().await {
                        Ok(()) => since = round.borrow_and_update().unwrap_or(since),
                        Err(_) => return,
                    }
                }
                r.lines.fill_stamped(&r.stream).await.map(|(n, stamp)| {
                    arrival = match stamp {
                        Some(at) => Arrival { at, stamped: true },
                        None => Arrival {
                            at: SystemTime::now(),
                            stamped: false,
                        },
                    };
                    n
                })
            }
            Clock::Read => r.lines.fill(&mut r.stream).await.inspect(|_| {
                arrival = Arrival {
                    at: SystemTime::now(),
                    stamped: false,
                };
            }),
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The connection that finds the blocks.
async fn finder(pool: &PoolProcess) -> eyre::Result<Ready> {
    let (mut ready, errors) = drive::open(pool.stratum, 1, 1_000_000, 1, "finder").await;
    ready
        .pop()
        .ok_or_else(|| eyre!("the finder could not connect: {errors:?}"))
}

/// A nonce for the finder's current job that makes a block.
fn block_share(finder: &Ready) -> eyre::Result<(Work, u32)> {
    let extranonce2 = vec![0u8; finder.extranonce2_size];
    let work = Work::new(
        &finder.job,
        &finder.extranonce1,
        extranonce2,
        finder.share_target,
    );
    let nonce = work
        .block_nonce()
        .ok_or_else(|| eyre!("no nonce makes a block for job {}", finder.job.job_id))?;
    Ok((work, nonce))
}

/// Reads the finder's socket until a clean job arrives, and keeps it.
async fn next_job(finder: &mut Ready) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
    loop {
        while let Some(range) = finder.lines.pop() {
            let line = finder.lines.get(range);
            match sv1::parse_server_line(line) {
                Ok(ServerMessage::SetDifficulty(d)) => finder.share_target = d.to_target(),
                Ok(ServerMessage::Notify(job)) if job.clean_jobs => {
                    finder.job = job;
                    return Ok(());
                }
                Ok(ServerMessage::Reply {
                    error: Some(error), ..
                }) => bail!("the pool refused the block share: {}", error.message),
                _ => {}
            }
        }
        let n = tokio::time::timeout_at(deadline, finder.lines.fill(&mut finder.stream))
            .await
            .wrap_err("no new job for the finder")??;
        if n == 0 {
            bail!("the pool closed the finder's connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_clean_notify;

    #[test]
    fn clean_notifies_are_told_apart() {
        let clean = br#"{"id":null,"method":"mining.notify","params":["1","00","01","02",[],"20000000","207fffff","6553f100",true]}"#;
        let refresh = br#"{"id":null,"method":"mining.notify","params":["1","00","01","02",[],"20000000","207fffff","6553f100",false]}"#;
        assert!(is_clean_notify(clean));
        assert!(is_clean_notify(&[clean.as_slice(), b"\r"].concat()));
        assert!(!is_clean_notify(refresh));
        assert!(!is_clean_notify(br#"{"id":5,"result":true,"error":null}"#));
    }
}
