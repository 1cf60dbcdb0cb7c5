//! Stopping, pausing, resuming and retrying documents, one or many:
//! `POST /v1/documents/{id}/{cancel,pause,resume}`, `POST /v1/documents/{cancel,pause,resume}`
//! and `POST /v1/documents/retry`.
//!
//! Cancelling really stops the work: the document ends failed with `cancelled` (an older
//! searchable version stays), its queued job is dropped, and a worker processing it notices
//! within half a second and drops the work (nothing of the version is written: a version is
//! stored in one transaction at its end; texts still queued for embedding are dropped).
//! Pausing stops it the same way but holds the document as `paused` instead of ending it, and
//! resuming queues it again: a document that was being processed starts over, but the chunks
//! it had embedded come from the embedding cache (kept every 256 as they are embedded), so
//! little is embedded twice; one that was waiting loses nothing.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ragmill_core::{DocumentId, UserId};
use ragmill_store::{DocumentRecord, DocumentState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::error::blocking;
use crate::routes::ApiJson;
use crate::routes::documents::{check_pending, find, pending};
use crate::state::AppState;

/// Which documents a bulk operation applies to: the listed ones, or every one it can.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Selection {
    /// These documents (others' ids are skipped, as if they did not exist).
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
    /// Every document the operation applies to (waiting, in processing or paused for cancel;
    /// waiting or in processing for pause; paused for resume; failed for retry).
    #[serde(default)]
    pub all: bool,
}

/// What a bulk operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct BulkResult {
    /// Documents it applied to.
    pub done: u64,
    /// Selected documents it did not apply to (already ended, or not failed).
    pub skipped: u64,
}

/// What one per-document operation does, and to which documents it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Cancel,
    Pause,
    Resume,
    Retry,
}

impl Op {
    /// Whether `doc` is in a state this operation applies to.
    fn applies(self, doc: &DocumentRecord) -> bool {
        match self {
            Op::Cancel => matches!(
                doc.state,
                DocumentState::Queued | DocumentState::Processing | DocumentState::Paused
            ),
            Op::Pause => matches!(doc.state, DocumentState::Queued | DocumentState::Processing),
            Op::Resume => doc.state == DocumentState::Paused,
            // Its last version failed: failed, or ready with an error (an older version).
            Op::Retry => {
                matches!(doc.state, DocumentState::Failed | DocumentState::Ready)
                    && doc.error.is_some()
            }
        }
    }

    /// Whether it queues documents, and so counts against the user's pending limit.
    fn queues(self) -> bool {
        matches!(self, Op::Resume | Op::Retry)
    }

    /// Applies it to `doc` through the ledger; false if the document had moved on meanwhile.
    async fn apply(
        self,
        state: &AppState,
        user: UserId,
        doc: &DocumentRecord,
    ) -> Result<bool, ApiError> {
        match self {
            Op::Cancel => state.ledger.cancel(user, doc.id).await,
            Op::Pause => state.ledger.pause(user, doc.id).await,
            Op::Resume => state.ledger.resume(user, doc.id, doc.size).await,
            Op::Retry => state.ledger.reprocess(user, doc.id, doc.size).await.map(|()| true),
        }
    }

    /// 409 for a document this operation does not apply to.
    fn conflict(self, doc: &DocumentRecord) -> ApiError {
        let (code, wants) = match self {
            Op::Cancel => (
                "not_in_progress",
                "only a waiting, processing or paused document can be cancelled",
            ),
            Op::Pause => ("not_in_progress", "only a waiting or processing document can be paused"),
            Op::Resume => ("not_paused", "only a paused document can be resumed"),
            Op::Retry => ("not_failed", "only a document whose last version failed can be retried"),
        };
        ApiError::new(
            StatusCode::CONFLICT,
            code,
            format!("{} is {}: {wants}", doc.name, doc.state.as_str()),
        )
    }
}

/// One document: 204, or 409 when it is in no state `op` applies to.
async fn one(state: &AppState, user: UserId, id: &str, op: Op) -> Result<StatusCode, ApiError> {
    let doc = find(state, user, id).await?;
    if op.queues() {
        check_pending(state, pending(state, user).await?, 1)?;
    }
    if op.applies(&doc) && op.apply(state, user, &doc).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(op.conflict(&doc))
    }
}

/// The documents `selection` names that `op` applies to, each in turn.
async fn many(
    state: &AppState,
    user: UserId,
    selection: &Selection,
    op: Op,
) -> Result<BulkResult, ApiError> {
    let (hit, others): (Vec<_>, Vec<_>) =
        selected(state, user, selection).await?.into_iter().partition(|d| op.applies(d));
    if op.queues() {
        check_pending(state, pending(state, user).await?, hit.len() as u64)?;
    }
    let mut result = BulkResult {
        done: 0,
        skipped: if selection.ids.is_some() { others.len() as u64 } else { 0 },
    };
    for doc in &hit {
        if op.apply(state, user, doc).await? {
            result.done += 1;
        } else {
            result.skipped += 1;
        }
    }
    Ok(result)
}

/// `POST /v1/documents/{id}/cancel`: stop one document.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/cancel",
    operation_id = "cancelDocument",
    summary = "Stop a document waiting for, in processing or paused",
    description = "The document ends failed with `cancelled` (an older searchable version stays searchable); a worker processing it stops within a second and nothing of this version is kept.",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = crate::error::ErrorResponse),
        (status = 409, description = "`not_in_progress`: the document is already ready or failed", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn cancel_one(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    one(&state, user, &id, Op::Cancel).await
}

/// `POST /v1/documents/{id}/pause`: hold one document.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/pause",
    operation_id = "pauseDocument",
    summary = "Hold a document waiting for or in processing",
    description = "The document becomes `paused` (an older searchable version stays searchable); a worker processing it lets go within a second (resuming starts that document over; the chunks it had embedded come from the embedding cache, kept every 256).",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 204, description = "Paused"),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = crate::error::ErrorResponse),
        (status = 409, description = "`not_in_progress`: the document is already ready, failed or paused", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn pause_one(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    one(&state, user, &id, Op::Pause).await
}

/// `POST /v1/documents/{id}/resume`: queue one paused document again.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/resume",
    operation_id = "resumeDocument",
    summary = "Queue a paused document again",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 204, description = "Queued again"),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = crate::error::ErrorResponse),
        (status = 409, description = "`not_paused`: the document is not paused", body = crate::error::ErrorResponse),
        (status = 429, description = "`too_many_pending`, with `Retry-After`", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn resume_one(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    one(&state, user, &id, Op::Resume).await
}

/// The user's documents `selection` names, or all of them.
async fn selected(
    state: &AppState,
    user: UserId,
    selection: &Selection,
) -> Result<Vec<DocumentRecord>, ApiError> {
    if selection.ids.is_none() && !selection.all {
        return Err(ApiError::bad_request(
            "invalid_selection",
            "name the documents with \"ids\": [...] or select every one with \"all\": true",
        ));
    }
    let store = Arc::clone(&state.store);
    let ids = selection.ids.clone();
    Ok(blocking(move || {
        let u = store.user(user);
        match ids {
            // Each named document (another user's is skipped, as if it did not exist).
            Some(mut ids) => {
                ids.sort_unstable();
                ids.dedup();
                let found = ids.into_iter().map(|id| u.document(DocumentId(id)));
                found.filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()
            }
            None => u.documents(),
        }
    })
    .await??)
}

/// `POST /v1/documents/cancel`: stop many documents.
#[utoipa::path(
    post,
    path = "/v1/documents/cancel",
    operation_id = "cancelDocuments",
    summary = "Stop many documents waiting for, in processing or paused",
    tag = "documents",
    request_body = Selection,
    responses(
        (status = 200, description = "How many were cancelled", body = BulkResult),
        (status = 400, description = "`invalid_selection` or `invalid_json`", body = crate::error::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn cancel_many(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Json<BulkResult>, ApiError> {
    Ok(Json(many(&state, user, &selection, Op::Cancel).await?))
}

/// `POST /v1/documents/pause`: hold many documents.
#[utoipa::path(
    post,
    path = "/v1/documents/pause",
    operation_id = "pauseDocuments",
    summary = "Hold many documents waiting for or in processing (a whole batch)",
    tag = "documents",
    request_body = Selection,
    responses(
        (status = 200, description = "How many were paused", body = BulkResult),
        (status = 400, description = "`invalid_selection` or `invalid_json`", body = crate::error::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn pause_many(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Json<BulkResult>, ApiError> {
    Ok(Json(many(&state, user, &selection, Op::Pause).await?))
}

/// `POST /v1/documents/resume`: queue many paused documents again.
#[utoipa::path(
    post,
    path = "/v1/documents/resume",
    operation_id = "resumeDocuments",
    summary = "Queue many paused documents again",
    tag = "documents",
    request_body = Selection,
    responses(
        (status = 200, description = "How many were queued again", body = BulkResult),
        (status = 400, description = "`invalid_selection` or `invalid_json`", body = crate::error::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
        (status = 429, description = "`too_many_pending`, with `Retry-After`", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn resume_many(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Json<BulkResult>, ApiError> {
    Ok(Json(many(&state, user, &selection, Op::Resume).await?))
}

/// `POST /v1/documents/retry`: queue failed documents again.
#[utoipa::path(
    post,
    path = "/v1/documents/retry",
    operation_id = "retryDocuments",
    summary = "Queue failed documents again (cancelled ones included)",
    description = "A document is retried when its last version failed: it is failed, or ready with an error (an older version searchable). Others are skipped.",
    tag = "documents",
    request_body = Selection,
    responses(
        (status = 200, description = "How many were queued again", body = BulkResult),
        (status = 400, description = "`invalid_selection` or `invalid_json`", body = crate::error::ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = crate::error::ErrorResponse),
        (status = 429, description = "`too_many_pending`, with `Retry-After`", body = crate::error::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn retry_many(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Json<BulkResult>, ApiError> {
    Ok(Json(many(&state, user, &selection, Op::Retry).await?))
}
