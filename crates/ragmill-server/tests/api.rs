//! The `/v1` API through `app(state)` with in-process seams and no model: uploads pair a
//! document with its job, workers process them to the end, a crash inside a job fails only that
//! document, the reconciler mends what a crash or a queue outage left behind, and each user
//! sees only their own documents.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use common::{TestApp, doc_id};
use ragmill_core::{Depth, DocumentId, Failed, JobQueue, JobState, Lease, QueueError, UserId};
use ragmill_store::{Accepted, DocumentState};
use serde_json::json;
use tower::ServiceExt;

const TIDES: &[u8] = b"# Tides\n\nThe moon pulls the oceans and makes the tides rise and fall \
twice a day. Spring tides come with the full and new moon.\n";
const BREAD: &[u8] = b"Sourdough bread needs a starter of flour and water, fed daily, and a long \
slow rise before baking in a hot oven.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_processed_to_ready_and_searchable_by_its_owner_only() {
    let app = TestApp::new().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    let _workers = app.workers();

    let (status, up) = app.upload(&alice, &[("tides.md", TIDES), ("bread.txt", BREAD)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    assert_eq!(up["documents"][0]["state"], "queued");
    let doc = app.settled(&alice, doc_id(&up, 0)).await;
    assert_eq!(doc["state"], "ready", "{doc}");
    assert!(doc["chunks"].as_u64() > Some(0), "{doc}");
    app.settled(&alice, doc_id(&up, 1)).await;

    let (status, found) =
        app.send("POST", &alice, "/v1/search", json!({"query": "moon tides", "top_k": 1})).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["results"][0]["document"], "tides.md", "{found}");

    // Bob sees nothing of Alice's: not her document, not her chunks.
    let (status, _) = app.get(&bob, &format!("/v1/documents/{}", doc_id(&up, 0))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, found) =
        app.send("POST", &bob, "/v1/search", json!({"query": "moon tides", "top_k": 5})).await;
    assert_eq!(found["results"], json!([]), "{found}");
    assert_eq!(app.state.queue.depth().await.ok(), Some(Depth::default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_again_answer_the_state_they_are_in() {
    let app = TestApp::new().await;
    let alice = app.user("alice");
    // No workers yet: the first upload stays queued.
    let (_, first) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    let (status, again) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["documents"][0]["id"], first["documents"][0]["id"]);
    assert_eq!(again["documents"][0]["state"], "queued", "not ready while queued: {again}");
    let (_, doc) = app.get(&alice, &format!("/v1/documents/{}", doc_id(&first, 0))).await;
    assert_eq!(doc["state"], "queued");

    let _workers = app.workers();
    app.settled(&alice, doc_id(&first, 0)).await;
    let (_, third) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    assert_eq!(third["documents"][0]["state"], "ready", "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_job_fails_that_document_and_the_worker_goes_on() {
    let app = TestApp::new().await;
    let alice = app.user("alice");
    let _workers = app.workers();

    app.embedder.panic_on_info.store(true, Ordering::SeqCst);
    let (_, up) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    let doc = app.settled(&alice, doc_id(&up, 0)).await;
    app.embedder.panic_on_info.store(false, Ordering::SeqCst);
    assert_eq!(doc["state"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], "processing_crashed", "{doc}");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("told to panic")), "{doc}");

    // The job ended (no lease kept alive by a heartbeat), and the workers still work.
    let (_, next) = app.upload(&alice, &[("bread.txt", BREAD)]).await;
    assert_eq!(app.settled(&alice, doc_id(&next, 0)).await["state"], "ready");
    assert_eq!(app.state.queue.depth().await.ok(), Some(Depth::default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_document_was_deleted_ends_quietly() {
    let app = TestApp::new().await;
    let alice = app.user("alice");
    let (_, up) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    let id = DocumentId(doc_id(&up, 0));
    // Deleted behind the ledger's back, so the job stays: its worker must drop it.
    let user = app.state.store.find_user("alice").expect("store").expect("alice");
    assert!(app.state.store.user(user).delete_document(id).expect("delete"));
    assert_eq!(app.state.queue.job_state(user, id).await, Ok(Some(JobState::Queued)));

    let mut events = app.state.events.subscribe(user).await.expect("subscribe");
    let _workers = app.workers();
    for _ in 0..500 {
        if app.state.queue.depth().await.ok() == Some(Depth::default()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.queue.depth().await.ok(), Some(Depth::default()), "job dropped");
    use futures::FutureExt;
    use futures::StreamExt;
    while let Some(Some(got)) = events.next().now_or_never() {
        assert!(!format!("{got:?}").contains("Failed"), "no failure for a deleted document");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_queues_a_document_left_without_a_job_and_fails_a_parked_one() {
    let app = TestApp::new().await;
    let alice = app.user("alice");
    let user = app.state.store.find_user("alice").expect("store").expect("alice");

    // A crash between the document's row and its job: the row says queued, no job exists.
    let hash = app.put_blob(TIDES).await;
    let accepted =
        app.state.store.user(user).accept_upload("tides.md", hash, TIDES.len() as u64, None);
    let Ok(Accepted::Queued(orphan)) = accepted else { panic!("{accepted:?}") };

    // A job given up on (attempts exhausted) while its document still says processing.
    let parked_doc = {
        let hash = app.put_blob(BREAD).await;
        let store = app.state.store.user(user);
        let Ok(Accepted::Queued(id)) = store.accept_upload("bread.txt", hash, 10, None) else {
            panic!("accept")
        };
        store.set_state(id, DocumentState::Processing).expect("state");
        app.sqlite.enqueue(user, id, 10).expect("enqueue");
        for _ in 0..3 {
            let lease = loop {
                if let Some(l) = app.sqlite.lease("test").expect("lease") {
                    break l;
                }
                tokio::time::sleep(Duration::from_millis(50)).await; // backoff between attempts
            };
            let _ = app.sqlite.fail(&lease, "the disk was full").expect("fail");
        }
        assert_eq!(
            app.sqlite.job_state(user, id).expect("state"),
            Some(JobState::Parked("the disk was full".into()))
        );
        id
    };

    let mended = app.state.ledger.reconcile().await.expect("reconcile");
    assert_eq!((mended.enqueued, mended.failed), (1, 1));
    let (_, doc) = app.get(&alice, &format!("/v1/documents/{}", parked_doc.0)).await;
    assert_eq!(doc["state"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], "processing_failed", "{doc}");
    assert_eq!(doc["error"]["message"], "the disk was full", "{doc}");

    let _workers = app.workers();
    assert_eq!(app.settled(&alice, orphan.0).await["state"], "ready");
    let again = app.state.ledger.reconcile().await.expect("reconcile");
    assert_eq!((again.enqueued, again.failed), (0, 0), "nothing left to mend");
}

/// The embedded queue, with a switch that makes every call answer `Unavailable`, as Redis
/// does while it is down.
struct Outage {
    inner: Arc<dyn JobQueue>,
    down: AtomicBool,
}

impl Outage {
    fn check(&self) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            Err(QueueError::Unavailable("connection refused (test outage)".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl JobQueue for Outage {
    async fn enqueue(&self, user: UserId, d: DocumentId, size: u64) -> Result<(), QueueError> {
        self.check()?;
        self.inner.enqueue(user, d, size).await
    }
    async fn lease(&self, worker: &str) -> Result<Option<Lease>, QueueError> {
        self.check()?;
        self.inner.lease(worker).await
    }
    async fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError> {
        self.check()?;
        self.inner.heartbeat(lease).await
    }
    async fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        self.check()?;
        self.inner.complete(lease).await
    }
    async fn fail(&self, lease: &Lease, error: &str) -> Result<Failed, QueueError> {
        self.check()?;
        self.inner.fail(lease, error).await
    }
    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.check()?;
        self.inner.release(lease).await
    }
    async fn cancel(&self, user: UserId, d: DocumentId) -> Result<u64, QueueError> {
        self.check()?;
        self.inner.cancel(user, d).await
    }
    async fn job_state(&self, user: UserId, d: DocumentId) -> Result<Option<JobState>, QueueError> {
        self.check()?;
        self.inner.job_state(user, d).await
    }
    async fn depth(&self) -> Result<Depth, QueueError> {
        self.check()?;
        self.inner.depth().await
    }
    async fn depth_for(&self, user: UserId) -> Result<Depth, QueueError> {
        self.check()?;
        self.inner.depth_for(user).await
    }
    fn lease_duration(&self) -> Duration {
        self.inner.lease_duration()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_kept_while_the_queue_is_down_and_processed_when_it_is_back() {
    let outage = Arc::new(std::sync::OnceLock::<Arc<Outage>>::new());
    let slot = Arc::clone(&outage);
    let app = TestApp::build(move |inner| {
        let o = Arc::new(Outage { inner, down: AtomicBool::new(true) });
        let _ = slot.set(Arc::clone(&o));
        o
    })
    .await;
    let queue = outage.get().expect("built");
    let alice = app.user("alice");
    let _workers = app.workers();

    let (status, up) = app.upload(&alice, &[("tides.md", TIDES)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "accepted while the queue is down: {up}");
    let (status, ready) = app
        .call(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("req"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["error"]["code"], "queue_unavailable");
    let (status, found) =
        app.send("POST", &alice, "/v1/search", json!({"query": "tides", "top_k": 3})).await;
    assert_eq!(status, StatusCode::OK, "search answers without the queue: {found}");

    queue.down.store(false, Ordering::SeqCst);
    let mended = app.state.ledger.reconcile().await.expect("reconcile");
    assert_eq!(mended.enqueued, 1);
    assert_eq!(app.settled(&alice, doc_id(&up, 0)).await["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_open_streams_and_its_event_tokens() {
    use futures::StreamExt;
    let app = TestApp::new().await;
    let alice = app.user("alice");
    let user = app.state.store.find_user("alice").expect("store").expect("alice");
    let (status, token) = app.send("POST", &alice, "/v1/events/token", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let token = token["token"].as_str().expect("token").to_owned();

    let request = axum::http::Request::get("/v1/events")
        .header("authorization", format!("Bearer {alice}"))
        .header("accept", "text/event-stream")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.router().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("snapshot");
    assert!(String::from_utf8_lossy(&first.expect("frame").expect("bytes")).contains("snapshot"));

    assert_eq!(app.state.store.revoke_api_keys(user).expect("revoke"), 1);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.next().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its key's revocation");

    let (status, _) = app.get(&token, "/v1/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = axum::http::Request::get(format!("/v1/events?token={token}"))
        .header("accept", "text/event-stream")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.router().oneshot(request).await.expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a token of a revoked key opens nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_link_opens_that_original_by_name_without_the_key_until_the_key_is_revoked() {
    let app = TestApp::new().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    let (_, up) = app.upload(&alice, &[("Tides and moon.md", TIDES), ("bread.txt", BREAD)]).await;
    let (tides, bread) = (doc_id(&up, 0), doc_id(&up, 1));
    let (status, link) =
        app.send("POST", &alice, &format!("/v1/documents/{tides}/file/link"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(link["disposition"], "inline", "{link}");
    assert_eq!(link["expires_in"], 3600, "{link}");
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&format!("/v1/documents/{tides}/file?token=")), "{url}");

    // Without any header, as a browser tab opens it, and again (a PDF viewer saving it).
    let open = |path: String| {
        let router = app.router();
        async move {
            let request =
                axum::http::Request::get(path).body(axum::body::Body::empty()).expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let (status, headers) = (response.status(), response.headers().clone());
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            (status, headers, body)
        }
    };
    for _ in 0..2 {
        let (status, headers, body) = open(url.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], TIDES);
        assert_eq!(
            headers[axum::http::header::CONTENT_DISPOSITION],
            "inline; filename*=UTF-8''Tides%20and%20moon.md"
        );
        assert_eq!(headers[axum::http::header::REFERRER_POLICY], "no-referrer");
    }

    // Only that document: not another of hers, and a forged or missing token opens nothing.
    let token = url.split_once("token=").expect("token").1.to_owned();
    let other = format!("/v1/documents/{bread}/file?token={token}");
    assert_eq!(open(other).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        open(format!("/v1/documents/{tides}/file?token=f1.1.x.1.2.00")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(open(format!("/v1/documents/{tides}/file")).await.0, StatusCode::UNAUTHORIZED);
    // An event token is no link.
    let (_, event) = app.send("POST", &alice, "/v1/events/token", json!({})).await;
    let event = event["token"].as_str().expect("token").to_owned();
    assert_eq!(
        open(format!("/v1/documents/{tides}/file?token={event}")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Bob gets no link to Alice's document: it does not exist for him.
    let (status, _) =
        app.send("POST", &bob, &format!("/v1/documents/{tides}/file/link"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The link dies with the key it was made with.
    let user = app.state.store.find_user("alice").expect("store").expect("alice");
    assert_eq!(app.state.store.revoke_api_keys(user).expect("revoke"), 1);
    assert_eq!(open(url).await.0, StatusCode::UNAUTHORIZED);
}

/// Reverses whatever order it is given: a reranker whose effect cannot be mistaken.
struct Reverse;

#[async_trait::async_trait]
impl ragmill_core::Reranker for Reverse {
    fn name(&self) -> &str {
        "reverse"
    }
    async fn rerank(
        &self,
        _query: &str,
        texts: Vec<String>,
    ) -> Result<Vec<f32>, ragmill_core::RerankError> {
        Ok((0..texts.len()).map(|i| i as f32).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_modes_find_by_meaning_by_words_or_both_and_say_which() {
    let app = TestApp::new().await;
    let alice = app.user("alice");
    let _workers = app.workers();
    let codes = b"Maintenance log. Valve XR7714 was replaced after the pressure test.\n";
    let (_, up) =
        app.upload(&alice, &[("tides.md", TIDES), ("bread.txt", BREAD), ("log.txt", codes)]).await;
    for i in 0..3 {
        app.settled(&alice, doc_id(&up, i)).await;
    }
    let search = |mode: &str, query: &str| json!({"query": query, "top_k": 3, "mode": mode});
    let (status, found) =
        app.send("POST", &alice, "/v1/search", search("keyword", "xr7714 valve")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["mode"], "keyword");
    let results = found["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "only the log has those words: {found}");
    assert_eq!(results[0]["document"], "log.txt");
    assert!(results[0]["scores"]["keyword"].as_f64() > Some(0.0), "{found}");
    assert!(results[0]["scores"].get("vector").is_none(), "{found}");

    let (_, found) = app.send("POST", &alice, "/v1/search", search("vector", "moon tides")).await;
    assert_eq!(found["mode"], "vector");
    assert_eq!(found["results"].as_array().map(Vec::len), Some(3), "vectors rank everything");
    assert!(found["results"][0]["scores"].get("keyword").is_none(), "{found}");

    let (_, found) = app.send("POST", &alice, "/v1/search", json!({"query": "moon tides"})).await;
    assert_eq!(found["mode"], "hybrid", "the default");
    let top = &found["results"][0];
    assert_eq!(top["document"], "tides.md", "{found}");
    assert!(top["scores"]["vector"].is_number() && top["scores"]["keyword"].is_number(), "{found}");
    assert!(
        top["score"].as_f64().is_some_and(|s| s > 0.0 && s <= 1.0),
        "fused score in (0, 1]: {found}"
    );

    let (status, err) = app.send("POST", &alice, "/v1/search", search("semantic", "tides")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_mode")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reranker_reorders_the_fused_candidates() {
    let app = TestApp::with_pipeline(|p| p.with_reranker(std::sync::Arc::new(Reverse))).await;
    let alice = app.user("alice");
    let _workers = app.workers();
    let (_, up) = app.upload(&alice, &[("tides.md", TIDES), ("bread.txt", BREAD)]).await;
    app.settled(&alice, doc_id(&up, 0)).await;
    app.settled(&alice, doc_id(&up, 1)).await;
    let query = json!({"query": "moon tides", "top_k": 2, "mode": "vector"});
    let (_, found) = app.send("POST", &alice, "/v1/search", query).await;
    let results = found["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{found}");
    assert_eq!(results[0]["document"], "bread.txt", "reversed by the reranker: {found}");
    assert_eq!(results[0]["scores"]["rerank"], 1.0, "{found}");
    assert!(results[1]["scores"]["vector"].as_f64() > results[0]["scores"]["vector"].as_f64());
}
