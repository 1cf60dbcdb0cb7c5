//! `POST /v1/search` and `GET /v1/rag/status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ragmill_core::DocumentId;
use ragmill_pipeline::{SearchMode, SearchOptions};
use ragmill_store::{RagStatus, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::routes::ApiJson;
use crate::state::AppState;

/// The search request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for (not empty).
    pub query: String,
    /// Results wanted (1-100, default 5). Any JSON number is read, so that one out of range
    /// is answered `invalid_top_k` rather than `invalid_json`.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100, default = 5)]
    pub top_k: Option<serde_json::Number>,
    /// Only these documents (ids).
    #[schema(value_type = Option<Vec<i64>>)]
    pub documents: Option<Vec<DocumentId>>,
    /// `vector` (meaning), `keyword` (BM25 over the words: names, codes, rare terms) or
    /// `hybrid` (both, fused by reciprocal rank). Default: the server's (`hybrid` unless
    /// configured otherwise).
    #[schema(value_type = Option<String>, example = "hybrid")]
    pub mode: Option<String>,
}

/// The answer to a search: the best chunks, best first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The mode that answered.
    #[schema(value_type = String, example = "hybrid")]
    pub mode: SearchMode,
    /// Best first.
    pub results: Vec<SearchResult>,
}

/// One chunk found by a search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchResult {
    /// The document's name.
    pub document: String,
    /// The document's id.
    #[schema(value_type = i64)]
    pub document_id: DocumentId,
    /// The chunk's ordinal within its document.
    pub chunk: u32,
    /// What results are ordered by: cosine similarity (`vector`), BM25 (`keyword`), the fused
    /// score in (0, 1] (`hybrid`), or the reranker's score when one is configured.
    pub score: f32,
    /// Each retriever's own score, where it found the chunk.
    pub scores: ResultScores,
    /// The chunk's text.
    pub text: String,
    /// The page the chunk starts on (PDF), or null.
    pub page: Option<u32>,
    /// The headings enclosing the chunk, outermost first.
    pub heading_path: Vec<String>,
}

/// Each retriever's score for one result; absent where that retriever did not find it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct ResultScores {
    /// Cosine similarity of the query's and the chunk's vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<f32>,
    /// BM25 of the query's words in the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<f32>,
    /// The reranker's relevance score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
}

impl From<SearchHit> for SearchResult {
    fn from(h: SearchHit) -> Self {
        Self {
            document: h.document,
            document_id: h.document_id,
            chunk: h.chunk,
            score: h.score,
            scores: ResultScores {
                vector: h.scores.vector,
                keyword: h.scores.keyword,
                rerank: h.scores.rerank,
            },
            text: h.text,
            page: h.page,
            heading_path: h.heading_path,
        }
    }
}

/// Whether the user's collection can answer searches yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct RagStatusView {
    /// True when at least one chunk is searchable.
    pub available: bool,
    /// Documents in the ready state.
    pub documents_ready: u64,
    /// Documents queued or processing.
    pub documents_processing: u64,
}

impl From<RagStatus> for RagStatusView {
    fn from(s: RagStatus) -> Self {
        let RagStatus { available, documents_ready, documents_processing } = s;
        Self { available, documents_ready, documents_processing }
    }
}

/// `POST /v1/search`.
#[utoipa::path(
    post,
    path = "/v1/search",
    operation_id = "search",
    summary = "Search the user's ready documents",
    description = "Finds the user's best chunks for the query, optionally only in `documents`: by meaning (`mode: vector`: the query's embedding against the chunks'), by words (`keyword`: BM25) or both fused by reciprocal rank (`hybrid`, the default), reranked when the server has a reranker.",
    tag = "search",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The best chunks of the user's ready documents, best first", body = SearchResponse),
        (status = 400, description = "`invalid_query`, `invalid_top_k`, `invalid_mode` or `invalid_json`", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 409, description = "`model_mismatch`: the collection was built with another embedding model", body = ErrorResponse),
        (status = 413, description = "`body_too_large`", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`: the body must be sent as application/json", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
        (status = 503, description = "`embedding_unavailable` or `vector_index_unavailable`: try again later", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn search(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_query", "query must not be empty"));
    }
    let top_k = top_k(req.top_k.as_ref())?;
    let mode = mode(req.mode.as_deref())?.unwrap_or(state.pipeline.retrieval().default_mode);
    let options = SearchOptions { top_k, mode: Some(mode), documents: req.documents };
    let hits = state.pipeline.search(user, &req.query, options).await?;
    Ok(Json(SearchResponse { mode, results: hits.into_iter().map(SearchResult::from).collect() }))
}

/// The search mode asked for, if any: `vector`, `keyword` or `hybrid`.
pub fn mode(given: Option<&str>) -> Result<Option<SearchMode>, ApiError> {
    given
        .map(|m| {
            m.parse().map_err(|message: String| ApiError::bad_request("invalid_mode", message))
        })
        .transpose()
}

/// The results wanted: an integer from 1 to 100, 5 when not given.
fn top_k(given: Option<&serde_json::Number>) -> Result<usize, ApiError> {
    let Some(n) = given else { return Ok(5) };
    match n.as_u64().filter(|k| (1..=100).contains(k)) {
        Some(k) => Ok(k as usize),
        None => Err(ApiError::bad_request(
            "invalid_top_k",
            format!("top_k must be an integer from 1 to 100, not {n}"),
        )),
    }
}

/// `GET /v1/rag/status`.
#[utoipa::path(
    get,
    path = "/v1/rag/status",
    operation_id = "getRagStatus",
    summary = "Whether the user's collection is searchable yet",
    tag = "search",
    responses(
        (status = 200, description = "Whether the user's collection is searchable yet", body = RagStatusView),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn rag_status(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<RagStatusView>, ApiError> {
    let store = Arc::clone(&state.store);
    let status = blocking(move || store.user(user).rag_status()).await??;
    Ok(Json(status.into()))
}
