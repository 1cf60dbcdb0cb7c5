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
use ragmill_core::{EventStream, Received, UserId};
use ragmill_store::DocumentState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, EventTokens, TokenClaims};
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::openapi::EventSchema;
use crate::routes::documents::DocumentView;
use crate::routes::search::RagStatusView;
use crate::state::AppState;

/// A short-lived token for `GET /v1/events?token=...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EventToken {
    /// Pass as `?token=` when opening the stream.
    pub token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// `POST /v1/events/token`: a short-lived token for opening an event stream from a browser.
#[utoipa::path(
    post,
    path = "/v1/events/token",
    operation_id = "createEventToken",
    summary = "A short-lived token for opening the event stream from a browser",
    tag = "events",
    responses(
        (status = 200, description = "A token valid for `expires_in` seconds", body = EventToken),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn token(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
) -> Result<Json<EventToken>, ApiError> {
    let prefix = crate::auth::bearer(&headers)
        .and_then(crate::auth::key_prefix)
        .ok_or_else(ApiError::unauthorized)?;
    let token = state.tokens.issue(user, prefix)?;
    Ok(Json(EventToken { token, expires_in: EventTokens::TTL.as_secs() }))
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    token: Option<String>,
}

/// The `type` of a [`Snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum SnapshotType {
    /// The only value.
    #[serde(rename = "snapshot")]
    Snapshot,
}

/// The first message of every stream, sent again to a client that fell behind: the user's
/// documents still queued or processing, and the RAG status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "type")]
    pub kind: SnapshotType,
    /// Documents queued or processing.
    pub documents: Vec<DocumentView>,
    /// Whether the collection is searchable yet.
    pub rag: RagStatusView,
}

/// One message of an event stream (a WebSocket text message, or an SSE `data:` line): a
/// snapshot or an event, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamMessage {
    /// `type: snapshot`.
    Snapshot(Snapshot),
    /// `type: document.progress`, `document.ready`, `document.failed`, `document.paused` or
    /// `rag.available`.
    Event(EventSchema),
}

impl StreamMessage {
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `GET /v1/events`.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "openEventStream",
    summary = "The user's live events, over WebSocket or Server-Sent Events",
    tag = "events",
    description = "Open it as a WebSocket (`Upgrade: websocket`; a \
browser's `Origin` must be this server or an allowed origin), or as Server-Sent Events with \
`Accept: text/event-stream`. Authenticate with `Authorization: Bearer KEY`, or from a browser \
with `?token=` from `POST /v1/events/token`. Every message is one JSON `StreamMessage`: first \
a `snapshot`, then `document.progress` (throttled per document; stage changes and completion \
always sent), `document.ready`, `document.failed`, `document.paused` and `rag.available`, \
for this user only. A \
client that falls behind is sent a fresh `snapshot` instead of the events it missed. Clients \
send nothing; SSE carries a keep-alive comment every 15 seconds.",
    params(("token" = Option<String>, Query, description = "A token from `POST /v1/events/token`, instead of the Authorization header")),
    responses(
        (status = 101, description = "Switching to a WebSocket: each text message is one `StreamMessage` as JSON, the first a `snapshot`"),
        (status = 200, description = "Server-Sent Events (with `Accept: text/event-stream`): each event's `data:` is one `StreamMessage` as JSON, the first a `snapshot`", body = StreamMessage, content_type = "text/event-stream"),
        (status = 400, description = "`expected_stream`: neither a WebSocket upgrade nor `Accept: text/event-stream`", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key or token", body = ErrorResponse),
        (status = 403, description = "`forbidden_origin`: a WebSocket from an origin not allowed", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = []), ("event_token" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if upgrade.is_ok() {
        // Before the token is redeemed: a refused origin must not use it up.
        check_origin(&state, &headers)?;
    }
    let claims = authenticate(&state, &headers, q.token.as_deref()).await?;
    let user = claims.user;
    if let Ok(upgrade) = upgrade {
        let rx = state.events.subscribe(user).await?;
        let rx = until_revoked(&state, &claims, rx);
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
    let rx = state.events.subscribe(user).await?;
    let rx = until_revoked(&state, &claims, rx);
    let first = snapshot(&state, user).await?;
    let stream = sse_stream(state, user, rx, first);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// How often an open stream re-checks that the key it was opened with is still valid.
const REVOCATION_CHECK: Duration = Duration::from_secs(2);

/// The user of the request and the key it came with: a token (itself bound to a key that must
/// still be valid), or an API key.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<TokenClaims, ApiError> {
    if let Some(claims) = token.and_then(|t| state.tokens.redeem(t)) {
        return if crate::auth::key_active(state, claims.user, &claims.key_prefix).await {
            Ok(claims)
        } else {
            Err(ApiError::unauthorized())
        };
    }
    let key = crate::auth::bearer(headers).ok_or_else(ApiError::unauthorized)?;
    let user = crate::auth::user_of_key(state, key).await?.ok_or_else(ApiError::unauthorized)?;
    let key_prefix = crate::auth::key_prefix(key).ok_or_else(ApiError::unauthorized)?.to_owned();
    Ok(TokenClaims { user, key_prefix })
}

/// `events`, ended as soon as the key the stream was opened with is revoked (checked every
/// [`REVOCATION_CHECK`]).
fn until_revoked(state: &AppState, claims: &TokenClaims, events: EventStream) -> EventStream {
    let (state, claims) = (state.clone(), claims.clone());
    let revoked = Box::pin(async move {
        loop {
            tokio::time::sleep(REVOCATION_CHECK).await;
            if !crate::auth::key_active(&state, claims.user, &claims.key_prefix).await {
                return;
            }
        }
    });
    Box::pin(events.take_until(revoked))
}

/// Browsers always send Origin on a WebSocket; it must be an allowed origin, the public URL's,
/// or this server's own. Its own only when the Host is a name this server is known by: a page
/// of `http://evil.example` whose name was rebound to this address (DNS rebinding) sends
/// `Host: evil.example`, equal to its Origin, and must not pass.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(()); // not a browser
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let config = &state.config;
    let allowed = config.allowed_origins.iter().any(|o| o == "*" || same_origin(o, origin))
        || config.public_url.as_deref().is_some_and(|u| same_origin(u, origin));
    let own = origin.split_once("://").is_some_and(|(scheme, rest)| {
        rest.eq_ignore_ascii_case(host) && known_host(host, scheme, state.local_addr.get())
    });
    if allowed || own {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!("origin {origin} is not allowed (see --allowed-origin and --public-url)"),
        ))
    }
}

/// Whether URL or origin `a` has the origin `b` (scheme, host and port; a path is ignored).
fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some((scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
    };
    origin(a).is_some_and(|a| origin(b) == Some(a))
}

/// Whether `host` (a Host header) names this server listening on `local`: `localhost` or an IP
/// address (a page cannot make its browser send one but for a URL of that address, so no name
/// was rebound), with the port it listens on. Unknown until [`crate::serve`] listens.
fn known_host(host: &str, scheme: &str, local: Option<&std::net::SocketAddr>) -> bool {
    let Some(local) = local else { return false };
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, port.parse::<u16>().ok()),
        _ => (host, Some(if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 })),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let known = name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok();
    known && port == Some(local.port())
}

/// The snapshot a stream opens with.
async fn snapshot(state: &AppState, user: UserId) -> Result<StreamMessage, ApiError> {
    let store = Arc::clone(&state.store);
    let (docs, rag) = blocking(move || {
        Ok::<_, ApiError>((store.user(user).documents()?, store.user(user).rag_status()?))
    })
    .await??;
    let in_flight: Vec<_> = docs
        .into_iter()
        .filter(|d| matches!(d.state, DocumentState::Queued | DocumentState::Processing))
        .collect();
    let documents = DocumentView::all(state, user, &in_flight).await;
    Ok(StreamMessage::Snapshot(Snapshot {
        kind: SnapshotType::Snapshot,
        documents,
        rag: rag.into(),
    }))
}

async fn websocket(
    mut socket: WebSocket,
    state: AppState,
    user: UserId,
    mut rx: EventStream,
    first: StreamMessage,
) {
    if socket.send(Message::Text(first.to_json().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = rx.next() => {
                let text = match event {
                    Some(Received::Event(event)) => StreamMessage::Event(event.into()).to_json(),
                    Some(Received::Lagged(_)) => match snapshot(&state, user).await {
                        Ok(s) => s.to_json(),
                        Err(_) => return,
                    },
                    None => return,
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
    rx: EventStream,
    first: StreamMessage,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let head = futures::stream::once(async move { Ok(SseEvent::default().data(first.to_json())) });
    let rest = futures::stream::unfold((rx, state), move |(mut rx, state)| async move {
        let data = match rx.next().await? {
            Received::Event(event) => StreamMessage::Event(event.into()).to_json(),
            Received::Lagged(_) => snapshot(&state, user).await.ok()?.to_json(),
        };
        Some((Ok(SseEvent::default().data(data)), (rx, state)))
    });
    head.chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_this_server_is_known_by_count_as_its_own() {
        let local: std::net::SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let known = |host: &str| known_host(host, "http", Some(&local));
        for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "192.168.1.5:8080"] {
            assert!(known(host), "{host}");
        }
        for host in ["evil.example:8080", "evil.example", "127.0.0.1:9090", "127.0.0.1", "[::1]"] {
            assert!(!known(host), "{host}");
        }
        assert!(known_host("localhost", "http", Some(&"127.0.0.1:80".parse().expect("addr"))));
        assert!(!known_host("127.0.0.1:8080", "http", None), "not listening: nothing is known");
        assert!(same_origin("https://rag.example/app/", "https://RAG.example"));
        assert!(!same_origin("https://rag.example", "http://rag.example"));
        assert!(!same_origin("https://rag.example", "https://rag.example.evil"));
    }
}
