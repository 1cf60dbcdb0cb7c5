//! The router: one module per resource; the embedding API (`crate::embeddings`) is merged in.

pub mod admin;
pub mod batch;
pub mod chat;
pub mod chunked;
pub mod conversations;
pub mod documents;
pub mod events;
pub mod internal;
pub mod listing;
pub mod original;
pub mod search;
pub mod stats;

use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::embeddings::EmbeddingService;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::limits;
use crate::state::AppState;

/// JSON body whose rejections speak the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let upload_limit =
        usize::try_from(state.config.max_upload_bytes).unwrap_or(usize::MAX).saturating_mul(16);
    let json_limit = state.config.max_json_bytes;
    let rate_limit = middleware::from_fn_with_state(state.clone(), limits::rate_limit);
    let documents = Router::new()
        .route("/v1/documents", post(documents::upload).get(documents::list))
        .route("/v1/documents/chunked", post(chunked::chunked))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(rate_limit.clone());
    let api = Router::new()
        .route("/v1/documents/{id}", get(documents::get).delete(documents::delete))
        .route("/v1/documents/{id}/reprocess", post(documents::reprocess))
        .route("/v1/documents/{id}/cancel", post(batch::cancel_one))
        .route("/v1/documents/{id}/pause", post(batch::pause_one))
        .route("/v1/documents/{id}/resume", post(batch::resume_one))
        .route("/v1/documents/cancel", post(batch::cancel_many))
        .route("/v1/documents/pause", post(batch::pause_many))
        .route("/v1/documents/resume", post(batch::resume_many))
        .route("/v1/documents/retry", post(batch::retry_many))
        .route("/v1/documents/{id}/file", get(original::file))
        .route("/v1/documents/{id}/file/link", post(original::link))
        .route("/v1/search", post(search::search))
        .route("/v1/rag/status", get(search::rag_status))
        .route("/v1/chat", get(chat::status).post(chat::chat))
        .route("/v1/conversations", get(conversations::list).post(conversations::create))
        .route("/v1/admin/users", get(admin::users).post(admin::create))
        .route("/v1/admin/users/{id}", axum::routing::patch(admin::change))
        .route("/v1/admin/users/{id}/keys", post(admin::new_key))
        .route("/v1/admin/users/{id}/revoke", post(admin::revoke))
        .route("/v1/admin/settings", get(admin::settings))
        .route(
            "/v1/conversations/{id}",
            get(conversations::get).patch(conversations::rename).delete(conversations::delete),
        )
        .route("/v1/stats", get(stats::stats))
        .route("/v1/stats/history", get(stats::history))
        .route("/v1/me", get(stats::me))
        .route("/v1/events", get(events::events))
        .route("/v1/events/token", post(events::token))
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(rate_limit);
    // Processed versions carry every chunk's vector: far larger than a user's JSON.
    let internal = Router::new()
        .route("/internal/v1/stored", post(internal::stored))
        .route("/internal/v1/cached", post(internal::cached))
        .route("/internal/v1/remember", post(internal::remember))
        .route("/internal/v1/finish", post(internal::finish))
        .route("/internal/v1/fail", post(internal::fail))
        .route("/internal/v1/begin", post(internal::begin))
        .route("/internal/v1/requeued", post(internal::requeued))
        .route("/internal/v1/wanted", post(internal::wanted))
        .route("/internal/v1/give-up", post(internal::give_up))
        .route("/internal/v1/originals/{hash}", get(internal::original))
        .layer(DefaultBodyLimit::max(upload_limit.max(512 << 20)));
    let embeddings = crate::embeddings::router(EmbeddingService::for_app(&state));
    Router::new()
        .merge(documents)
        .merge(api)
        .merge(internal)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .merge(crate::web::router())
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
        .merge(embeddings)
        // Outermost: every answer, the embedding routes' and the fallback's included.
        .layer(middleware::from_fn(limits::json_errors))
        .layer(middleware::from_fn(limits::head_limits))
}

/// Alive: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness probe",
    tag = "probes",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")),
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The answer of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready` (otherwise the answer is an error).
    pub status: String,
    /// Jobs in the durable queue, all users together.
    pub queue: QueueDepth,
    /// Where vectors are searched (`embedded` or `chroma`); it answered.
    pub vectors: String,
}

/// Jobs in the durable queue by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueDepth {
    /// Waiting for a worker (including those backing off after a failure).
    pub queued: u64,
    /// Held by a worker.
    pub leased: u64,
    /// Given up after too many failed attempts.
    pub parked: u64,
}

/// Ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness probe: the database answers",
    tag = "probes",
    responses(
        (status = 200, description = "The database answers", body = Readiness),
        (status = 500, description = "It does not", body = ErrorResponse),
        (status = 503, description = "`vector_index_unavailable`: the external vector index (ChromaDB) does not answer", body = ErrorResponse),
    ),
)]
pub async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<Readiness>, ApiError> {
    let depth = state.queue.depth().await?;
    let ragmill_core::Depth { queued, leased, parked } = depth;
    let mut vectors = "embedded".to_owned();
    if let Some(index) = state.pipeline.vector_index() {
        vectors = index.backend().to_owned();
        let answered =
            tokio::time::timeout(std::time::Duration::from_secs(3), index.health()).await;
        let why = match answered {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("the {vectors} vector index did not answer within 3 s")),
        };
        if let Some(why) = why {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "vector_index_unavailable",
                why,
            ));
        }
    }
    Ok(Json(Readiness {
        status: "ready".into(),
        queue: QueueDepth { queued, leased, parked },
        vectors,
    }))
}

/// Every metric in the OpenMetrics text format; no auth, like `/healthz` (it names no user,
/// document or content). Document and queue levels are read now.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    summary = "Metrics in the OpenMetrics text format",
    description = "Document and queue levels are read at the request; no auth (nothing in it names a user, a document or content).",
    tag = "probes",
    responses(
        (status = 200, description = "Every metric in the OpenMetrics text format", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
)]
pub async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let store = std::sync::Arc::clone(&state.store);
    let documents = blocking(move || store.document_counts()).await??;
    let depth = state.queue.depth().await?;
    let body = state
        .metrics
        .encode(&documents, depth, state.activity.service_busy())
        .map_err(|e| ApiError::internal(format_args!("cannot encode metrics: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}
