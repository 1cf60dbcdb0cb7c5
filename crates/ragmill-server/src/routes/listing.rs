//! `GET /v1/documents`: a page of the user's documents, filtered by state and name and sorted,
//! with the total, so a list of thousands is read a page at a time. Without parameters: every
//! document, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use ragmill_store::{DocumentQuery, DocumentState, SortBy};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::routes::documents::{DocumentList, DocumentView};
use crate::state::AppState;

/// The most documents one page may hold.
const MAX_PAGE: usize = 1000;

/// Filters, order and page of `GET /v1/documents`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only documents in this state (`queued`, `processing`, `ready`, `failed`, `paused`), or `error`:
    /// those whose last version failed (failed, or ready with an older version).
    pub state: Option<String>,
    /// Only documents whose name contains this (case-insensitive).
    pub q: Option<String>,
    /// `updated` (the default), `created`, `name` or `size`.
    pub sort: Option<String>,
    /// `desc` (the default) or `asc`.
    pub order: Option<String>,
    /// At most this many (1-1000; default: every document).
    pub limit: Option<usize>,
    /// Skipping this many.
    pub offset: Option<usize>,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

impl ListParams {
    fn query(&self) -> Result<DocumentQuery, ApiError> {
        let mut q = DocumentQuery::default();
        match self.state.as_deref() {
            None => {}
            Some("queued") => q.state = Some(DocumentState::Queued),
            Some("processing") => q.state = Some(DocumentState::Processing),
            Some("ready") => q.state = Some(DocumentState::Ready),
            Some("failed") => q.state = Some(DocumentState::Failed),
            Some("paused") => q.state = Some(DocumentState::Paused),
            Some("error") => q.with_error = true,
            Some(other) => {
                return Err(invalid(format!(
                    "state {other:?}: use queued, processing, ready, failed, paused or error"
                )));
            }
        }
        q.sort = match self.sort.as_deref() {
            None | Some("updated") => SortBy::Updated,
            Some("created") => SortBy::Created,
            Some("name") => SortBy::Name,
            Some("size") => SortBy::Size,
            Some(other) => {
                return Err(invalid(format!("sort {other:?}: use updated, created, name or size")));
            }
        };
        q.ascending = match self.order.as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(other) => return Err(invalid(format!("order {other:?}: use asc or desc"))),
        };
        if let Some(limit) = self.limit
            && !(1..=MAX_PAGE).contains(&limit)
        {
            return Err(invalid(format!("limit {limit}: use 1 to {MAX_PAGE}")));
        }
        q.limit = self.limit;
        q.offset = self.offset.unwrap_or(0);
        q.name_contains = self.q.clone().filter(|s| !s.trim().is_empty());
        Ok(q)
    }
}

/// `GET /v1/documents`: the user's documents, newest first.
#[utoipa::path(
    get,
    path = "/v1/documents",
    operation_id = "listDocuments",
    summary = "List the user's documents: filtered, sorted, a page at a time",
    tag = "documents",
    params(ListParams),
    responses(
        (status = 200, description = "The page of the user's documents, and how many match", body = DocumentList),
        (status = 400, description = "`invalid_query`: a parameter out of its range", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<DocumentList>, ApiError> {
    let Query(params) = params.map_err(|e| invalid(e.body_text()))?;
    let query = params.query()?;
    let store = Arc::clone(&state.store);
    let (docs, total) = blocking(move || store.user(user).documents_page(&query)).await??;
    Ok(Json(DocumentList { documents: DocumentView::all(&state, user, &docs).await, total }))
}
