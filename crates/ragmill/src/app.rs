//! Assembling the pipeline from settings.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::Embedder;
use ragmill_embed::{LocalEmbedder, LocalOptions, ModelDir};
use ragmill_extract::{Extractor, Limits};
use ragmill_pipeline::{BatchConfig, Pipeline, PipelineConfig, RetrievalConfig};
use ragmill_store::{IndexSettings, Store};

use ragmill_remote::chat::ChatClient;
use ragmill_remote::{BackendKind, EndpointConfig, Pool, PoolConfig};

use crate::cli::{
    ChatBackend, ChunkArgs, EmbedBackend, Global, RetrievalArgs, ServeArgs, VectorArgs,
    VectorBackend,
};

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

/// The embedding backend `--embed-backend` names: the local model, or a pool of remote
/// endpoints (probed for their dimension before this returns).
pub async fn backend(global: &Global, batch: usize) -> Result<Arc<dyn Embedder>> {
    let kind = match global.embed_backend {
        EmbedBackend::Local => return Ok(embedder(global, batch)?),
        EmbedBackend::Ollama => BackendKind::Ollama,
        EmbedBackend::Openai => BackendKind::OpenAi,
    };
    if global.embed_endpoints.is_empty() {
        bail!("--embed-backend {} needs at least one --embed-endpoint URL", kind.as_str());
    }
    let Some(model) = global.embed_model.clone() else {
        bail!(
            "--embed-backend {} needs --embed-model (the model name the servers serve)",
            kind.as_str()
        );
    };
    let endpoints = global
        .embed_endpoints
        .iter()
        .map(|url| EndpointConfig {
            api_key: global.embed_api_key.clone(),
            ..EndpointConfig::new(kind, url.trim(), model.clone())
        })
        .collect();
    let mut config = PoolConfig { endpoints, ..global.embed_pool.clone().unwrap_or_default() };
    // Chunks are cut with the local model directory's tokenizer: never longer than its window.
    if let Ok(dir) = ModelDir::open(&global.model_dir) {
        config.max_tokens = config.max_tokens.min(dir.max_seq_length);
    }
    let pool = Pool::connect(config).await.with_context(|| {
        format!(
            "connecting to the {} endpoints {}",
            kind.as_str(),
            global.embed_endpoints.join(", ")
        )
    })?;
    Ok(Arc::new(pool))
}

/// The chat model `serve --chat-*` names, if any (no I/O: an unreachable server shows at the
/// first chat).
pub fn chat(args: &ServeArgs) -> Result<Option<ChatClient>> {
    let endpoint = args.chat_endpoint.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let model = args.chat_model.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let Some(backend) = args.chat_backend else {
        if endpoint.is_some() || model.is_some() {
            bail!("--chat-endpoint and --chat-model need --chat-backend ollama|openai");
        }
        return Ok(None);
    };
    let (kind, name) = match backend {
        ChatBackend::Ollama => (BackendKind::Ollama, "ollama"),
        ChatBackend::Openai => (BackendKind::OpenAi, "openai"),
    };
    let Some(endpoint) = endpoint else {
        bail!("--chat-backend {name} needs --chat-endpoint URL (the chat server's base URL)");
    };
    let Some(model) = model else {
        bail!("--chat-backend {name} needs --chat-model NAME (the model the server serves)");
    };
    let client = ChatClient::new(kind, endpoint, model, args.chat_api_key.clone())
        .with_context(|| format!("setting up the {name} chat model {model}"))?;
    Ok(Some(match &args.chat_models {
        Some(models) => client.with_models(models),
        None => client,
    }))
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

/// The store, with the vector index settings of `retrieval`.
pub fn search_store(global: &Global, retrieval: &RetrievalArgs) -> Result<Arc<Store>> {
    let settings =
        IndexSettings { ann_threshold: retrieval.ann_threshold, ..IndexSettings::default() };
    let store = Store::open_with(&global.data_dir, settings)
        .with_context(|| format!("opening the data directory {}", global.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// `pipeline` searching as `retrieval` says: its default mode, fusion weights and reranker.
pub fn searching(pipeline: Pipeline, retrieval: &RetrievalArgs) -> Result<Pipeline> {
    let r = retrieval;
    for (name, w) in [("--vector-weight", r.vector_weight), ("--keyword-weight", r.keyword_weight)]
    {
        if !(w.is_finite() && w >= 0.0) {
            bail!("{name} must be a number ≥ 0, not {w}");
        }
    }
    let config = RetrievalConfig {
        default_mode: r.search_mode,
        vector_weight: r.vector_weight,
        keyword_weight: r.keyword_weight,
        ..RetrievalConfig::default()
    };
    let pipeline = pipeline.with_retrieval(config);
    let Some(url) = &r.rerank_endpoint else { return Ok(pipeline) };
    let mut rerank = ragmill_remote::RerankConfig::new(url.clone(), r.rerank_format);
    rerank.model = r.rerank_model.clone();
    rerank.api_key = r.rerank_api_key.clone();
    rerank.validate().map_err(|e| anyhow::anyhow!("--rerank-endpoint: {e}"))?;
    let reranker = ragmill_remote::HttpReranker::new(rerank).context("setting up the reranker")?;
    Ok(pipeline.with_reranker(Arc::new(reranker)))
}

/// The ChromaDB server `args` names, connected (its tenant and database made if missing).
pub async fn chroma(args: &VectorArgs) -> Result<Arc<ragmill_chroma::ChromaIndex>> {
    let config = ragmill_chroma::ChromaConfig {
        url: args.chroma_url.trim().to_owned(),
        tenant: args.chroma_tenant.clone(),
        database: args.chroma_database.clone(),
        token: args.chroma_token.clone(),
        timeout: std::time::Duration::from_millis(args.chroma_timeout_ms.max(1)),
    };
    let index = ragmill_chroma::ChromaIndex::connect(config)
        .await
        .with_context(|| format!("connecting to ChromaDB at {}", args.chroma_url))?;
    Ok(Arc::new(index))
}

/// `pipeline` keeping and searching its vectors where `args` says: the embedded index, or a
/// ChromaDB server (connected now: an unreachable one is an error at start-up).
pub async fn with_vectors(pipeline: Pipeline, args: &VectorArgs) -> Result<Pipeline> {
    match args.vectors {
        VectorBackend::Embedded => Ok(pipeline),
        VectorBackend::Chroma => Ok(pipeline.with_vector_index(chroma(args).await?)),
    }
}

/// The full pipeline over `store`, embedding with [`backend`].
pub async fn pipeline(global: &Global, store: Arc<Store>, chunking: ChunkArgs) -> Result<Pipeline> {
    let (extractor, chunker, embedder, batch, config) = parts(global, chunking).await?;
    Ok(Pipeline::new(store, extractor, chunker, embedder, batch, config))
}

/// A pipeline that ingests into `catalog` (a cluster worker's main server).
pub async fn ingesting_pipeline(
    global: &Global,
    catalog: Arc<dyn ragmill_core::Catalog>,
    chunking: ChunkArgs,
) -> Result<Pipeline> {
    let (extractor, chunker, embedder, batch, config) = parts(global, chunking).await?;
    Ok(Pipeline::ingesting(catalog, extractor, chunker, embedder, batch, config))
}

type Parts =
    (Extractor, Arc<Chunker>, Arc<dyn ragmill_core::Embedder>, BatchConfig, PipelineConfig);

/// Everything a pipeline is made of, from the global settings.
async fn parts(global: &Global, chunking: ChunkArgs) -> Result<Parts> {
    let embedder = backend(global, chunking.batch).await?;
    let max_tokens = embedder.info().max_tokens;
    let config = ChunkerConfig {
        max_tokens,
        target_tokens: chunking.chunk_tokens.min(max_tokens),
        overlap_tokens: chunking.chunk_overlap,
    };
    let tokenizer = global.model_dir.join("tokenizer.json");
    let chunker = Chunker::from_file(&tokenizer, config).context("setting up the chunker")?;
    // The local model takes one batch at a time (it uses every core); a pool takes enough
    // batches at once to keep each endpoint's slots busy.
    let (max_batch, concurrency) = match global.embed_backend {
        EmbedBackend::Local => (chunking.batch.max(1), 1),
        _ => (embedder.info().preferred_batch.max(1), 2 * global.embed_endpoints.len().max(1)),
    };
    let batch = BatchConfig {
        max_batch,
        max_tokens: max_batch * max_tokens,
        concurrency,
        ..BatchConfig::default()
    };
    Ok((
        extractor()?,
        Arc::new(chunker),
        embedder,
        batch,
        PipelineConfig { parallel_documents: chunking.parallel.max(1) },
    ))
}
