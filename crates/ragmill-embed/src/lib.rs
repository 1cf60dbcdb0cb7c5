//! Embedding backends for ragmill.
//!
//! [`LocalEmbedder`] runs a BERT-family sentence-transformers model (default
//! `all-MiniLM-L6-v2`; BGE, E5, GTE and the like too) in-process: it reads a model directory
//! (`config.json`, `tokenizer.json`, `model.safetensors`), tokenises with truncation at the
//! model's `max_seq_length`, runs the encoder, pools (mean or CLS, as `1_Pooling` says) and
//! L2-normalises. It owns the model on one OS thread and takes requests over a channel, so
//! async callers never block on it.
//!
//! Two engines run the model ([`Engine`]): [`NativeEncoder`], ragmill's own CPU forward pass on
//! `ragmill-kernels` (FP32, or INT8 with [`Precision::Int8`]), the default; and
//! [`BertEncoder`], candle's, kept as the reference and as the CUDA path (`--features cuda`).
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
mod encoder;
mod fetch;
mod lanes;
mod local;
mod model_dir;
mod native;
mod precision;

pub use bert::BertEncoder;
pub use encoder::Encode;
pub use fetch::{FetchError, fetch_from_hub};
pub use local::{Engine, LocalEmbedder, LocalOptions};
pub use model_dir::{ModelDir, ModelError};
pub use native::NativeEncoder;
pub use precision::Precision;

/// The instruction-set level the native kernels use on this CPU (`avx512-vnni`, `avx512`,
/// `avx2` or `portable`).
pub fn kernel_isa() -> &'static str {
    ragmill_kernels::cpu::active().name()
}

/// Texts with known embeddings from the reference implementation of all-MiniLM-L6-v2
/// (sentence-transformers on PyTorch), used by `ragmill models verify`.
pub const MINILM_REFERENCE_JSON: &str = include_str!("reference.json");
