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
use ragmill_core::{
    Failed, JobQueue, JobSource, Lease, Live, Progress, QueueError, Roster, Stage, WorkerStatus,
};
use ragmill_pipeline::{IngestError, Ingested, Input, Pipeline, Source};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::activity::Activity;
use crate::events::Reporter;
use crate::history::now_ms;
use crate::metrics::Metrics;
use crate::roster::Tally;

/// Everything a worker works with; the serving process builds it from its `AppState`
/// (`AppState::worker_context`), a `ragmill worker` from Redis and the main server.
#[derive(Clone)]
pub struct WorkerContext {
    /// Where jobs come from.
    pub queue: Arc<dyn JobQueue>,
    /// Documents' turns, originals, and jobs given up on.
    pub jobs: Arc<dyn JobSource>,
    /// Extraction, chunking, embedding, and the catalog results go to.
    pub pipeline: Pipeline,
    /// Progress and outcomes, to users' streams.
    pub reporter: Reporter,
    /// Notified when a job is queued in this process.
    pub wake: Arc<Notify>,
    /// Operational metrics.
    pub metrics: Arc<Metrics>,
    /// Workers busy now, per user and for the service (what is done is in the store's
    /// processing log).
    pub activity: Arc<Activity>,
    /// Where this process reports its workers, for the dashboard.
    pub roster: Arc<dyn Roster>,
    /// How many workers to run.
    pub workers: usize,
}

/// Running workers; [`Workers::shutdown`] stops them.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Starts `state.workers` workers (none for 0) on the current runtime, named `<host>:<pid>:<i>` (the
/// names the queue records as lease holders).
pub fn spawn_workers(state: &WorkerContext) -> Workers {
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let tally = Arc::new(Tally::default());
    for i in 0..state.workers {
        let name = format!("{}:{i}", worker_prefix());
        tasks.spawn(run(state.clone(), name, Arc::clone(&tally), rx.clone()));
    }
    if state.workers > 0 {
        tasks.spawn(report(Arc::clone(&state.roster), tally, state.workers, rx));
    }
    Workers { stop, tasks }
}

/// Reports this process's workers to the roster every 2 s until stopped.
async fn report(
    roster: Arc<dyn Roster>,
    tally: Arc<Tally>,
    slots: usize,
    mut stop: watch::Receiver<bool>,
) {
    let (name, host, started_ms) = (worker_prefix(), host_name(), now_ms());
    loop {
        let (busy, jobs_done) = tally.read();
        roster.report(WorkerStatus {
            name: name.clone(),
            host: host.clone(),
            busy,
            slots: slots as u64,
            jobs_done,
            started_ms,
            last_seen_ms: now_ms(),
        });
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// `<host>:<pid>`: what this process's worker names start with.
pub fn worker_prefix() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// Whether worker `name` (`<host>:<pid>:<i>`, from [`worker_prefix`]) ran on this machine in
/// another process that is gone: its leases are nobody's now. Workers of other machines are
/// never judged from here.
pub fn gone_from_here(name: &str) -> bool {
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    gone(name, &host_name(), std::process::id(), alive)
}

fn gone(worker: &str, host: &str, me: u32, alive: impl Fn(u32) -> bool) -> bool {
    let mut parts = worker.rsplitn(3, ':');
    let (_, pid, their_host) = (parts.next(), parts.next(), parts.next());
    let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else { return false };
    their_host == Some(host) && pid != me && !alive(pid)
}

/// This machine's name (`/etc/hostname`, else `HOSTNAME`, else `localhost`).
fn host_name() -> String {
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

async fn run(
    state: WorkerContext,
    name: String,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
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
                () = tokio::time::sleep(state.queue.idle_poll()) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let _tally = tally.start();
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
    /// Ready (or unchanged); whether the collection was searchable before.
    Done(Ingested, bool),
    /// Nothing to report: the document was deleted meanwhile.
    Gone,
    /// Worth another attempt.
    Retry(IngestError),
    /// The vector index is down: wait for it (the attempt does not count).
    Wait(IngestError),
    /// The document was cancelled, deleted or queued again while it was processed: the work
    /// was dropped (nothing of it was written) and the job ends.
    Unwanted,
    /// Failed for good; already recorded on the document.
    Failed(IngestError),
    /// Processing panicked; not yet recorded.
    Crashed(String),
}

/// Processes one leased job to an outcome the queue understands.
async fn process(state: &WorkerContext, lease: &Lease) {
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
    // While the vector index is down the job keeps its lease and tries again with back-off,
    // uncounted: its document says what it waits for, and nothing is lost however long it
    // lasts (a shutdown hands the job back, uncounted too).
    let mut delay = Duration::from_secs(1);
    let outcome = loop {
        let outcome = match AssertUnwindSafe(work(state, lease)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => Outcome::Crashed(panic_message(panic.as_ref())),
        };
        let Outcome::Wait(e) = outcome else { break outcome };
        tracing::warn!(document = id.0, error = %e, ?delay, "waiting for the vector index");
        state.reporter.progress(user, id, Live { stage: Stage::Waiting, done: 0, total: 1 });
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
        if let Ok(false) = state.jobs.wanted(user, id).await {
            break Outcome::Unwanted;
        }
    };
    drop(heartbeat);

    let reporter = &state.reporter;
    let ended = match outcome {
        Outcome::Done(ok, was_available) => {
            state.metrics.document_done(&ok);
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
        Outcome::Unwanted => {
            tracing::info!(document = id.0, "document no longer wanted; its work was dropped");
            state.queue.complete(lease).await
        }
        // Cancelled (or deleted) while it failed: not worth another attempt.
        Outcome::Retry(_) if matches!(state.jobs.wanted(user, id).await, Ok(false)) => {
            state.queue.complete(lease).await
        }
        Outcome::Failed(e) => {
            state.metrics.document_failed(e.code());
            reporter.failed(user, id, e.code(), &e.to_string());
            state.queue.complete(lease).await
        }
        Outcome::Crashed(message) => {
            tracing::error!(document = id.0, panic = message, "processing panicked");
            let e = IngestError::Crashed(message);
            state.metrics.document_failed(e.code());
            if let Err(err) = state.jobs.give_up(user, id, e.code(), &e.to_string()).await {
                tracing::error!(document = id.0, error = %err, "cannot record the crash");
            }
            state.queue.complete(lease).await
        }
        // (The loop above waits these out; were one to get here, the job goes back uncounted.)
        Outcome::Wait(_) => state.queue.release(lease).await,
        Outcome::Retry(e) => {
            state.metrics.document_failed(e.code());
            match state.queue.fail(lease, &e.to_string()).await {
                Ok(Failed::Retrying { attempt }) => {
                    tracing::warn!(document = id.0, attempt, error = %e, "job failed, will retry");
                    if let Err(err) = state.jobs.requeued(user, id).await {
                        tracing::warn!(document = id.0, error = %err, "cannot mark it queued");
                    }
                    Ok(())
                }
                Ok(Failed::Parked) => {
                    let message = format!("gave up after repeated failures: {e}");
                    if let Err(err) = state.jobs.give_up(user, id, e.code(), &message).await {
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

async fn work(state: &WorkerContext, lease: &Lease) -> Outcome {
    let (user, id) = (lease.user, lease.document);
    let _busy = state.activity.busy(user);
    let begun = match state.jobs.begin(user, id).await {
        Ok(Some(begun)) => begun,
        Ok(None) => return Outcome::Gone,
        Err(e) => return Outcome::Retry(e.into()),
    };
    until_unwanted(state, user, id, process_begun(state, user, id, begun)).await
}

/// How often a worker asks whether its document is still wanted.
const WANTED_EVERY: Duration = Duration::from_millis(400);

/// Runs `job` until it ends, or until its document is no longer wanted (cancelled, deleted,
/// queued again): then the job is dropped, which stops it at once (its texts still queued for
/// embedding are dropped by the batcher, and nothing of it was written: a version is stored
/// in one transaction at the end).
async fn until_unwanted(
    state: &WorkerContext,
    user: ragmill_core::UserId,
    id: ragmill_core::DocumentId,
    job: impl Future<Output = Outcome>,
) -> Outcome {
    let unwanted = async {
        loop {
            tokio::time::sleep(WANTED_EVERY).await;
            if let Ok(false) = state.jobs.wanted(user, id).await {
                return;
            }
        }
    };
    tokio::select! {
        outcome = job => outcome,
        () = unwanted => Outcome::Unwanted,
    }
}

/// The work on a begun document.
async fn process_begun(
    state: &WorkerContext,
    user: ragmill_core::UserId,
    id: ragmill_core::DocumentId,
    begun: ragmill_core::Begun,
) -> Outcome {
    let reporter = &state.reporter;
    reporter.progress(user, id, Live { stage: Stage::Extracting, done: 0, total: 1 });
    let limit = state.pipeline.max_input_bytes();
    let bytes = match state.jobs.original(begun.content_hash, limit).await {
        Ok(bytes) => bytes,
        Err(e) => return Outcome::Retry(e.into()),
    };
    let input = Input { name: begun.name, source: Source::Bytes(bytes), document: Some(id) };
    let report = move |p: Progress| {
        if !p.stage.is_final() {
            reporter.progress(user, id, Live { stage: p.stage, done: p.done, total: p.total });
        }
    };
    match state.pipeline.ingest_one(user, input, &report).await {
        Ok(ok) => Outcome::Done(ok, begun.was_available),
        Err(IngestError::DocumentDeleted) => Outcome::Gone,
        Err(e @ IngestError::IndexUnavailable(_)) => Outcome::Wait(e),
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

#[cfg(test)]
mod tests {
    use super::gone;

    #[test]
    fn only_this_hosts_dead_processes_are_taken_for_gone() {
        let dead = |_| false;
        assert!(gone("box:41:0", "box", 7, dead));
        assert!(!gone("box:41:0", "box", 7, |_| true), "alive");
        assert!(!gone("box:7:1", "box", 7, dead), "this very process");
        assert!(!gone("other:41:0", "box", 7, dead), "another machine");
        assert!(!gone("garbage", "box", 7, dead));
        assert!(gone("my:host:41:2", "my:host", 7, dead), "colons in the host name");
    }
}
