//! `GET /v1/chat` (is a chat model configured?) and `POST /v1/chat`: a conversation answered by
//! the configured chat model, streamed as Server-Sent Events, with the user's best passages put
//! into the prompt and returned as numbered sources when `rag` is on.
//!
//! Everything that can be refused is refused before the stream opens, as an ordinary JSON error
//! (unconfigured, bad messages, nothing searchable, chat server unreachable); once open, the
//! stream is `sources`, then `token`s in order, then `done`, or an `error` if the chat server
//! fails in the middle.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use ragmill_core::DocumentId;
use ragmill_remote::RemoteError;
use ragmill_remote::chat::{ChatBackend, ChatMessage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::routes::ApiJson;
use crate::routes::conversations::Recorder;
use crate::state::AppState;

mod prompt;

use prompt::{numbered, rag_prompt, validate};

/// The answer of `GET /v1/chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChatStatus {
    /// Whether a chat model is configured (if not, `POST /v1/chat` answers 503).
    pub configured: bool,
    /// The API of the chat model's server, or null.
    pub backend: Option<ChatBackendView>,
    /// The chat model's name, or null: the default of `POST /v1/chat`.
    pub model: Option<String>,
    /// The models a chat may pick with `model` (the default first; the chat server's list,
    /// or the configured one); empty when no chat model is configured.
    pub models: Vec<String>,
}

/// The API a chat model's server speaks (mirrors `ragmill_remote::chat::ChatBackend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatBackend)]
pub enum ChatBackendView {
    /// Ollama's `POST /api/chat`.
    Ollama,
    /// An OpenAI-compatible `POST /v1/chat/completions`.
    Openai,
}

impl From<ChatBackend> for ChatBackendView {
    fn from(b: ChatBackend) -> Self {
        match b {
            ChatBackend::Ollama => Self::Ollama,
            ChatBackend::OpenAi => Self::Openai,
        }
    }
}

/// The chat request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The conversation so far, oldest first; the last message is the user's question.
    pub messages: Vec<ChatTurn>,
    /// Put the user's best passages into the prompt and return them as sources.
    #[serde(default)]
    pub rag: bool,
    /// Passages to retrieve with `rag` (1-20, default 5).
    #[schema(minimum = 1, maximum = 20, default = 5)]
    pub top_k: Option<usize>,
    /// With `rag`: only passages of these documents (ids).
    #[schema(value_type = Option<Vec<i64>>)]
    pub documents: Option<Vec<DocumentId>>,
    /// With `rag`: how passages are retrieved, `vector`, `keyword` or `hybrid` (as in
    /// `POST /v1/search`; default: the server's).
    #[schema(value_type = Option<String>, example = "hybrid")]
    pub mode: Option<String>,
    /// The chat model to answer with, one of `GET /v1/chat`'s `models` (default: its `model`).
    pub model: Option<String>,
    /// Save this turn (the question, then the answer with its sources) into this conversation
    /// of the user's (`POST /v1/conversations`); a stopped answer is saved as far as it came.
    pub conversation: Option<i64>,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    /// `user`, `assistant` or `system`.
    #[schema(example = "user")]
    pub role: String,
    /// The text (not empty, at most 32 KiB).
    pub content: String,
}

/// One passage given to the model, numbered as the answer cites it (`[n]`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatSource {
    /// The passage's number in the prompt, from 1.
    pub n: usize,
    /// The document's name.
    pub document: String,
    /// The document's id.
    #[schema(value_type = i64)]
    pub document_id: DocumentId,
    /// The chunk's ordinal within its document.
    pub chunk: u32,
    /// The page the chunk starts on (PDF), or null.
    pub page: Option<u32>,
    /// The headings enclosing the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// Cosine similarity to the question.
    pub score: f32,
    /// The chunk's full text, as given to the model.
    pub text: String,
}

/// `event: sources`, always first: the passages given to the model (empty without `rag`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatSources {
    /// Numbered from 1, best first.
    pub sources: Vec<ChatSource>,
}

/// `event: token`: the next piece of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChatToken {
    /// Text to append to the answer so far.
    pub content: String,
}

/// `event: done`, last when the answer is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChatDone {
    /// The chat model.
    pub model: String,
    /// `token` events sent.
    pub tokens: usize,
    /// From the request to the end of the answer, in milliseconds.
    pub elapsed_ms: u64,
}

/// The `data:` of one event of the chat stream; the SSE `event:` field names its kind.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ChatEvent {
    /// `event: sources`.
    Sources(ChatSources),
    /// `event: token`.
    Token(ChatToken),
    /// `event: done`.
    Done(ChatDone),
    /// `event: error` (`chat_backend_failed`): the chat server failed mid-answer; the stream
    /// ends.
    Error(ErrorBody),
}

impl ChatEvent {
    /// The SSE event's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sources(_) => "sources",
            Self::Token(_) => "token",
            Self::Done(_) => "done",
            Self::Error(_) => "error",
        }
    }

    fn to_sse(&self) -> SseEvent {
        SseEvent::default().event(self.name()).data(serde_json::to_string(self).unwrap_or_default())
    }
}

/// `GET /v1/chat`.
#[utoipa::path(
    get,
    path = "/v1/chat",
    operation_id = "getChatStatus",
    summary = "Whether a chat model is configured, and which",
    tag = "chat",
    responses(
        (status = 200, description = "Whether `POST /v1/chat` can answer, with the model's API and name (never its address or key)", body = ChatStatus),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn status(State(state): State<AppState>, Auth(_user): Auth) -> Json<ChatStatus> {
    let chat = state.config.chat.as_ref();
    let models = match chat {
        Some(c) => c.offered().await,
        None => Vec::new(),
    };
    Json(ChatStatus {
        configured: chat.is_some(),
        backend: chat.map(|c| c.backend().into()),
        model: chat.map(|c| c.model().to_owned()),
        models,
    })
}

/// `POST /v1/chat`.
#[utoipa::path(
    post,
    path = "/v1/chat",
    operation_id = "chat",
    summary = "Chat with the configured model, optionally over the user's documents (streamed)",
    description = "Sends the conversation to the configured chat model (Ollama `POST /api/chat` \
or OpenAI-compatible `POST /v1/chat/completions`) and streams its answer as Server-Sent Events. \
With `rag: true` the user's `top_k` best passages for the last message (optionally only from \
`documents`) are put into the prompt, numbered, and the model is asked to cite them as `[n]`. \
The events, in order: `sources` (`ChatSources`, always first, empty without `rag`), `token` \
(`ChatToken`) per piece of the answer, then `done` (`ChatDone`); if the chat server fails \
mid-answer, `error` (`ErrorBody` with code `chat_backend_failed`) ends the stream instead of \
`done`. Every refusal comes before the stream, as a JSON error.",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Server-Sent Events: `sources`, `token`..., then `done` (or `error`); each `data:` is one `ChatEvent` as JSON", body = ChatEvent, content_type = "text/event-stream"),
        (status = 400, description = "`invalid_messages`, `invalid_top_k`, `unknown_model` or `invalid_json`", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 409, description = "`rag_unavailable`: `rag` is on and none of the user's documents is ready; or `model_mismatch`", body = ErrorResponse),
        (status = 413, description = "`body_too_large`", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`: the body must be sent as application/json", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
        (status = 502, description = "`chat_backend_unavailable`: the chat model's server cannot be reached or refused the request", body = ErrorResponse),
        (status = 503, description = "`chat_unconfigured`: no chat model is configured (search still works)", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn chat(
    State(state): State<AppState>,
    Auth(user): Auth,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let Some(mut client) = state.config.chat.clone() else {
        return Err(unconfigured());
    };
    let top_k = validate(&req)?;
    if let Some(model) = req.model.as_deref().filter(|m| *m != client.model()) {
        let offered = client.offered().await;
        if !offered.iter().any(|o| o == model) {
            return Err(ApiError::bad_request(
                "unknown_model",
                format!("{model:?} is not offered here: pick one of {}", offered.join(", ")),
            ));
        }
        client = client.for_model(model);
    }
    let started = Instant::now();
    let question = req.messages.last().map(|m| m.content.clone()).unwrap_or_default();
    let mut recorder = match req.conversation {
        Some(id) => Some(Recorder::open(&state, user, id, question.clone()).await?),
        None => None,
    };
    let mut sources = Vec::new();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if req.rag {
        let store = Arc::clone(&state.store);
        let rag = blocking(move || store.user(user).rag_status()).await??;
        if !rag.available {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "rag_unavailable",
                "none of your documents is ready to search yet: upload one and wait until \
                 GET /v1/rag/status says available, or send rag: false",
            ));
        }
        let mode = crate::routes::search::mode(req.mode.as_deref())?;
        let options = ragmill_pipeline::SearchOptions { top_k, mode, documents: req.documents };
        let hits = state.pipeline.search(user, &question, options).await?;
        messages.push(ChatMessage::new("system", rag_prompt(&hits)));
        sources = numbered(hits);
    }
    messages.extend(req.messages.into_iter().map(|m| ChatMessage::new(m.role, m.content)));
    let upstream = client.stream(&messages).await.map_err(|e| {
        tracing::warn!(error = %e, "chat model unavailable");
        ApiError::new(StatusCode::BAD_GATEWAY, "chat_backend_unavailable", describe(&e))
    })?;

    let model = client.model().to_owned();
    if let Some(r) = recorder.as_mut() {
        r.sources(&sources);
        r.model(client.model());
    }
    let first = futures::stream::once(async move { ChatEvent::Sources(ChatSources { sources }) });
    // The recorder rides in the stream's state: finished at `done`, dropped (saved as
    // stopped) when the client goes away or the model fails.
    let rest = futures::stream::unfold(Some((upstream, 0usize, recorder)), move |state| {
        let model = model.clone();
        async move {
            let (mut upstream, tokens, mut recorder) = state?;
            Some(match upstream.next().await {
                Some(Ok(content)) => {
                    if let Some(r) = recorder.as_mut() {
                        r.push(&content);
                    }
                    (
                        ChatEvent::Token(ChatToken { content }),
                        Some((upstream, tokens + 1, recorder)),
                    )
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, tokens, "chat model failed mid-answer");
                    let code = "chat_backend_failed".to_owned();
                    (ChatEvent::Error(ErrorBody { code, message: describe(&e) }), None)
                }
                None => {
                    if let Some(r) = recorder {
                        r.finish();
                    }
                    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(0);
                    (ChatEvent::Done(ChatDone { model, tokens, elapsed_ms }), None)
                }
            })
        }
    });
    let events = first.chain(rest).map(|e| Ok::<_, Infallible>(e.to_sse()));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The 503 of a server without a chat model.
fn unconfigured() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "chat_unconfigured",
        "no chat model is configured on this server: start it with `ragmill serve \
         --chat-backend ollama|openai --chat-endpoint URL --chat-model NAME` (or the [chat] \
         table of ragmill.toml, or RAGMILL_CHAT_*); search still works",
    )
}

/// What a user is told of a chat server's failure: its status and message, or the kind of
/// failure, without the server's address (which is logged).
fn describe(e: &RemoteError) -> String {
    match e {
        RemoteError::Status { status, message, .. } => {
            format!("the chat model's server answered HTTP {status}: {message}")
        }
        RemoteError::Timeout { timeout, .. } => {
            format!("the chat model's server sent nothing for {} s", timeout.as_secs())
        }
        RemoteError::Transport { message, .. } => {
            let cause = message.rsplit(": ").next().unwrap_or("connection failed");
            format!("cannot reach the chat model's server: {cause}")
        }
        RemoteError::Stream { message, .. } => {
            format!("the chat model's server reported an error: {message}")
        }
        RemoteError::InvalidResponse { message, .. } => {
            format!("the chat model's server sent an invalid answer: {message}")
        }
        RemoteError::Shape { .. } | RemoteError::Config(_) => {
            "the chat model's server could not be used; see the server log".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_and_failures_described_without_the_address() {
        let e = ChatEvent::Token(ChatToken { content: "Hi".into() });
        assert_eq!(
            (e.name(), serde_json::to_string(&e).ok()),
            ("token", Some(r#"{"content":"Hi"}"#.into()))
        );
        let refused = RemoteError::Transport {
            url: "http://10.0.0.5:11434".into(),
            message: "error sending request for url (http://10.0.0.5:11434/api/chat): client \
                      error (Connect): tcp connect error: Connection refused (os error 111)"
                .into(),
        };
        let text = describe(&refused);
        assert_eq!(text, "cannot reach the chat model's server: Connection refused (os error 111)");
        let status = RemoteError::Status {
            url: "http://h".into(),
            status: 404,
            message: "model not found".into(),
        };
        assert_eq!(describe(&status), "the chat model's server answered HTTP 404: model not found");
    }
}
