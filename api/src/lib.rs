//! proofpool's public HTTP API: pool statistics, miners, blocks, settled
//! epochs, claim proofs and epoch files, for the web app, wallets and
//! auditors.
//!
//! Data flow: every answer is read from the pool's store (SQLite or
//! PostgreSQL) — the pool writes shares, jobs, workers and blocks, the
//! settler writes epochs and credits — and from the epoch files the settler
//! wrote to its epochs directory. Claim proofs are rebuilt from the stored
//! cumulative balances with the deployment's [`RewardDomain`] and checked
//! against the stored root before they are served. With an RPC endpoint the
//! API also reads the distributor (claimed amounts, token, heads). The API
//! keeps no state of its own beyond caches of immutable data, so several
//! replicas can serve one PostgreSQL.
//!
//! Routes (JSON under `/api/v1`, described by the OpenAPI document at
//! `/api/openapi.json`):
//! - `GET /api/v1/summary`, `GET /api/v1/hashrate`
//! - `GET /api/v1/miners`, `GET /api/v1/miners/{address}`
//! - `GET /api/v1/blocks`
//! - `GET /api/v1/epochs`, `GET /api/v1/epochs/{n}`,
//!   `GET /api/v1/epochs/{n}/proof/{address}`, `GET /api/v1/epochs/{n}/file`
//! - `GET /api/v1/chain`
//! - `GET /metrics` (Prometheus text), `GET /healthz`
//! - the web app's pages (`/`, `/miner/{address}`, `/auditor`) as its
//!   `index.html` (client-side routing), and its files from
//!   [`ApiState::web_dir`]; every other path is a JSON 404.
//!
//! Bad input is answered with 400 and a JSON [`types::ErrorBody`] naming the
//! parameter; unknown epochs and addresses with nothing to claim with 404.
//! Every other error, whoever makes it (a 405, a timeout, hyper's own 400,
//! 414 and 431), has the same JSON shape ([`layers`], [`server`]), and every
//! answer carries the security headers ([`CONTENT_SECURITY_POLICY`]).
//! Connections are capped in total and per address, and hyper's
//! header-read timeout closes silent, slow and idle ones ([`ServeConfig`]).
//! No answer ever carries a worker's IP address: the store does not even
//! keep them.

mod error;
mod layers;
mod metrics;
mod onchain;
mod openapi;
mod params;
mod proofs;
mod routes;
mod server;
pub mod types;

pub use error::ApiError;
pub use layers::CONTENT_SECURITY_POLICY;
pub use openapi::ApiDoc;
pub use server::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    FILES_BESIDES_CONNECTIONS, MAX_HEADER_BYTES, ServeConfig,
};

use alloy::transports::http::reqwest::Url;
use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{Method, StatusCode};
use axum::routing::{any, get};
use proofpool_merkle::RewardDomain;
use proofpool_primitives::U256;
use proofpool_store::Store;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The Bitcoin explorer linked from blocks unless configured otherwise.
pub const DEFAULT_EXPLORER_URL: &str = "https://mempool.space";

/// Most requests served at once; beyond it, requests get 503 at once rather
/// than queueing behind a slow database.
pub const MAX_IN_FLIGHT: usize = 512;

/// Longest a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the API serves from.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The pool's store.
    pub store: Store,
    /// Where the settler writes epoch files.
    pub epochs_dir: PathBuf,
    /// The deployment reward leaves are bound to (must match the settler's).
    pub domain: RewardDomain,
    /// Token base units per satoshi (must match the settler's).
    pub token_per_sat: U256,
    /// Bitcoin block explorer; blocks link to `{explorer_base_url}/block/{hash}`.
    pub explorer_base_url: String,
    /// The L2's JSON-RPC endpoint, to read claimed amounts and token info.
    pub chain_rpc_url: Option<Url>,
    /// The web app's built files (`web/dist`), served for every other path.
    pub web_dir: Option<PathBuf>,
}

impl ApiState {
    /// A state with one token unit per sat, the default explorer, no chain
    /// reads and no web app.
    pub fn new(store: Store, epochs_dir: PathBuf, domain: RewardDomain) -> Self {
        Self {
            store,
            epochs_dir,
            domain,
            token_per_sat: U256::from(1u64),
            explorer_base_url: DEFAULT_EXPLORER_URL.to_owned(),
            chain_rpc_url: None,
            web_dir: None,
        }
    }
}

/// Everything a handler reaches through `State`.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) state: ApiState,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) trees: proofs::TreeCache,
    pub(crate) share_trees: proofs::ShareTreeCache,
    pub(crate) chain: Option<onchain::ChainReader>,
    pub(crate) openapi: String,
}

/// The shared handle handlers get.
pub(crate) type Shared = Arc<App>;

/// The web app's client-side routes, answered with its `index.html` (see
/// `web/src/main.ts`); any other path that is not one of its files is a 404.
const APP_PAGES: [&str; 5] = [
    "/",
    "/auditor",
    "/auditor/",
    "/miner/{address}",
    "/miner/{address}/",
];

/// Longest path segment looked up among the web app's files: a longer one
/// cannot name a file (`NAME_MAX`), and the file system would answer it
/// with an error that is not "not found".
const MAX_FILE_NAME: usize = 255;

/// One of the web app's files, or a JSON 404.
async fn web_file<S>(files: S, req: axum::extract::Request) -> axum::response::Response
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::http::Response<tower_http::services::fs::ServeFileSystemResponseBody>,
            Error = std::convert::Infallible,
        >,
{
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    if req
        .uri()
        .path()
        .split('/')
        .any(|segment| segment.len() > MAX_FILE_NAME)
    {
        return routes::meta::not_found(req.uri().clone()).await;
    }
    match files.oneshot(req).await {
        Ok(answer) => answer.into_response(),
        Err(never) => match never {},
    }
}

/// The API's routes, the web app's files and the metrics, request-timeout,
/// JSON-error, security-header, CORS and tracing layers.
pub fn router(state: ApiState) -> Router {
    build(state, MAX_IN_FLIGHT).0
}

fn build(state: ApiState, max_in_flight: usize) -> (Router, Shared) {
    let web_dir = state.web_dir.clone();
    let chain = state
        .chain_rpc_url
        .clone()
        .map(|url| onchain::ChainReader::new(url, state.domain.distributor));
    let app = Arc::new(App {
        state,
        metrics: metrics::Metrics::new(max_in_flight),
        trees: proofs::TreeCache::default(),
        share_trees: proofs::ShareTreeCache::default(),
        chain,
        openapi: openapi::document(),
    });
    let router = Router::new()
        .route("/api/v1/summary", get(routes::summary::summary))
        .route("/api/v1/hashrate", get(routes::summary::hashrate))
        .route("/api/v1/miners", get(routes::miners::list))
        .route("/api/v1/miners/{address}", get(routes::miners::detail))
        .route("/api/v1/blocks", get(routes::blocks::list))
        .route("/api/v1/epochs", get(routes::epochs::list))
        .route("/api/v1/epochs/{n}", get(routes::epochs::detail))
        .route(
            "/api/v1/epochs/{n}/proof/{address}",
            get(routes::epochs::proof),
        )
        .route("/api/v1/epochs/{n}/file", get(routes::epochs::file))
        .route(
            "/api/v1/epochs/{n}/shares/{hash}/proof",
            get(routes::epochs::share_proof),
        )
        .route("/api/v1/chain", get(routes::chain::chain))
        .route("/api/openapi.json", get(routes::meta::openapi))
        .route("/metrics", get(routes::meta::metrics))
        .route("/healthz", get(routes::meta::health))
        .route("/api", any(routes::meta::api_not_found))
        .route("/api/", any(routes::meta::api_not_found))
        .route("/api/{*rest}", any(routes::meta::api_not_found));
    let router = match web_dir {
        Some(dir) => {
            let index = ServeFile::new(dir.join("index.html"));
            let pages = APP_PAGES
                .iter()
                .fold(router, |r, page| r.route_service(page, index.clone()));
            let files = ServeDir::new(dir)
                .append_index_html_on_directories(false)
                .not_found_service(routes::meta::not_found.into_service());
            pages.fallback(move |req: axum::extract::Request| web_file(files.clone(), req))
        }
        None => router.fallback(routes::meta::not_found),
    };
    let [csp, nosniff, frames, referrer] = layers::security_headers();
    let router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            layers::json_errors,
        ))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::HEAD]),
        )
        .layer(csp)
        .layer(nosniff)
        .layer(frames)
        .layer(referrer)
        // Server errors are logged where they are made (`ApiError`) or in
        // aggregate (timeouts, load shedding); one line each here as well
        // would double every flood of them.
        .layer(TraceLayer::new_for_http().on_failure(()))
        .with_state(app.clone());
    (router, app)
}

/// Serves [`router`] on `listener` with the default [`ServeConfig`] (its
/// connection cap kept within the process's open-file limit) until
/// `shutdown` resolves, then lets requests in flight finish.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let config = ServeConfig::default().within_process_limit();
    serve_with(listener, state, config, shutdown).await
}

/// Serves [`router`] on `listener` under `config` until `shutdown`
/// resolves, then lets requests in flight finish.
pub async fn serve_with<F>(
    listener: tokio::net::TcpListener,
    state: ApiState,
    config: ServeConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (router, app) = build(state, MAX_IN_FLIGHT);
    server::run(listener, router, app, config, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpool_primitives::Address;
    use proofpool_store::StoreOptions;

    /// The two tests that shed load run one at a time: tracing caches
    /// whether a log line has a subscriber per call site, and a line first
    /// met on another test's thread (which has none) would not reach the
    /// thread-local subscriber that counts lines.
    static SHEDDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// An API state over a new, empty SQLite store in a temp dir.
    async fn empty_state() -> (proofpool_devtools::TempDir, ApiState) {
        let dir = proofpool_devtools::TempDir::new("api-lib").unwrap();
        let store = Store::open(&dir.sqlite_url("api.db"), &StoreOptions::default())
            .await
            .unwrap();
        let domain = RewardDomain {
            chain_id: 1,
            distributor: Address::repeat_byte(1),
        };
        let state = ApiState::new(store, dir.path().join("epochs"), domain);
        (dir, state)
    }

    #[tokio::test]
    async fn sheds_load_beyond_the_in_flight_limit() {
        let _one_at_a_time = SHEDDING.lock().await;
        let (_dir, state) = empty_state().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/summary", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, build(state, 0).0).await.unwrap();
        });
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let body: types::ErrorBody = r.json().await.unwrap();
        assert!(
            body.error.contains("limit of 0 concurrent requests"),
            "{body:?}"
        );
        server.abort();
    }

    /// A `Write` into a shared buffer, for a subscriber whose lines a test
    /// counts.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flood_of_refused_requests_is_counted_and_logged_once() {
        // Everything runs on this thread, so the thread's subscriber sees
        // every line the server logs.
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _one_at_a_time = SHEDDING.lock().await;
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        let (_dir, state) = empty_state().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (router, app) = build(state, 0);
        let server = tokio::spawn(server::run(
            listener,
            router,
            app.clone(),
            ServeConfig::default(),
            std::future::pending(),
        ));
        let http = reqwest::Client::new();
        for _ in 0..300 {
            let r = http
                .get(format!("{base}/api/v1/summary"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        }
        let metrics = app.metrics.render(0);
        assert!(
            metrics.contains("proofpool_api_requests_rejected_total 300"),
            "{metrics}"
        );
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(warnings[0].contains("rejected=1"), "{text}");
        assert!(!text.contains("ERROR"), "{text}");
        server.abort();
    }
}
