//! Why one request to one endpoint failed.

use std::time::Duration;

use ragmill_core::{EmbedError, RerankError};

/// A failed request to one endpoint. Every message is one line and names the endpoint.
///
/// Converts into [`EmbedError`]: shape problems become [`EmbedError::Shape`], configuration
/// problems [`EmbedError::Unavailable`], everything else [`EmbedError::Backend`]. Converts into
/// [`RerankError`] too, by whether the same request may succeed later.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message (from its JSON error body, or the body itself).
        message: String,
    },
    /// No answer: connection refused or reset, DNS, TLS, a body cut short.
    #[error("{url}: {message}")]
    Transport {
        /// The endpoint.
        url: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// No complete answer within the attempt timeout.
    #[error("{url}: no answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The endpoint.
        url: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// A success status with a body that is not the protocol's (bad JSON, bad base64, bad
    /// indices, non-finite or all-zero vectors).
    #[error("{url}: invalid response: {message}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The wrong number of vectors, or vectors of the wrong or of mixed dimensions.
    #[error(
        "{url}: returned {got} vectors of dimension {dim}, expected {want} of dimension {want_dim}"
    )]
    Shape {
        /// The endpoint.
        url: String,
        /// Vectors received.
        got: usize,
        /// Their dimension (the first one that differs, for mixed dimensions).
        dim: usize,
        /// Vectors expected.
        want: usize,
        /// Dimension expected.
        want_dim: usize,
    },
    /// A streamed answer that began well and then reported an error (Ollama's `{"error": ...}`
    /// line, an OpenAI `data:` event carrying `error`).
    #[error("{url}: error in the stream: {message}")]
    Stream {
        /// The endpoint.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The client could not be set up (bad URL, TLS unavailable).
    #[error("invalid endpoint configuration: {0}")]
    Config(String),
}

impl RemoteError {
    /// Whether the endpoint answered vectors of a dimension other than the one expected: a
    /// misconfigured server (wrong model), which the pool ejects at once.
    pub fn is_wrong_dimension(&self) -> bool {
        matches!(self, RemoteError::Shape { got, want, dim, want_dim, .. } if got == want && dim != want_dim)
    }
}

impl From<RemoteError> for EmbedError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Shape { got, dim, want, want_dim, .. } => {
                EmbedError::Shape { got, dim, want, want_dim }
            }
            RemoteError::Config(m) => EmbedError::Unavailable(m),
            other => EmbedError::Backend(other.to_string()),
        }
    }
}

/// For a reranker: no answer, a timeout, a server error (5xx), 408 or 429 may pass later
/// ([`RerankError::Unavailable`]); a client error (4xx) or a bad answer will not
/// ([`RerankError::Invalid`]).
impl From<RemoteError> for RerankError {
    fn from(e: RemoteError) -> Self {
        let retryable = match &e {
            RemoteError::Transport { .. } | RemoteError::Timeout { .. } => true,
            RemoteError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            RemoteError::InvalidResponse { .. }
            | RemoteError::Shape { .. }
            | RemoteError::Stream { .. }
            | RemoteError::Config(_) => false,
        };
        if retryable {
            RerankError::Unavailable(e.to_string())
        } else {
            RerankError::Invalid(e.to_string())
        }
    }
}

/// `e` and its causes on one line (see [`ragmill_core::error_chain`]).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    ragmill_core::error_chain(e, 300)
}

pub(crate) use ragmill_core::one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_endpoint() {
        let e = RemoteError::Status {
            url: "http://a:1".into(),
            status: 500,
            message: one_line("boom\nsecond line", 300),
        };
        assert_eq!(e.to_string(), "http://a:1: HTTP 500: boom second line");
        let embed: EmbedError = e.into();
        assert!(
            matches!(embed, EmbedError::Backend(m) if m.contains("http://a:1") && m.contains("500"))
        );
        assert_eq!(one_line(&"x".repeat(10), 4), "xxxx…");
    }

    #[test]
    fn wrong_dimension_is_told_apart_from_wrong_count() {
        let shape =
            |got, dim| RemoteError::Shape { url: "u".into(), got, dim, want: 2, want_dim: 8 };
        assert!(shape(2, 16).is_wrong_dimension());
        assert!(!shape(1, 8).is_wrong_dimension());
        assert!(matches!(EmbedError::from(shape(1, 8)), EmbedError::Shape { got: 1, want: 2, .. }));
    }
}
