//! The vector-index seam: where chunks' vectors are written to and searched in, always for one
//! user. A chunk is named by its document and ordinal, whatever the backend: the embedded
//! index (the user's vectors kept in the store's SQLite file, searched in memory) or a vector
//! database (ChromaDB: one collection per user).
//!
//! The store (SQLite) stays the truth for what is searchable. An external index holds every
//! version it was given under a *generation* (a number the store allocates, never reused), and
//! a hit counts only when the store names that generation its document's current one: a new
//! version is written under a new generation first, switched to in the store's transaction, and
//! the old generation retired after. So a search sees a document's old vectors or its new ones,
//! never a mix, and nothing half-written becomes visible.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DocumentId, UserId};

/// One chunk's vector for [`VectorIndex::write`].
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
    /// The generation it was written under; `None` from an index whose hits are always current
    /// (the embedded one). A hit of another generation than the document's current one is not
    /// an answer.
    pub generation: Option<u64>,
}

/// What [`VectorIndex::retire`] forgets of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retire {
    /// Every generation up to and including this one (the document was deleted when this was
    /// the newest generation handed out: a later document given the same id is spared).
    Through(u64),
    /// This generation only (an older version, or one written and never switched to).
    Generation(u64),
}

/// One document's vectors as an index holds them, for reconciling with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedVersion {
    /// The document.
    pub document: DocumentId,
    /// The generation they were written under.
    pub generation: u64,
    /// How many chunks' vectors of it the index holds.
    pub chunks: u32,
}

/// The index could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The index cannot be reached now, or is too slow: try again later.
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
    /// It failed, refused the request, or answered something it should not have (a wrong
    /// dimension, missing or unknown ids): not an answer to act on.
    #[error("the vector index failed: {0}")]
    Failed(String),
}

impl IndexError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A user-scoped store of chunk vectors with nearest-neighbour search.
///
/// Every call names the user, and nothing of one user is ever returned to another. An
/// *embedded* index (`external()` false) keeps no vectors of its own: the store's transactions
/// write and delete them, so `write`, `retire` and `remove_user` have nothing to do and hits
/// carry no generation. An external one keeps each generation it is written until retired.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// A short name for logs, `/readyz` and the dashboard (`embedded`, `chroma`).
    fn backend(&self) -> &'static str;
    /// Whether vectors live outside the store (see the trait's description).
    fn external(&self) -> bool;
    /// Whether the index answers now.
    async fn health(&self) -> Result<(), IndexError>;
    /// Writes `document`'s vectors under `generation`. Writing the same generation again
    /// overwrites it (a retried job duplicates nothing).
    async fn write(
        &self,
        user: UserId,
        document: DocumentId,
        generation: u64,
        chunks: Vec<IndexedChunk>,
    ) -> Result<(), IndexError>;
    /// Forgets `document`'s vectors of `which` generations.
    async fn retire(
        &self,
        user: UserId,
        document: DocumentId,
        which: Retire,
    ) -> Result<(), IndexError>;
    /// Forgets every vector of `user`.
    async fn remove_user(&self, user: UserId) -> Result<(), IndexError>;
    /// The `k` chunks of `user` nearest `query` (a unit vector), best first, optionally only
    /// from `documents`. Hits of every generation the index holds are returned.
    async fn search(
        &self,
        user: UserId,
        query: Vec<f32>,
        k: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Vec<VectorHit>, IndexError>;
    /// Every (document, generation) the index holds for `user`, with its chunk count (empty
    /// for an embedded index).
    async fn inventory(&self, user: UserId) -> Result<Vec<IndexedVersion>, IndexError>;
}
