//! `ragmill worker`: process the documents of a main server's Redis queue, on any machine.
//!
//! Jobs, events and live progress go through Redis; originals come from the main server and
//! results go back to it over its `/internal/v1` routes, authenticated with the worker key
//! (no shared filesystem). Embedding is local or through `--embed-endpoint` pools, as for
//! `serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ragmill_core::{Catalog, JobSource};
use ragmill_remote::MainServer;
use ragmill_server::{Reporter, WorkerContext};
use tokio::sync::Notify;

use crate::Status;
use crate::app;
use crate::cli::{Global, WorkerArgs};
use crate::commands::serve::{redis_seams, shutdown_signal};

pub async fn run(g: &Global, args: WorkerArgs) -> Result<Status> {
    let Some(url) = args.cluster.queue_url.as_deref() else {
        bail!("a worker needs the queue: --queue-url redis://HOST:6379/0 (RAGMILL_QUEUE_URL)");
    };
    let Some(server) = args.server.as_deref() else {
        bail!("a worker needs the main server: --server http://HOST:8080 (RAGMILL_SERVER)");
    };
    let Some(key) = args.cluster.worker_key.as_deref() else {
        bail!("a worker needs the cluster's worker key: --worker-key (RAGMILL_WORKER_KEY)");
    };
    let main = Arc::new(MainServer::new(server, key).context("setting up the HTTP client")?);
    let seams = redis_seams(url, &args.cluster.redis_prefix, args.lease_secs).await?;
    let pipeline =
        app::ingesting_pipeline(g, Arc::clone(&main) as Arc<dyn Catalog>, args.chunking).await?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let metrics = Arc::new(ragmill_server::metrics::Metrics::new());
    let pipeline = pipeline.with_batch_observer(metrics.batch_observer());
    let context = WorkerContext {
        queue: seams.queue,
        jobs: main as Arc<dyn JobSource>,
        pipeline,
        reporter: Reporter::new(seams.events, seams.live),
        wake: Arc::new(Notify::new()),
        metrics,
        activity: Arc::default(),
        roster: seams.roster,
        workers,
    };
    let running = ragmill_server::spawn_workers(&context);
    println!(
        "ragmill worker {}: {workers} workers on {url}, main server {server}",
        ragmill_server::worker_prefix()
    );
    shutdown_signal().await;
    running.shutdown(Duration::from_secs(30)).await;
    Ok(Status::Ok)
}
