//! The one error type of the HTTP API: `{"error":{"code","message"}}` with a fitting status.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error as documents, events and error answers carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    /// For a human.
    pub message: String,
}

impl From<ragmill_core::Failure> for ErrorBody {
    fn from(f: ragmill_core::Failure) -> Self {
        Self { code: f.code, message: f.message }
    }
}

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong: a stable snake_case `code` and a `message` for a human.
    pub error: ErrorBody,
}

/// An error answered to a client. Internal causes are logged, never shown.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up) when set.
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error with a stable `code` and a human `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// 429 with `Retry-After`: the client should wait `after` before trying again.
    pub fn too_many(code: &'static str, message: impl Into<String>, after: Duration) -> Self {
        Self { retry_after: Some(after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message) }
    }

    /// Missing, unknown or revoked credentials: one answer for all three.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer KEY",
        )
    }

    /// Something the user does not have (or that belongs to someone else: same answer).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }

    /// A malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A failure on our side; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = ErrorBody { code: self.code.to_owned(), message: self.message };
        let mut response = (self.status, Json(ErrorResponse { error })).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, at least one: a client told 0 would retry at once.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<ragmill_store::StoreError> for ApiError {
    fn from(e: ragmill_store::StoreError) -> Self {
        match e {
            e @ ragmill_store::StoreError::ModelMismatch { .. } => {
                Self::new(StatusCode::CONFLICT, "model_mismatch", e.to_string())
            }
            e @ ragmill_store::StoreError::LastAdmin => {
                Self::new(StatusCode::CONFLICT, "last_admin", e.to_string())
            }
            e => Self::internal(e),
        }
    }
}

impl From<ragmill_core::QueueError> for ApiError {
    fn from(e: ragmill_core::QueueError) -> Self {
        match e {
            e @ ragmill_core::QueueError::Unavailable(_) => {
                tracing::warn!(error = %e, "job queue unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    "the job queue is unavailable; try again shortly",
                )
            }
            e => Self::internal(e),
        }
    }
}

impl From<ragmill_core::BusError> for ApiError {
    fn from(e: ragmill_core::BusError) -> Self {
        tracing::warn!(error = %e, "event bus unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "events_unavailable",
            "live events are unavailable; try again shortly",
        )
    }
}

impl From<ragmill_pipeline::SearchError> for ApiError {
    fn from(e: ragmill_pipeline::SearchError) -> Self {
        use ragmill_core::IndexError;
        use ragmill_pipeline::SearchError;
        match e {
            SearchError::Store(e) => e.into(),
            SearchError::Embed(e) => {
                tracing::warn!(error = %e, "cannot embed a query");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "embedding_unavailable",
                    format!("the query could not be embedded, try again shortly: {e}"),
                )
            }
            SearchError::Index(IndexError::Unavailable(why)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vector_index_unavailable",
                format!("the vector index is unavailable, try again shortly: {why}"),
            ),
            e => Self::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            ),
            r => Self::bad_request("invalid_json", r.body_text()),
        }
    }
}

/// Runs blocking store or queue work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)
}
