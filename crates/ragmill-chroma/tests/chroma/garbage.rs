//! Against [`GarbageChroma`]: answers a real server should never give, and failures it may.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ragmill_chroma::{ChromaConfig, ChromaIndex};
use ragmill_core::{DocumentId, IndexError, UserId, VectorIndex};
use serde_json::{Value, json};

/// A stand-in Chroma that speaks Chroma's real wire format (API v2's routes, JSON bodies and
/// `{"error", "message"}` errors, as served by Chroma 1.5.9) with well-formed answers to
/// everything but records: a collection's `query`, `get`, `upsert` and `delete` answer with
/// whatever status, body and delay the test set.
#[derive(Clone)]
struct GarbageChroma {
    url: String,
    state: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// What record routes answer: status, body, delay.
    reply: Mutex<(u16, String, Duration)>,
    /// The token headers of the last heartbeat.
    tokens: Mutex<Vec<String>>,
    /// Record requests still to answer with Chroma 1.5's transient 500 before `reply`.
    transient: Mutex<usize>,
    /// Record requests received.
    calls: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GarbageChroma {
    async fn start() -> GarbageChroma {
        let state = Arc::new(Shared::default());
        let base = "/api/v2/tenants/{t}/databases/{d}/collections";
        let app = Router::new()
            .route("/api/v2/heartbeat", get(heartbeat))
            .route(
                "/api/v2/pre-flight-checks",
                get(|| async { json_ok(json!({"max_batch_size": 5461, "supports_base64_encoding": true})) }),
            )
            .route("/api/v2/tenants/{t}", get(|Path(t): Path<String>| async move { json_ok(json!({"name": t})) }))
            .route(
                "/api/v2/tenants/{t}/databases/{d}",
                get(|Path((t, d)): Path<(String, String)>| async move {
                    json_ok(json!({"id": "6b1d3c0e-0000-4000-8000-000000000000", "name": d, "tenant": t}))
                }),
            )
            .route(&format!("{base}/{{name}}"), get(collection))
            .route(&format!("{base}/{{id}}/{{op}}"), post(records))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        GarbageChroma { url, state }
    }

    fn answer(&self, status: u16, body: impl Into<String>) {
        *lock(&self.state.reply) = (status, body.into(), Duration::ZERO);
    }
}

fn json_ok(v: Value) -> (StatusCode, String) {
    (StatusCode::OK, v.to_string())
}

async fn heartbeat(State(s): State<Arc<Shared>>, headers: HeaderMap) -> (StatusCode, String) {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    *lock(&s.tokens) = ["x-chroma-token", "authorization"].into_iter().filter_map(text).collect();
    json_ok(json!({"nanosecond heartbeat": 1}))
}

async fn collection(Path((t, d, name)): Path<(String, String, String)>) -> (StatusCode, String) {
    let id = "0c0ffee0-0000-4000-8000-000000000001";
    json_ok(json!({"id": id, "name": name, "tenant": t, "database": d, "dimension": 2,
        "metadata": {"ragmill": 1}, "configuration_json": {}, "log_position": 0, "version": 0}))
}

async fn records(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    *lock(&s.calls) += 1;
    {
        let mut transient = lock(&s.transient);
        if *transient > 0 {
            *transient -= 1;
            let message = "Error executing plan: Internal error: Error creating hnsw segment \
                           reader: Nothing found on disk";
            let body = json!({"error": "InternalError", "message": message});
            return (StatusCode::INTERNAL_SERVER_ERROR, body.to_string());
        }
    }
    let (status, body, delay) = lock(&s.reply).clone();
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT), body)
}

async fn index(fake: &GarbageChroma) -> ChromaIndex {
    ChromaIndex::connect(ChromaConfig::new(&fake.url)).await.expect("connects")
}

async fn search(index: &ChromaIndex) -> Result<usize, IndexError> {
    let documents = Some(vec![DocumentId(1), DocumentId(2)]);
    index.search(UserId(1), vec![0.6, 0.8], 5, documents).await.map(|hits| hits.len())
}

const META: &str = r#"{"document":1,"generation":1,"chunk":0}"#;

#[tokio::test]
async fn garbage_answers_are_failures() {
    let fake = GarbageChroma::start().await;
    let index = index(&fake).await;
    let good =
        format!(r#"{{"ids":[["1:1:0"]],"distances":[[0.2]],"metadatas":[[{META}]],"include":[]}}"#);
    fake.answer(200, good);
    assert_eq!(search(&index).await, Ok(1), "the fixture itself is fine");
    let garbage = [
        format!(r#"{{"ids":[["1:1:0","1:1:1"]],"distances":[[0.2]],"metadatas":[[{META}]]}}"#),
        format!(r#"{{"ids":[["1:2:0"]],"distances":[[0.2]],"metadatas":[[{META}]]}}"#),
        r#"{"ids":[["3:1:0"]],"distances":[[0.2]],"metadatas":[[{"document":3,"generation":1,"chunk":0}]]}"#.into(),
        format!(r#"{{"ids":[["1:1:0"]],"distances":[[NaN]],"metadatas":[[{META}]]}}"#),
        format!(r#"{{"ids":[["1:1:0"]],"distances":[[null]],"metadatas":[[{META}]]}}"#),
        format!(r#"{{"ids":[["1:1:0"]],"metadatas":[[{META}]]}}"#),
        "<html>surprise</html>".into(),
        "{}".into(),
    ];
    for body in garbage {
        fake.answer(200, body.clone());
        match search(&index).await {
            Err(IndexError::Failed(m)) => assert!(m.contains("chroma answered"), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    fake.answer(200, format!(r#"{{"ids":["1:2:0"],"metadatas":[{META}]}}"#));
    let inventory = index.inventory(UserId(1)).await;
    assert!(matches!(inventory, Err(IndexError::Failed(m)) if m.contains("disagrees")));
}

#[tokio::test]
async fn a_search_outlasts_two_transient_failures_but_not_three() {
    let fake = GarbageChroma::start().await;
    let index = index(&fake).await;
    let good =
        format!(r#"{{"ids":[["1:1:0"]],"distances":[[0.2]],"metadatas":[[{META}]],"include":[]}}"#);
    fake.answer(200, good);
    *lock(&fake.state.transient) = 2;
    *lock(&fake.state.calls) = 0;
    assert_eq!(search(&index).await, Ok(1), "asked again after each 500");
    assert_eq!(*lock(&fake.state.calls), 3);
    *lock(&fake.state.transient) = 3;
    *lock(&fake.state.calls) = 0;
    assert!(matches!(search(&index).await, Err(IndexError::Unavailable(m)) if m.contains("hnsw")));
    assert_eq!(*lock(&fake.state.calls), 3, "three tries, then unavailable");
}

#[tokio::test]
async fn statuses_map_to_kinds() {
    let fake = GarbageChroma::start().await;
    let index = index(&fake).await;
    for status in [500, 503, 429] {
        fake.answer(status, r#"{"error":"InternalError","message":"busy"}"#);
        assert!(
            matches!(search(&index).await, Err(IndexError::Unavailable(m)) if m.contains("busy"))
        );
    }
    fake.answer(400, r#"{"error":"InvalidArgumentError","message":"Invalid where clause"}"#);
    let refused = search(&index).await;
    let want = "HTTP 400: InvalidArgumentError: Invalid where clause";
    assert!(matches!(&refused, Err(IndexError::Failed(m)) if m.contains(want)), "{refused:?}");
    // The fake knows the collection's dimension (2) and the index checks before asking.
    let wrong = index.search(UserId(1), vec![1.0, 0.0, 0.0], 5, None).await;
    assert_eq!(wrong, Err(IndexError::Dimension { got: 3, want: 2 }));
}

#[tokio::test]
async fn slow_or_absent_servers_are_unavailable() {
    let fake = GarbageChroma::start().await;
    let config =
        ChromaConfig { timeout: Duration::from_millis(300), ..ChromaConfig::new(&fake.url) };
    let index = ChromaIndex::connect(config).await.expect("connects");
    *lock(&fake.state.reply) = (200, "{}".into(), Duration::from_secs(2));
    let slow = index.retire(UserId(1), DocumentId(1), ragmill_core::Retire::Through(1)).await;
    assert!(
        matches!(&slow, Err(IndexError::Unavailable(m)) if m.contains("within 300 ms")),
        "{slow:?}"
    );

    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let absent = ChromaIndex::connect(ChromaConfig::new(format!("http://{port}"))).await;
    assert!(
        matches!(&absent, Err(IndexError::Unavailable(m)) if m.contains(&port.to_string())),
        "{absent:?}"
    );
}

#[tokio::test]
async fn the_token_is_sent_and_never_shown() {
    let fake = GarbageChroma::start().await;
    let config = ChromaConfig { token: Some("s3cret".into()), ..ChromaConfig::new(&fake.url) };
    let index = ChromaIndex::connect(config.clone()).await.expect("connects");
    assert_eq!(*lock(&fake.state.tokens), vec!["s3cret".to_owned(), "Bearer s3cret".to_owned()]);
    fake.answer(401, r#"{"error":"AuthError","message":"nope"}"#);
    let refused = search(&index).await.expect_err("refused");
    for shown in [format!("{index:?}"), format!("{config:?}"), refused.to_string()] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
