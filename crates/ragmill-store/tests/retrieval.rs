//! The live vector index, the approximate index and the keyword index, on a real SQLite file.

use std::collections::HashSet;

use ragmill_core::normalize;
use ragmill_store::{DocumentId, IndexSettings, Store};

mod common;
use common::*;

/// A deterministic unit vector of `d` dimensions.
fn random_unit(seed: u64, d: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..d)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        })
        .collect();
    normalize(&mut v);
    v
}

#[test]
fn writes_update_a_loaded_index_in_place() {
    let (_dir, store) = open();
    let a = put(&store, "u", "a.txt", &["alpha"], &[unit([1.0, 0.0, 0.0])]);
    let user = store.find_user("u").expect("find").expect("user");
    // Load the index with a first search.
    assert_eq!(store.user(user).nearest(&unit([1.0, 0.0, 0.0]), 5, None).expect("search").len(), 1);
    assert!(store.user(user).index_stats().expect("stats").loaded);

    let b = put(
        &store,
        "u",
        "b.txt",
        &["beta", "gamma"],
        &[unit([0.0, 1.0, 0.0]), unit([0.0, 0.0, 1.0])],
    );
    let near = store.user(user).nearest(&unit([0.0, 1.0, 0.0]), 5, None).expect("search");
    assert_eq!((near[0].document, near[0].chunk), (b, 0), "a new document is searchable at once");
    assert_eq!(store.user(user).index_stats().expect("stats").rows, 3);

    // Replace a.txt with one chunk pointing elsewhere: its old vector is gone.
    put(&store, "u", "a.txt", &["delta"], &[unit([0.0, 0.0, -1.0])]);
    let near = store.user(user).nearest(&unit([1.0, 0.0, 0.0]), 5, None).expect("search");
    assert!(near.iter().all(|n| n.score < 0.5), "the replaced vector is gone: {near:?}");
    assert_eq!(store.user(user).index_stats().expect("stats").rows, 3);

    assert!(store.user(user).delete_document(b).expect("delete"));
    let near = store.user(user).nearest(&unit([0.0, 1.0, 0.0]), 5, None).expect("search");
    assert_eq!(near.iter().map(|n| n.document).collect::<Vec<_>>(), vec![a]);
    assert_eq!(store.user(user).index_stats().expect("stats").rows, 1);
}

#[test]
fn a_reopened_store_loads_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        put(
            &store,
            "u",
            "a.txt",
            &["alpha", "beta"],
            &[unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])],
        );
    }
    let store = Store::open(dir.path()).expect("reopen");
    let user = store.find_user("u").expect("find").expect("user");
    assert!(!store.user(user).index_stats().expect("stats").loaded, "loaded lazily");
    let near = store.user(user).nearest(&unit([0.0, 1.0, 0.0]), 1, None).expect("search");
    assert_eq!(near[0].chunk, 1);
}

#[test]
fn large_collections_search_an_approximate_index_that_agrees_with_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = IndexSettings { ann_threshold: 1_000, ..IndexSettings::default() };
    let store = Store::open_with(dir.path(), settings).expect("open");
    let d = 32;
    for doc in 0..30u64 {
        let texts: Vec<String> = (0..50).map(|i| format!("chunk {doc} {i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors: Vec<Vec<f32>> = (0..50).map(|i| random_unit(doc * 1000 + i, d)).collect();
        put(&store, "big", &format!("d{doc}.txt"), &texts, &vectors);
    }
    let user = store.find_user("big").expect("find").expect("user");
    store.user(user).prepare_index().expect("built");
    let stats = store.user(user).index_stats().expect("stats");
    assert_eq!((stats.rows, stats.ann_rows), (1_500, Some(1_500)));

    // Exact reference: an index that never goes approximate, over the same file.
    let exact =
        Store::open_with(dir.path(), IndexSettings { ann_threshold: usize::MAX, ..settings })
            .expect("open");
    let (mut found, mut wanted) = (0, 0);
    for q in 0..50 {
        let query = random_unit(77_000 + q, d);
        let key = |n: &ragmill_store::Nearest| (n.document, n.chunk);
        let truth: HashSet<_> =
            exact.user(user).nearest(&query, 10, None).expect("exact").iter().map(key).collect();
        let got = store.user(user).nearest(&query, 10, None).expect("ann");
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score), "ordered by exact score");
        found += got.iter().filter(|n| truth.contains(&key(n))).count();
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");

    // A write after the build goes into the approximate index too, and replaces in place.
    let target = random_unit(999_999, d);
    let id = put(&store, "big", "new.txt", &["needle"], std::slice::from_ref(&target));
    let got = store.user(user).nearest(&target, 1, None).expect("search");
    assert_eq!((got[0].document, got[0].chunk), (id, 0));
    put(&store, "big", "new.txt", &["moved"], &[random_unit(5, d)]);
    let got = store.user(user).nearest(&target, 3, None).expect("search");
    assert!(got.iter().all(|n| n.score < 0.99), "the old vector is not found: {got:?}");
    assert_eq!(store.user(user).index_stats().expect("stats").rows, 1_501);
}

#[test]
fn keyword_search_ranks_by_bm25_within_one_user() {
    let (_dir, store) = open();
    let v = || unit([1.0, 0.0, 0.0]);
    let a = put(
        &store,
        "alice",
        "codes.md",
        &[
            "The XR-7 launch code is swordfish.",
            "Nothing to see here.",
            "Launch windows open at dawn.",
        ],
        &[v(), v(), v()],
    );
    put(&store, "bob", "bob.md", &["swordfish swordfish swordfish launch code"], &[v()]);
    let alice = store.find_user("alice").expect("find").expect("user");
    let bob = store.find_user("bob").expect("find").expect("user");

    let hits =
        store.user(alice).keyword_search("what is the launch code?", 10, None).expect("search");
    assert_eq!(
        hits.iter().map(|h| (h.document, h.chunk)).collect::<Vec<_>>(),
        vec![(a, 0), (a, 2)]
    );
    assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);
    assert!(store.user(alice).keyword_search("the of and", 10, None).expect("search").is_empty());
    assert!(
        store
            .user(alice)
            .keyword_search("\"NEAR(* OR", 10, None)
            .expect("syntax is words")
            .is_empty()
    );

    let bobs = store.user(bob).keyword_search("xr 7 dawn windows", 10, None).expect("search");
    assert!(bobs.is_empty(), "bob never matches alice's words: {bobs:?}");
    let only: [DocumentId; 1] = [a];
    assert!(
        store.user(bob).keyword_search("swordfish", 10, Some(&only)).expect("search").is_empty()
    );

    // Replacing and deleting keep the keyword index in step with the chunks.
    put(&store, "alice", "codes.md", &["Rotated: the code is now marlin."], &[v()]);
    assert!(store.user(alice).keyword_search("swordfish", 10, None).expect("search").is_empty());
    assert_eq!(store.user(alice).keyword_search("marlin", 10, None).expect("search").len(), 1);
    store.user(alice).delete_document(a).expect("delete");
    assert!(store.user(alice).keyword_search("marlin", 10, None).expect("search").is_empty());
    store.delete_user(bob).expect("delete user");
    let bob = store.ensure_user("bob").expect("user again");
    assert!(store.user(bob).keyword_search("swordfish", 10, None).expect("search").is_empty());
}

#[test]
fn a_store_from_before_keyword_search_gets_its_index_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        put(&store, "u", "a.md", &["tides follow the moon"], &[unit([1.0, 0.0, 0.0])]);
    }
    {
        // Make it look like a version 3 store: no keyword tables.
        let conn = rusqlite::Connection::open(dir.path().join("ragmill.db")).expect("sqlite");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'fts_user_%' AND name NOT LIKE '%\\_%\\_%\\_%' ESCAPE '\\'")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(tables.len(), 1, "{tables:?}");
        conn.execute_batch(&format!(
            "DROP TABLE {}; ALTER TABLE documents DROP COLUMN vector_gen;
             ALTER TABLE documents DROP COLUMN staged_gen; ALTER TABLE documents DROP COLUMN staged_hash;
             DROP TABLE vector_garbage; DROP TABLE meta;
             DROP TABLE conversation_messages; DROP TABLE conversations; DROP TABLE processing_log;
             PRAGMA user_version = 3;",
            tables[0]
        ))
        .expect("downgrade");
    }
    let store = Store::open(dir.path()).expect("migrate");
    let user = store.find_user("u").expect("find").expect("user");
    assert_eq!(store.user(user).keyword_search("moon", 5, None).expect("search").len(), 1);
}

#[test]
fn words_in_most_chunks_do_not_make_keyword_search_score_them_all() {
    let (_dir, store) = open();
    let v = unit([1.0, 0.0, 0.0]);
    for d in 0..12 {
        let texts: Vec<String> = (0..100)
            .map(|i| {
                if d == 5 && i == 7 {
                    "common zebra".to_owned()
                } else {
                    format!("common filler{i}")
                }
            })
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        put(&store, "u", &format!("d{d}.txt"), &texts, &vec![v.clone(); 100]);
    }
    let user = store.find_user("u").expect("find").expect("user");
    let hits = store.user(user).keyword_search("common zebra", 50, None).expect("search");
    assert_eq!(hits.len(), 1, "only the rare word is searched: {hits:?}");
    assert_eq!(hits[0].chunk, 7);
    // A query of common words only still answers, by its rarest.
    assert_eq!(store.user(user).keyword_search("common", 50, None).expect("search").len(), 50);
}

#[test]
fn a_bulk_write_stores_every_document_or_none() {
    let (_dir, store) = open();
    let user = store.ensure_user("u").expect("user");
    let chunks: Vec<ragmill_core::Chunk> = (0..2).map(|i| chunk(i, "bulk words")).collect();
    let good = unit([1.0, 0.0, 0.0]);
    let short = vec![1.0, 0.0];
    let new = |v: &'static [f32]| -> Vec<ragmill_store::NewChunk<'_>> {
        chunks
            .iter()
            .map(|c| ragmill_store::NewChunk {
                chunk: c,
                hash: ragmill_core::ContentHash::of(c.text.as_bytes()),
                vector: v,
            })
            .collect()
    };
    let good: &'static [f32] = Box::leak(good.into_boxed_slice());
    let short: &'static [f32] = Box::leak(short.into_boxed_slice());
    let (a, b) = (new(good), new(short));
    let bad = [(doc("a.txt", "a"), a.as_slice()), (doc("b.txt", "b"), b.as_slice())];
    assert!(store.user(user).replace_documents(&bad, MODEL, 3).is_err());
    assert!(store.user(user).documents().expect("list").is_empty(), "none stored");
    let ok = [(doc("a.txt", "a"), a.as_slice()), (doc("c.txt", "c"), a.as_slice())];
    let ids = store.user(user).replace_documents(&ok, MODEL, 3).expect("stored");
    assert_eq!(ids.len(), 2);
    assert_eq!(store.user(user).keyword_search("bulk", 10, None).expect("search").len(), 4);
    assert_eq!(store.user(user).nearest(good, 10, None).expect("search").len(), 4);
}
