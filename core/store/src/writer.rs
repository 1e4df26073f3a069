//! The group-commit share writer.
//!
//! Sessions hand accepted shares to [`ShareLog::submit`], which never blocks:
//! it queues the share (bounded) and returns a receiver for its
//! acknowledgement. One writer task drains the queue into batches (up to
//! `max_batch` shares or `max_delay` after the first; by default it does not
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

use crate::model::{BlockRecord, Committed, JobRecord, NewShare, WorkerSeen};
use crate::{Db, Store, StoreError, i64_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            max_delay: Duration::ZERO,
            queue_capacity: 65_536,
            give_up_after: Duration::from_secs(10),
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

type Ack = oneshot::Sender<Result<Committed, WriteError>>;

#[derive(Debug)]
struct Pending {
    share: NewShare,
    ack: Ack,
}

#[derive(Debug)]
enum Control {
    Job(Box<JobRecord>),
    Worker(WorkerSeen),
    Block(Box<BlockRecord>),
    Flush(oneshot::Sender<()>),
}

/// The handle sessions use to record shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShareLog {
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
            carry: Vec::new(),
            flushes: Vec::new(),
        };
        let task = match writer.store.db {
            // On SQLite the writer gets a thread and a runtime of its own:
            // each commit is several hand-offs to sqlx's database thread, and
            // on the shared runtime every one of them waited behind the
            // sessions' tasks for a worker (about 40% of each commit cycle
            // under load). sqlx's SQLite connections are threads, so they do
            // not care which runtime drives them. PostgreSQL connections are
            // sockets registered with the runtime that opened them, so that
            // writer stays on the shared runtime.
            Db::Sqlite(_) => tokio::task::spawn_blocking(move || {
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
            }),
            Db::Postgres(_) => tokio::spawn(writer.run()),
        };
        (
            Self {
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
        match self.shares.try_send(Pending { share, ack }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.shares_refused.fetch_add(1, Ordering::Relaxed);
                Err(SubmitError::Overloaded {
                    capacity: self.capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SubmitError::Closed),
        }
    }

    /// Records a job; it is written no later than any share that names it.
    pub fn record_job(&self, job: JobRecord) {
        self.control_op(Control::Job(Box::new(job)));
    }

    /// Records that a worker authorized.
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
    /// Control records from a batch that failed, written with the next one.
    carry: Vec<Control>,
    flushes: Vec<oneshot::Sender<()>>,
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
                if batch.is_empty() || !self.flushes.is_empty() {
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
            for op in ops.drain(..) {
                match op {
                    Control::Flush(tx) => self.flushes.push(tx),
                    other => records.push(other),
                }
            }
            if !records.is_empty() || !batch.is_empty() {
                self.commit(records, &mut batch).await;
            }
            if !self.flushes.is_empty() && self.shares.is_empty() {
                for tx in self.flushes.drain(..) {
                    // The waiter may have given up; nothing to do then.
                    let _ = tx.send(());
                }
            }
        }
        for tx in self.flushes.drain(..) {
            let _ = tx.send(());
        }
        tracing::info!(
            shares = self.stats.shares_committed.load(Ordering::Relaxed),
            "share writer stopped"
        );
    }

    async fn commit(&mut self, records: Vec<Control>, batch: &mut Vec<Pending>) {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(10);
        loop {
            let attempt = Instant::now();
            match write_batch(&self.store, &records, batch).await {
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
                    for (p, committed) in batch.drain(..).zip(first) {
                        // A miner that disconnected no longer waits; its
                        // share is durable all the same.
                        let _ = p.ack.send(Ok(committed));
                    }
                    self.committed.notify_one();
                    return;
                }
                Err(e) => {
                    self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    if started.elapsed() >= self.config.give_up_after {
                        tracing::error!(error = %e, shares = batch.len(), "share store unavailable; answering the batch with an error");
                        let err = WriteError(e.to_string());
                        self.stats
                            .shares_failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        for p in batch.drain(..) {
                            let _ = p.ack.send(Err(err.clone()));
                        }
                        // Jobs must still reach the store before shares that name them.
                        self.carry = records;
                        return;
                    }
                    tracing::warn!(error = %e, shares = batch.len(), retry_in = ?backoff, "share batch commit failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

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
                         template_time, coinbase1, coinbase2, branch, network_target, coinbase_value) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
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
                Control::Flush(_) => {}
            }
        }
    };
}

/// Rows per multi-row `INSERT` on SQLite (16 columns: 8192 parameters, well
/// under the bundled SQLite's limit). Each statement is one round trip to
/// sqlx's SQLite worker thread, so bigger chunks mean fewer hand-offs.
const SQLITE_CHUNK: usize = 512;

const SHARE_COLUMNS: &str = "INSERT INTO shares (seq, epoch, time_ms, instance, job_id, miner, worker, \
     extranonce1, extranonce2, ntime, nonce, version, hash, share_target, work, network_target) ";

/// Batches smaller than this are written as one statement of exactly their
/// size; bigger ones in power-of-two chunks, then one exact remainder. At
/// 50k shares/s a commit holds about a hundred shares, and every statement
/// is a hand-off to sqlx's SQLite thread: 100 rows took five statements as
/// powers of two, and take two this way.
const SQLITE_EXACT: usize = 64;

/// The share `INSERT` for `rows` rows (1 to [`SQLITE_EXACT`], or a power of
/// two up to [`SQLITE_CHUNK`]), built once. A batch is cut into chunks of
/// these sizes only (fewer than sqlx's statement cache holds), so every
/// statement the writer runs is prepared once: a statement of any other size
/// would be parsed and prepared anew (8192 parameters take SQLite about a
/// millisecond to prepare).
fn share_insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        let row = format!("({})", vec!["?"; 16].join(", "));
        (0..=SQLITE_CHUNK)
            .map(|n| {
                if n == 0 || !(n <= SQLITE_EXACT || n.is_power_of_two()) {
                    String::new()
                } else {
                    format!("{SHARE_COLUMNS}VALUES {}", vec![row.as_str(); n].join(", "))
                }
            })
            .collect()
    });
    &all[rows]
}

/// Chunk sizes covering `n` rows: whole [`SQLITE_CHUNK`]s, then the binary
/// digits of the rest that are at least [`SQLITE_EXACT`], largest first, then
/// what is left in one statement.
fn chunk_sizes(n: usize) -> impl Iterator<Item = usize> {
    let full = n / SQLITE_CHUNK;
    let rest = n % SQLITE_CHUNK;
    let tail = rest % SQLITE_EXACT;
    std::iter::repeat_n(SQLITE_CHUNK, full)
        .chain(
            (SQLITE_EXACT.trailing_zeros()..SQLITE_CHUNK.trailing_zeros())
                .rev()
                .map(|bits| 1usize << bits)
                .filter(move |size| rest & size != 0),
        )
        .chain((tail > 0).then_some(tail))
}

/// Takes `n` sequence numbers from the `pool_state` row (locking it until
/// the transaction ends) and assigns each share its epoch: the one its
/// acceptance time falls in, but never one already closed for settlement.
macro_rules! assign {
    ($tx:expr, $n:expr, $batch:expr) => {{
        let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
            "UPDATE pool_state SET next_seq = next_seq + $1 WHERE id = 1 \
             RETURNING next_seq - $1, closed_epoch, genesis_unix, epoch_secs",
        )
        .bind($n)
        .fetch_optional(&mut *$tx)
        .await?;
        let (first, closed, genesis, secs) = row.ok_or(StoreError::NotInitialised)?;
        assign_epochs(first, closed, genesis, secs, $batch)
    }};
}

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

async fn write_batch(
    store: &Store,
    records: &[Control],
    batch: &[Pending],
) -> Result<Vec<Committed>, StoreError> {
    let n = i64_of(batch.len() as u64);
    let committed = match &store.db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            write_records!(tx, records);
            let committed = if batch.is_empty() {
                Vec::new()
            } else {
                let committed = assign!(tx, n, batch);
                let mut at = 0;
                for size in chunk_sizes(batch.len()) {
                    let rows = batch[at..at + size].iter().zip(&committed[at..at + size]);
                    at += size;
                    let mut q = sqlx::query(share_insert_sql(size));
                    for (p, c) in rows {
                        let s = &p.share;
                        q = q
                            .bind(i64_of(c.seq))
                            .bind(i64_of(c.epoch))
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
                    q.execute(&mut *tx).await?;
                }
                committed
            };
            tx.commit().await?;
            committed
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            write_records!(tx, records);
            let committed = if batch.is_empty() {
                Vec::new()
            } else {
                let committed = assign!(tx, n, batch);
                let cols = PgColumns::new(batch, &committed);
                sqlx::query(
                    "INSERT INTO shares (seq, epoch, time_ms, instance, job_id, miner, worker, \
                     extranonce1, extranonce2, ntime, nonce, version, hash, share_target, work, network_target) \
                     SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
                     $6::bytea[], $7::text[], $8::bytea[], $9::bytea[], $10::int8[], $11::int8[], \
                     $12::int8[], $13::bytea[], $14::bytea[], $15::bytea[], $16::bytea[])",
                )
                .bind(cols.seq)
                .bind(cols.epoch)
                .bind(cols.time_ms)
                .bind(cols.instance)
                .bind(cols.job_id)
                .bind(cols.miner)
                .bind(cols.worker)
                .bind(cols.extranonce1)
                .bind(cols.extranonce2)
                .bind(cols.ntime)
                .bind(cols.nonce)
                .bind(cols.version)
                .bind(cols.hash)
                .bind(cols.share_target)
                .bind(cols.work)
                .bind(cols.network_target)
                .execute(&mut *tx)
                .await?;
                committed
            };
            tx.commit().await?;
            committed
        }
    };
    Ok(committed)
}

/// The batch as one array per column, for PostgreSQL's `UNNEST`.
struct PgColumns {
    seq: Vec<i64>,
    epoch: Vec<i64>,
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
    fn new(batch: &[Pending], committed: &[Committed]) -> Self {
        let n = batch.len();
        let mut c = Self {
            seq: Vec::with_capacity(n),
            epoch: Vec::with_capacity(n),
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
        for (p, k) in batch.iter().zip(committed) {
            let s = &p.share;
            c.seq.push(i64_of(k.seq));
            c.epoch.push(i64_of(k.epoch));
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
    use super::{SQLITE_CHUNK, SQLITE_EXACT, chunk_sizes, share_insert_sql};

    #[test]
    fn batches_are_cut_into_a_few_cached_statement_sizes() {
        let cached = |s: usize| s <= SQLITE_EXACT || (s.is_power_of_two() && s <= SQLITE_CHUNK);
        for n in (0..=1100).chain([4096, 4097, 50_000]) {
            let sizes: Vec<usize> = chunk_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(sizes.iter().all(|&s| s > 0 && cached(s)), "{n}: {sizes:?}");
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first");
            // Whole chunks, at most one of each power of two from SQLITE_EXACT
            // up, and one remainder.
            let most = (SQLITE_CHUNK / SQLITE_EXACT).trailing_zeros() as usize + 1;
            assert!(sizes.len() <= n / SQLITE_CHUNK + most, "{n}: {sizes:?}");
        }
        assert_eq!(chunk_sizes(107).collect::<Vec<_>>(), [64, 43]);
        assert_eq!(chunk_sizes(63).collect::<Vec<_>>(), [63]);
        assert_eq!(chunk_sizes(1100).collect::<Vec<_>>(), [512, 512, 64, 12]);
        let statements = (1..=SQLITE_CHUNK).filter(|&n| cached(n)).count();
        assert!(
            statements < 100,
            "{statements} statements must fit sqlx's cache"
        );
        for rows in (1..=SQLITE_CHUNK).filter(|&n| cached(n)) {
            let sql = share_insert_sql(rows);
            assert_eq!(sql.matches('?').count(), 16 * rows);
            assert_eq!(sql.matches("), (").count(), rows - 1);
        }
    }
}
