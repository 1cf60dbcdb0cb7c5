//! Saved chat conversations, per user: `GET|POST /v1/conversations`,
//! `GET|PATCH|DELETE /v1/conversations/{id}`, and [`Recorder`], which saves a `POST /v1/chat`
//! turn (the question, then the answer with its sources) into the conversation the request
//! names: when the answer ends, or with what came of it when it is stopped (the client went
//! away, or the model failed mid-answer).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ragmill_core::UserId;
use ragmill_store::{ConversationSummary, NewMessage, SavedMessage, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::routes::ApiJson;
use crate::state::AppState;

/// A conversation without its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConversationView {
    /// Its id.
    pub id: i64,
    /// Its title (named after its first question until renamed).
    pub title: String,
    /// Messages in it.
    pub messages: u64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Its last message's (or rename's) time.
    pub updated_at: i64,
}

impl From<ConversationSummary> for ConversationView {
    fn from(c: ConversationSummary) -> Self {
        Self {
            id: c.id,
            title: c.title,
            messages: c.messages,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// `GET /v1/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConversationList {
    /// The latest first.
    pub conversations: Vec<ConversationView>,
}

/// One saved message.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessageView {
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
    /// For an answer: the sources it was given (as `event: sources` sent them).
    #[schema(value_type = Option<Vec<crate::routes::chat::ChatSource>>)]
    pub sources: Option<serde_json::Value>,
    /// For an answer: stopped before its end (what came is kept).
    pub stopped: bool,
    /// For an answer: the chat model that gave it (null for answers saved before it was kept).
    pub model: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A conversation with its messages.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// Oldest first.
    pub history: Vec<MessageView>,
}

/// `POST /v1/conversations` and `PATCH /v1/conversations/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TitleRequest {
    /// The title (one line, at most 200 characters kept); empty on creation: named after its
    /// first question.
    #[serde(default)]
    pub title: String,
}

fn not_found() -> ApiError {
    ApiError::not_found("conversation")
}

/// `GET /v1/conversations`: the user's conversations, the latest first.
#[utoipa::path(get, path = "/v1/conversations", operation_id = "listConversations",
    summary = "The user's saved conversations, the latest first", tag = "chat",
    responses((status = 200, description = "The conversations", body = ConversationList),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<ConversationList>, ApiError> {
    let store = Arc::clone(&state.store);
    let found = blocking(move || store.user(user).conversations()).await??;
    Ok(Json(ConversationList { conversations: found.into_iter().map(Into::into).collect() }))
}

/// `POST /v1/conversations`: a new conversation.
#[utoipa::path(post, path = "/v1/conversations", operation_id = "createConversation",
    summary = "Start a saved conversation (name it, or let its first question name it)", tag = "chat",
    request_body = TitleRequest,
    responses((status = 201, description = "Created", body = ConversationView),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(req): ApiJson<TitleRequest>,
) -> Result<(StatusCode, Json<ConversationView>), ApiError> {
    let store = Arc::clone(&state.store);
    let created = blocking(move || store.user(user).create_conversation(&req.title)).await??;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `GET /v1/conversations/{id}`: a conversation with its messages.
#[utoipa::path(get, path = "/v1/conversations/{id}", operation_id = "getConversation",
    summary = "A saved conversation with its messages and each answer's sources", tag = "chat",
    params(("id" = i64, Path, description = "The conversation's id")),
    responses((status = 200, description = "The conversation", body = ConversationDetail),
        (status = 404, description = "`not_found` (or another user's)", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let store = Arc::clone(&state.store);
    let (summary, messages) =
        blocking(move || store.user(user).conversation(id)).await??.ok_or_else(not_found)?;
    let history = messages.into_iter().map(message_view).collect();
    Ok(Json(ConversationDetail { conversation: summary.into(), history }))
}

fn message_view(m: SavedMessage) -> MessageView {
    MessageView {
        role: m.role,
        content: m.content,
        sources: m.sources.and_then(|s| serde_json::from_str(&s).ok()),
        stopped: m.stopped,
        model: m.model,
        created_at: m.created_at,
    }
}

/// `PATCH /v1/conversations/{id}`: rename.
#[utoipa::path(patch, path = "/v1/conversations/{id}", operation_id = "renameConversation",
    summary = "Rename a saved conversation", tag = "chat",
    params(("id" = i64, Path, description = "The conversation's id")), request_body = TitleRequest,
    responses((status = 200, description = "Renamed", body = ConversationView),
        (status = 400, description = "`invalid_title`: empty", body = ErrorResponse),
        (status = 404, description = "`not_found` (or another user's)", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn rename(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TitleRequest>,
) -> Result<Json<ConversationView>, ApiError> {
    let id: i64 = id.parse().map_err(|_| not_found())?;
    if ragmill_store::clean_title(&req.title).is_empty() {
        return Err(ApiError::bad_request("invalid_title", "the title must not be empty"));
    }
    let store = Arc::clone(&state.store);
    let found = blocking(move || {
        let u = store.user(user);
        if !u.rename_conversation(id, &req.title)? {
            return Ok(None);
        }
        Ok::<_, ragmill_store::StoreError>(u.conversation(id)?.map(|(s, _)| s))
    })
    .await??;
    Ok(Json(found.ok_or_else(not_found)?.into()))
}

/// `DELETE /v1/conversations/{id}`.
#[utoipa::path(delete, path = "/v1/conversations/{id}", operation_id = "deleteConversation",
    summary = "Delete a saved conversation and its messages", tag = "chat",
    params(("id" = i64, Path, description = "The conversation's id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`not_found` (or another user's)", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(user): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let store = Arc::clone(&state.store);
    if blocking(move || store.user(user).delete_conversation(id)).await?? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Saves one chat turn into a conversation: the question and the answer as it streams. Saved
/// once, by [`Recorder::finish`] at the answer's end or, on drop, with what came, marked
/// stopped.
pub struct Recorder {
    store: Arc<Store>,
    user: UserId,
    conversation: i64,
    question: String,
    sources: String,
    answer: String,
    model: String,
    saved: bool,
}

impl Recorder {
    /// A recorder for `user`'s `conversation`, after checking it is theirs (404 otherwise).
    pub async fn open(
        state: &AppState,
        user: UserId,
        conversation: i64,
        question: String,
    ) -> Result<Self, ApiError> {
        let store = Arc::clone(&state.store);
        if !blocking(move || store.user(user).has_conversation(conversation)).await?? {
            return Err(not_found());
        }
        let store = Arc::clone(&state.store);
        Ok(Self {
            store,
            user,
            conversation,
            question,
            sources: "[]".into(),
            answer: String::new(),
            model: String::new(),
            saved: false,
        })
    }

    /// The sources the answer is given, as the API sends them.
    pub fn sources<T: Serialize>(&mut self, sources: &T) {
        self.sources = serde_json::to_string(sources).unwrap_or_else(|_| "[]".into());
    }

    /// The chat model giving the answer.
    pub fn model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    /// The next piece of the answer.
    pub fn push(&mut self, piece: &str) {
        self.answer.push_str(piece);
    }

    /// The answer ended.
    pub fn finish(mut self) {
        self.save(false);
    }

    fn save(&mut self, stopped: bool) {
        if self.saved {
            return;
        }
        self.saved = true;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, user, id) = (Arc::clone(&self.store), self.user, self.conversation);
        let (question, answer, sources, model) = (
            std::mem::take(&mut self.question),
            std::mem::take(&mut self.answer),
            std::mem::take(&mut self.sources),
            std::mem::take(&mut self.model),
        );
        runtime.spawn_blocking(move || {
            let turn = [
                NewMessage {
                    role: "user",
                    content: &question,
                    sources: None,
                    stopped: false,
                    model: None,
                },
                NewMessage {
                    role: "assistant",
                    content: &answer,
                    sources: Some(&sources),
                    stopped,
                    model: Some(&model).filter(|m| !m.is_empty()).map(String::as_str),
                },
            ];
            match store.user(user).append_messages(id, &turn) {
                Ok(true) => {}
                Ok(false) => tracing::info!(conversation = id, "conversation deleted mid-answer"),
                Err(e) => {
                    tracing::warn!(conversation = id, error = %e, "cannot save the chat turn")
                }
            }
        });
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.save(true);
    }
}
