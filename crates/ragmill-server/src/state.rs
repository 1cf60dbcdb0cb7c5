//! Everything a request handler or a worker needs, shared.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use ragmill_core::{EventBus, JobQueue, LiveProgress, Roster};
use ragmill_pipeline::Pipeline;
use ragmill_store::Store;
use tokio::sync::Notify;

use crate::activity::Activity;
use crate::auth::EventTokens;
use crate::blobs::Blobs;
use crate::events::{LocalBus, LocalLive, Reporter};
use crate::history::History;
use crate::jobs::LocalJobs;
use crate::ledger::Ledger;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::roster::LocalRoster;
use crate::worker::WorkerContext;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest file accepted in an upload; enforced while streaming.
    pub max_upload_bytes: u64,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Origins allowed to open the event WebSocket (`*` allows any). Requests without an
    /// Origin header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Background workers.
    pub workers: usize,
    /// The chat model behind `POST /v1/chat` (none: chat answers 503, search still works).
    pub chat: Option<ragmill_remote::chat::ChatClient>,
    /// BLAKE3 of the key cluster workers present on `/internal/v1` (none: those routes are
    /// off).
    pub worker_key_hash: Option<[u8; 32]>,
    /// The secret event tokens are signed with; API servers sharing it accept each other's
    /// tokens (none: a random one, valid in this process only).
    pub event_secret: Option<[u8; 32]>,
    /// How often the ledger looks for documents left without a job.
    pub reconcile_every: std::time::Duration,
    /// Most `file` parts in one upload request (beyond: 413 `too_many_files`).
    pub max_files_per_upload: usize,
    /// Most documents one user may have queued or processing (beyond: 429
    /// `too_many_pending`): one user cannot fill the queue and the disk for everyone.
    pub max_pending_per_user: u64,
    /// Requests a second one API key may make on `/v1`, sustained (0: no limit).
    pub rate_limit: f64,
    /// Requests one API key may make at once before the rate applies.
    pub rate_burst: u32,
    /// The URL browsers reach this server by, when it is not its own address (behind a proxy,
    /// or by a DNS name): its origin may open the event WebSocket.
    pub public_url: Option<String>,
    /// A description of how the service was assembled, without secrets (the queue, the
    /// embedding backend and pool), shown to administrators by `GET /v1/admin/settings`.
    pub settings: serde_json::Value,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            max_json_bytes: 1 << 20,
            allowed_origins: Vec::new(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chat: None,
            worker_key_hash: None,
            event_secret: None,
            reconcile_every: crate::ledger::Ledger::RECONCILE_EVERY,
            max_files_per_upload: 1000,
            max_pending_per_user: 10_000,
            rate_limit: 100.0,
            rate_burst: 500,
            public_url: None,
            settings: serde_json::Value::Null,
        }
    }
}

/// The parts a deployment swaps: where jobs wait, how events travel, where live progress is
/// kept. [`Seams::embedded`] is one process on one SQLite file; `ragmill-redis` provides the
/// others for several machines.
#[derive(Clone)]
pub struct Seams {
    /// Durable jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Events from workers to users' streams.
    pub events: Arc<dyn EventBus>,
    /// Progress of documents in flight.
    pub live: Arc<dyn LiveProgress>,
    /// Which worker processes are alive.
    pub roster: Arc<dyn Roster>,
}

impl Seams {
    /// `queue`, with events, live progress and the roster kept in this process.
    pub fn embedded(queue: Arc<dyn JobQueue>) -> Self {
        Self {
            queue,
            events: Arc::new(LocalBus::default()),
            live: Arc::new(LocalLive::default()),
            roster: Arc::new(LocalRoster::default()),
        }
    }
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    /// Users, documents, chunks.
    pub store: Arc<Store>,
    /// Durable jobs.
    pub queue: Arc<dyn JobQueue>,
    /// Extraction, chunking, embedding.
    pub pipeline: Pipeline,
    /// Live events, to subscribe to (workers publish through `reporter`).
    pub events: Arc<dyn EventBus>,
    /// Progress of documents in flight, for `GET /v1/documents`.
    pub live: Arc<dyn LiveProgress>,
    /// The cluster's worker processes, for the dashboard.
    pub roster: Arc<dyn Roster>,
    /// What workers report through (throttled).
    pub reporter: Reporter,
    /// The one owner of a document's state paired with its job.
    pub ledger: Ledger,
    /// Uploaded originals.
    pub blobs: Blobs,
    /// Event-stream tokens for browsers.
    pub tokens: EventTokens,
    /// Wakes idle workers when a job is enqueued.
    pub wake: Arc<Notify>,
    /// Settings.
    pub config: ServerConfig,
    /// Operational metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Workers busy now, per user and for the service (`GET /v1/stats`).
    pub activity: Arc<Activity>,
    /// How workers (here, and remote ones through `/internal`) begin and end jobs.
    pub jobs: Arc<LocalJobs>,
    /// The service's figures of the last minutes (`GET /v1/stats/history`).
    pub history: History,
    /// Token buckets per API key (none: no rate limit).
    pub limiter: Option<RateLimiter>,
    /// The address [`crate::serve`] listens on, once it does: the WebSocket's Origin check
    /// accepts this server's own names on this port.
    pub local_addr: OnceLock<SocketAddr>,
}

/// Who the serving process's own work is logged as in the store's processing log (its
/// workers' outcomes, and the failures its ledger records).
pub const ORIGIN: &str = "server";

impl AppState {
    /// Assembles the state; the pipeline's embedding batches are reported to its metrics.
    pub fn new(
        store: Arc<Store>,
        seams: Seams,
        pipeline: Pipeline,
        blobs: Blobs,
        config: ServerConfig,
    ) -> Self {
        let metrics = Metrics::new();
        let pipeline = pipeline.with_batch_observer(metrics.batch_observer()).with_origin(ORIGIN);
        let Seams { queue, events, live, roster } = seams;
        let reporter = Reporter::new(Arc::clone(&events), Arc::clone(&live));
        let wake = Arc::new(Notify::new());
        let ledger = Ledger::new(
            Arc::clone(&store),
            Arc::clone(&queue),
            reporter.clone(),
            Arc::clone(&wake),
        );
        let jobs = Arc::new(LocalJobs::new(Arc::clone(&store), blobs.clone(), ledger.clone()));
        Self(Arc::new(Inner {
            store,
            queue,
            pipeline,
            events,
            live,
            roster,
            reporter,
            ledger,
            blobs,
            tokens: config.event_secret.map_or_else(EventTokens::random, EventTokens::new),
            wake,
            limiter: RateLimiter::new(config.rate_limit, config.rate_burst),
            local_addr: OnceLock::new(),
            config,
            metrics: Arc::new(metrics),
            activity: Arc::new(Activity::default()),
            jobs,
            history: History::default(),
        }))
    }
}

impl AppState {
    /// What this process's workers work with: its own queue, store and event bus.
    pub fn worker_context(&self) -> WorkerContext {
        WorkerContext {
            queue: Arc::clone(&self.queue),
            jobs: Arc::clone(&self.jobs) as Arc<dyn ragmill_core::JobSource>,
            pipeline: self.pipeline.clone(),
            reporter: self.reporter.clone(),
            wake: Arc::clone(&self.wake),
            metrics: Arc::clone(&self.metrics),
            activity: Arc::clone(&self.activity),
            roster: Arc::clone(&self.roster),
            workers: self.config.workers,
        }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
