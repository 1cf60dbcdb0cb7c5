//! `ragmill models fetch|verify`.

use anyhow::{Context, Result, bail};
use ragmill_core::{Embedder, cosine};
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{Global, ModelsCommand};
use crate::commands::print_json;

#[derive(serde::Deserialize)]
struct Reference {
    items: Vec<Item>,
}

#[derive(serde::Deserialize)]
struct Item {
    text: String,
    embedding: Vec<f32>,
}

pub async fn run(g: &Global, cmd: ModelsCommand) -> Result<Status> {
    match cmd {
        ModelsCommand::Fetch { repo, revision } => {
            let dest = g.model_dir.clone();
            let (r, v) = (repo.clone(), revision.clone());
            tokio::task::spawn_blocking(move || ragmill_embed::fetch_from_hub(&r, &v, &dest))
                .await??;
            if !g.json {
                println!("fetched {repo}@{revision} into {}", g.model_dir.display());
            }
            verify(g, repo.ends_with("all-MiniLM-L6-v2")).await
        }
        ModelsCommand::Verify { no_reference } => verify(g, !no_reference).await,
    }
}

/// Loads the model, embeds reference texts and compares with all-MiniLM-L6-v2's reference
/// vectors (sentence-transformers on PyTorch) when `reference` is set.
async fn verify(g: &Global, reference: bool) -> Result<Status> {
    let embedder = app::embedder(g, 8)?;
    let refs: Reference =
        serde_json::from_str(ragmill_embed::MINILM_REFERENCE_JSON).context("built-in reference")?;
    let texts: Vec<String> = refs.items.iter().map(|i| i.text.clone()).collect();
    let vectors = embedder.embed(texts).await?;
    let info = embedder.info();
    let worst = if reference {
        Some(
            refs.items
                .iter()
                .zip(&vectors)
                .map(|(i, v)| cosine(&i.embedding, v))
                .fold(f32::MAX, f32::min),
        )
    } else {
        None
    };
    let ok = worst.is_none_or(|c| c >= 0.999);
    if g.json {
        print_json(
            &json!({"model": info.id, "dimensions": info.dimensions, "max_tokens": info.max_tokens, "reference_cosine": worst, "ok": ok}),
        );
    } else {
        println!(
            "model {} in {}: {} dimensions, {} tokens max",
            info.id,
            g.model_dir.display(),
            info.dimensions,
            info.max_tokens
        );
        match worst {
            Some(c) if ok => {
                println!("matches the all-MiniLM-L6-v2 reference vectors (worst cosine {c:.5})")
            }
            Some(c) => println!(
                "does NOT match the all-MiniLM-L6-v2 reference (worst cosine {c:.5}); use --no-reference for other models"
            ),
            None => println!("loads and embeds; reference comparison skipped"),
        }
    }
    if !ok {
        bail!("model verification failed");
    }
    Ok(Status::Ok)
}
