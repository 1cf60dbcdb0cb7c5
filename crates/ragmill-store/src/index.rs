//! The exact in-memory vector index.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ragmill_core::dot;

/// All of one user's vectors in one contiguous matrix, scanned exactly.
///
/// Vectors are unit length, so the dot product is the cosine. The scan is a vectorised dot
/// product per row with a bounded min-heap for the top k: O(n·d) time, O(k) extra space.
#[derive(Debug, Default)]
pub struct FlatIndex {
    dimensions: usize,
    vectors: Vec<f32>,
    chunk_ids: Vec<i64>,
    document_ids: Vec<i64>,
    ordinals: Vec<u32>,
}

/// A scored row of the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Cosine similarity.
    pub score: f32,
    /// The chunk's row id.
    pub chunk_id: i64,
    /// Its document.
    pub document_id: i64,
    /// Its ordinal within the document.
    pub ordinal: u32,
}

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// Reversed on score so a `BinaryHeap` keeps the worst of the top k on top; ties broken by
    /// chunk id so results are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.chunk_id.cmp(&other.chunk_id))
    }
}

impl FlatIndex {
    /// An empty index of vectors of `dimensions`.
    pub fn new(dimensions: usize) -> Self {
        Self { dimensions, ..Self::default() }
    }

    /// Appends one row: chunk `chunk_id`, the `ordinal`th of document `document_id`.
    pub fn push(&mut self, chunk_id: i64, document_id: i64, ordinal: u32, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dimensions);
        self.vectors.extend_from_slice(vector);
        self.chunk_ids.push(chunk_id);
        self.document_ids.push(document_id);
        self.ordinals.push(ordinal);
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.chunk_ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.chunk_ids.is_empty()
    }

    /// Vector length.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The `k` rows most similar to `query`, best first, among rows whose document passes `keep`.
    pub fn top_k(&self, query: &[f32], k: usize, keep: impl Fn(i64) -> bool) -> Vec<Scored> {
        if k == 0 || self.dimensions == 0 || query.len() != self.dimensions {
            return Vec::new();
        }
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (row, v) in self.vectors.chunks_exact(self.dimensions).enumerate() {
            if !keep(self.document_ids[row]) {
                continue;
            }
            let s = Scored {
                score: dot(query, v),
                chunk_id: self.chunk_ids[row],
                document_id: self.document_ids[row],
                ordinal: self.ordinals[row],
            };
            if heap.len() < k {
                heap.push(s);
            } else if heap.peek().is_some_and(|worst| s < *worst) {
                heap.pop();
                heap.push(s);
            }
        }
        heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_exact_and_ordered() {
        let mut idx = FlatIndex::new(2);
        let rows =
            [(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [0.6, 0.8]), (4, [-1.0, 0.0]), (5, [0.8, 0.6])];
        for (id, v) in rows {
            idx.push(id, id * 10, 0, &v);
        }
        let got: Vec<i64> =
            idx.top_k(&[1.0, 0.0], 3, |_| true).iter().map(|s| s.chunk_id).collect();
        assert_eq!(got, vec![1, 5, 3]);
        let filtered: Vec<i64> =
            idx.top_k(&[1.0, 0.0], 2, |d| d != 10).iter().map(|s| s.chunk_id).collect();
        assert_eq!(filtered, vec![5, 3]);
        assert!(idx.top_k(&[1.0, 0.0, 0.0], 3, |_| true).is_empty(), "wrong dimension");
        assert_eq!(idx.top_k(&[0.0, 1.0], 100, |_| true).len(), 5);
    }
}
