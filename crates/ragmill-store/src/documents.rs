//! Documents and their chunks, always through a [`UserStore`].

use std::collections::BTreeMap;

use ragmill_core::{ContentHash, DocumentId, DocumentKind};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::codec::now_ms;
use crate::{StoreError, UserId, UserStore, keyword};

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    /// Accepted and waiting for a worker.
    Queued,
    /// A worker is on it.
    Processing,
    /// Its chunks are searchable.
    Ready,
    /// Its last version could not be processed; `error` says why.
    Failed,
    /// Held by its user before it was processed (an older searchable version stays
    /// searchable); resuming queues it again.
    Paused,
}

impl DocumentState {
    /// The stable lower-case name (`queued`, `processing`, `ready`, `failed`, `paused`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentState::Queued => "queued",
            DocumentState::Processing => "processing",
            DocumentState::Ready => "ready",
            DocumentState::Failed => "failed",
            DocumentState::Paused => "paused",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "queued" => DocumentState::Queued,
            "processing" => DocumentState::Processing,
            "ready" => DocumentState::Ready,
            "paused" => DocumentState::Paused,
            _ => DocumentState::Failed,
        }
    }
}

/// What [`UserStore::accept_upload`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new version to process (its document may still serve an older version to search).
    Queued(DocumentId),
    /// The same bytes are already ready, or already queued or processing: nothing more to do;
    /// the document's state as it stands.
    Unchanged(DocumentId, DocumentState),
}

/// A user's RAG availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RagStatus {
    /// True when at least one chunk is searchable.
    pub available: bool,
    /// Documents in the ready state.
    pub documents_ready: u64,
    /// Documents queued or processing.
    pub documents_processing: u64,
}

/// Documents by state and the chunks of ready ones: a user's, or the whole service's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DocumentTotals {
    /// Waiting for a worker.
    pub queued: u64,
    /// Being processed.
    pub processing: u64,
    /// Searchable.
    pub ready: u64,
    /// Failed (their error is recorded).
    pub failed: u64,
    /// Paused by their user.
    pub paused: u64,
    /// Chunks stored for the documents.
    pub chunks: u64,
}

impl DocumentTotals {
    /// Counts documents of `user`, or of every user when `None`.
    pub(crate) fn read(
        conn: &rusqlite::Connection,
        user: Option<UserId>,
    ) -> Result<Self, StoreError> {
        let n = |v: i64| v.max(0) as u64;
        let row: (i64, i64, i64, i64, i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(state = 'queued'), 0), COALESCE(SUM(state = 'processing'), 0),
                    COALESCE(SUM(state = 'ready'), 0), COALESCE(SUM(state = 'failed'), 0),
                    COALESCE(SUM(state = 'paused'), 0), COALESCE(SUM(chunk_count), 0)
             FROM documents WHERE ?1 IS NULL OR user_id = ?1",
            [user.map(|u| u.0)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        Ok(Self {
            queued: n(row.0),
            processing: n(row.1),
            ready: n(row.2),
            failed: n(row.3),
            paused: n(row.4),
            chunks: n(row.5),
        })
    }
}

/// Seconds spent in each stage of the last processing, by stage name.
pub type Timings = BTreeMap<String, f64>;

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentRecord {
    /// Its id.
    pub id: DocumentId,
    /// The name it was ingested under (unique per user).
    pub name: String,
    /// Hash of the bytes of the version last processed.
    pub content_hash: String,
    /// The detected format, if detection got that far.
    pub kind: Option<DocumentKind>,
    /// Size in bytes.
    pub size: u64,
    /// Ready or failed.
    pub state: DocumentState,
    /// Stable code and message of the last failure (a failed new version of a ready document
    /// keeps the old version searchable and records the failure here).
    pub error: Option<(String, String)>,
    /// Chunks stored.
    pub chunks: u64,
    /// Embedding model of its vectors.
    pub model: Option<String>,
    /// Seconds per stage.
    pub timings: Timings,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

/// Metadata of a document version about to be stored.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    /// The document row this version belongs to, when the caller created it beforehand (the
    /// server, at upload). Then only that row is updated, and if it has been deleted meanwhile
    /// the write fails with [`StoreError::DocumentGone`] instead of bringing it back.
    pub id: Option<DocumentId>,
    /// Name, unique per user: storing under an existing name replaces that document.
    pub name: &'a str,
    /// Hash of the bytes.
    pub content_hash: ContentHash,
    /// Detected format, if known.
    pub kind: Option<DocumentKind>,
    /// Size in bytes.
    pub size: u64,
    /// Seconds per stage.
    pub timings: Timings,
}

/// A chunk with its vector, ready to store.
#[derive(Debug, Clone)]
pub struct NewChunk<'a> {
    /// The chunk.
    pub chunk: &'a ragmill_core::Chunk,
    /// Hash of its text (the embedding cache key).
    pub hash: ContentHash,
    /// Its unit-length vector.
    pub vector: &'a [f32],
}

pub(crate) const DOC_COLUMNS: &str = "id, name, content_hash, kind, size, state, error_code, error_message, \
                           chunk_count, model, timings, created_at, updated_at";

pub(crate) fn document_from_row(row: &Row<'_>) -> rusqlite::Result<DocumentRecord> {
    let kind: Option<String> = row.get(3)?;
    let state: String = row.get(5)?;
    let code: Option<String> = row.get(6)?;
    let message: Option<String> = row.get(7)?;
    let timings: Option<String> = row.get(10)?;
    Ok(DocumentRecord {
        id: DocumentId(row.get(0)?),
        name: row.get(1)?,
        content_hash: row.get(2)?,
        kind: kind.as_deref().and_then(DocumentKind::parse),
        size: row.get::<_, i64>(4)?.max(0) as u64,
        state: DocumentState::parse(&state),
        error: code.zip(message),
        chunks: row.get::<_, i64>(8)?.max(0) as u64,
        model: row.get(9)?,
        timings: timings.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

impl UserStore<'_> {
    /// The user's document called `name`.
    pub fn document_by_name(&self, name: &str) -> Result<Option<DocumentRecord>, StoreError> {
        let conn = self.store.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {DOC_COLUMNS} FROM documents WHERE user_id = ?1 AND name = ?2"),
                params![self.user.0, name],
                document_from_row,
            )
            .optional()?)
    }

    /// The user's document `id`; `None` also when it belongs to someone else.
    pub fn document(&self, id: DocumentId) -> Result<Option<DocumentRecord>, StoreError> {
        let conn = self.store.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {DOC_COLUMNS} FROM documents WHERE user_id = ?1 AND id = ?2"),
                params![self.user.0, id.0],
                document_from_row,
            )
            .optional()?)
    }

    /// The user's documents, newest first.
    pub fn documents(&self) -> Result<Vec<DocumentRecord>, StoreError> {
        let conn = self.store.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE user_id = ?1 ORDER BY updated_at DESC, id DESC"
        ))?;
        let rows = stmt.query_map([self.user.0], document_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records an uploaded version of document `name` (bytes already kept under `hash`): a new
    /// document is created queued; an existing one is marked queued with the new hash, keeping
    /// its chunks searchable until the new version replaces them. The same bytes of a document
    /// that is ready without error are [`Accepted::Unchanged`].
    pub fn accept_upload(
        &self,
        name: &str,
        hash: ContentHash,
        size: u64,
        kind: Option<DocumentKind>,
    ) -> Result<Accepted, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<(i64, String, String, Option<String>)> = tx
            .query_row(
                "SELECT id, content_hash, state, error_code FROM documents WHERE user_id = ?1 AND name = ?2",
                params![self.user.0, name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        if let Some((id, old_hash, state, None)) = &existing
            && *old_hash == hash.to_hex()
            && (state == "ready" || state == "queued" || state == "processing")
        {
            return Ok(Accepted::Unchanged(DocumentId(*id), DocumentState::parse(state)));
        }
        let now = now_ms();
        let id = tx.query_row(
            "INSERT INTO documents (user_id, name, content_hash, kind, size, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)
             ON CONFLICT (user_id, name) DO UPDATE SET
                content_hash = excluded.content_hash, kind = excluded.kind, size = excluded.size,
                state = 'queued', error_code = NULL, error_message = NULL, updated_at = excluded.updated_at
             RETURNING id",
            params![self.user.0, name, hash.to_hex(), kind.map(|k| k.as_str()), size as i64, now],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(Accepted::Queued(DocumentId(id)))
    }

    /// Sets the state of the user's document `id` (queued or processing); false if there is none.
    pub fn set_state(&self, id: DocumentId, state: DocumentState) -> Result<bool, StoreError> {
        let n = self.store.conn()?.execute(
            "UPDATE documents SET state = ?1, updated_at = ?2 WHERE id = ?3 AND user_id = ?4",
            params![state.as_str(), now_ms(), id.0, self.user.0],
        )?;
        Ok(n > 0)
    }

    /// Whether the user can search yet, and how many documents are ready or on their way.
    pub fn rag_status(&self) -> Result<RagStatus, StoreError> {
        let conn = self.store.conn()?;
        let (ready, processing, searchable): (i64, i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(state = 'ready'), 0), COALESCE(SUM(state IN ('queued', 'processing')), 0),
                    COALESCE(SUM(chunk_count > 0), 0)
             FROM documents WHERE user_id = ?1",
            [self.user.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(RagStatus {
            available: searchable > 0,
            documents_ready: ready.max(0) as u64,
            documents_processing: processing.max(0) as u64,
        })
    }

    /// The user's documents by state, and their chunks.
    pub fn totals(&self) -> Result<DocumentTotals, StoreError> {
        DocumentTotals::read(&*self.store.conn()?, Some(self.user))
    }

    /// Deletes the user's document `id` and its chunks; false if the user has no such document.
    pub fn delete_document(&self, id: DocumentId) -> Result<bool, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        keyword::forget_document(&tx, self.user, id.0)?;
        crate::vectors::forget_document(&tx, self.user, id)?;
        let n = tx.execute(
            "DELETE FROM documents WHERE id = ?1 AND user_id = ?2",
            params![id.0, self.user.0],
        )?;
        tx.commit()?;
        if n > 0 {
            let slot = self.store.indexes.slot(self.user)?;
            let _writer = slot.writer()?;
            drop(conn);
            slot.apply(id.0, None);
        }
        Ok(n > 0)
    }

    /// The embedding model and dimension the user's collection was built with, if any.
    pub fn collection_model(&self) -> Result<Option<(String, usize)>, StoreError> {
        let conn = self.store.reader()?;
        let row: (Option<String>, Option<i64>) = conn.query_row(
            "SELECT model, dimensions FROM users WHERE id = ?1",
            [self.user.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(row.0.zip(row.1.map(|d| d.max(0) as usize)))
    }

    /// Checks that vectors of `model` may go into (or be searched against) this collection.
    pub fn check_model(&self, model: &str, dimensions: usize) -> Result<(), StoreError> {
        match self.collection_model()? {
            Some((have, dim)) if have != model || dim != dimensions => {
                Err(StoreError::ModelMismatch {
                    collection: have,
                    collection_dim: dim,
                    requested: model.to_owned(),
                    requested_dim: dimensions,
                })
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn claim_model(
        &self,
        tx: &Transaction<'_>,
        model: &str,
        dimensions: usize,
    ) -> Result<(), StoreError> {
        let (have, dim): (Option<String>, Option<i64>) = tx.query_row(
            "SELECT model, dimensions FROM users WHERE id = ?1",
            [self.user.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // A collection whose chunks are all gone may switch models.
        let empty: bool = tx.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM chunks WHERE user_id = ?1)",
            [self.user.0],
            |r| r.get(0),
        )?;
        match (have, dim) {
            (Some(have), Some(dim)) if !empty && (have != model || dim as usize != dimensions) => {
                Err(StoreError::ModelMismatch {
                    collection: have,
                    collection_dim: dim.max(0) as usize,
                    requested: model.to_owned(),
                    requested_dim: dimensions,
                })
            }
            _ => {
                tx.execute(
                    "UPDATE users SET model = ?1, dimensions = ?2 WHERE id = ?3",
                    params![model, dimensions as i64, self.user.0],
                )?;
                Ok(())
            }
        }
    }

    pub(crate) fn upsert_document(
        &self,
        tx: &Transaction<'_>,
        doc: &NewDocument<'_>,
        state: &str,
        error: Option<(&str, &str)>,
        model: Option<&str>,
        chunk_count: usize,
    ) -> Result<DocumentId, StoreError> {
        let timings = serde_json::to_string(&doc.timings).unwrap_or_else(|_| "{}".into());
        // One parameter list for both statements; only ?2, the key, differs: the row the
        // caller created (by id), or the user's document of that name (created if new).
        let (sql, key) = match doc.id {
            Some(id) => (
                "UPDATE documents SET content_hash = ?3, kind = ?4, size = ?5, state = ?6, error_code = ?7,
                    error_message = ?8, chunk_count = ?9, model = ?10, timings = ?11, updated_at = ?12
                 WHERE user_id = ?1 AND id = ?2 RETURNING id",
                Value::Integer(id.0),
            ),
            None => (
                "INSERT INTO documents (user_id, name, content_hash, kind, size, state, error_code, error_message,
                                        chunk_count, model, timings, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
                 ON CONFLICT (user_id, name) DO UPDATE SET
                    content_hash = excluded.content_hash, kind = excluded.kind, size = excluded.size,
                    state = excluded.state, error_code = excluded.error_code, error_message = excluded.error_message,
                    chunk_count = excluded.chunk_count, model = excluded.model, timings = excluded.timings,
                    updated_at = excluded.updated_at
                 RETURNING id",
                Value::Text(doc.name.to_owned()),
            ),
        };
        let id: Option<i64> = tx
            .query_row(
                sql,
                params![
                    self.user.0,
                    key,
                    doc.content_hash.to_hex(),
                    doc.kind.map(|k| k.as_str()),
                    doc.size as i64,
                    state,
                    error.map(|e| e.0),
                    error.map(|e| e.1),
                    chunk_count as i64,
                    model,
                    timings,
                    now_ms(),
                ],
                |r| r.get(0),
            )
            .optional()?;
        match (id, doc.id) {
            (Some(id), _) => Ok(DocumentId(id)),
            (None, Some(gone)) => Err(StoreError::DocumentGone(gone)),
            (None, None) => Err(StoreError::Corrupt("INSERT ... RETURNING returned no row".into())),
        }
    }
}

impl DocumentState {
    /// The stable lower-case name.
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}
