//! [`LocalCatalog`]: the [`Catalog`] seam over the embedded store, in this process.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ragmill_core::{
    Catalog, CatalogError, ContentHash, DocumentId, DocumentVersion, FailedVersion, Finished,
    StoredVersion, UserId,
};
use ragmill_store::{DocumentState, NewChunk, NewDocument, Store, StoreError};

/// The embedded store as a [`Catalog`]: every call runs on tokio's blocking threads.
#[derive(Clone)]
pub struct LocalCatalog {
    store: Arc<Store>,
}

impl LocalCatalog {
    /// A catalog over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        on_store(&self.store, f).await
    }
}

/// The store's row for `v`.
fn new_document(v: &DocumentVersion) -> NewDocument<'_> {
    NewDocument {
        id: v.document,
        name: &v.name,
        content_hash: v.content_hash,
        kind: v.kind,
        size: v.size,
        timings: v.timings.clone(),
    }
}

/// Runs `f` on `store` on tokio's blocking threads, its errors as the catalog seam speaks them
/// (a task that panicked or was cancelled is [`CatalogError::Failed`]).
pub async fn on_store<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, CatalogError> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(result) => result.map_err(convert),
        Err(e) => Err(CatalogError::Failed(format!("store task failed: {e}"))),
    }
}

/// The store's errors as the seam speaks them.
pub fn convert(e: StoreError) -> CatalogError {
    match e {
        StoreError::DocumentGone(id) => CatalogError::Gone(id),
        e @ StoreError::ModelMismatch { .. } => CatalogError::ModelMismatch(e.to_string()),
        e => CatalogError::Failed(e.to_string()),
    }
}

#[async_trait]
impl Catalog for LocalCatalog {
    async fn stored(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<Option<StoredVersion>, CatalogError> {
        let name = name.to_owned();
        let found = self.run(move |s| s.user(user).document_by_name(&name)).await?;
        Ok(found.and_then(|d| {
            Some(StoredVersion {
                id: d.id,
                content_hash: ContentHash::from_hex(&d.content_hash).ok()?,
                ready: d.state == DocumentState::Ready && d.error.is_none(),
                space: d.model,
                chunks: d.chunks,
                timings: d.timings,
            })
        }))
    }

    async fn cached(
        &self,
        model: &str,
        hashes: Vec<ContentHash>,
    ) -> Result<HashMap<ContentHash, Vec<f32>>, CatalogError> {
        let model = model.to_owned();
        self.run(move |s| s.cache_get(&model, &hashes)).await
    }

    async fn finish(&self, user: UserId, v: Finished) -> Result<DocumentId, CatalogError> {
        self.run(move |s| {
            let fresh: Vec<(ContentHash, &[f32])> =
                v.chunks.iter().filter(|c| c.fresh).map(|c| (c.hash, &c.vector[..])).collect();
            s.cache_put(&v.model, &fresh)?;
            let chunks: Vec<NewChunk<'_>> = v
                .chunks
                .iter()
                .map(|c| NewChunk { chunk: &c.chunk, hash: c.hash, vector: &c.vector })
                .collect();
            s.user(user).replace_document(
                &new_document(&v.version),
                &chunks,
                &v.space,
                v.dimensions,
            )
        })
        .await
    }

    async fn fail(&self, user: UserId, v: FailedVersion) -> Result<DocumentId, CatalogError> {
        self.run(move |s| {
            s.user(user).record_failure(&new_document(&v.version), &v.code, &v.message)
        })
        .await
    }
}
