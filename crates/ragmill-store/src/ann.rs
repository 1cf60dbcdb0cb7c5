//! The approximate nearest-neighbour index of one large collection: an HNSW graph from the
//! `usearch` crate over int8-quantised vectors.
//!
//! Why `usearch`: it adds and removes vectors in place while searches run (the live index needs
//! both), takes a filter predicate during the graph walk (search never sees a document that is
//! not current), quantises to int8 inside the index (a quarter of f32's memory) and builds
//! 100,000 384-dimensional vectors in ~36 s on two cores (`ragmill bench search`). `hnsw_rs`
//! has no removal and
//! `instant-distance` builds once and never changes. Candidates are re-scored exactly against
//! the f32 vectors the live index keeps, so quantisation costs recall only through which
//! candidates are found, not through their order.

use std::sync::RwLock;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Graph degree. Measured with `ragmill bench search` at 1,000,000 clustered 384-d vectors:
/// degree 16 with 64 insert candidates reaches recall@10 0.87 (0.94 re-scoring 800 candidates),
/// degree 32 with 128 reaches 0.999, for 12 % more memory and a longer build (975 s against
/// 195 s, the former while another build shared the two cores).
const CONNECTIVITY: usize = 32;
/// Candidates kept while inserting (see [`CONNECTIVITY`]).
const EXPANSION_ADD: usize = 128;
/// Candidates kept while searching; the search asks for at least this many results anyway.
const EXPANSION_SEARCH: usize = 128;

/// An HNSW index keyed by the live index's chunk keys.
pub(crate) struct Ann {
    /// usearch is safe for concurrent `add`, `remove` and `search`; only growing the capacity
    /// needs it alone, hence the lock (shared for everything else).
    inner: RwLock<Index>,
    dimensions: usize,
}

/// The index failed; usearch reports C++ exceptions as text.
#[derive(Debug, thiserror::Error)]
#[error("approximate index: {0}")]
pub(crate) struct AnnError(String);

impl AnnError {
    pub(crate) fn poisoned() -> Self {
        Self("a lock was poisoned by an earlier panic".into())
    }

    pub(crate) fn panicked() -> Self {
        Self("a build thread panicked".into())
    }
}

impl Ann {
    /// An empty index of `dimensions`, with room for `capacity` vectors.
    pub(crate) fn new(dimensions: usize, capacity: usize) -> Result<Self, AnnError> {
        let options = IndexOptions {
            dimensions,
            metric: MetricKind::IP,
            quantization: ScalarKind::I8,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| AnnError(e.to_string()))?;
        index.reserve(capacity.max(1024)).map_err(|e| AnnError(e.to_string()))?;
        Ok(Self { inner: RwLock::new(index), dimensions })
    }

    /// Adds `vectors` (rows of `dimensions`) under keys `first_key..`.
    pub(crate) fn add(&self, first_key: u64, vectors: &[f32]) -> Result<(), AnnError> {
        let rows = vectors.len() / self.dimensions.max(1);
        self.grow(rows)?;
        let index = self.inner.read().map_err(|_| AnnError::poisoned())?;
        for (i, v) in vectors.chunks_exact(self.dimensions).enumerate() {
            index.add(first_key + i as u64, v).map_err(|e| AnnError(e.to_string()))?;
        }
        Ok(())
    }

    /// Removes keys `first_key..first_key + rows`.
    pub(crate) fn remove(&self, first_key: u64, rows: usize) -> Result<(), AnnError> {
        let index = self.inner.read().map_err(|_| AnnError::poisoned())?;
        for key in first_key..first_key + rows as u64 {
            index.remove(key).map_err(|e| AnnError(e.to_string()))?;
        }
        Ok(())
    }

    /// Up to `count` keys near `query` among those `keep` accepts, best first.
    pub(crate) fn search(
        &self,
        query: &[f32],
        count: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<u64>, AnnError> {
        let index = self.inner.read().map_err(|_| AnnError::poisoned())?;
        let found =
            index.filtered_search(query, count, keep).map_err(|e| AnnError(e.to_string()))?;
        Ok(found.keys)
    }

    /// Vectors held.
    pub(crate) fn len(&self) -> usize {
        self.inner.read().map_or(0, |i| i.size())
    }

    /// Bytes of memory the index holds.
    pub(crate) fn memory(&self) -> usize {
        self.inner.read().map_or(0, |i| i.memory_usage())
    }

    /// Makes room for `more` vectors, doubling so growth is amortised.
    fn grow(&self, more: usize) -> Result<(), AnnError> {
        let need = {
            let index = self.inner.read().map_err(|_| AnnError::poisoned())?;
            let need = index.size() + more;
            if need <= index.capacity() {
                return Ok(());
            }
            need
        };
        let index = self.inner.write().map_err(|_| AnnError::poisoned())?;
        if need > index.capacity() {
            index.reserve(need.max(index.capacity() * 2)).map_err(|e| AnnError(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, d: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..d)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
            })
            .collect();
        ragmill_core::normalize(&mut v);
        v
    }

    #[test]
    fn finds_what_was_added_and_forgets_what_was_removed() {
        let d = 16;
        let ann = Ann::new(d, 8).expect("index");
        let vectors: Vec<f32> = (0..2000).flat_map(|i| unit(i, d)).collect();
        ann.add(100, &vectors).expect("add grows past the first capacity");
        assert_eq!(ann.len(), 2000);
        let query = unit(7, d);
        assert_eq!(ann.search(&query, 1, |_| true).expect("search"), vec![107]);
        assert_ne!(ann.search(&query, 1, |k| k != 107).expect("search"), vec![107]);
        ann.remove(100, 10).expect("remove");
        assert!(!ann.search(&query, 5, |_| true).expect("search").contains(&107));
        assert!(ann.memory() > 0);
    }
}
