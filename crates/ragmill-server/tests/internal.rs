//! The cluster worker's catalog (`ragmill_remote::MainServer`) against `/internal/v1` of a real
//! `app(state)` on a loopback port: vectors a worker remembers midway are in the main server's
//! cache for its next run, and only the worker key opens these routes.

mod common;

use std::sync::Arc;

use common::TestApp;
use ragmill_core::{Catalog, CatalogError, ContentHash};
use ragmill_remote::MainServer;

/// A test app whose cluster worker key is `key`.
async fn with_worker_key(key: &str) -> TestApp {
    let hash = *blake3::hash(key.as_bytes()).as_bytes();
    TestApp::with_config(|c| c.worker_key_hash = Some(hash)).await
}

/// Serves `app(state)` on a loopback port; answers its base URL.
async fn serve(app: &TestApp) -> String {
    let state = app.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = ragmill_server::app(state);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_remembered_vectors_are_in_the_main_servers_cache() {
    let app = with_worker_key("worker-key").await;
    let url = serve(&app).await;
    let worker: Arc<dyn Catalog> = Arc::new(MainServer::new(&url, "worker-key").expect("client"));
    let (a, b) = (ContentHash::of(b"first chunk"), ContentHash::of(b"second chunk"));
    let vectors = vec![(a, vec![0.6, 0.8]), (b, vec![1.0, 0.0])];
    let alice = app.state.store.ensure_user("alice").expect("user");
    let bob = app.state.store.ensure_user("bob").expect("user");

    assert!(worker.cached(alice, "m", vec![a, b]).await.expect("cached").is_empty());
    worker.remember(alice, "m", vectors.clone()).await.expect("remembered");
    let found = worker.cached(alice, "m", vec![a, b]).await.expect("cached");
    assert_eq!(found.get(&a), Some(&vectors[0].1));
    assert_eq!(found.get(&b), Some(&vectors[1].1));
    assert!(worker.cached(alice, "another model", vec![a]).await.expect("cached").is_empty());
    assert!(
        worker.cached(bob, "m", vec![a, b]).await.expect("cached").is_empty(),
        "another user's cache never answers"
    );

    let stranger = MainServer::new(&url, "not-the-key").expect("client");
    match stranger.remember(alice, "m", vectors).await {
        Err(CatalogError::Failed(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("a wrong key must be refused: {other:?}"),
    }
}
