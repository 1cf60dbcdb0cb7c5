//! Keeping an external vector index (ChromaDB) in step with the store in the background: at
//! start-up and every `reconcile_every`, [`ragmill_pipeline::Vectors::catch_up`] copies the
//! documents the index lacks (stored while another backend served, or whose index step failed)
//! and forgets what the store lists as garbage (old versions, deleted documents and users whose
//! deletion found the index down). Nothing is lost while the index is down: the store keeps the
//! list, and the next pass works it off.

use std::time::Duration;

use ragmill_pipeline::{SyncReport, Vectors};

/// Sweeps now and then every `every` until dropped.
pub async fn keep_sweeping(vectors: Vectors, every: Duration) {
    loop {
        match vectors.catch_up().await {
            Ok(r) if r != SyncReport::default() => {
                tracing::info!(
                    written = r.written,
                    chunks = r.chunks,
                    retired = r.retired,
                    "vector index caught up"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the vector index could not be caught up; trying again later")
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// After a deletion: tells the index at once, in the background (the sweeper retries).
pub fn collect_soon(vectors: Option<Vectors>) {
    if let Some(v) = vectors {
        tokio::spawn(async move { v.collect_quietly().await });
    }
}
