//! Background workers: lease a job, process its document with the pipeline, report events.
//!
//! Contract with the queue: lease → heartbeat while working → complete (done, or failed for
//! good with the failure recorded on the document) | fail (retryable: the embedder or storage
//! broke) | release (shutting down). A worker that dies simply stops heartbeating; its lease
//! runs out and another worker takes the job. Storage is idempotent, so a job done twice
//! leaves one copy.

use std::sync::Arc;
use std::time::Duration;

use ragmill_core::{Progress, Stage};
use ragmill_pipeline::{Input, Source};
use ragmill_queue::{Failed, Lease};
use ragmill_store::DocumentState;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::events::{ErrorBody, Event, Live};
use crate::state::AppState;

/// Codes of failures worth retrying: the document is fine, something around it was not.
const RETRYABLE: [&str; 4] = ["embedding_failed", "storage_failed", "internal", "unreadable"];

/// Running workers; [`Workers::shutdown`] stops them.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Starts `state.config.workers` workers on the current runtime.
pub fn spawn_workers(state: &AppState) -> Workers {
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for i in 0..state.config.workers.max(1) {
        tasks.spawn(run(state.clone(), format!("worker-{}-{i}", std::process::id()), rx.clone()));
    }
    Workers { stop, tasks }
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
    loop {
        if *stop.borrow() {
            return;
        }
        let queue = Arc::clone(&state.queue);
        let worker = name.clone();
        let lease = match tokio::task::spawn_blocking(move || queue.lease(&worker)).await {
            Ok(Ok(lease)) => lease,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot lease a job");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "lease task failed");
                None
            }
        };
        match lease {
            Some(lease) => {
                let held = lease.clone();
                let _busy = state.metrics.worker_busy();
                let mut job = std::pin::pin!(process(&state, &lease));
                tokio::select! {
                    () = &mut job => {}
                    _ = stop.changed() => {
                        // Shutting down: give the job its chance to finish, else hand it back.
                        tokio::select! {
                            () = &mut job => {}
                            () = tokio::time::sleep(Duration::from_secs(30)) => {
                                let queue = Arc::clone(&state.queue);
                                let _ = tokio::task::spawn_blocking(move || queue.release(&held)).await;
                                return;
                            }
                        }
                    }
                }
            }
            None => {
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Processes one leased job to an outcome the queue understands.
async fn process(state: &AppState, lease: &Lease) {
    let (user, id) = (lease.user, lease.document);
    let heartbeat = {
        let queue = Arc::clone(&state.queue);
        let lease = lease.clone();
        let every = queue.config().lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (q, l) = (Arc::clone(&queue), lease.clone());
                if !matches!(tokio::task::spawn_blocking(move || q.heartbeat(&l)).await, Ok(Ok(())))
                {
                    return;
                }
            }
        })
    };
    let outcome = work(state, lease).await;
    heartbeat.abort();

    let queue = Arc::clone(&state.queue);
    let lease = lease.clone();
    let result = tokio::task::spawn_blocking(move || match outcome {
        Outcome::Done => queue.complete(&lease).map(|()| None),
        Outcome::Retry(message) => queue.fail(&lease, &message).map(Some),
    })
    .await;
    match result {
        Ok(Ok(Some(Failed::Retrying { attempt }))) => {
            tracing::warn!(document = id.0, attempt, "job failed, will retry");
            let store = Arc::clone(&state.store);
            let _ = tokio::task::spawn_blocking(move || {
                store.user(user).set_state(id, DocumentState::Queued)
            })
            .await;
        }
        Ok(Ok(Some(Failed::Parked))) => {
            let store = Arc::clone(&state.store);
            let error =
                match tokio::task::spawn_blocking(move || store.user(user).document(id)).await {
                    Ok(Ok(Some(doc))) => doc.error,
                    _ => None,
                };
            let (code, message) =
                error.unwrap_or_else(|| ("failed".into(), "processing failed repeatedly".into()));
            state.activity.failed(user);
            state.events.finished(id);
            state.events.publish(user, Event::Failed { id, error: ErrorBody { code, message } });
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            tracing::warn!(document = id.0, error = %e, "lease lost; another worker has the job")
        }
        Err(e) => tracing::error!(error = %e, "queue update failed"),
    }
}

enum Outcome {
    Done,
    Retry(String),
}

async fn work(state: &AppState, lease: &Lease) -> Outcome {
    let (user, id) = (lease.user, lease.document);
    let _busy = state.activity.busy(user);
    let store = Arc::clone(&state.store);
    let found = tokio::task::spawn_blocking(move || {
        let doc = store.user(user).document(id)?;
        let was_available = store.user(user).rag_status()?.available;
        if doc.is_some() {
            store.user(user).set_state(id, DocumentState::Processing)?;
        }
        Ok::<_, ragmill_store::StoreError>((doc, was_available))
    })
    .await;
    let (doc, was_available) = match found {
        Ok(Ok((Some(doc), available))) => (doc, available),
        Ok(Ok((None, _))) => return Outcome::Done, // deleted meanwhile
        Ok(Err(e)) => return Outcome::Retry(e.to_string()),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let Ok(hash) = ragmill_core::ContentHash::from_hex(&doc.content_hash) else {
        return Outcome::Retry(format!("document {} has a corrupt content hash", id.0));
    };
    let input = Input {
        name: doc.name.clone(),
        source: Source::Path(state.blobs.path(&hash)),
        document: Some(id),
    };
    let events = &state.events;
    let report = move |p: Progress| {
        if !p.stage.is_final() {
            events.progress(user, id, Live { stage: p.stage, done: p.done, total: p.total });
        }
    };
    state.events.progress(user, id, Live { stage: Stage::Extracting, done: 0, total: 1 });
    match state.pipeline.ingest_one(user, input, &report).await {
        Ok(ok) => {
            state.metrics.document_done(&ok);
            state.activity.done(user, &ok);
            state.events.finished(id);
            state.events.publish(user, Event::Ready { id, chunks: ok.chunks });
            if !was_available {
                state.events.publish(user, Event::RagAvailable);
            }
            Outcome::Done
        }
        Err(e) if e.code == "document_deleted" => {
            state.events.finished(id); // the user deleted it meanwhile: nothing to report
            Outcome::Done
        }
        Err(e) if RETRYABLE.contains(&e.code.as_str()) => {
            state.metrics.document_failed(&e);
            Outcome::Retry(e.message)
        }
        Err(e) => {
            state.metrics.document_failed(&e);
            state.activity.failed(user);
            state.events.finished(id);
            state.events.publish(
                user,
                Event::Failed { id, error: ErrorBody { code: e.code, message: e.message } },
            );
            Outcome::Done
        }
    }
}
