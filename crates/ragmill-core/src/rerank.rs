//! The reranking seam: a second, costlier opinion on how well each search candidate answers the
//! query (a cross-encoder behind an HTTP `/rerank` endpoint, say), applied to the few fused top
//! candidates after retrieval.

use async_trait::async_trait;

/// Why a set of candidates could not be reranked. Either way the caller still has its retrieval
/// order; whether to fall back to it or to fail the search is its choice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RerankError {
    /// The reranker could not be reached or did not answer in time, or answered a server error
    /// (5xx) or "too many requests": the same call may succeed later.
    #[error("reranker unavailable: {0}")]
    Unavailable(String),
    /// The reranker answered something unusable: not the protocol's JSON, the wrong number of
    /// scores, an index out of range or twice, a non-finite score, or a client error (4xx: bad
    /// request, wrong key, unknown model). Asking again will not help.
    #[error("reranker answer invalid: {0}")]
    Invalid(String),
}

impl RerankError {
    /// Whether the same call may succeed later.
    pub fn retryable(&self) -> bool {
        matches!(self, RerankError::Unavailable(_))
    }

    /// A stable snake_case code for the API and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RerankError::Unavailable(_) => "rerank_unavailable",
            RerankError::Invalid(_) => "rerank_invalid",
        }
    }
}

/// Scores how relevant each text is to a query. Implemented by every reranking backend.
///
/// `rerank` returns exactly one score per input text, in input order; higher is more relevant.
/// Scores are comparable within one call only (their scale is the backend's); they are finite.
/// No texts, no scores (and no work).
#[async_trait]
pub trait Reranker: Send + Sync {
    /// A short name for logs and stats (the backend and its model or endpoint).
    fn name(&self) -> &str;

    /// Scores each of `texts` against `query`, one score each, in order.
    async fn rerank(&self, query: &str, texts: Vec<String>) -> Result<Vec<f32>, RerankError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_retryability() {
        let unavailable = RerankError::Unavailable("connection refused".into());
        let invalid = RerankError::Invalid("2 scores for 3 texts".into());
        assert_eq!((unavailable.code(), unavailable.retryable()), ("rerank_unavailable", true));
        assert_eq!((invalid.code(), invalid.retryable()), ("rerank_invalid", false));
        assert_eq!(invalid.to_string(), "reranker answer invalid: 2 scores for 3 texts");
    }
}
