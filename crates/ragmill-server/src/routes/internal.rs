//! `/internal/v1`: what a `ragmill worker` on another machine needs from the main server — the
//! [`Catalog`] and [`JobSource`] seams over HTTP, and nothing else.
//!
//! Authenticated by the cluster's worker key (`Authorization: Bearer`, compared by BLAKE3
//! hash), which is not a user's key: the public API refuses it, and these routes refuse users'
//! keys. Every route answers 404 when no worker key is configured (a single-machine server has
//! no internal surface). Errors are the API's `{"error":{"code","message"}}`, with the codes the
//! client turns back into [`CatalogError`]s: `document_gone` (410), `model_mismatch` (409).

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ragmill_core::{
    Begun, Catalog, CatalogError, ContentHash, DocumentId, FailedVersion, Finished, JobSource,
    StoredVersion, UserId,
};
use ragmill_pipeline::LocalCatalog;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// A request from a cluster worker (its key checked).
pub struct WorkerAuth;

impl FromRequestParts<AppState> for WorkerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(want) = state.config.worker_key_hash else {
            return Err(ApiError::not_found("route"));
        };
        let got = crate::auth::bearer(&parts.headers).map(|k| blake3::hash(k.as_bytes()));
        // blake3::Hash compares in constant time.
        if got == Some(blake3::Hash::from_bytes(want)) {
            Ok(WorkerAuth)
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid worker key is required: Authorization: Bearer KEY",
            ))
        }
    }
}

fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        e @ CatalogError::Gone(_) => {
            ApiError::new(StatusCode::GONE, "document_gone", e.to_string())
        }
        CatalogError::ModelMismatch(m) => ApiError::new(StatusCode::CONFLICT, "model_mismatch", m),
        CatalogError::IndexUnavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "vector_index_unavailable", m)
        }
        e => ApiError::internal(e),
    }
}

/// The store as remote workers write to it; their outcomes are logged as a `remote worker`'s.
fn catalog(state: &AppState) -> Result<LocalCatalog, ApiError> {
    let catalog = state.pipeline.local_catalog().ok_or_else(|| ApiError::internal("no store"))?;
    Ok(catalog.by(REMOTE_WORKER))
}

/// Who a remote worker's outcomes are logged as in the processing log.
pub const REMOTE_WORKER: &str = "remote worker";

/// `{user, name}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredRequest {
    /// The owner.
    pub user: UserId,
    /// The document's name.
    pub name: String,
}

/// `POST /internal/v1/stored`.
pub async fn stored(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<StoredRequest>,
) -> Result<Json<Option<StoredVersion>>, ApiError> {
    Ok(Json(catalog(&state)?.stored(r.user, &r.name).await.map_err(catalog_error)?))
}

/// `{user, model, hashes}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CachedRequest {
    /// Whose cache: each user's is their own.
    pub user: UserId,
    /// The model id.
    pub model: String,
    /// Chunk-text hashes.
    pub hashes: Vec<ContentHash>,
}

/// `POST /internal/v1/cached`: `[[hash, vector], …]` for the hashes found.
pub async fn cached(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<CachedRequest>,
) -> Result<Json<Vec<(ContentHash, Vec<f32>)>>, ApiError> {
    let found = catalog(&state)?.cached(r.user, &r.model, r.hashes).await.map_err(catalog_error)?;
    Ok(Json(found.into_iter().collect()))
}

/// `{user, model, vectors}`: vectors a worker just embedded for a version still in progress.
#[derive(Debug, Serialize, Deserialize)]
pub struct RememberRequest {
    /// Whose document they were embedded for, so whose cache keeps them.
    pub user: UserId,
    /// The model id.
    pub model: String,
    /// `[[hash, vector], …]`.
    pub vectors: Vec<(ContentHash, Vec<f32>)>,
}

/// `POST /internal/v1/remember`: caches a worker's vectors before its version is finished
/// (`Catalog::remember`), so a version stopped midway embeds only the rest when it runs anew.
pub async fn remember(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<RememberRequest>,
) -> Result<StatusCode, ApiError> {
    catalog(&state)?.remember(r.user, &r.model, r.vectors).await.map_err(catalog_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{user, version}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserVersion<V> {
    /// The owner.
    pub user: UserId,
    /// The version.
    pub version: V,
}

/// `POST /internal/v1/finish`: stores a processed version; answers its document id.
pub async fn finish(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<UserVersion<Finished>>,
) -> Result<Json<DocumentId>, ApiError> {
    Ok(Json(catalog(&state)?.finish(r.user, r.version).await.map_err(catalog_error)?))
}

/// `POST /internal/v1/fail`: records a failed version; answers its document id.
pub async fn fail(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<UserVersion<FailedVersion>>,
) -> Result<Json<DocumentId>, ApiError> {
    Ok(Json(catalog(&state)?.fail(r.user, r.version).await.map_err(catalog_error)?))
}

/// `{user, document}`, with `code` and `message` for give-up.
#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentRequest {
    /// The owner.
    pub user: UserId,
    /// The document.
    pub document: DocumentId,
    /// For give-up: the stable code.
    #[serde(default)]
    pub code: String,
    /// For give-up: the message.
    #[serde(default)]
    pub message: String,
}

/// `POST /internal/v1/begin`: marks the document processing; `null` if it is gone.
pub async fn begin(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<DocumentRequest>,
) -> Result<Json<Option<Begun>>, ApiError> {
    Ok(Json(state.jobs.begin(r.user, r.document).await.map_err(catalog_error)?))
}

/// `POST /internal/v1/requeued`.
pub async fn requeued(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<DocumentRequest>,
) -> Result<StatusCode, ApiError> {
    state.jobs.requeued(r.user, r.document).await.map_err(catalog_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/v1/wanted`: whether the document is still to be processed (`true`/`false`).
pub async fn wanted(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<DocumentRequest>,
) -> Result<Json<bool>, ApiError> {
    Ok(Json(state.jobs.wanted(r.user, r.document).await.map_err(catalog_error)?))
}

/// `POST /internal/v1/give-up`.
pub async fn give_up(
    State(state): State<AppState>,
    _: WorkerAuth,
    Json(r): Json<DocumentRequest>,
) -> Result<StatusCode, ApiError> {
    state.jobs.give_up(r.user, r.document, &r.code, &r.message).await.map_err(catalog_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /internal/v1/originals/{hash}`: the original's bytes, streamed.
pub async fn original(
    State(state): State<AppState>,
    _: WorkerAuth,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let hash = ContentHash::from_hex(&hash).map_err(|_| ApiError::not_found("original"))?;
    let file = tokio::fs::File::open(state.blobs.path(&hash))
        .await
        .map_err(|_| ApiError::not_found("original"))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}
