//! What the workers did since start-up, for the whole service and for each user: the counters
//! behind the dashboard's rates (`GET /v1/stats`). A client turns them into rates by reading
//! them twice; levels (documents by state, queue depth) are read from the store instead.
//!
//! In memory only: they restart from zero with the process, which `uptime_s` tells.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ragmill_core::UserId;
use ragmill_pipeline::Ingested;
use serde::Serialize;
use utoipa::ToSchema;

/// Counters of one scope (a user, or the service).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Counters {
    /// Documents that became ready (unchanged re-uploads included).
    pub documents_ready: u64,
    /// Documents that failed for good.
    pub documents_failed: u64,
    /// Documents actually processed (not unchanged), whose time is in `processing_seconds`.
    pub documents_processed: u64,
    /// Total processing time of those documents, read to stored.
    pub processing_seconds: f64,
    /// Chunks stored by those documents.
    pub chunks_stored: u64,
    /// Distinct chunk texts sent to the embedder.
    pub chunks_embedded: u64,
    /// Chunks whose vector came from the cache.
    pub cache_hits: u64,
    /// Workers processing one of this scope's documents now.
    pub workers_busy: u64,
}

impl Counters {
    fn done(&mut self, ok: &Ingested) {
        self.documents_ready += 1;
        if ok.unchanged {
            return;
        }
        self.documents_processed += 1;
        self.processing_seconds += ok.timings.get("total").copied().unwrap_or(0.0);
        self.chunks_stored += ok.chunks as u64;
        self.chunks_embedded += ok.embedded as u64;
        self.cache_hits += ok.cache_hits as u64;
    }
}

#[derive(Default)]
struct Scopes {
    service: Counters,
    users: HashMap<UserId, Counters>,
}

/// The service's and every user's [`Counters`].
pub struct Activity {
    started: Instant,
    scopes: Mutex<Scopes>,
}

impl Default for Activity {
    fn default() -> Self {
        Self { started: Instant::now(), scopes: Mutex::default() }
    }
}

impl Activity {
    /// Seconds since the counters started.
    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn update(&self, user: UserId, f: impl Fn(&mut Counters)) {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut scopes.service);
        f(scopes.users.entry(user).or_default());
    }

    /// `user`'s document became ready.
    pub fn done(&self, user: UserId, ok: &Ingested) {
        self.update(user, |c| c.done(ok));
    }

    /// `user`'s document failed for good.
    pub fn failed(&self, user: UserId) {
        self.update(user, |c| c.documents_failed += 1);
    }

    /// Counts a worker busy on `user`'s document until the guard is dropped.
    pub fn busy(&self, user: UserId) -> Busy<'_> {
        self.update(user, |c| c.workers_busy += 1);
        Busy { activity: self, user }
    }

    /// The whole service's counters.
    pub fn service(&self) -> Counters {
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner).service
    }

    /// `user`'s counters (zero for a user with no activity since start-up).
    pub fn user(&self, user: UserId) -> Counters {
        let scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        scopes.users.get(&user).copied().unwrap_or_default()
    }
}

/// Returned by [`Activity::busy`].
pub struct Busy<'a> {
    activity: &'a Activity,
    user: UserId,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.activity.update(self.user, |c| c.workers_busy = c.workers_busy.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingested(unchanged: bool) -> Ingested {
        Ingested {
            id: ragmill_core::DocumentId(1),
            chunks: 4,
            cache_hits: 1,
            embedded: 3,
            unchanged,
            timings: [("total".to_owned(), 0.5)].into(),
        }
    }

    #[test]
    fn each_user_sees_their_own_counters_and_the_service_the_sum() {
        let a = Activity::default();
        let (alice, bob) = (UserId(1), UserId(2));
        a.done(alice, &ingested(false));
        a.done(alice, &ingested(true));
        a.failed(bob);
        let busy = a.busy(bob);
        let mine = a.user(alice);
        assert_eq!(
            (mine.documents_ready, mine.documents_processed, mine.chunks_stored, mine.cache_hits),
            (2, 1, 4, 1),
            "an unchanged document is ready but did no work"
        );
        assert_eq!((mine.documents_failed, mine.workers_busy), (0, 0));
        assert_eq!((a.user(bob).documents_failed, a.user(bob).workers_busy), (1, 1));
        let all = a.service();
        assert_eq!((all.documents_ready, all.documents_failed, all.workers_busy), (2, 1, 1));
        assert!((all.processing_seconds - 0.5).abs() < 1e-9);
        drop(busy);
        assert_eq!((a.user(bob).workers_busy, a.service().workers_busy), (0, 0));
        assert_eq!(a.user(UserId(9)), Counters::default());
    }
}
