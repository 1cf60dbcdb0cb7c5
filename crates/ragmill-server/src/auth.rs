//! Authentication: API keys in `Authorization: Bearer`, and short-lived tokens for browsers,
//! which cannot set headers on a WebSocket, an EventSource or a tab they open: event tokens
//! (one stream each) and links to one document's original (any number of requests until they
//! expire, so a PDF viewer may fetch the file again to save it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ragmill_core::{DocumentId, UserId};

use crate::error::{ApiError, blocking};
use crate::history::now_ms;
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

/// Whether the API key of `user` with prefix `key_prefix` is still valid (not revoked).
pub async fn key_active(state: &AppState, user: UserId, key_prefix: &str) -> bool {
    let (store, prefix) = (Arc::clone(&state.store), key_prefix.to_owned());
    matches!(blocking(move || store.key_active(user, &prefix)).await, Ok(Ok(true)))
}

/// Event tokens for browsers, signed rather than remembered, so any API server that shares the
/// secret accepts them: `v1.<user>.<key prefix>.<expires ms>.<nonce>.<mac>`, the MAC a keyed
/// BLAKE3 of everything before it. A token is bound to the API key it was issued for: once that
/// key is revoked the token opens nothing. Each token opens one stream: redeemed nonces are
/// remembered until they expire (in this process; another server sharing the secret keeps its
/// own list).
///
/// The same secret signs links to a document's original,
/// `f1.<user>.<key prefix>.<document>.<expires ms>.<mac>`: bound to one document and one key
/// too, but good for any number of requests until they expire ([`EventTokens::LINK_TTL`]).
/// Neither kind is accepted as the other.
pub struct EventTokens {
    secret: [u8; 32],
    used: Mutex<HashMap<String, u64>>,
}

/// A redeemed event token: whose, and under which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user.
    pub user: UserId,
    /// The prefix of the API key it was issued under.
    pub key_prefix: String,
}

impl EventTokens {
    /// How long a token may be used to open an event stream.
    pub const TTL: Duration = Duration::from_secs(60);

    /// How long a link to a document's original works.
    pub const LINK_TTL: Duration = Duration::from_secs(3600);

    /// Tokens signed with `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret, used: Mutex::default() }
    }

    /// Tokens signed with a random secret (valid on this process only). Without the
    /// system's randomness, the secret is derived from the clock and the process id, which a
    /// remote attacker cannot read either.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        if getrandom::fill(&mut secret).is_err() {
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            secret = *blake3::hash(seed.as_bytes()).as_bytes();
        }
        Self::new(secret)
    }

    fn mac(&self, body: &str) -> String {
        blake3::keyed_hash(&self.secret, body.as_bytes()).to_hex().to_string()
    }

    /// A new token for `user`, bound to the key whose prefix is `key_prefix`.
    pub fn issue(&self, user: UserId, key_prefix: &str) -> Result<String, ApiError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(ApiError::internal)?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let expires = now_ms().saturating_add(Self::TTL.as_millis() as u64);
        let body = format!("v1.{}.{key_prefix}.{expires}.{nonce}", user.0);
        let mac = self.mac(&body);
        Ok(format!("{body}.{mac}"))
    }

    /// The claims of a well-signed token that has not expired and was not used before.
    pub fn redeem(&self, token: &str) -> Option<TokenClaims> {
        let (body, mac) = token.rsplit_once('.')?;
        let given = blake3::Hash::from_hex(mac).ok()?;
        // blake3::Hash compares in constant time.
        if given != blake3::keyed_hash(&self.secret, body.as_bytes()) {
            return None;
        }
        let mut parts = body.split('.');
        let (version, user, prefix, expires, nonce) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "v1" || parts.next().is_some() {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        let now = now_ms();
        if expires <= now {
            return None;
        }
        let mut used = self.used.lock().ok()?;
        used.retain(|_, until| *until > now);
        if used.insert(nonce.to_owned(), expires).is_some() {
            return None; // a second use
        }
        Some(TokenClaims { user: UserId(user.parse().ok()?), key_prefix: prefix.to_owned() })
    }

    /// A link token for `document` of `user`, bound to the key whose prefix is `key_prefix`.
    pub fn issue_link(&self, user: UserId, key_prefix: &str, document: DocumentId) -> String {
        let expires = now_ms().saturating_add(Self::LINK_TTL.as_millis() as u64);
        let body = format!("f1.{}.{key_prefix}.{}.{expires}", user.0, document.0);
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// The claims of a well-signed link token for `document` that has not expired.
    pub fn check_link(&self, token: &str, document: DocumentId) -> Option<TokenClaims> {
        let (body, mac) = token.rsplit_once('.')?;
        let given = blake3::Hash::from_hex(mac).ok()?;
        // blake3::Hash compares in constant time.
        if given != blake3::keyed_hash(&self.secret, body.as_bytes()) {
            return None;
        }
        let mut parts = body.split('.');
        let (version, user, prefix, doc, expires) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "f1" || parts.next().is_some() || doc.parse::<i64>().ok()? != document.0 {
            return None;
        }
        if expires.parse::<u64>().ok()? <= now_ms() {
            return None;
        }
        Some(TokenClaims { user: UserId(user.parse().ok()?), key_prefix: prefix.to_owned() })
    }
}

/// The prefix of an API key (`rmk_<prefix>_<secret>`), which names it without revealing it.
pub fn key_prefix(key: &str) -> Option<&str> {
    key.strip_prefix("rmk_").and_then(|rest| rest.split('_').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_stream_for_its_user_and_a_forged_one_none() {
        let tokens = EventTokens::new([7; 32]);
        let token = tokens.issue(UserId(4), "abcdef012345").expect("issue");
        let other_server = EventTokens::new([7; 32]);
        assert_eq!(
            other_server.redeem(&token),
            Some(TokenClaims { user: UserId(4), key_prefix: "abcdef012345".into() }),
            "valid on another server with the same secret"
        );
        assert!(tokens.redeem(&token).is_some());
        assert_eq!(tokens.redeem(&token), None, "used once here");
        let forged = token.replacen("v1.4.", "v1.5.", 1);
        assert_eq!(EventTokens::new([7; 32]).redeem(&forged), None, "another user: bad MAC");
        assert_eq!(EventTokens::new([8; 32]).redeem(&token), None, "another secret");
        assert_eq!(tokens.redeem("v1.4.x.1.n.zz"), None);
    }

    #[test]
    fn a_link_opens_its_document_only_any_number_of_times_and_is_no_event_token() {
        let tokens = EventTokens::new([7; 32]);
        let link = tokens.issue_link(UserId(4), "abcdef012345", DocumentId(9));
        let claims = TokenClaims { user: UserId(4), key_prefix: "abcdef012345".into() };
        assert_eq!(tokens.check_link(&link, DocumentId(9)), Some(claims.clone()));
        assert_eq!(tokens.check_link(&link, DocumentId(9)), Some(claims), "used again");
        assert_eq!(tokens.check_link(&link, DocumentId(10)), None, "another document");
        assert_eq!(EventTokens::new([8; 32]).check_link(&link, DocumentId(9)), None);
        assert_eq!(tokens.redeem(&link), None, "a link opens no event stream");
        let event = tokens.issue(UserId(4), "abcdef012345").expect("issue");
        assert_eq!(tokens.check_link(&event, DocumentId(9)), None, "an event token is no link");
        let forged = link.replacen("f1.4.", "f1.5.", 1);
        assert_eq!(tokens.check_link(&forged, DocumentId(9)), None, "another user: bad MAC");
        // Expired: signed correctly, but its time is past.
        let body = "f1.4.abcdef012345.9.1000";
        let old = format!("{body}.{}", tokens.mac(body));
        assert_eq!(tokens.check_link(&old, DocumentId(9)), None);
    }
}
