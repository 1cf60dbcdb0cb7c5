//! Storing a processed document version: its row, chunks, vectors, keyword rows and its row
//! of the processing log in one transaction, then its block of vectors in the live index, in
//! commit order.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::codec::vector_to_blob;
use crate::processing::{self, Ended, Outcome};
use crate::{DocumentId, NewChunk, NewDocument, StoreError, UserStore, keyword, vectors};

impl UserStore<'_> {
    /// Stores a processed version of a document, replacing any earlier version of the same name,
    /// in one transaction: searches see the old version or the new one, never a mix. The same
    /// transaction adds its row to the processing log (with the handle's
    /// [`crate::Attempt`], and the time this write took as its `storing` stage unless the
    /// timings have one).
    ///
    /// `model` and `dimensions` name the embedding model of the vectors; the user's collection
    /// takes the first model it is given and refuses any other.
    pub fn replace_document(
        &self,
        doc: &NewDocument<'_>,
        chunks: &[NewChunk<'_>],
        model: &str,
        dimensions: usize,
    ) -> Result<DocumentId, StoreError> {
        let ids = self.write_versions(&[(doc.clone(), chunks)], model, dimensions, None)?;
        ids.into_iter().next().ok_or_else(|| StoreError::Corrupt("no document stored".into()))
    }

    /// [`UserStore::replace_document`] for a document whose vectors were written to an external
    /// index under `generation` (staged by [`UserStore::stage_vectors`]): the same transaction
    /// makes that generation current and lists the one it replaces as garbage. Fails with
    /// [`StoreError::VectorsSuperseded`] if the generation is no longer the staged one.
    pub fn replace_document_at(
        &self,
        doc: &NewDocument<'_>,
        chunks: &[NewChunk<'_>],
        model: &str,
        dimensions: usize,
        generation: u64,
    ) -> Result<DocumentId, StoreError> {
        let ids =
            self.write_versions(&[(doc.clone(), chunks)], model, dimensions, Some(generation))?;
        ids.into_iter().next().ok_or_else(|| StoreError::Corrupt("no document stored".into()))
    }

    /// [`UserStore::replace_document`] for many documents in one transaction (one commit, one
    /// sync: for bulk loads); all of them are stored or none.
    pub fn replace_documents(
        &self,
        docs: &[(NewDocument<'_>, &[NewChunk<'_>])],
        model: &str,
        dimensions: usize,
    ) -> Result<Vec<DocumentId>, StoreError> {
        self.write_versions(docs, model, dimensions, None)
    }

    fn write_versions(
        &self,
        docs: &[(NewDocument<'_>, &[NewChunk<'_>])],
        model: &str,
        dimensions: usize,
        generation: Option<u64>,
    ) -> Result<Vec<DocumentId>, StoreError> {
        if let Some(bad) =
            docs.iter().flat_map(|(_, c)| c.iter()).find(|c| c.vector.len() != dimensions)
        {
            return Err(StoreError::Dimension { got: bad.vector.len(), want: dimensions });
        }
        let started = std::time::Instant::now();
        let keep = self.store.log_retention();
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        self.claim_model(&tx, model, dimensions)?;
        keyword::ensure_table(&tx, self.user)?;
        let mut ids = Vec::with_capacity(docs.len());
        for (doc, chunks) in docs {
            // A worker's version (it names its document) counts only while the document waits
            // for it: one paused or cancelled meanwhile is not made ready behind the user's
            // back. With an external index the staged generation does the same (its switch
            // fails once the staging is dropped).
            if let (None, Some(id)) = (generation, doc.id) {
                self.still_waiting(&tx, id)?;
            }
            let id = self.write_chunks(&tx, doc, chunks, model)?;
            vectors::switch(&tx, self.user, id, generation)?;
            let mut timings = doc.timings.clone();
            timings.entry("storing".into()).or_insert_with(|| started.elapsed().as_secs_f64());
            let ended = Ended {
                document: id,
                outcome: Outcome::Ready,
                chunks: chunks.len() as u64,
                timings: &timings,
            };
            processing::append(&tx, self.user, &ended, self.attempt.as_ref(), keep)?;
            ids.push(id);
        }
        tx.commit()?;
        // The live index takes the new blocks in commit order: the user's writer lock is taken
        // before the connection is released.
        let slot = self.store.indexes.slot(self.user)?;
        let _writer = slot.writer()?;
        drop(conn);
        if slot.wanted() {
            for (id, (_, chunks)) in ids.iter().zip(docs) {
                let ordinals = chunks.iter().map(|c| c.chunk.ordinal).collect();
                let vectors = chunks.iter().flat_map(|c| c.vector.iter().copied()).collect();
                slot.apply(id.0, Some(slot.block(id.0, ordinals, vectors)));
            }
        }
        Ok(ids)
    }

    /// [`StoreError::DocumentGone`] unless document `id` is waiting for or in processing.
    fn still_waiting(&self, tx: &Transaction<'_>, id: DocumentId) -> Result<(), StoreError> {
        match self.state_of(tx, id)?.as_deref() {
            Some("queued" | "processing") => Ok(()),
            _ => Err(StoreError::DocumentGone(id)),
        }
    }

    /// Writes one document version's row, chunks and keyword rows inside `tx`.
    fn write_chunks(
        &self,
        tx: &Transaction<'_>,
        doc: &NewDocument<'_>,
        chunks: &[NewChunk<'_>],
        model: &str,
    ) -> Result<DocumentId, StoreError> {
        let id = self.upsert_document(tx, doc, "ready", None, Some(model), chunks.len())?;
        keyword::forget_document(tx, self.user, id.0)?;
        // `+user_id`: seek the (document_id, ordinal) index, never the per-user one, whose range
        // is the user's whole collection (SQLite has no statistics to tell them apart).
        tx.execute(
            "DELETE FROM chunks WHERE document_id = ?1 AND +user_id = ?2",
            params![id.0, self.user.0],
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO chunks (user_id, document_id, ordinal, text, start_byte, end_byte, tokens, page, heading_path, hash, vector)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for c in chunks {
            let row = insert.insert(params![
                self.user.0,
                id.0,
                c.chunk.ordinal,
                c.chunk.text,
                c.chunk.start as i64,
                c.chunk.end as i64,
                c.chunk.tokens as i64,
                c.chunk.page,
                serde_json::to_string(&c.chunk.heading_path).unwrap_or_else(|_| "[]".into()),
                c.hash.as_bytes().as_slice(),
                vector_to_blob(c.vector),
            ])?;
            keyword::add_chunk(tx, self.user, row, &c.chunk.text)?;
        }
        Ok(id)
    }
}

impl UserStore<'_> {
    /// Cancels the version of document `id` waiting for, in processing or paused: it ends failed with
    /// code `cancelled` (an older searchable version stays ready and carries the error), and a
    /// generation staged for it in an external index becomes garbage. `false` if the user has
    /// no such document waiting, in processing or paused (already ready, failed, or gone).
    pub fn cancel_document(&self, id: DocumentId) -> Result<bool, StoreError> {
        self.stop_version(
            id,
            "state = CASE WHEN chunk_count > 0 THEN 'ready' ELSE 'failed' END,
             error_code = 'cancelled', error_message = 'cancelled by the user'",
            "('queued', 'processing', 'paused')",
        )
    }

    /// Pauses the version of document `id` waiting for or in processing: it becomes `paused`
    /// (an older searchable version stays searchable), and a generation staged for it in an
    /// external index becomes garbage, as for a cancel: what a worker had done of it is dropped,
    /// and resuming starts the document over (vectors it had embedded stay in the embedding
    /// cache). `false` if the user has no such document waiting or in processing.
    pub fn pause_document(&self, id: DocumentId) -> Result<bool, StoreError> {
        self.stop_version(id, "state = 'paused'", "('queued', 'processing')")
    }

    /// Stops document `id`'s version in one of `states` (an SQL list of constants) with `set`
    /// (SQL assignments of constants), and makes a generation staged for it garbage, in one
    /// transaction. `false` if the user has no such document in those states.
    fn stop_version(&self, id: DocumentId, set: &str, states: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            &format!(
                "UPDATE documents SET {set}, updated_at = ?1
                 WHERE id = ?2 AND user_id = ?3 AND state IN {states}"
            ),
            params![crate::codec::now_ms(), id.0, self.user.0],
        )?;
        if n > 0 {
            vectors::unstage(&tx, self.user, id.0)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Resumes paused document `id`: it is `queued` again. `false` if the user has no such
    /// paused document.
    pub fn resume_document(&self, id: DocumentId) -> Result<bool, StoreError> {
        let n = self.store.conn()?.execute(
            "UPDATE documents SET state = 'queued', updated_at = ?1
             WHERE id = ?2 AND user_id = ?3 AND state = 'paused'",
            params![crate::codec::now_ms(), id.0, self.user.0],
        )?;
        Ok(n > 0)
    }

    /// Whether document `id` is being processed now (its state is `processing`): a worker
    /// whose document was cancelled, deleted or uploaded again meanwhile stops.
    pub fn is_processing(&self, id: DocumentId) -> Result<bool, StoreError> {
        Ok(self.state_of(&*self.store.reader()?, id)?.as_deref() == Some("processing"))
    }

    /// Document `id`'s state as stored, if it is one of the user's.
    fn state_of(&self, conn: &Connection, id: DocumentId) -> Result<Option<String>, StoreError> {
        let sql = "SELECT state FROM documents WHERE id = ?1 AND user_id = ?2";
        let state = conn.query_row(sql, params![id.0, self.user.0], |r| r.get(0));
        Ok(state.optional()?)
    }
}
