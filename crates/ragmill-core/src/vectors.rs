//! The vector-index seam: where chunks' vectors are written to and searched in, always for one
//! user. A chunk is named by its document and ordinal, whatever the backend: the embedded
//! index (an exact scan of the user's vectors kept in SQLite) or a vector database.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DocumentId, UserId};

/// One chunk's vector for [`VectorIndex::replace`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedChunk {
    /// The chunk's ordinal within its document.
    pub chunk: u32,
    /// Its unit vector.
    pub vector: Vec<f32>,
}

/// A chunk near the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VectorHit {
    /// Its document.
    pub document: DocumentId,
    /// Its ordinal within the document.
    pub chunk: u32,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// The index could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The index cannot be reached now: try again later.
    #[error("the vector index is unavailable: {0}")]
    Unavailable(String),
    /// The query's length is not the collection's.
    #[error("the query has {got} dimensions; the collection has {want}")]
    Dimension {
        /// The query's.
        got: usize,
        /// The collection's.
        want: usize,
    },
    /// It failed or answered something it should not have.
    #[error("the vector index failed: {0}")]
    Failed(String),
}

/// A user-scoped store of chunk vectors with nearest-neighbour search.
///
/// `replace` makes a document's vectors searchable as a whole (a search sees the old set or the
/// new one, never a mix); `remove` and `remove_user` forget them. Every call names the user,
/// and nothing of one user is ever returned to another.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Replaces `document`'s vectors with `chunks`.
    async fn replace(
        &self,
        user: UserId,
        document: DocumentId,
        chunks: Vec<IndexedChunk>,
    ) -> Result<(), IndexError>;
    /// Forgets `document`'s vectors.
    async fn remove(&self, user: UserId, document: DocumentId) -> Result<(), IndexError>;
    /// Forgets every vector of `user`.
    async fn remove_user(&self, user: UserId) -> Result<(), IndexError>;
    /// The `k` chunks of `user` nearest `query` (a unit vector), best first, optionally only
    /// from `documents`.
    async fn search(
        &self,
        user: UserId,
        query: Vec<f32>,
        k: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Vec<VectorHit>, IndexError>;
}
