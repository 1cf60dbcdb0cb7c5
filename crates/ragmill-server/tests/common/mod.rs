//! Shared helpers of the server's in-process API tests: the whole `/v1` router over a real
//! SQLite store in a temporary directory, the embedded queue, the in-process event bus, and
//! a model-free pipeline (a word-level tokenizer built here and [`WordHashEmbedder`], which
//! maps each word to a fixed direction so that texts sharing words are similar). Requests go
//! through `app(state)` with `tower::ServiceExt::oneshot`, no socket.

#![allow(dead_code)] // each test binary uses its own share of these helpers

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::{EmbedError, Embedder, JobQueue, ModelInfo};
use ragmill_extract::{Extractor, Limits};
use ragmill_pipeline::{BatchConfig, Pipeline, PipelineConfig};
use ragmill_queue::{EmbeddedQueue, QueueConfig, SqliteQueue};
use ragmill_server::{AppState, Blobs, Seams, ServerConfig, Workers};
use ragmill_store::Store;
use serde_json::Value;
use tower::ServiceExt;

/// Vector length of [`WordHashEmbedder`].
pub const DIMS: usize = 64;

/// A model-free embedder: the normalised sum of one pseudo-random direction per lowercase
/// word. `info()` panics while `panic_on_info` is set, to crash a job from inside.
#[derive(Default)]
pub struct WordHashEmbedder {
    info: Option<ModelInfo>,
    /// Makes `info()` panic (the pipeline calls it inside a worker's job).
    pub panic_on_info: AtomicBool,
    /// Milliseconds each batch takes (0: none), to catch a document mid-embedding.
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Batches embedded so far.
    pub batches: std::sync::atomic::AtomicUsize,
}

impl WordHashEmbedder {
    /// The embedder.
    pub fn new() -> Self {
        Self {
            info: Some(ModelInfo {
                id: "test/word-hash".into(),
                space: "test/word-hash".into(),
                dimensions: DIMS,
                max_tokens: 64,
                preferred_batch: 16,
            }),
            panic_on_info: AtomicBool::new(false),
            delay_ms: std::sync::atomic::AtomicU64::new(0),
            batches: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn vector(text: &str) -> Vec<f32> {
        let mut v = vec![0f32; DIMS];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = blake3::hash(word.to_lowercase().as_bytes());
            for (i, b) in h.as_bytes().iter().enumerate() {
                v[(i * 7 + usize::from(*b)) % DIMS] += f32::from(*b) / 255.0 - 0.5;
            }
        }
        ragmill_core::normalize(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for WordHashEmbedder {
    fn info(&self) -> &ModelInfo {
        assert!(!self.panic_on_info.load(Ordering::SeqCst), "the test embedder was told to panic");
        self.info.as_ref().expect("built with new()")
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.batches.fetch_add(1, Ordering::SeqCst);
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}

/// A word-level tokenizer: every whitespace-separated word is one token (`[UNK]`), no
/// special tokens. Enough for the chunker to size chunks without a model.
pub fn word_tokenizer() -> tokenizers::Tokenizer {
    let json = r#"{
      "version": "1.0",
      "truncation": null,
      "padding": null,
      "added_tokens": [],
      "normalizer": null,
      "pre_tokenizer": {"type": "WhitespaceSplit"},
      "post_processor": null,
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
    }"#;
    json.parse().expect("a valid tokenizer.json")
}

/// The router and everything behind it, in a temporary directory.
pub struct TestApp {
    /// The shared state (for workers and direct checks).
    pub state: AppState,
    /// The embedder, to make it panic.
    pub embedder: Arc<WordHashEmbedder>,
    /// The SQLite queue under the seam.
    pub sqlite: Arc<SqliteQueue>,
    /// Holds the data directory.
    pub dir: tempfile::TempDir,
    /// `app(state)`, built once (building reads the embedder's model info).
    router: axum::Router,
}

impl TestApp {
    /// An app over the embedded queue.
    pub async fn new() -> Self {
        Self::build(|q| q).await
    }

    /// An app whose queue is `wrap(embedded queue)`.
    pub async fn build(wrap: impl FnOnce(Arc<dyn JobQueue>) -> Arc<dyn JobQueue>) -> Self {
        Self::assemble(wrap, |p| p, |_| {}).await
    }

    /// An app whose pipeline is `adapt(the test pipeline)` (a reranker, retrieval settings).
    pub async fn with_pipeline(adapt: impl FnOnce(Pipeline) -> Pipeline) -> Self {
        Self::assemble(|q| q, adapt, |_| {}).await
    }

    /// An app whose settings are the test's, changed by `change` (a worker key, limits).
    pub async fn with_config(change: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::assemble(|q| q, |p| p, change).await
    }

    async fn assemble(
        wrap: impl FnOnce(Arc<dyn JobQueue>) -> Arc<dyn JobQueue>,
        adapt: impl FnOnce(Pipeline) -> Pipeline,
        change: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let config = QueueConfig { lease: Duration::from_secs(5), ..QueueConfig::default() };
        let queue = EmbeddedQueue::new(SqliteQueue::open(store.path(), config).expect("queue"));
        let sqlite = Arc::clone(queue.sqlite());
        let embedder = Arc::new(WordHashEmbedder::new());
        let chunker = Chunker::new(
            word_tokenizer(),
            ChunkerConfig { max_tokens: 64, target_tokens: 48, overlap_tokens: 8 },
        )
        .expect("chunker");
        let pipeline = Pipeline::new(
            Arc::clone(&store),
            Extractor::in_process(Limits::default()),
            Arc::new(chunker),
            Arc::clone(&embedder) as Arc<dyn Embedder>,
            BatchConfig::default(),
            PipelineConfig::default(),
        );
        let pipeline = adapt(pipeline);
        let blobs = Blobs::new(dir.path()).expect("blobs");
        let mut config = ServerConfig { workers: 2, ..ServerConfig::default() };
        change(&mut config);
        let seams = Seams::embedded(wrap(Arc::new(queue)));
        let state = AppState::new(store, seams, pipeline, blobs, config);
        let router = ragmill_server::app(state.clone());
        Self { state, embedder, sqlite, dir, router }
    }

    /// An app whose vectors are kept and searched in the ChromaDB server at `url`, on a
    /// database of its own; answers the index too, to look into.
    pub async fn with_chroma(url: &str) -> (Self, Arc<ragmill_chroma::ChromaIndex>) {
        let mut config = ragmill_chroma::ChromaConfig::new(url);
        config.database = format!("db_{}", fastrand::u64(..));
        config.timeout = Duration::from_secs(3);
        let index =
            Arc::new(ragmill_chroma::ChromaIndex::connect(config).await.expect("connect chroma"));
        let vectors = Arc::clone(&index) as Arc<dyn ragmill_core::VectorIndex>;
        let app = Self::assemble(|q| q, move |p| p.with_vector_index(vectors), |_| {}).await;
        (app, index)
    }

    /// Creates user `name` and returns their API key.
    pub fn user(&self, name: &str) -> String {
        let id = self.state.store.ensure_user(name).expect("user");
        self.state.store.create_api_key(id).expect("key")
    }

    /// The router (`app(state)`), to send requests whose answers are streams.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Keeps `bytes` as an original, as an upload does, and answers its hash.
    pub async fn put_blob(&self, bytes: &[u8]) -> ragmill_core::ContentHash {
        let mut incoming = self.state.blobs.incoming().await.expect("incoming");
        incoming.write(bytes).await.expect("write");
        incoming.finish().await.expect("finish");
        self.state.blobs.commit(incoming).await.expect("commit").0
    }

    /// Starts the background workers.
    pub fn workers(&self) -> Workers {
        ragmill_server::spawn_workers(&self.state.worker_context())
    }

    /// Sends one request through the router; answers the status and the JSON body (Null if
    /// the body is not JSON).
    pub async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// `GET path` with `key`.
    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.call(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// `method path` with `key` and a JSON body.
    pub async fn send(
        &self,
        method: &str,
        key: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
    }

    /// `POST /v1/documents` with `files` (name, bytes) as multipart `file` parts.
    pub async fn upload(&self, key: &str, files: &[(&str, &[u8])]) -> (StatusCode, Value) {
        self.call(upload_request(key, files)).await
    }

    /// Waits until document `id` of `key`'s user is `ready` or `failed` and returns it.
    pub async fn settled(&self, key: &str, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, doc) = self.get(key, &format!("/v1/documents/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{doc}");
            if doc["state"] == "ready" || doc["state"] == "failed" {
                return doc;
            }
            assert!(Instant::now() < deadline, "document {id} never settled: {doc}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The id of the `i`th document of an upload's answer.
pub fn doc_id(upload: &Value, i: usize) -> i64 {
    upload["documents"][i]["id"].as_i64().unwrap_or_else(|| panic!("no document {i}: {upload}"))
}

/// A `POST /v1/documents` request of `key`'s with `files` (name, bytes) as multipart `file`
/// parts.
pub fn upload_request(key: &str, files: &[(&str, &[u8])]) -> Request<Body> {
    let boundary = "ragmill-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::post("/v1/documents")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .expect("request")
}
