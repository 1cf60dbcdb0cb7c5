//! The service on a real ChromaDB server that goes down in the middle of ingestion: jobs wait
//! (their documents say what for), `/readyz` and vector search answer 503
//! `vector_index_unavailable`, nothing half-written becomes visible, and once it is back every
//! accepted document becomes ready with each chunk's vector held exactly once.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestApp, doc_id};
use ragmill_chroma::testing::ChromaProcess;
use ragmill_core::VectorIndex;
use serde_json::{Value, json};

fn note(i: usize) -> Vec<u8> {
    format!("# Harbour note {i}\n\nThe harbour master logs ship number {i} at the pier.\n\nTide tables for berth {i}.\n")
        .into_bytes()
}

async fn documents(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, list) = app.get(key, "/v1/documents").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["documents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroma_down_mid_ingest_loses_nothing_and_duplicates_nothing() {
    let mut chroma = ChromaProcess::start(); // its own: this test kills it
    let (app, index) = TestApp::with_chroma(&chroma.url()).await;
    let key = app.user("ann");
    let user = app.state.store.find_user("ann").expect("store").expect("ann");
    let _workers = app.workers();

    let (status, up) = app.upload(&key, &[("n0.md", &note(0)), ("n1.md", &note(1))]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    for i in 0..2 {
        assert_eq!(app.settled(&key, doc_id(&up, i)).await["state"], "ready");
    }
    let (status, ready) = app.get(&key, "/readyz").await;
    assert_eq!((status, ready["vectors"].as_str()), (StatusCode::OK, Some("chroma")), "{ready}");

    chroma.kill();
    let files: Vec<(String, Vec<u8>)> =
        (2..6).map(|i| (format!("n{i}.md"), note(i))).chain([("n0.md".into(), note(10))]).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let (status, up) = app.upload(&key, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "uploads are accepted while ChromaDB is down: {up}");

    // The documents wait, and say what for.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let docs = documents(&app, &key).await;
        if docs.iter().any(|d| d["stage"] == "waiting") {
            break;
        }
        assert!(Instant::now() < deadline, "no document said it waits: {docs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = app.get(&key, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "vector_index_unavailable");
    let query = json!({"query": "harbour master", "mode": "vector"});
    let (status, body) = app.send("POST", &key, "/v1/search", query).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "vector_index_unavailable");
    let query = json!({"query": "harbour master", "mode": "keyword"});
    let (status, body) = app.send("POST", &key, "/v1/search", query).await;
    assert_eq!(status, StatusCode::OK, "keyword search is the store's: {body}");
    // The old version of n0 is still the searchable one (nothing of the new is visible).
    assert!(body.to_string().contains("ship number 0") && !body.to_string().contains("number 10"));

    let chroma = tokio::task::spawn_blocking(move || {
        chroma.restart();
        chroma
    })
    .await
    .expect("restart");
    let deadline = Instant::now() + Duration::from_secs(60);
    let docs = loop {
        let docs = documents(&app, &key).await;
        if docs.iter().all(|d| d["state"] == "ready") {
            break docs;
        }
        assert!(Instant::now() < deadline, "never all ready: {docs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(docs.len(), 6, "every accepted document: {docs:?}");
    let chunks: u64 = docs.iter().filter_map(|d| d["chunks"].as_u64()).sum();
    // Each chunk's vector once: no duplicate from a retried write, no stale version left.
    let vectors = app.state.pipeline.vectors().expect("chroma");
    vectors.collect().await.expect("collect");
    let held = index.inventory(user).await.expect("inventory");
    assert_eq!(held.iter().map(|v| u64::from(v.chunks)).sum::<u64>(), chunks, "{held:?}");
    assert_eq!(held.len(), 6, "one generation per document: {held:?}");

    let query = json!({"query": "ship number 10 harbour", "mode": "vector", "top_k": 3});
    let (status, found) = app.send("POST", &key, "/v1/search", query).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(
        found["results"][0]["text"].as_str().is_some_and(|t| t.contains("number 10")),
        "{found}"
    );
    let (status, _) = app.get(&key, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    drop(chroma);
}
