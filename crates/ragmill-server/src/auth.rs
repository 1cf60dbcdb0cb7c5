//! Authentication: API keys in `Authorization: Bearer`, and short-lived event tokens for
//! browsers, which cannot set headers on a WebSocket or an EventSource.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ragmill_core::UserId;

use crate::error::{ApiError, blocking};
use crate::state::AppState;

/// The authenticated user of a request.
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub UserId);

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The user of an API key, if it is known and not revoked.
pub async fn user_of_key(state: &AppState, key: &str) -> Result<Option<UserId>, ApiError> {
    let (store, key) = (state.store.clone(), key.to_owned());
    blocking(move || store.authenticate(&key)).await?.map_err(ApiError::from)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        user_of_key(state, key).await?.map(Auth).ok_or_else(ApiError::unauthorized)
    }
}

/// Event tokens: random, short-lived, held in memory only.
#[derive(Default)]
pub struct EventTokens {
    tokens: Mutex<HashMap<String, (UserId, Instant)>>,
}

impl EventTokens {
    /// How long a token may be used to open an event stream.
    pub const TTL: Duration = Duration::from_secs(60);

    /// A new token for `user`.
    pub fn issue(&self, user: UserId) -> Result<String, ApiError> {
        let mut buf = [0u8; 24];
        getrandom::fill(&mut buf).map_err(ApiError::internal)?;
        let token: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.tokens.lock().map_err(ApiError::internal)?;
        let now = Instant::now();
        map.retain(|_, (_, expires)| *expires > now);
        map.insert(token.clone(), (user, now + Self::TTL));
        Ok(token)
    }

    /// The user of a token that has not expired.
    pub fn redeem(&self, token: &str) -> Option<UserId> {
        let map = self.tokens.lock().ok()?;
        map.get(token).filter(|(_, expires)| *expires > Instant::now()).map(|(user, _)| *user)
    }
}
