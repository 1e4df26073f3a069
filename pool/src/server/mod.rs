//! The Stratum V1 server, shaped like mini-redis: [`Pool::run`] takes a bound
//! listener and a shutdown future; each connection is a task driving a
//! [`session::Session`]; a connection semaphore caps their number.

mod blocks;
mod lines;
mod session;

pub use blocks::FoundBlock;

use crate::config::PoolConfig;
use crate::job::JobConfig;
use crate::node::{NodeClient, NodeError};
use crate::work::WorkSource;
use proofpool_primitives::{Address, B256, U256, Work};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};

/// A share the pool accepted (kept in memory until the durable share log lands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedShare {
    /// Per-pool sequence number, gapless from 1.
    pub seq: u64,
    /// Unix time of acceptance.
    pub time: u64,
    /// The account credited.
    pub miner: Address,
    /// The rig.
    pub worker: String,
    /// The global job id.
    pub job_id: u64,
    /// The connection's extranonce1.
    pub extranonce1: [u8; 4],
    /// The miner's extranonce2.
    pub extranonce2: Vec<u8>,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Header version after rolling.
    pub version: u32,
    /// sha256d of the header, internal byte order.
    pub hash: B256,
    /// The target the share was credited at.
    pub share_target: U256,
    /// Work credited: `floor(2^256 / (share_target + 1))`.
    pub work: Work,
    /// The job's network target.
    pub network_target: U256,
}

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The configuration is unusable.
    #[error("bad pool configuration: {0}")]
    Config(String),
    /// bitcoind failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Accepting connections failed.
    #[error("listener failed: {0}")]
    Io(#[from] std::io::Error),
}

/// State shared by all sessions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: PoolConfig,
    pub(crate) node: Arc<NodeClient>,
    pub(crate) work: Arc<WorkSource>,
    extranonces: Mutex<Extranonces>,
    shares: Mutex<Vec<AcceptedShare>>,
    next_seq: AtomicU64,
    pub(crate) blocks: Mutex<Vec<FoundBlock>>,
    /// Sent to every session on shutdown.
    pub(crate) stop: broadcast::Sender<()>,
}

#[derive(Debug, Default)]
struct Extranonces {
    in_use: HashSet<u32>,
    next: u32,
}

impl Shared {
    /// A fresh extranonce1 (instance id, then a 24-bit counter), or the one the
    /// miner asks to resume if it is ours and free.
    pub(crate) fn lease_extranonce1(&self, resume: Option<&[u8]>) -> Option<[u8; 4]> {
        let mut en = self.extranonces.lock().unwrap_or_else(|p| p.into_inner());
        let id = u32::from(self.config.instance_id) << 24;
        if let Some(r) = resume.and_then(|r| <[u8; 4]>::try_from(r).ok()) {
            let v = u32::from_be_bytes(r);
            if v & 0xff00_0000 == id && en.in_use.insert(v) {
                return Some(r);
            }
        }
        for _ in 0..=0x00ff_ffff {
            let v = id | (en.next & 0x00ff_ffff);
            en.next = en.next.wrapping_add(1);
            if en.in_use.insert(v) {
                return Some(v.to_be_bytes());
            }
        }
        None
    }

    pub(crate) fn release_extranonce1(&self, en1: [u8; 4]) {
        let mut en = self.extranonces.lock().unwrap_or_else(|p| p.into_inner());
        en.in_use.remove(&u32::from_be_bytes(en1));
    }

    pub(crate) fn record_share(&self, mut share: AcceptedShare) -> u64 {
        let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        share.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let seq = share.seq;
        shares.push(share);
        seq
    }
}

/// A running Stratum V1 pool.
#[derive(Debug, Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Connects to bitcoind, fetches the first template and prepares to serve.
    pub async fn new(config: PoolConfig) -> Result<Self, PoolError> {
        if config.extranonce2_len == 0 || config.extranonce2_len > 8 {
            return Err(PoolError::Config(format!(
                "extranonce2_len must be 1..=8, got {}",
                config.extranonce2_len
            )));
        }
        let node = Arc::new(NodeClient::new(
            config.nodes.clone(),
            Duration::from_secs(30),
        )?);
        let job_config = JobConfig {
            payout_script: config.payout_script.clone(),
            pool_tag: config.pool_tag.clone(),
            extranonce1_len: 4,
            extranonce2_len: config.extranonce2_len,
        };
        let work = Arc::new(WorkSource::new(
            node.clone(),
            job_config,
            config.template_refresh,
            config.longpoll_timeout,
        ));
        let (stop, _) = broadcast::channel(1);
        let shared = Arc::new(Shared {
            config,
            node,
            work,
            extranonces: Mutex::new(Extranonces::default()),
            shares: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(1),
            blocks: Mutex::new(Vec::new()),
            stop,
        });
        Ok(Self { shared })
    }

    /// Every share accepted so far, in sequence order.
    pub fn shares(&self) -> Vec<AcceptedShare> {
        self.shared
            .shares
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every block found so far.
    pub fn blocks(&self) -> Vec<FoundBlock> {
        self.shared
            .blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serves miners on `listener` until `shutdown` resolves, then tells every
    /// session to stop and waits for them.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), PoolError> {
        tokio::pin!(shutdown);
        let shared = self.shared.clone();
        // The first job, retrying while the node is away.
        let work = shared.work.clone();
        let (work_stop_tx, mut work_stop_rx) = tokio::sync::watch::channel(false);
        let work_task = tokio::spawn(async move {
            work.run(async move {
                // Resolves when the pool stops (or its sender is dropped).
                while !*work_stop_rx.borrow_and_update() {
                    if work_stop_rx.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        });
        let limit = Arc::new(Semaphore::new(shared.config.max_connections));
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (socket, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: log, back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            let shared = shared.clone();
            sessions.spawn(async move {
                session::serve(shared, socket, peer).await;
                drop(permit);
            });
            // Reap finished sessions so the set does not grow without bound.
            while sessions.try_join_next().is_some() {}
        }
        tracing::info!(sessions = sessions.len(), "shutting down: closing sessions");
        if shared.stop.send(()).is_err() {
            tracing::debug!("no session was running");
        }
        while sessions.join_next().await.is_some() {}
        if work_stop_tx.send(true).is_err() {
            tracing::debug!("work source already stopped");
        }
        if let Err(e) = work_task.await {
            tracing::warn!(error = %e, "work source task failed");
        }
        Ok(())
    }
}
