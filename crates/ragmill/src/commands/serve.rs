//! `ragmill serve`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ragmill_queue::{JobQueue, QueueConfig};
use ragmill_server::{AppState, Blobs, ServerConfig};

use crate::Status;
use crate::app;
use crate::cli::{Global, ServeArgs};

pub async fn run(g: &Global, args: ServeArgs) -> Result<Status> {
    let chat = app::chat(&args)?;
    let chat_line = match &chat {
        Some(c) => format!("chat: {} model {} at {}", c.backend(), c.model(), c.url()),
        None => "chat: no chat model configured (--chat-backend); POST /v1/chat answers 503, \
                 search works"
            .to_owned(),
    };
    let store = app::store(g)?;
    let pipeline = app::pipeline(g, Arc::clone(&store), args.chunking).await?;
    let queue = JobQueue::open(
        store.path(),
        QueueConfig {
            lease: Duration::from_secs(args.lease_secs.max(1)),
            ..QueueConfig::default()
        },
    )
    .context("opening the job queue")?;
    let blobs = Blobs::new(&g.data_dir)
        .with_context(|| format!("preparing {}/blobs", g.data_dir.display()))?;
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        max_upload_bytes: args.max_upload_mb.saturating_mul(1 << 20),
        allowed_origins: args.allowed_origins,
        workers: args.workers.unwrap_or(defaults.workers).max(1),
        chat,
        ..defaults
    };
    let state = AppState::new(store, Arc::new(queue), pipeline, blobs, config);
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    // One write: a caller that reads the first line and closes the pipe must not make a
    // second write fail (println! would panic on the broken pipe).
    let banner = format!("ragmill listening on http://{addr}\n{chat_line}\n");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(banner.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    ragmill_server::serve(listener, state, shutdown_signal(), Duration::from_secs(30)).await?;
    Ok(Status::Ok)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: no new connections, workers finishing");
}
