//! Helpers shared by the pipeline's integration tests: the real model, a pipeline over a real
//! SQLite store with small chunks, and three short documents on unrelated topics.

#![allow(dead_code)] // each test binary uses its own share of these helpers

use std::path::PathBuf;
use std::sync::Arc;

use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_embed::{LocalEmbedder, LocalOptions, ModelDir};
use ragmill_extract::{Extractor, Limits};
use ragmill_pipeline::{BatchConfig, Pipeline, PipelineConfig};
use ragmill_store::Store;

/// The model in `RAGMILL_MODEL_DIR`, else the workspace's `models/all-MiniLM-L6-v2`.
pub fn model_dir() -> ModelDir {
    let path = std::env::var_os("RAGMILL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    });
    ModelDir::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The real model's pipeline over `store`, extracting in process under `limits`, with small
/// chunks so a few paragraphs make several of them.
pub fn pipeline_over(store: Arc<Store>, limits: Limits) -> Pipeline {
    let model = model_dir();
    let embedder = Arc::new(LocalEmbedder::load(&model, LocalOptions::default()).expect("model"));
    let config = ChunkerConfig { max_tokens: 40, target_tokens: 32, overlap_tokens: 0 };
    let chunker = Arc::new(Chunker::from_file(&model.tokenizer(), config).expect("tokenizer"));
    Pipeline::new(
        store,
        Extractor::in_process(limits),
        chunker,
        embedder,
        BatchConfig::default(),
        PipelineConfig { parallel_documents: 4 },
    )
}

pub const TIDES: &str = "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans. \
    The Moon's pull is stronger because it is closer.\n\nSpring tides happen at new and full moon, \
    when Sun and Moon line up. Neap tides happen at the quarter moons.";
pub const BREAD: &str = "A sourdough starter is a culture of wild yeast and lactic acid bacteria. \
    Feed it flour and water every day to keep it alive.\n\nKeep the starter in a warm place and \
    discard half before each feeding.";
pub const BIKES: &str = "To fix a flat bicycle tyre, remove the wheel, lever the tyre off the rim, \
    find the puncture and patch the inner tube.\n\nInflate it to the pressure written on the tyre wall.";
