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
//!
//! The share writer uses the same [`Link`] for submit replies (it is the
//! session's [`AckSink`]): an idle session publishes its submits waiting
//! for their commit, and after the commit the writer writes their `true`
//! straight to the socket, one write per session per commit, instead of
//! waking the session's task for each. Outcomes it cannot write (an error,
//! a busy session, something else queued first) go to the session, which
//! then answers the rest itself, in order.

use super::Shared;
use crate::job::{Binding, Job};
use bitcoin::BlockHash;
use metrics::{Counter, Histogram};
use proofpool_store::{AckSink, Committed, WriteError};
use proofpool_stratum::{self as sv1, Id};
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// What became of a queued share: its commit, or the store's error.
pub(crate) type Outcome = Result<Committed, WriteError>;

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
    /// Wakes the session: to send the current job itself, or to answer
    /// submits whose outcome arrived.
    wake: Notify,
    /// Counted for replies the share writer writes (in all and under the
    /// connection's protocol).
    accepted: Counter,
    accepted_here: Counter,
    direct_replies: Counter,
    submit_seconds: Histogram,
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
    /// Submit replies, once the session has queued a share (boxed: an idle
    /// connection that never submits pays one pointer for them).
    replies: Option<Box<Replies>>,
}

/// The share writer's side of a session's submit replies.
#[derive(Debug, Default)]
struct Replies {
    /// While the session is idle: its submits waiting for their commit, in
    /// order, whose `true` the share writer may write straight to the
    /// socket (nothing else of the session's waits to be written).
    direct: VecDeque<DirectReply>,
    /// What `idle` becomes once every reply in `direct` is written (at the
    /// flush, so a job never goes out ahead of a reply).
    then_idle: Option<Mirror>,
    /// Wake the session once every reply in `direct` is written: it stopped
    /// reading until its waiting submits are answered.
    wake_when_answered: bool,
    /// Replies the share writer wrote since the session last woke: for
    /// its first pending submits.
    replied: usize,
    /// Replies formatted by [`AckSink::deliver`], sent by
    /// [`AckSink::flush`].
    unsent: Vec<u8>,
    /// Outcomes the session answers itself, in order.
    outcomes: VecDeque<(u64, Outcome)>,
    /// An outcome is waiting for the session: wake it at the flush.
    wake_on_flush: bool,
}

/// A submit whose `true` the share writer may write for an idle session.
#[derive(Debug)]
pub(crate) struct DirectReply {
    /// The token the share was queued with.
    pub(crate) token: u64,
    /// The submit's JSON-RPC id.
    pub(crate) id: Id,
    /// When the session read it.
    pub(crate) read_at: Instant,
}

/// What a job line for an idle session depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mirror {
    /// What the session's next job commits to.
    pub(crate) binding: Binding,
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
    /// What its coinbase commits to.
    pub(crate) binding: Binding,
}

/// What [`Link::begin`] hands the session.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pub(crate) notes: Vec<Note>,
    /// Bytes to write before anything else: the end of a line the socket
    /// took only part of, then replies the share writer formatted but had
    /// not sent yet.
    pub(crate) leftover: Vec<u8>,
    /// The session's first pending submits the share writer answered.
    pub(crate) replied: usize,
    /// Outcomes of the following ones, in order.
    pub(crate) outcomes: VecDeque<(u64, Outcome)>,
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
            accepted: Counter::noop(),
            accepted_here: Counter::noop(),
            direct_replies: Counter::noop(),
            submit_seconds: Histogram::noop(),
        }
    }

    /// Counts the replies the share writer writes in these: accepted
    /// shares (in all and under the connection's protocol), replies written
    /// directly, and the submit latency.
    pub(crate) fn counting(
        mut self,
        [accepted, accepted_here]: [Counter; 2],
        direct_replies: Counter,
        submit_seconds: Histogram,
    ) -> Self {
        self.accepted = accepted;
        self.accepted_here = accepted_here;
        self.direct_replies = direct_replies;
        self.submit_seconds = submit_seconds;
        self
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
        let mut guard = self.state();
        let state = &mut *guard;
        state.busy = true;
        state.idle = None;
        std::mem::swap(&mut state.notes, &mut reuse.notes);
        std::mem::swap(&mut state.leftover, &mut reuse.leftover);
        if let Some(r) = &mut state.replies {
            reuse.leftover.extend_from_slice(&r.unsent);
            r.unsent.clear();
            reuse.replied = std::mem::take(&mut r.replied);
            reuse.outcomes.append(&mut r.outcomes);
            r.direct.clear();
            r.then_idle = None;
            r.wake_when_answered = false;
        }
    }

    /// Outcomes that arrived while the session is busy (it waits for them
    /// to close).
    pub(crate) fn take_outcomes(&self, into: &mut VecDeque<(u64, Outcome)>) {
        if let Some(r) = &mut self.state().replies {
            into.append(&mut r.outcomes);
        }
    }

    /// The session wrote everything and waits again. `wants_jobs` if it is
    /// subscribed and authorized; with `idle` set, jobs may be written for
    /// it directly. `direct` are its submits still waiting for their
    /// commit, if the share writer may answer them (then `idle` is `None`
    /// and `then_idle` what it becomes once they are answered);
    /// `wake_when_answered` if the session must hear when they all are.
    pub(crate) fn end(
        &self,
        wants_jobs: bool,
        idle: Option<Mirror>,
        direct: impl Iterator<Item = DirectReply>,
        then_idle: Option<Mirror>,
        wake_when_answered: bool,
    ) {
        let mut state = self.state();
        state.busy = false;
        state.wants_jobs = wants_jobs;
        state.idle = idle;
        let mut direct = direct.peekable();
        if self.writer.is_some() && direct.peek().is_some() {
            let r = state.replies.get_or_insert_with(Box::default);
            r.direct.extend(direct);
            r.then_idle = then_idle;
            r.wake_when_answered = wake_when_answered;
        }
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
        job.push_notify(line, seq, clean, &mirror.binding);
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
            binding: mirror.binding,
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

/// The share writer answers an idle session's submits itself: a `true` for
/// the first of them waiting goes straight to the socket (sent at the
/// flush, one write per commit), without the session's task waking up.
/// Anything else (an error, a session that is busy or has something else
/// to write first) is left for the session, which is woken for it; from
/// then on it answers the rest itself, so replies keep the submits' order.
impl AckSink for Link {
    fn deliver(&self, token: u64, outcome: Outcome) {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.closed {
            return;
        }
        let r = state.replies.get_or_insert_with(Box::default);
        let direct = !state.busy
            && state.leftover.is_empty()
            && outcome.is_ok()
            && r.direct.front().is_some_and(|d| d.token == token);
        match r.direct.pop_front() {
            Some(d) if direct => {
                r.unsent
                    .extend_from_slice(sv1::reply_true(&d.id).as_bytes());
                r.replied += 1;
                self.accepted.increment(1);
                self.accepted_here.increment(1);
                self.direct_replies.increment(1);
                self.submit_seconds.record(d.read_at.elapsed());
                if r.direct.is_empty() && std::mem::take(&mut r.wake_when_answered) {
                    r.wake_on_flush = true;
                }
            }
            _ => {
                r.direct.clear();
                r.then_idle = None;
                r.outcomes.push_back((token, outcome));
                r.wake_on_flush = true;
            }
        }
    }

    fn flush(&self) {
        let mut guard = self.state();
        let state = &mut *guard;
        let Some(r) = &mut state.replies else {
            return;
        };
        if !r.unsent.is_empty() && !state.busy && !state.closed {
            let sent = match &self.writer {
                Some(writer) => socket2::SockRef::from(writer.as_ref())
                    .send(&r.unsent)
                    .unwrap_or(0),
                None => 0,
            };
            if sent < r.unsent.len() {
                // A full socket: the session writes the rest first and
                // answers whatever follows itself.
                state.leftover.extend_from_slice(&r.unsent[sent..]);
                r.direct.clear();
                r.then_idle = None;
                state.idle = None;
                r.wake_on_flush = true;
            }
        }
        r.unsent.clear();
        // Every reply written: jobs may now be written after them.
        if r.direct.is_empty()
            && state.leftover.is_empty()
            && !state.busy
            && let Some(mirror) = r.then_idle.take()
        {
            state.idle = Some(mirror);
        }
        if std::mem::take(&mut r.wake_on_flush) {
            drop(guard);
            self.wake.notify_one();
        }
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
        Arc::new(Arc::new(
            Job::new(id, &template, &config, false, crate::job::tests::LOG_HEAD).unwrap(),
        ))
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
        link.end(false, None, std::iter::empty(), None, false);
        assert_eq!(link.offer(&j5, &mut line), Offer::Skipped);

        // Idle with job 5 sent as its id 3.
        let mirror = Mirror {
            binding: crate::job::tests::binding(),
            extranonce2_len: 8,
            job_seq: 3,
            last_prev_hash: j5.prev_hash(),
            last_job_id: 5,
        };
        link.end(true, Some(mirror), std::iter::empty(), None, false);
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
        j6.push_notify(&mut want, 4, false, &crate::job::tests::binding());
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
                binding: crate::job::tests::binding(),
                extranonce2_len: 8,
                job_seq: 1,
                last_prev_hash: j.prev_hash(),
                last_job_id: 1,
            }),
            std::iter::empty(),
            None,
            false,
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
            binding: crate::job::tests::binding(),
            extranonce2_len: 8,
            job_seq: 1,
            last_prev_hash: first.prev_hash(),
            last_job_id: 1,
        };
        let mut line = String::new();
        let mut notes = Vec::new();
        let mut backlog = Backlog::default();
        link.end(true, Some(mirror), std::iter::empty(), None, false);
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
                link.end(true, Some(mirror), std::iter::empty(), None, false);
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

    fn committed(seq: u64) -> Outcome {
        Ok(Committed { seq, epoch: 1 })
    }

    fn direct(token: u64) -> DirectReply {
        DirectReply {
            token,
            id: Id::Number((token + 100).into()),
            read_at: Instant::now(),
        }
    }

    /// Reads exactly `n` bytes from the miner's end.
    async fn read_n(miner: &mut tokio::net::TcpStream, n: usize) -> String {
        let mut buf = vec![0; n];
        miner.read_exact(&mut buf).await.unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[tokio::test]
    async fn the_share_writer_answers_an_idle_session_in_order() {
        let (write, mut miner) = connection().await;
        let link = Link::new(Some(write));
        let first = job(1, 8);
        let mirror = Mirror {
            binding: crate::job::tests::binding(),
            extranonce2_len: 8,
            job_seq: 1,
            last_prev_hash: first.prev_hash(),
            last_job_id: 1,
        };
        let mut backlog = Backlog::default();
        link.begin(&mut backlog);
        // Idle with two submits waiting: both `true`s go out at the flush,
        // in order, and the session then counts as idle for new jobs.
        link.end(
            true,
            None,
            [direct(0), direct(1)].into_iter(),
            Some(mirror),
            false,
        );
        link.deliver(0, committed(7));
        link.deliver(1, committed(8));
        let mut line = String::new();
        // A job before the flush would go out ahead of the replies: the
        // session is woken for it instead (and would write both, in order).
        assert_eq!(link.offer(&job(2, 8), &mut line), Offer::Woken);
        link.flush();
        let want = format!(
            "{}{}",
            sv1::reply_true(&Id::Number(100.into())),
            sv1::reply_true(&Id::Number(101.into()))
        );
        assert_eq!(read_n(&mut miner, want.len()).await, want);
        assert_eq!(link.offer(&job(2, 8), &mut line), Offer::Written(false));
        link.begin(&mut backlog);
        assert_eq!(backlog.replied, 2);
        assert!(backlog.outcomes.is_empty() && backlog.leftover.is_empty());
        assert_eq!(backlog.notes.len(), 1, "the job written after the replies");

        // An error for the first of three: it and everything after it are
        // the session's to answer, in order; nothing is written for them.
        backlog.notes.clear();
        link.end(
            true,
            None,
            [direct(2), direct(3), direct(4)].into_iter(),
            Some(mirror),
            false,
        );
        link.deliver(2, Err(WriteError("down".into())));
        link.deliver(3, committed(9));
        link.flush();
        link.deliver(4, committed(10));
        link.flush();
        assert_eq!(
            link.offer(&job(3, 8), &mut line),
            Offer::Woken,
            "replies still owed"
        );
        link.begin(&mut backlog);
        assert_eq!(backlog.replied, 0);
        let tokens: Vec<u64> = backlog.outcomes.iter().map(|(t, _)| *t).collect();
        assert_eq!(tokens, [2, 3, 4]);
        assert!(backlog.outcomes[0].1.is_err());

        // A busy session answers for itself.
        backlog.outcomes.clear();
        link.deliver(5, committed(11));
        link.flush();
        link.take_outcomes(&mut backlog.outcomes);
        assert_eq!(backlog.outcomes.len(), 1);
        // Nothing but the job and the two `true`s reached the miner.
        drop(link);
        let mut rest = String::new();
        miner.read_to_string(&mut rest).await.unwrap();
        assert!(
            rest.starts_with("{\"id\":null,\"method\":\"mining.notify\""),
            "{rest}"
        );
        assert_eq!(rest.lines().count(), 1, "{rest}");
    }

    #[tokio::test]
    async fn a_reply_the_socket_takes_only_part_of_is_finished_by_the_session() {
        let (write, mut miner) = connection().await;
        socket2::SockRef::from(write.as_ref())
            .set_send_buffer_size(4096)
            .unwrap();
        let link = Link::new(Some(write));
        let mut backlog = Backlog::default();
        link.begin(&mut backlog);
        // Far more replies than the buffers hold, all delivered in one commit.
        let n = 20_000u64;
        link.end(false, None, (0..n).map(direct), None, false);
        for token in 0..n {
            link.deliver(token, committed(token));
        }
        link.flush();
        link.begin(&mut backlog);
        assert_eq!(
            backlog.replied, n as usize,
            "every one formatted by the writer"
        );
        assert!(
            !backlog.leftover.is_empty(),
            "the socket could not take them all"
        );
        let want: String = (0..n)
            .map(|t| sv1::reply_true(&Id::Number((t + 100).into())))
            .collect();
        // The session writes the rest; the miner reads every reply whole, in order.
        let reader = tokio::spawn(async move { read_n(&mut miner, want.len()).await == want });
        link.write_all(&backlog.leftover).await.unwrap();
        assert!(reader.await.unwrap());
    }

    #[tokio::test]
    async fn a_session_that_stopped_reading_hears_when_its_replies_are_written() {
        let (write, mut miner) = connection().await;
        let link = Link::new(Some(write));
        let mut backlog = Backlog::default();
        let woke = |link: &Link| {
            let fired = link.wake.notified();
            tokio::pin!(fired);
            fired.as_mut().enable()
        };
        // Reading on: written without a wake-up.
        link.begin(&mut backlog);
        link.end(true, None, [direct(0)].into_iter(), None, false);
        link.deliver(0, committed(1));
        link.flush();
        assert!(!woke(&link));
        // At its cap of waiting submits the session stops reading: the
        // last reply written wakes it.
        link.begin(&mut backlog);
        link.end(true, None, [direct(1), direct(2)].into_iter(), None, true);
        link.deliver(1, committed(2));
        link.flush();
        assert!(!woke(&link), "one still waiting");
        link.deliver(2, committed(3));
        link.flush();
        assert!(woke(&link));
        link.begin(&mut backlog);
        assert_eq!(backlog.replied, 2);
        let want: String = (0..3)
            .map(|t| sv1::reply_true(&Id::Number((t + 100).into())))
            .collect();
        assert_eq!(read_n(&mut miner, want.len()).await, want);
    }
}
