//! Nearest-chunk search within one user's collection.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::codec::blob_to_vector;
use crate::indexes::{IndexStats, Loaded};
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
    /// The score results are ordered by: cosine similarity for a vector search, BM25 for a
    /// keyword search, the fused (or reranked) score for a hybrid one.
    pub score: f32,
    /// The scores of each side that found the chunk.
    pub scores: Scores,
    /// The chunk's text.
    pub text: String,
    /// The page the chunk starts on (PDF).
    pub page: Option<u32>,
    /// The headings enclosing the chunk.
    pub heading_path: Vec<String>,
}

/// What each retriever made of a chunk; absent where it did not find it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Cosine similarity to the query's vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<f32>,
    /// BM25 of the query's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<f32>,
    /// The reranker's relevance score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
}

/// A chunk near a query, by its document and ordinal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// Its document.
    pub document: DocumentId,
    /// Its ordinal within the document.
    pub chunk: u32,
    /// The score to report and order by.
    pub score: f32,
    /// Each retriever's score.
    pub scores: Scores,
}

impl UserStore<'_> {
    /// The `top_k` chunks most similar to `query` (a unit vector), best first, optionally only
    /// from `documents`, with their text.
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
    /// user's live vector index (exact, or approximate and re-scored for a large collection).
    pub fn nearest(
        &self,
        query: &[f32],
        top_k: usize,
        documents: Option<&[DocumentId]>,
    ) -> Result<Vec<Nearest>, StoreError> {
        let allowed: Option<HashSet<i64>> = documents.map(|d| d.iter().map(|id| id.0).collect());
        let found =
            self.store.indexes.search(self.user, query, top_k, allowed.as_ref(), || self.load())?;
        Ok(found
            .into_iter()
            .map(|s| Nearest {
                document: DocumentId(s.document),
                chunk: s.ordinal,
                score: s.score,
                scores: Scores { vector: Some(s.score), ..Scores::default() },
            })
            .collect())
    }

    /// Loads the user's vector index now, and builds its approximate index if the collection
    /// is large enough, in this thread (searches do both lazily; benchmarks and warm-up call
    /// this).
    pub fn prepare_index(&self) -> Result<(), StoreError> {
        self.store.indexes.build_now(self.user, || self.load())
    }

    /// What the user's vector index holds now.
    pub fn index_stats(&self) -> Result<IndexStats, StoreError> {
        self.store.indexes.stats(self.user)
    }

    /// The user's chunks named in `near`, in that order, with their text, document and
    /// provenance; chunks that are not (or no longer) the user's are left out.
    pub fn chunks_at(&self, near: &[Nearest]) -> Result<Vec<SearchHit>, StoreError> {
        let conn = self.store.reader()?;
        // One snapshot for every chunk of the answer.
        let _snapshot = conn.unchecked_transaction()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.name, c.text, c.page, c.heading_path
             FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.document_id = ?1 AND c.ordinal = ?2 AND +c.user_id = ?3 AND d.user_id = ?3",
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
                        scores: n.scores,
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

    /// Every vector of the user, by document, read on a connection of its own (read-only, WAL:
    /// it waits for no writer and holds up no other user).
    fn load(&self) -> Result<Vec<Loaded>, StoreError> {
        let conn = self.store.reader()?;
        let tx = conn.unchecked_transaction()?;
        let dimensions: Option<i64> = tx
            .query_row("SELECT dimensions FROM users WHERE id = ?1", [self.user.0], |r| r.get(0))
            .optional()?
            .flatten();
        let dimensions = dimensions.map_or(0, |d| d.max(0) as usize);
        let mut stmt = tx.prepare(
            "SELECT document_id, ordinal, vector FROM chunks WHERE user_id = ?1
             ORDER BY document_id, ordinal",
        )?;
        let mut rows = stmt.query([self.user.0])?;
        let mut out: Vec<Loaded> = Vec::new();
        while let Some(row) = rows.next()? {
            let document: i64 = row.get(0)?;
            let ordinal: u32 = row.get(1)?;
            let blob = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            let v = blob_to_vector(blob).filter(|v| v.len() == dimensions).ok_or_else(|| {
                StoreError::Corrupt(format!("vector of chunk {ordinal} of document {document}"))
            })?;
            match out.last_mut() {
                Some((d, ordinals, vectors)) if *d == document => {
                    ordinals.push(ordinal);
                    vectors.extend_from_slice(&v);
                }
                _ => out.push((document, vec![ordinal], v)),
            }
        }
        Ok(out)
    }
}
