//! [`LocalRoster`], the one-process [`Roster`], and [`Tally`], what a worker process reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use ragmill_core::{Roster, WORKER_STALE_MS, WorkerStatus};

use crate::history::now_ms;

/// Worker processes that reported to this process (its own).
#[derive(Default)]
pub struct LocalRoster {
    workers: Mutex<HashMap<String, WorkerStatus>>,
}

#[async_trait]
impl Roster for LocalRoster {
    fn report(&self, status: WorkerStatus) {
        let mut map = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(status.name.clone(), status);
    }

    async fn list(&self) -> Vec<WorkerStatus> {
        let oldest = now_ms().saturating_sub(WORKER_STALE_MS);
        let mut map = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.last_seen_ms >= oldest);
        let mut all: Vec<_> = map.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

/// A worker process's running counts, shared by its workers.
#[derive(Default)]
pub struct Tally {
    busy: AtomicU64,
    done: AtomicU64,
}

impl Tally {
    /// A job was taken; the guard gives it back and counts it done when dropped.
    pub fn start(&self) -> TallyGuard<'_> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        TallyGuard(self)
    }

    /// (busy, done).
    pub fn read(&self) -> (u64, u64) {
        (self.busy.load(Ordering::Relaxed), self.done.load(Ordering::Relaxed))
    }
}

/// Counts one job in hand until dropped.
pub struct TallyGuard<'a>(&'a Tally);

impl Drop for TallyGuard<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.done.fetch_add(1, Ordering::Relaxed);
    }
}
