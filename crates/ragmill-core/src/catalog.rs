//! The catalog seam: what ingestion reads from and writes to the store of record, whether the
//! store is in this process (SQLite through `ragmill-store`) or behind the main server of a
//! cluster (a `ragmill worker` on another machine reaches it over authenticated HTTP).
//!
//! Ingestion needs four things from it: the stored version of a document (to skip unchanged
//! bytes), the embedding cache (to never embed the same text twice), and the two ways a
//! version ends: stored whole with its chunks and vectors in one step ([`Finished`]), or
//! recorded as failed ([`FailedVersion`]). The payloads are owned and serialisable because they
//! cross process boundaries. Every call names its [`UserId`].

use std::collections::BTreeMap;
use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Chunk, ContentHash, DocumentId, DocumentKind, UserId};

/// Seconds per stage, by stage name.
pub type StageTimings = BTreeMap<String, f64>;

/// The stored version of a document, as the unchanged check needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVersion {
    /// The document.
    pub id: DocumentId,
    /// Hash of the stored bytes.
    pub content_hash: ContentHash,
    /// Ready without error (searchable as it is).
    pub ready: bool,
    /// The vector space its chunks were embedded in.
    pub space: Option<String>,
    /// Its chunks.
    pub chunks: u64,
    /// Seconds per stage of its processing.
    pub timings: StageTimings,
}

/// Which version of which document an outcome is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentVersion {
    /// The document row this version belongs to, when it was created at upload; writing fails
    /// with [`CatalogError::Gone`] if that row was deleted meanwhile.
    pub document: Option<DocumentId>,
    /// Its name (unique per user).
    pub name: String,
    /// Hash of its bytes.
    pub content_hash: ContentHash,
    /// Its detected format, if known.
    pub kind: Option<DocumentKind>,
    /// Its size in bytes.
    pub size: u64,
    /// Seconds per stage (until it failed, for a failed one).
    pub timings: StageTimings,
}

/// A version of a document that is processed: stored with its chunks in one step, so a search
/// sees the old version or this one, never a mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The version.
    #[serde(flatten)]
    pub version: DocumentVersion,
    /// The embedder's model id (the cache key).
    pub model: String,
    /// The vector space the chunks were embedded in.
    pub space: String,
    /// Length of every vector.
    pub dimensions: usize,
    /// The chunks, in order, each with its unit vector.
    pub chunks: Vec<EmbeddedChunk>,
}

/// A chunk with the hash of its text and its vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddedChunk {
    /// The chunk.
    pub chunk: Chunk,
    /// Hash of its text (the cache key).
    pub hash: ContentHash,
    /// Its vector.
    pub vector: Vec<f32>,
    /// Whether the vector was computed now (so it goes to the cache) rather than found there.
    pub fresh: bool,
}

/// A version of a document that could not be processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedVersion {
    /// The version.
    #[serde(flatten)]
    pub version: DocumentVersion,
    /// Stable snake_case code.
    pub code: String,
    /// For a human.
    pub message: String,
}

/// The catalog could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The document's row was deleted while it was processed.
    #[error("document {0:?} was deleted")]
    Gone(DocumentId),
    /// The user's collection was built in another vector space.
    #[error("{0}")]
    ModelMismatch(String),
    /// The catalog cannot be reached now (the main server is down): try again later.
    #[error("the catalog is unavailable: {0}")]
    Unavailable(String),
    /// The vector index (ChromaDB) cannot be reached now: the job waits for it, uncounted.
    #[error("the vector index is unavailable: {0}")]
    IndexUnavailable(String),
    /// It failed (a database error, a refused request, a garbled answer).
    #[error("the catalog failed: {0}")]
    Failed(String),
}

/// Where ingestion reads stored versions and the cache, and writes its results.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// `user`'s stored version of the document named `name`, if any.
    async fn stored(&self, user: UserId, name: &str)
    -> Result<Option<StoredVersion>, CatalogError>;
    /// `user`'s cached vectors of `model` for those of `hashes` it has. The cache is each
    /// user's own: another user's vectors never answer.
    async fn cached(
        &self,
        user: UserId,
        model: &str,
        hashes: Vec<ContentHash>,
    ) -> Result<HashMap<ContentHash, Vec<f32>>, CatalogError>;
    /// Keeps vectors of `model` just embedded for a version still in progress (by text hash)
    /// in the cache at once, so that a version stopped midway (paused, cancelled, crashed,
    /// handed to another worker) does not embed them again when it runs anew. In `user`'s
    /// cache. Best effort: the default keeps nothing, and everything is cached with the
    /// finished version anyway.
    async fn remember(
        &self,
        _user: UserId,
        _model: &str,
        _vectors: Vec<(ContentHash, Vec<f32>)>,
    ) -> Result<(), CatalogError> {
        Ok(())
    }
    /// Caches the fresh vectors and stores the version with its chunks, in one step. Answers
    /// the document's id.
    async fn finish(&self, user: UserId, version: Finished) -> Result<DocumentId, CatalogError>;
    /// Records the failed version (an older ready version stays searchable and carries the
    /// error). Answers the document's id.
    async fn fail(&self, user: UserId, version: FailedVersion) -> Result<DocumentId, CatalogError>;
}

/// A document a worker has begun processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begun {
    /// Its name.
    pub name: String,
    /// Hash of the bytes to process (the original's name in the blob store).
    pub content_hash: ContentHash,
    /// Whether the user's collection was searchable before (to announce it once).
    pub was_available: bool,
}

/// What a worker needs from the process that holds documents, besides the [`Catalog`]: the
/// document's turn to be processed, its original bytes, and how its job ended when that is
/// the worker's to say. In the serving process it is the store, the blob directory and the
/// ledger; on another machine, the main server over authenticated HTTP.
#[async_trait]
pub trait JobSource: Send + Sync {
    /// Marks `user`'s document `id` processing and answers what to process; `None` if it was
    /// deleted.
    async fn begin(&self, user: UserId, id: DocumentId) -> Result<Option<Begun>, CatalogError>;
    /// The original bytes kept under `hash`, refusing more than `limit` bytes.
    async fn original(&self, hash: ContentHash, limit: u64) -> Result<Vec<u8>, CatalogError>;
    /// The document waits for a retry.
    async fn requeued(&self, user: UserId, id: DocumentId) -> Result<(), CatalogError>;
    /// Whether the document is still to be processed by the job that began it: false once it
    /// was cancelled, deleted, or queued again (uploaded anew or re-processed). A worker asks
    /// about twice a second and stops the work when it is not.
    async fn wanted(&self, user: UserId, id: DocumentId) -> Result<bool, CatalogError>;
    /// The document's job was given up on with `code` and `message`.
    async fn give_up(
        &self,
        user: UserId,
        id: DocumentId,
        code: &str,
        message: &str,
    ) -> Result<(), CatalogError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_version_reads_back_as_it_was_written() {
        let chunk = Chunk {
            ordinal: 0,
            text: "hello".into(),
            start: 0,
            end: 5,
            tokens: 3,
            page: None,
            heading_path: vec!["Intro".into()],
        };
        let version = Finished {
            version: DocumentVersion {
                document: Some(DocumentId(3)),
                name: "a.md".into(),
                content_hash: ContentHash::of(b"hello"),
                kind: Some(DocumentKind::Markdown),
                size: 5,
                timings: StageTimings::from([("chunking".into(), 0.5)]),
            },
            model: "m@1".into(),
            space: "m".into(),
            dimensions: 2,
            chunks: vec![EmbeddedChunk {
                hash: ContentHash::of(b"hello"),
                chunk,
                vector: vec![0.6, 0.8],
                fresh: true,
            }],
        };
        let json = serde_json::to_string(&version).unwrap_or_default();
        assert!(json.contains(&ContentHash::of(b"hello").to_hex()), "hashes travel as hex");
        assert!(json.starts_with(r#"{"document":3,"name":"a.md""#), "flat on the wire: {json}");
        assert_eq!(serde_json::from_str::<Finished>(&json).ok(), Some(version));
        assert!(serde_json::from_str::<ContentHash>("\"not hex\"").is_err());
    }
}
