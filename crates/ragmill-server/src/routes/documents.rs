//! `/v1/documents`: upload, list, get, delete, reprocess.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ragmill_core::{DocumentId, DocumentKind, Live, Stage, UserId};
use ragmill_extract::ExtractError;
use ragmill_store::{DocumentRecord, DocumentState, Timings};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::openapi::{DocumentKindSchema, DocumentStateSchema, StageSchema};
use crate::state::AppState;

pub use super::listing::{__path_list, list};

/// A document as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DocumentView {
    /// Its id.
    #[schema(value_type = i64)]
    pub id: DocumentId,
    /// The name it was uploaded under (unique per user: uploading the same name replaces it).
    pub name: String,
    /// Where it stands.
    #[schema(value_type = DocumentStateSchema)]
    pub state: DocumentState,
    /// The stage a worker is in, while queued or processing and known; otherwise null.
    #[schema(value_type = Option<StageSchema>)]
    pub stage: Option<Stage>,
    /// Units done of the current stage (all chunks once ready).
    pub progress: ProgressView,
    /// Chunks searchable.
    pub chunks: u64,
    /// Why the last version failed, or null (a ready document can carry the failure of a
    /// newer version while its older one stays searchable).
    pub error: Option<ErrorBody>,
    /// The detected format, once known.
    #[schema(value_type = Option<DocumentKindSchema>)]
    pub kind: Option<DocumentKind>,
    /// Size in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// Seconds spent in each stage of the last processing, by stage name.
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub timings: Timings,
}

/// Progress within a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProgressView {
    /// Units done.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
}

impl DocumentView {
    /// `docs` (all `user`'s) as the API shows them, each in flight with its live progress.
    pub async fn all(state: &AppState, user: UserId, docs: &[DocumentRecord]) -> Vec<Self> {
        let in_flight: Vec<DocumentId> = docs
            .iter()
            .filter(|d| matches!(d.state, DocumentState::Queued | DocumentState::Processing))
            .map(|d| d.id)
            .collect();
        let live = if in_flight.is_empty() {
            Default::default()
        } else {
            state.live.get(user, &in_flight).await
        };
        docs.iter().map(|d| Self::new(d, live.get(&d.id).copied())).collect()
    }

    /// `d` as the API shows it, with `live` progress if it is in flight.
    fn new(d: &DocumentRecord, live: Option<Live>) -> Self {
        let live =
            live.filter(|_| matches!(d.state, DocumentState::Queued | DocumentState::Processing));
        let (done, total) = match (d.state, live) {
            (_, Some(l)) => (l.done, l.total),
            (DocumentState::Ready, None) => (d.chunks as usize, d.chunks as usize),
            _ => (0, 0),
        };
        Self {
            id: d.id,
            name: d.name.clone(),
            state: d.state,
            stage: live.map(|l| l.stage),
            progress: ProgressView { done, total },
            chunks: d.chunks,
            error: d
                .error
                .as_ref()
                .map(|(code, message)| ErrorBody { code: code.clone(), message: message.clone() }),
            kind: d.kind,
            size: d.size,
            created_at: d.created_at,
            updated_at: d.updated_at,
            timings: d.timings.clone(),
        }
    }
}

/// `GET /v1/documents`: a page of the user's documents.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DocumentList {
    /// The page asked for (by default every document, newest first).
    pub documents: Vec<DocumentView>,
    /// How many documents match the filters, over all pages.
    pub total: u64,
}

/// A document version accepted for processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AcceptedDocument {
    /// Its id (the same id when a name is uploaded again).
    #[schema(value_type = i64)]
    pub id: DocumentId,
    /// Its name.
    pub name: String,
    /// `queued`; or, when these exact bytes were already accepted, the document's state as it
    /// stands (`ready`, or still `queued` or `processing`).
    #[schema(value_type = DocumentStateSchema)]
    pub state: DocumentState,
}

/// The answer to an upload: every file of the request, in order, all stored and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UploadResponse {
    /// One per `file` part.
    pub documents: Vec<AcceptedDocument>,
}

/// The body of `POST /v1/documents` (documentation only: it is read as a stream).
#[derive(ToSchema)]
#[allow(dead_code)] // never built: the form is streamed, this only describes it
pub struct UploadForm {
    /// One or more files, each with a file name; their type is detected from the content.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// `POST /v1/documents`: multipart with one or more `file` parts. Each file is streamed to
/// disk under the size limit, checked by content, kept content-addressed and queued before
/// the answer. A request with any bad file queues none of its files.
#[utoipa::path(
    post,
    path = "/v1/documents",
    tag = "documents",
    operation_id = "uploadDocuments",
    summary = "Upload one or more documents",
    description = "Multipart with one or more `file` parts. Each file is streamed to disk under the size limit, checked by its content, kept content-addressed and queued before the answer. A request with any bad file queues none of its files. Uploading a name again replaces that document once the new version is processed; until then the old version stays searchable.",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Every file stored and queued (or unchanged and ready)", body = UploadResponse),
        (status = 400, description = "`invalid_multipart` (the body is not multipart/form-data, or is malformed), `no_files`, `invalid_file_name` or `empty_file`", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 413, description = "`file_too_large`: a file is over the upload limit; `too_many_files`: more files than one request may carry", body = ErrorResponse),
        (status = 415, description = "`type_mismatch` or `unsupported_type`: a file's content is not a supported format or not the one its name says", body = ErrorResponse),
        (status = 429, description = "`too_many_pending`: the user has as many documents queued or processing as allowed; `rate_limited`: too many requests with this key. Both with `Retry-After`", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn upload(
    State(state): State<AppState>,
    Auth(user): Auth,
    form: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let mut form = form.map_err(multipart_error)?;
    let limit = state.config.max_upload_bytes;
    let max_files = state.config.max_files_per_upload;
    let pending = pending(&state, user).await?;
    check_pending(&state, pending, 1)?;
    let mut received = Vec::new();
    let result = async {
        while let Some(mut field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?
        {
            if field.name() != Some("file") {
                continue;
            }
            if received.len() >= max_files {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_files",
                    format!("at most {max_files} files in one request; send the rest in another"),
                ));
            }
            let name = clean_name(field.file_name())?;
            let mut incoming = state.blobs.incoming().await.map_err(ApiError::internal)?;
            loop {
                match field.chunk().await {
                    Ok(Some(bytes)) => {
                        if incoming.size() + bytes.len() as u64 > limit {
                            incoming.discard().await;
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "file_too_large",
                                format!("{name} is larger than the limit of {limit} bytes"),
                            ));
                        }
                        incoming.write(&bytes).await.map_err(ApiError::internal)?;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        incoming.discard().await;
                        return Err(ApiError::bad_request("invalid_multipart", e.body_text()));
                    }
                }
            }
            incoming.finish().await.map_err(ApiError::internal)?;
            received.push((name, incoming));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        for (_, incoming) in received {
            incoming.discard().await;
        }
        return Err(e);
    }
    if received.is_empty() {
        return Err(ApiError::bad_request(
            "no_files",
            "send one or more multipart parts named \"file\"",
        ));
    }
    if let Err(e) = check_pending(&state, pending, received.len() as u64) {
        for (_, incoming) in received {
            incoming.discard().await;
        }
        return Err(e);
    }

    // Check every file's type by its content before accepting any.
    let mut kinds = Vec::with_capacity(received.len());
    let mut refused = None;
    for (name, incoming) in &received {
        let bytes = tokio::fs::read(incoming.tmp_path()).await.map_err(ApiError::internal)?;
        let name_owned = name.clone();
        match blocking(move || ragmill_extract::detect(&bytes, &name_owned)).await? {
            Ok(kind) => kinds.push(kind),
            Err(e) => {
                refused = Some(type_error(name, &e));
                break;
            }
        }
    }
    if let Some(err) = refused {
        for (_, incoming) in received {
            incoming.discard().await;
        }
        return Err(err);
    }

    let mut documents = Vec::new();
    for ((name, incoming), kind) in received.into_iter().zip(kinds) {
        let (hash, size) = state.blobs.commit(incoming).await.map_err(ApiError::internal)?;
        let (id, doc_state) = state.ledger.accept(user, name.clone(), hash, size, kind).await?;
        documents.push(AcceptedDocument { id, name, state: doc_state });
    }
    Ok((StatusCode::ACCEPTED, Json(UploadResponse { documents })))
}

/// `GET /v1/documents/{id}`.
#[utoipa::path(
    get,
    path = "/v1/documents/{id}",
    operation_id = "getDocument",
    summary = "One document: state, stage, progress, chunks, error, timings",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document", body = DocumentView),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, ApiError> {
    let doc = find(&state, user, &id).await?;
    let mut views = DocumentView::all(&state, user, std::slice::from_ref(&doc)).await;
    views.pop().map(Json).ok_or_else(|| ApiError::internal("no view of a found document"))
}

/// `DELETE /v1/documents/{id}`: the document, its chunks and its queued jobs.
#[utoipa::path(
    delete,
    path = "/v1/documents/{id}",
    operation_id = "deleteDocument",
    summary = "Delete a document, its chunks and its queued jobs",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 204, description = "Deleted with its chunks and queued jobs"),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let doc = find(&state, user, &id).await?;
    state.ledger.delete(user, doc.id).await?;
    crate::sweeper::collect_soon(state.pipeline.vectors());
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/documents/{id}/reprocess`: queue the document's current bytes again.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/reprocess",
    operation_id = "reprocessDocument",
    summary = "Queue the document's current bytes again",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 202, description = "Queued again", body = AcceptedDocument),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = ErrorResponse),
        (status = 429, description = "`too_many_pending` or `rate_limited`, with `Retry-After`", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn reprocess(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let doc = find(&state, user, &id).await?;
    if !matches!(doc.state, DocumentState::Queued | DocumentState::Processing) {
        check_pending(&state, pending(&state, user).await?, 1)?;
    }
    state.ledger.reprocess(user, doc.id, doc.size).await?;
    let accepted = AcceptedDocument { id: doc.id, name: doc.name, state: DocumentState::Queued };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The user's document `raw_id`; another user's id is answered exactly like one that never existed.
pub(crate) async fn find(
    state: &AppState,
    user: UserId,
    raw_id: &str,
) -> Result<DocumentRecord, ApiError> {
    let id: i64 = raw_id.parse().map_err(|_| ApiError::not_found("document"))?;
    let store = Arc::clone(&state.store);
    blocking(move || store.user(user).document(DocumentId(id)))
        .await??
        .ok_or_else(|| ApiError::not_found("document"))
}

/// How long a client refused for too many pending documents is told to wait.
const PENDING_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// The user's documents queued or processing.
pub(crate) async fn pending(state: &AppState, user: UserId) -> Result<u64, ApiError> {
    let store = Arc::clone(&state.store);
    let totals = blocking(move || store.user(user).totals()).await??;
    Ok(totals.queued + totals.processing)
}

/// 429 `too_many_pending` if `more` documents on top of the user's `pending` ones would pass
/// the limit. (A soft limit: requests checked at the same moment may pass it together.)
pub(crate) fn check_pending(state: &AppState, pending: u64, more: u64) -> Result<(), ApiError> {
    let max = state.config.max_pending_per_user;
    if pending.saturating_add(more) <= max {
        return Ok(());
    }
    Err(ApiError::too_many(
        "too_many_pending",
        format!(
            "{pending} of your documents are queued or processing, and at most {max} may be; \
             send these again once some are done"
        ),
        PENDING_RETRY,
    ))
}

/// A body that cannot be read as a multipart form: 400 `invalid_multipart`, in JSON.
fn multipart_error(rejection: MultipartRejection) -> ApiError {
    match rejection {
        MultipartRejection::InvalidBoundary(_) => ApiError::bad_request(
            "invalid_multipart",
            "send the files as multipart/form-data with a boundary, one part named \"file\" each",
        ),
        r => ApiError::bad_request("invalid_multipart", r.body_text()),
    }
}

/// The name to store: the file part's name as a relative path ("docs/guide/index.md", as the
/// web UI sends a dropped folder's files, so same-named files of different subfolders stay
/// apart), or its last component when it is not a clean relative path (an absolute path, `.`
/// or `..` parts, empty parts); printable, 1-1024 bytes, the last component 1-255.
fn clean_name(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.unwrap_or("").trim().replace('\\', "/");
    let relative = !raw.starts_with('/')
        && raw.len() <= 1024
        && raw.split('/').all(|part| !part.trim().is_empty() && part != "." && part != "..");
    let name = if relative { raw.as_str() } else { raw.rsplit('/').next().unwrap_or("").trim() };
    let base = name.rsplit('/').next().unwrap_or("");
    if base.is_empty()
        || base.len() > 255
        || name.chars().any(char::is_control)
        || base == "."
        || base == ".."
    {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            "each file part needs a file name of 1-255 printable characters",
        ));
    }
    Ok(name.to_owned())
}

fn type_error(name: &str, e: &ExtractError) -> ApiError {
    let status = match e {
        ExtractError::Empty => StatusCode::BAD_REQUEST,
        ExtractError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    };
    ApiError::new(status, e.code(), format!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn a_relative_path_is_kept_and_anything_else_comes_down_to_its_file_name() {
        let name = |raw: &str| clean_name(Some(raw)).ok();
        assert_eq!(name("notes.md").as_deref(), Some("notes.md"));
        assert_eq!(name("docs/a/index.md").as_deref(), Some("docs/a/index.md"));
        assert_eq!(name("docs\\b\\index.md").as_deref(), Some("docs/b/index.md"));
        assert_eq!(name("/etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(name("../../secret.txt").as_deref(), Some("secret.txt"));
        assert_eq!(name("a//b.txt").as_deref(), Some("b.txt"));
        assert_eq!(name(" spaced.txt ").as_deref(), Some("spaced.txt"));
        for bad in ["", "docs/", "..", "a/..", "bell\u{7}.txt", &"x".repeat(256)] {
            assert_eq!(name(bad), None, "{bad:?}");
        }
        assert_eq!(clean_name(None).ok(), None);
    }
}
