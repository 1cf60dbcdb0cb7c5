//! Stand-in embedding and chat servers for tests and benchmarks: in-process servers on loopback
//! that speak the real Ollama (`POST /api/embed`, `POST /api/chat`) and OpenAI
//! (`POST /v1/embeddings`, `POST /v1/chat/completions`) wire formats, with switchable latency and
//! misbehaviour. There is no model behind them.
//!
//! Vectors are computed from the text ([`raw_vector`]: a hash-seeded pseudo-random vector,
//! deliberately not of unit length), so every fake answers the same text with the same vector and
//! a test can compute the expected answer itself. Chat answers are canned the same way
//! ([`chat_reply`]: `Stand-in answer to: <last user message>. Sources: [1] [2]`, one `[n]` per
//! numbered passage of the system message), streamed one word per NDJSON line (Ollama) or per
//! `data:` event (OpenAI, ending with `data: [DONE]`), each after the token delay
//! ([`FakeServer::set_token_delay`]).
//!
//! A fake runs its own accept loop (an axum router on hyper connections) rather than
//! `axum::serve`, so that [`FakeServer::kill`] can drop the listener *and* every open connection
//! at once, like a crashed process: in-flight requests see their connection closed, new ones are
//! refused, until [`FakeServer::revive`].
//!
//! By default requests are served concurrently, each after the configured latency. In serial
//! mode ([`FakeServer::set_serial`]) a fake models a GPU server that runs one batch at a time:
//! requests queue and are served one after the other, each taking the latency (its service time)
//! in turn.
//!
//! Every fake also reranks ([`FakeReranker`] starts one for that alone): `POST /rerank` in the
//! Hugging Face TEI shape and `POST /v1/rerank` in the Cohere/Jina shape, scoring each text by
//! its lexical overlap with the query ([`rerank_score`]), with [`RerankFault`]s to switch on.
//!
//! ```no_run
//! use std::time::Duration;
//! use ragmill_remote::fake::FakeOllama;
//! # async fn run() -> std::io::Result<()> {
//! let server = FakeOllama::start(384).await?;
//! server.set_serial(true);
//! server.set_latency(Duration::from_millis(50)); // 50 ms per request, one request at a time
//! println!("point a pool at {}", server.url());
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod chat;
mod rerank;

pub use chat::chat_reply;
use chat::{handle_chat, handle_models};
pub use rerank::{FakeReranker, RerankFault, rerank_score};

/// How long the accept loop pauses after a failed `accept` (out of file descriptors, say), so a
/// persistent error does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Which API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Ollama's `POST /api/embed` and `POST /api/chat`.
    Ollama,
    /// The OpenAI embeddings and chat APIs, `POST /v1/embeddings` and
    /// `POST /v1/chat/completions`.
    OpenAi,
}

/// A fake Ollama server.
#[derive(Debug)]
pub struct FakeOllama;

impl FakeOllama {
    /// Starts one on a free loopback port, answering vectors of `dim` floats.
    pub async fn start(dim: usize) -> std::io::Result<FakeServer> {
        FakeServer::start(Wire::Ollama, dim, None).await
    }
}

/// A fake OpenAI-compatible server.
#[derive(Debug)]
pub struct FakeOpenAi;

impl FakeOpenAi {
    /// Starts one on a free loopback port, answering vectors of `dim` floats, without
    /// authentication.
    pub async fn start(dim: usize) -> std::io::Result<FakeServer> {
        FakeServer::start(Wire::OpenAi, dim, None).await
    }

    /// Starts one that answers 401 unless sent `Authorization: Bearer <key>`.
    pub async fn with_key(dim: usize, key: &str) -> std::io::Result<FakeServer> {
        FakeServer::start(Wire::OpenAi, dim, Some(key.to_owned())).await
    }
}

/// What the server does and has seen.
struct State {
    wire: Wire,
    dim: usize,
    api_key: Option<String>,
    latency_us: AtomicU64,
    serial: AtomicBool,
    /// Held for the service time of each request in serial mode: the one batch at a time.
    gpu: tokio::sync::Mutex<()>,
    fail: AtomicBool,
    wrong_dim: AtomicUsize,
    shuffle: AtomicBool,
    base64: AtomicBool,
    canned: Mutex<Option<(u16, String)>>,
    requests: AtomicUsize,
    texts: AtomicUsize,
    last: Mutex<Option<(Value, Option<String>)>>,
    token_delay_us: AtomicU64,
    chat_requests: AtomicUsize,
    last_chat: Mutex<Option<Value>>,
    models: Mutex<Vec<String>>,
    rerank_fault: Mutex<Option<RerankFault>>,
    rerank_requests: AtomicUsize,
    last_rerank: Mutex<Option<(Value, Option<String>)>>,
}

/// A running fake server (or a killed one). Dropping it stops it.
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .field("wire", &self.state.wire)
            .field("dim", &self.state.dim)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    async fn start(wire: Wire, dim: usize, api_key: Option<String>) -> std::io::Result<FakeServer> {
        FakeServer::start_on(wire, dim, api_key, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts one speaking `wire` on `addr` (port 0: a free port), answering vectors of `dim`
    /// floats, without authentication: the server of a stand-in process (`ragmill bench
    /// stand-in`) rather than of a test.
    pub async fn bind(wire: Wire, dim: usize, addr: SocketAddr) -> std::io::Result<FakeServer> {
        FakeServer::start_on(wire, dim, None, addr).await
    }

    async fn start_on(
        wire: Wire,
        dim: usize,
        api_key: Option<String>,
        addr: SocketAddr,
    ) -> std::io::Result<FakeServer> {
        let state = Arc::new(State {
            wire,
            dim,
            api_key,
            latency_us: AtomicU64::new(0),
            serial: AtomicBool::new(false),
            gpu: tokio::sync::Mutex::new(()),
            fail: AtomicBool::new(false),
            wrong_dim: AtomicUsize::new(0),
            shuffle: AtomicBool::new(false),
            base64: AtomicBool::new(false),
            canned: Mutex::new(None),
            requests: AtomicUsize::new(0),
            texts: AtomicUsize::new(0),
            last: Mutex::new(None),
            token_delay_us: AtomicU64::new(0),
            chat_requests: AtomicUsize::new(0),
            last_chat: Mutex::new(None),
            models: Mutex::new(Vec::new()),
            rerank_fault: Mutex::new(None),
            rerank_requests: AtomicUsize::new(0),
            last_rerank: Mutex::new(None),
        });
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = FakeServer { addr, state, task: Mutex::new(None) };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&self, listener: TcpListener) {
        let (embed, chat, models) = match self.state.wire {
            Wire::Ollama => ("/api/embed", "/api/chat", "/api/tags"),
            Wire::OpenAi => ("/v1/embeddings", "/v1/chat/completions", "/v1/models"),
        };
        let router = Router::new()
            .route(embed, post(handle))
            .route(chat, post(handle_chat))
            .route(models, axum::routing::get(handle_models))
            .route("/rerank", post(rerank::handle_tei))
            .route("/v1/rerank", post(rerank::handle_cohere))
            .with_state(self.state.clone());
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection too.
            let mut connections = JoinSet::new();
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        // A previous task (there is none unless `revive` was called on a live server) is
        // stopped rather than leaked.
        if let Some(old) = self.task.lock().unwrap_or_else(PoisonError::into_inner).replace(task) {
            old.abort();
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every answer by `latency` (in serial mode: the service time of each request).
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.state.latency_us.store(us, SeqCst);
    }

    /// The current latency.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.state.latency_us.load(SeqCst))
    }

    /// Serial mode: requests queue and are served one at a time, each taking the latency in turn,
    /// like a GPU server that runs one batch at a time. Off: requests are served concurrently.
    pub fn set_serial(&self, on: bool) {
        self.state.serial.store(on, SeqCst);
    }

    /// Answers 500 with the API's error body.
    pub fn set_failing(&self, on: bool) {
        self.state.fail.store(on, SeqCst);
    }

    /// Answers vectors of `dim` floats instead of the configured dimension (`None`: normal).
    pub fn set_wrong_dim(&self, dim: Option<usize>) {
        self.state.wrong_dim.store(dim.unwrap_or(0), SeqCst);
    }

    /// OpenAI: lists `data` in reverse `index` order.
    pub fn set_shuffle(&self, on: bool) {
        self.state.shuffle.store(on, SeqCst);
    }

    /// OpenAI: sends embeddings as base64 whatever the request asked.
    pub fn set_base64(&self, on: bool) {
        self.state.base64.store(on, SeqCst);
    }

    /// Answers every request with this status and body (an invalid status code answers 500).
    pub fn set_canned(&self, status: u16, body: impl Into<String>) {
        *self.state.canned.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((status, body.into()));
    }

    /// Embedding requests received (answered or not).
    pub fn requests(&self) -> usize {
        self.state.requests.load(SeqCst)
    }

    /// Texts embedded in successful answers.
    pub fn texts(&self) -> usize {
        self.state.texts.load(SeqCst)
    }

    /// The last request's JSON body and `Authorization` header.
    pub fn last_request(&self) -> Option<(Value, Option<String>)> {
        self.state.last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Delays each token of a chat answer by `delay` (default: none).
    pub fn set_token_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.state.token_delay_us.store(us, SeqCst);
    }

    /// Chat requests received (answered or not).
    pub fn chat_requests(&self) -> usize {
        self.state.chat_requests.load(SeqCst)
    }

    /// The last chat request's JSON body.
    pub fn last_chat_request(&self) -> Option<Value> {
        self.state.last_chat.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The models the server lists (Ollama's `GET /api/tags`, OpenAI's `GET /v1/models`;
    /// default: none).
    pub fn set_models(&self, models: &[&str]) {
        let models = models.iter().map(|m| (*m).to_owned()).collect();
        *self.state.models.lock().unwrap_or_else(PoisonError::into_inner) = models;
    }

    /// Stops like a crashed process: the listener closes (connections are refused) and every open
    /// connection is dropped, in-flight and queued requests included.
    pub async fn kill(&self) {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same address after [`kill`](Self::kill). Fails if the port cannot be
    /// bound again (another process took it).
    pub async fn revive(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

/// The fake's raw (not normalised) vector for `text`: FNV-1a of the text seeds a splitmix64
/// stream of values in [-3, 3).
pub fn raw_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut seed = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (0..dim)
        .map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
        })
        .collect()
}

/// The `Authorization` header and the JSON body of a request, or the answer to a body that is
/// not JSON.
fn read_request(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Option<String>, Value), Box<Response>> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match serde_json::from_slice(body) {
        Ok(v) => Ok((auth, v)),
        Err(e) => {
            Err(Box::new(error(state, StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}"))))
        }
    }
}

/// Waits the latency, then the answer that the switches impose (canned, unauthorised,
/// failing), if any.
async fn misbehaviour(state: &State, auth: Option<&str>) -> Option<Response> {
    let latency = state.latency_us.load(SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    let canned = state.canned.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some((status, body)) = canned {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, [(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    if let Some(key) = &state.api_key
        && auth != Some(format!("Bearer {key}").as_str())
    {
        return Some(error(state, StatusCode::UNAUTHORIZED, "Incorrect API key provided"));
    }
    if state.fail.load(SeqCst) {
        return Some(error(state, StatusCode::INTERNAL_SERVER_ERROR, "fake failure"));
    }
    None
}

async fn handle(Extract(state): Extract<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    state.requests.fetch_add(1, SeqCst);
    let (auth, request) = match read_request(&state, &headers, &body) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    *state.last.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((request.clone(), auth.clone()));

    // In serial mode the guard is held through the service time; dropping the request (its
    // connection killed) releases it.
    let _gpu = if state.serial.load(SeqCst) { Some(state.gpu.lock().await) } else { None };
    if let Some(answer) = misbehaviour(&state, auth.as_deref()).await {
        return answer;
    }
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error(&state, StatusCode::BAD_REQUEST, "model is required");
    };
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
        }
        _ => return error(&state, StatusCode::BAD_REQUEST, "input is required"),
    };
    let dim = match state.wrong_dim.load(SeqCst) {
        0 => state.dim,
        d => d,
    };
    let vectors: Vec<Vec<f32>> = inputs.iter().map(|t| raw_vector(t, dim)).collect();
    state.texts.fetch_add(inputs.len(), SeqCst);
    let answer = match state.wire {
        Wire::Ollama => json!({
            "model": model,
            "embeddings": vectors,
            "total_duration": 1_000_000,
            "load_duration": 1_000,
            "prompt_eval_count": inputs.len(),
        }),
        Wire::OpenAi => {
            let base64 = state.base64.load(SeqCst)
                || request.get("encoding_format").and_then(Value::as_str) == Some("base64");
            let mut data: Vec<Value> = vectors
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    let embedding = if base64 {
                        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        json!(v)
                    };
                    json!({"object": "embedding", "embedding": embedding, "index": index})
                })
                .collect();
            if state.shuffle.load(SeqCst) {
                data.reverse();
            }
            json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()},
            })
        }
    };
    (StatusCode::OK, axum::Json(answer)).into_response()
}

fn error(state: &State, status: StatusCode, message: &str) -> Response {
    let body = match state.wire {
        Wire::Ollama => json!({"error": message}),
        Wire::OpenAi => {
            json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
        }
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn embed_one(client: &reqwest::Client, url: &str) -> reqwest::StatusCode {
        let answer = client
            .post(format!("{url}/api/embed"))
            .json(&json!({"model": "m", "input": ["a"]}))
            .send()
            .await;
        answer.map(|r| r.status()).unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
    }

    #[tokio::test]
    async fn serial_mode_serves_one_request_at_a_time() {
        let server = FakeOllama::start(4).await.expect("start");
        server.set_latency(Duration::from_millis(40));
        let client = reqwest::Client::new();
        let url = server.url();

        let started = tokio::time::Instant::now();
        let codes = futures::future::join_all((0..4).map(|_| embed_one(&client, &url))).await;
        assert!(codes.iter().all(|c| c.is_success()), "{codes:?}");
        let concurrent = started.elapsed();

        server.set_serial(true);
        let started = tokio::time::Instant::now();
        let codes = futures::future::join_all((0..4).map(|_| embed_one(&client, &url))).await;
        assert!(codes.iter().all(|c| c.is_success()), "{codes:?}");
        let serial = started.elapsed();

        // Four requests in turn take at least four service times (a lower bound: sleeps never
        // end early); concurrently they may take as little as one.
        assert!(serial >= Duration::from_millis(160), "serial took {serial:?}");
        assert!(concurrent >= Duration::from_millis(40), "concurrent took {concurrent:?}");
        assert_eq!(server.requests(), 8);
        assert_eq!(server.texts(), 8);
    }

    #[tokio::test]
    async fn killed_and_revived() {
        let server = FakeOllama::start(4).await.expect("start");
        let client = reqwest::Client::new();
        assert!(embed_one(&client, &server.url()).await.is_success());
        server.kill().await;
        assert!(!embed_one(&client, &server.url()).await.is_success());
        server.revive().await.expect("revive");
        assert!(embed_one(&client, &server.url()).await.is_success());
    }
}
