//! Assembling the pipeline from settings.

use std::sync::Arc;

use anyhow::{Context, Result};
use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::Embedder;
use ragmill_embed::{LocalEmbedder, LocalOptions, ModelDir};
use ragmill_extract::{Extractor, Limits};
use ragmill_pipeline::{BatchConfig, Pipeline, PipelineConfig};
use ragmill_store::Store;

use crate::cli::{ChunkArgs, Global};

/// Loads the local embedding model from `--model-dir`.
pub fn embedder(global: &Global, batch: usize) -> Result<Arc<LocalEmbedder>> {
    let dir = ModelDir::open(&global.model_dir)?;
    let embedder = LocalEmbedder::load(
        &dir,
        LocalOptions {
            max_batch: batch.max(1),
            precision: global.precision,
            engine: global.engine,
        },
    )
    .with_context(|| format!("loading the model in {}", global.model_dir.display()))?;
    Ok(Arc::new(embedder))
}

/// The extractor: PDF and DOCX are parsed in a child process (this binary's hidden
/// `__extract` command) under time and memory limits, so a hostile file cannot take
/// this process down.
pub fn extractor() -> Result<Extractor> {
    let exe = std::env::current_exe()
        .context("locating the ragmill executable for sandboxed extraction")?;
    Ok(Extractor::isolated(exe, vec!["__extract".into()], Limits::default()))
}

/// Opens the store in `--data-dir`.
pub fn store(global: &Global) -> Result<Arc<Store>> {
    let store = Store::open(&global.data_dir)
        .with_context(|| format!("opening the data directory {}", global.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// The full pipeline over `store`.
pub fn pipeline(global: &Global, store: Arc<Store>, chunking: ChunkArgs) -> Result<Pipeline> {
    let embedder = embedder(global, chunking.batch)?;
    let max_tokens = embedder.info().max_tokens;
    let config = ChunkerConfig {
        max_tokens,
        target_tokens: chunking.chunk_tokens.min(max_tokens),
        overlap_tokens: chunking.chunk_overlap,
    };
    let tokenizer = global.model_dir.join("tokenizer.json");
    let chunker = Chunker::from_file(&tokenizer, config).context("setting up the chunker")?;
    let batch = BatchConfig {
        max_batch: chunking.batch.max(1),
        max_tokens: chunking.batch.max(1) * max_tokens,
        ..BatchConfig::default()
    };
    Ok(Pipeline::new(
        store,
        extractor()?,
        Arc::new(chunker),
        embedder,
        batch,
        PipelineConfig { parallel_documents: chunking.parallel.max(1) },
    ))
}
