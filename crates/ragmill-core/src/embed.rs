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

    /// The backend's live state as JSON (endpoints, circuits, latencies for a pool; engine and
    /// precision for the local model), for `GET /v1/stats`. `None` when there is nothing to say.
    fn stats(&self) -> Option<serde_json::Value> {
        None
    }
}
