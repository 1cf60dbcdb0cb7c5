//! The HTTP plumbing: one client for one Chroma server, JSON in and out, and every way a request
//! can fail turned into a one-line [`ApiError`] that names the URL.

use std::time::Duration;

use ragmill_core::IndexError;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ChromaConfig;

/// Longest message kept from an error or a server's answer.
const MAX_MESSAGE: usize = 300;

/// Connecting alone may take this long; the whole request, the configured timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A failed request. The index decides on the variant (and on `status`), never on the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// No answer (refused, reset, timed out, cut short), or 5xx, 408 or 429: try later.
    Unavailable(String),
    /// Another error status: Chroma refused the request.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The URL, the status and Chroma's `error: message`.
        message: String,
    },
    /// A success status with a body that is not what the API promises.
    Invalid(String),
    /// A query vector of another dimension than the collection's (found before asking).
    Dimension {
        /// The query's.
        got: usize,
        /// The collection's.
        want: usize,
    },
}

impl ApiError {
    /// Whether Chroma answered 404 (a tenant, database or collection that does not exist).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// Whether Chroma answered 409 (it already exists: someone created it first).
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, ApiError::Status { status, .. } if *status == StatusCode::CONFLICT)
    }
}

impl From<ApiError> for IndexError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(m) => IndexError::Unavailable(m),
            ApiError::Status { message, .. } | ApiError::Invalid(message) => {
                IndexError::Failed(message)
            }
            ApiError::Dimension { got, want } => IndexError::Dimension { got, want },
        }
    }
}

/// One Chroma server's API: the client (with the token's headers), its `/api/v2` base URL and
/// the per-request timeout.
pub(crate) struct Api {
    http: reqwest::Client,
    /// The configured URL followed by `api/v2`.
    base: Url,
    timeout: Duration,
}

impl Api {
    /// A client for `config`'s server. Does no I/O; fails on a URL that is not http(s) or a
    /// token that cannot be a header value (the error does not repeat the token).
    pub(crate) fn new(config: &ChromaConfig) -> Result<Api, IndexError> {
        let bad_url = |why: &str| IndexError::Failed(format!("chroma URL {:?}: {why}", config.url));
        let mut base = Url::parse(&config.url).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url("not an http:// or https:// URL"));
        }
        base.path_segments_mut()
            .map_err(|()| bad_url("cannot take a path"))?
            .pop_if_empty()
            .extend(["api", "v2"]);
        let mut headers = HeaderMap::new();
        if let Some(token) = &config.token {
            let value = |text: String| {
                let mut v = HeaderValue::from_str(&text).map_err(|_| {
                    IndexError::Failed("the chroma token is not a valid header value".into())
                })?;
                // Kept out of reqwest's and hyper's debug output.
                v.set_sensitive(true);
                Ok::<_, IndexError>(v)
            };
            headers.insert("x-chroma-token", value(token.clone())?);
            headers.insert(AUTHORIZATION, value(format!("Bearer {token}"))?);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ragmill-chroma/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| IndexError::Failed(format!("HTTP client: {}", chain(&e))))?;
        Ok(Api { http, base, timeout: config.timeout })
    }

    /// The base URL followed by `segments`, each escaped as one path segment.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// `GET` `segments`, decoding the answer as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        self.send(Method::GET, segments, None::<&()>).await
    }

    /// `POST` `body` as JSON to `segments`, decoding the answer as `T`.
    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ApiError> {
        self.send(Method::POST, segments, Some(body)).await
    }

    /// `DELETE` `segments`, decoding the answer as `T`.
    pub(crate) async fn delete<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, ApiError> {
        self.send(Method::DELETE, segments, None::<&()>).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = self.url(segments);
        let target = format!("chroma {method} {url}");
        let transport = |e: reqwest::Error| {
            ApiError::Unavailable(if e.is_timeout() {
                format!("{target}: no answer within {} ms", self.timeout.as_millis())
            } else {
                format!("{target}: {}", chain(&e))
            })
        };
        let mut request = self.http.request(method.clone(), url.clone()).timeout(self.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let message =
                format!("{target}: HTTP {}: {}", status.as_u16(), error_message(status, &bytes));
            tracing::debug!(%status, "{message}");
            let retry_later = status.is_server_error()
                || matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT);
            return Err(if retry_later {
                ApiError::Unavailable(message)
            } else {
                ApiError::Status { status, message }
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::Invalid(format!(
                "chroma answered {method} {url} with an unreadable body: {}",
                one_line(&e.to_string())
            ))
        })
    }
}

/// The message of an error body: Chroma's `{"error": KIND, "message": TEXT}` as `KIND: TEXT`,
/// else the body's text, else the status's reason.
pub(crate) fn error_message(status: StatusCode, body: &[u8]) -> String {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        json.as_ref().and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let text = match (field("error"), field("message")) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = one_line(&text);
    if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text }
}

/// `e` and its causes on one line (see [`ragmill_core::error_chain`]).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    ragmill_core::error_chain(e, MAX_MESSAGE)
}

/// `s` on one line of at most [`MAX_MESSAGE`] characters.
pub(crate) fn one_line(s: &str) -> String {
    ragmill_core::one_line(s, MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let m = |s: &str| error_message(StatusCode::BAD_REQUEST, s.as_bytes());
        assert_eq!(
            m(
                r#"{"error":"InvalidArgumentError","message":"Collection expecting embedding with dimension of 3, got 2"}"#
            ),
            "InvalidArgumentError: Collection expecting embedding with dimension of 3, got 2"
        );
        assert_eq!(m("Bad Gateway\n"), "Bad Gateway");
        assert_eq!(m(""), "Bad Request");
    }

    #[test]
    fn urls_escape_segments_and_keep_a_prefix() {
        let api = Api::new(&ChromaConfig::new("http://h:1/prefix/")).expect("valid");
        assert_eq!(
            api.url(&["tenants", "a b/c"]).as_str(),
            "http://h:1/prefix/api/v2/tenants/a%20b%2Fc"
        );
        assert!(Api::new(&ChromaConfig::new("ftp://h")).is_err());
        let token =
            ChromaConfig { token: Some("bad\nsecret".into()), ..ChromaConfig::new("http://h") };
        let err = Api::new(&token).err().expect("a newline is no header value");
        assert!(!err.to_string().contains("secret"));
    }
}
