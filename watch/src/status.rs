//! The watcher's status page (`/`) and Prometheus metrics (`/metrics`),
//! read from its share log on each request.

use crate::log::{Status, WatchLog};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the proxy and the periodic check keep.
#[derive(Debug, Default)]
pub struct Stats {
    /// Miner connections being proxied now.
    pub connections: AtomicU64,
    /// Shares recorded since the watcher started.
    pub recorded: AtomicU64,
    /// Checks run since the watcher started.
    pub checks: AtomicU64,
    /// Checks that could not read the epoch files.
    pub check_failures: AtomicU64,
    /// The newest epoch the last check read (0 if none).
    pub checked_epoch: AtomicU64,
    /// Miners whose credits the last check could not replay.
    pub credit_problems: AtomicU64,
}

#[derive(Clone)]
struct App {
    log: WatchLog,
    stats: Arc<Stats>,
}

/// The status page and metrics over `log` and `stats`.
pub fn router(log: WatchLog, stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .with_state(App { log, stats })
}

const STATUSES: [Status; 4] = [
    Status::Pending,
    Status::Included,
    Status::Missing,
    Status::Altered,
];

async fn counts(log: &WatchLog) -> Result<[u64; 4], String> {
    let found = log.counts().await.map_err(|e| e.to_string())?;
    let mut out = [0u64; 4];
    for (status, n) in found {
        if let Some(i) = STATUSES.iter().position(|s| *s == status) {
            out[i] = n;
        }
    }
    Ok(out)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let mut text = String::new();
    let s = &app.stats;
    let counter = |text: &mut String, name: &str, help: &str, kind: &str, v: u64| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    };
    counter(
        &mut text,
        "watch_connections",
        "Miner connections proxied now.",
        "gauge",
        s.connections.load(Ordering::Relaxed),
    );
    counter(
        &mut text,
        "watch_shares_recorded_total",
        "Shares the pool accepted and the watcher recorded since it started.",
        "counter",
        s.recorded.load(Ordering::Relaxed),
    );
    counter(
        &mut text,
        "watch_checks_total",
        "Checks of the recorded shares against the epoch files.",
        "counter",
        s.checks.load(Ordering::Relaxed),
    );
    counter(
        &mut text,
        "watch_check_failures_total",
        "Checks that could not read the epoch files.",
        "counter",
        s.check_failures.load(Ordering::Relaxed),
    );
    counter(
        &mut text,
        "watch_checked_epoch",
        "The newest epoch the last check read.",
        "gauge",
        s.checked_epoch.load(Ordering::Relaxed),
    );
    counter(
        &mut text,
        "watch_credit_problems",
        "Miners whose credits the last check did not replay to their reward leaf.",
        "gauge",
        s.credit_problems.load(Ordering::Relaxed),
    );
    match counts(&app.log).await {
        Ok(counts) => {
            text.push_str(
                "# HELP watch_shares Recorded shares, by what the last check found.\n# TYPE watch_shares gauge\n",
            );
            for (status, n) in STATUSES.iter().zip(counts) {
                text.push_str(&format!(
                    "watch_shares{{status=\"{}\"}} {n}\n",
                    status.as_str()
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the share log for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn page(State(app): State<App>) -> impl IntoResponse {
    let rows = match counts(&app.log).await {
        Ok(counts) => STATUSES
            .iter()
            .zip(counts)
            .map(|(s, n)| format!("<tr><td>{}</td><td>{n}</td></tr>", s.as_str()))
            .collect::<String>(),
        Err(e) => format!("<tr><td colspan=2>cannot read the share log: {e}</td></tr>"),
    };
    let s = &app.stats;
    let bad = counts(&app.log)
        .await
        .map(|c| c[2] + c[3])
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>proofpool watch</title></head><body>\
         <h1>proofpool watch</h1>\
         <p>{}</p>\
         <p>{} miner connections; {} shares recorded since start; newest epoch checked: {}.</p>\
         <table><tr><th>status</th><th>shares</th></tr>{rows}</table>\
         <p>{}</p>\
         <p>Evidence of each missing or altered share is in the evidence directory; \
         <code>proofpool watch verify FILE</code> re-checks it.</p></body></html>",
        if bad == 0 {
            "Every checked share is in the epoch files as mined."
        } else {
            "Some of your shares are missing from the epoch files or altered in them."
        },
        s.connections.load(Ordering::Relaxed),
        s.recorded.load(Ordering::Relaxed),
        s.checked_epoch.load(Ordering::Relaxed),
        match s.credit_problems.load(Ordering::Relaxed) {
            _ if s.checks.load(Ordering::Relaxed) == 0 => "No check has run yet.".to_owned(),
            0 => "Every miner's credit replays to its reward leaf.".to_owned(),
            n => format!("{n} miners' credits do not replay to their reward leaves: see the log."),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{ShareEvidence, ShareParts};
    use alloy_primitives::B256;

    #[tokio::test]
    async fn metrics_and_page_count_the_recorded_shares() {
        let dir =
            std::env::temp_dir().join(format!("proofpool-watch-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = WatchLog::open(&dir.join("watch.db")).await.unwrap();
        let parts = ShareParts {
            prev_hash: B256::ZERO,
            coinbase1: vec![1].into(),
            extranonce1: vec![2].into(),
            extranonce2: vec![3].into(),
            coinbase2: vec![4].into(),
            branch: Vec::new(),
            version: 1,
            nbits: 2,
            ntime: 3,
            nonce: 4,
        };
        let mut hashes = Vec::new();
        for i in 0..3u8 {
            let mut p = parts.clone();
            p.nonce = u32::from(i);
            hashes.push(p.hash());
            log.record(p.hash(), 1000, "rig", &ShareEvidence::new(p))
                .await
                .unwrap();
        }
        log.set_status(hashes[0], Status::Missing, None)
            .await
            .unwrap();
        let stats = Arc::new(Stats::default());
        stats.recorded.store(3, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router(log, stats)).await.unwrap();
        });
        let metrics = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("watch_shares{status=\"pending\"} 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("watch_shares{status=\"missing\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("watch_shares_recorded_total 3\n"),
            "{metrics}"
        );
        let page = reqwest::get(format!("http://{addr}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("missing from the epoch files"), "{page}");
        server.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
