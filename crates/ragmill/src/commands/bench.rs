//! `ragmill bench embed`: throughput of the local embedder.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use ragmill_core::Embedder;
use serde_json::json;
use tokenizers::Tokenizer;

use crate::Status;
use crate::app;
use crate::cli::{BenchEmbedArgs, Global};
use crate::commands::print_json;

pub async fn embed(g: &Global, args: BenchEmbedArgs) -> Result<Status> {
    let mut tokenizer = Tokenizer::from_file(g.model_dir.join("tokenizer.json")).map_err(|e| {
        anyhow::anyhow!("loading {}: {e}", g.model_dir.join("tokenizer.json").display())
    })?;
    // Count what the model sees: no padding, and no truncation but the model's own window
    // (tokenizer.json ships truncation at 128, which would undercount long chunks).
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow::anyhow!("configuring the tokenizer: {e}"))?;
    let embedder = app::embedder(g, args.batch)?;
    let max = embedder.info().max_tokens;
    let texts = match &args.input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => synthetic(&tokenizer, args.chunks, args.tokens.clamp(3, max))?,
    };
    if texts.is_empty() {
        bail!("nothing to embed");
    }
    // Tokens as the model sees them: special tokens included, truncated at its window.
    let tokens: usize = texts
        .iter()
        .map(|t| tokenizer.encode(t.as_str(), true).map(|e| e.len().min(max)).unwrap_or(0))
        .sum();

    let warmup: Vec<String> = texts.iter().take(args.batch.max(1)).cloned().collect();
    embedder.embed(warmup).await?;
    let started = Instant::now();
    let vectors = embedder.embed(texts.clone()).await?;
    let seconds = started.elapsed().as_secs_f64();
    debug_assert_eq!(vectors.len(), texts.len());

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = json!({
        "model": embedder.info().id,
        "precision": g.precision.as_str(),
        "engine": g.engine.to_string(),
        "kernels": ragmill_embed::kernel_isa(),
        "chunks": texts.len(),
        "tokens": tokens,
        "seconds": seconds,
        "chunks_per_s": texts.len() as f64 / seconds,
        "tokens_per_s": tokens as f64 / seconds,
        "batch": args.batch,
        "threads": threads,
    });
    if g.json {
        print_json(&report);
    } else {
        println!(
            "{} chunks, {tokens} tokens in {seconds:.2} s: {:.1} chunks/s, {:.0} tokens/s (batch {}, {threads} threads, {} {} {}, kernels {})",
            texts.len(),
            texts.len() as f64 / seconds,
            tokens as f64 / seconds,
            args.batch,
            embedder.info().id,
            g.engine,
            g.precision,
            ragmill_embed::kernel_isa(),
        );
    }
    Ok(Status::Ok)
}

/// `n` texts of exactly `tokens` model tokens (special tokens included) of English-like prose.
fn synthetic(tokenizer: &Tokenizer, n: usize, tokens: usize) -> Result<Vec<String>> {
    const WORDS: &[&str] = &[
        "the",
        "document",
        "search",
        "retrieval",
        "embedding",
        "model",
        "river",
        "mountain",
        "history",
        "printing",
        "press",
        "bicycle",
        "tyre",
        "sourdough",
        "starter",
        "ocean",
        "tide",
        "moon",
        "gravity",
        "volcano",
        "coffee",
        "espresso",
        "grinder",
        "pressure",
        "water",
        "temperature",
        "error",
        "handling",
        "result",
        "option",
        "library",
        "server",
        "worker",
        "queue",
        "batch",
        "latency",
        "throughput",
        "user",
        "collection",
        "chunk",
        "token",
        "and",
        "of",
        "in",
        "to",
        "with",
        "is",
        "was",
        "for",
        "on",
        "that",
        "by",
        "from",
        "as",
        "an",
        "are",
        "this",
        "which",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let words: Vec<&str> =
            (0..tokens * 2).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
        let text = words.join(" ");
        let enc = tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let content = tokens - 2;
        let end = enc.get_offsets().get(content.saturating_sub(1)).map_or(text.len(), |o| o.1);
        out.push(text[..end].to_owned());
    }
    Ok(out)
}
