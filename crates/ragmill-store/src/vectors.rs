//! The store's side of an external vector index (ChromaDB): which generation of each
//! document's vectors is current, which is being written, and what the index still holds that
//! must go (`vector_garbage`). The store is the truth; the index is told afterwards, and a row of
//! garbage is only deleted once the index has forgotten it, so nothing leaks if the index is
//! down when a document is replaced or deleted.
//!
//! The protocol, for one version of a document (run by `ragmill_pipeline::Vectors`):
//! 1. [`UserStore::stage_vectors`] allocates a generation (the same one again for the same
//!    version, so a retried job overwrites instead of duplicating) and records it;
//! 2. the vectors are written to the index under it (invisible: no document names it yet);
//! 3. [`UserStore::replace_document_at`] stores the version and switches `vector_gen` to it in
//!    one transaction, listing the old generation as garbage;
//! 4. the old generation is retired from the index and its garbage row cleared
//!    ([`Store::clear_vector_garbage`]); if that fails, a sweeper does it later.

use std::collections::HashMap;

use ragmill_core::{ContentHash, IndexedChunk};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::codec::blob_to_vector;
use crate::{DocumentId, Store, StoreError, UserId, UserStore};

/// The staging tag of a copy of the stored version (never a content hash, which is hex).
const STORED: &str = "stored";

/// Something the external index holds and must forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorGarbage {
    /// The row, to clear once forgotten.
    pub id: i64,
    /// Whose.
    pub user: UserId,
    /// The document; `None`: the user's whole collection.
    pub document: Option<DocumentId>,
    /// What to forget of the document.
    pub what: Garbage,
}

/// What of a document an external index must forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// The user's whole collection (the row names no document).
    Collection,
    /// One generation.
    Generation(u64),
    /// Every generation up to this one (the document was deleted).
    Through(u64),
}

/// One document's vector bookkeeping, for reconciling the index with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorState {
    /// The document.
    pub document: DocumentId,
    /// The generation its current version's vectors are under in the index (`None`: not
    /// there).
    pub current: Option<u64>,
    /// A generation being written for a version not yet stored.
    pub staged: Option<u64>,
    /// Chunks of the current version (0: nothing searchable).
    pub chunks: u32,
}

fn to_gen(v: Option<i64>) -> Option<u64> {
    v.and_then(|g| u64::try_from(g).ok())
}

/// A new generation, never handed out before.
fn next_generation(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let g: i64 = tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'last_generation' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(g).unwrap_or(0))
}

fn add_garbage(
    tx: &Transaction<'_>,
    user: UserId,
    document: Option<i64>,
    generation: Option<u64>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO vector_garbage (user_id, document_id, generation) VALUES (?1, ?2, ?3)",
        params![user.0, document, generation.map(|g| g as i64)],
    )?;
    Ok(())
}

/// Every generation of `document` handed out so far is garbage.
fn add_garbage_through(
    tx: &Transaction<'_>,
    user: UserId,
    document: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO vector_garbage (user_id, document_id, through)
         VALUES (?1, ?2, (SELECT value FROM meta WHERE key = 'last_generation'))",
        params![user.0, document],
    )?;
    Ok(())
}

/// Inside the deletion of `user`: their whole collection becomes garbage if the index ever
/// got anything of theirs (finer rows of theirs are superseded).
pub(crate) fn forget_user(tx: &Transaction<'_>, user: UserId) -> Result<(), StoreError> {
    let indexed: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM documents WHERE user_id = ?1
                          AND (vector_gen IS NOT NULL OR staged_gen IS NOT NULL))
             OR EXISTS (SELECT 1 FROM vector_garbage WHERE user_id = ?1)",
        [user.0],
        |r| r.get(0),
    )?;
    if indexed {
        tx.execute("DELETE FROM vector_garbage WHERE user_id = ?1", [user.0])?;
        add_garbage(tx, user, None, None)?;
    }
    Ok(())
}

/// Inside the deletion of `user`'s document `id`: every generation of it becomes garbage if
/// the index ever got one.
pub(crate) fn forget_document(
    tx: &Transaction<'_>,
    user: UserId,
    id: DocumentId,
) -> Result<(), StoreError> {
    let indexed: Option<bool> = tx
        .query_row(
            "SELECT vector_gen IS NOT NULL OR staged_gen IS NOT NULL FROM documents
             WHERE id = ?1 AND user_id = ?2",
            params![id.0, user.0],
            |r| r.get(0),
        )
        .optional()?;
    if indexed == Some(true) {
        add_garbage_through(tx, user, id.0)?;
    }
    Ok(())
}

/// Inside a write of `user`'s document `id`: its current generation becomes `generation`
/// (`None`: the new version is not in the index), an older one garbage, and a staged one
/// either adopted or garbage. Answers the garbage rows' ids.
pub(crate) fn switch(
    tx: &Transaction<'_>,
    user: UserId,
    id: DocumentId,
    generation: Option<u64>,
) -> Result<(), StoreError> {
    let (current, staged): (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT vector_gen, staged_gen FROM documents WHERE id = ?1 AND user_id = ?2",
        params![id.0, user.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some(g) = generation
        && to_gen(staged) != Some(g)
    {
        return Err(StoreError::VectorsSuperseded(id));
    }
    for old in [to_gen(current), to_gen(staged)].into_iter().flatten() {
        if Some(old) != generation {
            add_garbage(tx, user, Some(id.0), Some(old))?;
        }
    }
    tx.execute(
        "UPDATE documents SET vector_gen = ?1, staged_gen = NULL, staged_hash = NULL
         WHERE id = ?2 AND user_id = ?3",
        params![generation.map(|g| g as i64), id.0, user.0],
    )?;
    Ok(())
}

/// Inside the recording of a failure of `user`'s document `id`: a generation staged for the
/// failed version becomes garbage.
pub(crate) fn unstage(tx: &Transaction<'_>, user: UserId, id: i64) -> Result<(), StoreError> {
    let staged: Option<Option<i64>> = tx
        .query_row(
            "SELECT staged_gen FROM documents WHERE id = ?1 AND user_id = ?2",
            params![id, user.0],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(g) = to_gen(staged.flatten()) {
        add_garbage(tx, user, Some(id), Some(g))?;
        tx.execute(
            "UPDATE documents SET staged_gen = NULL, staged_hash = NULL WHERE id = ?1",
            [id],
        )?;
    }
    Ok(())
}

impl UserStore<'_> {
    /// The generation to write the version `content_hash` of document `id` under: the one
    /// staged for that version already, else a new one (an older staged one becomes garbage).
    pub fn stage_vectors(
        &self,
        id: DocumentId,
        content_hash: ContentHash,
    ) -> Result<u64, StoreError> {
        self.stage(id, &content_hash.to_hex(), true)?.ok_or(StoreError::DocumentGone(id))
    }

    /// A generation to copy the stored version's vectors of document `id` to the index under
    /// (written while another backend served); `None` if a version is being staged for it
    /// (its job will write it) or it is gone.
    pub fn stage_stored_vectors(&self, id: DocumentId) -> Result<Option<u64>, StoreError> {
        match self.stage(id, STORED, false) {
            Err(StoreError::DocumentGone(_)) => Ok(None),
            other => other,
        }
    }

    fn stage(&self, id: DocumentId, tag: &str, steal: bool) -> Result<Option<u64>, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (staged, staged_tag): (Option<i64>, Option<String>) = tx
            .query_row(
                "SELECT staged_gen, staged_hash FROM documents WHERE id = ?1 AND user_id = ?2",
                params![id.0, self.user.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::DocumentGone(id))?;
        if let (Some(g), Some(t)) = (to_gen(staged), staged_tag.as_deref()) {
            if t == tag {
                return Ok(Some(g));
            }
            if !steal {
                return Ok(None);
            }
            add_garbage(&tx, self.user, Some(id.0), Some(g))?;
        }
        let g = next_generation(&tx)?;
        tx.execute(
            "UPDATE documents SET staged_gen = ?1, staged_hash = ?2 WHERE id = ?3",
            params![g as i64, tag, id.0],
        )?;
        tx.commit()?;
        Ok(Some(g))
    }

    /// Of `documents`, those whose current vectors are in the external index, with the
    /// generation they are under. On the read-only pool: for filtering a search's hits.
    pub fn vector_generations(
        &self,
        documents: &[DocumentId],
    ) -> Result<HashMap<DocumentId, u64>, StoreError> {
        let conn = self.store.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT vector_gen FROM documents WHERE id = ?1 AND user_id = ?2")?;
        let mut out = HashMap::new();
        for &d in documents {
            let g: Option<Option<i64>> =
                stmt.query_row(params![d.0, self.user.0], |r| r.get(0)).optional()?;
            if let Some(g) = to_gen(g.flatten()) {
                out.insert(d, g);
            }
        }
        Ok(out)
    }

    /// Every document's vector bookkeeping, by id.
    pub fn vector_states(&self) -> Result<Vec<VectorState>, StoreError> {
        let conn = self.store.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, vector_gen, staged_gen, chunk_count FROM documents WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([self.user.0], |r| {
            Ok(VectorState {
                document: DocumentId(r.get(0)?),
                current: to_gen(r.get(1)?),
                staged: to_gen(r.get(2)?),
                chunks: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The vectors of document `id`'s searchable version, if it has chunks.
    pub fn stored_vectors(&self, id: DocumentId) -> Result<Option<Vec<IndexedChunk>>, StoreError> {
        let conn = self.store.reader()?;
        let tx = conn.unchecked_transaction()?; // one snapshot for the row and its chunks
        let found: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE id = ?1 AND user_id = ?2 AND chunk_count > 0)",
            params![id.0, self.user.0],
            |r| r.get(0),
        )?;
        if !found {
            return Ok(None);
        }
        let mut stmt = tx.prepare(
            "SELECT ordinal, vector FROM chunks WHERE document_id = ?1 AND +user_id = ?2 ORDER BY ordinal",
        )?;
        let rows = stmt.query_map(params![id.0, self.user.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut chunks = Vec::new();
        for row in rows {
            let (ordinal, blob) = row?;
            let vector = blob_to_vector(&blob).ok_or_else(|| {
                StoreError::Corrupt(format!("chunk {ordinal} of document {}", id.0))
            })?;
            chunks.push(IndexedChunk { chunk: u32::try_from(ordinal).unwrap_or(0), vector });
        }
        Ok(Some(chunks))
    }

    /// Makes `generation` (staged by [`UserStore::stage_stored_vectors`] and written to the
    /// index) current for document `id`, if it is still the staged one: no version was stored
    /// or staged meanwhile. False otherwise (then the written vectors are garbage).
    pub fn adopt_vectors(&self, id: DocumentId, generation: u64) -> Result<bool, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let still: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE id = ?1 AND user_id = ?2
                 AND staged_gen = ?3 AND staged_hash = ?4)",
            params![id.0, self.user.0, generation as i64, STORED],
            |r| r.get(0),
        )?;
        if still {
            switch(&tx, self.user, id, Some(generation))?;
        } else {
            add_garbage(&tx, self.user, Some(id.0), Some(generation))?;
        }
        tx.commit()?;
        Ok(still)
    }
}

impl Store {
    /// What the external index must forget, oldest first, at most `limit` rows.
    pub fn vector_garbage(&self, limit: usize) -> Result<Vec<VectorGarbage>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, user_id, document_id, generation, through FROM vector_garbage ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            let document = r.get::<_, Option<i64>>(2)?.map(DocumentId);
            let what = match (document, to_gen(r.get(3)?), to_gen(r.get(4)?)) {
                (None, _, _) => Garbage::Collection,
                (Some(_), Some(g), _) => Garbage::Generation(g),
                (Some(_), None, through) => Garbage::Through(through.unwrap_or(0)),
            };
            Ok(VectorGarbage { id: r.get(0)?, user: UserId(r.get(1)?), document, what })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The index forgot these rows' vectors.
    pub fn clear_vector_garbage(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM vector_garbage WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Documents with searchable chunks, not in flight, whose vectors are not in the external index, as (owner,
    /// document), at most `limit`: written while another backend served, or by a write whose
    /// index step failed.
    pub fn unindexed(&self, limit: usize) -> Result<Vec<(UserId, DocumentId)>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT user_id, id FROM documents
             WHERE chunk_count > 0 AND vector_gen IS NULL AND state NOT IN ('queued', 'processing')
             ORDER BY id LIMIT ?1",
        )?;
        let rows =
            stmt.query_map([limit as i64], |r| Ok((UserId(r.get(0)?), DocumentId(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every user id, for sweeping all collections.
    pub fn user_ids(&self) -> Result<Vec<UserId>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare("SELECT id FROM users ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok(UserId(r.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Checks that every searchable document has all its chunks, each with a vector of its
    /// collection's dimension; answers (documents, chunks). What moving to the embedded index
    /// relies on.
    pub fn check_vectors(&self) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(u64::try_from(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?).unwrap_or(0))
        };
        let bad = count(
            "SELECT count(*) FROM chunks c JOIN users u ON u.id = c.user_id
             WHERE length(c.vector) != 4 * coalesce(u.dimensions, 0)",
        )?;
        let short = count(
            "SELECT count(*) FROM documents d
             WHERE d.chunk_count != (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)",
        )?;
        if bad + short > 0 {
            return Err(StoreError::Corrupt(format!(
                "{bad} chunks lack a usable vector and {short} documents lack chunks"
            )));
        }
        Ok((
            count("SELECT count(*) FROM documents WHERE chunk_count > 0")?,
            count("SELECT count(*) FROM chunks")?,
        ))
    }

    /// Forgets that anything is in an external index (moving back to the embedded one, whose
    /// vectors are the store's own): no document names a generation, nothing is garbage.
    pub fn forget_external_vectors(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "UPDATE documents SET vector_gen = NULL, staged_gen = NULL, staged_hash = NULL
                 WHERE vector_gen IS NOT NULL OR staged_gen IS NOT NULL;
             DELETE FROM vector_garbage;",
        )?;
        tx.commit()?;
        Ok(())
    }
}
