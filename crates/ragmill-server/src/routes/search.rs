//! `POST /v1/search` and `GET /v1/rag/status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ragmill_core::DocumentId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::error::{ApiError, blocking};
use crate::routes::ApiJson;
use crate::state::AppState;

/// The search request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Results wanted (1-100, default 5).
    pub top_k: Option<usize>,
    /// Only these documents.
    pub documents: Option<Vec<DocumentId>>,
}

/// `POST /v1/search`.
pub async fn search(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_query", "query must not be empty"));
    }
    let top_k = req.top_k.unwrap_or(5);
    if !(1..=100).contains(&top_k) {
        return Err(ApiError::bad_request("invalid_top_k", "top_k must be between 1 and 100"));
    }
    let hits = ragmill_pipeline::search(
        &state.store,
        state.pipeline.embedder().as_ref(),
        user,
        &req.query,
        top_k,
        req.documents,
    )
    .await?;
    let results: Vec<Value> = hits
        .iter()
        .map(|h| json!({"document": h.document, "document_id": h.document_id, "chunk": h.chunk, "score": h.score, "text": h.text, "page": h.page, "heading_path": h.heading_path}))
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// `GET /v1/rag/status`.
pub async fn rag_status(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(&state.store);
    let status = blocking(move || store.user(user).rag_status()).await??;
    Ok(Json(serde_json::to_value(status).map_err(ApiError::internal)?))
}
