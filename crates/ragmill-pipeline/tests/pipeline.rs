//! The pipeline end to end with the real model, a real SQLite file and in-process extraction.

mod common;

use std::sync::{Arc, Mutex};

use common::{BIKES, BREAD, TIDES, pipeline_over};
use ragmill_core::{Progress, Stage};
use ragmill_extract::Limits;
use ragmill_pipeline::{Input, Pipeline, ProgressFn, SearchOptions, Source};
use ragmill_store::Store;

fn pipeline(dir: &std::path::Path) -> Pipeline {
    pipeline_with(dir, Limits::default())
}

fn pipeline_with(dir: &std::path::Path, limits: Limits) -> Pipeline {
    pipeline_over(Arc::new(Store::open(dir).expect("store")), limits)
}

fn text(name: &str, body: &str) -> Input {
    Input { name: name.into(), source: Source::Bytes(body.as_bytes().to_vec()), document: None }
}

/// A search for the best `k`, in the default mode.
fn top(k: usize) -> SearchOptions {
    SearchOptions { top_k: k, ..SearchOptions::default() }
}

fn no_progress() -> ProgressFn {
    Arc::new(|_, _| {})
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_search_reingest_and_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pipeline(dir.path());
    let user = p.store().expect("store").ensure_user("alice").expect("user");

    let seen: Arc<Mutex<Vec<(usize, Progress)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let progress: ProgressFn =
        Arc::new(move |i, p: &Progress| sink.lock().expect("lock").push((i, p.clone())));
    let inputs = vec![
        text("tides.txt", TIDES),
        text("bread.txt", BREAD),
        text("bikes.txt", BIKES),
        text("empty.txt", "  "),
    ];
    let outcomes = p.ingest(user, inputs, progress).await;
    assert_eq!(outcomes.len(), 4);
    for (name, outcome) in &outcomes[..3] {
        let ok = outcome.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(ok.chunks >= 2, "{name} should make several chunks, made {}", ok.chunks);
        assert_eq!(ok.embedded + ok.cache_hits, ok.chunks);
    }
    let empty = outcomes[3].1.as_ref().expect_err("empty file fails");
    assert_eq!(empty.code(), "empty_file");

    // Progress: every document reached a final stage, and embedding counts rose to the total.
    let seen = seen.lock().expect("lock").clone();
    for i in 0..3 {
        let mine: Vec<&Progress> = seen.iter().filter(|(j, _)| *j == i).map(|(_, p)| p).collect();
        assert_eq!(mine.last().map(|p| p.stage), Some(Stage::Ready));
        let done: Vec<usize> =
            mine.iter().filter(|p| p.stage == Stage::Embedding).map(|p| p.done).collect();
        assert!(
            done.windows(2).all(|w| w[0] <= w[1]),
            "embedding progress never goes back: {done:?}"
        );
    }
    assert_eq!(seen.iter().rfind(|(j, _)| *j == 3).map(|(_, p)| p.stage), Some(Stage::Failed));

    let hits = p.search(user, "why does the sea rise and fall", top(3)).await.expect("search");
    assert_eq!(hits[0].document, "tides.txt");
    let hits = p.search(user, "how do I repair a punctured tube", top(1)).await.expect("search");
    assert_eq!(hits[0].document, "bikes.txt");

    // The same bytes again: nothing embedded.
    let again = p.ingest(user, vec![text("tides.txt", TIDES)], no_progress()).await;
    let again = again[0].1.as_ref().expect("ok");
    assert!(again.unchanged);
    assert_eq!(again.embedded, 0);

    // A changed version embeds only what changed; the old paragraph comes from the cache.
    let updated =
        format!("{TIDES}\n\nThe largest tidal range on Earth is in the Bay of Fundy in Canada.");
    let out = p.ingest(user, vec![text("tides.txt", &updated)], no_progress()).await;
    let out = out[0].1.as_ref().expect("ok");
    assert!(!out.unchanged);
    assert!(out.cache_hits >= 1, "unchanged chunks come from the cache: {out:?}");
    assert!(out.embedded >= 1 && out.embedded < out.chunks, "{out:?}");
    let hits = p.search(user, "Bay of Fundy tidal range", top(1)).await.expect("search");
    assert!(hits[0].text.contains("Fundy"));
    let docs = p.store().expect("store").user(user).documents().expect("list");
    assert_eq!(
        docs.iter().filter(|d| d.name == "tides.txt").count(),
        1,
        "one document, new version"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_content_is_embedded_once_per_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pipeline(dir.path());
    let (a, b) = (
        p.store().expect("store").ensure_user("a").expect("a"),
        p.store().expect("store").ensure_user("b").expect("b"),
    );
    let first =
        p.ingest(a, vec![text("one.txt", BREAD), text("two.txt", BREAD)], no_progress()).await;
    let chunks = first[0].1.as_ref().expect("ok").chunks;
    assert_eq!(first[1].1.as_ref().expect("ok").chunks, chunks);
    assert_eq!(
        p.batcher_stats().texts as usize,
        chunks,
        "two identical documents at once embed each chunk once"
    );

    // Each user's cache is their own: another user's upload of the same text tells them
    // nothing of the first (it is embedded for them), and then hits their own cache.
    let other = p.ingest(b, vec![text("copy.txt", BREAD)], no_progress()).await;
    let other = other[0].1.as_ref().expect("ok");
    assert_eq!((other.embedded, other.cache_hits), (chunks, 0), "no hit in another's cache");
    assert_eq!(p.batcher_stats().texts as usize, 2 * chunks);
    let again = p.ingest(b, vec![text("copy-2.txt", BREAD)], no_progress()).await;
    let again = again[0].1.as_ref().expect("ok");
    assert_eq!((again.embedded, again.cache_hits), (0, chunks), "their own cache answers");
    assert_eq!(p.batcher_stats().texts as usize, 2 * chunks, "nothing more was embedded");
    // And the users still see only their own documents.
    let hits = p.search(b, "sourdough starter", top(10)).await.expect("search");
    assert!(hits.iter().all(|h| h.document.starts_with("copy")), "{hits:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pipeline_with(dir.path(), Limits { max_input_bytes: 200, ..Limits::default() });
    let user = p.store().expect("store").ensure_user("alice").expect("user");
    let big = dir.path().join("big.txt");
    std::fs::write(&big, TIDES).expect("write");
    let inputs = vec![
        Input { name: "big.txt".into(), source: Source::Path(big), document: None },
        text("small.txt", "Lighthouses guide ships at night."),
        Input {
            name: "missing.txt".into(),
            source: Source::Path(dir.path().join("nope")),
            document: None,
        },
    ];
    let out = p.ingest(user, inputs, no_progress()).await;
    assert_eq!(out[0].1.as_ref().expect_err("too big").code(), "file_too_large");
    assert!(out[1].1.is_ok(), "the small file still goes in");
    assert_eq!(out[2].1.as_ref().expect_err("missing").code(), "unreadable");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_stopped_midway_keeps_what_it_embedded_for_its_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pipeline(dir.path());
    let user = p.store().expect("store").ensure_user("alice").expect("user");
    let body: String = (0..4000)
        .map(|i| {
            format!(
                "Entry {i}: keeper {} of lighthouse {} logged {} ships and a tide of {} metres.\n\n",
                i * 7 % 113,
                i * 11 % 89,
                i * 13 % 97,
                i % 17
            )
        })
        .collect();

    // Stopped (its task dropped, as a worker drops a paused or cancelled job) once more than
    // 2 × 256 chunks are embedded.
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&done);
    let progress: ProgressFn = Arc::new(move |_, p: &Progress| {
        if p.stage == Stage::Embedding {
            seen.store(p.done, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let (first, input) = (p.clone(), text("ledger.md", &body));
    let task = tokio::spawn(async move { first.ingest(user, vec![input], progress).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 600 {
        assert!(!task.is_finished(), "finished before it could be stopped");
        assert!(std::time::Instant::now() < deadline, "embedding never got that far");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    assert!(p.store().expect("store").user(user).documents().expect("list").is_empty());

    // Run anew: what the first run embedded comes from the cache.
    let outcomes = p.ingest(user, vec![text("ledger.md", &body)], no_progress()).await;
    let again = outcomes[0].1.as_ref().expect("ingested");
    assert!(again.chunks > 1500, "{again:?}");
    assert!(again.cache_hits >= 512, "at least two batches of 256 kept: {again:?}");
    assert_eq!(again.embedded + again.cache_hits, again.chunks);
}
