//! `ragmill bench …`'s arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::VectorArgs;

/// `ragmill bench search`.
#[derive(Debug, Args)]
pub struct BenchSearchArgs {
    /// Chunks in the one user's collection (in documents of 100).
    #[arg(long, default_value_t = 100_000)]
    pub chunks: usize,
    /// Vector dimensions.
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Queries timed per measurement.
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Documents (of 100 chunks, replacing existing ones) written while searches are timed.
    #[arg(long, default_value_t = 30)]
    pub writes: usize,
    /// Vectors from which the approximate index is used.
    #[arg(long, default_value_t = 50_000)]
    pub ann_threshold: usize,
    /// Candidates the approximate index proposes for exact re-scoring.
    #[arg(long, default_value_t = ragmill_store::IndexSettings::default().ann_candidates)]
    pub ann_candidates: usize,
}

/// `ragmill bench vectors`.
#[derive(Debug, Args)]
pub struct BenchVectorsArgs {
    /// Collection sizes to measure, in chunks (comma-separated); the largest is also migrated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Vector dimensions.
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Queries timed per backend and size (top 10 each).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Chunks per synthetic document.
    #[arg(long, default_value_t = 50)]
    pub chunks_per_document: usize,
    /// Documents stored at once, like ingestion's parallel documents.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Seed of the synthetic vectors, texts and queries.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The ChromaDB server (each run writes to fresh databases `ragmill_bench_<ms>_<size>`;
    /// `--chroma-database` and `--vectors` are not used).
    #[command(flatten)]
    pub vectors: VectorArgs,
}

/// `ragmill bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput of the local model.
    Embed(BenchEmbedArgs),
    /// Search at scale on synthetic vectors: exact vs approximate latency (quiet and while the
    /// same user's documents are written), recall@10, memory, index build, keyword latency,
    /// and the embedding of a short query when the model is present.
    Search(BenchSearchArgs),
    /// The embedded vector index vs a ChromaDB server, side by side on synthetic vectors (no
    /// model): ingest throughput of a finished document's storage path, search latency and
    /// recall@10 against the exact top 10, and the time of `vectors migrate --to chroma`.
    Vectors(BenchVectorsArgs),
    /// Load balancing of the remote embedding pool, against in-process stand-in endpoints.
    ///
    /// The endpoints are stand-ins, not real models: fake Ollama servers in this process, each
    /// serving one request at a time with a fixed service time (--service-ms), like a GPU server
    /// running one batch at a time. What is measured is the pool itself: throughput with 1, 2,
    /// 4, 8 endpoints against the ideal (endpoints × batch / service time), call latency when one
    /// of 4 endpoints is --slowdown times slower, and failed calls and retries when one of 4 is
    /// killed mid-run. Each run is a fixed number of calls of one batch each, made by concurrent
    /// callers; the pool has its default settings apart from batch size and concurrency.
    Pool(BenchPoolArgs),
    /// A stand-in embedding server for benchmarks (no model: hash-seeded vectors).
    ///
    /// Speaks Ollama's or OpenAI's embedding API, answering every request after a fixed
    /// service time (--latency-ms), one request at a time with --serial (like a GPU server
    /// running one batch at a time). Prints its URL on the first line of stdout, serves until
    /// SIGTERM or Ctrl-C, then prints `stand-in stopped: requests=N texts=M`.
    #[command(hide = true)]
    StandIn(BenchStandInArgs),
}

/// `ragmill bench stand-in`.
#[derive(Debug, Args)]
pub struct BenchStandInArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: std::net::SocketAddr,
    /// The API it speaks.
    #[arg(long, value_enum, default_value = "ollama")]
    pub wire: StandInWire,
    /// Service time of every embedding request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Floats per vector.
    #[arg(long, default_value_t = 384)]
    pub dimensions: usize,
    /// Serve one request at a time, each taking the service time in turn (default: all at once).
    #[arg(long)]
    pub serial: bool,
}

/// The API a stand-in speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StandInWire {
    /// `POST /api/embed`.
    Ollama,
    /// `POST /v1/embeddings`.
    Openai,
}

/// `ragmill bench pool`.
#[derive(Debug, Args)]
pub struct BenchPoolArgs {
    /// Endpoint counts to measure throughput with (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub endpoints: Vec<usize>,
    /// Fixed service time of one request on a stand-in endpoint, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub service_ms: u64,
    /// Texts per request (each endpoint's batch size), and per call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Calls per run (default: as many as the ideal pool serves in --seconds).
    #[arg(long)]
    pub calls: Option<usize>,
    /// About how long each run lasts when --calls is not given (7 runs with the defaults).
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
    /// Concurrent callers per endpoint, each calling the pool in a loop.
    #[arg(long, default_value_t = 2)]
    pub callers_per_endpoint: usize,
    /// Requests the pool sends to one endpoint at once (they queue there).
    #[arg(long, default_value_t = ragmill_remote::DEFAULT_MAX_CONCURRENCY)]
    pub max_concurrency: usize,
    /// How many times slower the slow endpoint serves.
    #[arg(long, default_value_t = 10)]
    pub slowdown: u32,
    /// Fraction of the dead-endpoint run's calls completed before one endpoint is killed.
    #[arg(long, default_value_t = 0.3)]
    pub kill_at: f64,
    /// Dimension of the stand-in vectors.
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
}

/// `ragmill bench embed`.
#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// Embed the non-empty lines of this file instead of synthetic chunks.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Synthetic chunks to embed.
    #[arg(long, default_value_t = 256)]
    pub chunks: usize,
    /// Tokens per synthetic chunk, special tokens included.
    #[arg(long, default_value_t = 256)]
    pub tokens: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}
