//! The vector store's contract, the same cases on both backends: the embedded index (the
//! store's SQLite file) and a real ChromaDB server. Documents go through the real pipeline
//! (the real model, a real SQLite file); search answers the same shape from either.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{BIKES, BREAD, TIDES, pipeline_over};
use ragmill_chroma::testing::ChromaProcess;
use ragmill_chroma::{ChromaConfig, ChromaIndex};
use ragmill_core::{DocumentId, UserId, VectorIndex};
use ragmill_extract::Limits;
use ragmill_pipeline::{Input, Pipeline, SearchMode, SearchOptions, Source};
use ragmill_store::{SearchHit, Store};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Embedded,
    Chroma,
}

const BOTH: [Backend; 2] = [Backend::Embedded, Backend::Chroma];

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    pipeline: Pipeline,
    /// The ChromaDB index, on a database of this rig's own.
    chroma: Option<Arc<ChromaIndex>>,
}

/// A ChromaDB index on a fresh database of the test binary's shared server.
async fn chroma() -> Arc<ChromaIndex> {
    let mut config = ChromaConfig::new(ChromaProcess::shared().url());
    config.database = format!("db_{}", fastrand::u64(..));
    Arc::new(ChromaIndex::connect(config).await.expect("connect"))
}

async fn rig(backend: Backend) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path()).expect("store"));
    let pipeline = pipeline_over(Arc::clone(&store), Limits::default());
    let (pipeline, chroma) = match backend {
        Backend::Embedded => (pipeline, None),
        Backend::Chroma => {
            let index = chroma().await;
            (pipeline.with_vector_index(Arc::clone(&index) as Arc<dyn VectorIndex>), Some(index))
        }
    };
    Rig { _dir: dir, store, pipeline, chroma }
}

impl Rig {
    async fn ingest(&self, user: UserId, name: &str, body: &str) -> DocumentId {
        let input = Input {
            name: name.into(),
            source: Source::Bytes(body.as_bytes().to_vec()),
            document: None,
        };
        let outcomes = self.pipeline.ingest(user, vec![input], Arc::new(|_, _| {})).await;
        outcomes.into_iter().next().expect("one").1.expect("ingested");
        let found = self.store.user(user).document_by_name(name).expect("lookup");
        found.expect("stored").id
    }

    async fn vector_search(&self, user: UserId, query: &str, k: usize) -> Vec<SearchHit> {
        let options = SearchOptions { top_k: k, mode: Some(SearchMode::Vector), documents: None };
        self.pipeline.search(user, query, options).await.expect("search")
    }

    /// How many vectors the external index holds for `user` (None: embedded).
    async fn held(&self, user: UserId) -> Option<u32> {
        let index = self.chroma.as_ref()?;
        Some(index.inventory(user).await.expect("inventory").iter().map(|v| v.chunks).sum())
    }
}

fn documents(hits: &[SearchHit]) -> BTreeSet<i64> {
    hits.iter().map(|h| h.document_id.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_answer_the_same_search_the_same_way() {
    let mut answers = Vec::new();
    for backend in BOTH {
        let rig = rig(backend).await;
        let user = rig.store.ensure_user("ann").expect("user");
        for (name, body) in [("tides.md", TIDES), ("bread.md", BREAD), ("bikes.md", BIKES)] {
            rig.ingest(user, name, body).await;
        }
        let hits = rig.vector_search(user, "why does the moon cause tides?", 3).await;
        assert_eq!(hits.len(), 3, "{backend:?}");
        assert!(hits[0].text.contains("Moon"), "{backend:?}: {:?}", hits[0].text);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        let total: u32 =
            rig.store.user(user).documents().expect("list").iter().map(|d| d.chunks as u32).sum();
        if let Some(held) = rig.held(user).await {
            assert_eq!(held, total, "Chroma holds each chunk's vector once");
        }
        // Hybrid search works on both (its keyword side is the store's).
        let options = SearchOptions { top_k: 3, mode: Some(SearchMode::Hybrid), documents: None };
        let hybrid = rig.pipeline.search(user, "sourdough starter", options).await.expect("hybrid");
        assert!(hybrid[0].text.contains("sourdough"), "{backend:?}");
        answers.push(hits.iter().map(|h| (h.chunk, h.text.clone(), h.score)).collect::<Vec<_>>());
    }
    // The same chunks in the same order with the same scores (cosine, to float noise).
    let (embedded, chroma) = (&answers[0], &answers[1]);
    for (a, b) in embedded.iter().zip(chroma) {
        assert_eq!((a.0, &a.1), (b.0, &b.1));
        assert!((a.2 - b.2).abs() < 1e-3, "scores {} and {}", a.2, b.2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_or_deleted_document_leaves_nothing_behind() {
    for backend in BOTH {
        let rig = rig(backend).await;
        let user = rig.store.ensure_user("bob").expect("user");
        let id = rig.ingest(user, "notes.md", TIDES).await;
        rig.ingest(user, "other.md", BIKES).await;
        let replaced = rig.ingest(user, "notes.md", BREAD).await;
        assert_eq!(replaced, id, "the same document");
        let hits = rig.vector_search(user, "moon tides gravitational pull", 10).await;
        assert!(hits.iter().all(|h| !h.text.contains("Moon")), "{backend:?}: the old version");
        let hits = rig.vector_search(user, "sourdough starter yeast", 1).await;
        assert_eq!(hits[0].document_id, id, "{backend:?}: the new version");
        let chunks: u32 =
            rig.store.user(user).documents().expect("list").iter().map(|d| d.chunks as u32).sum();
        if let Some(held) = rig.held(user).await {
            assert_eq!(held, chunks, "the old generation was retired");
        }

        assert!(rig.store.user(user).delete_document(id).expect("delete"));
        if let Some(v) = rig.pipeline.vectors() {
            v.collect().await.expect("collect");
        }
        let hits = rig.vector_search(user, "sourdough starter yeast", 10).await;
        assert!(!documents(&hits).contains(&id.0), "{backend:?}: deleted");
        let left: u32 =
            rig.store.user(user).documents().expect("list").iter().map(|d| d.chunks as u32).sum();
        if let Some(held) = rig.held(user).await {
            assert_eq!(held, left, "its vectors went with it");
        }
        assert!(rig.store.delete_user(user).expect("delete user"));
        if let Some(v) = rig.pipeline.vectors() {
            v.collect().await.expect("collect");
            assert_eq!(rig.held(user).await, Some(0), "the user's collection went");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_never_see_each_others_vectors() {
    for backend in BOTH {
        let rig = rig(backend).await;
        let (a, b) =
            (rig.store.ensure_user("a").expect("a"), rig.store.ensure_user("b").expect("b"));
        let theirs = rig.ingest(a, "tides.md", TIDES).await;
        let mine = rig.ingest(b, "bikes.md", BIKES).await;
        let hits = rig.vector_search(b, "moon tides", 10).await;
        assert_eq!(documents(&hits), BTreeSet::from([mine.0]), "{backend:?}");
        let c = rig.store.ensure_user("c").expect("c");
        assert!(rig.vector_search(c, "moon tides", 10).await.is_empty(), "{backend:?}");
        let _ = theirs;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_during_replacements_sees_one_version_or_the_other() {
    const A: &str = "Alpha version. The lighthouse keeper lights the lamp at dusk.\n\n\
        Alpha version. Ships steer clear of the rocks by its beam.";
    const B: &str = "Beta version. The lighthouse keeper polishes the lens at dawn.\n\n\
        Beta version. Ships steer clear of the rocks by its beam.";
    for backend in BOTH {
        let rig = Arc::new(rig(backend).await);
        let user = rig.store.ensure_user("dee").expect("user");
        rig.ingest(user, "light.md", A).await;
        let writer = {
            let rig = Arc::clone(&rig);
            tokio::spawn(async move {
                for i in 0..8 {
                    rig.ingest(user, "light.md", if i % 2 == 0 { B } else { A }).await;
                }
            })
        };
        let mut searches = 0;
        while !writer.is_finished() || searches < 5 {
            let hits = rig.vector_search(user, "lighthouse keeper ships rocks", 10).await;
            let alpha = hits.iter().filter(|h| h.text.contains("Alpha")).count();
            let beta = hits.iter().filter(|h| h.text.contains("Beta")).count();
            assert!(alpha == 0 || beta == 0, "{backend:?}: a mix of versions: {alpha} + {beta}");
            assert!(alpha + beta > 0, "{backend:?}: the document vanished mid-replacement");
            searches += 1;
        }
        writer.await.expect("writer");
    }
}
