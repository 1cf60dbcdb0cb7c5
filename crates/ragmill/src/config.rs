//! The configuration file, under environment variables and flags.
//!
//! Precedence, lowest first: built-in defaults < the TOML file < `RAGMILL_*` environment
//! variables < command-line flags. clap parses flags and environment variables into [`Cli`] and
//! remembers where each value came from; [`apply`] then replaces every value that is still a
//! built-in default with the file's, if the file sets it. The file is `--config PATH`
//! (`RAGMILL_CONFIG`), else `ragmill.toml` in the working directory if there is one.
//!
//! ```toml
//! data_dir = "/var/lib/ragmill"
//! model_dir = "/opt/models/all-MiniLM-L6-v2"
//! precision = "int8"   # or "fp32" (the default)
//! engine = "native"    # or "candle", "cuda"
//!
//! [chunking]
//! chunk_tokens = 256
//! chunk_overlap = 32
//! parallel = 8
//! batch = 32
//!
//! [embed]              # remote embedding (default: the local model)
//! backend = "ollama"   # or "openai", "local"
//! model = "nomic-embed-text"
//! endpoints = ["http://gpu-1:11434", "http://gpu-2:11434"]
//! # api_key = "..."
//! [embed.pool]         # optional pool tuning, see ragmill_remote::PoolConfig
//! attempt_timeout_ms = 30000
//! max_attempts = 3
//!
//! [serve]
//! bind = "0.0.0.0:8080"
//! workers = 2
//! max_upload_mb = 64
//! lease_secs = 60
//! allowed_origins = ["https://intranet.example"]
//! public_url = "https://rag.example"   # how browsers reach it, if not by its own address
//! max_files_per_upload = 1000
//! max_pending = 10000  # documents queued or processing, per user
//! rate_limit = 100     # requests a second per API key (0: none)
//! rate_burst = 500
//!
//! [cluster]            # scaling out (default: one process, embedded queue)
//! queue_url = "redis://redis:6379/0"
//! redis_prefix = "ragmill:"
//! worker_key = "..."   # what `ragmill worker` presents to the main server
//! server = "http://main:8080"   # for `ragmill worker`: the main server
//!
//! [search]             # retrieval (serve, search, eval)
//! mode = "hybrid"      # or "vector", "keyword": for searches that do not say
//! vector_weight = 1.5  # the fusion's weights
//! keyword_weight = 1.0
//! ann_threshold = 50000   # vectors from which a user's collection gets an HNSW index
//! rerank_endpoint = "http://tei:8080/rerank"   # optional
//! rerank_format = "tei"   # or "cohere", "jina"
//! # rerank_model = "..."
//! # rerank_api_key = "..."
//!
//! [vectors]            # where vectors are searched (serve, ingest, search, vectors)
//! backend = "chroma"   # or "embedded" (the default)
//! url = "http://chroma:8000"
//! tenant = "default_tenant"
//! database = "default_database"
//! # token = "..."
//! timeout_ms = 10000
//!
//! [chat]               # the chat model behind POST /v1/chat (default: none)
//! backend = "ollama"   # or "openai"
//! endpoint = "http://localhost:11434"
//! model = "llama3.2"
//! # api_key = "..."
//! # models = ["llama3.2", "qwen2.5:14b"]   # what users may pick (default: what the server lists)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ArgMatches;
use clap::parser::ValueSource;
use ragmill_embed::{Engine, Precision};
use serde::Deserialize;

use crate::cli::{
    ChatBackend, ChunkArgs, Cli, ClusterArgs, Command, EmbedBackend, RetrievalArgs, VectorArgs,
    VectorBackend, VectorsCommand,
};

/// The file's contents; every field optional, unknown fields refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    model_dir: Option<PathBuf>,
    precision: Option<Precision>,
    engine: Option<Engine>,
    #[serde(default)]
    chunking: Chunking,
    #[serde(default)]
    embed: Embed,
    #[serde(default)]
    serve: Serve,
    #[serde(default)]
    chat: Chat,
    #[serde(default)]
    cluster: Cluster,
    #[serde(default)]
    search: Search,
    #[serde(default)]
    vectors: Vectors,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    backend: Option<VectorBackend>,
    url: Option<String>,
    tenant: Option<String>,
    database: Option<String>,
    token: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    mode: Option<ragmill_pipeline::SearchMode>,
    vector_weight: Option<f32>,
    keyword_weight: Option<f32>,
    ann_threshold: Option<usize>,
    rerank_endpoint: Option<String>,
    rerank_format: Option<ragmill_remote::RerankFormat>,
    rerank_model: Option<String>,
    rerank_api_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    queue_url: Option<String>,
    redis_prefix: Option<String>,
    worker_key: Option<String>,
    server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunking {
    chunk_tokens: Option<usize>,
    chunk_overlap: Option<usize>,
    parallel: Option<usize>,
    batch: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Embed {
    backend: Option<EmbedBackend>,
    endpoints: Option<Vec<String>>,
    model: Option<String>,
    api_key: Option<String>,
    pool: Option<ragmill_remote::PoolConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Chat {
    backend: Option<ChatBackend>,
    endpoint: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    models: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Serve {
    bind: Option<String>,
    workers: Option<usize>,
    max_upload_mb: Option<u64>,
    lease_secs: Option<u64>,
    reconcile_secs: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    public_url: Option<String>,
    max_files_per_upload: Option<usize>,
    max_pending: Option<u64>,
    rate_limit: Option<f64>,
    rate_burst: Option<u32>,
}

/// Fills the values of `cli` that are still defaults from the configuration file.
pub fn apply(cli: &mut Cli, matches: &ArgMatches) -> Result<()> {
    let path = match &cli.global.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("ragmill.toml")).filter(|p| p.is_file()),
    };
    let Some(path) = path else { return Ok(()) };
    let file = load(&path)?;
    let unset = |m: &ArgMatches, id: &str| {
        matches!(m.value_source(id), None | Some(ValueSource::DefaultValue))
    };
    let g = &mut cli.global;
    if let Some(v) = file.data_dir.filter(|_| unset(matches, "data_dir")) {
        g.data_dir = v;
    }
    if let Some(v) = file.model_dir.filter(|_| unset(matches, "model_dir")) {
        g.model_dir = v;
    }
    if let Some(v) = file.precision.filter(|_| unset(matches, "precision")) {
        g.precision = v;
    }
    if let Some(v) = file.engine.filter(|_| unset(matches, "engine")) {
        g.engine = v;
    }
    let e = file.embed;
    if let Some(v) = e.backend.filter(|_| unset(matches, "embed_backend")) {
        g.embed_backend = v;
    }
    if let Some(v) = e.endpoints.filter(|_| unset(matches, "embed_endpoints")) {
        g.embed_endpoints = v;
    }
    if let Some(v) = e.model.filter(|_| unset(matches, "embed_model")) {
        g.embed_model = Some(v);
    }
    if let Some(v) = e.api_key.filter(|_| unset(matches, "embed_api_key")) {
        g.embed_api_key = Some(v);
    }
    g.embed_pool = e.pool;
    let Some((_, sub)) = matches.subcommand() else { return Ok(()) };
    let chunking = |c: &mut ChunkArgs| {
        let f = &file.chunking;
        if let Some(v) = f.chunk_tokens.filter(|_| unset(sub, "chunk_tokens")) {
            c.chunk_tokens = v;
        }
        if let Some(v) = f.chunk_overlap.filter(|_| unset(sub, "chunk_overlap")) {
            c.chunk_overlap = v;
        }
        if let Some(v) = f.parallel.filter(|_| unset(sub, "parallel")) {
            c.parallel = v;
        }
        if let Some(v) = f.batch.filter(|_| unset(sub, "batch")) {
            c.batch = v;
        }
    };
    let cluster = |c: &mut ClusterArgs| {
        let f = &file.cluster;
        if let Some(v) = f.queue_url.clone().filter(|_| unset(sub, "queue_url")) {
            c.queue_url = Some(v);
        }
        if let Some(v) = f.redis_prefix.clone().filter(|_| unset(sub, "redis_prefix")) {
            c.redis_prefix = v;
        }
        if let Some(v) = f.worker_key.clone().filter(|_| unset(sub, "worker_key")) {
            c.worker_key = Some(v);
        }
    };
    let retrieval = |r: &mut RetrievalArgs| {
        let f = &file.search;
        if let Some(v) = f.mode.filter(|_| unset(sub, "search_mode")) {
            r.search_mode = v;
        }
        if let Some(v) = f.vector_weight.filter(|_| unset(sub, "vector_weight")) {
            r.vector_weight = v;
        }
        if let Some(v) = f.keyword_weight.filter(|_| unset(sub, "keyword_weight")) {
            r.keyword_weight = v;
        }
        if let Some(v) = f.ann_threshold.filter(|_| unset(sub, "ann_threshold")) {
            r.ann_threshold = v;
        }
        if let Some(v) = f.rerank_endpoint.clone().filter(|_| unset(sub, "rerank_endpoint")) {
            r.rerank_endpoint = Some(v);
        }
        if let Some(v) = f.rerank_format.filter(|_| unset(sub, "rerank_format")) {
            r.rerank_format = v;
        }
        if let Some(v) = f.rerank_model.clone().filter(|_| unset(sub, "rerank_model")) {
            r.rerank_model = Some(v);
        }
        if let Some(v) = f.rerank_api_key.clone().filter(|_| unset(sub, "rerank_api_key")) {
            r.rerank_api_key = Some(v);
        }
    };
    let vectors = |v: &mut VectorArgs, sub: &ArgMatches| {
        let f = &file.vectors;
        if let Some(x) = f.backend.filter(|_| unset(sub, "vectors")) {
            v.vectors = x;
        }
        if let Some(x) = f.url.clone().filter(|_| unset(sub, "chroma_url")) {
            v.chroma_url = x;
        }
        if let Some(x) = f.tenant.clone().filter(|_| unset(sub, "chroma_tenant")) {
            v.chroma_tenant = x;
        }
        if let Some(x) = f.database.clone().filter(|_| unset(sub, "chroma_database")) {
            v.chroma_database = x;
        }
        if let Some(x) = f.token.clone().filter(|_| unset(sub, "chroma_token")) {
            v.chroma_token = Some(x);
        }
        if let Some(x) = f.timeout_ms.filter(|_| unset(sub, "chroma_timeout_ms")) {
            v.chroma_timeout_ms = x;
        }
    };
    match &mut cli.command {
        Command::Vectors(
            VectorsCommand::Sync { vectors: v, .. } | VectorsCommand::Migrate { vectors: v, .. },
        ) => {
            // `vectors sync|migrate`'s flags are one level further down.
            if let Some((_, leaf)) = sub.subcommand() {
                vectors(v, leaf);
            }
        }
        Command::Search(a) => {
            retrieval(&mut a.retrieval);
            vectors(&mut a.vectors, sub);
        }
        Command::Worker(a) => {
            chunking(&mut a.chunking);
            cluster(&mut a.cluster);
            if let Some(v) = file.cluster.server.clone().filter(|_| unset(sub, "server")) {
                a.server = Some(v);
            }
        }
        Command::Ingest(a) => {
            chunking(&mut a.chunking);
            vectors(&mut a.vectors, sub);
        }
        Command::Eval(a) => {
            chunking(&mut a.chunking);
            retrieval(&mut a.retrieval);
        }
        Command::Serve(a) => {
            chunking(&mut a.chunking);
            retrieval(&mut a.retrieval);
            cluster(&mut a.cluster);
            vectors(&mut a.vectors, sub);
            let s = &file.serve;
            if let Some(v) = s.bind.clone().filter(|_| unset(sub, "bind")) {
                a.bind = v;
            }
            if let Some(v) = s.workers.filter(|_| unset(sub, "workers")) {
                a.workers = Some(v);
            }
            if let Some(v) = s.max_upload_mb.filter(|_| unset(sub, "max_upload_mb")) {
                a.max_upload_mb = v;
            }
            if let Some(v) = s.lease_secs.filter(|_| unset(sub, "lease_secs")) {
                a.lease_secs = v;
            }
            if let Some(v) = s.reconcile_secs.filter(|_| unset(sub, "reconcile_secs")) {
                a.reconcile_secs = v;
            }
            if let Some(v) = s.allowed_origins.clone().filter(|_| unset(sub, "allowed_origins")) {
                a.allowed_origins = v;
            }
            if let Some(v) = s.public_url.clone().filter(|_| unset(sub, "public_url")) {
                a.public_url = Some(v);
            }
            if let Some(v) = s.max_files_per_upload.filter(|_| unset(sub, "max_files_per_upload")) {
                a.max_files_per_upload = v;
            }
            if let Some(v) = s.max_pending.filter(|_| unset(sub, "max_pending")) {
                a.max_pending = v;
            }
            if let Some(v) = s.rate_limit.filter(|_| unset(sub, "rate_limit")) {
                a.rate_limit = v;
            }
            if let Some(v) = s.rate_burst.filter(|_| unset(sub, "rate_burst")) {
                a.rate_burst = v;
            }
            let c = &file.chat;
            if let Some(v) = c.backend.filter(|_| unset(sub, "chat_backend")) {
                a.chat_backend = Some(v);
            }
            if let Some(v) = c.endpoint.clone().filter(|_| unset(sub, "chat_endpoint")) {
                a.chat_endpoint = Some(v);
            }
            if let Some(v) = c.model.clone().filter(|_| unset(sub, "chat_model")) {
                a.chat_model = Some(v);
            }
            if let Some(v) = c.api_key.clone().filter(|_| unset(sub, "chat_api_key")) {
                a.chat_api_key = Some(v);
            }
            if let Some(v) = c.models.clone().filter(|_| unset(sub, "chat_models")) {
                a.chat_models = Some(v);
            }
        }
        _ => {}
    }
    Ok(())
}

fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| text[..s.start.min(text.len())].lines().count().max(1));
        let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        anyhow::anyhow!("configuration file {}, line {line}: {message}", path.display())
    })
}
