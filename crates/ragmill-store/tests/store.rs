//! The embedded store through its public API, on a real SQLite file.

use ragmill_core::{ContentHash, DocumentKind};
use ragmill_store::{DocumentState, NewChunk, NewDocument, Store, StoreError};

mod common;
use common::*;

#[test]
fn round_trip_and_ranking() {
    let (_dir, store) = open();
    let id = put(
        &store,
        "alice",
        "a.txt",
        &["north", "east", "up"],
        &[unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0]), unit([0.0, 0.0, 1.0])],
    );
    let alice = store.find_user("alice").expect("query").expect("exists");
    let hits = store.user(alice).search(&unit([0.9, 0.1, 0.0]), 2, None).expect("search");
    assert_eq!(hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["north", "east"]);
    assert_eq!(hits[0].document, "a.txt");
    assert_eq!(hits[0].document_id, id);
    assert_eq!(hits[0].page, Some(1));
    assert_eq!(hits[0].heading_path, vec!["Top", "S0"]);
    assert!(hits[0].score > hits[1].score);

    let rec = store.user(alice).document(id).expect("get").expect("present");
    assert_eq!(
        (rec.state, rec.chunks, rec.kind),
        (DocumentState::Ready, 3, Some(DocumentKind::Text))
    );
    assert_eq!(rec.timings.get("embedding"), Some(&0.5));
    assert_eq!(rec.model.as_deref(), Some(MODEL));
}

#[test]
fn survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        put(&store, "alice", "a.txt", &["north"], &[unit([1.0, 0.0, 0.0])]);
    }
    let store = Store::open(dir.path()).expect("reopen");
    let alice = store.find_user("alice").expect("q").expect("user persisted");
    assert_eq!(store.user(alice).search(&unit([1.0, 0.0, 0.0]), 5, None).expect("search").len(), 1);
}

#[test]
fn users_are_isolated() {
    let (_dir, store) = open();
    let a_doc = put(&store, "alice", "secret.txt", &["alice's secret"], &[unit([1.0, 0.0, 0.0])]);
    let b_doc = put(&store, "bob", "notes.txt", &["bob's notes"], &[unit([1.0, 0.0, 0.0])]);
    let (alice, bob) =
        (store.ensure_user("alice").expect("a"), store.ensure_user("bob").expect("b"));

    let bob_hits = store.user(bob).search(&unit([1.0, 0.0, 0.0]), 10, None).expect("search");
    assert_eq!(bob_hits.len(), 1);
    assert_eq!(bob_hits[0].text, "bob's notes");
    // Filtering on another user's document id yields nothing, not their chunks.
    assert!(
        store
            .user(bob)
            .search(&unit([1.0, 0.0, 0.0]), 10, Some(&[a_doc]))
            .expect("search")
            .is_empty()
    );
    assert!(store.user(bob).document(a_doc).expect("get").is_none());
    // A vector index's answer naming another user's chunk reads back as nothing.
    let foreign = ragmill_store::Nearest {
        document: a_doc,
        chunk: 0,
        score: 1.0,
        scores: Default::default(),
    };
    assert!(store.user(bob).chunks_at(&[foreign]).expect("read").is_empty());
    assert_eq!(store.user(alice).chunks_at(&[foreign]).expect("read")[0].text, "alice's secret");
    assert!(store.user(bob).document_by_name("secret.txt").expect("get").is_none());
    assert!(
        !store.user(bob).delete_document(a_doc).expect("delete"),
        "cannot delete another's document"
    );
    assert_eq!(store.user(alice).documents().expect("list").len(), 1, "alice's document survived");
    assert_eq!(store.user(bob).documents().expect("list")[0].id, b_doc);
}

#[test]
fn a_new_version_replaces_the_old_atomically() {
    let (_dir, store) = open();
    let v1 = put(
        &store,
        "alice",
        "a.txt",
        &["old one", "old two"],
        &[unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])],
    );
    let v2 = put(&store, "alice", "a.txt", &["new"], &[unit([0.0, 0.0, 1.0])]);
    assert_eq!(v1, v2, "same name, same document");
    let alice = store.ensure_user("alice").expect("a");
    let hits = store.user(alice).search(&unit([1.0, 1.0, 1.0]), 10, None).expect("search");
    assert_eq!(hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["new"]);
    assert_eq!(store.user(alice).documents().expect("list").len(), 1);
}

#[test]
fn a_failed_new_version_keeps_the_old_one_searchable() {
    let (_dir, store) = open();
    put(&store, "alice", "a.txt", &["kept"], &[unit([1.0, 0.0, 0.0])]);
    let alice = store.ensure_user("alice").expect("a");
    store
        .user(alice)
        .record_failure(&doc("a.txt", "broken"), "corrupt_file", "bad bytes")
        .expect("recorded");
    let rec = store.user(alice).document_by_name("a.txt").expect("get").expect("present");
    assert_eq!(rec.state, DocumentState::Ready);
    assert_eq!(rec.error, Some(("corrupt_file".into(), "bad bytes".into())));
    assert_eq!(
        store.user(alice).search(&unit([1.0, 0.0, 0.0]), 5, None).expect("s")[0].text,
        "kept"
    );

    store.user(alice).record_failure(&doc("b.txt", "x"), "empty_file", "empty").expect("recorded");
    let b = store.user(alice).document_by_name("b.txt").expect("get").expect("present");
    assert_eq!((b.state, b.chunks), (DocumentState::Failed, 0));
}

#[test]
fn a_collection_refuses_another_model() {
    let (_dir, store) = open();
    put(&store, "alice", "a.txt", &["x"], &[unit([1.0, 0.0, 0.0])]);
    let alice = store.ensure_user("alice").expect("a");
    let c = chunk(0, "y");
    let v = vec![1.0; 4];
    let err = store
        .user(alice)
        .replace_document(
            &doc("b.txt", "y"),
            &[NewChunk { chunk: &c, hash: ContentHash::of(b"y"), vector: &v }],
            "other@1",
            4,
        )
        .expect_err("mismatch");
    assert!(matches!(err, StoreError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("re-index"));
    assert!(store.user(alice).check_model("other@1", 4).is_err());
    assert!(store.user(alice).check_model(MODEL, 3).is_ok());
}

#[test]
fn the_cache_is_keyed_by_user_model_and_text() {
    let (_dir, store) = open();
    let (alice, bob) =
        (store.ensure_user("alice").expect("user"), store.ensure_user("bob").expect("user"));
    let (h1, h2) = (ContentHash::of(b"one"), ContentHash::of(b"two"));
    store.user(alice).cache_put("m1", &[(h1, &[1.0, 2.0])]).expect("put");
    let got = store.user(alice).cache_get("m1", &[h1, h2]).expect("get");
    assert_eq!(got.len(), 1);
    assert_eq!(got[&h1], vec![1.0, 2.0]);
    let other_model = store.user(alice).cache_get("m2", &[h1]).expect("get");
    assert!(other_model.is_empty(), "another model never sees it");
    let other_user = store.user(bob).cache_get("m1", &[h1]).expect("get");
    assert!(other_user.is_empty(), "another user never sees it, nor learns it is there");
    assert_eq!(store.cache_len("m1").expect("len"), 1);

    // Bob's own entry for the same text is his, and goes with him.
    store.user(bob).cache_put("m1", &[(h1, &[3.0, 4.0])]).expect("put");
    assert_eq!(store.user(bob).cache_get("m1", &[h1]).expect("get")[&h1], vec![3.0, 4.0]);
    assert_eq!(store.user(alice).cache_get("m1", &[h1]).expect("get")[&h1], vec![1.0, 2.0]);
    assert!(store.delete_user(bob).expect("deleted"));
    assert_eq!(store.cache_len("m1").expect("len"), 1);
    // A user deleted while a worker embedded for them: nothing is cached, and no error.
    store.user(bob).cache_put("m1", &[(h2, &[5.0, 6.0])]).expect("nothing to put");
    assert_eq!(store.cache_len("m1").expect("len"), 1);
}

#[test]
fn a_store_from_before_per_user_caches_keeps_each_users_own_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (held, stray) = (ContentHash::of(b"x"), ContentHash::of(b"nobody holds this"));
    {
        let store = Store::open(dir.path()).expect("open");
        put(&store, "alice", "a.txt", &["x"], &[unit([1.0, 0.0, 0.0])]);
        store.ensure_user("bob").expect("user");
    }
    {
        // Make it look like a version 8 store: one cache shared by every user.
        let conn = rusqlite::Connection::open(dir.path().join("ragmill.db")).expect("sqlite");
        conn.execute_batch(
            "DROP TABLE embedding_cache;
             CREATE TABLE embedding_cache (model TEXT NOT NULL, hash BLOB NOT NULL,
                 vector BLOB NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID;
             PRAGMA user_version = 8;",
        )
        .expect("reshape");
        let blob = |v: [f32; 3]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for h in [held, stray] {
            conn.execute(
                "INSERT INTO embedding_cache (model, hash, vector) VALUES ('m', ?1, ?2)",
                rusqlite::params![h.as_bytes().as_slice(), blob([1.0, 0.0, 0.0])],
            )
            .expect("insert");
        }
    }
    let store = Store::open(dir.path()).expect("migrates");
    let alice = store.find_user("alice").expect("read").expect("alice");
    let bob = store.find_user("bob").expect("read").expect("bob");
    let got = store.user(alice).cache_get("m", &[held, stray]).expect("get");
    assert_eq!(got.keys().collect::<Vec<_>>(), [&held], "alice keeps what her chunks hold");
    assert!(store.user(bob).cache_get("m", &[held, stray]).expect("get").is_empty());
    assert_eq!(store.cache_len("m").expect("len"), 1, "what nobody holds is dropped");
}

#[test]
fn bad_user_names_are_refused() {
    let (_dir, store) = open();
    assert!(matches!(store.ensure_user("  "), Err(StoreError::InvalidUserName(_))));
    assert!(matches!(store.ensure_user("a\u{0}b"), Err(StoreError::InvalidUserName(_))));
    assert_eq!(store.ensure_user("bob").expect("ok"), store.ensure_user(" bob ").expect("ok"));
}

#[test]
fn an_upload_queues_a_new_version_while_the_old_one_stays_searchable() {
    let (_dir, store) = open();
    let uid = store.ensure_user("alice").expect("user");
    let alice = store.user(uid);
    assert_eq!(
        alice.rag_status().expect("status"),
        ragmill_store::RagStatus { available: false, documents_ready: 0, documents_processing: 0 }
    );

    let first = alice
        .accept_upload("a.txt", ContentHash::of(b"v1"), 2, Some(DocumentKind::Text))
        .expect("accept");
    let ragmill_store::Accepted::Queued(id) = first else { panic!("{first:?}") };
    assert_eq!(alice.document(id).expect("get").expect("row").state, DocumentState::Queued);
    assert_eq!(alice.rag_status().expect("status").documents_processing, 1);
    assert!(alice.set_state(id, DocumentState::Processing).expect("set"));

    put(&store, "alice", "a.txt", &["version one"], &[unit([1.0, 0.0, 0.0])]);
    let status = alice.rag_status().expect("status");
    assert!(
        status.available && status.documents_ready == 1 && status.documents_processing == 0,
        "{status:?}"
    );

    // The same bytes again: unchanged. New bytes: queued, old chunks still searchable.
    let same =
        alice.accept_upload("a.txt", ContentHash::of(b"version one"), 11, None).expect("accept");
    assert_eq!(same, ragmill_store::Accepted::Unchanged(id, ragmill_store::DocumentState::Ready));
    let next = alice.accept_upload("a.txt", ContentHash::of(b"v2"), 2, None).expect("accept");
    assert_eq!(next, ragmill_store::Accepted::Queued(id));
    assert_eq!(
        alice.search(&unit([1.0, 0.0, 0.0]), 1, None).expect("search")[0].text,
        "version one"
    );

    // The new version fails: the old one is still there, ready, with the error attached.
    alice.record_failure(&doc("a.txt", "v2"), "corrupt_file", "bad").expect("record");
    let rec = alice.document(id).expect("get").expect("row");
    assert_eq!((rec.state, rec.chunks), (DocumentState::Ready, 1));
    assert!(rec.error.is_some());

    // Another user cannot touch it.
    let bob = store.ensure_user("bob").expect("bob");
    assert!(!store.user(bob).set_state(id, DocumentState::Queued).expect("set"));
}

/// Two connections writing at once (the server's store and queue share one file): read-then-
/// write transactions must take the write lock up front, or SQLite answers "database is
/// locked" at once instead of waiting.
#[test]
fn concurrent_writers_on_one_file_wait_instead_of_failing() {
    let dir = tempfile::tempdir().expect("tmp");
    let stores: Vec<std::sync::Arc<Store>> =
        (0..2).map(|_| std::sync::Arc::new(Store::open(dir.path()).expect("open"))).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&stores[t % 2]);
            std::thread::spawn(move || {
                let user = store.ensure_user(&format!("u{t}")).expect("user");
                for i in 0..50 {
                    let name = format!("doc{i}");
                    store
                        .user(user)
                        .accept_upload(&name, ContentHash::of(name.as_bytes()), 1, None)
                        .expect("accept");
                    let c = chunk(0, "x");
                    let v = unit([1.0, 0.0, 0.0]);
                    let new = [NewChunk { chunk: &c, hash: ContentHash::of(b"x"), vector: &v }];
                    store
                        .user(user)
                        .replace_document(&doc(&name, "x"), &new, MODEL, 3)
                        .expect("replace");
                    store
                        .user(user)
                        .cache_put(MODEL, &[(ContentHash::of(format!("{t}-{i}").as_bytes()), &v)])
                        .expect("cache");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no writer failed");
    }
    let total: usize = (0..4)
        .map(|t| {
            let u = stores[0].find_user(&format!("u{t}")).expect("q").expect("user");
            stores[0].user(u).documents().expect("list").len()
        })
        .sum();
    assert_eq!(total, 200);
}

#[test]
fn a_version_for_a_deleted_document_is_refused_not_resurrected() {
    let (_dir, store) = open();
    let uid = store.ensure_user("alice").expect("user");
    let alice = store.user(uid);
    let ragmill_store::Accepted::Queued(id) =
        alice.accept_upload("a.txt", ContentHash::of(b"v1"), 2, None).expect("accept")
    else {
        panic!("queued")
    };
    assert!(alice.delete_document(id).expect("delete"));
    let c = chunk(0, "x");
    let v = unit([1.0, 0.0, 0.0]);
    let version = NewDocument { id: Some(id), ..doc("a.txt", "v1") };
    let err = alice
        .replace_document(
            &version,
            &[NewChunk { chunk: &c, hash: ContentHash::of(b"x"), vector: &v }],
            MODEL,
            3,
        )
        .expect_err("gone");
    assert!(matches!(err, StoreError::DocumentGone(gone) if gone == id), "{err}");
    let err = alice.record_failure(&version, "corrupt_file", "bad").expect_err("gone");
    assert!(matches!(err, StoreError::DocumentGone(_)), "{err}");
    assert!(alice.documents().expect("list").is_empty(), "not brought back");
    assert!(alice.search(&v, 5, None).expect("search").is_empty());
}

#[test]
fn totals_count_one_users_documents_or_everyones() {
    let (_dir, store) = open();
    put(&store, "alice", "a.txt", &["one", "two"], &[unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])]);
    put(&store, "bob", "b.txt", &["three"], &[unit([0.0, 0.0, 1.0])]);
    let alice = store.ensure_user("alice").expect("user");
    alice_queues(&store, alice);
    let mine = store.user(alice).totals().expect("totals");
    assert_eq!(
        mine,
        ragmill_store::DocumentTotals {
            queued: 1,
            processing: 0,
            ready: 1,
            failed: 0,
            paused: 0,
            chunks: 2
        }
    );
    let bob = store.ensure_user("bob").expect("user");
    assert_eq!(store.user(bob).totals().expect("totals").chunks, 1, "bob sees only his own");
    let all = store.totals().expect("totals");
    assert_eq!((all.queued, all.ready, all.chunks), (1, 2, 3));
}

fn alice_queues(store: &Store, alice: ragmill_store::UserId) {
    store
        .user(alice)
        .accept_upload("new.txt", ContentHash::of(b"new"), 3, Some(DocumentKind::Text))
        .expect("accept");
}

#[test]
fn a_paused_version_waits_while_the_old_one_stays_searchable_and_resumes_queued() {
    let (_dir, store) = open();
    let uid = store.ensure_user("alice").expect("user");
    let alice = store.user(uid);
    put(&store, "alice", "a.txt", &["version one"], &[unit([1.0, 0.0, 0.0])]);
    let id = alice.document_by_name("a.txt").expect("get").expect("row").id;
    assert!(!alice.pause_document(id).expect("pause"), "a ready document has nothing to pause");

    let next = alice.accept_upload("a.txt", ContentHash::of(b"v2"), 2, None).expect("accept");
    assert_eq!(next, ragmill_store::Accepted::Queued(id));
    let bob = store.ensure_user("bob").expect("bob");
    assert!(!store.user(bob).pause_document(id).expect("pause"), "not bob's");
    assert!(alice.pause_document(id).expect("pause"));
    assert!(!alice.pause_document(id).expect("pause"), "already paused");
    let rec = alice.document(id).expect("get").expect("row");
    assert_eq!((rec.state, rec.error.is_none()), (DocumentState::Paused, true));
    assert_eq!(alice.totals().expect("totals").paused, 1);
    assert_eq!(
        alice.search(&unit([1.0, 0.0, 0.0]), 1, None).expect("search")[0].text,
        "version one",
        "the older version stays searchable while the new one is paused"
    );
    assert!(
        store.in_flight().expect("in flight").is_empty(),
        "a paused document is not waiting for a job"
    );
    assert!(!alice.is_processing(id).expect("processing"), "a worker on it lets go");

    assert!(!store.user(bob).resume_document(id).expect("resume"), "not bob's");
    assert!(alice.resume_document(id).expect("resume"));
    assert!(!alice.resume_document(id).expect("resume"), "no longer paused");
    assert_eq!(alice.document(id).expect("get").expect("row").state, DocumentState::Queued);
    assert_eq!(store.in_flight().expect("in flight").len(), 1);

    // A worker's version for a paused document is refused (not made ready behind the user's
    // back); resumed, it is stored.
    assert!(alice.pause_document(id).expect("pause"));
    let c = chunk(0, "version two");
    let v = unit([0.0, 1.0, 0.0]);
    let version = NewDocument { id: Some(id), ..doc("a.txt", "v2") };
    let write = |version: &NewDocument<'_>| {
        alice.replace_document(
            version,
            &[NewChunk { chunk: &c, hash: ContentHash::of(b"version two"), vector: &v }],
            MODEL,
            3,
        )
    };
    assert!(matches!(write(&version), Err(StoreError::DocumentGone(gone)) if gone == id));
    assert_eq!(alice.document(id).expect("get").expect("row").state, DocumentState::Paused);
    assert!(alice.resume_document(id).expect("resume"));
    assert_eq!(write(&version).expect("stored"), id);
    assert!(!alice.is_processing(id).expect("processing"));
    assert!(matches!(write(&version), Err(StoreError::DocumentGone(_))), "ready: nothing waits");
    let next = alice.accept_upload("a.txt", ContentHash::of(b"v3"), 2, None).expect("accept");
    assert_eq!(next, ragmill_store::Accepted::Queued(id));

    // A paused version can be cancelled: the older one stays, carrying why.
    assert!(alice.pause_document(id).expect("pause"));
    assert!(alice.cancel_document(id).expect("cancel"));
    let rec = alice.document(id).expect("get").expect("row");
    assert_eq!(rec.state, DocumentState::Ready);
    assert_eq!(rec.error.map(|(code, _)| code).as_deref(), Some("cancelled"));
}

#[test]
fn a_database_from_a_newer_ragmill_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let path = dir.path().join("ragmill.db");
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let known: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    conn.pragma_update(None, "user_version", known + 1).expect("set");
    drop(conn);
    let Err(err) = Store::open(dir.path()) else { panic!("a newer schema must be refused") };
    assert!(
        matches!(err, StoreError::NewerSchema { found, known: k } if found == known + 1 && k == known)
    );
    assert!(err.to_string().contains("newer ragmill"), "{err}");
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let after: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    assert_eq!(after, known + 1, "left as it was");
}
