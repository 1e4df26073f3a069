//! Errors as HTTP answers: a status and a JSON [`ErrorBody`].

use crate::types::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proofpool_store::StoreError;

/// Why a request failed; becomes a JSON `{ "error", "parameter" }` answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed: 400.
    #[error("{message}")]
    BadInput {
        /// The parameter at fault.
        parameter: &'static str,
        /// Why, in words.
        message: String,
    },
    /// The thing asked for does not exist: 404.
    #[error("{message}")]
    NotFound {
        /// The parameter that named it, if any.
        parameter: Option<&'static str>,
        /// What is missing, in words.
        message: String,
    },
    /// The store failed: 503 when the database did (another try may
    /// succeed), 500 when its data does not decode.
    #[error("pool database: {0}")]
    Store(#[from] StoreError),
    /// The server's own data or configuration is inconsistent: 500.
    #[error("{0}")]
    Internal(String),
    /// Too many requests in flight: 503.
    #[error("the API is at its limit of {0} concurrent requests; retry shortly")]
    Busy(usize),
}

impl ApiError {
    /// A 400 for `parameter`.
    pub(crate) fn bad(parameter: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            parameter,
            message: message.into(),
        }
    }

    /// A 404 named by `parameter`.
    pub(crate) fn not_found(parameter: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            parameter: Some(parameter),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadInput { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Store(StoreError::Db(_)) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let parameter = match self {
            Self::BadInput { parameter, .. } => Some(*parameter),
            Self::NotFound { parameter, .. } => *parameter,
            _ => None,
        };
        ErrorBody {
            error: self.to_string(),
            parameter: parameter.map(str::to_owned),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Busy answers are counted and logged in aggregate where they are
        // made (a flood of them would otherwise be a flood of lines).
        if status.is_server_error() && !matches!(self, Self::Busy(_)) {
            tracing::warn!(error = %self, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}
