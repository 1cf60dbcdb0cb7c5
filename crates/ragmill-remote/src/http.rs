//! The HTTP plumbing both clients share: building the reqwest client, posting JSON, turning
//! every way a request can fail into a one-line [`RemoteError`] that names the endpoint.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{RemoteError, chain, one_line};

/// Longest error message kept from a server's answer.
const MAX_MESSAGE: usize = 300;

/// Builds the HTTP client: plain http always; https with the `rustls` feature (rustls on
/// *ring*, the platform's trust store). One client is shared by all endpoints of a pool, so
/// connections are kept alive and reused per host.
pub(crate) fn client() -> Result<reqwest::Client, RemoteError> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("ragmill-remote/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60));
    #[cfg(feature = "rustls")]
    let builder = builder.tls_backend_preconfigured(crate::tls::client_config()?);
    builder.build().map_err(|e| RemoteError::Config(format!("HTTP client: {}", chain(&e))))
}

/// One JSON request to an endpoint.
pub(crate) struct Post<'a, B> {
    pub http: &'a reqwest::Client,
    /// The endpoint as configured, for messages.
    pub endpoint: &'a str,
    /// The full URL to post to.
    pub url: &'a str,
    pub bearer: Option<&'a str>,
    pub body: &'a B,
    pub timeout: Duration,
}

impl<B: Serialize> Post<'_, B> {
    /// Sends the request and decodes a success answer as `T`. An error status becomes
    /// [`RemoteError::Status`] carrying the server's message.
    pub(crate) async fn send<T: DeserializeOwned>(self) -> Result<T, RemoteError> {
        let endpoint = self.endpoint;
        let transport = |e: reqwest::Error| transport_error(endpoint, self.timeout, &e);
        let mut request = self.http.post(self.url).timeout(self.timeout).json(self.body);
        if let Some(key) = self.bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(status_error(endpoint, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| RemoteError::InvalidResponse {
            url: endpoint.to_owned(),
            message: one_line(&e.to_string(), MAX_MESSAGE),
        })
    }
}

/// A request to `endpoint` that failed in transport: [`RemoteError::Timeout`] (reporting
/// `timeout`) when reqwest timed out, else [`RemoteError::Transport`] with the causes.
pub(crate) fn transport_error(
    endpoint: &str,
    timeout: Duration,
    e: &reqwest::Error,
) -> RemoteError {
    if e.is_timeout() {
        RemoteError::Timeout { url: endpoint.to_owned(), timeout }
    } else {
        RemoteError::Transport { url: endpoint.to_owned(), message: chain(e) }
    }
}

/// An error status from `endpoint`, with the message of its `body` (or the status's reason).
pub(crate) fn status_error(
    endpoint: &str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> RemoteError {
    let message = error_message(body)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    RemoteError::Status { url: endpoint.to_owned(), status: status.as_u16(), message }
}

/// The message in an error body: Ollama's `{"error": "..."}`, OpenAI's
/// `{"error": {"message": "..."}}`, the `{"message"|"detail": "..."}` some compatible servers
/// send, or else the body's text itself. `None` for an empty body.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let from_json = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let error = v.get("error");
        error
            .and_then(text)
            .or_else(|| error.and_then(|e| e.get("message")).and_then(text))
            .or_else(|| v.get("message").and_then(text))
            .or_else(|| v.get("detail").and_then(text))
    });
    let message = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message = one_line(&message, MAX_MESSAGE);
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_of_each_dialect() {
        let m = |s: &str| error_message(s.as_bytes());
        assert_eq!(
            m(r#"{"error":"model \"x\" not found"}"#).as_deref(),
            Some("model \"x\" not found")
        );
        assert_eq!(
            m(r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#)
                .as_deref(),
            Some("Incorrect API key")
        );
        assert_eq!(m(r#"{"detail":"Not Found"}"#).as_deref(), Some("Not Found"));
        assert_eq!(m("Bad Gateway\n").as_deref(), Some("Bad Gateway"));
        assert_eq!(m(""), None);
    }
}
