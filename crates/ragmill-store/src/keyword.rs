//! The keyword index: SQLite FTS5 (BM25), one table per user.
//!
//! One table per user (`fts_user_<id>`), not one shared table filtered by user: BM25's
//! statistics (how rare a term is, how long chunks are) come from the table, so in a shared one
//! another user's documents would move your scores, and your scores would tell you about their
//! documents. A per-user table makes isolation structural, as in the vector index, and a search
//! reads only the asker's postings. The table is *contentless* (the text stays in `chunks`;
//! `contentless_delete` lets rows be deleted by rowid) and keyed by the chunk's rowid; it is
//! written in the same transaction as the chunks, so it never disagrees with them.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use crate::search::{Nearest, Scores};
use crate::{DocumentId, StoreError, UserId, UserStore};

/// The user's table. The id is an integer, so the name is safe to put into SQL.
pub(crate) fn table(user: UserId) -> String {
    format!("fts_user_{}", user.0)
}

/// Creates the user's table if it does not exist (inside the caller's transaction).
pub(crate) fn ensure_table(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS {} USING fts5(text, content='', contentless_delete=1, \
         tokenize='porter unicode61 remove_diacritics 2');",
        table(user)
    ))
}

/// Whether the user has a table yet.
fn exists(conn: &Connection, user: UserId) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .query_row([table(user)], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Removes the keyword rows of `document`'s chunks (before the chunks are deleted), one rowid
/// at a time: FTS5 looks up `rowid = ?` directly, while `rowid IN (SELECT ...)` would make it
/// scan the whole table on every write (quadratic over a collection's life).
pub(crate) fn forget_document(
    conn: &Connection,
    user: UserId,
    document: i64,
) -> rusqlite::Result<()> {
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM chunks WHERE document_id = ?1 AND +user_id = ?2")?
        .query_map(params![document, user.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() || !exists(conn, user)? {
        return Ok(());
    }
    let mut delete =
        conn.prepare_cached(&format!("DELETE FROM {} WHERE rowid = ?1", table(user)))?;
    for id in ids {
        delete.execute([id])?;
    }
    Ok(())
}

/// Indexes one chunk's text under its rowid.
pub(crate) fn add_chunk(
    conn: &Connection,
    user: UserId,
    chunk: i64,
    text: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!("INSERT INTO {} (rowid, text) VALUES (?1, ?2)", table(user)))?
        .execute(params![chunk, text])?;
    Ok(())
}

/// Drops the user's table.
pub(crate) fn drop_table(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {};", table(user)))
}

/// Builds every user's table from their chunks (schema version 4).
pub(crate) fn build_all(conn: &Connection) -> rusqlite::Result<()> {
    let users: Vec<i64> = conn
        .prepare("SELECT id FROM users")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in users {
        let user = UserId(id);
        ensure_table(conn, user)?;
        conn.execute(
            &format!(
                "INSERT INTO {} (rowid, text) SELECT id, text FROM chunks WHERE user_id = ?1",
                table(user)
            ),
            [id],
        )?;
    }
    Ok(())
}

/// Words too common to find anything by (English; the tokenizer lower-cases).
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "did", "do", "does", "for",
    "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my",
    "no", "not", "of", "on", "or", "our", "so", "such", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "you", "your",
];

/// A word in more than this share of the user's chunks is left out of the query (when the
/// query has a rarer one): BM25 gives it almost no weight, yet FTS5 would score every chunk
/// containing it, which is most of the collection.
const COMMON: f64 = 0.2;

/// The query's words (letters and digits, lower-cased, stopwords and repeats dropped, at
/// most 32).
fn words(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    query
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .take(32)
        .collect()
}

/// The FTS5 query for `words`: each quoted, so nothing in them is read as query syntax, joined
/// by OR (BM25 rewards chunks with more of them). `None` when there is no word.
fn expression(words: &[String]) -> Option<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

/// `words` without those in more than [`COMMON`] of the user's `chunks`, by the table's own
/// vocabulary (a word the vocabulary does not hold as such, e.g. one the stemmer changes, is
/// kept); the rarest word is always kept.
fn prune(
    conn: &Connection,
    user: UserId,
    words: Vec<String>,
    chunks: i64,
) -> rusqlite::Result<Vec<String>> {
    if words.len() < 2 || chunks < 1000 {
        return Ok(words);
    }
    let t = table(user);
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.{t}_vocab USING fts5vocab(main, {t}, 'row');"
    ))?;
    let mut stmt =
        conn.prepare_cached(&format!("SELECT doc FROM temp.{t}_vocab WHERE term = ?1"))?;
    let mut counted = Vec::with_capacity(words.len());
    for w in words {
        let df: i64 = stmt.query_row([&w], |r| r.get(0)).optional()?.unwrap_or(0);
        counted.push((w, df));
    }
    let limit = (chunks as f64 * COMMON) as i64;
    let rarest = counted.iter().map(|(_, df)| *df).min().unwrap_or(0);
    Ok(counted
        .into_iter()
        .filter(|(_, df)| *df <= limit || *df == rarest)
        .map(|(w, _)| w)
        .collect())
}

impl UserStore<'_> {
    /// The `top_k` chunks that best match `query`'s words, best first, optionally only from
    /// `documents`, BM25 in `score` and `scores.keyword`. Reads only the user's own keyword table, and joins on the user's chunks.
    pub fn keyword_search(
        &self,
        query: &str,
        top_k: usize,
        documents: Option<&[DocumentId]>,
    ) -> Result<Vec<Nearest>, StoreError> {
        let words = words(query);
        let conn = self.store.reader()?;
        if top_k == 0 || words.is_empty() || !exists(&conn, self.user)? {
            return Ok(Vec::new());
        }
        let chunks: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(chunk_count), 0) FROM documents WHERE user_id = ?1",
            )?
            .query_row([self.user.0], |r| r.get(0))?;
        let Some(expression) = expression(&prune(&conn, self.user, words, chunks)?) else {
            return Ok(Vec::new());
        };
        let t = table(self.user);
        let only: Option<String> = documents
            .map(|d| serde_json::to_string(&d.iter().map(|id| id.0).collect::<Vec<_>>()))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Without a document filter the best rows come from the table alone, where FTS5 can
        // stop early (ORDER BY rank LIMIT); the join then checks each is the user's chunk.
        let sql = if only.is_none() {
            format!(
                "SELECT c.document_id, c.ordinal, f.rank
                 FROM (SELECT rowid, rank FROM {t} WHERE {t} MATCH ?1 ORDER BY rank LIMIT ?3) f
                 JOIN chunks c ON c.id = f.rowid
                 WHERE +c.user_id = ?2 AND ?4 IS NULL ORDER BY f.rank"
            )
        } else {
            format!(
                "SELECT c.document_id, c.ordinal, f.rank FROM {t} f JOIN chunks c ON c.id = f.rowid
                 WHERE {t} MATCH ?1 AND +c.user_id = ?2
                   AND c.document_id IN (SELECT value FROM json_each(?4))
                 ORDER BY f.rank LIMIT ?3"
            )
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![expression, self.user.0, top_k as i64, only], |r| {
            // FTS5's rank is BM25 negated (lower is better); report it the right way up.
            let bm25 = -(r.get::<_, f64>(2)? as f32);
            Ok(Nearest {
                document: DocumentId(r.get(0)?),
                chunk: r.get(1)?,
                score: bm25,
                scores: Scores { keyword: Some(bm25), ..Scores::default() },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_words_quoted_and_ored() {
        assert_eq!(
            expression(&words("What is the XR-7 \"launch\" code?")).as_deref(),
            Some("\"xr\" OR \"7\" OR \"launch\" OR \"code\"")
        );
        assert_eq!(expression(&words("the of and")), None);
        assert_eq!(expression(&words("NEAR(a b) OR *")), Some("\"near\" OR \"b\"".into()));
    }
}
