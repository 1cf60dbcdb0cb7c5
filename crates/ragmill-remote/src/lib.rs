//! Remote embedding backends for ragmill, a load-balanced pool of them, and remote reranking.
//!
//! Where `ragmill-embed` runs the model in-process, this crate sends texts to embedding servers
//! and hands back what the pipeline expects of any [`Embedder`](ragmill_core::Embedder): one
//! unit vector per text, in order, all of one dimension.
//!
//! - [`OllamaClient`] speaks Ollama's `POST /api/embed`; [`OpenAiClient`] the OpenAI embeddings
//!   API (`POST /v1/embeddings`), which vLLM, TEI, llama.cpp, LiteLLM and Ollama's `/v1` speak
//!   too. Each checks every answer (one vector per input, one dimension, finite values) and
//!   L2-normalises it, since servers do not always.
//! - [`Pool`] spreads batches over several endpoints serving one model: sub-batches sized per
//!   endpoint, power-of-two-choices by requests in flight, a concurrency limit per endpoint,
//!   per-attempt timeouts, retries with jittered exponential backoff on another endpoint within
//!   a pool-wide retry budget, a circuit breaker per endpoint and a background health check that
//!   brings healed endpoints back. [`Pool::stats`] reports per-endpoint metrics.
//! - [`PoolConfig`] and [`EndpointConfig`] are the settings, readable with serde.
//! - [`chat`]: a streaming chat client ([`chat::ChatClient`]) for Ollama's `POST /api/chat` and
//!   OpenAI's `POST /v1/chat/completions`, handing back the answer's content deltas in order.
//! - [`HttpReranker`] is a [`Reranker`](ragmill_core::Reranker) over one HTTP rerank endpoint
//!   ([`RerankConfig`]), in the Hugging Face TEI shape or the Cohere/Jina one ([`RerankFormat`]):
//!   batches of texts in, one checked, finite score per text back, in input order.
//! - [`fake`]: stand-in servers that speak the real Ollama and OpenAI wire formats with
//!   hash-seeded vectors and a canned streamed chat answer (no model), and TEI and Cohere/Jina
//!   reranking by lexical overlap, with switchable latency, failures, wrong answers, serial
//!   service and kill/revive, for tests and benchmarks (`ragmill bench pool`).
//!
//! Transport: plain `http://` by default. `https://` needs the `rustls` cargo feature (rustls on
//! the *ring* provider, with the platform's trust store); it is off by default because enabling
//! reqwest's provider-less rustls anywhere in a build makes every other `reqwest::Client` in
//! that build panic unless a process-wide crypto provider is installed (see
//! `install_tls_provider`, under that feature).
//!
//! ```no_run
//! use ragmill_core::Embedder;
//! use ragmill_remote::{BackendKind, EndpointConfig, Pool, PoolConfig};
//! # async fn run() -> Result<(), ragmill_core::EmbedError> {
//! let pool = Pool::connect(PoolConfig::new(vec![
//!     EndpointConfig::new(BackendKind::Ollama, "http://gpu-1:11434", "nomic-embed-text"),
//!     EndpointConfig::new(BackendKind::Ollama, "http://gpu-2:11434", "nomic-embed-text"),
//! ]))
//! .await?;
//! assert_eq!(pool.info().id, "ollama:nomic-embed-text");
//! let vectors = pool.embed(vec!["hello".into(), "world".into()]).await?;
//! assert_eq!(vectors.len(), 2);
//! println!("{}", serde_json::to_string(&pool.stats()).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Reranking, a TEI server's scores for two passages, in their order:
//!
//! ```no_run
//! use ragmill_core::Reranker;
//! use ragmill_remote::{HttpReranker, RerankConfig, RerankFormat};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let reranker =
//!     HttpReranker::new(RerankConfig::new("http://gpu-1:8080/rerank", RerankFormat::Tei))?;
//! let scores = reranker.rerank("what is ragmill?", vec!["a RAG service".into(), "a mill".into()]);
//! assert_eq!(scores.await?.len(), 2);
//! # Ok(()) }
//! ```

mod breaker;
mod budget;
pub mod chat;
mod cluster;
mod config;
mod endpoint;
mod error;
pub mod fake;
mod health;
mod http;
mod ollama;
mod openai;
mod pool;
mod rerank;
mod stats;
mod target;
#[cfg(feature = "rustls")]
mod tls;
mod vectors;

pub use cluster::MainServer;
pub use config::{
    BackendKind, DEFAULT_MAX_CONCURRENCY, EndpointConfig, PoolConfig, RetryBudgetConfig,
};
pub use error::RemoteError;
pub use ollama::OllamaClient;
pub use openai::OpenAiClient;
pub use pool::Pool;
pub use rerank::{
    DEFAULT_RERANK_TIMEOUT, HttpReranker, MAX_RERANK_ANSWER_BYTES, RerankConfig, RerankFormat,
};
pub use stats::{
    CircuitState, EndpointStats, LATENCY_BUCKETS_MS, LatencyHistogram, PoolStats, PoolTotals,
};
#[cfg(feature = "rustls")]
pub use tls::install_tls_provider;

/// The text sent to learn a model's dimension and to probe a failed endpoint.
pub(crate) const PROBE_TEXT: &str = "ragmill health check";
