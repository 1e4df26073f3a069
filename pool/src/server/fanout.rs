//! New jobs to every connection, written straight to the idle sockets.
//!
//! Waking 10,000 session tasks to each format and write one line cost the
//! pool about 10 µs of CPU per miner, twice what the `send` itself costs, so
//! a block reached the last of 10,000 miners some 75 ms after it was found
//! on two cores. Instead, a session that is idle (its task is waiting and has
//! nothing queued) publishes what a job for it needs: its job counter, the
//! previous block and job it was last sent, and its extranonce2 size. The
//! fan-out task writes the job into such a socket itself, with a
//! non-blocking write, and leaves a note of it in the session's [`Link`];
//! the session files the job under its id the next time it wakes, before it
//! reads anything else. So the socket sees exactly the lines the session
//! would have written, in the same order.
//!
//! Every other session is woken to send the job itself, as before: one that
//! is busy (reading, waiting for a commit, writing), a TLS session (rustls
//! owns its writes), one whose difficulty or extranonce2 size is about to
//! change, one whose socket buffer is full, and one with many notes
//! unread. A session marks itself busy under the same lock the fan-out
//! writes under, so the two never write at once.

use super::Shared;
use crate::job::Job;
use bitcoin::BlockHash;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Notes a session may hold unread before the fan-out wakes it instead;
/// more would be jobs it forgets anyway.
const MAX_NOTES: usize = 16;

/// How often (in sessions) a fan-out task checks that its job is still the
/// newest.
const STALE_CHECK: usize = 32;

/// Sessions one fan-out task serves; the chunks spread over the runtime's
/// workers.
const CHUNK: usize = 512;

/// What the fan-out shares with one session.
#[derive(Debug)]
pub(crate) struct Link {
    /// The socket, for plain TCP; a TLS session writes only from its task.
    writer: Option<OwnedWriteHalf>,
    state: Mutex<LinkState>,
    /// Wakes the session to send the current job itself.
    wake: Notify,
}

#[derive(Debug, Default)]
struct LinkState {
    /// The session's task is between a wake-up and the end of its write.
    busy: bool,
    /// Set while the session is idle and may be written to directly.
    idle: Option<Mirror>,
    /// Jobs written for the session since it last looked.
    notes: Vec<Note>,
    /// The unwritten end of a job line the socket took only part of; the
    /// session writes it before anything else.
    leftover: Vec<u8>,
    /// The session ended.
    closed: bool,
}

/// What a job line for an idle session depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mirror {
    /// The size the miner was last told.
    pub(crate) extranonce2_len: usize,
    /// The session's job counter; the next job's id is one more, in hex.
    pub(crate) job_seq: u64,
    pub(crate) last_prev_hash: BlockHash,
    pub(crate) last_job_id: u64,
}

/// A job the fan-out wrote for a session.
#[derive(Debug)]
pub(crate) struct Note {
    pub(crate) job: Arc<Job>,
    /// Its id on this connection.
    pub(crate) seq: u64,
    /// Whether it was sent with `clean_jobs = true`, so older jobs are gone.
    pub(crate) clean: bool,
}

/// What [`Link::begin`] hands the session.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pub(crate) notes: Vec<Note>,
    pub(crate) leftover: Vec<u8>,
}

/// What one offer of a job to one session came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// Written straight to the socket; `true` if on a new block.
    Written(bool),
    /// The session already had it, or is gone.
    Skipped,
    /// The session was woken to send it.
    Woken,
}

impl Link {
    /// A link for a plain TCP session (`Some` writer) or a TLS one.
    pub(crate) fn new(writer: Option<OwnedWriteHalf>) -> Self {
        Self {
            writer,
            state: Mutex::new(LinkState {
                busy: true,
                ..LinkState::default()
            }),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        // The state is plain data, valid whatever a panicking holder did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes when the fan-out asks the session to send a job itself.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The session woke: from now until [`Link::end`] the fan-out leaves
    /// the socket alone. Returns the jobs written for it meanwhile, oldest
    /// first, and any part of one still to write; `reuse` gives back the
    /// last backlog's buffers.
    pub(crate) fn begin(&self, reuse: &mut Backlog) {
        let mut state = self.state();
        state.busy = true;
        state.idle = None;
        std::mem::swap(&mut state.notes, &mut reuse.notes);
        std::mem::swap(&mut state.leftover, &mut reuse.leftover);
    }

    /// The session wrote everything and waits again; with `idle` set, jobs
    /// may be written for it directly.
    pub(crate) fn end(&self, idle: Option<Mirror>) {
        let mut state = self.state();
        state.busy = false;
        state.idle = idle;
    }

    /// The session ended: nothing more is written for it.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.idle = None;
    }

    /// Writes all of `buf` to a plain TCP socket, from the session's task
    /// (between [`Link::begin`] and [`Link::end`]).
    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        let Some(writer) = &self.writer else {
            return Err(io::Error::other("a TLS session writes through its stream"));
        };
        while !buf.is_empty() {
            writer.writable().await?;
            match writer.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends FIN on a plain TCP socket; the session is done writing.
    pub(crate) fn shutdown(&self) {
        if let Some(writer) = &self.writer
            && let Err(e) =
                socket2::SockRef::from(writer.as_ref()).shutdown(std::net::Shutdown::Write)
        {
            tracing::trace!(error = %e, "shutdown failed");
        }
    }

    /// Writes `job` for an idle session, or wakes the session to send it.
    /// `line` is scratch space.
    fn offer(&self, job: &Arc<Job>, line: &mut String) -> Offer {
        let mut state = self.state();
        if state.closed {
            return Offer::Skipped;
        }
        let ready = match (&self.writer, state.idle) {
            (Some(writer), Some(mirror)) => {
                if mirror.last_job_id == job.id() {
                    return Offer::Skipped;
                }
                (mirror.extranonce2_len == job.extranonce2_len() && state.notes.len() < MAX_NOTES)
                    .then_some((writer, mirror))
            }
            _ => None,
        };
        let Some((writer, mirror)) = ready else {
            drop(state);
            self.wake.notify_one();
            return Offer::Woken;
        };
        // As the session's own `send_job` decides for a job it did not
        // resend: clean on a new block or when the pool says so.
        let new_block = mirror.last_prev_hash != job.prev_hash();
        let clean = new_block || job.clean_jobs();
        let seq = mirror.job_seq + 1;
        line.clear();
        job.push_notify(line, seq, clean);
        let written = match writer.try_write(line.as_bytes()) {
            Ok(n) => n,
            // Full socket buffer: the session waits for room itself.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // A broken socket: the session finds out when it next writes.
            Err(_) => 0,
        };
        if written == 0 {
            drop(state);
            self.wake.notify_one();
            return Offer::Woken;
        }
        state.notes.push(Note {
            job: job.clone(),
            seq,
            clean,
        });
        state.idle = Some(Mirror {
            job_seq: seq,
            last_prev_hash: job.prev_hash(),
            last_job_id: job.id(),
            ..mirror
        });
        if written < line.len() {
            state
                .leftover
                .extend_from_slice(&line.as_bytes()[written..]);
            state.idle = None;
            drop(state);
            self.wake.notify_one();
        }
        Offer::Written(new_block)
    }
}

/// Follows the published jobs and fans each out to every session, until
/// `stop` resolves.
pub(crate) async fn run(shared: Arc<Shared>, stop: impl std::future::Future<Output = ()>) {
    let mut jobs = shared.work.subscribe();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            changed = jobs.changed() => if changed.is_err() { return },
        }
        let Some(job) = jobs.borrow_and_update().clone() else {
            continue;
        };
        fan_out(&shared, &job).await;
    }
}

/// Offers `job` to every registered session, in chunks spread over the
/// runtime's workers.
async fn fan_out(shared: &Arc<Shared>, job: &Arc<Job>) {
    let links: Arc<[Arc<Link>]> = shared.links_snapshot().into();
    let mut tasks = tokio::task::JoinSet::new();
    for start in (0..links.len()).step_by(CHUNK) {
        let links = links.clone();
        let job = job.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let end = (start + CHUNK).min(links.len());
            let mut line = String::new();
            let (mut direct, mut woken) = (0u64, 0u64);
            for (i, link) in links[start..end].iter().enumerate() {
                // A newer job (the next block) makes this one moot: stop, so
                // the fan-out can start on that one at once.
                if i % STALE_CHECK == 0 && !shared.work.is_current(&job) {
                    break;
                }
                match link.offer(&job, &mut line) {
                    Offer::Written(new_block) => {
                        direct += 1;
                        if new_block {
                            shared
                                .metrics
                                .job_fanout_seconds
                                .record(job.built().elapsed().as_secs_f64());
                        }
                    }
                    Offer::Woken => woken += 1,
                    Offer::Skipped => {}
                }
            }
            shared.metrics.fanout_direct.increment(direct);
            shared.metrics.fanout_woken.increment(woken);
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::warn!(error = %e, "job fan-out task failed");
        }
    }
}
