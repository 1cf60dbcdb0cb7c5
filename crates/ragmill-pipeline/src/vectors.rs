//! [`StoreIndex`]: the embedded [`VectorIndex`] — the user's vectors live in the store's chunks
//! table, written in the same SQLite transaction as the chunks themselves
//! (`UserStore::replace_document`), and are searched in the store's live index (an exact scan,
//! or HNSW for big collections). So `write`, `retire` and `remove_user` have nothing left to do
//! here: the transaction already made the vectors searchable (or gone), atomically with the
//! chunks. A vector database behind the same trait does the work in those calls instead
//! (`ragmill-chroma`), kept in step by [`crate::Vectors`].

use std::sync::Arc;

use async_trait::async_trait;
use ragmill_core::{
    DocumentId, IndexError, IndexedChunk, IndexedVersion, Retire, UserId, VectorHit, VectorIndex,
};
use ragmill_store::{Store, StoreError};

/// The embedded index over `store`.
#[derive(Clone)]
pub struct StoreIndex {
    store: Arc<Store>,
}

impl StoreIndex {
    /// The index of `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl VectorIndex for StoreIndex {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn external(&self) -> bool {
        false
    }

    async fn health(&self) -> Result<(), IndexError> {
        Ok(()) // the store's file; its own failures surface on each call
    }

    async fn write(
        &self,
        _user: UserId,
        _document: DocumentId,
        _generation: u64,
        _chunks: Vec<IndexedChunk>,
    ) -> Result<(), IndexError> {
        Ok(()) // written with the chunks, in their transaction
    }

    async fn retire(
        &self,
        _user: UserId,
        _document: DocumentId,
        _which: Retire,
    ) -> Result<(), IndexError> {
        Ok(()) // deleted with the chunks
    }

    async fn remove_user(&self, _user: UserId) -> Result<(), IndexError> {
        Ok(()) // deleted with the user
    }

    async fn inventory(&self, _user: UserId) -> Result<Vec<IndexedVersion>, IndexError> {
        Ok(Vec::new()) // nothing of its own: the store's chunks are the vectors
    }

    async fn search(
        &self,
        user: UserId,
        query: Vec<f32>,
        k: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Vec<VectorHit>, IndexError> {
        let store = Arc::clone(&self.store);
        let found = tokio::task::spawn_blocking(move || {
            store.user(user).nearest(&query, k, documents.as_deref())
        })
        .await
        .map_err(|e| IndexError::Failed(format!("index task failed: {e}")))?;
        match found {
            Ok(near) => Ok(near
                .into_iter()
                .map(|n| VectorHit {
                    document: n.document,
                    chunk: n.chunk,
                    score: n.score,
                    generation: None,
                })
                .collect()),
            Err(StoreError::Dimension { got, want }) => Err(IndexError::Dimension { got, want }),
            Err(e) => Err(IndexError::Failed(e.to_string())),
        }
    }
}
