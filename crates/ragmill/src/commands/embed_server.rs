//! `ragmill embed-server`: the local model alone, over Ollama's and OpenAI's embedding APIs.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use ragmill_chunk::TokenCounter;
use ragmill_core::Embedder;
use ragmill_pipeline::BatchConfig;
use ragmill_server::embeddings::{self, CountTokens, EmbedAuth, EmbedOptions, ModelDetails};

use crate::Status;
use crate::app;
use crate::cli::{EmbedServerArgs, Global};
use crate::commands::serve::shutdown_signal;

pub async fn run(g: &Global, args: EmbedServerArgs) -> Result<Status> {
    let batch = args.batch.max(1);
    let embedder = app::embedder(g, batch)?;
    let info = embedder.info().clone();
    // The model's own tokenizer, padding and truncation cleared (`TokenCounter::new`), for the
    // batcher's token budget and the answers' token counts.
    let path = g.model_dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    let counter = TokenCounter::new(tokenizer);
    let count_tokens: CountTokens = Arc::new(move |text: &str| {
        counter.count_with_specials(text).unwrap_or_else(|_| text.len() / 4 + 2)
    });
    let options = EmbedOptions {
        auth: args.api_key.as_deref().map_or(EmbedAuth::Open, EmbedAuth::key),
        details: details(&g.model_dir.join("model.safetensors")),
        ..EmbedOptions::default()
    };
    let config = BatchConfig {
        max_batch: batch,
        max_tokens: batch * info.max_tokens,
        ..BatchConfig::default()
    };
    let router = embeddings::standalone(embedder, count_tokens, config, options);
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    println!("ragmill embed-server listening on http://{addr} (model {})", info.id);
    std::io::stdout().flush()?;
    embeddings::serve(listener, router, shutdown_signal()).await?;
    Ok(Status::Ok)
}

/// Size, modification time and parameter count of the weights, as far as they can be read.
fn details(weights: &Path) -> ModelDetails {
    let meta = std::fs::metadata(weights).ok();
    ModelDetails {
        size_bytes: meta.as_ref().map_or(0, |m| m.len()),
        parameters: parameters(weights)
            .inspect_err(|e| tracing::debug!("cannot count parameters: {e:#}"))
            .ok(),
        modified: meta.and_then(|m| m.modified().ok()),
    }
}

/// Parameters in a safetensors file, from its header (8-byte little-endian length, then JSON
/// mapping each tensor to its `shape`).
fn parameters(weights: &Path) -> Result<u64> {
    let mut file = std::fs::File::open(weights)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    anyhow::ensure!(len <= 100 << 20, "header of {len} bytes");
    let mut header = Vec::new();
    file.take(len).read_to_end(&mut header)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)?;
    Ok(header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| {
            let shape = tensor["shape"].as_array().cloned().unwrap_or_default();
            shape.iter().map(|d| d.as_u64().unwrap_or(0)).product::<u64>()
        })
        .sum())
}
