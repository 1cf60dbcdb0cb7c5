//! What the router answers to bad requests and load, and what makes a 202 last: every error in
//! the API's JSON format with a stable code (not multipart, 405, long URIs and headers,
//! `top_k` out of range), a policy on served PDFs, caps on files per request and documents
//! pending per user, a rate limit per API key (all 429s with `Retry-After`), and the WebSocket
//! refusing a page whose name was rebound to this server's address.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use common::TestApp;
use ragmill_server::{AppState, Seams, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// The router over `app`'s store, queue and blobs with settings changed by `change`.
fn router_with(app: &TestApp, change: impl FnOnce(&mut ServerConfig)) -> axum::Router {
    ragmill_server::app(state_with(app, change))
}

fn state_with(app: &TestApp, change: impl FnOnce(&mut ServerConfig)) -> AppState {
    let s = &app.state;
    let mut config = s.config.clone();
    change(&mut config);
    let seams = Seams {
        queue: s.queue.clone(),
        events: s.events.clone(),
        live: s.live.clone(),
        roster: s.roster.clone(),
    };
    AppState::new(s.store.clone(), seams, s.pipeline.clone(), s.blobs.clone(), config)
}

/// Sends `request` through `router`: the status, the headers and the body as JSON (Null if not).
async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20).await.expect("body");
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn get(key: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request")
}

/// `POST /v1/documents` with `files` as multipart `file` parts.
fn upload(key: &str, files: &[(&str, &[u8])]) -> Request<Body> {
    common::upload_request(key, files)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an API error: {body}"))
}

fn retry_after(headers: &HeaderMap) -> u64 {
    let value = headers.get(header::RETRY_AFTER).expect("Retry-After");
    value.to_str().ok().and_then(|v| v.parse().ok()).expect("whole seconds")
}

#[tokio::test]
async fn a_body_that_is_not_multipart_is_answered_in_json() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    let router = app.router();
    let post = |content_type: &str| {
        Request::post("/v1/documents")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from("just some text"))
            .expect("request")
    };
    for content_type in ["text/plain", "multipart/form-data"] {
        let (status, headers, body) = call(&router, post(content_type)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}: {body}");
        assert_eq!(code(&body), "invalid_multipart");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn errors_the_router_makes_itself_are_answered_in_json() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    let router = app.router();

    // 405: the route exists, not for this method; `Allow` is kept.
    let request = Request::delete("/v1/search").body(Body::empty()).expect("request");
    let (status, headers, body) = call(&router, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "method_not_allowed", "{body}");
    assert!(headers.contains_key(header::ALLOW), "{headers:?}");

    // 414 and 431 for heads past our limits (hyper's own, far larger, answer before us).
    let long = format!("/v1/documents?q={}", "a".repeat(20 << 10));
    let (status, _, body) = call(&router, get(&key, &long)).await;
    assert_eq!((status, code(&body)), (StatusCode::URI_TOO_LONG, "uri_too_long"), "{body}");
    let request = Request::get("/v1/documents")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header("x-padding", "b".repeat(70 << 10))
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = call(&router, request).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{body}");
    assert_eq!(code(&body), "headers_too_large");
}

#[tokio::test]
async fn top_k_out_of_range_is_invalid_top_k_not_invalid_json() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    for top_k in [json!(-1), json!(0), json!(101), json!(2.5), json!(1e30), json!(i64::MIN)] {
        let (status, body) =
            app.send("POST", &key, "/v1/search", json!({"query": "moon", "top_k": top_k})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{top_k}: {body}");
        assert_eq!(code(&body), "invalid_top_k", "{top_k}: {body}");
    }
    let (status, body) =
        app.send("POST", &key, "/v1/search", json!({"query": "moon", "top_k": 100})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_pdf_original_is_served_under_a_policy_that_runs_no_script() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    let pdf =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/printing-press.pdf"))
            .expect("sample PDF");
    let (status, up) = app.upload(&key, &[("press.pdf", &pdf)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let path = format!("/v1/documents/{}/file", common::doc_id(&up, 0));
    let (status, headers, _) = call(&app.router(), get(&key, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a PDF has a Content-Security-Policy");
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!policy.contains("script"), "nothing may allow script: {policy}");
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
}

#[tokio::test]
async fn one_request_carries_at_most_the_file_limit_and_keeps_none_past_it() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    let router = router_with(&app, |c| c.max_files_per_upload = 3);
    let files: Vec<(String, Vec<u8>)> =
        (0..4).map(|i| (format!("f{i}.txt"), format!("file number {i}").into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let (status, _, body) = call(&router, upload(&key, &files)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(code(&body), "too_many_files");
    let (_, list) = app.get(&key, "/v1/documents").await;
    assert_eq!(list["documents"], json!([]), "none kept: {list}");
    let tmp = std::fs::read_dir(app.dir.path().join("blobs/tmp")).expect("tmp").count();
    assert_eq!(tmp, 0, "partial files discarded");
    let (status, _, body) = call(&router, upload(&key, &files[..3])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn a_user_with_too_many_documents_pending_is_told_to_retry_later() {
    let app = TestApp::new().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    // No workers: what is accepted stays queued.
    let router = router_with(&app, |c| c.max_pending_per_user = 2);
    let (status, _, body) = call(&router, upload(&alice, &[("a.txt", b"first file")])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Two more in one request would make three.
    let two: &[(&str, &[u8])] = &[("b.txt", b"second file"), ("c.txt", b"third file")];
    let (status, headers, body) = call(&router, upload(&alice, two)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "too_many_pending");
    assert!(retry_after(&headers) >= 1);
    let (status, _, _) = call(&router, upload(&alice, &two[..1])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, body) = call(&router, upload(&alice, &[("d.txt", b"fourth file")])).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_pending"));
    // Another user is not held up by Alice's backlog.
    let (status, _, _) = call(&router, upload(&bob, &[("a.txt", b"bob's file")])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_api_key_past_its_rate_is_told_when_to_retry() {
    let app = TestApp::new().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    let router = router_with(&app, |c| {
        c.rate_limit = 0.5;
        c.rate_burst = 3;
    });
    for _ in 0..3 {
        let (status, _, body) = call(&router, get(&alice, "/v1/documents")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = call(&router, get(&alice, "/v1/documents")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "rate_limited");
    assert_eq!(retry_after(&headers), 2, "one request every 2 s");
    // Bob's key has its own bucket; the probes have none.
    let (status, _, _) = call(&router, get(&bob, "/v1/documents")).await;
    assert_eq!(status, StatusCode::OK);
    let probe = Request::get("/healthz").body(Body::empty()).expect("request");
    assert_eq!(call(&router, probe).await.0, StatusCode::OK);
}

/// The status line and body of a WebSocket upgrade of `/v1/events` sent with `host` and
/// `origin` to a real server at `addr`.
async fn upgrade(addr: std::net::SocketAddr, key: &str, host: &str, origin: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
         Authorization: Bearer {key}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_refuses_a_page_whose_name_was_rebound_to_this_server() {
    let app = TestApp::new().await;
    let key = app.user("alice");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = state_with(&app, |c| c.public_url = Some("https://rag.example".into()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ragmill_server::serve(
        listener,
        state,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));

    let rebound = upgrade(addr, &key, "evil.example", "http://evil.example").await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("forbidden_origin"), "{rebound}");
    let port = addr.port();
    let rebound = upgrade(
        addr,
        &key,
        &format!("evil.example:{port}"),
        &format!("http://evil.example:{port}"),
    )
    .await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    // Its own address, localhost on its port, and its public URL are fine.
    for (host, origin) in [
        (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}")),
        (format!("localhost:{port}"), format!("http://localhost:{port}")),
        ("rag.example".to_owned(), "https://rag.example".to_owned()),
    ] {
        let answer = upgrade(addr, &key, &host, &origin).await;
        assert!(answer.starts_with("HTTP/1.1 101"), "{origin}: {answer}");
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

/// What an upload costs, acknowledged (blob and row durable): `N` uploads one after the other.
/// `cargo test -p ragmill-server --test hardening --offline -- --ignored --nocapture upload_cost`
/// (with `TMPDIR` on a real disk: on tmpfs a sync costs nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn upload_cost() {
    const N: usize = 200;
    let app = TestApp::new().await;
    let key = app.user("alice");
    let started = Instant::now();
    for i in 0..N {
        let text = format!("document {i}: the moon pulls the oceans.");
        let (status, body) = app.upload(&key, &[(&format!("d{i}.txt"), text.as_bytes())]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let per = started.elapsed() / N as u32;
    println!(
        "{N} uploads: {:.2} ms each, in {}",
        per.as_secs_f64() * 1e3,
        app.dir.path().display()
    );
}
