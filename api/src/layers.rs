//! What every answer gets on its way out: the security headers, and a JSON
//! [`ErrorBody`] for every error, whoever made it.
//!
//! Handlers answer errors with [`ApiError`](crate::ApiError), which is JSON
//! already. The errors made around them are not: axum's 405 for a method a
//! route does not take, tower-http's 503 when a request times out, the file
//! service's 404s and 416s. [`json_errors`] gives those the same shape. The
//! errors hyper makes itself, before there is a request to route (a request
//! head that is not HTTP, too long or with too many headers), are rewritten
//! on the socket by [`crate::server`].

use crate::Shared;
use crate::types::ErrorBody;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use proofpool_primitives::Excerpt;
use std::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;

/// The web app's Content-Security-Policy.
///
/// - Scripts, styles and fonts come from this origin only, with no inline
///   code: the built app has none, and an injected `<script>` runs nowhere.
/// - Images may be `data:` URLs: the favicon is one, and EIP-6963 wallets
///   announce their icons that way.
/// - Connections go to this origin (the API), to any `https:` JSON-RPC
///   endpoint (`rpcUrl` in `config.json`, or the one a user sets on the
///   auditor page), and to loopback over plain HTTP for a local node (the
///   devnet's anvil).
/// - Wallets inject their provider from the extension (content scripts are
///   not bound by the page's policy), so nothing here needs loosening for
///   them; the Chromium claim test runs with this policy on.
/// - No page may frame this one (`frame-ancestors 'none'`, with
///   `X-Frame-Options: DENY` for older browsers): a framed claim button is
///   a clickjacking target.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; \
    connect-src 'self' https: http://127.0.0.1:* http://localhost:*; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers on every answer: the app's and the API's alike (a JSON error
/// must not be sniffed into HTML either).
pub(crate) const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// tower-http's layers that set [`SECURITY_HEADERS`] unless a handler set
/// one itself.
pub(crate) fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    SECURITY_HEADERS.map(|(name, value)| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    })
}

/// Middleware: an error answer that is not JSON gets an [`ErrorBody`] in
/// place of its body (empty or plain text), keeping its status and headers
/// (`Allow` on a 405, `Content-Range` on a 416).
pub(crate) async fn json_errors(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = response
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("GET, HEAD");
            format!(
                "{} is not allowed on {}; it answers {allow}",
                Excerpt::new(method.as_str()),
                Excerpt::new(&path)
            )
        }
        StatusCode::NOT_FOUND => format!("nothing at {}", Excerpt::new(&path)),
        StatusCode::SERVICE_UNAVAILABLE => {
            // The only 503 that is not an `ApiError`: tower-http's timeout.
            if let Some(n) = app.metrics.timeout_log.hit(Instant::now()) {
                tracing::warn!(
                    timed_out = n,
                    limit = ?crate::REQUEST_TIMEOUT,
                    "requests answered 503 after the request timeout"
                );
            }
            format!(
                "the request took longer than {} s and was abandoned; retry shortly",
                crate::REQUEST_TIMEOUT.as_secs()
            )
        }
        other => other
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    let body = axum::Json(ErrorBody {
        error,
        parameter: None,
    })
    .into_response();
    let (json_parts, json) = body.into_parts();
    if let Some(ct) = json_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    if method == Method::HEAD {
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, json)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}
