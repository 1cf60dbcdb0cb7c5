//! `GET /v1/stats` and `GET /v1/stats/history` count work from the store's processing log:
//! documents stored by another process straight into the store (as `ragmill ingest` does,
//! through a `LocalCatalog` of its own, no worker of this server involved) show up, each user
//! sees their own, and an administrator the whole service.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::TestApp;
use ragmill_core::{
    Catalog, Chunk, ContentHash, DocumentKind, DocumentVersion, EmbeddedChunk, FailedVersion,
    Finished, UserId,
};
use ragmill_pipeline::LocalCatalog;
use serde_json::Value;

fn version(name: &str, embedding_s: f64) -> DocumentVersion {
    DocumentVersion {
        document: None,
        name: name.into(),
        content_hash: ContentHash::of(name.as_bytes()),
        kind: Some(DocumentKind::Text),
        size: 10,
        timings: [
            ("extracting".to_owned(), 0.25),
            ("chunking".to_owned(), 0.25),
            ("embedding".to_owned(), embedding_s),
        ]
        .into(),
    }
}

/// A version of `name` with `texts` as chunks, the first `fresh` of them embedded now.
fn finished(app: &TestApp, name: &str, texts: &[&str], fresh: usize, embedding_s: f64) -> Finished {
    let info = ragmill_core::Embedder::info(app.embedder.as_ref()).clone();
    let chunks = texts
        .iter()
        .enumerate()
        .map(|(i, t)| EmbeddedChunk {
            chunk: Chunk {
                ordinal: i as u32,
                text: (*t).into(),
                start: 0,
                end: t.len(),
                tokens: 1,
                page: None,
                heading_path: vec![],
            },
            hash: ContentHash::of(t.as_bytes()),
            vector: {
                let mut v = vec![0.0; info.dimensions];
                v[i % info.dimensions] = 1.0;
                v
            },
            fresh: i < fresh,
        })
        .collect();
    Finished {
        version: version(name, embedding_s),
        model: info.id.clone(),
        space: info.space.clone(),
        dimensions: info.dimensions,
        chunks,
    }
}

fn admin(app: &TestApp, name: &str) -> String {
    let key = app.user(name);
    let id = app.state.store.find_user(name).expect("store").expect("user");
    app.state.store.set_admin(id, true).expect("admin");
    key
}

fn user_id(app: &TestApp, name: &str) -> UserId {
    app.state.store.find_user(name).expect("store").expect("user")
}

/// Sums one field of every bucket of a `processing` figure.
fn sum(processing: &Value, field: &str) -> f64 {
    processing["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {processing}"))
        .iter()
        .map(|b| b[field].as_f64().unwrap_or(0.0))
        .sum()
}

fn stage<'a>(processing: &'a Value, name: &str) -> &'a Value {
    processing["stages"]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["stage"] == name))
        .unwrap_or_else(|| panic!("no {name} in {processing}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_stored_straight_into_the_store_counts_in_stats_and_history() {
    let app = TestApp::new().await;
    let ann = app.user("ann");
    let bob = app.user("bob");
    let root = admin(&app, "root");

    // Another process (the CLI) writes into the same store: no worker of this server, no
    // in-memory counter of this process sees it.
    let cli = LocalCatalog::new(Arc::clone(&app.state.store));
    let ann_id = user_id(&app, "ann");
    cli.finish(ann_id, finished(&app, "a.txt", &["one", "two", "three"], 2, 1.0))
        .await
        .expect("stored");
    cli.finish(ann_id, finished(&app, "b.txt", &["four", "five"], 0, 3.0)).await.expect("stored");
    let failed = FailedVersion {
        version: version("c.pdf", 0.0),
        code: "no_text".into(),
        message: "x".into(),
    };
    cli.fail(ann_id, failed).await.expect("failed");

    let (status, mine) = app.get(&ann, "/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["scope"], "user");
    let a = &mine["activity"];
    assert_eq!(
        (
            a["documents_ready"].as_u64(),
            a["documents_failed"].as_u64(),
            a["chunks_stored"].as_u64(),
            a["chunks_embedded"].as_u64(),
            a["cache_hits"].as_u64(),
            a["window_s"].as_u64(),
        ),
        (Some(2), Some(1), Some(5), Some(2), Some(3), Some(900)),
        "{mine}"
    );
    let p = &mine["processing"];
    assert_eq!(p["buckets"].as_array().map(Vec::len), Some(90), "15 minutes of 10 s");
    assert_eq!(sum(p, "documents_ready"), 2.0);
    assert_eq!(sum(p, "chunks_stored"), 5.0);
    // The same figures: the counters are the buckets summed.
    let seconds = sum(p, "processing_seconds");
    assert!((seconds - a["processing_seconds"].as_f64().expect("s")).abs() < 1e-9);
    assert!(seconds > 5.0, "0.5 + 1 and 0.5 + 3 s, plus storing: {seconds}");
    assert_eq!(p["by"], serde_json::json!([{"by": "cli", "attempts": 3}]));
    assert_eq!(p["stages"]["basis"], "window");
    assert_eq!(p["stages"]["documents"], 2);
    let embedding = stage(p, "embedding");
    assert_eq!((embedding["p50_s"].as_f64(), embedding["p95_s"].as_f64()), (Some(1.0), Some(3.0)));
    assert_eq!(stage(p, "storing")["documents"], 2, "the store times its own write");
    assert!(stage(p, "total")["p95_s"].as_f64().expect("s") >= 3.5);

    // Bob has done nothing: none of ann's work is his.
    let (_, his) = app.get(&bob, "/v1/stats").await;
    assert_eq!(his["activity"]["documents_ready"], 0, "{his}");
    assert_eq!(sum(&his["processing"], "documents_ready"), 0.0);
    assert_eq!(his["processing"]["stages"]["documents"], 0);
    assert_eq!(his["processing"]["by"], serde_json::json!([]));

    // The service: everyone's, in the stats and in the history, which reads the log afresh
    // (no sample was ever taken here).
    let (_, all) = app.get(&root, "/v1/stats").await;
    assert_eq!(all["scope"], "service");
    assert_eq!(all["activity"]["documents_ready"], 2, "{all}");
    let (status, history) = app.get(&root, "/v1/stats/history").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["samples"], serde_json::json!([]));
    assert_eq!(sum(&history["processing"], "documents_ready"), 2.0, "{history}");
    assert_eq!(sum(&history["processing"], "documents_failed"), 1.0);
    assert_eq!(history["processing"]["stages"]["documents"], 2);
    let (status, _) = app.get(&ann, "/v1/stats/history").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_workers_are_logged_as_the_server() {
    let app = TestApp::new().await;
    let ann = app.user("ann");
    let _workers = app.workers();
    let (_, up) = app.upload(&ann, &[("a.md", b"# A\n\nsome words to index")]).await;
    let doc = app.settled(&ann, common::doc_id(&up, 0)).await;
    assert_eq!(doc["state"], "ready", "{doc}");
    let (_, mine) = app.get(&ann, "/v1/stats").await;
    assert_eq!(mine["processing"]["by"], serde_json::json!([{"by": "server", "attempts": 1}]));
    assert_eq!(mine["activity"]["documents_ready"], 1);
    assert_eq!(mine["workers"]["busy"], 0);
    let stages: Vec<&str> = mine["processing"]["stages"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(stages, ["extracting", "chunking", "embedding", "storing", "total"]);
}
