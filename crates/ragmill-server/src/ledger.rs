//! [`Ledger`]: the one owner of the pairing between a document's state and its job.
//!
//! A document the store calls `queued` or `processing` must have a job in the queue, and a
//! job's end must be written back to its document. The store (SQLite) and the queue (SQLite or
//! Redis) are two systems with no transaction across them, so every change to the pair goes
//! through here, always in the same order: **the store first** (it is the truth and what the
//! user sees), **then the queue**. A crash, or a queue that is down, between the two leaves a
//! document waiting without a job, never a job without its document (a job whose document is
//! gone is dropped by its worker); [`Ledger::reconcile`], run at start-up and every
//! [`Ledger::RECONCILE_EVERY`], finds such documents and queues them, and fails those whose job
//! was given up on. So an upload is acknowledged once its bytes and its document row are
//! durable, even while the queue is unreachable, and nothing accepted is lost or stuck.
//!
//! Invariant: no route or worker writes a document's state and its job separately; only this
//! module calls both `UserStore::accept_upload`/`set_state`/`delete_document`/`mark_failed`/
//! `cancel_document`/`pause_document`/`resume_document` and the queue's `enqueue`/`cancel`.

use std::sync::Arc;
use std::time::Duration;

use ragmill_core::{
    CatalogError, ContentHash, DocumentId, DocumentKind, JobQueue, JobState, QueueError, UserId,
};
use ragmill_pipeline::on_store;
use ragmill_store::{Accepted, DocumentState, Store};
use tokio::sync::Notify;

use crate::error::{ApiError, blocking};
use crate::events::Reporter;

/// Code recorded on a document whose job was given up on without a reason of the document's
/// own (its worker vanished too often, or the queue dead-lettered it).
pub const GIVEN_UP: &str = "processing_failed";

/// Pairs documents with jobs; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<Store>,
    queue: Arc<dyn JobQueue>,
    reporter: Reporter,
    wake: Arc<Notify>,
}

/// What one [`Ledger::reconcile`] pass mended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Documents waiting without a job, now queued.
    pub enqueued: usize,
    /// Documents whose job was given up on, now failed with its reason.
    pub failed: usize,
}

impl Ledger {
    /// How often the serving process looks for documents left without a job, by default.
    pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

    /// A ledger over `store` and `queue`; `wake` is notified when a job is queued.
    pub fn new(
        store: Arc<Store>,
        queue: Arc<dyn JobQueue>,
        reporter: Reporter,
        wake: Arc<Notify>,
    ) -> Self {
        Self { store, queue, reporter, wake }
    }

    /// Records an uploaded version of `name` (its bytes already kept under `hash`) and queues
    /// it. Answers the document and its state: `queued`, or as it stands when these bytes are
    /// already ready, queued or processing.
    pub async fn accept(
        &self,
        user: UserId,
        name: String,
        hash: ContentHash,
        size: u64,
        kind: DocumentKind,
    ) -> Result<(DocumentId, DocumentState), ApiError> {
        let store = Arc::clone(&self.store);
        let accepted =
            blocking(move || store.user(user).accept_upload(&name, hash, size, Some(kind)))
                .await??;
        match accepted {
            Accepted::Queued(id) => {
                self.enqueue(user, id, size).await;
                Ok((id, DocumentState::Queued))
            }
            Accepted::Unchanged(id, state) => Ok((id, state)),
        }
    }

    /// Queues document `id` (`size` bytes) again.
    pub async fn reprocess(&self, user: UserId, id: DocumentId, size: u64) -> Result<(), ApiError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.user(user).set_state(id, DocumentState::Queued)).await??;
        self.enqueue(user, id, size).await;
        Ok(())
    }

    /// Deletes document `id` with its chunks, then its jobs. A job the queue still holds (it
    /// was unreachable, or a worker has it) finds the document gone and is dropped.
    pub async fn delete(&self, user: UserId, id: DocumentId) -> Result<bool, ApiError> {
        let store = Arc::clone(&self.store);
        let deleted = blocking(move || store.user(user).delete_document(id)).await??;
        self.drop_job(user, id, "deleted").await;
        self.reporter.forget(user, id);
        Ok(deleted)
    }

    /// Cancels document `id`'s version waiting for or in processing: the store ends it failed
    /// with `cancelled` (an older searchable version stays), then its queued job is dropped; a
    /// worker processing it notices within half a second and drops the work. False if it was
    /// neither waiting nor in processing.
    pub async fn cancel(&self, user: UserId, id: DocumentId) -> Result<bool, ApiError> {
        let store = Arc::clone(&self.store);
        if !blocking(move || store.user(user).cancel_document(id)).await?? {
            return Ok(false);
        }
        self.drop_job(user, id, "cancelled").await;
        self.reporter.failed(user, id, "cancelled", "cancelled by the user");
        Ok(true)
    }

    /// Pauses document `id`'s version waiting for or in processing: the store holds it as
    /// `paused`, then its queued job is dropped; a worker processing it lets go within half a
    /// second and drops what it had done. False if it was neither waiting nor in processing.
    pub async fn pause(&self, user: UserId, id: DocumentId) -> Result<bool, ApiError> {
        let store = Arc::clone(&self.store);
        if !blocking(move || store.user(user).pause_document(id)).await?? {
            return Ok(false);
        }
        self.drop_job(user, id, "paused").await;
        self.reporter.paused(user, id);
        Ok(true)
    }

    /// Queues paused document `id` (`size` bytes) again. False if it was not paused.
    pub async fn resume(&self, user: UserId, id: DocumentId, size: u64) -> Result<bool, ApiError> {
        let store = Arc::clone(&self.store);
        if !blocking(move || store.user(user).resume_document(id)).await?? {
            return Ok(false);
        }
        self.enqueue(user, id, size).await;
        self.reporter.queued(user, id);
        Ok(true)
    }

    /// Document `id`'s job was given up on with `code` and `message`: the document says so
    /// (an older searchable version stays ready and carries the error).
    pub async fn give_up(
        &self,
        user: UserId,
        id: DocumentId,
        code: &str,
        message: &str,
    ) -> Result<(), CatalogError> {
        let (c, m) = (code.to_owned(), message.to_owned());
        let attempt = ragmill_store::Attempt::by(crate::state::ORIGIN);
        on_store(&self.store, move |s| s.user(user).with_attempt(attempt).mark_failed(id, &c, &m))
            .await?;
        self.reporter.failed(user, id, code, message);
        Ok(())
    }

    /// Drops document `id`'s queued job after the store `did` something to it; a queue that is
    /// down leaves the job to the worker that takes it, which finds the document unwanted.
    async fn drop_job(&self, user: UserId, id: DocumentId, did: &str) {
        if let Err(e) = self.queue.cancel(user, id).await {
            tracing::warn!(document = id.0, error = %e, "{did}; its job stays until a worker drops it");
        }
    }

    /// Queues `id`; a queue that is down leaves the document queued in the store for the
    /// reconciler.
    async fn enqueue(&self, user: UserId, id: DocumentId, size: u64) {
        match self.queue.enqueue(user, id, size).await {
            Ok(()) => self.wake.notify_waiters(),
            Err(e) => tracing::warn!(
                document = id.0,
                error = %e,
                "document accepted; it will be queued when the queue answers again"
            ),
        }
    }

    /// One pass: every document waiting or in processing whose job is missing is queued; one
    /// whose job was parked is failed with the job's last error.
    pub async fn reconcile(&self) -> Result<Reconciled, ReconcileError> {
        let waiting = on_store(&self.store, Store::in_flight).await?;
        let mut done = Reconciled::default();
        for (user, id, size, state) in waiting {
            match self.queue.job_state(user, id).await? {
                Some(JobState::Queued | JobState::Leased) => {}
                Some(JobState::Parked(error)) => {
                    self.give_up(user, id, GIVEN_UP, &error).await?;
                    done.failed += 1;
                }
                None => {
                    // Re-read: it may have finished between the list and the job's lookup.
                    let now = on_store(&self.store, move |s| s.user(user).document(id)).await?;
                    if !now.is_some_and(|d| {
                        matches!(d.state, DocumentState::Queued | DocumentState::Processing)
                    }) {
                        continue;
                    }
                    tracing::info!(document = id.0, ?state, "document without a job; queued");
                    self.queue.enqueue(user, id, size).await?;
                    done.enqueued += 1;
                }
            }
        }
        if done.enqueued > 0 {
            self.wake.notify_waiters();
        }
        Ok(done)
    }

    /// Reconciles now and then every `every` until dropped.
    pub async fn keep_reconciling(self, every: Duration) {
        loop {
            match self.reconcile().await {
                Ok(r) if r != Reconciled::default() => tracing::info!(?r, "reconciled"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciling documents and jobs failed"),
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// A reconcile pass could not finish (it is tried again on the next).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] CatalogError),
    /// The queue failed or is down.
    #[error(transparent)]
    Queue(#[from] QueueError),
}
