//! Keeps the current job fresh: long-polls bitcoind for new blocks, refreshes
//! the template periodically for fees, and publishes every new job on a
//! `watch` channel, which the fan-out follows (see `server::fanout`). A
//! template that asks for the same block as the last one, apart from its
//! time, is not a new job: the job's `ntime` stays the first template's
//! `curtime`, which remains valid (miners may roll it forward).
//!
//! The coinbase settings ([`JobConfig`]) can change while the pool runs
//! ([`WorkSource::reconfigure`]): the last template is rebuilt at once with
//! the new settings, so miners get the new coinbase without waiting for the
//! node, and no job built with the old settings is published after it.

use crate::job::{Job, JobConfig};
use crate::template::BlockTemplate;
use proofpool_node::{NodeClient, NodeError};
use proofpool_store::{JobRecord, ShareLog};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Follows the latest job.
pub type JobReceiver = watch::Receiver<Option<Arc<Job>>>;

/// What a job is built from.
#[derive(Debug)]
struct Building {
    config: JobConfig,
    template: Option<Arc<BlockTemplate>>,
}

/// Fetches templates and turns them into jobs.
#[derive(Debug)]
pub struct WorkSource {
    node: Arc<NodeClient>,
    /// The coinbase settings and the last template, locked while a job is
    /// built and published so that jobs go out in id order, each with the
    /// settings current when it was built.
    building: Mutex<Building>,
    tx: watch::Sender<Option<Arc<Job>>>,
    next_id: AtomicU64,
    refresh: Notify,
    node_up: AtomicBool,
    /// Woken each time bitcoind answers again after failing.
    node_back: Notify,
    refresh_every: Duration,
    longpoll_timeout: Duration,
    /// Where every job is recorded before miners see it.
    log: Option<(ShareLog, u8)>,
    /// When bitcoind last gave the current work: a new job, or a template
    /// identical to the current one.
    confirmed: Mutex<Option<std::time::Instant>>,
}

impl WorkSource {
    /// A source with no job yet.
    pub fn new(
        node: Arc<NodeClient>,
        config: JobConfig,
        refresh_every: Duration,
        longpoll_timeout: Duration,
    ) -> Self {
        let (tx, _) = watch::channel(None);
        Self {
            node,
            building: Mutex::new(Building {
                config,
                template: None,
            }),
            tx,
            next_id: AtomicU64::new(1),
            refresh: Notify::new(),
            node_up: AtomicBool::new(false),
            node_back: Notify::new(),
            refresh_every,
            longpoll_timeout,
            log: None,
            confirmed: Mutex::new(None),
        }
    }

    /// Records every job in the share log (as `instance`) before publishing
    /// it, numbering jobs after `last_job_id` so a restart never reuses one.
    pub fn with_log(mut self, log: ShareLog, instance: u8, last_job_id: u64) -> Self {
        self.next_id = AtomicU64::new(last_job_id.saturating_add(1));
        self.log = Some((log, instance));
        self
    }

    /// Follows the current job.
    pub fn subscribe(&self) -> JobReceiver {
        self.tx.subscribe()
    }

    /// The current job, if any.
    pub fn current(&self) -> Option<Arc<Job>> {
        self.tx.borrow().clone()
    }

    /// When bitcoind last confirmed the current work (a new job, or a
    /// template identical to the current one); `None` before the first.
    pub fn confirmed_at(&self) -> Option<std::time::Instant> {
        *self.confirmed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn confirm(&self) {
        *self.confirmed.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// Whether `job` is still the current job.
    pub fn is_current(&self, job: &Arc<Job>) -> bool {
        self.tx
            .borrow()
            .as_ref()
            .is_some_and(|j| Arc::ptr_eq(j, job))
    }

    /// Asks for a fresh template now (after a block was found).
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Whether the last call to bitcoind succeeded.
    pub fn node_up(&self) -> bool {
        self.node_up.load(Ordering::Relaxed)
    }

    /// Resolves the next time bitcoind serves a template after having
    /// failed (or for the first time).
    pub async fn node_back(&self) {
        self.node_back.notified().await;
    }

    /// Fetches one template without long-polling and publishes it.
    pub async fn fetch_once(&self) -> Result<Arc<Job>, WorkError> {
        let value = self
            .node
            .get_block_template(None, self.longpoll_timeout)
            .await?;
        self.publish(value)
    }

    fn publish(&self, value: serde_json::Value) -> Result<Arc<Job>, WorkError> {
        let template: BlockTemplate =
            serde_json::from_value(value).map_err(|e| WorkError::Template(e.to_string()))?;
        let mut building = self.building();
        if let Some(last) = &building.template
            && last.same_work(&template)
            && let Some(job) = self.current()
            && (job.log_head() == self.log_head() || job.built().elapsed() < self.refresh_every / 2)
        {
            // Only the clock moved (a refresh with nothing new, or a second
            // fetch after a block): the job's ntime is still valid, and a
            // new job would cost every connection a notify for nothing.
            // Unless shares were written since and the job is half a
            // refresh old: then a new job pins them (its commitment names
            // the share log's head), so the log's unpinned tail is never
            // older than one refresh. Not sooner: the second fetch right
            // after a block would cost every connection a second notify.
            tracing::trace!(job = job.id(), "template unchanged; no new job");
            self.confirm();
            return Ok(job);
        }
        let job = self.build(&building.config, &template, false)?;
        building.template = Some(Arc::new(template));
        self.confirm();
        Ok(job)
    }

    /// A job a miner declared (`SetCustomMiningJob`), held to the current
    /// tip, the pool's payout script and extranonce size, the block subsidy
    /// on `network`, the token's `commitment` and, if the token was issued
    /// for a full-template declaration, that `template`; numbered from the
    /// instance's job counter but neither recorded
    /// ([`WorkSource::record_declared`] does that once the session keeps it)
    /// nor published: it is that miner's alone.
    pub fn declared_job(
        &self,
        custom: &crate::job::CustomJob<'_>,
        commitment: proofpool_epoch::share_commitment::ShareCommitment,
        template: Option<&crate::job::DeclaredTemplate>,
        extranonce1_len: usize,
        now_secs: u32,
        network: bitcoin::Network,
    ) -> Result<Arc<Job>, crate::job::DeclaredError> {
        let Some(tip) = self.current() else {
            return Err(crate::job::DeclaredError::StaleChainTip);
        };
        let config = self.job_config();
        let min_value = crate::job::subsidy(network, tip.height());
        let requirements = crate::job::Requirements {
            tip: &tip,
            payout_script: &config.payout_script,
            commitment,
            extranonce1_len,
            extranonce2_len: config.extranonce2_len,
            now: now_secs,
            min_value,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Job::declared(id, custom, &requirements)?;
        Ok(Arc::new(match template {
            Some(template) => job.with_template(template)?,
            // Coinbase-only: nothing checks the transactions, so the fees
            // the coinbase claims are the miner's word. An overpaying
            // coinbase only makes an invalid block, which costs its miner
            // nothing, while FPPS pays every share by its job's value: cap
            // it at what the pool's own template for this tip pays (a
            // full-template declaration is checked by the node instead).
            None if job.coinbase_value() > tip.coinbase_value() => {
                return Err(crate::job::DeclaredError::InvalidCoinbaseTxOutputs(
                    format!(
                        "the pool's output carries {} sat, more than the {} sat the pool's own template for this tip pays; declare the full template to claim more fees",
                        job.coinbase_value().0,
                        tip.coinbase_value().0
                    ),
                ));
            }
            None => job,
        }))
    }

    /// Records a declared job like the pool's own: the auditor rebuilds
    /// its headers from the record.
    pub fn record_declared(&self, job: &Job) {
        tracing::debug!(job = job.id(), height = job.height(), "declared job");
        if let Some((log, instance)) = &self.log {
            log.record_job(job_record(job, *instance));
        }
    }

    /// The instance's share-log head now (zero without a share log).
    pub(crate) fn log_head(&self) -> proofpool_primitives::B256 {
        self.log
            .as_ref()
            .map(|(log, instance)| log.log_head(*instance).head)
            .unwrap_or_default()
    }

    fn building(&self) -> MutexGuard<'_, Building> {
        self.building.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds the next job from `template` with `config`, records it and
    /// publishes it, clean on a new previous block or if `clean`; the
    /// caller holds the [`Building`] lock.
    fn build(
        &self,
        config: &JobConfig,
        template: &BlockTemplate,
        clean: bool,
    ) -> Result<Arc<Job>, WorkError> {
        let previous = self.current();
        let clean = clean
            || previous
                .as_ref()
                .is_none_or(|p| p.prev_hash() != template.previous_block_hash());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Arc::new(Job::new(id, template, config, clean, self.log_head())?);
        tracing::debug!(job = id, height = job.height(), clean, "new job");
        if let Some((log, instance)) = &self.log {
            log.record_job(job_record(&job, *instance));
        }
        self.tx.send_replace(Some(job.clone()));
        Ok(job)
    }

    /// The coinbase settings new jobs are built with.
    pub fn job_config(&self) -> JobConfig {
        self.building().config.clone()
    }

    /// Builds every job from now on with `config` and, if there is a
    /// template already, publishes a job built from it with the new
    /// settings at once. That job is clean if the payout script changed:
    /// miners drop the older jobs, so no block found after the change pays
    /// the old script (an operator replacing a compromised address needs
    /// that), at the cost of their work in flight. A new tag or extranonce2
    /// size alone leaves the older jobs valid. Returns whether the settings
    /// changed; an invalid `config` changes nothing.
    pub fn reconfigure(&self, config: JobConfig) -> Result<bool, WorkError> {
        config.validate()?;
        let mut building = self.building();
        if building.config == config {
            return Ok(false);
        }
        let new_payout = building.config.payout_script != config.payout_script;
        if let Some(template) = building.template.clone() {
            let job = self.build(&config, &template, new_payout)?;
            tracing::info!(
                job = job.id(),
                extranonce2_len = config.extranonce2_len,
                pool_tag = %String::from_utf8_lossy(&config.pool_tag),
                clean = new_payout,
                "coinbase settings changed; new job published"
            );
        }
        building.config = config;
        Ok(true)
    }

    /// Runs until `shutdown` resolves: long-poll, periodic refresh, and retries
    /// with backoff while the node is away (sessions keep the last job).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(250);
        loop {
            let longpollid = self
                .current()
                .and_then(|job| job.longpoll_id().map(str::to_owned));
            let result = tokio::select! {
                () = &mut shutdown => return,
                r = self.node.get_block_template(longpollid.as_deref(), self.longpoll_timeout) => Some(r),
                () = tokio::time::sleep(self.refresh_every) => None,
                () = self.refresh.notified() => None,
            };
            let result = match result {
                Some(r) => r,
                // Refresh tick or explicit request: a plain call, not a long-poll.
                None => {
                    self.node
                        .get_block_template(None, self.longpoll_timeout)
                        .await
                }
            };
            match result
                .map_err(WorkError::from)
                .and_then(|v| self.publish(v))
            {
                Ok(_) => {
                    if !self.node_up.swap(true, Ordering::Relaxed) {
                        tracing::info!(node = %self.node.current_url(), "bitcoind is serving templates");
                        self.node_back.notify_waiters();
                    }
                    backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    self.node_up.store(false, Ordering::Relaxed);
                    match self.current() {
                        Some(job) => {
                            tracing::warn!(error = %e, height = job.height(), retry_in = ?backoff, "cannot get a template; still serving the last job")
                        }
                        None => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "cannot get a template; no job to serve yet")
                        }
                    }
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Why no job could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// bitcoind failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The template did not parse.
    #[error("bad template: {0}")]
    Template(String),
    /// The job could not be built.
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
}

/// What an auditor needs of a job to rebuild its headers.
fn job_record(job: &Job, instance: u8) -> JobRecord {
    use bitcoin::hashes::Hash;
    JobRecord {
        instance,
        job_id: job.id(),
        created_ms: crate::server::unix_ms(),
        height: u64::from(job.height()),
        prev_hash: proofpool_primitives::B256::from(job.prev_hash().to_byte_array()),
        version: job.version(),
        nbits: job.bits().to_consensus(),
        template_time: job.ntime(),
        coinbase1: job.coinbase1().to_vec(),
        coinbase2: job.coinbase2_prefix().to_vec(),
        coinbase2_suffix: job.coinbase2_suffix().to_vec(),
        log_head: job.log_head(),
        branch: job
            .merkle_branch()
            .iter()
            .map(|h| proofpool_primitives::B256::from(*h))
            .collect(),
        network_target: job.network_target(),
        coinbase_value: job.coinbase_value().0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::ScriptBuf;
    use proofpool_node::{NodeAuth, NodeEndpoint};

    const EMPTY: &str = include_str!("../tests/fixtures/regtest_gbt_empty.json");

    fn source() -> WorkSource {
        // Never called: these tests publish templates themselves.
        let node = NodeClient::new(
            vec![NodeEndpoint {
                url: "http://127.0.0.1:9/".parse().unwrap(),
                auth: NodeAuth::UserPass {
                    user: "u".into(),
                    password: "p".into(),
                },
            }],
            Duration::from_secs(1),
        )
        .unwrap();
        WorkSource::new(
            Arc::new(node),
            JobConfig::new(ScriptBuf::from_bytes(vec![0x51])),
            Duration::from_secs(30),
            Duration::from_secs(30),
        )
    }

    fn config(tag: &[u8], extranonce2_len: usize) -> JobConfig {
        JobConfig {
            pool_tag: tag.to_vec(),
            extranonce2_len,
            ..JobConfig::new(ScriptBuf::from_bytes(vec![0x52]))
        }
    }

    #[test]
    fn reconfigure_rebuilds_the_current_template_and_refuses_bad_settings() {
        let work = source();
        // Before any template: the settings change, nothing is published.
        assert!(work.reconfigure(config(b"/a/", 6)).unwrap());
        assert!(work.current().is_none());
        let first = work.publish(serde_json::from_str(EMPTY).unwrap()).unwrap();
        assert_eq!(first.extranonce2_len(), 6);
        assert!(first.clean_jobs());
        let mut jobs = work.subscribe();
        jobs.borrow_and_update();

        // New settings: the same template again, at once, under the next id,
        // not clean (same previous block), in the new layout.
        assert!(work.reconfigure(config(b"/b/", 4)).unwrap());
        assert!(jobs.has_changed().unwrap());
        let rebuilt = work.current().unwrap();
        assert_eq!(rebuilt.id(), first.id() + 1);
        assert_eq!(rebuilt.prev_hash(), first.prev_hash());
        assert!(!rebuilt.clean_jobs());
        assert_eq!(rebuilt.extranonce2_len(), 4);
        assert!(rebuilt.coinbase1().windows(3).any(|w| w == b"/b/"));
        assert_eq!(work.job_config(), config(b"/b/", 4));

        // The same settings again, or settings that cannot work, change nothing.
        jobs.borrow_and_update();
        assert!(!work.reconfigure(config(b"/b/", 4)).unwrap());
        assert!(work.reconfigure(config(b"/b/", 9)).is_err());
        assert!(work.reconfigure(config(&[b'x'; 100], 4)).is_err());
        assert!(!jobs.has_changed().unwrap(), "no job published");
        assert_eq!(work.job_config(), config(b"/b/", 4));

        // The same template again (bitcoind had nothing new) publishes nothing.
        let same = work.publish(serde_json::from_str(EMPTY).unwrap()).unwrap();
        assert_eq!(same.id(), rebuilt.id());
        assert!(!jobs.has_changed().unwrap(), "no job published");
        let mut later: serde_json::Value = serde_json::from_str(EMPTY).unwrap();
        later["curtime"] = serde_json::json!(later["curtime"].as_u64().unwrap() + 30);
        assert_eq!(work.publish(later.clone()).unwrap().id(), rebuilt.id());

        // A template with more fees is a new job, with the new settings.
        later["coinbasevalue"] = serde_json::json!(later["coinbasevalue"].as_u64().unwrap() + 1);
        let next = work.publish(later).unwrap();
        assert_eq!(next.id(), rebuilt.id() + 1);
        assert_eq!(next.extranonce2_len(), 4);
        assert!(!next.clean_jobs());

        // A new payout script: the rebuilt job is clean, so miners drop the
        // jobs that pay the old one.
        let mut paying = config(b"/b/", 4);
        paying.payout_script = ScriptBuf::from_bytes(vec![0x53]);
        assert!(work.reconfigure(paying).unwrap());
        let rebuilt = work.current().unwrap();
        assert!(rebuilt.clean_jobs());
        assert_eq!(rebuilt.prev_hash(), next.prev_hash());
    }
}
