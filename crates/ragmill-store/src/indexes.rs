//! The live vector index of every user: loaded once, then kept current by the writes
//! themselves, and searched exactly or, for large collections, through an approximate index.
//!
//! **Writes** ([`Slot::apply`]) swap one document's [`DocBlock`] under the user's write lock;
//! the caller takes the user's writer lock while it still holds the store's connection, so
//! blocks are applied in commit order. With an approximate index, the new block's vectors are
//! added to it *before* the swap (invisible until then: a key is visible only while its block
//! is current) and the old block's are removed after it.
//!
//! **Loading** runs on the first search of a user, on its own read-only SQLite connection, so
//! it holds neither the store's connection nor any other user's search. Writes that land while
//! it reads are recorded in `pending` and replayed over what it read (each one sets a
//! document's block, so replaying one the read already saw is harmless).
//!
//! **The approximate index** is built in the background once a collection reaches
//! [`IndexSettings::ann_threshold`] rows, from a snapshot of the blocks; it then catches up with
//! the blocks that changed meanwhile (the last, short round under the writer lock) and is
//! installed. Until then, and whenever it fails, search is the exact scan.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::ann::{Ann, AnnError};
use crate::live::{DocBlock, Live, Scored};
use crate::{StoreError, UserId};

/// How the live index searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSettings {
    /// Rows from which a user's collection gets an approximate (HNSW) index; below it every
    /// search is an exact scan. `usize::MAX` turns approximate search off.
    pub ann_threshold: usize,
    /// Candidates the approximate index proposes for exact re-scoring (at least 4 × top k).
    pub ann_candidates: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        // At 50,000 rows of 384 dimensions the exact scan takes ~2 ms on one core; beyond it
        // the scan grows linearly while the graph search stays under a millisecond.
        Self { ann_threshold: 50_000, ann_candidates: 100 }
    }
}

/// What the live index of one user holds, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Whether it has been loaded from SQLite.
    pub loaded: bool,
    /// Vectors searchable.
    pub rows: usize,
    /// Vectors in the approximate index, when there is one.
    pub ann_rows: Option<usize>,
    /// Bytes of memory: the f32 vectors plus the approximate index.
    pub memory_bytes: usize,
}

type Op = (i64, Option<Arc<DocBlock>>);

/// One user's live index.
#[derive(Default)]
pub(crate) struct Slot {
    live: RwLock<Option<Live>>,
    /// `Some` while a load is reading SQLite: the writes it may have missed.
    pending: Mutex<Option<Vec<Op>>>,
    loading: Mutex<()>,
    writer: Mutex<()>,
    ann: RwLock<Option<Arc<Ann>>>,
    building: AtomicBool,
    next_key: AtomicU64,
}

/// Every user's live index.
#[derive(Default)]
pub(crate) struct Indexes {
    slots: Mutex<HashMap<UserId, Arc<Slot>>>,
    pub(crate) settings: IndexSettings,
    /// [`IndexSettings::ann_candidates`], changeable while running (benchmarks sweep it).
    candidates: std::sync::atomic::AtomicUsize,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Poisoned
}

impl Indexes {
    pub(crate) fn new(settings: IndexSettings) -> Self {
        let candidates = std::sync::atomic::AtomicUsize::new(settings.ann_candidates);
        Self { slots: Mutex::default(), settings, candidates }
    }

    /// Sets how many candidates the approximate index proposes for re-scoring (the graph
    /// search explores at least that many).
    pub(crate) fn set_candidates(&self, n: usize) {
        self.candidates.store(n.max(1), Ordering::SeqCst);
    }

    /// The user's slot, created empty (not loaded) if new.
    pub(crate) fn slot(&self, user: UserId) -> Result<Arc<Slot>, StoreError> {
        Ok(Arc::clone(self.slots.lock().map_err(poisoned)?.entry(user).or_default()))
    }

    /// Forgets the user's index (the user is gone).
    pub(crate) fn drop_user(&self, user: UserId) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(&user);
        }
    }

    /// The exact or approximate top `k` of the user's vectors, loading them with `load` first
    /// if this is the user's first search.
    pub(crate) fn search(
        &self,
        user: UserId,
        query: &[f32],
        k: usize,
        allowed: Option<&HashSet<i64>>,
        load: impl FnOnce() -> Result<Vec<Loaded>, StoreError>,
    ) -> Result<Vec<Scored>, StoreError> {
        let slot = self.slot(user)?;
        slot.ensure_loaded(load)?;
        let found = {
            let guard = slot.live.read().map_err(poisoned)?;
            let Some(live) = guard.as_ref() else { return Ok(Vec::new()) };
            if live.rows() == 0 {
                return Ok(Vec::new());
            }
            if query.len() != live.dimensions() {
                return Err(StoreError::Dimension { got: query.len(), want: live.dimensions() });
            }
            let rows = allowed.map_or(live.rows(), |ids| {
                ids.iter().filter_map(|d| live.blocks().get(d)).map(|b| b.rows()).sum()
            });
            let ann = slot.ann.read().map_err(poisoned)?.clone();
            match ann {
                Some(ann) if rows >= self.settings.ann_threshold => {
                    let want = (k * 4).max(self.candidates.load(Ordering::SeqCst));
                    let keep = |key| {
                        live.visible(key).is_some_and(|(b, _)| {
                            allowed.is_none_or(|ids| ids.contains(&b.document))
                        })
                    };
                    match ann.search(query, want, keep) {
                        Ok(keys) => live.rescore(query, k, &keys),
                        Err(e) => {
                            tracing::warn!(error = %e, "approximate search failed; scanning");
                            live.exact(query, k, allowed)
                        }
                    }
                }
                _ => live.exact(query, k, allowed),
            }
        };
        self.maybe_build(&slot);
        Ok(found)
    }

    /// Starts building the user's approximate index in the background if the collection has
    /// reached the threshold and has none.
    fn maybe_build(&self, slot: &Arc<Slot>) {
        let rows = slot.live.read().ok().and_then(|l| l.as_ref().map(Live::rows)).unwrap_or(0);
        let has = slot.ann.read().map(|a| a.is_some()).unwrap_or(true);
        if rows < self.settings.ann_threshold || has || slot.building.swap(true, Ordering::SeqCst) {
            return;
        }
        let slot = Arc::clone(slot);
        let spawned = std::thread::Builder::new().name("ragmill-ann".into()).spawn(move || {
            if let Err(e) = slot.build_ann() {
                tracing::warn!(error = %e, "cannot build the approximate index; search stays exact");
            }
            slot.building.store(false, Ordering::SeqCst);
        });
        if spawned.is_err() {
            tracing::warn!("cannot start the approximate index's thread");
        }
    }

    /// Builds the user's approximate index now, in this thread, if the collection has reached
    /// the threshold (for benchmarks and warm-up).
    pub(crate) fn build_now(
        &self,
        user: UserId,
        load: impl FnOnce() -> Result<Vec<Loaded>, StoreError>,
    ) -> Result<(), StoreError> {
        let slot = self.slot(user)?;
        slot.ensure_loaded(load)?;
        let rows = slot.live.read().map_err(poisoned)?.as_ref().map_or(0, Live::rows);
        if rows < self.settings.ann_threshold || slot.building.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let built = slot.build_ann();
        slot.building.store(false, Ordering::SeqCst);
        built.map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// What the user's index holds.
    pub(crate) fn stats(&self, user: UserId) -> Result<IndexStats, StoreError> {
        let slot = self.slot(user)?;
        let live = slot.live.read().map_err(poisoned)?;
        let ann = slot.ann.read().map_err(poisoned)?;
        Ok(IndexStats {
            loaded: live.is_some(),
            rows: live.as_ref().map_or(0, Live::rows),
            ann_rows: ann.as_ref().map(|a| a.len()),
            memory_bytes: live.as_ref().map_or(0, Live::memory)
                + ann.as_ref().map_or(0, |a| a.memory()),
        })
    }
}

/// One document's vectors as read from SQLite: (document, ordinals, vectors).
pub(crate) type Loaded = (i64, Vec<u32>, Vec<f32>);

impl Slot {
    /// Takes the user's writer lock: hold it from before the connection is released until
    /// [`Slot::apply`] returns, so blocks are applied in commit order.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        self.writer.lock().map_err(poisoned)
    }

    /// Whether writes need to build blocks for this user (the index is loaded or loading).
    pub(crate) fn wanted(&self) -> bool {
        self.pending.lock().is_ok_and(|p| p.is_some())
            || self.live.read().is_ok_and(|l| l.is_some())
    }

    /// A block for `document`'s new vectors, with fresh keys.
    pub(crate) fn block(&self, document: i64, ordinals: Vec<u32>, vectors: Vec<f32>) -> DocBlock {
        let first_key = self.next_key.fetch_add(ordinals.len() as u64, Ordering::SeqCst);
        DocBlock { document, first_key, ordinals, vectors }
    }

    /// Makes `block` the document's current vectors (`None`: the document is gone). The caller
    /// holds [`Slot::writer`].
    pub(crate) fn apply(&self, document: i64, block: Option<DocBlock>) {
        let block = block.map(Arc::new);
        let ann = self.ann.read().ok().and_then(|a| a.clone());
        if let (Some(a), Some(b)) = (&ann, &block)
            && let Err(e) = a.add(b.first_key, &b.vectors)
        {
            tracing::warn!(error = %e, "approximate index dropped; it will be rebuilt");
            if let Ok(mut slot) = self.ann.write() {
                *slot = None;
            }
        }
        let old = {
            let Ok(mut pending) = self.pending.lock() else { return };
            if let Some(p) = pending.as_mut() {
                p.push((document, block.clone()));
            }
            let Ok(mut live) = self.live.write() else { return };
            live.as_mut().and_then(|l| l.set(document, block))
        };
        if let (Some(a), Some(old)) = (&ann, &old)
            && let Err(e) = a.remove(old.first_key, old.rows())
        {
            tracing::warn!(error = %e, "cannot remove replaced vectors from the approximate index");
        }
    }

    /// Loads the user's vectors with `load` unless already loaded; other users are not held.
    fn ensure_loaded(
        &self,
        load: impl FnOnce() -> Result<Vec<Loaded>, StoreError>,
    ) -> Result<(), StoreError> {
        if self.live.read().map_err(poisoned)?.is_some() {
            return Ok(());
        }
        let _one_loader = self.loading.lock().map_err(poisoned)?;
        if self.live.read().map_err(poisoned)?.is_some() {
            return Ok(());
        }
        *self.pending.lock().map_err(poisoned)? = Some(Vec::new());
        let read = match load() {
            Ok(read) => read,
            Err(e) => {
                *self.pending.lock().map_err(poisoned)? = None;
                return Err(e);
            }
        };
        let mut live = Live::new(0);
        for (document, ordinals, vectors) in read {
            live.set(document, Some(Arc::new(self.block(document, ordinals, vectors))));
        }
        let mut pending = self.pending.lock().map_err(poisoned)?;
        for (document, block) in pending.take().unwrap_or_default() {
            live.set(document, block);
        }
        *self.live.write().map_err(poisoned)? = Some(live);
        Ok(())
    }

    /// Builds the approximate index from the current blocks, catches up with the writes made
    /// meanwhile and installs it.
    fn build_ann(&self) -> Result<(), AnnError> {
        let snapshot = |s: &Self| {
            s.live.read().ok().and_then(|l| l.as_ref().map(|l| (l.blocks().clone(), l.rows())))
        };
        let Some((mut covered, rows)) = snapshot(self) else { return Ok(()) };
        let Some(dimensions) = covered.values().next().map(|b| b.vectors.len() / b.rows().max(1))
        else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let ann = Ann::new(dimensions, rows + rows / 4)?;
        let blocks: Vec<&Arc<DocBlock>> = covered.values().collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = blocks.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = blocks
                .chunks(per)
                .map(|part| {
                    let ann = &ann;
                    s.spawn(move || part.iter().try_for_each(|b| ann.add(b.first_key, &b.vectors)))
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err(AnnError::panicked())))
        })?;
        // Catch up: rounds without blocking writers until one finds nothing (or three have
        // run), then one under the writer lock, which is then short.
        let mut round = 0;
        let mut quiet = false;
        loop {
            let last = quiet || round == 3;
            let writer = if last {
                Some(self.writer.lock().map_err(|_| AnnError::poisoned())?)
            } else {
                None
            };
            let Some((current, _)) = snapshot(self) else { return Ok(()) };
            let mut changed = 0;
            for (doc, block) in &current {
                if !covered.get(doc).is_some_and(|c| Arc::ptr_eq(c, block)) {
                    ann.add(block.first_key, &block.vectors)?;
                    changed += 1;
                }
            }
            for (doc, block) in &covered {
                if !current.get(doc).is_some_and(|c| Arc::ptr_eq(c, block)) {
                    ann.remove(block.first_key, block.rows())?;
                    changed += 1;
                }
            }
            covered = current;
            if last {
                *self.ann.write().map_err(|_| AnnError::poisoned())? = Some(Arc::new(ann));
                drop(writer);
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(rows, seconds, "approximate index ready");
                return Ok(());
            }
            quiet = changed == 0;
            round += 1;
        }
    }
}
