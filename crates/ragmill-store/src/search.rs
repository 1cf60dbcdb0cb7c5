//! Nearest-chunk search within one user's collection.

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::codec::blob_to_vector;
use crate::index::FlatIndex;
use crate::{StoreError, UserStore};
use ragmill_core::DocumentId;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The document's name as ingested.
    pub document: String,
    /// The document's id.
    pub document_id: DocumentId,
    /// The chunk's ordinal within its document.
    pub chunk: u32,
    /// Cosine similarity to the query.
    pub score: f32,
    /// The chunk's text.
    pub text: String,
    /// The page the chunk starts on (PDF).
    pub page: Option<u32>,
    /// The headings enclosing the chunk.
    pub heading_path: Vec<String>,
}

/// A chunk near a query, by its document and ordinal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// Its document.
    pub document: DocumentId,
    /// Its ordinal within the document.
    pub chunk: u32,
    /// Cosine similarity to the query.
    pub score: f32,
}

impl UserStore<'_> {
    /// The `top_k` chunks most similar to `query` (a unit vector), best first, optionally only
    /// from `documents`, with their text. Exact: every one of the user's vectors is scored.
    pub fn search(
        &self,
        query: &[f32],
        top_k: usize,
        documents: Option<&[DocumentId]>,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let near = self.nearest(query, top_k, documents)?;
        self.chunks_at(&near)
    }

    /// The `top_k` chunks nearest `query`, best first, optionally only from `documents`: the
    /// embedded vector index (an exact scan of the user's in-memory matrix).
    pub fn nearest(
        &self,
        query: &[f32],
        top_k: usize,
        documents: Option<&[DocumentId]>,
    ) -> Result<Vec<Nearest>, StoreError> {
        let index = self.index()?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        if query.len() != index.dimensions() {
            return Err(StoreError::Dimension { got: query.len(), want: index.dimensions() });
        }
        let allowed: Option<HashSet<i64>> = documents.map(|d| d.iter().map(|id| id.0).collect());
        let keep = |doc| allowed.as_ref().is_none_or(|a| a.contains(&doc));
        Ok(index
            .top_k(query, top_k, keep)
            .into_iter()
            .map(|s| Nearest {
                document: DocumentId(s.document_id),
                chunk: s.ordinal,
                score: s.score,
            })
            .collect())
    }

    /// The user's chunks named in `near`, in that order, with their text, document and
    /// provenance; chunks that are not (or no longer) the user's are left out.
    pub fn chunks_at(&self, near: &[Nearest]) -> Result<Vec<SearchHit>, StoreError> {
        let conn = self.store.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.name, c.text, c.page, c.heading_path
             FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.document_id = ?1 AND c.ordinal = ?2 AND c.user_id = ?3 AND d.user_id = ?3",
        )?;
        let mut hits = Vec::with_capacity(near.len());
        for n in near {
            let hit = stmt
                .query_row(params![n.document.0, n.chunk, self.user.0], |r| {
                    let path: String = r.get(3)?;
                    Ok(SearchHit {
                        document: r.get(0)?,
                        document_id: n.document,
                        chunk: n.chunk,
                        score: n.score,
                        text: r.get(1)?,
                        page: r.get(2)?,
                        heading_path: serde_json::from_str(&path).unwrap_or_default(),
                    })
                })
                .optional()?;
            hits.extend(hit);
        }
        Ok(hits)
    }

    /// Chunks in the user's collection.
    pub fn chunk_count(&self) -> Result<usize, StoreError> {
        Ok(self.index()?.len())
    }

    /// The user's vector index, built from SQLite if not cached.
    fn index(&self) -> Result<Arc<FlatIndex>, StoreError> {
        if let Some(idx) =
            self.store.indexes.lock().map_err(|_| StoreError::Poisoned)?.get(&self.user)
        {
            return Ok(Arc::clone(idx));
        }
        let generation = self.store.generation.load(std::sync::atomic::Ordering::SeqCst);
        let dimensions = self.collection_model()?.map_or(0, |(_, d)| d);
        let mut index = FlatIndex::new(dimensions);
        {
            let conn = self.store.conn()?;
            let mut stmt = conn.prepare(
                "SELECT id, document_id, ordinal, vector FROM chunks WHERE user_id = ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([self.user.0])?;
            while let Some(row) = rows.next()? {
                let blob: Vec<u8> = row.get(3)?;
                let v =
                    blob_to_vector(&blob).filter(|v| v.len() == dimensions).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "vector of chunk {}",
                            row.get::<_, i64>(0).unwrap_or(-1)
                        ))
                    })?;
                index.push(row.get(0)?, row.get(1)?, row.get(2)?, &v);
            }
        }
        let index = Arc::new(index);
        let mut cache = self.store.indexes.lock().map_err(|_| StoreError::Poisoned)?;
        if self.store.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            cache.insert(self.user, Arc::clone(&index));
        }
        Ok(index)
    }
}
