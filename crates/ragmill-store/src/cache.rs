//! The embedding cache: (user, model, chunk-text hash) → vector.
//!
//! Each user's own, like their documents: a cache shared between users would tell anyone
//! whether someone else had embedded a given text (their upload's cache hits, or its speed).
//! So the same text uploaded by two users is embedded once for each; within one user's
//! documents and versions it is embedded once.

use std::collections::HashMap;

use ragmill_core::ContentHash;
use rusqlite::{OptionalExtension, params};

use crate::codec::{blob_to_vector, vector_to_blob};
use crate::{Store, StoreError, UserStore};

impl UserStore<'_> {
    /// This user's cached vectors of `model` for any of `hashes`.
    pub fn cache_get(
        &self,
        model: &str,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>, StoreError> {
        let conn = self.store.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT vector FROM embedding_cache WHERE user_id = ?1 AND model = ?2 AND hash = ?3",
        )?;
        let mut found = HashMap::new();
        for h in hashes {
            let mut rows = stmt.query(params![self.user.0, model, h.as_bytes().as_slice()])?;
            if let Some(row) = rows.next()? {
                let blob: Vec<u8> = row.get(0)?;
                let v = blob_to_vector(&blob)
                    .ok_or_else(|| StoreError::Corrupt(format!("cache vector {h:?}")))?;
                found.insert(*h, v);
            }
        }
        Ok(found)
    }

    /// Adds vectors of `model` to this user's cache (existing entries are kept). Nothing, for
    /// a user deleted meanwhile: their cache went with them.
    pub fn cache_put(
        &self,
        model: &str,
        entries: &[(ContentHash, &[f32])],
    ) -> Result<(), StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let user = tx.query_row("SELECT 1 FROM users WHERE id = ?1", [self.user.0], |_| Ok(()));
        if user.optional()?.is_none() {
            return Ok(());
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO embedding_cache (user_id, model, hash, vector)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (h, v) in entries {
                stmt.execute(params![
                    self.user.0,
                    model,
                    h.as_bytes().as_slice(),
                    vector_to_blob(v)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Store {
    /// Entries in the cache for `model`, all users'.
    pub fn cache_len(&self, model: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM embedding_cache WHERE model = ?1",
            [model],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}
