//! The SQLite schema and connection settings.

use rusqlite::Connection;

const SCHEMA_VERSION: i64 = 9;

const SCHEMA: &str = "
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    model       TEXT,              -- embedding model the collection was built with
    dimensions  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE TABLE documents (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    kind          TEXT,
    size          INTEGER NOT NULL,
    state         TEXT NOT NULL,
    error_code    TEXT,
    error_message TEXT,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    model         TEXT,
    timings       TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE chunks (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    document_id   INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    start_byte    INTEGER NOT NULL,
    end_byte      INTEGER NOT NULL,
    tokens        INTEGER NOT NULL,
    page          INTEGER,
    heading_path  TEXT NOT NULL,
    hash          BLOB NOT NULL,
    vector        BLOB NOT NULL,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_by_user ON chunks(user_id);
CREATE TABLE embedding_cache (
    model   TEXT NOT NULL,
    hash    BLOB NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
";

/// Version 2: API keys, stored only as a hash; `prefix` is a public lookup handle.
const API_KEYS: &str = "
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL UNIQUE,
    hash        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys(user_id);
";

/// Version 3: administrators, who see the whole service's figures (`GET /v1/stats`).
const ADMINS: &str = "ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;";

/// Version 5: the bookkeeping of an external vector index (ChromaDB). A document's
/// `vector_gen` is the generation its current version's vectors were written under there (NULL:
/// not there); `staged_gen`/`staged_hash` name a generation being written for a version not yet
/// stored, so a retried job writes the same ids. `vector_garbage` lists what the external index
/// still holds and must forget: one generation of a document, every generation of it up to
/// `through` (a deleted document: a later one given its id is spared), or a user's whole
/// collection (NULL document); rows are written in the
/// transaction that makes the vectors stale and deleted once the index forgot them. `meta`
/// keeps counters that must never go back: generations, and user ids (a collection is named by
/// its owner's id, so an id is never given to a second user).
const VECTOR_BOOKKEEPING: &str = "
ALTER TABLE documents ADD COLUMN vector_gen INTEGER;
ALTER TABLE documents ADD COLUMN staged_gen INTEGER;
ALTER TABLE documents ADD COLUMN staged_hash TEXT;
CREATE TABLE vector_garbage (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    document_id INTEGER,
    generation  INTEGER,
    through     INTEGER
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES
    ('last_user_id', coalesce((SELECT max(id) FROM users), 0)),
    ('last_generation', 0);
";

/// Version 6: saved chat conversations, per user, with each answer's sources.
const CONVERSATIONS: &str = "
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX conversations_by_user ON conversations(user_id, updated_at);
CREATE TABLE conversation_messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    sources         TEXT,
    stopped         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX conversation_messages_in_order ON conversation_messages(conversation_id, id);
";

/// Version 8: which chat model gave each saved answer.
const MESSAGE_MODEL: &str = "ALTER TABLE conversation_messages ADD COLUMN model TEXT;";

/// Version 9: the embedding cache is each user's own, like everything else a user's documents
/// leave behind. Shared, it told anyone whether someone else had embedded a given text (the
/// cache hits of their upload, or its speed). Each user keeps the cached vectors of the texts
/// their stored chunks hold; the rest of the old shared cache is dropped.
const CACHE_BY_USER: &str = "
CREATE TABLE embedding_cache_by_user (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model   TEXT NOT NULL,
    hash    BLOB NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (user_id, model, hash)
) WITHOUT ROWID;
INSERT OR IGNORE INTO embedding_cache_by_user (user_id, model, hash, vector)
    SELECT DISTINCT ch.user_id, c.model, c.hash, c.vector
    FROM chunks ch JOIN embedding_cache c ON c.hash = ch.hash;
DROP TABLE embedding_cache;
ALTER TABLE embedding_cache_by_user RENAME TO embedding_cache;
";

/// Version 7: the processing log (`processing.rs`), one row per processing attempt that ended
/// (stored, or failed with its code), written in the transaction that records the outcome.
/// The stages' seconds are columns, so percentiles read no JSON. A user's rows go with them;
/// a document's stay when it is deleted (they are history). `AUTOINCREMENT`: ids only grow, so
/// pruning to the newest N rows is one range delete on the primary key.
const PROCESSING_LOG: &str = "
CREATE TABLE processing_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    document_id  INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    error_code   TEXT,
    chunks       INTEGER NOT NULL,
    embedded     INTEGER NOT NULL,
    cache_hits   INTEGER NOT NULL,
    extracting   REAL,
    chunking     REAL,
    embedding    REAL,
    storing      REAL,
    total        REAL,
    by           TEXT
);
CREATE INDEX processing_log_by_user ON processing_log(user_id, finished_at);
CREATE INDEX processing_log_by_time ON processing_log(finished_at);
";

/// Sets WAL mode and the pragmas every connection needs, and creates the schema if new.
pub(crate) fn prepare(conn: &Connection) -> Result<(), crate::StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit syncs the WAL, so a document accepted (and answered 202) survives a
    // power cut; NORMAL would survive a crash of the process only (a few ms an upload).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        // A newer ragmill migrated it: this one would misread tables it does not know.
        return Err(crate::StoreError::NewerSchema { found: version, known: SCHEMA_VERSION });
    }
    // Each step migrates one version up, in its own transaction.
    if version == 0 {
        // Version 4 (keyword tables) needs no statement for a new store: each user's table is
        // created with their first chunks.
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} {API_KEYS} {ADMINS} {VECTOR_BOOKKEEPING} {CONVERSATIONS} {PROCESSING_LOG} {MESSAGE_MODEL} {CACHE_BY_USER} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
        return Ok(());
    }
    if version == 1 {
        conn.execute_batch(&format!("BEGIN; {API_KEYS} PRAGMA user_version = 2; COMMIT;"))?;
    }
    if version <= 2 {
        conn.execute_batch(&format!("BEGIN; {ADMINS} PRAGMA user_version = 3; COMMIT;"))?;
    }
    if version <= 3 {
        // Version 4: a keyword index (FTS5) per user, built from the chunks already stored.
        conn.execute_batch("BEGIN;")?;
        let built = crate::keyword::build_all(conn)
            .and_then(|()| conn.execute_batch("PRAGMA user_version = 4; COMMIT;"));
        if built.is_err() {
            let _ = conn.execute_batch("ROLLBACK;");
        }
        built?;
    }
    if version <= 4 {
        conn.execute_batch(&format!(
            "BEGIN; {VECTOR_BOOKKEEPING} PRAGMA user_version = 5; COMMIT;"
        ))?;
    }
    if version <= 5 {
        conn.execute_batch(&format!("BEGIN; {CONVERSATIONS} PRAGMA user_version = 6; COMMIT;"))?;
    }
    if version <= 6 {
        conn.execute_batch(&format!("BEGIN; {PROCESSING_LOG} PRAGMA user_version = 7; COMMIT;"))?;
    }
    if version <= 7 {
        conn.execute_batch(&format!("BEGIN; {MESSAGE_MODEL} PRAGMA user_version = 8; COMMIT;"))?;
    }
    if version <= 8 {
        conn.execute_batch(&format!("BEGIN; {CACHE_BY_USER} PRAGMA user_version = 9; COMMIT;"))?;
    }
    Ok(())
}
