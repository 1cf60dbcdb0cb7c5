//! `ragmill serve`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ragmill_queue::{EmbeddedQueue, QueueConfig, SqliteQueue};
use ragmill_server::{AppState, Blobs, Seams, ServerConfig};

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
    let store = app::search_store(g, &args.retrieval)?;
    let pipeline = app::pipeline(g, Arc::clone(&store), args.chunking).await?;
    let pipeline = app::searching(pipeline, &args.retrieval)?;
    let pipeline = app::with_vectors(pipeline, &args.vectors).await?;
    let vectors_line = match pipeline.vectors() {
        Some(_) => format!("vectors: ChromaDB at {}", args.vectors.chroma_url),
        None => "vectors: embedded (the data directory)".to_owned(),
    };
    let queue = SqliteQueue::open(
        store.path(),
        QueueConfig {
            lease: Duration::from_secs(args.lease_secs.max(1)),
            ..QueueConfig::default()
        },
    )
    .context("opening the job queue")?;
    let blobs = Blobs::new(&g.data_dir)
        .with_context(|| format!("preparing {}/blobs", g.data_dir.display()))?;
    let described = settings(g, &args);
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        max_upload_bytes: args.max_upload_mb.saturating_mul(1 << 20),
        allowed_origins: args.allowed_origins,
        public_url: args.public_url,
        settings: described,
        max_files_per_upload: args.max_files_per_upload.max(1),
        max_pending_per_user: args.max_pending.max(1),
        rate_limit: args.rate_limit,
        rate_burst: args.rate_burst,
        // With Redis, remote workers may do all the work (`--workers 0`); alone, someone must.
        workers: match args.cluster.queue_url {
            Some(_) => args.workers.unwrap_or(defaults.workers),
            None => args.workers.unwrap_or(defaults.workers).max(1),
        },
        chat,
        event_secret: Some(event_secret(&g.data_dir)?),
        reconcile_every: Duration::from_secs(args.reconcile_secs.max(1)),
        worker_key_hash: args
            .cluster
            .worker_key
            .as_deref()
            .map(|k| *blake3::hash(k.as_bytes()).as_bytes()),
        ..defaults
    };
    recover_leases(&queue);
    let seams = match &args.cluster.queue_url {
        Some(url) => redis_seams(url, &args.cluster.redis_prefix, args.lease_secs).await?,
        None => Seams::embedded(Arc::new(EmbeddedQueue::new(queue))),
    };
    let state = AppState::new(store, seams, pipeline, blobs, config);
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    // One write: a caller that reads the first line and closes the pipe must not make a
    // second write fail (println! would panic on the broken pipe).
    let banner = format!("ragmill listening on http://{addr}\n{chat_line}\n{vectors_line}\n");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(banner.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    ragmill_server::serve(listener, state, shutdown_signal(), Duration::from_secs(30)).await?;
    Ok(Status::Ok)
}

/// The queue, event bus and live progress on the Redis at `url`, trying for a minute while it
/// does not answer (in a compose file, Redis may start after ragmill).
pub(crate) async fn redis_seams(url: &str, prefix: &str, lease_secs: u64) -> Result<Seams> {
    let config = ragmill_redis::RedisConfig {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        lease: Duration::from_secs(lease_secs.max(1)),
        ..ragmill_redis::RedisConfig::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut wait = Duration::from_millis(200);
    let seams = loop {
        match ragmill_redis::connect(config.clone()).await {
            Ok(seams) => break seams,
            Err(ragmill_redis::ConnectError::Unavailable(e))
                if std::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = e, ?wait, "Redis does not answer yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to the queue at {url}")),
        }
    };
    Ok(Seams { queue: seams.queue, events: seams.bus, live: seams.live, roster: seams.roster })
}

/// The secret event tokens are signed with, kept in `<data dir>/event-tokens.key` (created
/// once, readable by its owner only), so a restarted server and any API server over the same
/// data directory accept the tokens it issued.
fn event_secret(data_dir: &std::path::Path) -> Result<[u8; 32]> {
    let path = data_dir.join("event-tokens.key");
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    let tmp = data_dir.join("event-tokens.key.tmp");
    {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(&secret)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// Hands back, uncounted, the jobs leased by this machine's earlier `ragmill serve` processes
/// that are no longer running (killed, or crashed): they are not the documents' fault, and their
/// leases would otherwise hold them until they run out.
fn recover_leases(queue: &SqliteQueue) {
    let holders = match queue.lease_holders() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list lease holders");
            return;
        }
    };
    for worker in holders {
        if ragmill_server::gone_from_here(&worker)
            && let Err(e) = queue.release_held_by(&worker)
        {
            tracing::warn!(worker, error = %e, "cannot take back a dead worker's jobs");
        }
    }
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

/// How this service is assembled, for administrators (`GET /v1/admin/settings`): no key, no
/// token, no password in a URL.
fn settings(g: &Global, args: &ServeArgs) -> serde_json::Value {
    let queue = match &args.cluster.queue_url {
        Some(url) => {
            serde_json::json!({"kind": "redis", "url": redact(url), "prefix": args.cluster.redis_prefix})
        }
        None => serde_json::json!({"kind": "embedded (SQLite, in the data directory)"}),
    };
    let embedding = match g.embed_backend {
        crate::cli::EmbedBackend::Local => serde_json::json!({
            "backend": "local", "model_dir": g.model_dir, "precision": format!("{:?}", g.precision).to_lowercase(),
            "engine": format!("{:?}", g.engine).to_lowercase(),
        }),
        backend => serde_json::json!({
            "backend": format!("{backend:?}").to_lowercase(), "model": g.embed_model,
            "endpoints": g.embed_endpoints.iter().map(|u| redact(u)).collect::<Vec<_>>(),
        }),
    };
    let vectors = match args.vectors.vectors {
        crate::cli::VectorBackend::Embedded => serde_json::json!({"backend": "embedded"}),
        crate::cli::VectorBackend::Chroma => serde_json::json!({
            "backend": "chroma", "url": redact(&args.vectors.chroma_url),
            "tenant": args.vectors.chroma_tenant, "database": args.vectors.chroma_database,
        }),
    };
    serde_json::json!({
        "data_dir": g.data_dir, "queue": queue, "embedding": embedding, "vectors_store": vectors,
        "lease_secs": args.lease_secs, "reconcile_secs": args.reconcile_secs,
    })
}

/// `url` without the user and password it may carry (`redis://:secret@host` → `redis://***@host`).
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod settings_tests {
    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(super::redact("redis://:s3cret@redis:6379/0"), "redis://***@redis:6379/0");
        assert_eq!(super::redact("http://user:pw@h/p@x"), "http://***@h/p@x");
        assert_eq!(super::redact("http://gpu-1:11434"), "http://gpu-1:11434");
    }
}
