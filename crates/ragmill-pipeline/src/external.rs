//! [`Vectors`]: the one owner of the protocol between the store (SQLite, the truth) and an
//! external vector index (ChromaDB). Nothing else writes to or deletes from such an index.
//!
//! - A new version of a document is written to the index under a fresh generation, then
//!   switched to in the store's transaction, then the old generation is retired
//!   ([`Vectors::write_version`], called by `LocalCatalog::finish`).
//! - Whatever the index holds that the store no longer names (an old generation, a deleted
//!   document, a deleted user's collection) is listed in the store as garbage in the same
//!   transaction that made it stale, and forgotten by [`Vectors::collect`]: at once after the
//!   write or delete, and again by the server's sweeper if the index was down.
//! - Documents stored while the embedded index served (or by a write whose index step failed)
//!   are copied by [`Vectors::catch_up`] (migration, start-up, the sweeper).
//! - [`Vectors::sync_user`] rebuilds one user's collection from the store: it compares what
//!   the index holds with what the store names and writes or retires the difference.
//! - A search's hits are filtered by [`current`]: a hit counts only if its generation is its
//!   document's current one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ragmill_core::{
    CatalogError, DocumentId, IndexError, IndexedChunk, Retire, UserId, VectorHit, VectorIndex,
};
use ragmill_store::{Garbage, Store, StoreError};
use serde::Serialize;

use crate::catalog::on_store;

/// What a catch-up, sweep or sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Documents whose vectors were written to the index.
    pub written: usize,
    /// Chunks' vectors written.
    pub chunks: usize,
    /// Generations or collections the index was told to forget.
    pub retired: usize,
}

impl std::ops::AddAssign for SyncReport {
    fn add_assign(&mut self, o: Self) {
        self.written += o.written;
        self.chunks += o.chunks;
        self.retired += o.retired;
    }
}

/// The store and an external index, kept in step.
#[derive(Clone)]
pub struct Vectors {
    store: Arc<Store>,
    index: Arc<dyn VectorIndex>,
}

/// The index's errors as the catalog seam speaks them: unreachable is worth waiting for.
pub fn catalog_error(e: IndexError) -> CatalogError {
    match e {
        IndexError::Unavailable(m) => CatalogError::IndexUnavailable(m),
        e => CatalogError::Failed(e.to_string()),
    }
}

fn store_failed(e: CatalogError) -> IndexError {
    IndexError::Failed(e.to_string())
}

impl Vectors {
    /// `index` kept in step with `store`.
    pub fn new(store: Arc<Store>, index: Arc<dyn VectorIndex>) -> Self {
        Self { store, index }
    }

    /// The index.
    pub fn index(&self) -> &Arc<dyn VectorIndex> {
        &self.index
    }

    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        on_store(&self.store, f).await
    }

    /// Writes document `id`'s new version's vectors under a generation staged for
    /// `content_hash`, then runs `store` (which must store the version with
    /// `replace_document_at` that generation), then forgets what it made stale.
    pub async fn write_version<T: Send + 'static>(
        &self,
        user: UserId,
        id: DocumentId,
        content_hash: ragmill_core::ContentHash,
        chunks: Vec<IndexedChunk>,
        store: impl FnOnce(&Store, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let generation =
            self.on_store(move |s| s.user(user).stage_vectors(id, content_hash)).await?;
        self.index.write(user, id, generation, chunks).await.map_err(catalog_error)?;
        let stored = self.on_store(move |s| store(s, generation)).await?;
        self.collect_quietly().await;
        Ok(stored)
    }

    /// Copies the searchable version of `user`'s document `id` from the store to the index
    /// and makes it current there. False if it has nothing to copy or a newer version is
    /// being written (its job writes it).
    pub async fn copy_stored(&self, user: UserId, id: DocumentId) -> Result<usize, IndexError> {
        let staged = self
            .on_store(move |s| {
                let u = s.user(user);
                let Some(g) = u.stage_stored_vectors(id)? else { return Ok(None) };
                Ok(u.stored_vectors(id)?.map(|chunks| (g, chunks)))
            })
            .await
            .map_err(store_failed)?;
        let Some((generation, chunks)) = staged else { return Ok(0) };
        let n = chunks.len();
        self.index.write(user, id, generation, chunks).await?;
        let adopted = self
            .on_store(move |s| s.user(user).adopt_vectors(id, generation))
            .await
            .map_err(store_failed)?;
        Ok(if adopted { n } else { 0 })
    }

    /// Forgets in the index what the store lists as garbage; stops at the first failure (the
    /// rest waits for the next sweep).
    pub async fn collect(&self) -> Result<usize, IndexError> {
        let mut retired = 0;
        loop {
            let rows = self.on_store(|s| s.vector_garbage(256)).await.map_err(store_failed)?;
            if rows.is_empty() {
                return Ok(retired);
            }
            for row in rows {
                match (row.document, row.what) {
                    (Some(d), Garbage::Generation(g)) => {
                        self.index.retire(row.user, d, Retire::Generation(g)).await?
                    }
                    (Some(d), Garbage::Through(g)) => {
                        self.index.retire(row.user, d, Retire::Through(g)).await?
                    }
                    _ => self.index.remove_user(row.user).await?,
                }
                self.on_store(move |s| s.clear_vector_garbage(&[row.id]))
                    .await
                    .map_err(store_failed)?;
                retired += 1;
            }
        }
    }

    /// [`Vectors::collect`], logging a failure (a sweep retries it).
    pub async fn collect_quietly(&self) {
        if let Err(e) = self.collect().await {
            tracing::warn!(error = %e, "stale vectors stay in the index until the next sweep");
        }
    }

    /// Copies every document the index lacks (see [`Store::unindexed`]) and forgets the
    /// garbage: what a sweep, start-up and a migration run.
    pub async fn catch_up(&self) -> Result<SyncReport, IndexError> {
        let mut report = SyncReport { retired: self.collect().await?, ..SyncReport::default() };
        let mut skipped = HashSet::new();
        loop {
            let todo = self.on_store(|s| s.unindexed(512)).await.map_err(store_failed)?;
            let todo: Vec<_> = todo.into_iter().filter(|d| !skipped.contains(d)).collect();
            if todo.is_empty() {
                return Ok(report);
            }
            for (user, id) in todo {
                match self.copy_stored(user, id).await? {
                    0 => {
                        skipped.insert((user, id));
                    }
                    n => {
                        report.written += 1;
                        report.chunks += n;
                    }
                }
            }
        }
    }

    /// Rebuilds `user`'s collection from the store: writes the current vectors of every
    /// document the index lacks or holds incompletely, and retires every generation the store
    /// names neither current nor staged (a user the store no longer has loses the whole
    /// collection).
    pub async fn sync_user(&self, user: UserId) -> Result<SyncReport, IndexError> {
        let mut report = SyncReport::default();
        let exists =
            self.on_store(move |s| Ok(s.account(user)?.is_some())).await.map_err(store_failed)?;
        if !exists {
            self.index.remove_user(user).await?;
            report.retired += 1;
            return Ok(report);
        }
        // What the index holds first, then what the store names: a generation written before
        // the inventory was staged before it too, so the store read after knows it.
        let held = self.index.inventory(user).await?;
        let states =
            self.on_store(move |s| s.user(user).vector_states()).await.map_err(store_failed)?;
        let mut held_by: HashMap<(DocumentId, u64), u32> = HashMap::new();
        for v in &held {
            held_by.insert((v.document, v.generation), v.chunks);
        }
        let by_doc: HashMap<DocumentId, _> = states.iter().map(|s| (s.document, *s)).collect();
        for v in &held {
            let keep = by_doc
                .get(&v.document)
                .is_some_and(|s| s.current == Some(v.generation) || s.staged == Some(v.generation));
            if !keep {
                let which = match by_doc.get(&v.document) {
                    Some(_) => Retire::Generation(v.generation),
                    // Gone from the store: every generation the index showed, not one a new
                    // document given the same id may have written since.
                    None => Retire::Through(v.generation),
                };
                self.index.retire(user, v.document, which).await?;
                report.retired += 1;
            }
        }
        for s in states.iter().filter(|s| s.chunks > 0) {
            let complete =
                s.current.is_some_and(|g| held_by.get(&(s.document, g)) == Some(&s.chunks));
            if !complete {
                // Not there, or not all of it: copy it afresh under a new generation (the
                // switch lists the incomplete one as garbage).
                let n = self.copy_stored(user, s.document).await?;
                if n > 0 {
                    report.written += 1;
                    report.chunks += n;
                }
            }
        }
        report.retired += self.collect().await?;
        Ok(report)
    }
}

/// Keeps the hits whose generation is their document's current one (all of them from an
/// index whose hits carry none).
pub(crate) fn current(
    store: &Store,
    user: UserId,
    hits: Vec<VectorHit>,
) -> Result<Vec<VectorHit>, StoreError> {
    if hits.iter().all(|h| h.generation.is_none()) {
        return Ok(hits);
    }
    let mut docs: Vec<DocumentId> = hits.iter().map(|h| h.document).collect();
    docs.sort_unstable_by_key(|d| d.0);
    docs.dedup();
    let current = store.user(user).vector_generations(&docs)?;
    Ok(hits
        .into_iter()
        .filter(|h| h.generation.is_none() || current.get(&h.document) == h.generation.as_ref())
        .collect())
}
