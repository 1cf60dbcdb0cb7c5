//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ragmill_embed::{Engine, Precision};

mod bench;
mod documents;

pub use bench::{
    BenchCommand, BenchEmbedArgs, BenchPoolArgs, BenchSearchArgs, BenchStandInArgs,
    BenchVectorsArgs, StandInWire,
};
pub use documents::{DocumentsCommand, ServerArgs, Targets};

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
