//! In-process fake embedding servers on loopback that speak the real Ollama (`POST /api/embed`)
//! and OpenAI (`POST /v1/embeddings`) wire formats, with switchable misbehaviour.
//!
//! Vectors are computed from the text (a hash-seeded pseudo-random vector, deliberately not of
//! unit length), so every server of a test answers the same text with the same vector and a test
//! can compute the expected, normalised, answer itself ([`expected`]).
//!
//! The server runs its own accept loop (axum router, hyper connections) rather than
//! `axum::serve`, so that [`FakeServer::kill`] can drop the listener *and* every open connection
//! at once, like a crashed process: in-flight requests see their connection closed, new ones are
//! refused.

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
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

/// Which API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Ollama,
    OpenAi,
}

/// A fake Ollama server.
pub struct FakeOllama;

impl FakeOllama {
    /// Starts one answering vectors of `dim` floats.
    pub async fn start(dim: usize) -> FakeServer {
        FakeServer::start(Wire::Ollama, dim, None).await
    }
}

/// A fake OpenAI-compatible server.
pub struct FakeOpenAi;

impl FakeOpenAi {
    /// Starts one answering vectors of `dim` floats, without authentication.
    pub async fn start(dim: usize) -> FakeServer {
        FakeServer::start(Wire::OpenAi, dim, None).await
    }

    /// Starts one that answers 401 unless sent `Authorization: Bearer <key>`.
    pub async fn with_key(dim: usize, key: &str) -> FakeServer {
        FakeServer::start(Wire::OpenAi, dim, Some(key.to_owned())).await
    }
}

/// What the server does and has seen.
pub struct State {
    wire: Wire,
    dim: usize,
    api_key: Option<String>,
    latency_ms: AtomicU64,
    fail: AtomicBool,
    wrong_dim: AtomicUsize,
    shuffle: AtomicBool,
    base64: AtomicBool,
    canned: Mutex<Option<(u16, String)>>,
    requests: AtomicUsize,
    texts: AtomicUsize,
    last: Mutex<Option<(Value, Option<String>)>>,
}

/// A running fake server (or a killed one).
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl FakeServer {
    async fn start(wire: Wire, dim: usize, api_key: Option<String>) -> FakeServer {
        let state = Arc::new(State {
            wire,
            dim,
            api_key,
            latency_ms: AtomicU64::new(0),
            fail: AtomicBool::new(false),
            wrong_dim: AtomicUsize::new(0),
            shuffle: AtomicBool::new(false),
            base64: AtomicBool::new(false),
            canned: Mutex::new(None),
            requests: AtomicUsize::new(0),
            texts: AtomicUsize::new(0),
            last: Mutex::new(None),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = FakeServer { addr, state, task: Mutex::new(None) };
        server.serve(listener);
        server
    }

    fn serve(&self, listener: TcpListener) {
        let path = match self.state.wire {
            Wire::Ollama => "/api/embed",
            Wire::OpenAi => "/v1/embeddings",
        };
        let router = Router::new().route(path, post(handle)).with_state(self.state.clone());
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
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
        *self.task.lock().expect("lock") = Some(task);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Delays every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state.latency_ms.store(latency.as_millis() as u64, SeqCst);
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

    /// Answers every request with this status and body.
    pub fn set_canned(&self, status: u16, body: impl Into<String>) {
        *self.state.canned.lock().expect("lock") = Some((status, body.into()));
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
        self.state.last.lock().expect("lock").clone()
    }

    /// Stops like a crashed process: the listener closes (connections are refused) and every open
    /// connection is dropped, in-flight requests included.
    pub async fn kill(&self) {
        let task = self.task.lock().expect("lock").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same address after [`kill`](Self::kill).
    pub async fn revive(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the same port");
        self.serve(listener);
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
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

/// What a correct client returns for `text`: the raw vector at unit length.
pub fn expected(text: &str, dim: usize) -> Vec<f32> {
    let v = raw_vector(text, dim);
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    v.iter().map(|&x| (f64::from(x) / norm) as f32).collect()
}

/// `n` distinct texts.
pub fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}: {}", "lorem ipsum ".repeat(i % 5))).collect()
}

/// Whether `got` matches `expected(text)` for every text, in order.
pub fn all_expected(texts: &[String], got: &[Vec<f32>], dim: usize) -> bool {
    texts.len() == got.len()
        && texts.iter().zip(got).all(|(t, v)| {
            let want = expected(t, dim);
            v.len() == dim && v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6)
        })
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn handle(Extract(state): Extract<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    state.requests.fetch_add(1, SeqCst);
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(&state, StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    *state.last.lock().expect("lock") = Some((request.clone(), auth.clone()));

    let latency = state.latency_ms.load(SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some((status, body)) = state.canned.lock().expect("lock").clone() {
        let status = StatusCode::from_u16(status).expect("status");
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    if let Some(key) = &state.api_key
        && auth.as_deref() != Some(&format!("Bearer {key}"))
    {
        return error(&state, StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    if state.fail.load(SeqCst) {
        return error(&state, StatusCode::INTERNAL_SERVER_ERROR, "fake failure");
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
