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
    /// Print machine-readable JSON on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service with its background workers.
    Serve(ServeArgs),
    /// Ingest files and folders (recursively) into a user's collection.
    Ingest(IngestArgs),
    /// Search a user's collection.
    Search(SearchArgs),
    /// Print the embeddings of texts.
    Embed(EmbedArgs),
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
    /// Internal: the sandboxed extraction child process.
    #[command(name = "__extract", hide = true)]
    Extract,
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
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
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
}

/// `ragmill bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput of the local model.
    Embed(BenchEmbedArgs),
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
    /// An origin allowed to open the event WebSocket besides this server's own (repeatable; `*` for any).
    #[arg(long = "allowed-origin", env = "RAGMILL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Chunking and batching.
    #[command(flatten)]
    pub chunking: ChunkArgs,
}
