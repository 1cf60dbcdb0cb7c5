//! The roster seam: which worker processes are alive and what they are doing, across the
//! cluster, for the dashboard. Each worker process reports itself every few seconds; a process
//! not heard from for [`WORKER_STALE_MS`] is gone from the list.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One worker process as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// `<host>:<pid>`, unique in the cluster.
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Jobs in hand now.
    pub busy: u64,
    /// Jobs it can hold at once.
    pub slots: u64,
    /// Jobs it finished (ready, failed for good, or dropped) since it started.
    pub jobs_done: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// When it last reported, in milliseconds since the Unix epoch (its own clock).
    pub last_seen_ms: u64,
}

/// Where worker processes report themselves and the dashboard lists them.
#[async_trait]
pub trait Roster: Send + Sync {
    /// Records `status` (never blocks; best effort).
    fn report(&self, status: WorkerStatus);
    /// The worker processes heard from in the last [`WORKER_STALE_MS`], by name.
    async fn list(&self) -> Vec<WorkerStatus>;
}

/// A worker process silent for longer than this, in milliseconds, is taken for gone.
pub const WORKER_STALE_MS: u64 = 15_000;
