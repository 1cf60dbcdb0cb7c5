//! `ragmill serve` as a real process on an ephemeral port, driven by real HTTP and WebSocket
//! clients.

use std::time::{Duration, Instant};

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn upload_streams_progress_then_ready_then_rag_available_then_search_finds_it() {
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let server = Server::start(data.path(), &[]);

    let mut ws = connect_ws(&server, &key).await;
    let snapshot = next_event(&mut ws, Duration::from_secs(10)).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["rag"]["available"], false);
    let (_, status) = get_json(&server, &key, "/v1/rag/status").await;
    assert_eq!(
        status,
        json!({"available": false, "documents_ready": 0, "documents_processing": 0})
    );

    let r =
        upload(&server, &key, &[("sourdough-starter.md", sample("sourdough-starter.md"))]).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["documents"][0]["state"], "queued");
    assert_eq!(body["documents"][0]["name"], "sourdough-starter.md");
    let id = body["documents"][0]["id"].clone();

    let (mut embedding_done, mut ready, mut rag) = (Vec::new(), None, false);
    while let Some(e) = next_event(&mut ws, Duration::from_secs(60)).await {
        match e["type"].as_str() {
            Some("document.progress") => {
                assert_eq!(e["id"], id);
                if e["stage"] == "embedding" {
                    embedding_done.push(e["done"].as_u64().expect("done"));
                }
            }
            Some("document.ready") => ready = Some(e),
            Some("rag.available") => {
                assert!(ready.is_some(), "rag.available comes after the document is ready");
                rag = true;
                break;
            }
            other => panic!("unexpected event {other:?}: {e}"),
        }
    }
    let ready = ready.expect("document.ready");
    assert!(rag, "rag.available");
    assert!(
        !embedding_done.is_empty() && embedding_done.windows(2).all(|w| w[0] <= w[1]),
        "{embedding_done:?}"
    );
    let chunks = ready["chunks"].as_u64().expect("chunks");
    assert!(chunks >= 3);

    let (code, doc) = get_json(&server, &key, &format!("/v1/documents/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!((doc["state"].as_str(), doc["chunks"].as_u64()), (Some("ready"), Some(chunks)));
    assert_eq!(doc["error"], Value::Null);
    let hits = search(&server, &key, "how often should I feed my starter").await;
    assert_eq!(hits["results"][0]["document"], "sourdough-starter.md");
    assert_eq!(hits["results"][0]["document_id"], id);
    let (_, status) = get_json(&server, &key, "/v1/rag/status").await;
    assert_eq!(status["available"], true);

    // The same bytes again: nothing to do. A reconnecting client's snapshot is empty.
    let r =
        upload(&server, &key, &[("sourdough-starter.md", sample("sourdough-starter.md"))]).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["documents"][0]["state"], "ready");
    let mut again = connect_ws(&server, &key).await;
    let snap = next_event(&mut again, Duration::from_secs(10)).await.expect("snapshot");
    assert_eq!(snap["documents"], json!([]));
    assert_eq!(snap["rag"]["available"], true);
    let _ = ws.close(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_see_nothing_of_each_other() {
    let data = tempfile::tempdir().expect("tmp");
    let (alice, bob) = (add_user(data.path(), "alice"), add_user(data.path(), "bob"));
    let server = Server::start(data.path(), &[]);
    let mut bob_ws = connect_ws(&server, &bob).await;
    next_event(&mut bob_ws, Duration::from_secs(10)).await.expect("snapshot");

    let r = upload(
        &server,
        &alice,
        &[("secret.md", b"# Secret\n\nThe launch code is swordfish.".to_vec())],
    )
    .await;
    let body: Value = r.json().await.expect("json");
    let id = body["documents"][0]["id"].as_i64().expect("id");
    // Wait for alice's document to be ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, doc) = get_json(&server, &alice, &format!("/v1/documents/{id}")).await;
        if doc["state"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "not ready: {doc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (_, list) = get_json(&server, &bob, "/v1/documents").await;
    assert_eq!(list["documents"], json!([]));
    let (code_foreign, foreign) = get_json(&server, &bob, &format!("/v1/documents/{id}")).await;
    let (code_none, none) = get_json(&server, &bob, "/v1/documents/987654321").await;
    assert_eq!((code_foreign, &foreign), (404, &none), "another user's id looks like no id at all");
    assert_eq!(code_none, 404);
    let c = client();
    let del = c
        .delete(server.url(&format!("/v1/documents/{id}")))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 404);
    let re = c
        .post(server.url(&format!("/v1/documents/{id}/reprocess")))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("reprocess");
    assert_eq!(re.status(), 404);
    let hits = search(&server, &bob, "launch code swordfish").await;
    assert_eq!(hits["results"], json!([]));
    let filtered = c
        .post(server.url("/v1/search"))
        .bearer_auth(&bob)
        .json(&json!({"query": "launch code", "documents": [id]}))
        .send()
        .await
        .expect("search");
    assert_eq!(filtered.json::<Value>().await.expect("json")["results"], json!([]));
    let (_, status) = get_json(&server, &bob, "/v1/rag/status").await;
    assert_eq!(status["available"], false);
    assert!(
        next_event(&mut bob_ws, Duration::from_millis(500)).await.is_none(),
        "bob heard alice's events"
    );

    // Alice still has everything, and can delete it.
    assert_eq!(search(&server, &alice, "launch code").await["results"][0]["document"], "secret.md");
    let del = c
        .delete(server.url(&format!("/v1/documents/{id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), 204);
    assert_eq!(search(&server, &alice, "launch code").await["results"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_documented_error_and_disturbs_nothing() {
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let revoked = add_user(data.path(), "mallory");
    let out = ragmill(data.path()).args(["users", "revoke", "mallory"]).output().expect("revoke");
    assert!(out.status.success());
    let server = Server::start(data.path(), &["--max-upload-mb", "1"]);
    let c = client();

    // Missing, wrong and revoked keys: one identical 401.
    let none = c.get(server.url("/v1/documents")).send().await.expect("req");
    assert_eq!(none.status(), 401);
    let none_body: Value = none.json().await.expect("json");
    assert_eq!(none_body["error"]["code"], "unauthorized");
    for k in ["rmk_000000000000_0000", revoked.as_str(), "garbage"] {
        let r = c.get(server.url("/v1/documents")).bearer_auth(k).send().await.expect("req");
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.expect("json"), none_body);
    }

    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_owned();
    let r = upload(&server, &key, &[("big.txt", vec![b'a'; 2 << 20])]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(code(&r.json().await.expect("json")), "file_too_large");
    let r = upload(&server, &key, &[("empty.txt", Vec::new())]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.expect("json")), "empty_file");
    let r = upload(&server, &key, &[("report.pdf", b"just some text, not a PDF".to_vec())]).await;
    assert_eq!(r.status(), 415);
    assert_eq!(code(&r.json().await.expect("json")), "type_mismatch");
    // A good file beside a bad one: the request is refused whole, nothing queued.
    let r = upload(
        &server,
        &key,
        &[("ok.md", b"# Fine\n\ntext".to_vec()), ("bad.pdf", b"nope".to_vec())],
    )
    .await;
    assert_eq!(r.status(), 415);
    let (_, list) = get_json(&server, &key, "/v1/documents").await;
    assert_eq!(list["documents"], json!([]));
    let r = c
        .post(server.url("/v1/documents"))
        .bearer_auth(&key)
        .body("not multipart")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);

    let (status, body) = get_json(&server, &key, "/v1/documents/12345").await;
    assert_eq!((status, code(&body)), (404, "not_found".into()));
    let (status, _) = get_json(&server, &key, "/v1/documents/not-a-number").await;
    assert_eq!(status, 404);

    let r = c
        .post(server.url("/v1/search"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.expect("json")), "invalid_json");
    let r = c
        .post(server.url("/v1/search"))
        .bearer_auth(&key)
        .json(&json!({"query": "  "}))
        .send()
        .await
        .expect("req");
    assert_eq!(code(&r.json().await.expect("json")), "invalid_query");
    let r = c
        .post(server.url("/v1/search"))
        .bearer_auth(&key)
        .json(&json!({"query": "x", "top_k": 0}))
        .send()
        .await
        .expect("req");
    assert_eq!(code(&r.json().await.expect("json")), "invalid_top_k");

    // WebSockets: a bad token, and a foreign Origin with a good token.
    match tokio_tungstenite::connect_async(server.ws_url("?token=bogus")).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("bad token accepted: {:?}", other.map(|_| ())),
    }
    let token: Value = c
        .post(server.url("/v1/events/token"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    let mut req = server.ws_url(&format!("?token={token}")).into_client_request().expect("req");
    req.headers_mut().insert("origin", "https://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("foreign origin accepted: {:?}", other.map(|_| ())),
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url(&format!("?token={token}")))
        .await
        .expect("token works");
    assert_eq!(
        next_event(&mut ws, Duration::from_secs(10)).await.expect("snapshot")["type"],
        "snapshot"
    );
    let _ = ws.send(Message::Close(None)).await;
    match tokio_tungstenite::connect_async(server.ws_url(&format!("?token={token}"))).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401, "used once"),
        other => panic!("a token opened two streams: {:?}", other.map(|_| ())),
    }

    // SSE works with the bearer key.
    let mut sse = c
        .get(server.url("/v1/events"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
        .await
        .expect("in time")
        .expect("body")
        .expect("chunk");
    assert!(String::from_utf8_lossy(&first).contains("\"type\":\"snapshot\""));

    // After all that, the server still works.
    let r =
        upload(&server, &key, &[("ok.md", b"# Fine\n\nLighthouses guide ships.".to_vec())]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(c.get(server.url("/healthz")).send().await.expect("health").status(), 200);
}

/// Distinct prose of a few paragraphs, so each document makes several chunks.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_processing_then_restart_finishes_every_document_exactly_once() {
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let mut server = Server::start(data.path(), &["--lease-secs", "2"]);
    let files: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("note-{i:02}.txt"), essay(i))).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let r = upload(&server, &key, &refs).await;
    assert_eq!(r.status(), 202);

    // Let the workers get going, then kill the process without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, list) = get_json(&server, &key, "/v1/documents").await;
        let ready = list["documents"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|d| d["state"] == "ready").count());
        if ready >= 1 || Instant::now() > deadline {
            assert!(ready < 20, "everything finished before the kill; make the documents bigger");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();

    let server = Server::start(data.path(), &["--lease-secs", "2"]);
    let docs = wait_all_ready(&server, &key, 20, Duration::from_secs(120)).await;
    assert!(docs.iter().all(|d| d["error"].is_null()), "{docs:#?}");

    // Each chunk exactly once, no job left, the file intact.
    assert_stored_exactly_once(data.path(), 20, "after a kill -9 and a restart");
    let hits = search(&server, &key, "what did people measure about glaciers").await;
    assert!(hits["results"][0]["text"].as_str().unwrap_or("").contains("glaciers"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_users_flood_does_not_starve_another() {
    let data = tempfile::tempdir().expect("tmp");
    let (a, b) = (add_user(data.path(), "a"), add_user(data.path(), "b"));
    let server = Server::start(data.path(), &["--workers", "1"]);
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| {
            (
                format!("a-{i:03}.txt"),
                format!("Short note number {i} about tide tables.").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    assert_eq!(upload(&server, &a, &refs).await.status(), 202);

    let mut ws = connect_ws(&server, &b).await;
    next_event(&mut ws, Duration::from_secs(10)).await.expect("snapshot");
    // Some of a's are done while a's own upload is still being made durable (a sync per file):
    // what counts is how many more b waits for.
    let ready = |list: &Value| {
        list["documents"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|d| d["state"] == "ready").count())
    };
    let a_before = ready(&get_json(&server, &a, "/v1/documents").await.1);
    assert_eq!(
        upload(&server, &b, &[("b.txt", b"Bob's only note, about lighthouses.".to_vec())])
            .await
            .status(),
        202
    );
    loop {
        let e = next_event(&mut ws, Duration::from_secs(60)).await.expect("b's events");
        if e["type"] == "document.ready" {
            break;
        }
    }
    let a_ready = ready(&get_json(&server, &a, "/v1/documents").await.1) - a_before;
    assert!(a_ready < 20, "b waited for {a_ready} of a's documents");
}

/// `/metrics` as a map from `name{labels}` to value; panics on a line that is not a sample.
async fn scrape(server: &Server) -> std::collections::HashMap<String, f64> {
    let r = client().get(server.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let body = r.text().await.expect("text");
    assert_eq!(body.lines().last(), Some("# EOF"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample: {l}"));
            (series.to_owned(), value.parse().unwrap_or_else(|_| panic!("value: {l}")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_documents_chunks_batches_and_idle_workers_without_auth() {
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let server = Server::start(data.path(), &[]);
    let files = [
        ("tides.txt", b"The moon's pull raises the sea twice a day.".to_vec()),
        ("bread.txt", b"Feed a sourdough starter flour and water daily.".to_vec()),
    ];
    assert_eq!(upload(&server, &key, &files).await.status(), 202);
    wait_all_ready(&server, &key, 2, Duration::from_secs(120)).await;

    // A document is ready just before its worker hands the job back: wait for idle workers.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = scrape(&server).await;
        if m.get("ragmill_workers_busy") == Some(&0.0)
            && m.get("ragmill_queue_jobs{state=\"leased\"}") == Some(&0.0)
        {
            break m;
        }
        assert!(Instant::now() < deadline, "workers still busy: {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}"));
    assert_eq!(get("ragmill_documents{state=\"ready\"}"), 2.0);
    assert_eq!(get("ragmill_documents{state=\"queued\"}"), 0.0);
    assert_eq!(get("ragmill_queue_jobs{state=\"queued\"}"), 0.0);
    assert_eq!(get("ragmill_queue_jobs{state=\"parked\"}"), 0.0);
    assert_eq!(get("ragmill_workers_busy"), 0.0);
    assert_eq!(get("ragmill_document_processing_seconds_count"), 2.0);
    assert!(get("ragmill_document_processing_seconds_sum") > 0.0);
    assert!(get("ragmill_embedded_chunks_total") >= 2.0);
    assert!(get("ragmill_embedding_cache_misses_total") >= 2.0);
    assert_eq!(get("ragmill_embedding_cache_hits_total"), 0.0);
    assert!(get("ragmill_embedding_batch_size_count") >= 1.0);
    assert_eq!(get("ragmill_embedding_batch_size_sum"), get("ragmill_embedded_chunks_total"));
    assert!(get("ragmill_embedding_batch_duration_seconds_count") >= 1.0);
    assert!(get("ragmill_embedding_batch_duration_seconds_sum") > 0.0);
    assert!(!m.keys().any(|k| k.starts_with("ragmill_document_errors_total")), "{m:?}");
}

/// The schema a `$ref` (or an inline schema) stands for.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// Property names of the JSON schema answered by `method path` with `status`.
fn answer_properties(doc: &Value, method: &str, path: &str, status: &str) -> Vec<String> {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    let mut names: Vec<String> = resolve(doc, schema)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no object schema for {method} {path} {status}: {schema}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

fn keys(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_json_describes_every_route_and_the_answers_match_it() {
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let server = Server::start(data.path(), &[]);

    // No auth needed, like the probes.
    let r = client().get(server.url("/openapi.json")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"),
        "{:?}",
        r.headers()
    );
    let doc: Value = r.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("openapi").starts_with("3."), "{}", doc["openapi"]);

    // Every route the router serves is described, with its methods.
    let routes = [
        ("/v1/documents", &["post", "get"][..]),
        ("/v1/documents/{id}", &["get", "delete"]),
        ("/v1/documents/{id}/reprocess", &["post"]),
        ("/v1/documents/{id}/file", &["get"]),
        ("/v1/search", &["post"]),
        ("/v1/rag/status", &["get"]),
        ("/v1/stats", &["get"]),
        ("/v1/stats/history", &["get"]),
        ("/v1/me", &["get"]),
        ("/v1/events", &["get"]),
        ("/v1/events/token", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/api/embed", &["post"]),
        ("/api/tags", &["get"]),
        ("/v1/embeddings", &["post"]),
        ("/v1/models", &["get"]),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in routes {
        for method in methods {
            assert!(paths[path][*method].is_object(), "{method} {path} missing from {paths:?}");
        }
    }
    // ... and nothing the router does not serve: every described operation reaches a handler
    // (without a key: 401 for the API and the Ollama routes, 200 for the probes; never the
    // fallback's 404 or a 405).
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let url = server.url(&path.replace("{id}", "1"));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("m");
            let r = client().request(method.clone(), url).send().await.expect("request");
            let expected =
                if path.starts_with("/v1/") || path.starts_with("/api/") { 401 } else { 200 };
            assert_eq!(r.status(), expected, "{method} {path}");
        }
    }
    let ops_with_auth = ["/v1/documents", "/v1/search", "/v1/events/token", "/v1/embeddings"];
    for path in ops_with_auth {
        let op = paths[path].as_object().expect("item").values().next().expect("operation");
        assert_eq!(op["security"][0]["bearer"], json!([]), "{path}: {op}");
        assert!(op["responses"]["401"].is_object(), "{path}: {op}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let upload_op = &doc["paths"]["/v1/documents"]["post"];
    for status in ["202", "401", "413", "415"] {
        assert!(upload_op["responses"][status].is_object(), "{status}: {upload_op}");
    }
    assert!(upload_op["requestBody"]["content"]["multipart/form-data"].is_object(), "{upload_op}");
    assert!(doc["paths"]["/v1/documents/{id}"]["get"]["responses"]["404"].is_object());
    let events_op = &doc["paths"]["/v1/events"]["get"];
    assert!(events_op["responses"]["101"].is_object(), "{events_op}");
    assert!(events_op["responses"]["200"]["content"]["text/event-stream"].is_object());

    // The request schema of a search requires `query`, and the event types are described.
    let schemas = &doc["components"]["schemas"];
    let required = schemas["SearchRequest"]["required"].as_array().expect("required");
    assert!(required.contains(&json!("query")), "{}", schemas["SearchRequest"]);
    for name in ["Event", "Snapshot", "StreamMessage", "DocumentView", "ErrorResponse"] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    let event_types = schemas["Event"].to_string();
    for t in ["document.progress", "document.ready", "document.failed", "rag.available"] {
        assert!(event_types.contains(t), "{t} missing from {event_types}");
    }

    // What the server answers has exactly the properties the document gives it.
    let r = upload(&server, &key, &[("tides.txt", b"The moon raises the sea.".to_vec())]).await;
    assert_eq!(r.status(), 202);
    let uploaded: Value = r.json().await.expect("json");
    assert_eq!(keys(&uploaded), answer_properties(&doc, "post", "/v1/documents", "202"));
    let id = uploaded["documents"][0]["id"].as_i64().expect("id");
    let (status, document) = get_json(&server, &key, &format!("/v1/documents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&document), answer_properties(&doc, "get", "/v1/documents/{id}", "200"));
    let (_, list) = get_json(&server, &key, "/v1/documents").await;
    assert_eq!(keys(&list), answer_properties(&doc, "get", "/v1/documents", "200"));
    let (_, rag) = get_json(&server, &key, "/v1/rag/status").await;
    assert_eq!(keys(&rag), answer_properties(&doc, "get", "/v1/rag/status", "200"));
    let (status, missing) = get_json(&server, &key, "/v1/documents/999999").await;
    assert_eq!(status, 404);
    assert_eq!(keys(&missing), answer_properties(&doc, "get", "/v1/documents/{id}", "404"));
    let r = client()
        .post(server.url("/v1/events/token"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("token");
    let token: Value = r.json().await.expect("json");
    assert_eq!(keys(&token), answer_properties(&doc, "post", "/v1/events/token", "200"));
    let (_, stats) = get_json(&server, &key, "/v1/stats").await;
    assert_eq!(keys(&stats), answer_properties(&doc, "get", "/v1/stats", "200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_show_a_user_their_own_figures_and_an_administrator_the_service() {
    let data = tempfile::tempdir().expect("tmp");
    let alice = add_user(data.path(), "alice");
    let root = add_admin(data.path(), "root");
    let server = Server::start(data.path(), &[]);
    let files = [
        ("tides.txt", b"The moon's pull raises the sea twice a day.".to_vec()),
        ("bread.txt", b"Feed a sourdough starter flour and water daily.".to_vec()),
    ];
    assert_eq!(upload(&server, &alice, &files).await.status(), 202);
    let mine = [("espresso.txt", b"Grind finer when the shot runs fast.".to_vec())];
    assert_eq!(upload(&server, &root, &mine).await.status(), 202);
    wait_all_ready(&server, &alice, 2, Duration::from_secs(120)).await;
    wait_all_ready(&server, &root, 1, Duration::from_secs(120)).await;

    // Counters are updated just after the ready event: poll until both scopes add up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (user, service) = loop {
        let (s1, user) = get_json(&server, &alice, "/v1/stats").await;
        let (s2, service) = get_json(&server, &root, "/v1/stats").await;
        assert_eq!((s1, s2), (200, 200), "{user} {service}");
        if service["activity"]["documents_ready"] == 3 && service["workers"]["busy"] == 0 {
            break (user, service);
        }
        assert!(Instant::now() < deadline, "{service}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(user["scope"], "user");
    assert_eq!(user["documents"]["ready"], 2, "{user}");
    assert_eq!(user["activity"]["documents_ready"], 2, "{user}");
    assert_eq!(user["activity"]["documents_processed"], 2, "{user}");
    assert!(user["activity"]["chunks_stored"].as_u64().expect("n") >= 2, "{user}");
    assert!(user["activity"]["processing_seconds"].as_f64().expect("s") > 0.0, "{user}");
    assert_eq!(user["queue"], json!({"queued": 0, "leased": 0, "parked": 0}));
    assert_eq!(user["workers"], json!({"busy": 0, "total": 2}));
    assert_eq!(service["scope"], "service");
    assert_eq!(service["documents"]["ready"], 3, "{service}");
    assert!(
        service["documents"]["chunks"].as_u64() > user["documents"]["chunks"].as_u64(),
        "{service}"
    );
    // The shared embedding backend: the local model, its batches and their time.
    assert_eq!(service["embedder"]["backend"], "local", "{service}");
    assert!(service["batcher"]["batches"].as_u64().expect("n") >= 1, "{service}");
    assert!(service["batcher"]["seconds"].as_f64().expect("s") > 0.0, "{service}");
    let (status, _) = get_json(&server, "rmk_000000000000_nope", "/v1/stats").await;
    assert_eq!(status, 401);

    // The service's recent past, sampled since start-up, is for administrators only.
    let (status, history) = get_json(&server, &root, "/v1/stats/history").await;
    assert_eq!(status, 200, "{history}");
    let samples = history["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "the first sample is taken at start-up: {history}");
    assert_eq!(samples[0]["stats"]["scope"], "service");
    assert!(samples.windows(2).all(|w| w[0]["t_ms"].as_u64() <= w[1]["t_ms"].as_u64()));
    assert!(history["now_ms"].as_u64() >= samples.last().and_then(|s| s["t_ms"].as_u64()));
    let (status, refused) = get_json(&server, &alice, "/v1/stats/history").await;
    assert_eq!((status, &refused["error"]["code"]), (403, &json!("admin_only")));
    assert_eq!(
        get_json(&server, &alice, "/v1/me").await,
        (200, json!({"user": "alice", "admin": false}))
    );
    assert_eq!(
        get_json(&server, &root, "/v1/me").await,
        (200, json!({"user": "root", "admin": true}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_is_served_from_the_binary_and_may_talk_to_this_origin_only() {
    let data = tempfile::tempdir().expect("tmp");
    let server = Server::start(data.path(), &[]);
    let page = client().get(server.url("/")).send().await.expect("get");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(page.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    let html = page.text().await.expect("text");
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#), "{html}");
    for asset in ["app.js", "app.css", "documents.js", "chat.js", "dashboard.js", "favicon.svg"] {
        let r = client().get(server.url(&format!("/assets/{asset}"))).send().await.expect("get");
        assert_eq!(r.status(), 200, "{asset}");
        assert!(!r.bytes().await.expect("body").is_empty(), "{asset}");
    }
    let r = client().get(server.url("/assets/../Cargo.toml")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    let r = client().get(server.url("/assets/nope.js")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_with_server_sends_chunks_that_the_server_embeds_and_stores() {
    let data = tempfile::tempdir().expect("tempdir");
    let key = add_user(data.path(), "carol");
    let server = Server::start(data.path(), &[]);
    let client_side = tempfile::tempdir().expect("tempdir");
    let run = |key: &str| {
        ragmill(client_side.path())
            .args([
                "--json",
                "ingest",
                "--user",
                "carol",
                "--server",
                &server.base,
                "--api-key",
                key,
            ])
            .arg(repo().join("samples"))
            .output()
            .expect("client runs")
    };

    let out = run(&key);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(
        out.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or(b""),
    )
    .expect("json summary");
    let files = std::fs::read_dir(repo().join("samples"))
        .expect("samples")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name() != "README.md"))
        .count() as u64;
    assert_eq!(summary["ingested"], json!(files), "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(summary["chunks"].as_u64().unwrap_or(0) >= files, "{summary}");
    // Nothing was extracted or stored on the client side.
    assert!(!client_side.path().join("ragmill.db").exists(), "the client kept no data");

    // The server has the documents, ready and searchable.
    let (status, docs) = get_json(&server, &key, "/v1/documents").await;
    assert_eq!(status, 200);
    let docs = docs["documents"].as_array().cloned().unwrap_or_default();
    assert_eq!(docs.len() as u64, files, "{docs:?}");
    assert!(docs.iter().all(|d| d["state"] == "ready"), "{docs:?}");
    let hits = search(&server, &key, "how do I keep a sourdough starter alive").await;
    assert!(
        hits["results"][0]["document"].as_str().is_some_and(|d| d.contains("sourdough")),
        "{hits}"
    );

    // Again: unchanged, nothing re-embedded, and each file's line says so.
    let out = run(&key);
    let again: Value = serde_json::from_slice(
        out.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or(b""),
    )
    .expect("json");
    assert_eq!(again["unchanged"], json!(files), "{again}");
    let lines = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lines.matches(": unchanged").count() as u64, files, "{lines}");

    // A wrong key fails the run once, before anything is extracted or sent: one line, exit 2.
    let bad = run("rmk_nope_nope");
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(bad.stdout.is_empty(), "no per-file summary: {}", String::from_utf8_lossy(&bad.stdout));
    let err = String::from_utf8_lossy(&bad.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("refused the API key"), "{err}");
    assert!(!err.contains(": failed"), "no per-file lines: {err}");
    // Another user's key would put the documents in their collection: refused the same way.
    let dave = add_user(data.path(), "dave");
    let wrong = run(&dave);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("belongs to user \"dave\""));
    // Nothing reached the server from either.
    let (_, docs) = get_json(&server, &dave, "/v1/documents").await;
    assert_eq!(docs["documents"].as_array().map(Vec::len), Some(0), "{docs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_original_is_served_to_its_owner_only_and_never_as_something_that_runs() {
    let data = tempfile::tempdir().expect("tmp");
    let alice = add_user(data.path(), "alice");
    let bob = add_user(data.path(), "bob");
    let server = Server::start(data.path(), &[]);
    let page = b"<html><body><script>alert(1)</script><p>Tides rise twice a day.</p></body></html>";
    let files = [("page.html", page.to_vec()), ("press.pdf", sample("printing-press.pdf"))];
    let r = upload(&server, &alice, &files).await;
    assert_eq!(r.status(), 202);
    let uploaded: Value = r.json().await.expect("json");
    let ids: Vec<i64> = uploaded["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["id"].as_i64().expect("id"))
        .collect();
    let get = |key: &str, id: i64| {
        client().get(server.url(&format!("/v1/documents/{id}/file"))).bearer_auth(key).send()
    };

    let html = get(&alice, ids[0]).await.expect("get");
    assert_eq!(html.status(), 200);
    let h = html.headers();
    assert_eq!(h["content-type"], "text/plain", "{h:?}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"].to_str().expect("ascii").starts_with("sandbox"), "{h:?}");
    assert_eq!(h["content-disposition"], "inline; filename*=UTF-8''page.html");
    assert_eq!(html.bytes().await.expect("body").as_ref(), page.as_slice());

    let pdf = get(&alice, ids[1]).await.expect("get");
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert_eq!(pdf.bytes().await.expect("body").as_ref(), sample("printing-press.pdf").as_slice());

    // Another user, a bad id, no key: the same answers as for anything else that is not theirs.
    for (key, id, status) in
        [(&bob, ids[0], 404), (&alice, 999_999, 404), (&"rmk_x".to_owned(), ids[0], 401)]
    {
        let r = get(key, id).await.expect("get");
        assert_eq!(r.status(), status, "{id}");
        let body: Value = r.json().await.expect("json error");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
}

/// `serve --rerank-endpoint` against a stand-in speaking Jina's (Cohere's) `/v1/rerank`: the
/// results come back in the reranker's order with its scores; when it dies, search still
/// answers in the fused order.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerank_endpoint_reorders_search_results_and_a_dead_one_does_not_break_search() {
    let reranker = ragmill_remote::fake::FakeReranker::start().await.expect("stand-in");
    let endpoint = format!("{}/v1/rerank", reranker.url());
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let server = Server::start(
        data.path(),
        &["--rerank-endpoint", &endpoint, "--rerank-format", "jina", "--rerank-model", "stand-in"],
    );
    let files: Vec<(&str, Vec<u8>)> =
        ["sourdough-starter.md", "rust-error-handling.md", "home-espresso.txt"]
            .iter()
            .map(|n| (*n, sample(n)))
            .collect();
    assert_eq!(upload(&server, &key, &files).await.status(), 202);
    wait_all_ready(&server, &key, 3, Duration::from_secs(240)).await;

    let found = search(&server, &key, "feed the starter flour water").await;
    let results = found["results"].as_array().expect("results");
    assert!(!results.is_empty(), "{found}");
    let reranked: Vec<f64> =
        results.iter().filter_map(|r| r["scores"]["rerank"].as_f64()).collect();
    assert_eq!(reranked.len(), results.len(), "every result carries the reranker's score: {found}");
    assert!(reranked.windows(2).all(|w| w[0] >= w[1]), "in the reranker's order: {reranked:?}");
    assert!(reranker.rerank_requests() >= 1);
    assert_eq!(results[0]["document"], "sourdough-starter.md", "{found}");

    reranker.kill().await;
    let found = search(&server, &key, "feed the starter flour water").await;
    let results = found["results"].as_array().expect("results");
    assert!(!results.is_empty(), "search still answers: {found}");
    assert!(results.iter().all(|r| r["scores"].get("rerank").is_none()), "{found}");
}
