//! Operational metrics, served at `GET /metrics` in the OpenMetrics text format.
//!
//! Events are recorded where they happen: embedding batches by the pipeline's batcher (through a
//! [`BatchObserver`]), documents by the workers, requests to the embedding API
//! ([`crate::embeddings`]) by its handlers. Levels (documents by state, queue depth) are
//! read from the store and the queue at scrape time, so they are right after a restart too.
//! No metric carries a user, a document name or any content.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use ragmill_core::Depth;
use ragmill_pipeline::{BatchObserver, Ingested};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Document states, always exported (0 when none) so a dashboard sees every series.
const DOCUMENT_STATES: [&str; 5] = ["queued", "processing", "ready", "failed", "paused"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatusLabel {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// The registry and a handle on every metric.
pub struct Metrics {
    registry: Registry,
    documents: Family<StateLabel, Gauge>,
    queue_jobs: Family<StateLabel, Gauge>,
    workers_busy: Gauge,
    document_seconds: Histogram,
    document_errors: Family<CodeLabel, Counter>,
    cache_hits: Counter,
    cache_misses: Counter,
    embedding: EmbeddingMetrics,
    embed_api: EmbedApiMetrics,
}

/// What the batcher records; clones share the underlying values.
#[derive(Clone)]
struct EmbeddingMetrics {
    chunks: Counter,
    batch_size: Histogram,
    batch_seconds: Histogram,
    batch_failures: Counter,
    /// Every batch's time in microseconds, successful or not (the histogram's sum cannot be
    /// read back).
    batch_micros: Counter,
}

/// The embedding batches since start-up: how many failed, and their total time (the batcher
/// itself counts them: `Pipeline::batcher_stats`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BatchTotals {
    /// Batches that failed.
    pub failures: u64,
    /// Their total time, in seconds.
    pub seconds: f64,
}

impl EmbeddingMetrics {
    /// Creates the batch metrics and registers them in `registry`.
    fn registered(registry: &mut Registry) -> Self {
        let embedding = EmbeddingMetrics {
            chunks: Counter::default(),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            batch_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            batch_failures: Counter::default(),
            batch_micros: Counter::default(),
        };
        registry.register(
            "embedded_chunks",
            "Chunk texts embedded by the model (each distinct text once, however many documents had it)",
            embedding.chunks.clone(),
        );
        registry.register(
            "embedding_batch_size",
            "Texts per batch sent to the embedder",
            embedding.batch_size.clone(),
        );
        registry.register_with_unit(
            "embedding_batch_duration",
            "Time the embedder took for one batch",
            Unit::Seconds,
            embedding.batch_seconds.clone(),
        );
        registry.register(
            "embedding_batch_failures",
            "Batches the embedder failed",
            embedding.batch_failures.clone(),
        );
        embedding
    }
}

/// Requests to the embedding API (`/api/embed`, `/v1/embeddings`, `/api/tags`, `/v1/models`)
/// and the texts they embedded; clones share the underlying values.
#[derive(Clone, Default)]
pub struct EmbedApiMetrics {
    requests: Family<RouteStatusLabel, Counter>,
    texts: Family<RouteLabel, Counter>,
}

impl EmbedApiMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "embedding_api_requests",
            "Requests to the embedding API by route and HTTP status",
            self.requests.clone(),
        );
        registry.register(
            "embedding_api_texts",
            "Input texts embedded for the embedding API by route (before batching and deduplication)",
            self.texts.clone(),
        );
    }

    /// Counts one request to `route` answered with `status` that embedded `texts` inputs.
    pub fn request(&self, route: &str, status: u16, texts: usize) {
        let label = RouteStatusLabel { route: route.to_owned(), status: status.to_string() };
        self.requests.get_or_create(&label).inc();
        if texts > 0 {
            self.texts.get_or_create(&RouteLabel { route: route.to_owned() }).inc_by(texts as u64);
        }
    }
}

impl BatchObserver for EmbeddingMetrics {
    fn batch(&self, texts: usize, elapsed: Duration, ok: bool) {
        self.batch_size.observe(texts as f64);
        self.batch_seconds.observe(elapsed.as_secs_f64());
        self.batch_micros.inc_by(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        if ok {
            self.chunks.inc_by(texts as u64);
        } else {
            self.batch_failures.inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `ragmill_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ragmill");
        let documents = Family::<StateLabel, Gauge>::default();
        registry.register(
            "documents",
            "Documents by state (queued, processing, ready, failed, paused), all users, read at scrape time",
            documents.clone(),
        );
        let queue_jobs = Family::<StateLabel, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Jobs in the durable queue by state (queued, leased, parked), read at scrape time",
            queue_jobs.clone(),
        );
        let workers_busy = Gauge::default();
        registry.register(
            "workers_busy",
            "Background workers processing a document right now",
            workers_busy.clone(),
        );
        let document_seconds =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]);
        registry.register_with_unit(
            "document_processing",
            "Time to process one document that became ready, read to stored",
            Unit::Seconds,
            document_seconds.clone(),
        );
        let document_errors = Family::<CodeLabel, Counter>::default();
        registry.register(
            "document_errors",
            "Document processing failures by stable error code, every attempt (retried ones too)",
            document_errors.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "embedding_cache_hits",
            "Chunks whose vector came from the embedding cache (or a same-text chunk of the same document)",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "embedding_cache_misses",
            "Distinct chunk texts that missed the embedding cache and were sent to the batcher",
            cache_misses.clone(),
        );
        let embedding = EmbeddingMetrics::registered(&mut registry);
        let embed_api = EmbedApiMetrics::default();
        embed_api.register(&mut registry);
        Self {
            registry,
            documents,
            queue_jobs,
            workers_busy,
            document_seconds,
            document_errors,
            cache_hits,
            cache_misses,
            embedding,
            embed_api,
        }
    }

    /// The metrics of a lean embedding server (no documents, queue or workers): embedding
    /// batches and embedding API requests only. [`encode`](Self::encode) it with no levels.
    pub fn embedding_server() -> Self {
        let mut registry = Registry::with_prefix("ragmill");
        let embedding = EmbeddingMetrics::registered(&mut registry);
        let embed_api = EmbedApiMetrics::default();
        embed_api.register(&mut registry);
        Self {
            registry,
            documents: Family::default(),
            queue_jobs: Family::default(),
            workers_busy: Gauge::default(),
            document_seconds: Histogram::new([1.0]),
            document_errors: Family::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            embedding,
            embed_api,
        }
    }

    /// The counters of the embedding API.
    pub fn embed_api(&self) -> EmbedApiMetrics {
        self.embed_api.clone()
    }

    /// The embedding batches since start-up.
    pub fn batch_totals(&self) -> BatchTotals {
        let e = &self.embedding;
        BatchTotals { failures: e.batch_failures.get(), seconds: e.batch_micros.get() as f64 / 1e6 }
    }

    /// The observer to hand the pipeline's batcher.
    pub fn batch_observer(&self) -> Arc<dyn BatchObserver> {
        Arc::new(self.embedding.clone())
    }

    /// Records a document the pipeline processed (an unchanged one did no work: not counted).
    pub fn document_done(&self, ok: &Ingested) {
        if ok.unchanged {
            return;
        }
        if let Some(total) = ok.timings.get("total") {
            self.document_seconds.observe(*total);
        }
        self.cache_hits.inc_by(ok.cache_hits as u64);
        self.cache_misses.inc_by(ok.embedded as u64);
    }

    /// Records a failed attempt at a document.
    pub fn document_failed(&self, code: &str) {
        self.document_errors.get_or_create(&CodeLabel { code: code.to_owned() }).inc();
    }

    /// Encodes every metric, after setting the levels read at scrape time: documents by state,
    /// the queue's depth, and the workers busy now (counted by [`crate::activity::Activity`],
    /// the one owner of that figure).
    pub fn encode(
        &self,
        documents: &[(String, u64)],
        depth: Depth,
        workers_busy: u64,
    ) -> Result<String, String> {
        self.workers_busy.set(level(workers_busy));
        for state in DOCUMENT_STATES {
            self.documents.get_or_create(&StateLabel { state: state.to_owned() }).set(0);
        }
        for (state, n) in documents {
            self.documents.get_or_create(&StateLabel { state: state.clone() }).set(level(*n));
        }
        for (state, n) in
            [("queued", depth.queued), ("leased", depth.leased), ("parked", depth.parked)]
        {
            self.queue_jobs.get_or_create(&StateLabel { state: state.to_owned() }).set(level(n));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

fn level(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric_with_its_unit_and_the_scrape_time_levels() {
        let m = Metrics::new();
        m.batch_observer().batch(3, Duration::from_millis(40), true);
        m.batch_observer().batch(2, Duration::from_millis(10), false);
        let totals = m.batch_totals();
        assert_eq!(totals.failures, 1);
        assert!((totals.seconds - 0.05).abs() < 1e-6, "{totals:?}");
        let ok = Ingested {
            id: ragmill_store::DocumentId(1),
            chunks: 5,
            cache_hits: 2,
            embedded: 3,
            unchanged: false,
            timings: [("total".to_owned(), 0.7)].into(),
        };
        m.document_done(&ok);
        m.document_done(&Ingested { unchanged: true, ..ok });
        m.document_failed("empty_file");
        m.embed_api().request("/v1/embeddings", 200, 4);
        m.embed_api().request("/v1/embeddings", 200, 2);
        m.embed_api().request("/api/tags", 401, 0);
        let text = m
            .encode(&[("ready".into(), 4)], Depth { queued: 1, leased: 2, parked: 0 }, 1)
            .expect("encodes");
        for line in [
            "ragmill_documents{state=\"ready\"} 4",
            "ragmill_documents{state=\"failed\"} 0",
            "ragmill_queue_jobs{state=\"leased\"} 2",
            "ragmill_workers_busy 1",
            "ragmill_document_processing_seconds_count 1",
            "ragmill_document_processing_seconds_sum 0.7",
            "ragmill_document_errors_total{code=\"empty_file\"} 1",
            "ragmill_embedding_cache_hits_total 2",
            "ragmill_embedding_cache_misses_total 3",
            "ragmill_embedded_chunks_total 3",
            "ragmill_embedding_batch_size_count 2",
            "ragmill_embedding_batch_size_sum 5.0",
            "ragmill_embedding_batch_duration_seconds_count 2",
            "ragmill_embedding_batch_failures_total 1",
            "ragmill_embedding_api_requests_total{route=\"/v1/embeddings\",status=\"200\"} 2",
            "ragmill_embedding_api_requests_total{route=\"/api/tags\",status=\"401\"} 1",
            "ragmill_embedding_api_texts_total{route=\"/v1/embeddings\"} 6",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            m.encode(&[], Depth::default(), 0).expect("encodes").contains("ragmill_workers_busy 0")
        );
    }

    #[test]
    fn the_embedding_server_exports_batches_and_requests_only() {
        let m = Metrics::embedding_server();
        m.batch_observer().batch(5, Duration::from_millis(20), true);
        m.embed_api().request("/api/embed", 200, 5);
        let text = m.encode(&[], Depth::default(), 0).expect("encodes");
        for line in [
            "ragmill_embedding_batch_size_sum 5.0",
            "ragmill_embedded_chunks_total 5",
            "ragmill_embedding_api_texts_total{route=\"/api/embed\"} 5",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        for absent in ["ragmill_documents", "ragmill_queue_jobs", "ragmill_workers_busy"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }
}
