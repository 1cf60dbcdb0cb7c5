//! The router: one module per resource.

pub mod documents;
pub mod events;
pub mod search;

use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{ApiError, blocking};
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
    let documents = Router::new()
        .route("/v1/documents", post(documents::upload).get(documents::list))
        .layer(DefaultBodyLimit::max(upload_limit));
    let api = Router::new()
        .route("/v1/documents/{id}", get(documents::get).delete(documents::delete))
        .route("/v1/documents/{id}/reprocess", post(documents::reprocess))
        .route("/v1/search", post(search::search))
        .route("/v1/rag/status", get(search::rag_status))
        .route("/v1/events", get(events::events))
        .route("/v1/events/token", post(events::token))
        .layer(DefaultBodyLimit::max(json_limit));
    Router::new()
        .merge(documents)
        .merge(api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Ready when the database answers.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let queue = std::sync::Arc::clone(&state.queue);
    let depth = blocking(move || queue.depth()).await??;
    Ok(Json(
        json!({"status": "ready", "queue": {"queued": depth.queued, "leased": depth.leased, "parked": depth.parked}}),
    ))
}

/// Every metric in the OpenMetrics text format; no auth, like `/healthz` (it names no user,
/// document or content). Document and queue levels are read now.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let (queue, store) = (std::sync::Arc::clone(&state.queue), std::sync::Arc::clone(&state.store));
    let (depth, documents) = blocking(move || (queue.depth(), store.document_counts())).await?;
    let body = state
        .metrics
        .encode(&documents?, depth?)
        .map_err(|e| ApiError::internal(format_args!("cannot encode metrics: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}
