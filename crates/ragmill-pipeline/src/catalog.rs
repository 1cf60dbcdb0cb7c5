//! [`LocalCatalog`]: the [`Catalog`] seam over the embedded store, in this process.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ragmill_core::{
    Catalog, CatalogError, ContentHash, DocumentId, DocumentVersion, FailedVersion, Finished,
    IndexedChunk, StoredVersion, UserId,
};
use ragmill_store::{Attempt, DocumentState, NewChunk, NewDocument, Store, StoreError};

use crate::external::{Vectors, catalog_error};

/// The embedded store as a [`Catalog`]: every call runs on tokio's blocking threads. With an
/// external vector index ([`LocalCatalog::with_vectors`]), a version's vectors are written
/// there first and switched to in the store's transaction ([`Vectors`]). Every outcome it
/// records goes to the store's processing log under its origin ([`LocalCatalog::by`]).
#[derive(Clone)]
pub struct LocalCatalog {
    store: Arc<Store>,
    vectors: Option<Vectors>,
    origin: Arc<str>,
}

/// Who a catalog's outcomes are logged as unless told otherwise: a pipeline run by the
/// `ragmill` command line (`ingest`, `eval`, benchmarks). The server names its own.
pub const DEFAULT_ORIGIN: &str = "cli";

impl LocalCatalog {
    /// A catalog over `store`, whose own vectors are the searchable ones.
    pub fn new(store: Arc<Store>) -> Self {
        Self::with_vectors(store, None)
    }

    /// A catalog over `store` that also keeps `vectors`' external index in step (nothing is
    /// kept for an embedded index).
    pub fn with_vectors(store: Arc<Store>, vectors: Option<Vectors>) -> Self {
        Self {
            store,
            vectors: vectors.filter(|v| v.index().external()),
            origin: DEFAULT_ORIGIN.into(),
        }
    }

    /// Logs the outcomes this catalog records as done by `origin` (`server`, `remote worker`,
    /// …; [`DEFAULT_ORIGIN`] unless told).
    pub fn by(mut self, origin: &str) -> Self {
        self.origin = origin.into();
        self
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
        self.run(move |s| cache_fresh(s, user, &cached)).await?;
        let Some(id) = known else {
            let (stored, origin) = (Arc::clone(&v), Arc::clone(&self.origin));
            let id = self.run(move |s| store_version(s, user, &stored, None, &origin)).await?;
            vectors.copy_stored(user, id).await.map_err(catalog_error)?;
            return Ok(id);
        };
        let chunks = v
            .chunks
            .iter()
            .map(|c| IndexedChunk { chunk: c.chunk.ordinal, vector: c.vector.clone() })
            .collect();
        let (hash, origin) = (v.version.content_hash, Arc::clone(&self.origin));
        vectors
            .write_version(user, id, hash, chunks, move |s, generation| {
                let mut v = Arc::unwrap_or_clone(v);
                v.version.document = Some(id);
                store_version(s, user, &v, Some(generation), &origin)
            })
            .await
    }
}

/// Caches the vectors `v` embedded afresh for `user` (so a retry of a failed store embeds
/// nothing).
fn cache_fresh(s: &Store, user: UserId, v: &Finished) -> Result<(), StoreError> {
    let fresh: Vec<(ContentHash, &[f32])> =
        v.chunks.iter().filter(|c| c.fresh).map(|c| (c.hash, &c.vector[..])).collect();
    s.user(user).cache_put(&v.model, &fresh)
}

/// Stores version `v` of `user`'s document with its chunks, its vectors current in an external
/// index under `generation` if given, logged as done by `origin`.
fn store_version(
    s: &Store,
    user: UserId,
    v: &Finished,
    generation: Option<u64>,
    origin: &str,
) -> Result<DocumentId, StoreError> {
    let chunks: Vec<NewChunk<'_>> = v
        .chunks
        .iter()
        .map(|c| NewChunk { chunk: &c.chunk, hash: c.hash, vector: &c.vector })
        .collect();
    // A fresh chunk is a distinct text embedded now; the others came from the cache (or from
    // an earlier chunk of the same text): as `Ingested` counts them.
    let embedded = v.chunks.iter().filter(|c| c.fresh).count() as u64;
    let attempt = Attempt {
        by: Some(origin.to_owned()),
        embedded,
        cache_hits: v.chunks.len() as u64 - embedded,
    };
    let u = s.user(user).with_attempt(attempt);
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
        user: UserId,
        model: &str,
        hashes: Vec<ContentHash>,
    ) -> Result<HashMap<ContentHash, Vec<f32>>, CatalogError> {
        let model = model.to_owned();
        self.run(move |s| s.user(user).cache_get(&model, &hashes)).await
    }

    async fn remember(
        &self,
        user: UserId,
        model: &str,
        vectors: Vec<(ContentHash, Vec<f32>)>,
    ) -> Result<(), CatalogError> {
        let model = model.to_owned();
        self.run(move |s| {
            let entries: Vec<(ContentHash, &[f32])> =
                vectors.iter().map(|(h, v)| (*h, v.as_slice())).collect();
            s.user(user).cache_put(&model, &entries)
        })
        .await
    }

    async fn finish(&self, user: UserId, v: Finished) -> Result<DocumentId, CatalogError> {
        if let Some(vectors) = &self.vectors {
            return self.finish_external(vectors, user, v).await;
        }
        let origin = Arc::clone(&self.origin);
        self.run(move |s| {
            cache_fresh(s, user, &v)?;
            store_version(s, user, &v, None, &origin)
        })
        .await
    }

    async fn fail(&self, user: UserId, v: FailedVersion) -> Result<DocumentId, CatalogError> {
        let origin = Arc::clone(&self.origin);
        self.run(move |s| {
            s.user(user).with_attempt(Attempt::by(&origin)).record_failure(
                &new_document(&v.version),
                &v.code,
                &v.message,
            )
        })
        .await
    }
}
