//! The embedding seam.

use async_trait::async_trait;

/// What an embedder produces and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The model's name as the embedding cache keys it (e.g. `sentence-transformers/all-MiniLM-L6-v2`).
    pub id: String,
    /// The vector space the embeddings live in: the same for one model's weights at any
    /// precision (whose vectors are comparable), different across models. A collection is
    /// bound to a space, while the cache is keyed by `id`.
    pub space: String,
    /// Length of every vector.
    pub dimensions: usize,
    /// The longest input in model tokens, special tokens included; longer inputs are truncated.
    pub max_tokens: usize,
    /// The batch size the backend works best with.
    pub preferred_batch: usize,
}

/// Why a batch could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model could not be loaded or is unusable.
    #[error("embedding model unavailable: {0}")]
    Unavailable(String),
    /// Tokenising an input failed.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    /// The backend failed while computing.
    #[error("embedding backend failed: {0}")]
    Backend(String),
    /// The backend answered with vectors of the wrong shape.
    #[error(
        "embedding backend returned {got} vectors of dimension {dim}, expected {want} of {want_dim}"
    )]
    Shape {
        /// Vectors received.
        got: usize,
        /// Their dimension.
        dim: usize,
        /// Vectors expected.
        want: usize,
        /// Dimension expected.
        want_dim: usize,
    },
    /// The backend was shut down.
    #[error("embedding backend stopped")]
    Stopped,
}

/// Turns texts into unit-length vectors. Implemented by every embedding backend.
///
/// `embed` returns exactly one vector per input, in input order, each of
/// [`ModelInfo::dimensions`] floats and L2-normalised. Batching across callers is the
/// pipeline's business; an implementation may split a batch further as it likes.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model behind this embedder.
    fn info(&self) -> &ModelInfo;

    /// Embeds `texts`, one vector each, in order.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Embeds one search query: the latency-sensitive path.
    ///
    /// A query has a person waiting on it and is a few tokens long, so a backend that queues
    /// work should serve it before batches waiting their turn (the local model does: a query
    /// waits at most for the batch already running). The default is `embed(vec![text])`;
    /// an answer without a vector is [`EmbedError::Shape`].
    async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed(vec![text]).await?;
        match vectors.pop() {
            Some(v) if vectors.is_empty() => Ok(v),
            last => Err(EmbedError::Shape {
                got: vectors.len() + usize::from(last.is_some()),
                dim: last.map_or(0, |v| v.len()),
                want: 1,
                want_dim: self.info().dimensions,
            }),
        }
    }

    /// The backend's live state as JSON (endpoints, circuits, latencies for a pool; engine and
    /// precision for the local model), for `GET /v1/stats`. `None` when there is nothing to say.
    fn stats(&self) -> Option<serde_json::Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// Answers every batch with `vectors` vectors of 3 floats, whatever it was asked.
    struct Answers {
        info: ModelInfo,
        vectors: usize,
    }

    #[async_trait]
    impl Embedder for Answers {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        async fn embed(&self, _texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(vec![vec![0.5; 3]; self.vectors])
        }
    }

    /// Runs a future that never waits (the fake's are always ready).
    fn ready<T>(f: impl Future<Output = T>) -> T {
        match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the fake never waits"),
        }
    }

    fn query(vectors: usize) -> Result<Vec<f32>, EmbedError> {
        let info = ModelInfo {
            id: "fake".into(),
            space: "fake".into(),
            dimensions: 3,
            max_tokens: 8,
            preferred_batch: 1,
        };
        ready(Answers { info, vectors }.embed_query("q".into()))
    }

    #[test]
    fn embed_query_is_the_one_vector_of_a_batch_of_one() {
        assert_eq!(query(1).expect("one vector"), vec![0.5; 3]);
        for (answered, dim) in [(0, 0), (2, 3)] {
            match query(answered) {
                Err(EmbedError::Shape { got, dim: d, want: 1, want_dim: 3 }) => {
                    assert_eq!((got, d), (answered, dim));
                }
                other => panic!("{answered} vectors: {other:?}"),
            }
        }
    }
}
