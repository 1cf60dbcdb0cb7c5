//! `GET /v1/documents/{id}/file`: the original bytes of a user's document, as uploaded; and
//! `POST /v1/documents/{id}/file/link`: a link to them that works without the Authorization
//! header, so a browser tab can open the file itself (its name in the title and the download,
//! which an in-page `blob:` copy loses).
//!
//! The bytes are the user's, not ours, so nothing in them may run on this origin: text formats
//! (HTML included) are served as `text/plain` inside a CSP sandbox, DOCX as a download in that
//! sandbox too, and PDF inline for the browser's viewer under a policy that allows no script,
//! fetch or form on this origin (see [`PDF_POLICY`] for why not a sandbox).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ragmill_core::{ContentHash, DocumentId, DocumentKind, UserId};
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;

use crate::auth::{Auth, EventTokens};
use crate::error::{ApiError, ErrorResponse};
use crate::routes::documents::find;
use crate::state::AppState;

/// A link to a document's original that needs no Authorization header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FileLink {
    /// `/v1/documents/{id}/file?token=...`, relative to this server.
    pub url: String,
    /// Seconds it keeps working.
    pub expires_in: u64,
    /// How the file is served: `inline` (PDF, and text formats as plain text) to show in a
    /// tab, `attachment` (DOCX) to download.
    #[schema(example = "inline")]
    pub disposition: String,
}

/// `POST /v1/documents/{id}/file/link`.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/file/link",
    operation_id = "createDocumentFileLink",
    summary = "A link to a document's original, for opening it in a browser tab",
    description = "The link (`GET /v1/documents/{id}/file?token=...`) works without the Authorization header, for this document only, any number of times for `expires_in` seconds (a PDF viewer fetches the file again to save it), and only while the API key it was made with is valid. Opened in a tab, the file keeps its name: `Content-Disposition` carries it.",
    tag = "documents",
    params(("id" = i64, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The link", body = FileLink),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn link(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FileLink>, ApiError> {
    let prefix = crate::auth::bearer(&headers)
        .and_then(crate::auth::key_prefix)
        .ok_or_else(ApiError::unauthorized)?;
    let doc = find(&state, user, &id).await?;
    let token = state.tokens.issue_link(user, prefix, doc.id);
    Ok(Json(FileLink {
        url: format!("/v1/documents/{}/file?token={token}", doc.id.0),
        expires_in: EventTokens::LINK_TTL.as_secs(),
        disposition: presentation(doc.kind).1.to_owned(),
    }))
}

/// Query of `GET /v1/documents/{id}/file`.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    token: Option<String>,
}

/// `GET /v1/documents/{id}/file`.
#[utoipa::path(
    get,
    path = "/v1/documents/{id}/file",
    operation_id = "getDocumentFile",
    summary = "The original file of a document, as uploaded",
    description = "PDF inline (`application/pdf`, with a Content-Security-Policy that allows no script), DOCX as a download, every text format (plain, Markdown, HTML) as `text/plain` in a CSP sandbox: nothing uploaded ever runs on this origin. `Content-Disposition` carries the document's name. Authorized by the API key, or by `?token=` from `POST /v1/documents/{id}/file/link` (for a browser tab, which cannot send the header).",
    tag = "documents",
    params(
        ("id" = i64, Path, description = "The document's id"),
        ("token" = Option<String>, Query, description = "A link token from `POST /v1/documents/{id}/file/link`, instead of the Authorization header"),
    ),
    responses(
        (status = 200, description = "The bytes as uploaded", content_type = "application/octet-stream"),
        (status = 401, description = "Missing or unknown API key, or a link token that is not this document's, has expired or whose key was revoked", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such document (or another user's)", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = []), ("file_link" = [])),
)]
pub async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let user = authorize(&state, &headers, &id, query.token.as_deref()).await?;
    let doc = find(&state, user, &id).await?;
    let hash = ContentHash::from_hex(&doc.content_hash).map_err(|_| {
        ApiError::internal(format_args!("document {} has a corrupt hash", doc.id.0))
    })?;
    let file = tokio::fs::File::open(state.blobs.path(&hash)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::not_found("file")
        } else {
            ApiError::internal(e)
        }
    })?;
    let (content_type, disposition) = presentation(doc.kind);
    let filename = format!("{disposition}; filename*=UTF-8''{}", percent_encode(&doc.name));
    let disposition =
        HeaderValue::from_str(&filename).unwrap_or(HeaderValue::from_static("attachment"));
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
            // A link's token is in the URL: a page the file links to must not learn it.
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response();
    let policy = if doc.kind == Some(DocumentKind::Pdf) { PDF_POLICY } else { SANDBOX };
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    Ok(response)
}

/// The user a request for document `raw_id`'s file is made for: a link token's (for that
/// document, under a key still valid), or the API key's.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    raw_id: &str,
    token: Option<&str>,
) -> Result<UserId, ApiError> {
    if let Some(token) = token {
        let id = raw_id.parse().map(DocumentId).map_err(|_| ApiError::unauthorized())?;
        let claims = state.tokens.check_link(token, id).ok_or_else(ApiError::unauthorized)?;
        return if crate::auth::key_active(state, claims.user, &claims.key_prefix).await {
            Ok(claims.user)
        } else {
            Err(ApiError::unauthorized())
        };
    }
    let key = crate::auth::bearer(headers).ok_or_else(ApiError::unauthorized)?;
    crate::auth::user_of_key(state, key).await?.ok_or_else(ApiError::unauthorized)
}

/// For every file but PDFs: no script, form or plugin of the file runs, nothing is fetched.
const SANDBOX: &str = "sandbox; default-src 'none'";

/// For PDFs: no script of this origin, no fetch, no form, framed only by this origin. Not
/// `sandbox`: Chrome refuses to start its viewer in a sandboxed frame (crbug 413851) and Safari
/// shows a sandboxed PDF as a blank page; Chromium 156 shows this policy's PDFs (and ignores
/// it inside its viewer, which runs in its own extension origin). The allowances are what the
/// viewers' synthetic pages use: their inline styles and the `<embed>` of this same URL.
const PDF_POLICY: &str = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; \
    img-src 'self' data:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'";

/// How a kind is served: its content type and whether to show it or download it.
fn presentation(kind: Option<DocumentKind>) -> (&'static str, &'static str) {
    match kind {
        Some(DocumentKind::Pdf) => ("application/pdf", "inline"),
        Some(DocumentKind::Docx) => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "attachment",
        ),
        Some(DocumentKind::Text | DocumentKind::Markdown | DocumentKind::Html) => {
            ("text/plain", "inline")
        }
        None => ("application/octet-stream", "attachment"),
    }
}

/// RFC 5987 `filename*` value: unreserved bytes as they are, everything else `%XX`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_uploaded_is_served_as_something_a_browser_would_run() {
        for kind in [DocumentKind::Text, DocumentKind::Markdown, DocumentKind::Html] {
            assert_eq!(presentation(Some(kind)).0, "text/plain", "{kind:?}");
        }
        assert_eq!(presentation(Some(DocumentKind::Pdf)), ("application/pdf", "inline"));
        assert_eq!(presentation(Some(DocumentKind::Docx)).1, "attachment");
        assert_eq!(presentation(None), ("application/octet-stream", "attachment"));
        assert!(SANDBOX.starts_with("sandbox"));
        assert!(PDF_POLICY.starts_with("default-src 'none'") && !PDF_POLICY.contains("script"));
    }

    #[test]
    fn file_names_are_percent_encoded() {
        assert_eq!(percent_encode("a b/é\".pdf"), "a%20b%2F%C3%A9%22.pdf");
        assert_eq!(percent_encode("plain-name_1.txt"), "plain-name_1.txt");
    }
}
