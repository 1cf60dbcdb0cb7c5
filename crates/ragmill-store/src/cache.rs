//! The embedding cache: (model, chunk-text hash) → vector.

use std::collections::HashMap;

use ragmill_core::ContentHash;
use rusqlite::params;

use crate::codec::{blob_to_vector, vector_to_blob};
use crate::{Store, StoreError};

impl Store {
    /// Cached vectors of `model` for any of `hashes`. Shared by all users: a vector depends only
    /// on the model and the text, and a hit reveals nothing a user did not already hold.
    pub fn cache_get(
        &self,
        model: &str,
        hashes: &[ContentHash],
    ) -> Result<HashMap<ContentHash, Vec<f32>>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT vector FROM embedding_cache WHERE model = ?1 AND hash = ?2")?;
        let mut found = HashMap::new();
        for h in hashes {
            let mut rows = stmt.query(params![model, h.as_bytes().as_slice()])?;
            if let Some(row) = rows.next()? {
                let blob: Vec<u8> = row.get(0)?;
                let v = blob_to_vector(&blob)
                    .ok_or_else(|| StoreError::Corrupt(format!("cache vector {h:?}")))?;
                found.insert(*h, v);
            }
        }
        Ok(found)
    }

    /// Adds vectors of `model` to the cache (existing entries are kept).
    pub fn cache_put(
        &self,
        model: &str,
        entries: &[(ContentHash, &[f32])],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO embedding_cache (model, hash, vector) VALUES (?1, ?2, ?3)",
            )?;
            for (h, v) in entries {
                stmt.execute(params![model, h.as_bytes().as_slice(), vector_to_blob(v)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Entries in the cache for `model`.
    pub fn cache_len(&self, model: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM embedding_cache WHERE model = ?1",
            [model],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}
