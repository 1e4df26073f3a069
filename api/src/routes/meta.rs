//! The OpenAPI document, metrics, health and the JSON 404s.

use crate::Shared;
use crate::error::ApiError;
use crate::types::ErrorBody;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use proofpool_primitives::Excerpt;

/// The OpenAPI 3.1 document of this API, generated from the handlers.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn openapi(State(app): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openapi.clone(),
    )
        .into_response()
}

/// Prometheus metrics of this API replica (text format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(app): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(app.trees.len()),
    )
        .into_response()
}

/// 200 when the database answers, 503 when it does not.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "Ready", content_type = "text/plain"),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn health(State(app): State<Shared>) -> Result<&'static str, ApiError> {
    app.state.store.ping().await?;
    Ok("ok\n")
}

/// Unknown paths under `/api`: a JSON 404, never the web app.
pub(crate) async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::NotFound {
        parameter: None,
        message: format!(
            "no API endpoint at {}; see /api/openapi.json for the routes",
            Excerpt::new(uri.path())
        ),
    }
}

/// Any other unknown path: neither an API route, nor one of the web app's
/// files or pages.
pub(crate) async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(ErrorBody {
            error: format!("nothing at {}", Excerpt::new(uri.path())),
            parameter: None,
        }),
    )
        .into_response()
}
