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
//! - anything else: the web app's files from [`ApiState::web_dir`], with
//!   `index.html` for unknown paths (client-side routing).
//!
//! Bad input is answered with 400 and a JSON [`types::ErrorBody`] naming the
//! parameter; unknown epochs and addresses with nothing to claim with 404.
//! No answer ever carries a worker's IP address: the store does not even
//! keep them.

mod error;
mod metrics;
mod onchain;
mod openapi;
mod params;
mod proofs;
mod routes;
pub mod types;

pub use error::ApiError;
pub use openapi::ApiDoc;

use alloy::transports::http::reqwest::Url;
use axum::Router;
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
    pub(crate) chain: Option<onchain::ChainReader>,
    pub(crate) openapi: String,
}

/// The shared handle handlers get.
pub(crate) type Shared = Arc<App>;

/// The API's routes, the web app's files and the metrics, request-timeout,
/// CORS and tracing layers.
pub fn router(state: ApiState) -> Router {
    build(state, MAX_IN_FLIGHT)
}

fn build(state: ApiState, max_in_flight: usize) -> Router {
    let web_dir = state.web_dir.clone();
    let chain = state
        .chain_rpc_url
        .clone()
        .map(|url| onchain::ChainReader::new(url, state.domain.distributor));
    let app = Arc::new(App {
        state,
        metrics: metrics::Metrics::new(max_in_flight),
        trees: proofs::TreeCache::default(),
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
        .route("/api/v1/chain", get(routes::chain::chain))
        .route("/api/openapi.json", get(routes::meta::openapi))
        .route("/metrics", get(routes::meta::metrics))
        .route("/healthz", get(routes::meta::health))
        .route("/api", any(routes::meta::api_not_found))
        .route("/api/{*rest}", any(routes::meta::api_not_found));
    let router = match web_dir {
        Some(dir) => {
            let index = ServeFile::new(dir.join("index.html"));
            router.fallback_service(ServeDir::new(dir).fallback(index))
        }
        None => router.fallback(routes::meta::not_found),
    };
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::HEAD]),
        )
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofpool_primitives::Address;
    use proofpool_store::StoreOptions;

    #[tokio::test]
    async fn sheds_load_beyond_the_in_flight_limit() {
        let dir = proofpool_devtools::TempDir::new("api-busy").unwrap();
        let store = Store::open(&dir.sqlite_url("busy.db"), &StoreOptions::default())
            .await
            .unwrap();
        let domain = RewardDomain {
            chain_id: 1,
            distributor: Address::repeat_byte(1),
        };
        let state = ApiState::new(store, dir.path().join("epochs"), domain);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/summary", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, build(state, 0)).await.unwrap();
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
}
