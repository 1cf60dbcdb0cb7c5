//! One user's searchable vectors, updated in place: the current block of vectors of each of
//! their documents.
//!
//! A document's vectors are one immutable [`DocBlock`]; replacing or removing the document
//! swaps or drops that one block, so a search (which holds the read lock) sees a document's old
//! block or its new one, never a mix, and nothing is ever rebuilt to take a write. Every chunk
//! of a block has a key, `first_key + row`, never reused for another vector: the approximate
//! index names chunks by key, and a key is *visible* only while its block is current.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use ragmill_core::dot;

/// The vectors of one version of one document.
#[derive(Debug)]
pub(crate) struct DocBlock {
    /// The document.
    pub document: i64,
    /// Key of the first row; row `i` is key `first_key + i`.
    pub first_key: u64,
    /// The chunks' ordinals, one per row.
    pub ordinals: Vec<u32>,
    /// Rows of `dimensions` unit vectors.
    pub vectors: Vec<f32>,
}

impl DocBlock {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.ordinals.len()
    }

    fn row(&self, i: usize, dimensions: usize) -> &[f32] {
        &self.vectors[i * dimensions..(i + 1) * dimensions]
    }
}

/// A scored chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    /// Cosine similarity.
    pub score: f32,
    /// Its document.
    pub document: i64,
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
    /// (document, ordinal) so results are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.document.cmp(&other.document))
            .then(self.ordinal.cmp(&other.ordinal))
    }
}

/// The best `k` of a stream of scored chunks.
struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    fn offer(&mut self, s: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(s);
        } else if self.heap.peek().is_some_and(|worst| s < *worst) {
            self.heap.pop();
            self.heap.push(s);
        }
    }

    fn into_sorted(self) -> Vec<Scored> {
        self.heap.into_sorted_vec()
    }
}

/// The current blocks of one user's documents.
#[derive(Debug, Default)]
pub(crate) struct Live {
    dimensions: usize,
    docs: HashMap<i64, Arc<DocBlock>>,
    /// First key of each current block → its document: what makes a key visible.
    by_key: BTreeMap<u64, i64>,
    rows: usize,
}

impl Live {
    /// An empty collection of vectors of `dimensions`.
    pub fn new(dimensions: usize) -> Self {
        Self { dimensions, ..Self::default() }
    }

    /// Vector length (0 while the collection has no model).
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The current blocks, by document.
    pub fn blocks(&self) -> &HashMap<i64, Arc<DocBlock>> {
        &self.docs
    }

    /// Makes `block` the document's current version (or removes the document, for `None`);
    /// returns the block it replaced.
    pub fn set(&mut self, document: i64, block: Option<Arc<DocBlock>>) -> Option<Arc<DocBlock>> {
        if let Some(b) = &block
            && self.dimensions == 0
        {
            self.dimensions = b.vectors.len() / b.rows().max(1);
        }
        let old = match block {
            Some(b) => {
                self.rows += b.rows();
                self.by_key.insert(b.first_key, document);
                self.docs.insert(document, b)
            }
            None => self.docs.remove(&document),
        };
        if let Some(o) = &old {
            self.rows -= o.rows();
            self.by_key.remove(&o.first_key);
        }
        if self.docs.is_empty() {
            self.dimensions = 0;
        }
        old
    }

    /// The current block holding `key`, and the key's row in it.
    pub fn visible(&self, key: u64) -> Option<(&DocBlock, usize)> {
        let (first, doc) = self.by_key.range(..=key).next_back()?;
        let block = self.docs.get(doc)?;
        let row = usize::try_from(key - first).ok()?;
        (block.first_key == *first && row < block.rows()).then_some((block.as_ref(), row))
    }

    /// The exact top `k` by cosine, optionally only from the documents in `allowed`.
    pub fn exact(&self, query: &[f32], k: usize, allowed: Option<&HashSet<i64>>) -> Vec<Scored> {
        let mut top = TopK::new(k);
        if k == 0 || query.len() != self.dimensions {
            return Vec::new();
        }
        let mut scan = |block: &DocBlock| {
            for (row, v) in block.vectors.chunks_exact(self.dimensions).enumerate() {
                top.offer(Scored {
                    score: dot(query, v),
                    document: block.document,
                    ordinal: block.ordinals[row],
                });
            }
        };
        match allowed {
            // A few documents: visit just those.
            Some(ids) => ids.iter().filter_map(|d| self.docs.get(d)).for_each(|b| scan(b)),
            None => self.docs.values().for_each(|b| scan(b)),
        }
        top.into_sorted()
    }

    /// The best `k` of `keys` (from the approximate index), scored exactly; keys no longer
    /// visible are skipped.
    pub fn rescore(&self, query: &[f32], k: usize, keys: &[u64]) -> Vec<Scored> {
        let mut top = TopK::new(k);
        for &key in keys {
            if let Some((block, row)) = self.visible(key) {
                top.offer(Scored {
                    score: dot(query, block.row(row, self.dimensions)),
                    document: block.document,
                    ordinal: block.ordinals[row],
                });
            }
        }
        top.into_sorted()
    }

    /// Bytes the blocks hold (vectors and ordinals).
    pub fn memory(&self) -> usize {
        self.docs.values().map(|b| b.vectors.len() * 4 + b.ordinals.len() * 4).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(document: i64, first_key: u64, rows: &[[f32; 2]]) -> Arc<DocBlock> {
        Arc::new(DocBlock {
            document,
            first_key,
            ordinals: (0..rows.len() as u32).collect(),
            vectors: rows.iter().flatten().copied().collect(),
        })
    }

    #[test]
    fn exact_top_k_is_ordered_and_filtered() {
        let mut live = Live::new(2);
        live.set(10, Some(block(10, 0, &[[1.0, 0.0], [0.0, 1.0]])));
        live.set(20, Some(block(20, 2, &[[0.6, 0.8], [-1.0, 0.0], [0.8, 0.6]])));
        let got: Vec<(i64, u32)> =
            live.exact(&[1.0, 0.0], 3, None).iter().map(|s| (s.document, s.ordinal)).collect();
        assert_eq!(got, vec![(10, 0), (20, 2), (20, 0)]);
        let only: HashSet<i64> = [20].into();
        let got: Vec<(i64, u32)> = live
            .exact(&[1.0, 0.0], 2, Some(&only))
            .iter()
            .map(|s| (s.document, s.ordinal))
            .collect();
        assert_eq!(got, vec![(20, 2), (20, 0)]);
        assert!(live.exact(&[1.0, 0.0, 0.0], 3, None).is_empty(), "wrong dimension");
        assert_eq!(live.rows(), 5);
    }

    #[test]
    fn a_replaced_block_is_gone_at_once_and_its_keys_are_invisible() {
        let mut live = Live::new(2);
        live.set(10, Some(block(10, 0, &[[1.0, 0.0], [0.0, 1.0]])));
        assert!(live.visible(1).is_some());
        let old = live.set(10, Some(block(10, 5, &[[0.0, 1.0]])));
        assert_eq!(old.map(|b| b.first_key), Some(0));
        assert!(live.visible(0).is_none() && live.visible(1).is_none(), "old keys");
        assert_eq!(live.visible(5).map(|(b, r)| (b.document, r)), Some((10, 0)));
        assert!(live.visible(6).is_none(), "past the block's end");
        assert_eq!(live.rows(), 1);
        let top = live.rescore(&[0.0, 1.0], 5, &[0, 1, 5, 99]);
        assert_eq!(top.len(), 1, "only the current version's key is scored");
        live.set(10, None);
        assert_eq!((live.rows(), live.dimensions()), (0, 0));
    }
}
