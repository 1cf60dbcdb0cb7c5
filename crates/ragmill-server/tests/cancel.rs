//! Cancelling really stops the work: a document caught mid-embedding stops within a second,
//! nothing of it is stored, its job is gone; bulk cancel and retry; pausing stops it the same
//! way and holds it until it is resumed.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestApp, doc_id};
use serde_json::json;

/// A document of about 250 chunks (the test chunker cuts at 48 words).
fn long_text(topic: &str) -> Vec<u8> {
    (0..1200)
        .map(|i| format!("Paragraph {i} tells of {topic} and the ships in the harbour.\n\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_document_mid_embedding_within_a_second() {
    let app = TestApp::new().await;
    app.embedder.delay_ms.store(300, Ordering::SeqCst);
    let key = app.user("ann");
    let _workers = app.workers();
    let (status, up) = app.upload(&key, &[("long.md", &long_text("tides"))]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let id = doc_id(&up, 0);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, doc) = app.get(&key, &format!("/v1/documents/{id}")).await;
        if doc["stage"] == "embedding" && app.embedder.batches.load(Ordering::SeqCst) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never embedding: {doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let cancelled_at = Instant::now();
    let (_, doc) = app.get(&key, &format!("/v1/documents/{id}")).await;
    assert_eq!(
        (doc["state"].as_str(), doc["error"]["code"].as_str()),
        (Some("failed"), Some("cancelled")),
        "{doc}"
    );

    // Within a second the worker has let go of the job and no batch starts any more.
    loop {
        let depth = app.state.queue.depth().await.expect("depth");
        if depth.leased == 0 && depth.queued == 0 {
            break;
        }
        assert!(cancelled_at.elapsed() < Duration::from_secs(1), "the job still runs: {depth:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await; // a batch already running ends
    let settled = app.embedder.batches.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(app.embedder.batches.load(Ordering::SeqCst), settled, "embedding went on");
    let (_, doc) = app.get(&key, &format!("/v1/documents/{id}")).await;
    assert_eq!((doc["state"].as_str(), doc["chunks"].as_u64()), (Some("failed"), Some(0)), "{doc}");

    // Cancelling what has ended is a conflict; another user's document does not exist.
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{id}/cancel"), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_in_progress"))
    );
    let other = app.user("bob");
    let (status, _) =
        app.send("POST", &other, &format!("/v1/documents/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retried, it runs to the end.
    app.embedder.delay_ms.store(0, Ordering::SeqCst);
    let (status, r) = app.send("POST", &key, "/v1/documents/retry", json!({"ids": [id]})).await;
    assert_eq!((status, r["done"].as_u64()), (StatusCode::OK, Some(1)), "{r}");
    let doc = app.settled(&key, id).await;
    assert_eq!(doc["state"], "ready", "{doc}");
    assert!(doc["chunks"].as_u64().is_some_and(|n| n > 100), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_batch_is_cancelled_and_retried_at_once() {
    let app = TestApp::new().await;
    app.embedder.delay_ms.store(200, Ordering::SeqCst);
    let key = app.user("ann");
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("d{i}.md"), long_text(&format!("topic {i}")))).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let (status, up) = app.upload(&key, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let _workers = app.workers();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, body) = app.send("POST", &key, "/v1/documents/cancel", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_selection"))
    );
    let (status, r) = app.send("POST", &key, "/v1/documents/cancel", json!({"all": true})).await;
    assert_eq!((status, r["done"].as_u64()), (StatusCode::OK, Some(6)), "{r}");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let depth = app.state.queue.depth().await.expect("depth");
        if depth.leased == 0 && depth.queued == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs left: {depth:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, list) = app.get(&key, "/v1/documents").await;
    let docs = list["documents"].as_array().cloned().unwrap_or_default();
    assert!(docs.iter().all(|d| d["error"]["code"] == "cancelled"), "{list}");

    app.embedder.delay_ms.store(0, Ordering::SeqCst);
    let (status, r) = app.send("POST", &key, "/v1/documents/retry", json!({"all": true})).await;
    assert_eq!((status, r["done"].as_u64()), (StatusCode::OK, Some(6)), "{r}");
    for i in 0..6 {
        assert_eq!(app.settled(&key, doc_id(&up, i)).await["state"], "ready");
    }
}

/// Waits until no job is queued or leased, for at most `within`.
async fn jobs_gone(app: &TestApp, within: Duration) {
    let since = Instant::now();
    loop {
        let depth = app.state.queue.depth().await.expect("depth");
        if depth.leased == 0 && depth.queued == 0 {
            return;
        }
        assert!(since.elapsed() < within, "jobs left after {within:?}: {depth:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_paused_mid_embedding_holds_still_then_resumes_to_ready() {
    let app = TestApp::new().await;
    app.embedder.delay_ms.store(200, Ordering::SeqCst);
    let key = app.user("ann");
    let files: Vec<(String, Vec<u8>)> =
        (0..4).map(|i| (format!("d{i}.md"), long_text(&format!("topic {i}")))).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let (status, up) = app.upload(&key, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let _workers = app.workers();
    let first = doc_id(&up, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.embedder.batches.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "never embedding");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One by id, then the rest of the batch; a second pause finds nothing to pause.
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{first}/pause"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, r) = app.send("POST", &key, "/v1/documents/pause", json!({"all": true})).await;
    assert_eq!((status, r["done"].as_u64()), (StatusCode::OK, Some(3)), "{r}");
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{first}/pause"), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_in_progress")),
        "{body}"
    );
    jobs_gone(&app, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(400)).await; // a batch already running ends
    let settled = app.embedder.batches.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(app.embedder.batches.load(Ordering::SeqCst), settled, "embedding went on");
    let (_, list) = app.get(&key, "/v1/documents?state=paused").await;
    assert_eq!(list["total"].as_u64(), Some(4), "{list}");
    assert!(
        list["documents"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["chunks"] == 0 && d["error"].is_null())),
        "paused, nothing stored, no error: {list}"
    );
    // The reconciler leaves a paused document alone: it is not waiting for a job.
    let mended = app.state.ledger.reconcile().await.expect("reconcile");
    assert_eq!(mended.enqueued, 0, "{mended:?}");
    jobs_gone(&app, Duration::from_millis(100)).await;

    // Another user's resume finds no such document; the owner's resumes one, then the rest.
    let other = app.user("bob");
    let (status, _) =
        app.send("POST", &other, &format!("/v1/documents/{first}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, r) = app.send("POST", &other, "/v1/documents/resume", json!({"all": true})).await;
    assert_eq!((status, r["done"].as_u64()), (StatusCode::OK, Some(0)), "{r}");
    app.embedder.delay_ms.store(0, Ordering::SeqCst);
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{first}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) =
        app.send("POST", &key, &format!("/v1/documents/{first}/resume"), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_paused")),
        "{body}"
    );
    let ids: Vec<i64> = (0..4).map(|i| doc_id(&up, i)).collect();
    let (status, r) = app.send("POST", &key, "/v1/documents/resume", json!({"ids": ids})).await;
    assert_eq!(
        (status, r["done"].as_u64(), r["skipped"].as_u64()),
        (StatusCode::OK, Some(3), Some(1)),
        "{r}"
    );
    for id in ids {
        let doc = app.settled(&key, id).await;
        assert_eq!(doc["state"], "ready", "{doc}");
        assert!(doc["chunks"].as_u64().is_some_and(|n| n > 100), "{doc}");
    }
}
