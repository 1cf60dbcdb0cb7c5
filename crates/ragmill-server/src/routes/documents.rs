//! `/v1/documents`: upload, list, get, delete, reprocess.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ragmill_core::{DocumentId, UserId};
use ragmill_extract::ExtractError;
use ragmill_store::{Accepted, DocumentRecord, DocumentState};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::error::{ApiError, blocking};
use crate::state::AppState;

/// A document as the API shows it.
pub fn view(state: &AppState, d: &DocumentRecord) -> Value {
    let live = state
        .events
        .live(d.id)
        .filter(|_| matches!(d.state, DocumentState::Queued | DocumentState::Processing));
    let (done, total) = match (d.state, live) {
        (_, Some(l)) => (l.done, l.total),
        (DocumentState::Ready, None) => (d.chunks as usize, d.chunks as usize),
        _ => (0, 0),
    };
    json!({
        "id": d.id,
        "name": d.name,
        "state": d.state,
        "stage": live.map(|l| l.stage),
        "progress": {"done": done, "total": total},
        "chunks": d.chunks,
        "error": d.error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
        "kind": d.kind,
        "size": d.size,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "timings": d.timings,
    })
}

/// `POST /v1/documents`: multipart with one or more `file` parts. Each file is streamed to
/// disk under the size limit, checked by content, kept content-addressed and queued before
/// the answer. A request with any bad file queues none of its files.
pub async fn upload(
    State(state): State<AppState>,
    Auth(user): Auth,
    mut form: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    let limit = state.config.max_upload_bytes;
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
        let (store, queue, doc_name) =
            (Arc::clone(&state.store), Arc::clone(&state.queue), name.clone());
        let accepted = blocking(move || {
            let accepted = store.user(user).accept_upload(&doc_name, hash, size, Some(kind))?;
            if let Accepted::Queued(id) = accepted {
                queue.enqueue(user, id, size)?;
            }
            Ok::<_, ApiError>(accepted)
        })
        .await??;
        let (id, state_name) = match accepted {
            Accepted::Queued(id) => (id, "queued"),
            Accepted::Unchanged(id) => (id, "ready"),
        };
        documents.push(json!({"id": id, "name": name, "state": state_name}));
    }
    state.wake.notify_waiters();
    Ok((StatusCode::ACCEPTED, Json(json!({ "documents": documents }))))
}

/// `GET /v1/documents`: the user's documents, newest first.
pub async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(&state.store);
    let docs = blocking(move || store.user(user).documents()).await??;
    Ok(Json(json!({"documents": docs.iter().map(|d| view(&state, d)).collect::<Vec<_>>()})))
}

/// `GET /v1/documents/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let doc = find(&state, user, &id).await?;
    Ok(Json(view(&state, &doc)))
}

/// `DELETE /v1/documents/{id}`: the document, its chunks and its queued jobs.
pub async fn delete(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let doc = find(&state, user, &id).await?;
    let (store, queue) = (Arc::clone(&state.store), Arc::clone(&state.queue));
    blocking(move || {
        queue.cancel(user, doc.id)?;
        store.user(user).delete_document(doc.id)?;
        Ok::<_, ApiError>(())
    })
    .await??;
    state.events.finished(doc.id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/documents/{id}/reprocess`: queue the document's current bytes again.
pub async fn reprocess(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let doc = find(&state, user, &id).await?;
    let (store, queue) = (Arc::clone(&state.store), Arc::clone(&state.queue));
    let (doc_id, size) = (doc.id, doc.size);
    blocking(move || {
        store.user(user).set_state(doc_id, DocumentState::Queued)?;
        queue.enqueue(user, doc_id, size)?;
        Ok::<_, ApiError>(())
    })
    .await??;
    state.wake.notify_waiters();
    Ok((StatusCode::ACCEPTED, Json(json!({"id": doc.id, "name": doc.name, "state": "queued"}))))
}

/// The user's document `raw_id`; another user's id is answered exactly like one that never existed.
async fn find(state: &AppState, user: UserId, raw_id: &str) -> Result<DocumentRecord, ApiError> {
    let id: i64 = raw_id.parse().map_err(|_| ApiError::not_found("document"))?;
    let store = Arc::clone(&state.store);
    blocking(move || store.user(user).document(DocumentId(id)))
        .await??
        .ok_or_else(|| ApiError::not_found("document"))
}

/// The file name to store: the last path component, printable, not empty.
fn clean_name(raw: Option<&str>) -> Result<String, ApiError> {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty()
        || base.len() > 255
        || base.chars().any(char::is_control)
        || base == "."
        || base == ".."
    {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            "each file part needs a file name of 1-255 printable characters",
        ));
    }
    Ok(base.to_owned())
}

fn type_error(name: &str, e: &ExtractError) -> ApiError {
    let status = match e {
        ExtractError::Empty => StatusCode::BAD_REQUEST,
        ExtractError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    };
    ApiError::new(status, e.code(), format!("{name}: {e}"))
}
