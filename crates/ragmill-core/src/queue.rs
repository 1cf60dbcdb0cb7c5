//! The job-queue seam: what a worker needs from a queue, whatever holds the jobs.
//!
//! A job names one document of one user to process. Implementations: the embedded SQLite queue
//! (`ragmill-queue`) and Redis Streams (`ragmill-redis`). Both keep the same run-loop contract:
//!
//! 1. [`JobQueue::lease`] takes the next job (or `None`); the [`Lease`] holds for
//!    [`JobQueue::lease_duration`] unless renewed.
//! 2. The worker calls [`JobQueue::heartbeat`] well within that time while it works.
//! 3. It ends the lease exactly once: [`JobQueue::complete`] (done), [`JobQueue::fail`]
//!    (retried later, or parked once attempts are exhausted: [`Failed`] says which) or
//!    [`JobQueue::release`] (shutting down: back to the queue, the attempt not counted).
//!
//! Every call on a lease answers [`QueueError::LeaseLost`] once the lease no longer holds the
//! job (it ran out and another worker took it): the worker must drop its result. Work must be
//! idempotent, because a job whose worker was merely slow can run twice.
//!
//! Fairness is part of the contract: users take turns, and within a user smaller documents go
//! first, so one user's thousand uploads never starve another's single file.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DocumentId, UserId};

/// A job's id, opaque outside the queue that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A worker's hold on one job, from [`JobQueue::lease`]. It travels between processes (a
/// remote worker holds it), so it can be serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub job: JobId,
    /// The document's owner.
    pub user: UserId,
    /// The document to process.
    pub document: DocumentId,
    /// Which attempt this is, 1-based.
    pub attempt: u32,
    /// Unique to this lease; every later call checks it, so a worker whose lease ran out and
    /// was taken over cannot end the new holder's lease.
    pub token: String,
}

/// What [`JobQueue::fail`] did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failed {
    /// The document will be processed again, as attempt `attempt` (1-based).
    Retrying {
        /// The attempt number of the retry.
        attempt: u32,
    },
    /// Attempts are exhausted: the job is parked (dead-lettered) with its error.
    Parked,
}

/// Jobs in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// Waiting to be leased (including those backing off after a failure).
    pub queued: u64,
    /// Held by a worker.
    pub leased: u64,
    /// Given up on (dead-lettered), with their error.
    pub parked: u64,
}

/// Where a document's job stands, for the reconciler that mends a document left without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Held by a worker.
    Leased,
    /// Given up on, with the last error.
    Parked(String),
}

/// A failure of the queue itself (not of the job).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The lease's token no longer holds the job: drop the result, touch nothing.
    #[error("the lease no longer holds the job")]
    LeaseLost,
    /// The queue cannot be reached now (Redis down, database locked): try again later.
    #[error("the job queue is unavailable: {0}")]
    Unavailable(String),
    /// The queue answered something it should not have (a corrupt entry, a bad reply).
    #[error("the job queue failed: {0}")]
    Backend(String),
}

impl QueueError {
    /// Whether the same call may succeed later.
    pub fn retryable(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }

    /// A stable snake_case code for the API and logs.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::LeaseLost => "lease_lost",
            QueueError::Unavailable(_) => "queue_unavailable",
            QueueError::Backend(_) => "queue_failed",
        }
    }
}

/// A durable queue of documents to process; see the [module docs](self) for the contract.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues `document` (`size` bytes, so small ones go first). At most one queued job per
    /// document: enqueueing it again updates that job and resets its attempts. A document whose
    /// job is leased gets one more queued job (re-process while processing), leased only once
    /// the first ends.
    async fn enqueue(
        &self,
        user: UserId,
        document: DocumentId,
        size: u64,
    ) -> Result<(), QueueError>;
    /// The next job for `worker` (a name for logs and the dashboard), or `None`.
    async fn lease(&self, worker: &str) -> Result<Option<Lease>, QueueError>;
    /// Renews the lease for another [`JobQueue::lease_duration`].
    async fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError>;
    /// The job is done: it is gone.
    async fn complete(&self, lease: &Lease) -> Result<(), QueueError>;
    /// This attempt failed with `error`: retried after a backoff, or parked.
    async fn fail(&self, lease: &Lease, error: &str) -> Result<Failed, QueueError>;
    /// Shutting down: the job goes back, the attempt does not count.
    async fn release(&self, lease: &Lease) -> Result<(), QueueError>;
    /// Drops the document's queued and parked jobs; a leased one is left to its worker, which
    /// finds the document gone. Returns how many were dropped.
    async fn cancel(&self, user: UserId, document: DocumentId) -> Result<u64, QueueError>;
    /// The document's job, if it has one (the newest when it has two).
    async fn job_state(
        &self,
        user: UserId,
        document: DocumentId,
    ) -> Result<Option<JobState>, QueueError>;
    /// Jobs by state across every user.
    async fn depth(&self) -> Result<Depth, QueueError>;
    /// Jobs by state of one user.
    async fn depth_for(&self, user: UserId) -> Result<Depth, QueueError>;
    /// How long a lease holds without a heartbeat.
    fn lease_duration(&self) -> Duration;
    /// How long an idle worker waits before asking for a job again, when nothing woke it. A
    /// queue whose producers are in other processes (so cannot wake this one's workers) asks
    /// for a shorter wait.
    fn idle_poll(&self) -> Duration {
        Duration::from_millis(500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailability_is_worth_retrying() {
        assert!(QueueError::Unavailable("down".into()).retryable());
        assert!(!QueueError::LeaseLost.retryable());
        assert!(!QueueError::Backend("bad".into()).retryable());
        assert_eq!(QueueError::LeaseLost.code(), "lease_lost");
    }

    #[test]
    fn a_lease_reads_back_as_it_was_written() {
        let lease = Lease {
            job: JobId("1700000000000-0".into()),
            user: UserId(3),
            document: DocumentId(9),
            attempt: 2,
            token: "t".into(),
        };
        let json = serde_json::to_string(&lease).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Lease>(&json).ok(), Some(lease));
    }
}
