//! `POST /v1/documents/chunked`: documents extracted and chunked by the client
//! (`ragmill ingest --server`), embedded and stored here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ragmill_core::DocumentId;
use ragmill_pipeline::{IngestError, Prechunked};
use ragmill_store::Timings;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;

/// Most chunks one request may carry.
const MAX_CHUNKS: usize = 100_000;

/// What became of a pre-chunked document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkedResponse {
    /// The document's id.
    #[schema(value_type = i64)]
    pub id: DocumentId,
    /// Chunks stored.
    pub chunks: usize,
    /// Distinct chunk texts embedded now.
    pub embedded: usize,
    /// Chunks whose vector came from the cache.
    pub cache_hits: usize,
    /// True when the same bytes were already stored and nothing was done.
    pub unchanged: bool,
    /// Seconds per stage on the server.
    #[schema(value_type = Object)]
    pub timings: Timings,
}

/// Stores a document the client has already extracted and chunked: the server checks each
/// chunk against the model's window with its own tokenizer, embeds what the cache lacks (in
/// the same batches as every other document) and replaces any older version atomically.
#[utoipa::path(
    post,
    path = "/v1/documents/chunked",
    tag = "documents",
    responses(
        (status = 200, description = "Stored (or unchanged)", body = ChunkedResponse),
        (status = 400, description = "`invalid_request` or `invalid_file_name`", body = crate::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = crate::ErrorResponse),
        (status = 409, description = "`model_mismatch`: the collection was built with another model", body = crate::ErrorResponse),
        (status = 422, description = "`no_text` or `chunk_too_long`", body = crate::ErrorResponse),
        (status = 502, description = "`embedding_failed`", body = crate::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn chunked(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(doc): ApiJson<Prechunked>,
) -> Result<Json<ChunkedResponse>, ApiError> {
    check_name(&doc.name)?;
    if doc.chunks.len() > MAX_CHUNKS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{} chunks in one document; the limit is {MAX_CHUNKS}", doc.chunks.len()),
        ));
    }
    let name = doc.name.clone();
    let done = state.pipeline.ingest_prechunked(user, doc, &|_| {}).await.map_err(doc_error)?;
    tracing::info!(document = %name, chunks = done.chunks, embedded = done.embedded, "stored pre-chunked document");
    Ok(Json(ChunkedResponse {
        id: done.id,
        chunks: done.chunks,
        embedded: done.embedded,
        cache_hits: done.cache_hits,
        unchanged: done.unchanged,
        timings: done.timings,
    }))
}

/// A stored name: a relative path of 1-1024 printable characters, without `.`/`..` parts.
fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = name.is_empty()
        || name.len() > 1024
        || name.chars().any(char::is_control)
        || name.starts_with('/')
        || name.split(['/', '\\']).any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            "a document name is a relative path of 1-1024 printable characters without . or .. parts",
        ));
    }
    Ok(())
}

fn doc_error(e: IngestError) -> ApiError {
    let status = match &e {
        IngestError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        IngestError::ModelMismatch(_) => StatusCode::CONFLICT,
        IngestError::NoText | IngestError::ChunkTooLong { .. } | IngestError::Chunking { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        IngestError::Embedding(_) => StatusCode::BAD_GATEWAY,
        e => return ApiError::internal(e),
    };
    ApiError::new(status, e.code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_paths_without_dot_parts() {
        for ok in ["a.md", "notes/2024/a.md", "ünïcode.txt"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "a\nb", "./a"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
