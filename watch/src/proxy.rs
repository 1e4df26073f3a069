//! The Stratum V1 proxy: every miner connection gets its own connection to
//! the pool, every line is forwarded unchanged, and every share the pool
//! answers `true` is recorded with the job it was mined on.

use crate::WatchError;
use crate::evidence::{ShareEvidence, ShareParts};
use crate::log::WatchLog;
use crate::status::Stats;
use proofpool_stratum::miner::{
    NotifyOwned, ServerMessage, SubscribeReply, configured_version_mask, parse_server_line,
};
use proofpool_stratum::{ClientMethod, Id, Message, parse_line};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest line forwarded either way; a longer one ends the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// Jobs remembered per connection (the pool keeps 64).
const MAX_JOBS: usize = 128;

/// A request of the miner's whose reply matters.
#[derive(Debug, Clone)]
enum Asked {
    Subscribe,
    Configure,
    /// A `mining.submit`, kept as parsed.
    Submit(ClientMethod),
}

/// What one connection has been told.
#[derive(Debug, Default)]
struct Connection {
    extranonce1: Vec<u8>,
    version_mask: u32,
    jobs: HashMap<String, (u64, NotifyOwned)>,
    job_seq: u64,
    asked: HashMap<Id, Asked>,
}

impl Connection {
    fn remember_job(&mut self, job: NotifyOwned) {
        if job.clean_jobs {
            self.jobs.clear();
        }
        self.job_seq += 1;
        self.jobs.insert(job.job_id.clone(), (self.job_seq, job));
        if self.jobs.len() > MAX_JOBS
            && let Some(oldest) = self
                .jobs
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(id, _)| id.clone())
        {
            self.jobs.remove(&oldest);
        }
    }

    /// The share a `true` answered, as evidence, if its job is known.
    fn share(&self, asked: &Asked) -> Option<(String, ShareEvidence)> {
        let Asked::Submit(ClientMethod::Submit {
            worker,
            job_id,
            extranonce2,
            ntime,
            nonce,
            version_bits,
        }) = asked
        else {
            return None;
        };
        let (_, job) = self.jobs.get(job_id)?;
        let version = match version_bits {
            Some(bits) => (job.version & !self.version_mask) | (bits & self.version_mask),
            None => job.version,
        };
        let parts =
            ShareParts::of_job(job, &self.extranonce1, extranonce2, version, *ntime, *nonce);
        Some((worker.clone(), ShareEvidence::new(parts)))
    }
}

/// Accepts miners on `listener` and proxies each to `pool` until
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    pool: String,
    log: WatchLog,
    stats: Arc<Stats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), WatchError> {
    tokio::pin!(shutdown);
    loop {
        let (miner, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let pool = pool.clone();
        let log = log.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            stats.connections.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = proxy(miner, peer, &pool, log, &stats).await {
                tracing::info!(%peer, error = %e, "miner connection ended");
            }
            stats.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn proxy(
    miner: TcpStream,
    peer: SocketAddr,
    pool: &str,
    log: WatchLog,
    stats: &Stats,
) -> Result<(), WatchError> {
    let upstream = TcpStream::connect(pool).await?;
    tracing::info!(%peer, pool, "miner connected; proxying");
    let (miner_read, miner_write) = miner.into_split();
    let (pool_read, pool_write) = upstream.into_split();
    let state = Arc::new(Mutex::new(Connection::default()));
    let pool_side = from_pool(pool_read, miner_write, state.clone(), log, stats);
    tokio::pin!(pool_side);
    tokio::select! {
        r = &mut pool_side => return r,
        r = from_miner(miner_read, pool_write, state) => r?,
    }
    // The miner left (its half of the pool connection is closed now): the
    // pool may still answer its last submits, and a share it accepted is
    // recorded even if the miner never hears of it.
    match tokio::time::timeout(DRAIN, pool_side).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// How long the pool's last answers are waited for once the miner left.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads one line (newline included) into `buf`; `false` at the end.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Result<bool, WatchError> {
    buf.clear();
    let mut limited = (&mut *reader).take(MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', buf).await?;
    if n > MAX_LINE {
        return Err(WatchError::LineTooLong);
    }
    Ok(n > 0)
}

async fn from_miner(
    read: impl AsyncRead + Unpin,
    mut write: impl AsyncWrite + Unpin,
    state: Arc<Mutex<Connection>>,
) -> Result<(), WatchError> {
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    while read_line(&mut reader, &mut line).await? {
        if let Ok(Message::Request { id, method }) = parse_line(&line) {
            let asked = match method {
                ClientMethod::Subscribe { .. } => Some(Asked::Subscribe),
                ClientMethod::Configure { .. } => Some(Asked::Configure),
                submit @ ClientMethod::Submit { .. } => Some(Asked::Submit(submit)),
                _ => None,
            };
            if let Some(asked) = asked {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                // A miner that never reads its replies cannot grow this
                // without bound: the oldest unanswered request goes.
                if state.asked.len() >= 4096 {
                    state.asked.clear();
                }
                state.asked.insert(id, asked);
            }
        }
        write.write_all(&line).await?;
    }
    Ok(())
}

async fn from_pool(
    read: impl AsyncRead + Unpin,
    mut write: impl AsyncWrite + Unpin,
    state: Arc<Mutex<Connection>>,
    log: WatchLog,
    stats: &Stats,
) -> Result<(), WatchError> {
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    while read_line(&mut reader, &mut line).await? {
        let accepted = match parse_server_line(&line) {
            Ok(message) => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                match message {
                    ServerMessage::Reply { id, result, error } => match state.asked.remove(&id) {
                        Some(Asked::Subscribe) => {
                            if let Some(reply) = SubscribeReply::from_result(&result) {
                                state.extranonce1 = reply.extranonce1;
                            }
                            None
                        }
                        Some(Asked::Configure) => {
                            if let Some(mask) = configured_version_mask(&result) {
                                state.version_mask = mask;
                            }
                            None
                        }
                        Some(asked) if error.is_none() && result == true => state.share(&asked),
                        _ => None,
                    },
                    ServerMessage::Notify(job) => {
                        state.remember_job(job);
                        None
                    }
                    ServerMessage::SetVersionMask(mask) => {
                        state.version_mask = mask;
                        None
                    }
                    ServerMessage::SetExtranonce { extranonce1, .. } => {
                        state.extranonce1 = extranonce1;
                        None
                    }
                    _ => None,
                }
            }
            Err(_) => None,
        };
        if let Some((worker, evidence)) = accepted {
            let hash = log.record_accepted(&worker, &evidence).await?;
            tracing::debug!(%hash, %worker, "share accepted; recorded");
            stats.recorded.fetch_add(1, Ordering::Relaxed);
        }
        // Recorded before the miner hears of it: a `true` the miner saw is
        // always in the log.
        write.write_all(&line).await?;
    }
    Ok(())
}
