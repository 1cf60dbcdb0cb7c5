//! `ragmill search`.

use anyhow::{Context, Result, bail};
use serde_json::json;

use ragmill_pipeline::SearchOptions;

use crate::Status;
use crate::app;
use crate::cli::{Global, SearchArgs};
use crate::commands::print_json;

pub async fn run(g: &Global, args: SearchArgs) -> Result<Status> {
    let query = args.query.join(" ");
    if query.trim().is_empty() {
        bail!("the query is empty");
    }
    let store = app::search_store(g, &args.retrieval)?;
    let Some(user) = store.find_user(&args.user)? else {
        bail!(
            "no user named {:?} in {} (ingest something for them first)",
            args.user,
            g.data_dir.display()
        );
    };
    let pipeline = app::pipeline(
        g,
        store,
        crate::cli::ChunkArgs { chunk_tokens: 256, chunk_overlap: 0, parallel: 1, batch: 1 },
    )
    .await?;
    let pipeline = app::searching(pipeline, &args.retrieval)?;
    let pipeline = app::with_vectors(pipeline, &args.vectors).await?;
    let mode = args.retrieval.search_mode;
    let options = SearchOptions { top_k: args.top_k, mode: Some(mode), documents: None };
    let hits = pipeline.search(user, &query, options).await.context("searching")?;
    if g.json {
        let results: Vec<_> = hits
            .iter()
            .map(|h| json!({"document": h.document, "chunk": h.chunk, "score": h.score, "scores": h.scores, "text": h.text, "page": h.page}))
            .collect();
        print_json(&json!({ "mode": mode, "results": results }));
        return Ok(Status::Ok);
    }
    if hits.is_empty() {
        println!("No results: {}'s collection is empty.", args.user);
    }
    for (i, h) in hits.iter().enumerate() {
        let page = h.page.map(|p| format!(", page {p}")).unwrap_or_default();
        let section = if h.heading_path.is_empty() {
            String::new()
        } else {
            format!(" › {}", h.heading_path.join(" › "))
        };
        println!("{}. {:.3}  {} (chunk {}{page}){section}", i + 1, h.score, h.document, h.chunk);
        println!("   {}\n", snippet(&h.text, 240));
    }
    Ok(Status::Ok)
}

/// The first `max` characters of `text` on one line.
fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}
