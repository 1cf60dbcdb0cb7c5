//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ragmill_embed::{Engine, Precision};

/// ragmill: turn documents into a private, searchable knowledge base.
#[derive(Debug, Parser)]
#[command(name = "ragmill", version, about, propagate_version = true)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command; each also reads an environment variable.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML); values there sit under environment variables and flags.
    /// Default: ragmill.toml in the working directory, if present.
    #[arg(long, global = true, env = "RAGMILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database and indexes).
    #[arg(long, global = true, env = "RAGMILL_DATA_DIR", default_value = "ragmill-data")]
    pub data_dir: PathBuf,
    /// Model directory (config.json, tokenizer.json, model.safetensors).
    #[arg(
        long,
        global = true,
        env = "RAGMILL_MODEL_DIR",
        default_value = "models/all-MiniLM-L6-v2"
    )]
    pub model_dir: PathBuf,
    /// Numeric precision of the local encoder: fp32 (reference quality) or int8 (dense layers
    /// quantised at load: about twice the speed, cosine ~0.99 to fp32; see README).
    #[arg(long, global = true, env = "RAGMILL_PRECISION", default_value = "fp32")]
    pub precision: Precision,
    /// What runs the local model: native (ragmill's CPU encoder), candle (the reference
    /// implementation) or cuda (candle on a GPU; needs a build with `--features cuda`).
    #[arg(long, global = true, env = "RAGMILL_ENGINE", default_value = "native")]
    pub engine: Engine,
    /// Where chunks are embedded: local (the model in this process), or ollama / openai
    /// (remote servers speaking that API; several --embed-endpoint make a load-balanced pool).
    #[arg(long, global = true, env = "RAGMILL_EMBED_BACKEND", value_enum, default_value = "local")]
    pub embed_backend: EmbedBackend,
    /// A remote embedding endpoint's base URL (repeatable; comma-separated in the environment).
    #[arg(
        long = "embed-endpoint",
        global = true,
        env = "RAGMILL_EMBED_ENDPOINTS",
        value_delimiter = ','
    )]
    pub embed_endpoints: Vec<String>,
    /// The model name the remote endpoints serve (e.g. nomic-embed-text).
    #[arg(long, global = true, env = "RAGMILL_EMBED_MODEL")]
    pub embed_model: Option<String>,
    /// API key for the remote endpoints, sent as a Bearer token.
    #[arg(long, global = true, env = "RAGMILL_EMBED_API_KEY", hide_env_values = true)]
    pub embed_api_key: Option<String>,
    /// Pool tuning from the configuration file's `[embed.pool]` (no flag).
    #[arg(skip)]
    pub embed_pool: Option<ragmill_remote::PoolConfig>,
    /// Print machine-readable JSON on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where chunks are embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedBackend {
    /// The model in this process (`--model-dir`).
    Local,
    /// Ollama servers (`POST /api/embed`).
    Ollama,
    /// OpenAI-compatible servers (`POST /v1/embeddings`): OpenAI, TEI, vLLM, llama.cpp, ragmill.
    Openai,
}

/// The API of the chat model's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatBackend {
    /// Ollama (`POST /api/chat`).
    Ollama,
    /// OpenAI-compatible servers (`POST /v1/chat/completions`): OpenAI, vLLM, llama.cpp,
    /// LiteLLM, Ollama's `/v1`.
    Openai,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service with its background workers.
    Serve(Box<ServeArgs>),
    /// Process documents of a main server's Redis queue (scaling out to other machines).
    Worker(WorkerArgs),
    /// Ingest files and folders (recursively) into a user's collection.
    Ingest(IngestArgs),
    /// Search a user's collection.
    Search(SearchArgs),
    /// Print the embeddings of texts.
    Embed(EmbedArgs),
    /// Serve the model alone over Ollama's and OpenAI's embedding APIs (no store, no queue).
    EmbedServer(EmbedServerArgs),
    /// Measure retrieval quality on a BEIR-format dataset.
    Eval(EvalArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Fetch and verify model files.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Manage users and their API keys.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List, cancel, pause, resume and retry documents on a running ragmill server.
    #[command(subcommand)]
    Documents(DocumentsCommand),
    /// Keep an external vector store (ChromaDB) in step with the data directory, or move
    /// between it and the embedded one.
    #[command(subcommand)]
    Vectors(VectorsCommand),
    /// Internal: the sandboxed extraction child process.
    #[command(name = "__extract", hide = true)]
    Extract,
}

/// Where vectors are kept for search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    /// The data directory's SQLite file, searched in this process (exact, or HNSW when big).
    Embedded,
    /// A ChromaDB server (HTTP API v2): one collection per user.
    Chroma,
}

/// The vector store: embedded, or a ChromaDB server.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Vector store")]
pub struct VectorArgs {
    /// Where vectors are searched: embedded (the data directory, in this process) or chroma
    /// (a ChromaDB server; the data directory stays the truth for users, documents and text).
    #[arg(long, env = "RAGMILL_VECTORS", value_enum, default_value = "embedded")]
    pub vectors: VectorBackend,
    /// The ChromaDB server's URL.
    #[arg(long, env = "RAGMILL_CHROMA_URL", default_value = "http://127.0.0.1:8000")]
    pub chroma_url: String,
    /// The ChromaDB tenant (created if missing).
    #[arg(long, env = "RAGMILL_CHROMA_TENANT", default_value = "default_tenant")]
    pub chroma_tenant: String,
    /// The ChromaDB database (created if missing).
    #[arg(long, env = "RAGMILL_CHROMA_DATABASE", default_value = "default_database")]
    pub chroma_database: String,
    /// The ChromaDB token, if the server wants one (sent as x-chroma-token and Bearer).
    #[arg(long, env = "RAGMILL_CHROMA_TOKEN", hide_env_values = true)]
    pub chroma_token: Option<String>,
    /// Milliseconds one ChromaDB request may take before it counts as unavailable.
    #[arg(long, env = "RAGMILL_CHROMA_TIMEOUT_MS", default_value_t = 10_000)]
    pub chroma_timeout_ms: u64,
}

/// `ragmill vectors ...`.
#[derive(Debug, Subcommand)]
pub enum VectorsCommand {
    /// Rebuild ChromaDB collections from the data directory: write what is missing or
    /// incomplete, forget what the data directory no longer names.
    Sync {
        /// Only this user's collection (default: every user's).
        #[arg(long)]
        user: Option<String>,
        /// The vector store.
        #[command(flatten)]
        vectors: VectorArgs,
    },
    /// Move a deployment's vectors to another backend without re-embedding (the server may
    /// keep running; restart it with --vectors set to the new backend afterwards).
    Migrate {
        /// The backend to move to.
        #[arg(long, value_enum)]
        to: VectorBackend,
        /// The vector store (its ChromaDB settings name the server to move to or from).
        #[command(flatten)]
        vectors: VectorArgs,
    },
}

/// How searches retrieve: the mode, the fusion, the approximate index and the reranker.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Retrieval")]
pub struct RetrievalArgs {
    /// How a search finds chunks when it does not say: vector (meaning), keyword (BM25 over
    /// the words: names, codes, rare terms) or hybrid (both, fused by reciprocal rank).
    #[arg(long, env = "RAGMILL_SEARCH_MODE", default_value = "hybrid")]
    pub search_mode: ragmill_pipeline::SearchMode,
    /// Weight of the vector ranking in hybrid search.
    #[arg(long, env = "RAGMILL_VECTOR_WEIGHT", default_value_t = 1.5)]
    pub vector_weight: f32,
    /// Weight of the keyword ranking in hybrid search.
    #[arg(long, env = "RAGMILL_KEYWORD_WEIGHT", default_value_t = 1.0)]
    pub keyword_weight: f32,
    /// Vectors from which a user's collection is searched through an approximate (HNSW)
    /// index, its candidates re-scored exactly; below it every search is an exact scan.
    #[arg(long, env = "RAGMILL_ANN_THRESHOLD", default_value_t = 50_000)]
    pub ann_threshold: usize,
    /// A reranking endpoint (full URL, e.g. http://tei:8080/rerank): the fused top candidates
    /// are reordered by its scores. Default: no reranking.
    #[arg(long, env = "RAGMILL_RERANK_ENDPOINT")]
    pub rerank_endpoint: Option<String>,
    /// The reranking endpoint's wire format: tei (Hugging Face Text Embeddings Inference),
    /// cohere or jina.
    #[arg(long, env = "RAGMILL_RERANK_FORMAT", default_value = "tei")]
    pub rerank_format: ragmill_remote::RerankFormat,
    /// The reranking model to ask for (cohere/jina format).
    #[arg(long, env = "RAGMILL_RERANK_MODEL")]
    pub rerank_model: Option<String>,
    /// API key for the reranking endpoint, sent as a Bearer token.
    #[arg(long, env = "RAGMILL_RERANK_API_KEY", hide_env_values = true)]
    pub rerank_api_key: Option<String>,
}

/// Chunk sizes, in model tokens.
#[derive(Debug, Args, Clone, Copy)]
pub struct ChunkArgs {
    /// Target chunk size, special tokens included (capped at the model's window).
    #[arg(long, env = "RAGMILL_CHUNK_TOKENS", default_value_t = 256)]
    pub chunk_tokens: usize,
    /// Tokens shared by consecutive chunks.
    #[arg(long, env = "RAGMILL_CHUNK_OVERLAP", default_value_t = 32)]
    pub chunk_overlap: usize,
    /// Documents processed at once.
    #[arg(long, env = "RAGMILL_PARALLEL", default_value_t = 8)]
    pub parallel: usize,
    /// Texts per embedding batch.
    #[arg(long, env = "RAGMILL_BATCH", default_value_t = 32)]
    pub batch: usize,
}

/// `ragmill ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The user whose collection receives the documents (created if new).
    #[arg(long)]
    pub user: String,
    /// Files and folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Send to a ragmill server instead of the local data directory: files are extracted and
    /// chunked here and only the chunks are uploaded (the server embeds and stores them).
    #[arg(long, env = "RAGMILL_SERVER", requires = "api_key")]
    pub server: Option<String>,
    /// The user's API key on --server (from `ragmill users add` there).
    #[arg(long, env = "RAGMILL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
    /// The vector store.
    #[command(flatten)]
    pub vectors: VectorArgs,
}

/// `ragmill search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The user whose collection is searched.
    #[arg(long)]
    pub user: String,
    /// Results to return.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// How to retrieve.
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// The vector store.
    #[command(flatten)]
    pub vectors: VectorArgs,
    /// The query.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
}

/// `ragmill embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed, one vector each.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

/// `ragmill embed-server`.
#[derive(Debug, Args)]
pub struct EmbedServerArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "RAGMILL_EMBED_BIND", default_value = "127.0.0.1:11435")]
    pub bind: String,
    /// Require this key from clients as `Authorization: Bearer KEY` (default: no auth).
    #[arg(long, env = "RAGMILL_EMBED_SERVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Most texts in one forward pass; texts from all clients are packed together.
    #[arg(long, env = "RAGMILL_BATCH", default_value_t = 32)]
    pub batch: usize,
}

/// `ragmill eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Directory of a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).
    #[arg(long)]
    pub beir: PathBuf,
    /// The qrels split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
    /// Retrieval (every mode is evaluated; --search-mode picks the one reported at the top
    /// level of the JSON).
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
}

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

/// `ragmill models ...`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download a model from the Hugging Face Hub into --model-dir, then verify it.
    Fetch {
        /// Repository on the Hub.
        #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
        repo: String,
        /// Branch, tag or commit.
        #[arg(long, default_value = "main")]
        revision: String,
    },
    /// Load the model in --model-dir and check it against reference vectors.
    Verify {
        /// Skip the comparison with all-MiniLM-L6-v2's reference vectors (for other models).
        #[arg(long)]
        no_reference: bool,
    },
}

/// `ragmill users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (if new) and print a new API key, once: only its hash is stored.
    Add {
        /// The user's name.
        name: String,
        /// Make them an administrator: their dashboard and `GET /v1/stats` show the whole
        /// service, not only their own documents.
        #[arg(long)]
        admin: bool,
    },
    /// List users with their document and active key counts.
    List,
    /// Revoke every API key of a user (their documents stay).
    Revoke {
        /// The user's name.
        name: String,
    },
}

/// Where `ragmill documents` finds the server, and whose documents it acts on.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// The ragmill server's URL.
    #[arg(long, env = "RAGMILL_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API key of the user whose documents these are (from `ragmill users add`).
    #[arg(long, env = "RAGMILL_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// Which documents a `ragmill documents` action applies to.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Documents")]
pub struct Targets {
    /// Documents by id or by name (as listed by `ragmill documents list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub documents: Vec<String>,
    /// Every document the action applies to.
    #[arg(long)]
    pub all: bool,
}

/// `ragmill documents …`: the server's document operations, as in the web UI and the API.
#[derive(Debug, Subcommand)]
pub enum DocumentsCommand {
    /// List the user's documents, newest first.
    List {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Only documents in this state: queued, processing, paused, ready, failed, or error
        /// (any whose last version failed).
        #[arg(long)]
        state: Option<String>,
        /// Only documents whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Stop documents waiting for, in processing or paused (an older version stays searchable).
    Cancel {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Hold documents waiting for or in processing; `resume` queues them again.
    Pause {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Queue paused documents again.
    Resume {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Queue documents whose last version failed (cancelled ones included) again.
    Retry {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
}

/// `ragmill serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// How searches retrieve.
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "RAGMILL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Background workers (default: one per core).
    #[arg(long, env = "RAGMILL_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a worker holds a job between heartbeats before another worker may take it over.
    #[arg(long, env = "RAGMILL_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// Largest file accepted in an upload, in MiB.
    #[arg(long, env = "RAGMILL_MAX_UPLOAD_MB", default_value_t = 64)]
    pub max_upload_mb: u64,
    /// Seconds between two passes of the reconciler, which queues documents left without a
    /// job (the queue was down, or the process died between the two writes).
    #[arg(long, env = "RAGMILL_RECONCILE_SECS", default_value_t = 30)]
    pub reconcile_secs: u64,
    /// An origin allowed to open the event WebSocket besides this server's own (repeatable; `*` for any).
    #[arg(long = "allowed-origin", env = "RAGMILL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The URL browsers reach this server by, when it is not its own address and port (behind
    /// a proxy, or by a DNS name, e.g. https://rag.example): its origin may open the event
    /// WebSocket. Without it only this server's IP addresses and localhost, on its port, count
    /// as its own (a rebound DNS name does not).
    #[arg(long, env = "RAGMILL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Most files in one upload request (beyond: 413 too_many_files).
    #[arg(long, env = "RAGMILL_MAX_FILES_PER_UPLOAD", default_value_t = 1000)]
    pub max_files_per_upload: usize,
    /// Most documents one user may have queued or processing (beyond: 429 too_many_pending).
    #[arg(long, env = "RAGMILL_MAX_PENDING", default_value_t = 10_000)]
    pub max_pending: u64,
    /// Requests a second one API key may make on /v1, sustained (beyond: 429 rate_limited;
    /// 0: no limit).
    #[arg(long, env = "RAGMILL_RATE_LIMIT", default_value_t = 100.0)]
    pub rate_limit: f64,
    /// Requests one API key may make at once before --rate-limit applies.
    #[arg(long, env = "RAGMILL_RATE_BURST", default_value_t = 500)]
    pub rate_burst: u32,
    /// The chat model's API, for `POST /v1/chat`: ollama (`/api/chat`) or openai
    /// (`/v1/chat/completions`). Without it chat is off (search still works).
    #[arg(long, env = "RAGMILL_CHAT_BACKEND", value_enum)]
    pub chat_backend: Option<ChatBackend>,
    /// The chat server's base URL (e.g. http://localhost:11434, https://api.openai.com/v1).
    #[arg(long, env = "RAGMILL_CHAT_ENDPOINT")]
    pub chat_endpoint: Option<String>,
    /// The chat model's name on that server (e.g. llama3.2, gpt-4o-mini).
    #[arg(long, env = "RAGMILL_CHAT_MODEL")]
    pub chat_model: Option<String>,
    /// API key for the chat server, sent as a Bearer token.
    #[arg(long, env = "RAGMILL_CHAT_API_KEY", hide_env_values = true)]
    pub chat_api_key: Option<String>,
    /// The chat models users may pick besides --chat-model (comma-separated). Without it they
    /// may pick any the chat server lists (Ollama's /api/tags, OpenAI's /v1/models), models
    /// that embed, transcribe or draw left out.
    #[arg(long, env = "RAGMILL_CHAT_MODELS", value_delimiter = ',')]
    pub chat_models: Option<Vec<String>>,
    /// The job queue and the cluster's worker key.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
    /// The vector store.
    #[command(flatten)]
    pub vectors: VectorArgs,
}

/// Scaling out: where jobs and events go, and the key workers present to the main server.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// Redis for the job queue, events and live progress (`redis://host:6379/0`): workers on
    /// other machines (`ragmill worker`) then share the work. Default: the embedded queue in
    /// the data directory, events in this process.
    #[arg(long, env = "RAGMILL_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Prefix of every Redis key and channel (several deployments can share one Redis).
    #[arg(long, env = "RAGMILL_REDIS_PREFIX", default_value = "ragmill:")]
    pub redis_prefix: String,
    /// The key cluster workers authenticate with on the main server's `/internal/v1` routes
    /// (not a user's key; without it those routes are off).
    #[arg(long, env = "RAGMILL_WORKER_KEY", hide_env_values = true)]
    pub worker_key: Option<String>,
}

/// `ragmill worker`: process documents of a main server's queue, on any machine.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The main server's base URL (e.g. http://main:8080): originals come from it and results
    /// go to it, over its `/internal/v1` routes (no shared filesystem).
    #[arg(long, env = "RAGMILL_SERVER")]
    pub server: Option<String>,
    /// Workers in this process (default: one per core).
    #[arg(long, env = "RAGMILL_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a worker holds a job between heartbeats before another may take it over.
    #[arg(long, env = "RAGMILL_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// The queue (its `queue_url` is required) and the worker key.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
}
