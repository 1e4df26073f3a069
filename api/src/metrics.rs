//! Request counters and latency histograms, rendered in the Prometheus text
//! format at `/metrics`.
//!
//! Requests are labelled by the route template (`/api/v1/epochs/{n}`), never
//! by the raw path, and by the method only when it is one of HTTP's standard
//! ones (anything else is `other`), so the label set stays bounded whatever
//! clients send; everything the router did not match (the web app's files,
//! 404s) is `fallback`. Each replica exposes its own counters.

use crate::Shared;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How often a flood of refusals (requests at the in-flight limit,
/// connections over a cap, timeouts) is logged at most: one line with the
/// count instead of a line each.
pub(crate) const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Histogram bucket bounds, microseconds, with their `le` labels.
const BUCKETS: [(u64, &str); 12] = [
    (1_000, "0.001"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
];

#[derive(Debug, Default, Clone, Copy)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    count: u64,
    sum_micros: u64,
}

impl Histogram {
    fn observe(&mut self, micros: u64) {
        let slot = BUCKETS
            .iter()
            .position(|(bound, _)| micros <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot] += 1;
        self.count += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }
}

#[derive(Debug, Default)]
struct Tables {
    /// (route, method, status) → requests.
    requests: BTreeMap<(String, &'static str, u16), u64>,
    /// route → latency.
    latency: BTreeMap<String, Histogram>,
}

/// The API's counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    tables: Mutex<Tables>,
    in_flight: AtomicU64,
    rejected: AtomicU64,
    limiter: Arc<Semaphore>,
    limit: usize,
    /// Requests refused at the in-flight limit, not yet logged.
    busy_log: Throttle,
    /// Requests that timed out, not yet logged.
    pub(crate) timeout_log: Throttle,
    /// Connections being served.
    pub(crate) connections_open: AtomicU64,
    /// Connections accepted and served.
    pub(crate) connections_total: AtomicU64,
    /// Connections refused because their address had too many open.
    pub(crate) connections_refused_per_ip: AtomicU64,
}

/// Counts events and says when to log them: at most once per
/// [`REFUSAL_LOG_EVERY`], with how many happened since the last line.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    last: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl Throttle {
    /// Counts one event; `Some(n)` when a line is due, covering `n` events.
    pub(crate) fn hit(&self, now: Instant) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.saturating_duration_since(at) < REFUSAL_LOG_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

/// The method as a label value: one of HTTP's standard methods, or `other`.
/// Any token is a valid method to hyper, so a client could otherwise mint a
/// new label value (and keep it in memory forever) with every request.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Decrements the in-flight gauge however the request ends (even when the
/// client goes away and the handler future is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counters for a server that serves at most `limit` requests at once.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            tables: Mutex::new(Tables::default()),
            in_flight: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            limiter: Arc::new(Semaphore::new(limit)),
            limit,
            busy_log: Throttle::default(),
            timeout_log: Throttle::default(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused_per_ip: AtomicU64::new(0),
        }
    }

    fn record(&self, route: String, method: &'static str, status: u16, micros: u64) {
        // A poisoned lock only means a panic elsewhere mid-update of plain
        // counters; keep counting.
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        *t.requests
            .entry((route.clone(), method, status))
            .or_default() += 1;
        t.latency.entry(route).or_default().observe(micros);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self, cached_trees: usize) -> String {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP proofpool_api_requests_total HTTP requests answered, by route template, method and status.\n\
             # TYPE proofpool_api_requests_total counter\n",
        );
        for ((route, method, status), n) in &t.requests {
            writeln!(
                out,
                "proofpool_api_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            )
            .expect("writing to a String never fails");
        }
        out.push_str(
            "# HELP proofpool_api_request_duration_seconds Time to the response head, by route template.\n\
             # TYPE proofpool_api_request_duration_seconds histogram\n",
        );
        for (route, h) in &t.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for ((_, le), n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                writeln!(
                    out,
                    "proofpool_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                )
            .expect("writing to a String never fails");
            }
            writeln!(
                out,
                "proofpool_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 proofpool_api_request_duration_seconds_sum{{route=\"{route}\"}} {}.{:06}\n\
                 proofpool_api_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count,
                h.sum_micros / 1_000_000,
                h.sum_micros % 1_000_000,
                h.count
            )
            .expect("writing to a String never fails");
        }
        write!(
            out,
            "# HELP proofpool_api_requests_in_flight Requests being served.\n\
             # TYPE proofpool_api_requests_in_flight gauge\n\
             proofpool_api_requests_in_flight {}\n\
             # HELP proofpool_api_requests_rejected_total Requests refused with 503 because {} were in flight.\n\
             # TYPE proofpool_api_requests_rejected_total counter\n\
             proofpool_api_requests_rejected_total {}\n\
             # HELP proofpool_api_reward_trees_cached Reward trees held for proofs.\n\
             # TYPE proofpool_api_reward_trees_cached gauge\n\
             proofpool_api_reward_trees_cached {cached_trees}\n\
             # HELP proofpool_api_connections_open HTTP connections being served.\n\
             # TYPE proofpool_api_connections_open gauge\n\
             proofpool_api_connections_open {}\n\
             # HELP proofpool_api_connections_total HTTP connections accepted and served.\n\
             # TYPE proofpool_api_connections_total counter\n\
             proofpool_api_connections_total {}\n\
             # HELP proofpool_api_connections_refused_total HTTP connections closed at once because their address had max_connections_per_ip open.\n\
             # TYPE proofpool_api_connections_refused_total counter\n\
             proofpool_api_connections_refused_total{{reason=\"per_ip\"}} {}\n",
            self.in_flight.load(Ordering::Relaxed),
            self.limit,
            self.rejected.load(Ordering::Relaxed),
            self.connections_open.load(Ordering::Relaxed),
            self.connections_total.load(Ordering::Relaxed),
            self.connections_refused_per_ip.load(Ordering::Relaxed),
        )
            .expect("writing to a String never fails");
        out
    }
}

/// Label values are escaped as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: sheds load beyond the in-flight limit, then counts and times
/// the request.
pub(crate) async fn track(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let m = &app.metrics;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "fallback".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let response = match m.limiter.clone().try_acquire_owned() {
        Ok(_permit) => {
            m.in_flight.fetch_add(1, Ordering::Relaxed);
            let _guard = InFlight(&m.in_flight);
            next.run(req).await
        }
        Err(_) => {
            m.rejected.fetch_add(1, Ordering::Relaxed);
            // One line per interval: a flood of these must not become a
            // flood of log lines.
            if let Some(n) = m.busy_log.hit(start) {
                tracing::warn!(
                    rejected = n,
                    limit = m.limit,
                    "requests refused with 503 at the in-flight limit (proofpool_api_requests_rejected_total)"
                );
            }
            ApiError::Busy(m.limit).into_response()
        }
    };
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    m.record(route, method, response.status().as_u16(), micros);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new(4);
        m.record("/a".into(), "GET", 200, 800);
        m.record("/a".into(), "GET", 200, 30_000);
        m.record("/a".into(), "GET", 404, 20_000_000);
        let text = m.render(2);
        assert!(text.contains(
            "proofpool_api_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "proofpool_api_requests_total{route=\"/a\",method=\"GET\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "proofpool_api_request_duration_seconds_bucket{route=\"/a\",le=\"0.001\"} 1"
        ));
        assert!(
            text.contains(
                "proofpool_api_request_duration_seconds_bucket{route=\"/a\",le=\"0.05\"} 2"
            )
        );
        assert!(
            text.contains(
                "proofpool_api_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3"
            )
        );
        assert!(
            text.contains("proofpool_api_request_duration_seconds_sum{route=\"/a\"} 20.030800")
        );
        assert!(text.contains("proofpool_api_reward_trees_cached 2"));
    }

    #[test]
    fn only_standard_methods_become_labels() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(&[b'X'; 600]).unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn a_throttle_logs_once_per_interval_with_the_count() {
        let t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.hit(t0), Some(1));
        for i in 1..=9 {
            assert_eq!(t.hit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(t.hit(t0 + REFUSAL_LOG_EVERY), Some(10));
        assert_eq!(t.hit(t0 + REFUSAL_LOG_EVERY), None);
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
