//! The embedded store: one SQLite file (WAL mode) in the data directory.
//!
//! It holds users, documents (name, content hash, kind, size, state, error, timings), chunks
//! (text, provenance, vector), each user's keyword index (FTS5, BM25; `keyword.rs`) and the
//! embedding cache keyed by (model, chunk-text hash). SQLite is the truth; vector search runs
//! on a live in-memory index per user (`indexes.rs`), loaded from SQLite on first use and then
//! kept current by the writes themselves (a document's vectors are swapped as one block, never
//! rebuilt on the search path): an exact scan, or beyond [`IndexSettings::ann_threshold`]
//! vectors an HNSW graph (`usearch`, int8) whose candidates are re-scored exactly.
//!
//! **Isolation is structural.** Everything a user owns is reached through [`UserStore`], which
//! [`Store::user`] hands out for one [`UserId`]; every query it runs carries `user_id = ?`.
//! There is no method that reads documents or chunks without a user.
//!
//! **The processing log** (`processing.rs`) keeps one row per processing attempt that ended,
//! written in the same transaction as the version stored or the failure recorded, whichever
//! process wrote it (the server, a remote worker through it, `ragmill ingest`): the dashboard's
//! rates and per-stage percentiles are read from it.
//!
//! ```no_run
//! # fn run() -> Result<(), ragmill_store::StoreError> {
//! let store = ragmill_store::Store::open("ragmill-data".as_ref())?;
//! let alice = store.ensure_user("alice")?;
//! let hits = store.user(alice).search(&[0.0; 384], 5, None)?;
//! # Ok(()) }
//! ```

mod ann;
mod cache;
mod codec;
mod conversations;
mod documents;
mod error;
mod failures;
mod indexes;
mod keys;
mod keyword;
mod listing;
mod live;
mod processing;
mod schema;
mod search;
mod vectors;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

pub use conversations::{ConversationSummary, NewMessage, SavedMessage, clean_title};
pub use documents::{
    Accepted, DocumentRecord, DocumentState, DocumentTotals, NewChunk, NewDocument, RagStatus,
    Timings,
};
pub use error::StoreError;
pub use indexes::{IndexSettings, IndexStats};
pub use keys::{Account, UserSummary};
pub use listing::{DocumentQuery, SortBy};
pub use processing::{
    Attempt, LogEntry, LogSeries, LogTotals, Outcome, Retention, STAGES, StageTime, StageTimes,
    percentile,
};
pub use ragmill_core::{DocumentId, UserId};
pub use search::{Nearest, Scores, SearchHit};
pub use vectors::{Garbage, VectorGarbage, VectorState};

/// The embedded store. Share it behind an `Arc`; all methods take `&self`.
pub struct Store {
    path: PathBuf,
    /// One connection behind a std mutex: SQLite serialises writers anyway, every statement here
    /// is short, and no lock is held across an `.await` (callers are synchronous).
    conn: Mutex<Connection>,
    /// Read-only connections for the search path (WAL: a reader never waits for a writer).
    readers: Mutex<Vec<Connection>>,
    /// Every user's live vector index.
    indexes: indexes::Indexes,
    /// How much of the processing log is kept (`processing.rs`).
    retention: Mutex<processing::Retention>,
}

/// A read-only connection from the store's pool, returned to it when dropped.
pub(crate) struct Reader<'a> {
    store: &'a Store,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Set in `Store::reader` and taken only in `drop`.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a reader's connection is taken only when dropped"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut pool)) = (self.conn.take(), self.store.readers.lock())
            && pool.len() < MAX_IDLE_READERS
        {
            pool.push(conn);
        }
    }
}

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, as `ragmill.db`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, IndexSettings::default())
    }

    /// [`Store::open`] with the vector index's settings.
    pub fn open_with(data_dir: &Path, settings: IndexSettings) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Io { path: data_dir.to_owned(), source: e })?;
        let path = data_dir.join("ragmill.db");
        let conn = Connection::open(&path)?;
        schema::prepare(&conn)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            indexes: indexes::Indexes::new(settings),
            retention: Mutex::new(processing::Retention::default()),
        })
    }

    /// Sets how many candidates the approximate (HNSW) index proposes for exact re-scoring,
    /// for every user, from now on: more is slower and finds more of the exact top k.
    pub fn set_ann_candidates(&self, n: usize) {
        self.indexes.set_candidates(n);
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The user called `name`, created if new.
    pub fn ensure_user(&self, name: &str) -> Result<UserId, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(StoreError::InvalidUserName(name.chars().take(40).collect()));
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<i64> = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            return Ok(UserId(id));
        }
        // Ids are never reused, even after the newest user is deleted: an external vector
        // index names a user's collection by it.
        let id: i64 = tx.query_row(
            "UPDATE meta SET value = max(value, coalesce((SELECT max(id) FROM users), 0)) + 1
             WHERE key = 'last_user_id' RETURNING value",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO users (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![id, name, codec::now_ms()],
        )?;
        tx.commit()?;
        Ok(UserId(id))
    }

    /// The user called `name`, if there is one.
    pub fn find_user(&self, name: &str) -> Result<Option<UserId>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row("SELECT id FROM users WHERE name = ?1", [name.trim()], |r| r.get(0))
            .optional()?
            .map(UserId))
    }

    /// Removes a user and everything they own (documents, chunks, vectors).
    pub fn delete_user(&self, user: UserId) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        keyword::drop_table(&tx, user)?;
        vectors::forget_user(&tx, user)?;
        let n = tx.execute("DELETE FROM users WHERE id = ?1", [user.0])?;
        tx.commit()?;
        self.indexes.drop_user(user);
        Ok(n > 0)
    }

    /// Every user's documents by state, and their chunks. For operational figures only: it
    /// returns counts, never a document.
    pub fn totals(&self) -> Result<DocumentTotals, StoreError> {
        DocumentTotals::read(&*self.conn()?, None)
    }

    /// Every document waiting for or in processing, across all users, as (owner, document,
    /// size, state), oldest first. For the reconciler that pairs each with a job: it returns
    /// ids, never content.
    pub fn in_flight(&self) -> Result<Vec<(UserId, DocumentId, u64, DocumentState)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT user_id, id, size, state FROM documents
             WHERE state IN ('queued', 'processing') ORDER BY updated_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            let state: String = r.get(3)?;
            Ok((
                UserId(r.get(0)?),
                DocumentId(r.get(1)?),
                u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                DocumentState::parse(&state),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many documents are in each state (`queued`, `processing`, `ready`, `failed`), across
    /// all users, sorted by state; states with no document are absent. For operational metrics
    /// only: it returns counts, never a document.
    pub fn document_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT state, COUNT(*) FROM documents GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut counts = Vec::new();
        for row in rows {
            let (state, n) = row?;
            counts.push((state, u64::try_from(n).unwrap_or(0)));
        }
        Ok(counts)
    }

    /// The handle through which everything `user` owns is read and written.
    pub fn user(&self, user: UserId) -> UserStore<'_> {
        UserStore { store: self, user, attempt: None }
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// A read-only connection for the search path: it reads the last committed state and
    /// never waits for the writer's transaction (or holds up another reader).
    pub(crate) fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                conn
            }
        };
        Ok(Reader { store: self, conn: Some(conn) })
    }
}

/// Everything one user owns. Every query this runs is scoped by its [`UserId`].
pub struct UserStore<'a> {
    store: &'a Store,
    user: UserId,
    /// What the processing attempt this handle writes for did, for the processing log
    /// ([`UserStore::with_attempt`]).
    attempt: Option<processing::Attempt>,
}

impl UserStore<'_> {
    /// Whose data this handle reaches.
    pub fn id(&self) -> UserId {
        self.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragmill_core::ContentHash;

    #[test]
    fn every_commit_is_synced_to_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let conn = store.conn().expect("conn");
        let synchronous: i64 =
            conn.pragma_query_value(None, "synchronous", |r| r.get(0)).expect("pragma");
        assert_eq!(synchronous, 2, "FULL: an acknowledged upload survives a power cut");
        let mode: String =
            conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn document_counts_are_by_state_across_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.document_counts().expect("counts"), vec![]);
        let (alice, bob) =
            (store.ensure_user("alice").expect("user"), store.ensure_user("bob").expect("user"));
        for (user, name) in [(alice, "a.txt"), (alice, "b.txt"), (bob, "a.txt")] {
            store
                .user(user)
                .accept_upload(name, ContentHash::of(name.as_bytes()), 1, None)
                .expect("accepted");
        }
        let accepted = store.user(bob).document_by_name("a.txt").expect("read").expect("doc");
        store.user(bob).set_state(accepted.id, DocumentState::Processing).expect("set");
        assert_eq!(
            store.document_counts().expect("counts"),
            vec![("processing".to_owned(), 1), ("queued".to_owned(), 2)]
        );
    }
}
