//! The SQLite schema and connection settings.

use rusqlite::Connection;

const SCHEMA_VERSION: i64 = 4;

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

/// Sets WAL mode and the pragmas every connection needs, and creates the schema if new.
pub(crate) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit syncs the WAL, so a document accepted (and answered 202) survives a
    // power cut; NORMAL would survive a crash of the process only (a few ms an upload).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Each step migrates one version up, in its own transaction.
    if version == 0 {
        // Version 4 (keyword tables) needs no statement for a new store: each user's table is
        // created with their first chunks.
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} {API_KEYS} {ADMINS} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
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
    Ok(())
}
