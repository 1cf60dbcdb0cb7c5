//! Recording failures: a version that could not be processed ([`UserStore::record_failure`])
//! and a document given up on ([`UserStore::mark_failed`]). An older searchable version always
//! stays ready and carries the error; the failure goes to the processing log in the same
//! transaction.

use rusqlite::{OptionalExtension, params};

use crate::codec::now_ms;
use crate::processing::{self, Ended, Outcome};
use crate::{DocumentId, NewDocument, StoreError, Timings, UserStore};

impl UserStore<'_> {
    /// Records that a version of `doc` failed. A document that was ready keeps its searchable
    /// version and carries the error; a new one is stored as failed. The same transaction adds
    /// the failure to the processing log.
    pub fn record_failure(
        &self,
        doc: &NewDocument<'_>,
        code: &str,
        message: &str,
    ) -> Result<DocumentId, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<(i64, i64)> = match doc.id {
            Some(id) => Some(
                tx.query_row(
                    "SELECT id, chunk_count FROM documents WHERE user_id = ?1 AND id = ?2",
                    params![self.user.0, id.0],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or(StoreError::DocumentGone(id))?,
            ),
            None => tx
                .query_row(
                    "SELECT id, chunk_count FROM documents WHERE user_id = ?1 AND name = ?2",
                    params![self.user.0, doc.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        let id = match existing {
            // An older version is still searchable: it stays, ready, carrying the error.
            Some((id, chunks)) if chunks > 0 => {
                tx.execute(
                    "UPDATE documents SET state = 'ready', error_code = ?1, error_message = ?2, updated_at = ?3 WHERE id = ?4 AND user_id = ?5",
                    params![code, message, now_ms(), id, self.user.0],
                )?;
                DocumentId(id)
            }
            _ => self.upsert_document(&tx, doc, "failed", Some((code, message)), None, 0)?,
        };
        crate::vectors::unstage(&tx, self.user, id.0)?;
        self.log_failure(&tx, id, code, &doc.timings)?;
        tx.commit()?;
        Ok(id)
    }

    /// Records that the user's document `id` failed for good with `code` and `message`
    /// (attempts exhausted, or its job was lost): an older searchable version stays ready and
    /// carries the error, otherwise the document is `failed`. False if there is no such document.
    /// The failure goes to the processing log in the same transaction, unless the log's newest
    /// row for the document already is a failure with `code` (the last attempt's own).
    pub fn mark_failed(
        &self,
        id: DocumentId,
        code: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE documents SET
                 state = CASE WHEN chunk_count > 0 THEN 'ready' ELSE 'failed' END,
                 error_code = ?1, error_message = ?2, updated_at = ?3
             WHERE id = ?4 AND user_id = ?5",
            params![code, message, now_ms(), id.0, self.user.0],
        )?;
        crate::vectors::unstage(&tx, self.user, id.0)?;
        // Logged unless the attempt that failed logged itself (a job parked after its last
        // attempt's failure was recorded): a crash or a lost job is logged here only.
        if n > 0 && !processing::last_failed_with(&tx, self.user, id, code)? {
            self.log_failure(&tx, id, code, &Timings::new())?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The processing log's row for a failure of document `id` with `code`, inside `tx`.
    fn log_failure(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: DocumentId,
        code: &str,
        timings: &Timings,
    ) -> Result<(), StoreError> {
        let outcome = Outcome::Failed(code.to_owned());
        let ended = Ended { document: id, outcome, chunks: 0, timings };
        processing::append(tx, self.user, &ended, self.attempt.as_ref(), self.store.log_retention())
    }
}
