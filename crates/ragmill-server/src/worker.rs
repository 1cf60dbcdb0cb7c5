//! Background workers: lease a job, process its document with the pipeline, report events.
//!
//! Contract with the queue ([`ragmill_core::JobQueue`]): lease → heartbeat while working →
//! complete (done, or failed for good with the failure recorded on the document) | fail
//! (retryable: [`IngestError::retryable`]) | release (shutting down). A worker that dies simply
//! stops heartbeating; its lease runs out and another worker takes the job. Storage is
//! idempotent, so a job done twice leaves one copy.
//!
//! A panic while processing a job is caught: the document is failed with
//! `processing_crashed`, the job ends, and the worker goes on. The heartbeat lives only as long
//! as the job's processing (it is aborted when the processing ends, however it ends), so a
//! lease is never kept alive for work nobody is doing.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ragmill_core::{Failed, Lease, Live, Progress, QueueError, Stage};
use ragmill_pipeline::{IngestError, Ingested, Input, Source};
use ragmill_store::DocumentState;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::state::AppState;

/// Running workers; [`Workers::shutdown`] stops them.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Starts `state.config.workers` workers on the current runtime, named
/// `<host>:<pid>:<i>` (the names the queue records as lease holders).
pub fn spawn_workers(state: &AppState) -> Workers {
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for i in 0..state.config.workers.max(1) {
        tasks.spawn(run(state.clone(), format!("{}:{i}", worker_prefix()), rx.clone()));
    }
    Workers { stop, tasks }
}

/// `<host>:<pid>`: what this process's worker names start with.
pub fn worker_prefix() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// This machine's name (`/etc/hostname`, else `HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Workers {
    /// Stops taking jobs, lets jobs in hand finish for up to `grace`, then releases the rest
    /// of their leases back to the queue (the tasks are dropped mid-job; nothing half-written
    /// is visible because a document's chunks change in one transaction).
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained =
            tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

async fn run(state: AppState, name: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let lease = match state.queue.lease(&name).await {
            Ok(lease) => {
                backoff = Duration::from_millis(100);
                lease
            }
            Err(e) => {
                tracing::warn!(worker = name, error = %e, ?backoff, "cannot lease a job");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let Some(lease) = lease else {
            tokio::select! {
                () = state.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let _busy = state.metrics.worker_busy();
        let mut job = std::pin::pin!(process(&state, &lease));
        tokio::select! {
            () = &mut job => {}
            _ = stop.changed() => {
                // Shutting down: give the job its chance to finish, else hand it back.
                tokio::select! {
                    () = &mut job => {}
                    () = tokio::time::sleep(Duration::from_secs(30)) => {
                        let _ = state.queue.release(&lease).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Aborts a task when dropped: the heartbeat ends with the job, however the job ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What became of one job's document.
enum Outcome {
    /// Ready (or unchanged).
    Done(Ingested),
    /// Nothing to report: the document was deleted meanwhile.
    Gone,
    /// Worth another attempt.
    Retry(IngestError),
    /// Failed for good; already recorded on the document.
    Failed(IngestError),
    /// Processing panicked; not yet recorded.
    Crashed(String),
}

/// Processes one leased job to an outcome the queue understands.
async fn process(state: &AppState, lease: &Lease) {
    let (user, id) = (lease.user, lease.document);
    let heartbeat = {
        let (queue, lease) = (Arc::clone(&state.queue), lease.clone());
        let every = queue.lease_duration() / 3;
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match queue.heartbeat(&lease).await {
                    Ok(()) => {}
                    Err(QueueError::Unavailable(e)) => {
                        tracing::warn!(document = lease.document.0, error = e, "heartbeat missed")
                    }
                    Err(_) => return, // the lease is gone: nothing more to keep alive
                }
            }
        }))
    };
    let was_available = was_available(state, lease).await;
    let outcome = match AssertUnwindSafe(work(state, lease)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => Outcome::Crashed(panic_message(panic.as_ref())),
    };
    drop(heartbeat);

    let reporter = &state.reporter;
    let ended = match outcome {
        Outcome::Done(ok) => {
            state.metrics.document_done(&ok);
            state.activity.done(user, &ok);
            reporter.ready(user, id, ok.chunks);
            if !was_available {
                reporter.rag_available(user);
            }
            state.queue.complete(lease).await
        }
        Outcome::Gone => {
            reporter.forget(user, id);
            state.queue.complete(lease).await
        }
        Outcome::Failed(e) => {
            state.metrics.document_failed(e.code());
            state.activity.failed(user);
            reporter.failed(user, id, e.code(), &e.to_string());
            state.queue.complete(lease).await
        }
        Outcome::Crashed(message) => {
            tracing::error!(document = id.0, panic = message, "processing panicked");
            let e = IngestError::Crashed(message);
            state.metrics.document_failed(e.code());
            state.activity.failed(user);
            if let Err(err) = state.ledger.give_up(user, id, e.code(), &e.to_string()).await {
                tracing::error!(document = id.0, error = %err, "cannot record the crash");
            }
            state.queue.complete(lease).await
        }
        Outcome::Retry(e) => {
            state.metrics.document_failed(e.code());
            match state.queue.fail(lease, &e.to_string()).await {
                Ok(Failed::Retrying { attempt }) => {
                    tracing::warn!(document = id.0, attempt, error = %e, "job failed, will retry");
                    let store = Arc::clone(&state.store);
                    let _ = tokio::task::spawn_blocking(move || {
                        store.user(user).set_state(id, DocumentState::Queued)
                    })
                    .await;
                    Ok(())
                }
                Ok(Failed::Parked) => {
                    state.activity.failed(user);
                    let message = format!("gave up after repeated failures: {e}");
                    if let Err(err) = state.ledger.give_up(user, id, e.code(), &message).await {
                        tracing::error!(document = id.0, error = %err, "cannot record the failure");
                    }
                    Ok(())
                }
                Err(err) => Err(err),
            }
        }
    };
    match ended {
        Ok(()) => {}
        Err(QueueError::LeaseLost) => {
            tracing::warn!(document = id.0, "lease lost; another worker has the job")
        }
        Err(e) => tracing::error!(document = id.0, error = %e, "cannot end the job's lease"),
    }
}

/// Whether the user's collection was searchable before this job (to announce it once).
async fn was_available(state: &AppState, lease: &Lease) -> bool {
    let (store, user) = (Arc::clone(&state.store), lease.user);
    matches!(
        tokio::task::spawn_blocking(move || store.user(user).rag_status()).await,
        Ok(Ok(s)) if s.available
    )
}

async fn work(state: &AppState, lease: &Lease) -> Outcome {
    let (user, id) = (lease.user, lease.document);
    let _busy = state.activity.busy(user);
    let store = Arc::clone(&state.store);
    let found = tokio::task::spawn_blocking(move || {
        let doc = store.user(user).document(id)?;
        if doc.is_some() {
            store.user(user).set_state(id, DocumentState::Processing)?;
        }
        Ok::<_, ragmill_store::StoreError>(doc)
    })
    .await;
    let doc = match found {
        Ok(Ok(Some(doc))) => doc,
        Ok(Ok(None)) => return Outcome::Gone,
        Ok(Err(e)) => return Outcome::Retry(e.into()),
        Err(e) => return Outcome::Retry(IngestError::Internal(e.to_string())),
    };
    let Ok(hash) = ragmill_core::ContentHash::from_hex(&doc.content_hash) else {
        return Outcome::Retry(IngestError::Storage(format!(
            "document {} has a corrupt content hash",
            id.0
        )));
    };
    let input = Input {
        name: doc.name.clone(),
        source: Source::Path(state.blobs.path(&hash)),
        document: Some(id),
    };
    let reporter = &state.reporter;
    let report = move |p: Progress| {
        if !p.stage.is_final() {
            reporter.progress(user, id, Live { stage: p.stage, done: p.done, total: p.total });
        }
    };
    reporter.progress(user, id, Live { stage: Stage::Extracting, done: 0, total: 1 });
    match state.pipeline.ingest_one(user, input, &report).await {
        Ok(ok) => Outcome::Done(ok),
        Err(IngestError::DocumentDeleted) => Outcome::Gone,
        Err(e) if e.retryable() => Outcome::Retry(e),
        Err(e) => Outcome::Failed(e),
    }
}

/// The message a panic carried, if it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
