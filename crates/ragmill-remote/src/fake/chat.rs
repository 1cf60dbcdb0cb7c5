//! The stand-in's chat side: `POST /api/chat` (Ollama, NDJSON) and `POST /v1/chat/completions`
//! (OpenAI, server-sent events), streamed one word at a time, and the model lists
//! (`GET /api/tags`, `GET /v1/models`).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::{State, Wire, error, misbehaviour, read_request};

/// The stand-in's chat answer to `request` (a chat request body):
/// `Stand-in answer to: <last user message>.`, then ` Sources: [1] [2] ...` with one `[n]` per
/// passage numbered `[1]`, `[2]`, ... at the start of a line of the system messages (none, no
/// `Sources:`).
pub fn chat_reply(request: &Value) -> String {
    let messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    fn text<'a>(m: &'a Value, role: &str) -> Option<&'a str> {
        (m.get("role").and_then(Value::as_str) == Some(role))
            .then(|| m.get("content").and_then(Value::as_str))
            .flatten()
    }
    let question = messages.iter().rev().find_map(|m| text(m, "user")).unwrap_or_default();
    let system: Vec<&str> = messages.iter().filter_map(|m| text(m, "system")).collect();
    let passages = (1..)
        .take_while(|n| {
            let tag = format!("[{n}] ");
            system.iter().flat_map(|s| s.lines()).any(|l| l.starts_with(&tag))
        })
        .count();
    let mut reply = format!("Stand-in answer to: {question}.");
    if passages > 0 {
        reply.push_str(" Sources:");
        for n in 1..=passages {
            reply.push_str(&format!(" [{n}]"));
        }
    }
    reply
}

/// `GET /api/tags` or `GET /v1/models`: the models set with [`FakeServer::set_models`], in the
/// wire's shape.
pub(super) async fn handle_models(Extract(state): Extract<Arc<State>>) -> axum::Json<Value> {
    let models = state.models.lock().unwrap_or_else(PoisonError::into_inner).clone();
    axum::Json(match state.wire {
        Wire::Ollama => json!({"models": models.iter().map(|m| json!({
            "name": m, "model": m, "size": 1, "details": {"family": "stand-in"},
        })).collect::<Vec<_>>()}),
        Wire::OpenAi => json!({"object": "list", "data": models.iter().map(|m| json!({
            "id": m, "object": "model", "owned_by": "stand-in",
        })).collect::<Vec<_>>()}),
    })
}

pub(super) async fn handle_chat(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.chat_requests.fetch_add(1, SeqCst);
    let (auth, request) = match read_request(&state, &headers, &body) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    *state.last_chat.lock().unwrap_or_else(PoisonError::into_inner) = Some(request.clone());
    if let Some(answer) = misbehaviour(&state, auth.as_deref()).await {
        return answer;
    }
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error(&state, StatusCode::BAD_REQUEST, "model is required");
    };
    if !request.get("messages").is_some_and(Value::is_array) {
        return error(&state, StatusCode::BAD_REQUEST, "messages is required");
    }
    // Ollama streams unless told not to; OpenAI only when asked. The stand-in only streams.
    let streams = request.get("stream").and_then(Value::as_bool);
    if !streams.unwrap_or(state.wire == Wire::Ollama) {
        return error(&state, StatusCode::BAD_REQUEST, "this stand-in only streams");
    }
    let reply = chat_reply(&request);
    let tokens = reply.split_inclusive(' ');
    let (content_type, lines): (&str, Vec<String>) = match state.wire {
        Wire::Ollama => {
            let created = "2024-01-01T00:00:00.000000000Z";
            let line = |content: &str, done: bool| {
                json!({
                    "model": model,
                    "created_at": created,
                    "message": {"role": "assistant", "content": content},
                    "done": done,
                })
            };
            let mut lines: Vec<String> = tokens.map(|t| format!("{}\n", line(t, false))).collect();
            let mut last = line("", true);
            last["done_reason"] = json!("stop");
            last["total_duration"] = json!(1_000_000);
            last["eval_count"] = json!(lines.len());
            lines.push(format!("{last}\n"));
            ("application/x-ndjson", lines)
        }
        Wire::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                let c = json!({
                    "id": "chatcmpl-stand-in",
                    "object": "chat.completion.chunk",
                    "created": 1_704_067_200,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                });
                format!("data: {c}\n\n")
            };
            let mut lines = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
            lines.extend(tokens.map(|t| chunk(json!({"content": t}), Value::Null)));
            lines.push(chunk(json!({}), json!("stop")));
            lines.push("data: [DONE]\n\n".to_owned());
            ("text/event-stream", lines)
        }
    };
    let delay = Duration::from_micros(state.token_delay_us.load(SeqCst));
    let body = futures::stream::iter(lines).then(move |line| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, std::convert::Infallible>(line)
    });
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response()
}
