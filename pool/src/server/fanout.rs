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
//! Every other session that wants jobs is woken to send the job itself, as
//! before: one that is busy (reading, waiting for a commit, writing), a TLS
//! session (rustls owns its writes), one whose difficulty or extranonce2
//! size is about to change, one whose socket buffer is full (or took only
//! part of the line; the session writes the rest first), and one with many
//! notes unread. A session that has not subscribed and authorized yet is
//! left alone: it sends the current job when it gets there. A session
//! marks itself busy under the same lock the fan-out writes under, so the
//! two never write at once.

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
    /// The session's task is between a wake-up and the end of its write:
    /// it sends the current job itself when it is done, if woken.
    busy: bool,
    /// The session is subscribed and authorized (and not closing), so a
    /// new job is for it; one that is not yet sends the current job when it
    /// gets there.
    wants_jobs: bool,
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

/// The job being fanned out, under a handle of one fan-out task's own:
/// each note takes a reference, and counting them on the job's own `Arc`
/// from every core at once would bounce one cache line between the cores
/// for every session.
pub(crate) type TaskJob = Arc<Arc<Job>>;

/// A job the fan-out wrote for a session.
#[derive(Debug)]
pub(crate) struct Note {
    pub(crate) job: TaskJob,
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
    /// Written whole, straight to the socket; `true` if on a new block.
    Written(bool),
    /// The session already had it (or a newer one), does not want jobs
    /// yet, or is gone.
    Skipped,
    /// The session was woken to send it (or to finish writing it).
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

    /// The session wrote everything and waits again. `wants_jobs` if it is
    /// subscribed and authorized; with `idle` set, jobs may be written for
    /// it directly.
    pub(crate) fn end(&self, wants_jobs: bool, idle: Option<Mirror>) {
        let mut state = self.state();
        state.busy = false;
        state.wants_jobs = wants_jobs;
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
    fn offer(&self, task_job: &TaskJob, line: &mut String) -> Offer {
        let job: &Job = task_job;
        let mut state = self.state();
        if state.closed || (!state.busy && !state.wants_jobs) {
            return Offer::Skipped;
        }
        let ready = match (&self.writer, state.idle) {
            (Some(writer), Some(mirror)) if !state.busy => {
                // Job ids rise in publish order: a session that already sent
                // this job, or a newer one (it woke and sent the current
                // job itself), must not get an older one after it.
                if mirror.last_job_id >= job.id() {
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
        // Straight to the socket, not through tokio's readiness state (one
        // cache miss less per session); a `WouldBlock` here only means the
        // session's own write later finds the readiness stale and waits.
        let written = match socket2::SockRef::from(writer.as_ref()).send(line.as_bytes()) {
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
            job: task_job.clone(),
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
            // The session writes the rest, first thing when it wakes.
            state
                .leftover
                .extend_from_slice(&line.as_bytes()[written..]);
            state.idle = None;
            drop(state);
            self.wake.notify_one();
            return Offer::Woken;
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
            let task_job: TaskJob = Arc::new(job);
            let mut line = String::new();
            let (mut direct, mut woken) = (0u64, 0u64);
            // New-block writes not yet in `pool_job_fanout_seconds`: they
            // are observed a group at a time, at the group's end time.
            let mut unobserved = 0usize;
            for (i, link) in links[start..end].iter().enumerate() {
                if i % STALE_CHECK == 0 {
                    observe(&shared, &task_job, &mut unobserved);
                    // A newer job (the next block) makes this one moot:
                    // stop, so the fan-out can start on that one at once.
                    if !shared.work.is_current(&task_job) {
                        break;
                    }
                }
                match link.offer(&task_job, &mut line) {
                    Offer::Written(new_block) => {
                        direct += 1;
                        unobserved += usize::from(new_block);
                    }
                    Offer::Woken => woken += 1,
                    Offer::Skipped => {}
                }
            }
            observe(&shared, &task_job, &mut unobserved);
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

/// Records `unobserved` writes of `job` in `pool_job_fanout_seconds`, as
/// of now.
fn observe(shared: &Shared, job: &Job, unobserved: &mut usize) {
    if *unobserved > 0 {
        shared
            .metrics
            .job_fanout_seconds
            .record_many(job.built().elapsed().as_secs_f64(), *unobserved);
        *unobserved = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobConfig;
    use crate::template::BlockTemplate;
    use bitcoin::ScriptBuf;
    use tokio::io::AsyncReadExt;

    const GBT: &str = include_str!("../../tests/fixtures/regtest_gbt_empty.json");

    fn job(id: u64, extranonce2_len: usize) -> TaskJob {
        let template: BlockTemplate = serde_json::from_str(GBT).unwrap();
        let config = JobConfig {
            extranonce2_len,
            ..JobConfig::new(ScriptBuf::from_bytes(vec![0x51]))
        };
        Arc::new(Arc::new(Job::new(id, &template, &config, false).unwrap()))
    }

    /// A loopback connection: the pool's write half and the miner's end.
    async fn connection() -> (OwnedWriteHalf, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let miner = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (pool, _) = listener.accept().await.unwrap();
        (pool.into_split().1, miner)
    }

    #[tokio::test]
    async fn only_idle_sessions_that_want_the_job_get_it_written() {
        let (write, mut miner) = connection().await;
        let link = Link::new(Some(write));
        let mut line = String::new();
        let j5 = job(5, 8);
        // Until its first wake-up ends, the session is busy: woken.
        assert_eq!(link.offer(&j5, &mut line), Offer::Woken);
        // Idle before subscribe and authorize: left alone.
        link.end(false, None);
        assert_eq!(link.offer(&j5, &mut line), Offer::Skipped);

        // Idle with job 5 sent as its id 3.
        let mirror = Mirror {
            extranonce2_len: 8,
            job_seq: 3,
            last_prev_hash: j5.prev_hash(),
            last_job_id: 5,
        };
        link.end(true, Some(mirror));
        // That job again, or an older one still being fanned out after the
        // session sent the newer one itself, is not written.
        assert_eq!(link.offer(&j5, &mut line), Offer::Skipped);
        assert_eq!(link.offer(&job(4, 8), &mut line), Offer::Skipped);
        // A newer job on the same block: written under the next id, not clean.
        let j6 = job(6, 8);
        assert_eq!(link.offer(&j6, &mut line), Offer::Written(false));
        let mut got = vec![0u8; line.len()];
        miner.read_exact(&mut got).await.unwrap();
        let mut want = String::new();
        j6.push_notify(&mut want, 4, false);
        assert_eq!(String::from_utf8(got).unwrap(), want);
        // Another extranonce2 size is the session's to announce: woken.
        assert_eq!(link.offer(&job(7, 4), &mut line), Offer::Woken);

        // The session files the written job when it wakes, and is busy.
        let mut backlog = Backlog::default();
        link.begin(&mut backlog);
        assert_eq!(backlog.notes.len(), 1);
        assert_eq!(backlog.notes[0].job.id(), 6);
        assert_eq!(backlog.notes[0].seq, 4);
        assert!(!backlog.notes[0].clean);
        assert!(backlog.leftover.is_empty());
        assert_eq!(link.offer(&job(8, 8), &mut line), Offer::Woken);

        // A closed session gets nothing, not even a wake-up.
        link.close();
        assert_eq!(link.offer(&job(9, 8), &mut line), Offer::Skipped);
    }

    #[tokio::test]
    async fn a_tls_session_is_always_woken() {
        let link = Link::new(None);
        let j = job(2, 8);
        link.end(
            true,
            Some(Mirror {
                extranonce2_len: 8,
                job_seq: 1,
                last_prev_hash: j.prev_hash(),
                last_job_id: 1,
            }),
        );
        assert_eq!(link.offer(&j, &mut String::new()), Offer::Woken);
    }

    #[tokio::test]
    async fn a_full_socket_leaves_the_rest_of_the_line_to_the_session() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut miner = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (pool, _) = listener.accept().await.unwrap();
        pool.set_nodelay(true).unwrap();
        socket2::SockRef::from(&pool)
            .set_send_buffer_size(4096)
            .unwrap();
        let link = Link::new(Some(pool.into_split().1));
        let first = job(1, 8);
        // The miner reads nothing: jobs go in until the socket is full. The
        // session files the notes whenever the fan-out wakes it for having
        // too many, as it would.
        let mut mirror = Mirror {
            extranonce2_len: 8,
            job_seq: 1,
            last_prev_hash: first.prev_hash(),
            last_job_id: 1,
        };
        let mut line = String::new();
        let mut notes = Vec::new();
        let mut backlog = Backlog::default();
        link.end(true, Some(mirror));
        for id in 2..100_000 {
            if let Offer::Woken = link.offer(&job(id, 8), &mut line) {
                link.begin(&mut backlog);
                let full = backlog.notes.len() < MAX_NOTES || !backlog.leftover.is_empty();
                if let Some(last) = backlog.notes.last() {
                    mirror = Mirror {
                        job_seq: last.seq,
                        last_job_id: last.job.id(),
                        ..mirror
                    };
                }
                notes.append(&mut backlog.notes);
                if full {
                    break;
                }
                link.end(true, Some(mirror));
            }
        }
        let filed = notes.len();
        assert!(filed > 1, "{filed} jobs went in before the socket was full");
        // The socket took part of the last line (the kernel copies what
        // fits): the session has the rest.
        assert!(!backlog.leftover.is_empty());
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while got.iter().filter(|&&b| b == b'\n').count() < filed {
                let n = miner.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        link.write_all(&backlog.leftover).await.unwrap();
        let got = String::from_utf8(reader.await.unwrap()).unwrap();
        // Whole lines, in order: the ids 2, 3, ... the notes say.
        for (line, note) in got.lines().zip(&notes) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["params"][0], format!("{:x}", note.seq));
        }
        assert_eq!(got.lines().count(), filed);
    }
}
