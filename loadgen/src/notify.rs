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
//! kernel delivering it. It also includes the load generator's own time to
//! read K sockets on its thread(s), so it is an upper bound.
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
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Longest one round may wait for every listener.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

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
) -> eyre::Result<NotifyResult> {
    eprintln!("[notify] opening {connections} listening connections");
    let began = Instant::now();
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let mut listeners = tokio::task::JoinSet::new();
    for r in ready {
        listeners.spawn(listen(r, tx.clone()));
    }
    drop(tx);

    let mut finder = finder(pool).await?;
    let mut histogram = drive::new_histogram();
    let mut first_ms = Vec::new();
    let mut last_ms = Vec::new();
    let mut missing = 0usize;
    let cpu_from = CpuSample::take(pool.pid(), None);
    for round in 0..blocks {
        let (work, nonce) = block_share(&finder)?;
        let mut line = Vec::new();
        client::SubmitFormat::new(&finder.worker, &work.job_id, &work.extranonce2, work.ntime)
            .push(&mut line, 1000 + round as u64, nonce);
        // Late notifies of the previous round must not count in this one.
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        finder.stream.write_all(&line).await?;
        let mut got = 0usize;
        let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
        let mut first = None;
        let mut last = t0;
        while got < connections {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(at)) => {
                    let us = u64::try_from(at.saturating_duration_since(t0).as_micros())
                        .unwrap_or(u64::MAX);
                    histogram.saturating_record(us.max(1));
                    first.get_or_insert(at);
                    last = last.max(at);
                    got += 1;
                }
                Ok(None) => bail!("every listener stopped"),
                Err(_) => break,
            }
        }
        missing += connections - got;
        first_ms.push(first.map_or(f64::NAN, |f| (f - t0).as_secs_f64() * 1000.0));
        last_ms.push((last - t0).as_secs_f64() * 1000.0);
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
        latency_us: Percentiles::of(&histogram),
        first_ms,
        last_ms,
        missing,
        pool_fanout,
        cpu,
    })
}

/// Reads a listener's socket, reporting each clean notify's arrival.
async fn listen(mut r: Ready, tx: mpsc::UnboundedSender<Instant>) {
    loop {
        while let Some(range) = r.lines.pop() {
            if is_clean_notify(r.lines.get(range)) && tx.send(Instant::now()).is_err() {
                return;
            }
        }
        match r.lines.fill(&mut r.stream).await {
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
