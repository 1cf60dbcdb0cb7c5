//! [`LocalCatalog`]: the [`Catalog`] seam over the embedded store, in this process.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ragmill_core::{
    Catalog, CatalogError, ContentHash, DocumentId, DocumentVersion, FailedVersion, Finished,
    IndexedChunk, StoredVersion, UserId,
};
use ragmill_store::{DocumentState, NewChunk, NewDocument, Store, StoreError};

use crate::external::{Vectors, catalog_error};

/// The embedded store as a [`Catalog`]: every call runs on tokio's blocking threads. With an
/// external vector index ([`LocalCatalog::with_vectors`]), a version's vectors are written
/// there first and switched to in the store's transaction ([`Vectors`]).
#[derive(Clone)]
pub struct LocalCatalog {
    store: Arc<Store>,
    vectors: Option<Vectors>,
}

impl LocalCatalog {
    /// A catalog over `store`, whose own vectors are the searchable ones.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store, vectors: None }
    }

    /// A catalog over `store` that also keeps `vectors`' external index in step (nothing is
    /// kept for an embedded index).
    pub fn with_vectors(store: Arc<Store>, vectors: Option<Vectors>) -> Self {
        Self { store, vectors: vectors.filter(|v| v.index().external()) }
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

impl LocalCatalog {
    /// [`Catalog::finish`] with an external index: the vectors are written there under a
    /// staged generation before the store switches to it. A document new to the store (the CLI
    /// names none) is stored first and then copied, since its vectors need its id; it was not
    /// searchable before, so no search sees half of it either.
    async fn finish_external(
        &self,
        vectors: &Vectors,
        user: UserId,
        v: Finished,
    ) -> Result<DocumentId, CatalogError> {
        let known = match v.version.document {
            Some(id) => Some(id),
            None => {
                let name = v.version.name.clone();
                self.run(move |s| s.user(user).document_by_name(&name)).await?.map(|d| d.id)
            }
        };
        let v = Arc::new(v);
        let cached = Arc::clone(&v);
        self.run(move |s| cache_fresh(s, &cached)).await?;
        let Some(id) = known else {
            let stored = Arc::clone(&v);
            let id = self.run(move |s| store_version(s, user, &stored, None)).await?;
            vectors.copy_stored(user, id).await.map_err(catalog_error)?;
            return Ok(id);
        };
        let chunks = v
            .chunks
            .iter()
            .map(|c| IndexedChunk { chunk: c.chunk.ordinal, vector: c.vector.clone() })
            .collect();
        let hash = v.version.content_hash;
        vectors
            .write_version(user, id, hash, chunks, move |s, generation| {
                let mut v = Arc::unwrap_or_clone(v);
                v.version.document = Some(id);
                store_version(s, user, &v, Some(generation))
            })
            .await
    }
}

/// Caches the vectors `v` embedded afresh (so a retry of a failed store embeds nothing).
fn cache_fresh(s: &Store, v: &Finished) -> Result<(), StoreError> {
    let fresh: Vec<(ContentHash, &[f32])> =
        v.chunks.iter().filter(|c| c.fresh).map(|c| (c.hash, &c.vector[..])).collect();
    s.cache_put(&v.model, &fresh)
}

/// Stores version `v` of `user`'s document with its chunks, its vectors current in an external
/// index under `generation` if given.
fn store_version(
    s: &Store,
    user: UserId,
    v: &Finished,
    generation: Option<u64>,
) -> Result<DocumentId, StoreError> {
    let chunks: Vec<NewChunk<'_>> = v
        .chunks
        .iter()
        .map(|c| NewChunk { chunk: &c.chunk, hash: c.hash, vector: &c.vector })
        .collect();
    let u = s.user(user);
    let doc = new_document(&v.version);
    match generation {
        Some(g) => u.replace_document_at(&doc, &chunks, &v.space, v.dimensions, g),
        None => u.replace_document(&doc, &chunks, &v.space, v.dimensions),
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
        if let Some(vectors) = &self.vectors {
            return self.finish_external(vectors, user, v).await;
        }
        self.run(move |s| {
            cache_fresh(s, &v)?;
            store_version(s, user, &v, None)
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
