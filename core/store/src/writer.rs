//! The group-commit share writer.
//!
//! Sessions hand accepted shares to [`ShareLog::submit`], which never blocks:
//! it queues the share (bounded) and returns a receiver for its
//! acknowledgement ([`ShareLog::submit_to`] hands it to an [`AckSink`]
//! instead, from the writer's own thread, flushed once per commit). One
//! writer task drains the queue into batches (up to `max_batch` shares or `max_delay` after the first; by default it does not
//! wait at all, so a batch is whatever queued while the previous commit ran,
//! which batches more as the load grows) and commits each batch
//! in one transaction, together with the jobs, workers and blocks recorded
//! since the last one (written first, so a share never lands before its
//! job). Only then does it resolve the acknowledgements, so a `true` sent to
//! a miner always means the share is durable.
//!
//! When the database is down or slow the writer retries the batch with
//! backoff, the queue fills, and [`ShareLog::submit`] starts refusing with
//! [`SubmitError::Overloaded`]; after `give_up_after` the batch's shares are
//! answered with [`WriteError`], so miners hear the truth instead of waiting
//! forever. Nothing acknowledged is ever lost, and nothing is acknowledged
//! that was not written.

use crate::model::{BlockRecord, Committed, JobRecord, LogPoint, NewShare, WorkerSeen};
use crate::{Db, Store, StoreError, i64_of};
use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, PgConnection, Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Tuning for the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most shares in one transaction.
    pub max_batch: usize,
    /// Longest a share waits for its batch to fill before the commit starts.
    /// Zero (the default) commits as soon as the previous commit ends: the
    /// lowest latency, and batches still grow with the load.
    pub max_delay: Duration,
    /// Most shares queued (including the batch being written); beyond it,
    /// submissions are refused.
    pub queue_capacity: usize,
    /// How long one batch is retried while the database fails before its
    /// shares are answered with an error.
    pub give_up_after: Duration,
    /// Keep each instance's acceptance times from going backwards in
    /// sequence order (see `Writer::monotone_times`). On in the pool; off
    /// only to exercise the store's epoch rule with arbitrary times.
    pub monotone_times: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            max_delay: Duration::ZERO,
            queue_capacity: 65_536,
            give_up_after: Duration::from_secs(10),
            monotone_times: true,
        }
    }
}

/// Why a share was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The queue is full: the store is down or slower than the miners.
    #[error(
        "share store is overloaded ({capacity} shares queued); share not recorded, resubmit later"
    )]
    Overloaded {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The writer has stopped.
    #[error("share store is shutting down; share not recorded")]
    Closed,
}

/// Why a queued share was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("share store unavailable, share not recorded: {0}")]
pub struct WriteError(pub String);

/// Counters for metrics, updated by the writer.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Shares committed.
    pub shares_committed: AtomicU64,
    /// Transactions committed.
    pub batches_committed: AtomicU64,
    /// Shares in the last committed batch.
    pub last_batch_size: AtomicU64,
    /// Total time spent committing, microseconds.
    pub commit_micros_total: AtomicU64,
    /// Longest single commit, microseconds.
    pub commit_micros_max: AtomicU64,
    /// Failed commit attempts.
    pub commit_failures: AtomicU64,
    /// Shares answered with an error because the store stayed down.
    pub shares_failed: AtomicU64,
    /// Submissions refused because the queue was full.
    pub shares_refused: AtomicU64,
}

/// Where the writer hands a queued share's outcome, for
/// [`ShareLog::submit_to`]: a connection can then answer its miner from the
/// writer's thread, without its own task waking for every commit.
pub trait AckSink: Send + Sync + std::fmt::Debug {
    /// The share queued with `token` is committed, or definitely not
    /// written. Called once per share from the writer, in queue order;
    /// must not block.
    fn deliver(&self, token: u64, outcome: Result<Committed, WriteError>);
    /// Every outcome of one commit for this sink has been delivered (called
    /// once per run of consecutive shares of the same sink in a batch).
    fn flush(&self);
}

/// Who hears of a share's outcome.
#[derive(Debug)]
enum Ack {
    Channel(oneshot::Sender<Result<Committed, WriteError>>),
    Sink(Arc<dyn AckSink>, u64),
}

#[derive(Debug)]
struct Pending {
    share: NewShare,
    /// Taken when the outcome is delivered.
    ack: Option<Ack>,
}

impl Pending {
    fn sink(&self) -> Option<&Arc<dyn AckSink>> {
        match &self.ack {
            Some(Ack::Sink(sink, _)) => Some(sink),
            _ => None,
        }
    }
}

impl Drop for Pending {
    /// A share dropped unwritten (the writer stopped) is answered with an
    /// error, never left waiting; a channel's receiver sees it closed.
    fn drop(&mut self) {
        if let Some(Ack::Sink(sink, token)) = self.ack.take() {
            sink.deliver(
                token,
                Err(WriteError(
                    "share writer stopped; share not recorded".into(),
                )),
            );
            sink.flush();
        }
    }
}

/// Delivers `outcome(i)` for every share of `batch`, in order; each sink is
/// flushed at the end of each run of its shares.
fn deliver_all(
    batch: &mut [Pending],
    mut outcome: impl FnMut(usize) -> Result<Committed, WriteError>,
) {
    for i in 0..batch.len() {
        match batch[i].ack.take() {
            // The waiter may have gone (a miner that disconnected); the
            // share is durable all the same.
            Some(Ack::Channel(tx)) => {
                let _ = tx.send(outcome(i));
            }
            Some(Ack::Sink(sink, token)) => {
                sink.deliver(token, outcome(i));
                let same_next = batch
                    .get(i + 1)
                    .and_then(Pending::sink)
                    .is_some_and(|next| std::ptr::addr_eq(Arc::as_ptr(next), Arc::as_ptr(&sink)));
                if !same_next {
                    sink.flush();
                }
            }
            None => {}
        }
    }
}

/// Each instance's share-log head as last folded; shared with the job
/// builder, whose jobs commit to it.
#[derive(Debug, Default)]
struct LogHeads {
    points: Mutex<HashMap<u8, LogPoint>>,
    /// Checkpoints the folder has made due, for the writer's next commit.
    due: Mutex<Vec<(u8, LogPoint)>>,
}

impl LogHeads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u8, LogPoint>> {
        self.points.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_due(&self) -> Vec<(u8, LogPoint)> {
        std::mem::take(&mut *self.due.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What the writer hands the folder.
enum Fold {
    /// One commit's shares, in sequence order, with their instance.
    Batch(Vec<(u8, proofpool_merkle::ShareLeaf)>),
    /// Answered once everything sent before is folded.
    Flush(oneshot::Sender<()>),
}

/// Folds committed shares into each instance's share-log chain, on a
/// thread of its own: a keccak per share on the writer's thread cost a
/// third of its commits per second at the load benchmark's peak. An
/// instance whose head was never loaded ([`ShareLog::load_log_head`], which
/// the pool calls before its first job) is not followed: its jobs would
/// commit to nothing anyway. A checkpoint of a chain is made due at most
/// once per [`LOG_CHECKPOINT_EVERY`] and written with the writer's next
/// commit.
fn fold_thread(heads: Arc<LogHeads>, batches: std::sync::mpsc::Receiver<Fold>) {
    let mut checkpoints: HashMap<u8, Instant> = HashMap::new();
    let mut touched: Vec<u8> = Vec::new();
    for message in batches {
        let batch = match message {
            Fold::Batch(batch) => batch,
            Fold::Flush(tx) => {
                let _ = tx.send(());
                continue;
            }
        };
        touched.clear();
        {
            let mut points = heads.lock();
            for (instance, leaf) in &batch {
                let Some(point) = points.get_mut(instance) else {
                    continue;
                };
                if point.seq >= leaf.seq {
                    continue;
                }
                point.fold_leaf(leaf);
                if !touched.contains(instance) {
                    touched.push(*instance);
                }
            }
        }
        for instance in &touched {
            let due = checkpoints
                .get(instance)
                .is_none_or(|at| at.elapsed() >= LOG_CHECKPOINT_EVERY);
            if due && let Some(point) = heads.lock().get(instance).copied() {
                checkpoints.insert(*instance, Instant::now());
                heads
                    .due
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((*instance, point));
            }
        }
    }
}

/// How often the writer records a checkpoint of an instance's chain.
const LOG_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Control {
    Job(Box<JobRecord>),
    Worker(WorkerSeen),
    Block(Box<BlockRecord>),
    /// A checkpoint of an instance's share-log chain, written with the next
    /// commit (on the writer's own connection).
    LogPoint(u8, LogPoint),
    Flush(oneshot::Sender<()>),
}

/// The handle sessions use to record shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShareLog {
    heads: Arc<LogHeads>,
    shares: mpsc::Sender<Pending>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<WriterStats>,
    capacity: usize,
}

impl ShareLog {
    /// Starts the writer task on `store`. It runs until every handle is
    /// dropped, after writing everything queued.
    pub fn spawn(store: Store, config: WriterConfig) -> (Self, JoinHandle<()>) {
        let capacity = config.queue_capacity.max(1);
        let (shares_tx, shares_rx) = mpsc::channel(capacity);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(WriterStats::default());
        let (stop_checkpoints, stopped) = oneshot::channel();
        let committed = Arc::new(tokio::sync::Notify::new());
        let heads = Arc::new(LogHeads::default());
        let (fold_tx, fold_rx) = std::sync::mpsc::channel();
        {
            let heads = heads.clone();
            std::thread::Builder::new()
                .name("share-log-fold".into())
                .spawn(move || fold_thread(heads, fold_rx))
                .expect("the share-log fold thread starts");
        }
        if let Db::Sqlite(pool) = &store.db {
            tokio::spawn(checkpoint_wal(pool.clone(), committed.clone(), stopped));
        }
        let writer = Writer {
            _stop_checkpoints: stop_checkpoints,
            committed,
            store,
            config,
            shares: shares_rx,
            control: control_rx,
            stats: stats.clone(),
            heads: heads.clone(),
            fold: fold_tx,
            last_time: HashMap::new(),
            carry: Vec::new(),
            flushes: Vec::new(),
            sqlite: None,
            postgres: None,
        };
        // The writer gets a thread and a runtime of its own. On the shared
        // runtime every hand-off of a commit (to sqlx's SQLite thread, or a
        // PostgreSQL socket becoming readable) waited behind the sessions'
        // tasks for a worker: about 40% of each SQLite commit cycle under
        // load. On PostgreSQL at 50k shares/s, with the writer's own
        // connection, the median submit latency went from 1.7 to 1.1 ms and
        // the commits per second from about 870 to 1,200
        // (`proofpool-load --phases rate --postgres`). sqlx's SQLite
        // connections are threads and do not care which runtime drives
        // them; the PostgreSQL connection is opened on this runtime.
        let task = tokio::task::spawn_blocking(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(writer.run()),
                // Dropping the writer fails every queued share with a
                // store error; the pool answers them with code 20.
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the share writer's runtime");
                }
            }
        });
        (
            Self {
                heads,
                shares: shares_tx,
                control: control_tx,
                stats,
                capacity,
            },
            task,
        )
    }

    /// Queues an accepted share. The receiver resolves once the share is
    /// durable (or definitely not written).
    pub fn submit(
        &self,
        share: NewShare,
    ) -> Result<oneshot::Receiver<Result<Committed, WriteError>>, SubmitError> {
        let (ack, rx) = oneshot::channel();
        self.queue(share, Ack::Channel(ack))?;
        Ok(rx)
    }

    /// Queues an accepted share whose outcome goes to `sink` under `token`
    /// once the share is durable (or definitely not written).
    pub fn submit_to(
        &self,
        share: NewShare,
        sink: Arc<dyn AckSink>,
        token: u64,
    ) -> Result<(), SubmitError> {
        self.queue(share, Ack::Sink(sink, token))
    }

    fn queue(&self, share: NewShare, ack: Ack) -> Result<(), SubmitError> {
        let pending = Pending {
            share,
            ack: Some(ack),
        };
        match self.shares.try_send(pending) {
            Ok(()) => Ok(()),
            // Refused here, so answered by the caller: nothing to deliver.
            Err(mpsc::error::TrySendError::Full(mut p)) => {
                p.ack = None;
                self.stats.shares_refused.fetch_add(1, Ordering::Relaxed);
                Err(SubmitError::Overloaded {
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(mut p)) => {
                p.ack = None;
                Err(SubmitError::Closed)
            }
        }
    }

    /// `instance`'s share-log head after the last commit the writer folded
    /// (the zero point until [`ShareLog::load_log_head`] or a commit).
    pub fn log_head(&self, instance: u8) -> LogPoint {
        self.heads
            .lock()
            .get(&instance)
            .copied()
            .unwrap_or_default()
    }

    /// Reads `instance`'s share-log head from `store`, unless the writer has
    /// folded a commit for it already: a pool calls it before its first job.
    pub async fn load_log_head(&self, store: &Store, instance: u8) -> Result<LogPoint, StoreError> {
        let point = store.log_point(instance, None).await?;
        Ok(*self.heads.lock().entry(instance).or_insert(point))
    }

    /// Records a job; it is written no later than any share that names it.
    pub fn record_job(&self, job: JobRecord) {
        self.control_op(Control::Job(Box::new(job)));
    }

    /// Records a worker: the pool calls it with the worker's first accepted
    /// share on a connection (never at authorize, so authorizations alone
    /// never grow the table).
    pub fn record_worker(&self, worker: WorkerSeen) {
        self.control_op(Control::Worker(worker));
    }

    /// Records a found block, or updates one already recorded.
    pub fn record_block(&self, block: BlockRecord) {
        self.control_op(Control::Block(Box::new(block)));
    }

    /// Waits until everything queued before this call is written (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.control_op(Control::Flush(tx));
        if rx.await.is_err() {
            tracing::debug!("share writer stopped before the flush");
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Shares waiting in the queue.
    pub fn queued(&self) -> usize {
        self.capacity.saturating_sub(self.shares.capacity())
    }

    fn control_op(&self, op: Control) {
        if self.control.send(op).is_err() {
            tracing::error!(
                "share writer has stopped; a job, worker or block record was not written"
            );
        }
    }
}

struct Writer {
    /// Dropped with the writer, which ends the WAL checkpointer.
    _stop_checkpoints: oneshot::Sender<()>,
    /// Told of every commit: wakes the WAL checkpointer (SQLite).
    committed: Arc<tokio::sync::Notify>,
    store: Store,
    config: WriterConfig,
    shares: mpsc::Receiver<Pending>,
    control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<WriterStats>,
    heads: Arc<LogHeads>,
    /// The fold thread's queue.
    fold: std::sync::mpsc::Sender<Fold>,
    /// The latest acceptance time written for each instance.
    last_time: HashMap<u8, u64>,
    /// Control records from a batch that failed, written with the next one.
    carry: Vec<Control>,
    flushes: Vec<oneshot::Sender<()>>,
    /// SQLite: the writer's own connection, kept while shares keep coming
    /// and given back to the pool after [`IDLE_RELEASE`] without any.
    sqlite: Option<PoolConnection<Sqlite>>,
    /// PostgreSQL: the writer's own connection, opened on the writer's
    /// thread outside the pool and kept for the writer's life (dropped after
    /// a failed commit and opened again for the retry). The pool hands out
    /// connections round-robin, each with its own backend process and
    /// statement cache, and its check before every use was a round trip.
    postgres: Option<PgConnection>,
}

impl Writer {
    async fn run(mut self) {
        let mut shares_open = true;
        let mut control_open = true;
        let mut batch: Vec<Pending> = Vec::with_capacity(self.config.max_batch);
        let mut ops: Vec<Control> = Vec::new();
        loop {
            if !shares_open && !control_open && self.carry.is_empty() {
                break;
            }
            // Wait for the first thing to do (unless a flush is pending and
            // work is queued).
            if self.flushes.is_empty() || self.shares.is_empty() {
                tokio::select! {
                    biased;
                    op = self.control.recv(), if control_open => match op {
                        Some(op) => ops.push(op),
                        None => control_open = false,
                    },
                    p = self.shares.recv(), if shares_open => match p {
                        Some(p) => batch.push(p),
                        None => shares_open = false,
                    },
                    // Idle for a while: the SQLite connection goes back to
                    // the pool. `Store::close` waits for every connection,
                    // and a writer that is merely idle (its pool still
                    // running) must not hold one.
                    () = tokio::time::sleep(IDLE_RELEASE), if self.sqlite.is_some() => {
                        self.sqlite = None;
                    }
                    else => {
                        // Both closed; write what is carried over, then stop.
                        if self.carry.is_empty() {
                            break;
                        }
                    }
                }
            }
            // Fill the batch until it is full or the delay has passed.
            let deadline = tokio::time::Instant::now() + self.config.max_delay;
            while shares_open && batch.len() < self.config.max_batch {
                match self.shares.try_recv() {
                    Ok(p) => {
                        batch.push(p);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        shares_open = false;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                // With no delay configured, commit what has queued. Waiting
                // on an already-passed deadline is not free: tokio's timer
                // fires on its next millisecond tick, and that wait was
                // over half of every commit cycle at 50k shares/s.
                if batch.is_empty() || !self.flushes.is_empty() || self.config.max_delay.is_zero() {
                    break;
                }
                match tokio::time::timeout_at(deadline, self.shares.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    Ok(None) => shares_open = false,
                    Err(_) => break,
                }
            }
            // Control records sent before any share in the batch are in the
            // channel by now; take them all.
            loop {
                match self.control.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        control_open = false;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                }
            }
            let mut records = std::mem::take(&mut self.carry);
            records.extend(
                self.heads
                    .take_due()
                    .into_iter()
                    .map(|(instance, point)| Control::LogPoint(instance, point)),
            );
            for op in ops.drain(..) {
                match op {
                    Control::Flush(tx) => self.flushes.push(tx),
                    other => records.push(other),
                }
            }
            if !records.is_empty() || !batch.is_empty() {
                if self.config.monotone_times {
                    self.monotone_times(&mut batch);
                }
                let written = self.commit(records, &mut batch).await;
                // Closing, and the store stayed down through a whole
                // `give_up_after`: retrying forever would hang the pool's
                // shutdown. Blocks stay on the chain; say what is lost.
                if !written && !shares_open && !control_open && !self.carry.is_empty() {
                    tracing::error!(
                        records = self.carry.len(),
                        "share store unavailable at shutdown; job and block records not written"
                    );
                    self.carry.clear();
                }
            }
            if !self.flushes.is_empty() && self.shares.is_empty() {
                for tx in self.flushes.drain(..) {
                    // Answered by the folder, once the heads include
                    // everything written (the waiter may have given up;
                    // nothing to do then).
                    if let Err(std::sync::mpsc::SendError(Fold::Flush(tx))) =
                        self.fold.send(Fold::Flush(tx))
                    {
                        let _ = tx.send(());
                    }
                }
            }
        }
        for tx in self.flushes.drain(..) {
            let _ = tx.send(());
        }
        if let Some(conn) = self.postgres.take()
            && let Err(e) = conn.close().await
        {
            tracing::debug!(error = %e, "closing the share writer's connection");
        }
        tracing::info!(
            shares = self.stats.shares_committed.load(Ordering::Relaxed),
            "share writer stopped"
        );
    }

    /// Writes `records` and `batch` in one transaction, retrying for up to
    /// `give_up_after`; whether it was written.
    async fn commit(&mut self, records: Vec<Control>, batch: &mut Vec<Pending>) -> bool {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(10);
        loop {
            let attempt = Instant::now();
            match write_batch(
                &self.store,
                &mut self.sqlite,
                &mut self.postgres,
                &records,
                batch,
            )
            .await
            {
                Ok(first) => {
                    let micros = u64::try_from(attempt.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let n = batch.len() as u64;
                    self.stats.shares_committed.fetch_add(n, Ordering::Relaxed);
                    self.stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                    self.stats.last_batch_size.store(n, Ordering::Relaxed);
                    self.stats
                        .commit_micros_total
                        .fetch_add(micros, Ordering::Relaxed);
                    self.stats
                        .commit_micros_max
                        .fetch_max(micros, Ordering::Relaxed);
                    deliver_all(batch, |i| Ok(first[i]));
                    self.committed.notify_one();
                    self.fold_heads(batch, &first);
                    batch.clear();
                    return true;
                }
                Err(e) => {
                    self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    if started.elapsed() >= self.config.give_up_after {
                        tracing::error!(error = %e, shares = batch.len(), "share store unavailable; answering the batch with an error");
                        let err = WriteError(e.to_string());
                        self.stats
                            .shares_failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        deliver_all(batch, |_| Err(err.clone()));
                        batch.clear();
                        // Jobs must still reach the store before shares that name them.
                        self.carry = records;
                        return false;
                    }
                    tracing::warn!(error = %e, shares = batch.len(), retry_in = ?backoff, "share batch commit failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

impl Writer {
    /// Keeps each instance's acceptance times from going backwards in
    /// sequence order: a share timed just before an epoch boundary can
    /// reach the queue after one timed just after it (two sessions on two
    /// threads), and its epoch would then come after a later seq's. Each
    /// instance's share-log chain runs in sequence order, and an auditor
    /// reads it one epoch file at a time, so an instance's shares must not
    /// go back an epoch. Such a share is stamped with the later time (a few
    /// milliseconds at most).
    fn monotone_times(&mut self, batch: &mut [Pending]) {
        for p in batch.iter_mut() {
            let last = self.last_time.entry(p.share.instance).or_insert(0);
            if p.share.time_ms < *last {
                p.share.time_ms = *last;
            } else {
                *last = p.share.time_ms;
            }
        }
    }

    /// Hands a committed batch to the fold thread, after the
    /// acknowledgements went out.
    fn fold_heads(&mut self, batch: &[Pending], committed: &[Committed]) {
        let leaves: Vec<(u8, proofpool_merkle::ShareLeaf)> = batch
            .iter()
            .zip(committed)
            .map(|(p, c)| {
                (
                    p.share.instance,
                    proofpool_merkle::ShareLeaf {
                        epoch: proofpool_primitives::EpochId(c.epoch),
                        seq: c.seq,
                        miner: p.share.miner,
                        work: proofpool_primitives::Work(p.share.work),
                        share_hash: proofpool_primitives::ShareHash(p.share.hash),
                    },
                )
            })
            .collect();
        // The folder only stops when the writer does.
        let _ = self.fold.send(Fold::Batch(leaves));
    }
}

/// How long the writer keeps its SQLite connection with nothing to write.
/// Long enough that a busy pool never gives it back between commits (a
/// return and a fresh acquire on every commit cost latency under load),
/// short enough that closing the store does not wait long for it.
const IDLE_RELEASE: Duration = Duration::from_millis(100);

/// The least time between two background checkpoints of the SQLite WAL.
///
/// Short on purpose. Each checkpoint writes the pages committed since the
/// last one into the database file and syncs it, and every commit's WAL sync
/// meanwhile queues behind that write on the same disk: the smaller each
/// checkpoint, the shorter the commits stuck behind it. At 50k shares/s on
/// the development VM the p99 submit latency was 13.6-13.9 ms with a
/// checkpoint every second, 8.5-9.5 ms every 250 ms, 5.4-6.1 ms every 50 ms
/// and 5.2-5.3 ms every 10 ms (`proofpool-load --phases rate`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Copies the SQLite WAL back into the database file from its own
/// connection after commits, at most once per [`CHECKPOINT_EVERY`], until
/// `stop` resolves; an idle pool does not wake up for it. A passive
/// checkpoint never blocks the writer. Without it SQLite runs the checkpoint
/// inside whichever commit crosses `wal_autocheckpoint`, and that commit
/// (and every share waiting on it) takes tens of milliseconds.
async fn checkpoint_wal(
    pool: sqlx::SqlitePool,
    committed: Arc<tokio::sync::Notify>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = committed.notified() => {}
        }
        let started = tokio::time::Instant::now();
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "background WAL checkpoint failed; SQLite's own checkpoint still runs");
        }
        // Commits made meanwhile left a permit: the next pass starts once
        // the interval is up.
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep_until(started + CHECKPOINT_EVERY) => {}
        }
    }
}

/// Inserts the control records, then the shares; returns where each share
/// landed, in order.
macro_rules! write_records {
    ($tx:expr, $records:expr) => {
        for op in $records {
            match op {
                Control::Job(j) => {
                    sqlx::query(
                        "INSERT INTO jobs (instance, job_id, created, height, prev_hash, version, nbits, \
                         template_time, coinbase1, coinbase2, branch, network_target, coinbase_value, \
                         coinbase2_suffix, log_head) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                         ON CONFLICT (instance, job_id) DO NOTHING",
                    )
                    .bind(i64::from(j.instance))
                    .bind(i64_of(j.job_id))
                    .bind(i64_of(j.created_ms))
                    .bind(i64_of(j.height))
                    .bind(j.prev_hash.as_slice())
                    .bind(i64::from(j.version))
                    .bind(i64::from(j.nbits))
                    .bind(i64::from(j.template_time))
                    .bind(j.coinbase1.as_slice())
                    .bind(j.coinbase2.as_slice())
                    .bind(j.branch.iter().flat_map(|h| h.0).collect::<Vec<u8>>())
                    .bind(j.network_target.to_be_bytes::<32>().to_vec())
                    .bind(i64_of(j.coinbase_value))
                    .bind(j.coinbase2_suffix.as_slice())
                    .bind(j.log_head.as_slice())
                    .execute(&mut *$tx)
                    .await?;
                }
                Control::Worker(w) => {
                    sqlx::query(
                        "INSERT INTO workers (miner, worker, first_seen, last_seen) VALUES ($1, $2, $3, $3) \
                         ON CONFLICT (miner, worker) DO UPDATE SET last_seen = excluded.last_seen",
                    )
                    .bind(w.miner.as_slice())
                    .bind(w.worker.as_str())
                    .bind(i64_of(w.time_ms))
                    .execute(&mut *$tx)
                    .await?;
                }
                Control::Block(b) => {
                    sqlx::query(
                        "INSERT INTO blocks (hash, height, coinbase_value, finder, worker, share_seq, instance, \
                         found_ms, status, confirmations, reject_reason, paid_epoch) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL) \
                         ON CONFLICT (hash) DO UPDATE SET status = excluded.status, \
                         confirmations = excluded.confirmations, reject_reason = excluded.reject_reason",
                    )
                    .bind(b.hash.as_slice())
                    .bind(i64_of(b.height))
                    .bind(i64_of(b.coinbase_value))
                    .bind(b.finder.as_slice())
                    .bind(b.worker.as_str())
                    .bind(i64_of(b.share_seq))
                    .bind(i64::from(b.instance))
                    .bind(i64_of(b.found_ms))
                    .bind(b.status.as_str())
                    .bind(i64_of(b.confirmations))
                    .bind(b.reject_reason.as_deref())
                    .execute(&mut *$tx)
                    .await?;
                }
                Control::LogPoint(instance, point) => {
                    sqlx::query(
                        "INSERT INTO share_log_heads (instance, seq, head) VALUES ($1, $2, $3) \
                         ON CONFLICT (instance, seq) DO NOTHING",
                    )
                    .bind(i64::from(*instance))
                    .bind(i64_of(point.seq))
                    .bind(point.head.as_slice())
                    .execute(&mut *$tx)
                    .await?;
                }
                Control::Flush(_) => {}
            }
        }
    };
}

/// Most rows in one share `INSERT` on SQLite ([`SQLITE_ROW_PARAMS`] a row:
/// 7680 parameters, well under the bundled SQLite's limit).
const SQLITE_CHUNK: usize = 512;

/// Parameters per row of a SQLite share `INSERT`: the share's index in the
/// batch and its 14 fields.
const SQLITE_ROW_PARAMS: usize = 15;

/// The row counts SQLite share statements are prepared for. A batch is
/// padded with all-`NULL` rows (skipped by the `INSERT`) up to the next of
/// these sizes, so a handful of statements, each prepared once, cover every
/// batch (8192 parameters take SQLite about a millisecond to prepare), at a
/// cost of at most a third more bound rows.
const SQLITE_SIZES: [usize; 18] = [
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512,
];

/// The smallest of [`SQLITE_SIZES`] that holds `rows` (1 to [`SQLITE_CHUNK`]).
fn padded(rows: usize) -> usize {
    SQLITE_SIZES
        .iter()
        .copied()
        .find(|&size| size >= rows)
        .unwrap_or(SQLITE_CHUNK)
}

/// What one SQLite statement does besides inserting shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The whole commit in one round trip to sqlx's SQLite thread: begin,
    /// insert, take the sequence numbers, commit.
    Whole,
    /// A full chunk of a batch too big for one statement.
    Chunk,
    /// The last rows of a batch, then the sequence numbers and the commit.
    Tail,
}

/// The epoch of a share timed `ms`, given the `pool_state` row `s`: the
/// epoch its time falls in ([`crate::EpochClock::epoch_of_ms`]), but never
/// one already closed. Integer arithmetic on non-negative values in both
/// backends; [`assign_epochs`] computes the same for the acknowledgements.
fn epoch_sql(max: &str, ms: &str) -> String {
    format!(
        "{max}({max}({ms} / 1000 - s.genesis_unix, 0) / {max}(s.epoch_secs, 1) + 1, s.closed_epoch + 1)"
    )
}

/// Advances the sequence counter by the batch size (bound twice) and returns
/// the batch's first number with the epoch clock.
const TAKE_SEQ: &str = "UPDATE pool_state SET next_seq = next_seq + ? WHERE id = 1 \
     RETURNING next_seq - ?, closed_epoch, genesis_unix, epoch_secs";

/// The SQLite statement for `part` with `rows` rows (one of [`SQLITE_SIZES`]),
/// built once. Each row binds its index in the batch and the share's 14
/// fields; its sequence number is `pool_state.next_seq` plus the index (the
/// counter moves in [`TAKE_SEQ`] after the last row is in, inside the same
/// `BEGIN IMMEDIATE` transaction), and its epoch comes from [`epoch_sql`].
fn sqlite_sql(part: Part, rows: usize) -> &'static str {
    type Built = [Vec<String>; 3];
    static SQL: std::sync::OnceLock<Built> = std::sync::OnceLock::new();
    let built = SQL.get_or_init(|| {
        let row = format!("({})", vec!["?"; SQLITE_ROW_PARAMS].join(", "));
        let insert = |rows: usize| {
            format!(
                "INSERT INTO shares (seq, epoch, time_ms, instance, job_id, miner, worker, \
                 extranonce1, extranonce2, ntime, nonce, version, hash, share_target, work, \
                 network_target) SELECT s.next_seq + v.column1, {}, v.column2, v.column3, \
                 v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, \
                 v.column11, v.column12, v.column13, v.column14, v.column15 \
                 FROM (VALUES {}) AS v, pool_state AS s \
                 WHERE s.id = 1 AND v.column1 IS NOT NULL",
                epoch_sql("max", "v.column2"),
                vec![row.as_str(); rows].join(", ")
            )
        };
        let each = |f: &dyn Fn(String) -> String| -> Vec<String> {
            SQLITE_SIZES.iter().map(|&rows| f(insert(rows))).collect()
        };
        [
            each(&|ins| format!("BEGIN IMMEDIATE; {ins}; {TAKE_SEQ}; COMMIT")),
            each(&|ins| ins),
            each(&|ins| format!("{ins}; {TAKE_SEQ}; COMMIT")),
        ]
    });
    let at = SQLITE_SIZES
        .iter()
        .position(|&size| size == rows)
        .unwrap_or(SQLITE_SIZES.len() - 1);
    &built[part as usize][at]
}

/// How a batch of `n` shares is cut into SQLite statements: all in one
/// [`Part::Whole`] when it fits and nothing else is written with it,
/// otherwise full [`Part::Chunk`]s and a [`Part::Tail`], after a separate
/// `BEGIN IMMEDIATE` and the control records (no statement at all for no
/// shares). Each item is the part, its first share and its padded row count.
fn sqlite_plan(n: usize, alone: bool) -> impl Iterator<Item = (Part, usize, usize)> {
    let chunks = n.saturating_sub(1) / SQLITE_CHUNK;
    let tail_at = chunks * SQLITE_CHUNK;
    let last = if alone && chunks == 0 {
        Part::Whole
    } else {
        Part::Tail
    };
    (0..chunks)
        .map(|c| (Part::Chunk, c * SQLITE_CHUNK, SQLITE_CHUNK))
        .chain((n > 0).then(|| (last, tail_at, padded(n - tail_at))))
}

/// Computes each share's sequence number and epoch from the batch's first
/// number and the epoch clock, as the `INSERT` did.
fn assign_epochs(
    first: i64,
    closed: i64,
    genesis: i64,
    secs: i64,
    batch: &[Pending],
) -> Vec<Committed> {
    let clock = crate::EpochClock {
        genesis_unix: crate::u64_of(genesis),
        epoch_secs: crate::u64_of(secs).max(1),
        closed_epoch: crate::u64_of(closed),
        next_seq: 0,
    };
    let first = crate::u64_of(first);
    batch
        .iter()
        .enumerate()
        .map(|(i, p)| Committed {
            seq: first + i as u64,
            epoch: clock
                .epoch_of_ms(p.share.time_ms)
                .max(clock.closed_epoch + 1),
        })
        .collect()
}

/// The row [`TAKE_SEQ`] returns: first sequence number, newest closed epoch,
/// genesis, epoch length.
type Taken = (i64, i64, i64, i64);

async fn write_batch(
    store: &Store,
    sqlite: &mut Option<PoolConnection<Sqlite>>,
    postgres: &mut Option<PgConnection>,
    records: &[Control],
    batch: &[Pending],
) -> Result<Vec<Committed>, StoreError> {
    match &store.db {
        Db::Sqlite(pool) => {
            let conn = match sqlite {
                Some(conn) => conn,
                None => sqlite.insert(pool.acquire().await?),
            };
            let written = write_sqlite(conn, records, batch).await;
            if written.is_err()
                && let Some(mut conn) = sqlite.take()
            {
                // A transaction may be left open; closing the connection
                // rolls it back. The next batch opens a fresh one.
                conn.close_on_drop();
            }
            written
        }
        Db::Postgres(pool) => {
            let conn = match postgres {
                Some(conn) => conn,
                None => postgres.insert(connect_postgres(pool).await?),
            };
            let written = write_postgres(conn, records, batch).await;
            if written.is_err() {
                // A transaction may be left open, or the socket broken;
                // dropping the connection ends both. The retry opens a new one.
                *postgres = None;
            }
            written
        }
    }
}

/// Opens the writer's own PostgreSQL connection with the pool's settings,
/// giving up after the pool's acquire timeout (an unreachable host would
/// otherwise hold the commit, and its retries, for as long as TCP tries).
async fn connect_postgres(pool: &sqlx::PgPool) -> Result<PgConnection, StoreError> {
    let limit = pool.options().get_acquire_timeout();
    match tokio::time::timeout(limit, pool.connect_options().connect()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Db(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to PostgreSQL took over {limit:?}"),
        )))),
    }
}

/// One SQLite commit on the writer's own connection. A batch of up to
/// [`SQLITE_CHUNK`] shares with no jobs, workers or blocks (nearly every
/// commit) is a single statement, so a single hand-off to sqlx's SQLite
/// thread and back, where there were five (begin, sequence, two inserts,
/// commit). Under load every hand-off waits for a CPU: at 50k shares/s this
/// took p99 from 5.8-6.8 ms to 4.1-5.5 ms.
async fn write_sqlite(
    conn: &mut SqliteConnection,
    records: &[Control],
    batch: &[Pending],
) -> Result<Vec<Committed>, StoreError> {
    let mut plan = sqlite_plan(batch.len(), records.is_empty()).peekable();
    // Unless the batch is one `Part::Whole` statement, the transaction is
    // opened on its own, with the records, and the last part commits it.
    if plan.peek().is_none_or(|&(part, _, _)| part != Part::Whole) {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        write_records!(conn, records);
        if batch.is_empty() {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            return Ok(Vec::new());
        }
    }
    let n = i64_of(batch.len() as u64);
    let mut taken: Option<Taken> = None;
    for (part, at, rows) in plan {
        let shares = &batch[at..batch.len().min(at + rows)];
        let mut q = sqlx::query(sqlite_sql(part, rows));
        for (i, p) in shares.iter().enumerate() {
            let s = &p.share;
            q = q
                .bind(i64_of((at + i) as u64))
                .bind(i64_of(s.time_ms))
                .bind(i64::from(s.instance))
                .bind(i64_of(s.job_id))
                .bind(s.miner.as_slice())
                .bind(s.worker.as_str())
                .bind(s.extranonce1.as_slice())
                .bind(s.extranonce2.as_slice())
                .bind(i64::from(s.ntime))
                .bind(i64::from(s.nonce))
                .bind(i64::from(s.version))
                .bind(s.hash.as_slice())
                .bind(s.share_target.to_be_bytes::<32>().to_vec())
                .bind(s.work.to_be_bytes::<32>().to_vec())
                .bind(s.network_target.to_be_bytes::<32>().to_vec());
        }
        for _ in shares.len()..rows {
            for _ in 0..SQLITE_ROW_PARAMS {
                q = q.bind(None::<i64>);
            }
        }
        if part == Part::Chunk {
            q.execute(&mut *conn).await?;
        } else {
            // Not `fetch_optional`: it stops reading after the row, and
            // the `COMMIT` after it would never run.
            let rows = q.bind(n).bind(n).fetch_all(&mut *conn).await?;
            taken = Some(row_taken(rows.first())?);
        }
    }
    let (first, closed, genesis, secs) = taken.ok_or(StoreError::NotInitialised)?;
    Ok(assign_epochs(first, closed, genesis, secs, batch))
}

fn row_taken(row: Option<&sqlx::sqlite::SqliteRow>) -> Result<Taken, StoreError> {
    use sqlx::Row;
    let row = row.ok_or(StoreError::NotInitialised)?;
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    ))
}

/// The PostgreSQL share insert: takes the sequence numbers and inserts the
/// batch in one statement (one round trip), each share's epoch from
/// [`epoch_sql`]. Returns [`Taken`] and the rows inserted.
fn pg_insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH s AS (UPDATE pool_state SET next_seq = next_seq + $15 WHERE id = 1 \
             RETURNING next_seq - $15 AS first, closed_epoch, genesis_unix, epoch_secs), \
             i AS (INSERT INTO shares (seq, epoch, time_ms, instance, job_id, miner, worker, \
             extranonce1, extranonce2, ntime, nonce, version, hash, share_target, work, network_target) \
             SELECT s.first + u.ord - 1, {}, u.time_ms, u.instance, u.job_id, u.miner, u.worker, \
             u.extranonce1, u.extranonce2, u.ntime, u.nonce, u.version, u.hash, u.share_target, \
             u.work, u.network_target \
             FROM s, UNNEST($1::int8[], $2::int8[], $3::int8[], $4::bytea[], $5::text[], \
             $6::bytea[], $7::bytea[], $8::int8[], $9::int8[], $10::int8[], $11::bytea[], \
             $12::bytea[], $13::bytea[], $14::bytea[]) WITH ORDINALITY \
             AS u(time_ms, instance, job_id, miner, worker, extranonce1, extranonce2, ntime, \
             nonce, version, hash, share_target, work, network_target, ord) RETURNING 1) \
             SELECT first, closed_epoch, genesis_unix, epoch_secs, (SELECT count(*) FROM i) FROM s",
            epoch_sql("GREATEST", "u.time_ms")
        )
    })
}

/// The most shares one PostgreSQL statement inserts; a bigger batch is cut
/// into statements of this many in one transaction.
///
/// Big statements cost more per share than small ones: a batch's bound
/// arrays, its argument buffer and the server's working memory are fresh
/// memory each time, and first touch of memory is slow on the development
/// VM (perf: page clearing was a third of all CPU time while a commit was
/// slow). After any stall the queued shares made a bigger batch, whose
/// commit took longer still, up to batches of 4,096 taking 100-250 ms. At 50k
/// shares/s (`proofpool-load --phases rate --postgres`) the p99 submit
/// latency was 100-450 ms with one statement per batch on the shared
/// runtime, and 76-148 ms with these chunks and the writer on its own
/// thread; capping whole batches at 256 gave 7.5-22 ms but held the peak to
/// 79k shares/s, where chunks keep one WAL flush per batch.
const PG_CHUNK: usize = 256;

/// One PostgreSQL commit. A batch of up to [`PG_CHUNK`] shares with no jobs,
/// workers or blocks to write first (nearly every commit under load) is the
/// single share statement in autocommit: one round trip and the WAL flush,
/// where begin, sequence, insert and commit were four. Anything else is one
/// transaction: the records, then the shares in chunks of [`PG_CHUNK`].
async fn write_postgres(
    conn: &mut PgConnection,
    records: &[Control],
    batch: &[Pending],
) -> Result<Vec<Committed>, StoreError> {
    if records.is_empty() && batch.len() <= PG_CHUNK {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        return insert_postgres(conn, batch).await;
    }
    let mut tx = conn.begin().await?;
    write_records!(tx, records);
    let mut committed = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(PG_CHUNK) {
        committed.extend(insert_postgres(&mut tx, chunk).await?);
    }
    tx.commit().await?;
    Ok(committed)
}

async fn insert_postgres(
    conn: &mut sqlx::PgConnection,
    batch: &[Pending],
) -> Result<Vec<Committed>, StoreError> {
    let n = i64_of(batch.len() as u64);
    let c = PgColumns::new(batch);
    let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(pg_insert_sql())
        .bind(c.time_ms)
        .bind(c.instance)
        .bind(c.job_id)
        .bind(c.miner)
        .bind(c.worker)
        .bind(c.extranonce1)
        .bind(c.extranonce2)
        .bind(c.ntime)
        .bind(c.nonce)
        .bind(c.version)
        .bind(c.hash)
        .bind(c.share_target)
        .bind(c.work)
        .bind(c.network_target)
        .bind(n)
        .fetch_optional(&mut *conn)
        .await?;
    let (first, closed, genesis, secs, inserted) = row.ok_or(StoreError::NotInitialised)?;
    if inserted != n {
        return Err(StoreError::Corrupt {
            table: "shares",
            reason: format!("{inserted} of a batch of {n} shares inserted"),
        });
    }
    Ok(assign_epochs(first, closed, genesis, secs, batch))
}

/// The batch as one array per column, for PostgreSQL's `UNNEST`.
struct PgColumns {
    time_ms: Vec<i64>,
    instance: Vec<i64>,
    job_id: Vec<i64>,
    miner: Vec<Vec<u8>>,
    worker: Vec<String>,
    extranonce1: Vec<Vec<u8>>,
    extranonce2: Vec<Vec<u8>>,
    ntime: Vec<i64>,
    nonce: Vec<i64>,
    version: Vec<i64>,
    hash: Vec<Vec<u8>>,
    share_target: Vec<Vec<u8>>,
    work: Vec<Vec<u8>>,
    network_target: Vec<Vec<u8>>,
}

impl PgColumns {
    fn new(batch: &[Pending]) -> Self {
        let n = batch.len();
        let mut c = Self {
            time_ms: Vec::with_capacity(n),
            instance: Vec::with_capacity(n),
            job_id: Vec::with_capacity(n),
            miner: Vec::with_capacity(n),
            worker: Vec::with_capacity(n),
            extranonce1: Vec::with_capacity(n),
            extranonce2: Vec::with_capacity(n),
            ntime: Vec::with_capacity(n),
            nonce: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
            share_target: Vec::with_capacity(n),
            work: Vec::with_capacity(n),
            network_target: Vec::with_capacity(n),
        };
        for p in batch {
            let s = &p.share;
            c.time_ms.push(i64_of(s.time_ms));
            c.instance.push(i64::from(s.instance));
            c.job_id.push(i64_of(s.job_id));
            c.miner.push(s.miner.to_vec());
            c.worker.push(s.worker.clone());
            c.extranonce1.push(s.extranonce1.to_vec());
            c.extranonce2.push(s.extranonce2.clone());
            c.ntime.push(i64::from(s.ntime));
            c.nonce.push(i64::from(s.nonce));
            c.version.push(i64::from(s.version));
            c.hash.push(s.hash.to_vec());
            c.share_target
                .push(s.share_target.to_be_bytes::<32>().to_vec());
            c.work.push(s.work.to_be_bytes::<32>().to_vec());
            c.network_target
                .push(s.network_target.to_be_bytes::<32>().to_vec());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Part, SQLITE_CHUNK, SQLITE_ROW_PARAMS, SQLITE_SIZES, padded, sqlite_plan, sqlite_sql,
    };

    #[test]
    fn batches_are_cut_into_a_few_prepared_statement_sizes() {
        for n in (1..=1100).chain([4096, 4097, 50_000]) {
            for alone in [true, false] {
                let plan: Vec<_> = sqlite_plan(n, alone).collect();
                // Every share is covered once, in order, by whole chunks and
                // one padded tail.
                let mut next = 0;
                for (i, &(part, at, rows)) in plan.iter().enumerate() {
                    assert_eq!(at, next, "{n}: {plan:?}");
                    assert!(SQLITE_SIZES.contains(&rows));
                    let last = i + 1 == plan.len();
                    let expected = match (last, alone && plan.len() == 1) {
                        (false, _) => Part::Chunk,
                        (true, true) => Part::Whole,
                        (true, false) => Part::Tail,
                    };
                    assert_eq!(part, expected, "{n}: {plan:?}");
                    let real = rows.min(n - at);
                    assert!(real * 3 >= rows * 2, "{n}: padding {plan:?}");
                    next = at + real;
                }
                assert_eq!(next, n);
                assert_eq!(plan.len(), n.div_ceil(SQLITE_CHUNK));
            }
        }
        assert_eq!(sqlite_plan(0, true).count(), 0, "no shares, no statement");
        assert_eq!(padded(85), 96);
        assert_eq!(padded(97), 128);
        assert_eq!(padded(SQLITE_CHUNK), SQLITE_CHUNK);
        assert_eq!(SQLITE_SIZES.last(), Some(&SQLITE_CHUNK));
        for rows in SQLITE_SIZES {
            let whole = sqlite_sql(Part::Whole, rows);
            assert_eq!(whole.matches('?').count(), SQLITE_ROW_PARAMS * rows + 2);
            assert!(whole.starts_with("BEGIN IMMEDIATE;") && whole.ends_with("; COMMIT"));
            assert_eq!(
                sqlite_sql(Part::Chunk, rows).matches('?').count(),
                SQLITE_ROW_PARAMS * rows
            );
            assert!(sqlite_sql(Part::Tail, rows).ends_with("; COMMIT"));
        }
    }
}
