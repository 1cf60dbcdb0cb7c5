//! `GET /v1/events` (WebSocket, or Server-Sent Events with `Accept: text/event-stream`) and
//! `POST /v1/events/token`.
//!
//! A stream opens with a snapshot (the user's documents not yet ready or failed, and the RAG
//! status), then carries the user's events as JSON, and only that user's.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use ragmill_core::UserId;
use ragmill_store::DocumentState;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{Auth, EventTokens};
use crate::error::{ApiError, blocking};
use crate::routes::documents::view;
use crate::state::AppState;

/// `POST /v1/events/token`: a short-lived token for opening an event stream from a browser.
pub async fn token(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<Value>, ApiError> {
    let token = state.tokens.issue(user)?;
    Ok(Json(json!({"token": token, "expires_in": EventTokens::TTL.as_secs()})))
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    token: Option<String>,
}

/// `GET /v1/events`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let user = authenticate(&state, &headers, q.token.as_deref()).await?;
    if let Ok(upgrade) = upgrade {
        check_origin(&state, &headers)?;
        let rx = state.events.subscribe(user);
        let snapshot = snapshot(&state, user).await?;
        return Ok(upgrade
            .on_upgrade(move |socket| websocket(socket, state, user, rx, snapshot))
            .into_response());
    }
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_sse {
        return Err(ApiError::bad_request(
            "expected_stream",
            "open this as a WebSocket, or send Accept: text/event-stream for Server-Sent Events",
        ));
    }
    let rx = state.events.subscribe(user);
    let first = snapshot(&state, user).await?;
    let stream = sse_stream(state, user, rx, first);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<UserId, ApiError> {
    if let Some(user) = token.and_then(|t| state.tokens.redeem(t)) {
        return Ok(user);
    }
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned())
        .ok_or_else(ApiError::unauthorized)?;
    let store = Arc::clone(&state.store);
    blocking(move || store.authenticate(&key)).await??.ok_or_else(ApiError::unauthorized)
}

/// Browsers always send Origin on a WebSocket; it must be this server or an allowed origin.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(()); // not a browser
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let same_host = origin.split_once("://").is_some_and(|(_, rest)| rest == host);
    let allowed = state.config.allowed_origins.iter().any(|o| o == "*" || o == origin);
    if same_host || allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!("origin {origin} is not allowed"),
        ))
    }
}

/// The snapshot a stream opens with.
async fn snapshot(state: &AppState, user: UserId) -> Result<Value, ApiError> {
    let store = Arc::clone(&state.store);
    let (docs, rag) = blocking(move || {
        Ok::<_, ApiError>((store.user(user).documents()?, store.user(user).rag_status()?))
    })
    .await??;
    let pending: Vec<Value> = docs
        .iter()
        .filter(|d| matches!(d.state, DocumentState::Queued | DocumentState::Processing))
        .map(|d| view(state, d))
        .collect();
    Ok(json!({"type": "snapshot", "documents": pending, "rag": rag}))
}

async fn websocket(
    mut socket: WebSocket,
    state: AppState,
    user: UserId,
    mut rx: broadcast::Receiver<crate::events::Event>,
    first: Value,
) {
    if socket.send(Message::Text(first.to_string().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => {
                let text = match event {
                    Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                    Err(broadcast::error::RecvError::Lagged(_)) => match snapshot(&state, user).await {
                        Ok(s) => s.to_string(),
                        Err(_) => return,
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // clients have nothing to say
            },
        }
    }
}

fn sse_stream(
    state: AppState,
    user: UserId,
    rx: broadcast::Receiver<crate::events::Event>,
    first: Value,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let head =
        futures::stream::once(async move { Ok(SseEvent::default().data(first.to_string())) });
    let rest = futures::stream::unfold((rx, state), move |(mut rx, state)| async move {
        let data = match rx.recv().await {
            Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                snapshot(&state, user).await.ok()?.to_string()
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(SseEvent::default().data(data)), (rx, state)))
    });
    head.chain(rest)
}
