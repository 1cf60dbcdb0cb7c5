//! Where a document is in the pipeline.

use serde::{Deserialize, Serialize};

/// A stage of the ingestion pipeline, in the order a document passes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Accepted, waiting for a worker.
    Queued,
    /// Turning bytes into text.
    Extracting,
    /// Splitting text into token-bounded chunks.
    Chunking,
    /// Looking up the cache and embedding the misses.
    Embedding,
    /// Writing chunks and vectors atomically.
    Storing,
    /// Processed, waiting for the vector index (ChromaDB) to come back; retried with back-off.
    Waiting,
    /// Searchable.
    Ready,
    /// Given up on, with an error.
    Failed,
}

impl Stage {
    /// The stable lower-case name used in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Extracting => "extracting",
            Stage::Chunking => "chunking",
            Stage::Embedding => "embedding",
            Stage::Storing => "storing",
            Stage::Waiting => "waiting",
            Stage::Ready => "ready",
            Stage::Failed => "failed",
        }
    }

    /// True for [`Stage::Ready`] and [`Stage::Failed`]: nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Ready | Stage::Failed)
    }
}

/// One progress report for one document: its stage and, while embedding, chunks done of total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The stage the document is in.
    pub stage: Stage,
    /// Units done in this stage (chunks while embedding).
    pub done: usize,
    /// Units in this stage.
    pub total: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable() {
        assert_eq!(serde_json::to_string(&Stage::Embedding).ok().as_deref(), Some("\"embedding\""));
        assert_eq!(Stage::Failed.as_str(), "failed");
        assert!(Stage::Ready.is_final() && !Stage::Storing.is_final());
    }
}
