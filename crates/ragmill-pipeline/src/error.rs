//! [`IngestError`]: why a document failed, with a stable code and whether to try again.

use ragmill_extract::ExtractError;
use ragmill_store::StoreError;

/// Why one document could not be ingested.
///
/// [`IngestError::code`] is the stable snake_case code the API, the events and the CLI show;
/// [`IngestError::retryable`] tells a scheduler whether the same bytes may succeed later (the
/// embedder or the disk broke) or never will (the content is at fault, or the document is gone).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Extraction refused or failed on the content (`empty_file`, `type_mismatch`, ...).
    #[error("{0}")]
    Extract(#[from] ExtractError),
    /// The file is larger than the extractor accepts.
    #[error("the file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The original could not be read (a blob missing or a disk failing).
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    /// The chunker refused or failed on the text (`too_many_chunks`, `chunk_timeout`, ...).
    #[error("chunking failed: {message}")]
    Chunking {
        /// The chunker's stable code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Extraction found no text to index.
    #[error("the document has no text to index")]
    NoText,
    /// A client's chunk does not fit the model's window.
    #[error("chunk {index} has {tokens} tokens; the model's window is {window}")]
    ChunkTooLong {
        /// The chunk's position.
        index: usize,
        /// Its tokens.
        tokens: usize,
        /// The model's window.
        window: usize,
    },
    /// A client's request was malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The embedder failed or went away.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// The user's collection was built with another model.
    #[error("{0}")]
    ModelMismatch(String),
    /// The store failed.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The vector index (ChromaDB) cannot be reached: the document waits for it.
    #[error("waiting for the vector index: {0}")]
    IndexUnavailable(String),
    /// The document was deleted while it was processed: nothing to report.
    #[error("the document was deleted while it was processed")]
    DocumentDeleted,
    /// A blocking task failed (cancelled at shutdown, or a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// Processing the document panicked; the worker caught it and carried on.
    #[error("processing crashed: {0}")]
    Crashed(String),
}

impl IngestError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Extract(e) => e.code(),
            IngestError::TooLarge { .. } => "file_too_large",
            IngestError::Unreadable(_) => "unreadable",
            IngestError::Chunking { code, .. } => code,
            IngestError::NoText => "no_text",
            IngestError::ChunkTooLong { .. } => "chunk_too_long",
            IngestError::InvalidRequest(_) => "invalid_request",
            IngestError::Embedding(_) => "embedding_failed",
            IngestError::ModelMismatch(_) => "model_mismatch",
            IngestError::Storage(_) => "storage_failed",
            IngestError::IndexUnavailable(_) => "vector_index_unavailable",
            IngestError::DocumentDeleted => "document_deleted",
            IngestError::Internal(_) => "internal",
            IngestError::Crashed(_) => "processing_crashed",
        }
    }

    /// Whether the same document may succeed on another attempt: something around it broke
    /// (embedder, disk, database, the extractor's sandbox could not start), not its content.
    pub fn retryable(&self) -> bool {
        match self {
            IngestError::Extract(e) => matches!(e, ExtractError::Io { .. }),
            IngestError::Unreadable(_)
            | IngestError::Embedding(_)
            | IngestError::Storage(_)
            | IngestError::IndexUnavailable(_)
            | IngestError::Internal(_) => true,
            IngestError::TooLarge { .. }
            | IngestError::Chunking { .. }
            | IngestError::NoText
            | IngestError::ChunkTooLong { .. }
            | IngestError::InvalidRequest(_)
            | IngestError::ModelMismatch(_)
            | IngestError::DocumentDeleted
            | IngestError::Crashed(_) => false,
        }
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DocumentGone(_) => IngestError::DocumentDeleted,
            e @ StoreError::ModelMismatch { .. } => IngestError::ModelMismatch(e.to_string()),
            e => IngestError::Storage(e.to_string()),
        }
    }
}

impl From<ragmill_core::CatalogError> for IngestError {
    fn from(e: ragmill_core::CatalogError) -> Self {
        use ragmill_core::CatalogError as C;
        match e {
            C::Gone(_) => IngestError::DocumentDeleted,
            C::ModelMismatch(m) => IngestError::ModelMismatch(m),
            C::IndexUnavailable(m) => IngestError::IndexUnavailable(m),
            C::Unavailable(m) | C::Failed(m) => IngestError::Storage(m),
        }
    }
}

impl From<ragmill_chunk::ChunkError> for IngestError {
    fn from(e: ragmill_chunk::ChunkError) -> Self {
        IngestError::Chunking { code: e.code(), message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_deleted_meanwhile_is_neither_retried_nor_a_storage_failure() {
        let e = IngestError::from(StoreError::DocumentGone(ragmill_core::DocumentId(4)));
        assert_eq!(e, IngestError::DocumentDeleted);
        assert_eq!(e.code(), "document_deleted");
        assert!(!e.retryable());
    }

    #[test]
    fn what_broke_around_the_document_is_retried_and_its_content_is_not() {
        assert!(IngestError::Embedding("timeout".into()).retryable());
        assert!(IngestError::from(StoreError::Corrupt("x".into())).retryable());
        assert!(!IngestError::Extract(ExtractError::Empty).retryable());
        assert_eq!(IngestError::Extract(ExtractError::Empty).code(), "empty_file");
        assert!(IngestError::Extract(ExtractError::Io { detail: "spawn".into() }).retryable());
        assert!(!IngestError::Crashed("boom".into()).retryable());
        assert!(!IngestError::NoText.retryable());
        let refused = IngestError::from(ragmill_chunk::ChunkError::Config("bad".into()));
        assert_eq!(refused.code(), "invalid_chunk_config", "the chunker's own code");
    }
}
