//! Isolation as a property: three users do random sequences of uploads, re-uploads, deletes,
//! re-processes and searches (the retrieval behind RAG chat), each upload carrying that user's
//! canary words, while each user's event stream is open. Against a model of who owns what, no
//! answer ever carries another user's canary or document: not a search hit, not a listed
//! document, not an event; another user's document id answers 404 to every route. On both
//! vector stores: the embedded index and a real ChromaDB server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestApp, doc_id};
use futures::{FutureExt, StreamExt};
use proptest::prelude::*;
use ragmill_core::{Event, Received};
use serde_json::{Value, json};

const USERS: usize = 3;
/// The search modes: the keyword index is per user, as the vector one is.
const MODES: [&str; 3] = ["vector", "keyword", "hybrid"];

/// The canary word of user `u`: no other user's text contains it.
fn canary(u: usize) -> String {
    format!("zq{u}canary{u}xv")
}

#[derive(Debug, Clone)]
enum Op {
    /// User uploads document `slot` (a new version when it exists).
    Upload { user: usize, slot: usize, version: u8 },
    /// User deletes one of their documents, or tries another's.
    Delete { user: usize, target: usize, slot: usize },
    /// User re-processes one of their documents, or tries another's.
    Reprocess { user: usize, target: usize, slot: usize },
    /// User searches for some user's canary, in one of the modes.
    Search { user: usize, words_of: usize, mode: &'static str },
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    prop_oneof![
        3 => (u.clone(), 0..3usize, any::<u8>())
            .prop_map(|(user, slot, version)| Op::Upload { user, slot, version }),
        1 => (u.clone(), 0..USERS, 0..3usize)
            .prop_map(|(user, target, slot)| Op::Delete { user, target, slot }),
        1 => (u.clone(), 0..USERS, 0..3usize)
            .prop_map(|(user, target, slot)| Op::Reprocess { user, target, slot }),
        3 => (u, 0..USERS, prop::sample::select(MODES.to_vec()))
            .prop_map(|(user, words_of, mode)| Op::Search { user, words_of, mode }),
    ]
}

/// The text of user `u`'s document `slot`, version `v`.
fn text(u: usize, slot: usize, v: u8) -> Vec<u8> {
    format!(
        "# Note {slot}\n\nThis is {} note number {slot} (version {v}) about tides.\n",
        canary(u)
    )
    .into_bytes()
}

/// Checks that nothing in `answer` belongs to a user other than `me`.
fn only_mine(me: usize, answer: &Value, what: &str) {
    let text = answer.to_string();
    for other in (0..USERS).filter(|o| *o != me) {
        assert!(
            !text.contains(&canary(other)),
            "user {me} got user {other}'s canary in {what}: {text}"
        );
    }
}

/// Runs `ops` on the embedded vector index, or on the ChromaDB server at `chroma`.
async fn run(ops: Vec<Op>, chroma: Option<String>) {
    let app = match chroma {
        None => TestApp::new().await,
        Some(url) => TestApp::with_chroma(&url).await.0,
    };
    let keys: Vec<String> = (0..USERS).map(|u| app.user(&format!("user{u}"))).collect();
    let ids: Vec<_> = (0..USERS)
        .map(|u| app.state.store.find_user(&format!("user{u}")).expect("store").expect("user"))
        .collect();
    let mut streams = Vec::new();
    for id in &ids {
        streams.push(app.state.events.subscribe(*id).await.expect("subscribe"));
    }
    let _workers = app.workers();
    // The model: each user's documents by slot.
    let mut owned: Vec<BTreeMap<usize, i64>> = vec![BTreeMap::new(); USERS];
    // Every document each user ever had (events may name one since deleted).
    let mut ever: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); USERS];
    for op in ops {
        match op {
            Op::Upload { user, slot, version } => {
                let name = format!("note-{slot}.md");
                let (status, up) =
                    app.upload(&keys[user], &[(&name, &text(user, slot, version))]).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{up}");
                owned[user].insert(slot, doc_id(&up, 0));
                ever[user].insert(doc_id(&up, 0));
            }
            Op::Delete { user, target, slot } | Op::Reprocess { user, target, slot } => {
                let Some(&id) = owned[target].get(&slot) else { continue };
                let delete = matches!(op, Op::Delete { .. });
                let (method, path) = if delete {
                    ("DELETE", format!("/v1/documents/{id}"))
                } else {
                    ("POST", format!("/v1/documents/{id}/reprocess"))
                };
                let (status, body) = app.send(method, &keys[user], &path, json!({})).await;
                if user == target {
                    assert!(status.is_success(), "{method} {path}: {status} {body}");
                    if delete {
                        owned[user].remove(&slot);
                    }
                } else {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "user {user} reached user {target}'s {id}"
                    );
                    let (status, _) = app.get(&keys[user], &format!("/v1/documents/{id}")).await;
                    assert_eq!(status, StatusCode::NOT_FOUND);
                }
            }
            Op::Search { user, words_of, mode } => {
                let query = json!({
                    "query": format!("{} tides note", canary(words_of)),
                    "top_k": 20,
                    "mode": mode,
                });
                let (status, found) = app.send("POST", &keys[user], "/v1/search", query).await;
                assert_eq!(status, StatusCode::OK, "{found}");
                only_mine(user, &found, "a search");
            }
        }
    }
    // Let everything finish, then check every user's whole view and stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (u, key) in keys.iter().enumerate() {
        loop {
            let (_, list) = app.get(key, "/v1/documents").await;
            only_mine(u, &list, "the document list");
            let listed: BTreeSet<i64> = list["documents"]
                .as_array()
                .map(|d| d.iter().filter_map(|d| d["id"].as_i64()).collect())
                .unwrap_or_default();
            assert_eq!(listed, owned[u].values().copied().collect(), "user {u}'s list");
            let busy = list["documents"].as_array().is_some_and(|d| {
                d.iter().any(|d| d["state"] == "queued" || d["state"] == "processing")
            });
            if !busy {
                break;
            }
            assert!(Instant::now() < deadline, "never settled: {list}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (words_of, mode) in (0..USERS).flat_map(|w| MODES.map(|m| (w, m))) {
            let query = json!({"query": canary(words_of), "top_k": 50, "mode": mode});
            // A document's row reads ready at its commit; its vectors join the live index a
            // moment later (its Ready event is sent after that): allow that moment.
            let found = loop {
                let (_, found) = app.send("POST", key, "/v1/search", query.clone()).await;
                only_mine(u, &found, "a final search");
                let hits = found["results"].as_array().map_or(0, Vec::len);
                if hits > 0 || words_of != u || owned[u].is_empty() {
                    break found;
                }
                assert!(Instant::now() < deadline, "user {u} finds their own documents ({mode})");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            if mode == "keyword" {
                // The canary is the only word: a keyword search finds exactly its owner's notes.
                let want = if words_of == u { owned[u].len() } else { 0 };
                let docs: BTreeSet<i64> = found["results"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|h| h["document_id"].as_i64()).collect())
                    .unwrap_or_default();
                assert_eq!(docs.len(), want, "user {u}, keyword {words_of}'s canary: {found}");
            }
        }
    }
    for (u, stream) in streams.iter_mut().enumerate() {
        while let Some(Some(Received::Event(e))) = stream.next().now_or_never() {
            let id = match &e {
                Event::Progress { id, .. }
                | Event::Ready { id, .. }
                | Event::Failed { id, .. }
                | Event::Paused { id } => id.0,
                Event::RagAvailable => continue,
            };
            assert!(ever[u].contains(&id), "user {u} heard {e:?}, not theirs");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_carries_another_users_canary(ops in proptest::collection::vec(op(), 1..16)) {
        runtime().block_on(run(ops, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The same on ChromaDB (a real server shared by the cases, a database for each).
    #[test]
    fn no_answer_carries_another_users_canary_on_chroma(
        ops in proptest::collection::vec(op(), 1..16)
    ) {
        let url = ragmill_chroma::testing::ChromaProcess::shared().url();
        runtime().block_on(run(ops, Some(url)));
    }
}
