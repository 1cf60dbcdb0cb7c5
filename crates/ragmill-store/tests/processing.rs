//! The processing log: written with the outcome it records, scoped by user, bounded, and read
//! back as series and per-stage percentiles.

use std::time::Duration;

use ragmill_core::{Chunk, ContentHash, DocumentId};
use ragmill_store::{
    Attempt, NewChunk, NewDocument, Outcome, Retention, Store, StoreError, Timings, UserId,
};

mod common;
use common::*;

/// Far enough ahead that every row written by a test is in the window that ends there.
fn soon() -> i64 {
    now() + 60_000
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock")
}

fn chunks(texts: &[&str]) -> Vec<Chunk> {
    texts.iter().enumerate().map(|(i, t)| chunk(i as u32, t)).collect()
}

fn new_chunks<'a>(chunks: &'a [Chunk], vector: &'a [f32]) -> Vec<NewChunk<'a>> {
    chunks
        .iter()
        .map(|c| NewChunk { chunk: c, hash: ContentHash::of(c.text.as_bytes()), vector })
        .collect()
}

/// Stores `name` for `user` with `timings`, as `by` did it with `embedded` cache misses.
fn store_doc(store: &Store, user: UserId, name: &str, timings: Timings, by: &str, embedded: u64) {
    let c = chunks(&["one", "two", "three"]);
    let v = unit([1.0, 0.0, 0.0]);
    let doc = NewDocument { timings, ..doc(name, name) };
    let attempt = Attempt { by: Some(by.into()), embedded, cache_hits: 3 - embedded };
    store
        .user(user)
        .with_attempt(attempt)
        .replace_document(&doc, &new_chunks(&c, &v), MODEL, 3)
        .expect("stored");
}

fn timings(pairs: &[(&str, f64)]) -> Timings {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn a_stored_version_is_logged_with_what_its_attempt_did() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    let before = now();
    store_doc(
        &store,
        alice,
        "a.txt",
        timings(&[("extracting", 0.5), ("embedding", 2.0)]),
        "cli",
        2,
    );
    let log = store.user(alice).processing_log(10).expect("log");
    assert_eq!(log.len(), 1, "{log:?}");
    let row = &log[0];
    assert_eq!(row.outcome, Outcome::Ready);
    assert_eq!((row.chunks, row.embedded, row.cache_hits), (3, 2, 1));
    assert_eq!(row.by.as_deref(), Some("cli"));
    assert!(row.finished_at >= before && row.finished_at <= now());
    let doc = store.user(alice).document_by_name("a.txt").expect("read").expect("doc");
    assert_eq!(row.document, doc.id);
    assert_eq!(row.timings.get("extracting"), Some(&0.5));
    let storing = row.timings.get("storing").copied().expect("the store times its own write");
    assert!((0.0..5.0).contains(&storing), "{storing}");
    let total = row.timings.get("total").copied().expect("total");
    assert!((total - (2.5 + storing)).abs() < 1e-9, "the stages summed: {total}");

    // Without an attempt (a bulk load): every chunk counts as embedded, nobody named.
    put(&store, "alice", "b.txt", &["x", "y"], &[unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])]);
    let row = &store.user(alice).processing_log(1).expect("log")[0];
    assert_eq!((row.chunks, row.embedded, row.cache_hits, row.by.as_deref()), (2, 2, 0, None));

    // An attempt that says it embedded nothing (every chunk from the cache) is taken at its
    // word, even one that names nobody.
    let c = chunks(&["p", "q"]);
    let v = unit([0.0, 0.0, 1.0]);
    let attempt = Attempt { by: None, embedded: 0, cache_hits: 0 };
    store
        .user(alice)
        .with_attempt(attempt)
        .replace_document(&common::doc("c.txt", "c"), &new_chunks(&c, &v), MODEL, 3)
        .expect("stored");
    let row = &store.user(alice).processing_log(1).expect("log")[0];
    assert_eq!((row.chunks, row.embedded, row.cache_hits), (2, 0, 0));
}

#[test]
fn the_log_row_is_part_of_the_versions_transaction() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    let u = store.user(alice);
    let gone = u.accept_upload("gone.txt", ContentHash::of(b"g"), 1, None).expect("accepted");
    let ragmill_store::Accepted::Queued(gone) = gone else { panic!("queued") };
    // (A later row, so the deleted id is not the highest and not given again.)
    u.accept_upload("later.txt", ContentHash::of(b"l"), 1, None).expect("accepted");
    assert!(u.delete_document(gone).expect("deleted"));
    let (c, v) = (chunks(&["alpha"]), unit([1.0, 0.0, 0.0]));
    let cs = new_chunks(&c, &v);
    let good = doc("good.txt", "good");
    let bad = NewDocument { id: Some(gone), ..doc("gone.txt", "g") };
    // The first version is written (and logged) inside the transaction, then the second fails:
    // nothing of either stays, its log row included.
    let err = u.replace_documents(&[(good, &cs), (bad, &cs)], MODEL, 3).expect_err("gone");
    assert!(matches!(err, StoreError::DocumentGone(id) if id == gone), "{err}");
    assert_eq!(u.processing_log(10).expect("log"), vec![]);
    assert!(u.document_by_name("good.txt").expect("read").is_none());
    let series = store.processing_series(soon(), 1000, 120).expect("series");
    assert!(series.buckets.iter().all(|b| b.ready == 0), "{series:?}");
}

#[test]
fn failures_are_logged_once_each() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    let u = store.user(alice).with_attempt(Attempt::by("server"));
    let failed = NewDocument { timings: timings(&[("extracting", 0.25)]), ..doc("a.pdf", "x") };
    let id = u.record_failure(&failed, "extract_crashed", "boom").expect("recorded");
    let log = u.processing_log(10).expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, Outcome::Failed("extract_crashed".into()));
    assert_eq!((log[0].chunks, log[0].document, log[0].by.as_deref()), (0, id, Some("server")));
    assert_eq!(log[0].timings.get("extracting"), Some(&0.25));

    // Giving up after that attempt (its job parked) does not count the failure twice...
    assert!(u.mark_failed(id, "extract_crashed", "gave up").expect("marked"));
    assert_eq!(u.processing_log(10).expect("log").len(), 1);
    // ...but a failure no attempt recorded (a crash, a lost job) is logged.
    assert!(u.mark_failed(id, "processing_crashed", "panic").expect("marked"));
    let log = u.processing_log(10).expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].outcome, Outcome::Failed("processing_crashed".into()));
    // No such document: nothing to log.
    assert!(!u.mark_failed(DocumentId(999), "processing_crashed", "x").expect("none"));
    assert_eq!(u.processing_log(10).expect("log").len(), 2);

    let series = u.processing_series(soon(), 1000, 120).expect("series");
    let sum = series.buckets.iter().fold((0, 0), |(r, f), b| (r + b.ready, f + b.failed));
    assert_eq!(sum, (0, 2));
}

#[test]
fn every_read_is_scoped_by_user_and_the_service_reads_all() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    let bob = store.ensure_user("bob").expect("user");
    for i in 0..3 {
        store_doc(&store, alice, &format!("a{i}"), timings(&[("embedding", 1.0)]), "server", 1);
    }
    store_doc(&store, bob, "b", timings(&[("embedding", 9.0)]), "cli", 3);

    let totals = |s: ragmill_store::LogSeries| {
        s.buckets.iter().fold(ragmill_store::LogTotals::default(), |mut t, b| {
            t.add(b);
            t
        })
    };
    let mine = totals(store.user(alice).processing_series(soon(), 5000, 30).expect("series"));
    assert_eq!((mine.ready, mine.chunks, mine.embedded, mine.cache_hits), (3, 9, 3, 6));
    let theirs = store.user(bob).processing_series(soon(), 5000, 30).expect("series");
    assert_eq!(theirs.by, vec![("cli".to_owned(), 1)]);
    assert_eq!(totals(theirs).ready, 1);
    let all = store.processing_series(soon(), 5000, 30).expect("series");
    assert_eq!(all.by, vec![("server".to_owned(), 3), ("cli".to_owned(), 1)]);
    assert_eq!(totals(all).ready, 4);

    assert!(store.user(bob).processing_log(10).expect("log").iter().all(|r| r.user == bob));
    let embedding = |t: ragmill_store::StageTimes| {
        t.stages.into_iter().find(|s| s.stage == "embedding").map(|s| (s.p95_s, s.documents))
    };
    assert_eq!(embedding(store.user(alice).stage_times(0, 100).expect("t")), Some((1.0, 3)));
    assert_eq!(embedding(store.user(bob).stage_times(0, 100).expect("t")), Some((9.0, 1)));
    assert_eq!(embedding(store.stage_times(0, 100).expect("t")), Some((9.0, 4)));

    // A user's rows go with them.
    assert!(store.delete_user(bob).expect("deleted"));
    assert_eq!(totals(store.processing_series(soon(), 5000, 30).expect("series")).ready, 3);
}

#[test]
fn stage_percentiles_over_the_window_or_else_the_latest_documents() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    for i in 1..=20 {
        let t = timings(&[("extracting", 0.1), ("embedding", f64::from(i)), ("storing", 0.5)]);
        store_doc(&store, alice, &format!("d{i}"), t, "cli", 3);
    }
    // A failure's partial times are no stage time of a stored version.
    store.user(alice).record_failure(&doc("bad", "bad"), "no_text", "empty").expect("recorded");

    let t = store.user(alice).stage_times(now() - 60_000, 1000).expect("times");
    assert!(t.in_window);
    assert_eq!(t.documents, 20);
    let get = |t: &ragmill_store::StageTimes, name: &str| {
        t.stages.iter().find(|s| s.stage == name).map(|s| (s.p50_s, s.p95_s, s.documents))
    };
    assert_eq!(get(&t, "embedding"), Some((10.0, 19.0, 20)));
    assert_eq!(get(&t, "extracting"), Some((0.1, 0.1, 20)));
    let (p50, p95, _) = get(&t, "total").expect("total");
    assert!((p50 - 10.6).abs() < 1e-9 && (p95 - 19.6).abs() < 1e-9, "{p50} {p95}");
    assert_eq!(get(&t, "chunking"), None, "no document reached it");
    let (first, last) = t.span_ms.expect("span");
    assert!(first <= last && last <= now());

    // An empty window: the latest 5 stored instead (embedding 16..=20), and it says so.
    let t = store.user(alice).stage_times(now() + 60_000, 5).expect("times");
    assert!(!t.in_window);
    assert_eq!(t.documents, 5);
    assert_eq!(get(&t, "embedding"), Some((18.0, 20.0, 5)));

    // Nothing at all.
    let nobody = store.ensure_user("nobody").expect("user");
    let t = store.user(nobody).stage_times(0, 1000).expect("times");
    assert_eq!((t.documents, t.stages.len(), t.span_ms), (0, 0, None));
}

#[test]
fn series_put_each_row_in_its_bucket() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    store_doc(&store, alice, "a", timings(&[("embedding", 1.5)]), "cli", 3);
    let row = store.user(alice).processing_log(1).expect("log")[0].clone();
    let t = row.finished_at;
    // Buckets of 1 s ending at t + 2.5 s: the row is in the third from last, (t-0.5, t+0.5].
    let s = store.user(alice).processing_series(t + 2500, 1000, 10).expect("series");
    assert_eq!(s.buckets.len(), 10);
    let busy: Vec<usize> = (0..10).filter(|&i| s.buckets[i].ready > 0).collect();
    assert_eq!(busy, vec![7]);
    let total = row.timings["total"];
    assert!((s.buckets[7].seconds - total).abs() < 1e-9);
    // A row exactly at a bucket's end is in that bucket; one before the span is in none.
    let s = store.user(alice).processing_series(t, 1000, 3).expect("series");
    assert_eq!(s.buckets[2].ready, 1);
    let s = store.user(alice).processing_series(t - 1, 1000, 3).expect("series");
    assert!(s.buckets.iter().all(|b| b.ready == 0));
}

#[test]
fn the_log_is_pruned_by_age_and_by_rows_on_write() {
    let (_dir, store) = open();
    let alice = store.ensure_user("alice").expect("user");
    store.set_log_retention(Retention { max_rows: 3, ..Retention::default() });
    for i in 0..5 {
        store_doc(&store, alice, &format!("d{i}"), Timings::new(), "cli", 3);
    }
    let log = store.user(alice).processing_log(10).expect("log");
    assert_eq!(log.len(), 3, "only the newest rows stay");
    let newest = store.user(alice).document_by_name("d4").expect("read").expect("doc").id;
    assert_eq!(log[0].document, newest);

    store.set_log_retention(Retention { max_age: Duration::from_millis(50), max_rows: 1000 });
    std::thread::sleep(Duration::from_millis(120));
    store_doc(&store, alice, "late", Timings::new(), "cli", 3);
    let log = store.user(alice).processing_log(10).expect("log");
    assert_eq!(log.len(), 1, "older rows aged out: {log:?}");
}

#[test]
fn a_version_6_store_gains_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    drop(Store::open(dir.path()).expect("open"));
    {
        let conn = rusqlite::Connection::open(dir.path().join("ragmill.db")).expect("sqlite");
        conn.execute_batch(
            "DROP TABLE processing_log; ALTER TABLE conversation_messages DROP COLUMN model;
             PRAGMA user_version = 6;",
        )
        .expect("v6");
    }
    let store = Store::open(dir.path()).expect("migrated");
    let alice = store.ensure_user("alice").expect("user");
    store_doc(&store, alice, "a", Timings::new(), "cli", 3);
    assert_eq!(store.user(alice).processing_log(5).expect("log").len(), 1);
}
