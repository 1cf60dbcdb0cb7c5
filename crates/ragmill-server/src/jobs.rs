//! [`LocalJobs`]: the [`JobSource`] of the serving process (store, blob directory, ledger).

use std::sync::Arc;

use async_trait::async_trait;
use ragmill_core::{Begun, CatalogError, ContentHash, DocumentId, JobSource, UserId};
use ragmill_store::{DocumentState, Store, StoreError};

use crate::blobs::Blobs;
use crate::ledger::Ledger;

/// What this process's workers, and remote workers through the internal routes, begin and end
/// jobs with.
#[derive(Clone)]
pub struct LocalJobs {
    store: Arc<Store>,
    blobs: Blobs,
    ledger: Ledger,
}

impl LocalJobs {
    /// Over `store`, `blobs` and `ledger`.
    pub fn new(store: Arc<Store>, blobs: Blobs, ledger: Ledger) -> Self {
        Self { store, blobs, ledger }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        ragmill_pipeline::on_store(&self.store, f).await
    }
}

#[async_trait]
impl JobSource for LocalJobs {
    async fn begin(&self, user: UserId, id: DocumentId) -> Result<Option<Begun>, CatalogError> {
        let found = self
            .run(move |s| {
                let was_available = s.user(user).rag_status()?.available;
                // A document that is neither waiting nor in processing (cancelled since its
                // job was queued) is not begun: the job ends as if it were gone.
                let doc = s.user(user).document(id)?.filter(|d| {
                    matches!(d.state, DocumentState::Queued | DocumentState::Processing)
                });
                if doc.is_some() {
                    s.user(user).set_state(id, DocumentState::Processing)?;
                }
                Ok(doc.map(|d| (d, was_available)))
            })
            .await?;
        let Some((doc, was_available)) = found else { return Ok(None) };
        let content_hash = ContentHash::from_hex(&doc.content_hash).map_err(|e| {
            CatalogError::Failed(format!("document {} has a corrupt content hash: {e}", id.0))
        })?;
        Ok(Some(Begun { name: doc.name, content_hash, was_available }))
    }

    async fn original(&self, hash: ContentHash, limit: u64) -> Result<Vec<u8>, CatalogError> {
        let path = self.blobs.path(&hash);
        let unavailable = |e: std::io::Error| {
            CatalogError::Failed(format!("cannot read the original {}: {e}", hash.to_hex()))
        };
        let size = tokio::fs::metadata(&path).await.map_err(unavailable)?.len();
        if size > limit {
            return Err(CatalogError::Failed(format!(
                "the original is {size} bytes, over the limit of {limit}"
            )));
        }
        tokio::fs::read(&path).await.map_err(unavailable)
    }

    async fn requeued(&self, user: UserId, id: DocumentId) -> Result<(), CatalogError> {
        self.run(move |s| s.user(user).set_state(id, DocumentState::Queued).map(|_| ())).await
    }

    async fn wanted(&self, user: UserId, id: DocumentId) -> Result<bool, CatalogError> {
        self.run(move |s| s.user(user).is_processing(id)).await
    }

    async fn give_up(
        &self,
        user: UserId,
        id: DocumentId,
        code: &str,
        message: &str,
    ) -> Result<(), CatalogError> {
        self.ledger.give_up(user, id, code, message).await
    }
}
