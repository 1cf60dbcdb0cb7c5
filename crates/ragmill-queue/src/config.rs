//! [`QueueConfig`], how the queue behaves, and [`QueueError`], how it fails.

use std::time::Duration;

use crate::clock::Clock;

/// How the queue behaves. Build it with `..QueueConfig::default()` so new fields don't break you.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How long a lease holds without a heartbeat (default 60 s).
    pub lease: Duration,
    /// Failed attempts before a job is parked (default 3; 0 is taken as 1). A release does
    /// not count.
    pub max_attempts: u32,
    /// Leases that ran out (the worker died or hung) before a job is parked as a poison
    /// document (default 5; 0 is taken as 1). Counted apart from failures so that workers
    /// killed under a document for reasons of their own do not fail it after three deaths.
    pub max_lost: u32,
    /// Backoff before retry `n + 1` after attempt `n` failed: `backoff · 2^(n-1)` (default 1 s).
    pub backoff: Duration,
    /// Where time comes from (default the system clock).
    pub clock: Clock,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease: Duration::from_secs(60),
            max_attempts: 3,
            max_lost: 5,
            backoff: Duration::from_secs(1),
            clock: Clock::System,
        }
    }
}

/// A failure of the queue itself.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database failed.
    #[error("queue database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The lease's token no longer holds the job: it ran out and was taken over, or was ended.
    #[error("the lease no longer holds the job")]
    LeaseLost,
    /// A lease that this queue did not make (its job id is not one of ours).
    #[error("the lease's job id {0:?} is not this queue's")]
    ForeignLease(String),
    /// A thread panicked while holding the queue's connection.
    #[error("the queue's connection was poisoned by a panic")]
    Poisoned,
}
