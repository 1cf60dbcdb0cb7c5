//! Embedding backends for ragmill.
//!
//! [`LocalEmbedder`] runs a BERT-family sentence-transformers model (default
//! `all-MiniLM-L6-v2`) in-process on the CPU with candle: it reads a model directory
//! (`config.json`, `tokenizer.json`, `model.safetensors`), tokenises with truncation at the
//! model's `max_seq_length`, packs inputs of similar length into micro-batches so little padding
//! is computed, mean-pools over the attention mask and L2-normalises. It owns the model on one
//! OS thread and takes requests over a channel, so async callers never block on it.
//!
//! [`ModelDir`] finds and checks model files; [`fetch_from_hub`] downloads them.
//!
//! ```no_run
//! use ragmill_core::Embedder;
//! use ragmill_embed::{LocalEmbedder, ModelDir};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let embedder = LocalEmbedder::load(&ModelDir::open("models/all-MiniLM-L6-v2".as_ref())?, Default::default())?;
//! let vectors = embedder.embed(vec!["hello".into()]).await?;
//! assert_eq!(vectors[0].len(), 384);
//! # Ok(()) }
//! ```

mod bert;
mod fetch;
mod local;
mod model_dir;

pub use bert::BertEncoder;
pub use fetch::{FetchError, fetch_from_hub};
pub use local::{LocalEmbedder, LocalOptions};
pub use model_dir::{ModelDir, ModelError};

/// Texts with known embeddings from the reference implementation of all-MiniLM-L6-v2
/// (sentence-transformers on PyTorch), used by `ragmill models verify`.
pub const MINILM_REFERENCE_JSON: &str = include_str!("reference.json");
