//! [`EmbeddedQueue`]: the [`SqliteQueue`] behind the async [`JobQueue`] seam.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ragmill_core::{Depth, DocumentId, Failed, JobQueue, JobState, Lease, QueueError, UserId};

use crate::config::QueueError as SqliteError;
use crate::queue::SqliteQueue;

/// The embedded queue as a [`JobQueue`]: every call runs on tokio's blocking threads.
#[derive(Debug, Clone)]
pub struct EmbeddedQueue {
    inner: Arc<SqliteQueue>,
}

impl EmbeddedQueue {
    /// Wraps `queue`.
    pub fn new(queue: SqliteQueue) -> Self {
        Self { inner: Arc::new(queue) }
    }

    /// The blocking queue underneath (for start-up recovery and tests).
    pub fn sqlite(&self) -> &Arc<SqliteQueue> {
        &self.inner
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SqliteQueue) -> Result<T, SqliteError> + Send + 'static,
    ) -> Result<T, QueueError> {
        let queue = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&queue)).await {
            Ok(result) => result.map_err(convert),
            Err(e) => Err(QueueError::Backend(format!("queue task failed: {e}"))),
        }
    }
}

/// Busy or locked database: worth another try; anything else is a fault.
fn convert(e: SqliteError) -> QueueError {
    match e {
        SqliteError::LeaseLost => QueueError::LeaseLost,
        SqliteError::ForeignLease(_) => QueueError::LeaseLost,
        SqliteError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            QueueError::Unavailable(e.to_string())
        }
        e => QueueError::Backend(e.to_string()),
    }
}

#[async_trait]
impl JobQueue for EmbeddedQueue {
    async fn enqueue(
        &self,
        user: UserId,
        document: DocumentId,
        size: u64,
    ) -> Result<(), QueueError> {
        self.run(move |q| q.enqueue(user, document, size).map(|_| ())).await
    }

    async fn lease(&self, worker: &str) -> Result<Option<Lease>, QueueError> {
        let worker = worker.to_owned();
        self.run(move |q| q.lease(&worker)).await
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError> {
        let lease = lease.clone();
        self.run(move |q| q.heartbeat(&lease)).await
    }

    async fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        let lease = lease.clone();
        self.run(move |q| q.complete(&lease)).await
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<Failed, QueueError> {
        let (lease, error) = (lease.clone(), error.to_owned());
        self.run(move |q| q.fail(&lease, &error)).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let lease = lease.clone();
        self.run(move |q| q.release(&lease)).await
    }

    async fn cancel(&self, user: UserId, document: DocumentId) -> Result<u64, QueueError> {
        self.run(move |q| q.cancel(user, document)).await
    }

    async fn job_state(
        &self,
        user: UserId,
        document: DocumentId,
    ) -> Result<Option<JobState>, QueueError> {
        self.run(move |q| q.job_state(user, document)).await
    }

    async fn depth(&self) -> Result<Depth, QueueError> {
        self.run(SqliteQueue::depth).await
    }

    async fn depth_for(&self, user: UserId) -> Result<Depth, QueueError> {
        self.run(move |q| q.depth_for(user)).await
    }

    fn lease_duration(&self) -> Duration {
        self.inner.config().lease
    }
}
