//! Stopping and retrying documents, one or many: `POST /v1/documents/{id}/cancel`,
//! `POST /v1/documents/cancel` and `POST /v1/documents/retry`.
//!
//! Cancelling really stops the work: the document ends failed with `cancelled` (an older
//! searchable version stays), its queued job is dropped, and a worker processing it notices
//! within half a second and drops the work (nothing of the version is written: a version is
//! stored in one transaction at its end; texts still queued for embedding are dropped).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    /// Every document the operation applies to (waiting or in processing for cancel, failed
    /// for retry).
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

/// `POST /v1/documents/{id}/cancel`: stop one document.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/cancel",
    operation_id = "cancelDocument",
    summary = "Stop a document waiting for or in processing",
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
    let doc = find(&state, user, &id).await?;
    if state.ledger.cancel(user, doc.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_in_progress",
            format!(
                "{} is {}: only a waiting or processing document can be cancelled",
                doc.name,
                format!("{:?}", doc.state).to_lowercase()
            ),
        ))
    }
}

/// The user's documents `selection` names, or all of them.
async fn selected(
    state: &AppState,
    user: ragmill_core::UserId,
    selection: &Selection,
) -> Result<Vec<DocumentRecord>, ApiError> {
    if selection.ids.is_none() && !selection.all {
        return Err(ApiError::bad_request(
            "invalid_selection",
            "name the documents with \"ids\": [...] or select every one with \"all\": true",
        ));
    }
    let store = Arc::clone(&state.store);
    let docs = blocking(move || store.user(user).documents()).await??;
    Ok(match &selection.ids {
        Some(ids) => docs.into_iter().filter(|d| ids.contains(&d.id.0)).collect(),
        None => docs,
    })
}

/// `POST /v1/documents/cancel`: stop many documents.
#[utoipa::path(
    post,
    path = "/v1/documents/cancel",
    operation_id = "cancelDocuments",
    summary = "Stop many documents waiting for or in processing",
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
    let mut result = BulkResult { done: 0, skipped: 0 };
    for doc in selected(&state, user, &selection).await? {
        let in_progress = matches!(doc.state, DocumentState::Queued | DocumentState::Processing);
        if in_progress && state.ledger.cancel(user, doc.id).await? {
            result.done += 1;
        } else if selection.ids.is_some() {
            result.skipped += 1;
        }
    }
    Ok(Json(result))
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
    let docs = selected(&state, user, &selection).await?;
    let (failed, others): (Vec<_>, Vec<_>) = docs.into_iter().partition(|d| {
        matches!(d.state, DocumentState::Failed | DocumentState::Ready) && d.error.is_some()
    });
    check_pending(&state, pending(&state, user).await?, failed.len() as u64)?;
    for doc in &failed {
        state.ledger.reprocess(user, doc.id, doc.size).await?;
    }
    let skipped = if selection.ids.is_some() { others.len() as u64 } else { 0 };
    Ok(Json(BulkResult { done: failed.len() as u64, skipped }))
}
