//! Store errors.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be used.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A user name that is empty, too long or has control characters.
    #[error("invalid user name {0:?}: use 1-128 printable characters")]
    InvalidUserName(String),
    /// The collection was built with another embedding model.
    #[error(
        "this collection was built with embedding model {collection} ({collection_dim} dimensions), not {requested} ({requested_dim}); \
         use the same model, or re-index: delete the user's documents and ingest them again"
    )]
    ModelMismatch {
        /// The model the collection holds vectors of.
        collection: String,
        /// Their dimension.
        collection_dim: usize,
        /// The model asked for.
        requested: String,
        /// Its dimension.
        requested_dim: usize,
    },
    /// A vector of the wrong length was given.
    #[error("vector has {got} dimensions, the collection has {want}")]
    Dimension {
        /// Received.
        got: usize,
        /// Expected.
        want: usize,
    },
    /// A stored row could not be decoded (the database was edited or is corrupt).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The document a version was being stored for has been deleted, or no longer waits for
    /// it (paused or cancelled while it was being processed).
    #[error("document {0:?} was deleted, paused or cancelled while it was being processed")]
    DocumentGone(ragmill_core::DocumentId),
    /// Another writer staged vectors for the document after this version did (its generation
    /// is no longer the staged one): store it again, with a fresh generation.
    #[error("document {0:?}'s vectors were staged again by another writer; try again")]
    VectorsSuperseded(ragmill_core::DocumentId),
    /// The database was written by a newer ragmill, whose schema this one does not know.
    #[error(
        "this data directory was migrated by a newer ragmill (schema {found}; this one knows up to {known}): run that version, or restore the backup taken before the upgrade"
    )]
    NewerSchema {
        /// The database's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The change would leave the service without an administrator.
    #[error("this is the last administrator: make someone else one first")]
    LastAdmin,
    /// A thread panicked while holding the connection.
    #[error("store lock poisoned by an earlier panic")]
    Poisoned,
}
