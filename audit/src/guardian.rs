//! The guardian: someone other than the operator, with a key of its own,
//! who audits every committed epoch while its challenge period runs and
//! vetoes the first pending epoch that fails.
//!
//! One pass ([`Guardian::run_once`]): read the distributor's heads; if an
//! epoch is pending, run the full [`audit`] up to the newest committed
//! epoch (files, chain, and bitcoind or the carried headers, as configured);
//! take the lowest failing epoch that is still pending and, if its
//! challenge period still runs, veto it (the distributor rolls back every
//! later pending epoch with it). A failing epoch already finalized, or past
//! its window, cannot be vetoed: it is reported and counted, loudly.
//!
//! Metrics (through the `metrics` facade; the CLI installs a Prometheus
//! exporter): `guardian_passes_total{result}` (`ok`, `failed`, `error`),
//! `guardian_vetoes_total`, `guardian_unvetoable_epochs`,
//! `guardian_last_audited_epoch`, `guardian_failing_epochs`.

use super::driver::{AuditError, AuditOptions, ChainReader, EpochSource, audit};
use super::{BlockChecker, NoObserver, Severity};
use alloy::primitives::TxHash;
use alloy::providers::Provider;
use proofpool_chain::{ChainError, DistributorClient};

/// Why a pass stopped short.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardianError {
    /// The audit could not run (files, chain or bitcoind unreachable).
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Reading the chain or sending the veto failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardianPass {
    /// The newest committed epoch audited (`None`: nothing was pending).
    pub audited_to: Option<u64>,
    /// Every epoch that failed the audit.
    pub failing: Vec<u64>,
    /// The epoch vetoed, with the transaction.
    pub vetoed: Option<(u64, TxHash)>,
    /// Failing epochs that can no longer be vetoed (finalized, or past
    /// their challenge period).
    pub unvetoable: Vec<u64>,
}

/// Audits pending epochs and vetoes the failing ones (see the module docs).
#[derive(Debug)]
pub struct Guardian<P> {
    source: EpochSource,
    reader: ChainReader,
    client: DistributorClient<P>,
    node: Option<BlockChecker>,
    options: AuditOptions,
}

impl<P: Provider + Clone> Guardian<P> {
    /// A guardian reading epoch files from `source`, the chain through
    /// `reader`, and vetoing through `client` (whose wallet holds the
    /// guardian key); `node` and `options` are the audit's.
    pub fn new(
        source: EpochSource,
        reader: ChainReader,
        client: DistributorClient<P>,
        node: Option<BlockChecker>,
        options: AuditOptions,
    ) -> Self {
        Self {
            source,
            reader,
            client,
            node,
            options,
        }
    }

    /// One pass; see the module docs.
    pub async fn run_once(&self) -> Result<GuardianPass, GuardianError> {
        let outcome = self.pass().await;
        let result = match &outcome {
            Ok(p) if p.failing.is_empty() => "ok",
            Ok(_) => "failed",
            Err(_) => "error",
        };
        metrics::counter!("guardian_passes_total", "result" => result).increment(1);
        outcome
    }

    async fn pass(&self) -> Result<GuardianPass, GuardianError> {
        let (committed, finalized) = self.client.heads().await?;
        let mut pass = GuardianPass::default();
        if committed == finalized {
            return Ok(pass);
        }
        let options = AuditOptions {
            to: Some(committed),
            ..self.options
        };
        let report = audit(
            &self.source,
            Some(&self.reader),
            self.node.as_ref(),
            &options,
            &mut NoObserver,
        )
        .await?;
        pass.audited_to = Some(committed);
        metrics::gauge!("guardian_last_audited_epoch").set(committed as f64);
        pass.failing = report.failed_epochs();
        metrics::gauge!("guardian_failing_epochs").set(pass.failing.len() as f64);
        for v in report.verdicts.iter().filter(|v| !v.is_ok()) {
            for f in v
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Mismatch)
            {
                tracing::warn!(epoch = v.epoch, finding = %f, "epoch fails the audit");
            }
        }
        for (epoch, f) in report
            .found
            .iter()
            .filter(|(_, f)| f.severity == Severity::Mismatch)
        {
            tracing::warn!(epoch, finding = %f, "epoch fails the audit");
        }
        let Some(&epoch) = pass.failing.iter().find(|e| **e > finalized) else {
            pass.unvetoable.clone_from(&pass.failing);
            self.unvetoable(&pass.unvetoable);
            return Ok(pass);
        };
        pass.unvetoable = pass
            .failing
            .iter()
            .copied()
            .filter(|e| *e <= finalized)
            .collect();
        match self.client.committed_record(epoch).await? {
            Some((record, _)) => {
                let now = self.client.chain_time().await?;
                if now < record.finalizableAt {
                    let receipt = self.client.veto(record).await?;
                    metrics::counter!("guardian_vetoes_total").increment(1);
                    tracing::warn!(epoch, tx = %receipt.transaction_hash, rolled_back_to = epoch - 1, "vetoed");
                    pass.vetoed = Some((epoch, receipt.transaction_hash));
                } else {
                    pass.unvetoable.push(epoch);
                }
            }
            // Vetoed meanwhile (by another guardian process).
            None => tracing::info!(epoch, "the failing epoch is no longer committed"),
        }
        self.unvetoable(&pass.unvetoable);
        Ok(pass)
    }

    fn unvetoable(&self, epochs: &[u64]) {
        if epochs.is_empty() {
            metrics::gauge!("guardian_unvetoable_epochs").set(0.0);
            return;
        }
        metrics::gauge!("guardian_unvetoable_epochs").set(epochs.len() as f64);
        tracing::error!(
            ?epochs,
            "epochs fail the audit but can no longer be vetoed (finalized, or past their challenge period)"
        );
    }
}
