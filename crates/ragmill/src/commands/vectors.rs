//! `ragmill vectors sync|migrate`: an external vector store (ChromaDB) kept in step with the
//! data directory, which is the truth and holds every vector itself, so nothing is ever
//! re-embedded.
//!
//! - `sync` rebuilds collections from the data directory (what is missing or incomplete is
//!   written, what it no longer names is forgotten).
//! - `migrate --to chroma` copies every document ChromaDB lacks (all of them the first time;
//!   only those changed meanwhile when coming back) and checks every collection. A running
//!   embedded server may keep serving meanwhile; restarted with `--vectors chroma`, its
//!   sweeper copies what it stored in between.
//! - `migrate --to embedded` checks that the data directory has every searchable vector (it
//!   always does) and leaves ChromaDB's collections as they are: the store's bookkeeping keeps
//!   track of what changes meanwhile, so coming back copies only that.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ragmill_core::UserId;
use ragmill_pipeline::{SyncReport, Vectors};
use ragmill_store::Store;
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{Global, VectorArgs, VectorBackend, VectorsCommand};
use crate::commands::print_json;

pub async fn run(g: &Global, cmd: VectorsCommand) -> Result<Status> {
    let store = app::store(g)?;
    match cmd {
        VectorsCommand::Sync { user, vectors } => {
            let users = match user {
                Some(name) => match store.find_user(&name)? {
                    Some(u) => vec![u],
                    None => bail!("no user named {name:?} in {}", g.data_dir.display()),
                },
                None => store.user_ids()?,
            };
            let started = Instant::now();
            let sync = connect(&store, &vectors).await?;
            let mut report = SyncReport::default();
            for &u in &users {
                report +=
                    sync.sync_user(u).await.with_context(|| format!("syncing user {}", u.0))?;
            }
            report += sync.catch_up().await.context("forgetting stale vectors")?;
            finish(g, "sync", &users, report, started, &vectors);
        }
        VectorsCommand::Migrate { to: VectorBackend::Chroma, vectors } => {
            let started = Instant::now();
            let sync = connect(&store, &vectors).await?;
            let mut report = sync.catch_up().await.context("copying vectors to ChromaDB")?;
            let users = store.user_ids()?;
            for &u in &users {
                report +=
                    sync.sync_user(u).await.with_context(|| format!("checking user {}", u.0))?;
            }
            finish(g, "migrate", &users, report, started, &vectors);
            if !g.json {
                println!(
                    "Restart the server with --vectors chroma --chroma-url {} (or [vectors] backend = \"chroma\"); \
                     it copies anything stored in between on start-up.",
                    vectors.chroma_url
                );
            }
        }
        VectorsCommand::Migrate { to: VectorBackend::Embedded, .. } => {
            let (documents, chunks) = {
                let s = Arc::clone(&store);
                tokio::task::spawn_blocking(move || s.check_vectors()).await??
            };
            if g.json {
                print_json(&json!({"to": "embedded", "documents": documents, "chunks": chunks}));
            } else {
                println!(
                    "The data directory holds the vectors of all {documents} searchable documents \
                     ({chunks} chunks): nothing to copy. Restart the server with --vectors embedded. \
                     ChromaDB's collections are left as they are and kept track of: coming back with \
                     `ragmill vectors migrate --to chroma` copies only what changed meanwhile."
                );
            }
        }
    }
    Ok(Status::Ok)
}

async fn connect(store: &Arc<Store>, args: &VectorArgs) -> Result<Vectors> {
    let index = app::chroma(args).await?;
    Ok(Vectors::new(Arc::clone(store), index))
}

fn finish(
    g: &Global,
    what: &str,
    users: &[UserId],
    r: SyncReport,
    started: Instant,
    args: &VectorArgs,
) {
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        print_json(&json!({
            "command": what, "users": users.len(), "written": r.written, "chunks": r.chunks,
            "retired": r.retired, "seconds": secs, "chroma_url": args.chroma_url,
        }));
    } else {
        println!(
            "{what}: {} users; wrote {} documents ({} chunks), forgot {} stale sets, in {secs:.1} s (ChromaDB at {})",
            users.len(),
            r.written,
            r.chunks,
            r.retired,
            args.chroma_url
        );
    }
}
