//! The ingestion pipeline: bytes in, searchable chunks out.
//!
//! For each document: read → hash the bytes (an unchanged document is skipped) → extract
//! ([`ragmill_extract::Extractor`], PDF and DOCX in a sandboxed child process) → chunk
//! ([`ragmill_chunk::Chunker`]) → hash each chunk → look up the embedding cache → embed the
//! misses through the shared [`Batcher`] → cache the new vectors → store the document and its
//! chunks in one transaction. Many documents run at once and their misses share batches.
//!
//! Failures are per document: a file that cannot be read, extracted or embedded is recorded as
//! failed with a stable code and a message, and every other document carries on.

mod batcher;
mod catalog;
mod error;
mod external;
mod ingest;
mod search;
mod vectors;

use std::sync::Arc;

pub use batcher::{BatchConfig, BatchObserver, Batcher, BatcherStats, Embedded};
pub use catalog::{LocalCatalog, on_store};
pub use error::IngestError;
pub use external::{SyncReport, Vectors};
pub use ingest::{Ingested, Input, Outcome, Prechunked, Source};
pub use search::{RetrievalConfig, SearchMode, SearchOptions};
pub use vectors::StoreIndex;

use ragmill_chunk::Chunker;
use ragmill_core::{Catalog, Embedder, Progress, Reranker, VectorIndex};
use ragmill_extract::Extractor;
use ragmill_store::{SearchHit, Store, StoreError, UserId};

/// Called with (document index, progress) as each document advances.
pub type ProgressFn = Arc<dyn Fn(usize, &Progress) + Send + Sync>;

/// How many documents run at once.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Documents in flight at once (extraction, chunking and storage overlap with embedding).
    pub parallel_documents: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { parallel_documents: 8 }
    }
}

/// A search could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Embedding the query failed.
    #[error(transparent)]
    Embed(#[from] ragmill_core::EmbedError),
    /// The store failed, or the collection was built with another model.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vector index failed.
    #[error(transparent)]
    Index(#[from] ragmill_core::IndexError),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The pipeline and everything it needs, shared by all ingests and searches.
#[derive(Clone)]
pub struct Pipeline {
    /// The store for search; none in a worker whose store is behind the main server.
    store: Option<Arc<Store>>,
    /// Where ingestion reads stored versions and the cache, and writes results.
    catalog: Arc<dyn Catalog>,
    /// Where search finds the nearest chunks (the embedded index by default).
    index: Option<Arc<dyn VectorIndex>>,
    extractor: Extractor,
    chunker: Arc<Chunker>,
    embedder: Arc<dyn Embedder>,
    batcher: Batcher,
    config: PipelineConfig,
    retrieval: RetrievalConfig,
    reranker: Option<Arc<dyn Reranker>>,
    /// Who this pipeline's outcomes are logged as in the store's processing log.
    origin: Arc<str>,
}

impl Pipeline {
    /// Assembles a pipeline over the embedded store (ingestion and search) and starts its
    /// batcher on the current tokio runtime.
    pub fn new(
        store: Arc<Store>,
        extractor: Extractor,
        chunker: Arc<Chunker>,
        embedder: Arc<dyn Embedder>,
        batch: BatchConfig,
        config: PipelineConfig,
    ) -> Self {
        let catalog = Arc::new(LocalCatalog::new(Arc::clone(&store)));
        let mut pipeline = Self::ingesting(catalog, extractor, chunker, embedder, batch, config);
        pipeline.index = Some(Arc::new(StoreIndex::new(Arc::clone(&store))));
        pipeline.store = Some(store);
        pipeline
    }

    /// Assembles a pipeline that only ingests, into `catalog` (a worker whose store is behind
    /// the main server); [`Pipeline::search`] answers an error.
    pub fn ingesting(
        catalog: Arc<dyn Catalog>,
        extractor: Extractor,
        chunker: Arc<Chunker>,
        embedder: Arc<dyn Embedder>,
        batch: BatchConfig,
        config: PipelineConfig,
    ) -> Self {
        let batcher = Batcher::start(Arc::clone(&embedder), batch);
        Self {
            store: None,
            catalog,
            index: None,
            extractor,
            chunker,
            embedder,
            batcher,
            config,
            retrieval: RetrievalConfig::default(),
            reranker: None,
            origin: catalog::DEFAULT_ORIGIN.into(),
        }
    }

    /// The embedded store, when this pipeline has one.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// The largest original the extractor accepts, in bytes.
    pub fn max_input_bytes(&self) -> u64 {
        self.extractor.limits().max_input_bytes
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// The chunker (the model's tokenizer: [`Chunker::count_tokens`] counts as the model sees a
    /// text).
    pub fn chunker(&self) -> &Arc<Chunker> {
        &self.chunker
    }

    /// The shared batcher: texts submitted here are packed into the same batches as every
    /// document's chunks, and a text already queued or in flight is joined, not embedded again.
    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// Reports every embedding batch to `observer` (for metrics). The batcher is shared by all
    /// clones of this pipeline, so they all report to it.
    pub fn with_batch_observer(self, observer: Arc<dyn BatchObserver>) -> Self {
        self.batcher.set_observer(observer);
        self
    }

    /// Batching figures so far.
    pub fn batcher_stats(&self) -> BatcherStats {
        self.batcher.stats()
    }

    /// Searches `index` instead of the embedded one, and (with an external index) keeps it in
    /// step with the store on every version stored ([`Vectors`]).
    pub fn with_vector_index(mut self, index: Arc<dyn VectorIndex>) -> Self {
        self.index = Some(index);
        if let Some(catalog) = self.local_catalog() {
            self.catalog = Arc::new(catalog);
        }
        self
    }

    /// Logs the outcomes of this pipeline's ingestion as done by `origin` in the store's
    /// processing log (`server` for the server's workers; `cli` unless told). A pipeline that
    /// only ingests into another catalog ([`Pipeline::ingesting`]) has no store of its own:
    /// there the catalog's owner names who did the work.
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = origin.into();
        if let Some(catalog) = self.local_catalog() {
            self.catalog = Arc::new(catalog);
        }
        self
    }

    /// The store and its external index kept in step, when this pipeline has both.
    pub fn vectors(&self) -> Option<Vectors> {
        let (store, index) = (self.store.as_ref()?, self.index.as_ref()?);
        index.external().then(|| Vectors::new(Arc::clone(store), Arc::clone(index)))
    }

    /// The vector index searches ask (the embedded one unless another was given).
    pub fn vector_index(&self) -> Option<&Arc<dyn VectorIndex>> {
        self.index.as_ref()
    }

    /// A catalog over this pipeline's store that keeps its external index in step (what the
    /// main server's internal routes write through for remote workers).
    pub fn local_catalog(&self) -> Option<LocalCatalog> {
        let store = self.store.as_ref()?;
        Some(LocalCatalog::with_vectors(Arc::clone(store), self.vectors()).by(&self.origin))
    }

    /// Searches with `retrieval`'s fusion settings and default mode.
    pub fn with_retrieval(mut self, retrieval: RetrievalConfig) -> Self {
        self.retrieval = retrieval;
        self
    }

    /// Reranks the fused top candidates of every search with `reranker`.
    pub fn with_reranker(mut self, reranker: Arc<dyn Reranker>) -> Self {
        self.reranker = Some(reranker);
        self
    }

    /// The retrieval settings (the default mode, the fusion's weights).
    pub fn retrieval(&self) -> RetrievalConfig {
        self.retrieval
    }

    /// The user's best `options.top_k` chunks for `query`, best first: by vector, by keyword
    /// or both fused ([`SearchMode`]), reranked when a reranker is configured. A vector search
    /// refuses a collection built with another model.
    pub async fn search(
        &self,
        user: UserId,
        query: &str,
        options: SearchOptions,
    ) -> Result<Vec<SearchHit>, SearchError> {
        let (Some(store), Some(index)) = (self.store.as_ref(), self.index.as_ref()) else {
            return Err(SearchError::Internal("this pipeline has no store to search".into()));
        };
        search::Retrieval {
            store,
            index: index.as_ref(),
            embedder: self.embedder.as_ref(),
            reranker: self.reranker.as_deref(),
            config: self.retrieval,
        }
        .run(user, query, options)
        .await
    }
}

/// Runs blocking work (SQLite, tokenisation) off the async threads; a panic becomes an error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SearchError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SearchError::Internal(e.to_string()))
}
