//! Against a real Chroma server. Starting one takes about 2 s, so the scenarios that can share
//! a server run in one test, one after another, each with users of its own; the test that
//! kills its server has its own.

use std::time::Instant;

use ragmill_chroma::testing::ChromaProcess;
use ragmill_chroma::{ChromaConfig, ChromaIndex};
use ragmill_core::{
    DocumentId, IndexError, IndexedChunk, IndexedVersion, Retire, UserId, VectorHit, VectorIndex,
    cosine,
};

use crate::{chunks, unit};

const E1: &[f32] = &[1.0, 0.0, 0.0, 0.0];
const E2: &[f32] = &[0.0, 1.0, 0.0, 0.0];
const E12: &[f32] = &[1.0, 1.0, 0.0, 0.0];
const E3: &[f32] = &[0.0, 0.0, 1.0, 0.0];

async fn connect(url: &str) -> ChromaIndex {
    ChromaIndex::connect(ChromaConfig::new(url)).await.expect("connects")
}

async fn search(index: &ChromaIndex, user: i64, k: usize, docs: Option<&[i64]>) -> Vec<VectorHit> {
    let documents = docs.map(|d| d.iter().copied().map(DocumentId).collect());
    index.search(UserId(user), unit(E1), k, documents).await.expect("search")
}

/// (document, generation, chunk) of each hit, in order.
fn named(hits: &[VectorHit]) -> Vec<(i64, u64, u32)> {
    hits.iter().map(|h| (h.document.0, h.generation.unwrap_or(u64::MAX), h.chunk)).collect()
}

fn version(document: i64, generation: u64, chunks: u32) -> IndexedVersion {
    IndexedVersion { document: DocumentId(document), generation, chunks }
}

#[tokio::test]
async fn scenarios_against_a_real_server() {
    let chroma = ChromaProcess::start();
    let index = connect(&chroma.url()).await;
    assert_eq!((index.backend(), index.external()), ("chroma", true));
    index.health().await.expect("healthy");
    let timed = Instant::now();
    round_trip_scores_are_cosine(&index).await;
    writing_a_generation_again_duplicates_nothing(&index).await;
    generations_are_kept_apart_and_retired(&index).await;
    a_documents_filter_is_honoured(&index).await;
    users_are_isolated(&index).await;
    remove_user_forgets_everything(&index).await;
    a_collection_deleted_underneath_is_made_again(&index, &chroma.url()).await;
    inventory_counts_each_version(&index).await;
    dimensions_are_checked(&index, &chroma.url()).await;
    tenant_and_database_are_created(&index, &chroma.url()).await;
    eprintln!("scenarios: {:?}", timed.elapsed());
    let timed = Instant::now();
    more_records_than_the_servers_batch(&index).await;
    eprintln!("6,000 records: {:?}", timed.elapsed());
}

async fn round_trip_scores_are_cosine(index: &ChromaIndex) {
    let written = chunks(&[E1, E12, E2]);
    index.write(UserId(1), DocumentId(10), 1, written.clone()).await.expect("write");
    let hits = search(index, 1, 5, None).await;
    assert_eq!(named(&hits), vec![(10, 1, 0), (10, 1, 1), (10, 1, 2)]);
    for (hit, chunk) in hits.iter().zip(&written) {
        let want = cosine(&unit(E1), &chunk.vector);
        assert!((hit.score - want).abs() < 1e-4, "score {} vs cosine {want}", hit.score);
    }
    assert_eq!(named(&search(index, 1, 2, None).await), vec![(10, 1, 0), (10, 1, 1)]);
}

async fn writing_a_generation_again_duplicates_nothing(index: &ChromaIndex) {
    let user = UserId(2);
    index.write(user, DocumentId(1), 3, chunks(&[E1, E2, E3])).await.expect("write");
    index.write(user, DocumentId(1), 3, chunks(&[E2, E1, E3])).await.expect("write again");
    assert_eq!(index.inventory(user).await.expect("inventory"), vec![version(1, 3, 3)]);
    let hits = search(index, 2, 10, None).await;
    // The second write replaced the first: chunk 1 now holds E1.
    assert_eq!(named(&hits)[0], (1, 3, 1));
    assert_eq!(hits.len(), 3);
}

async fn generations_are_kept_apart_and_retired(index: &ChromaIndex) {
    let user = UserId(3);
    index.write(user, DocumentId(1), 1, chunks(&[E1])).await.expect("write 1");
    index.write(user, DocumentId(1), 2, chunks(&[E12])).await.expect("write 2");
    index.write(user, DocumentId(2), 1, chunks(&[E2])).await.expect("write other");
    assert_eq!(named(&search(index, 3, 5, None).await), vec![(1, 1, 0), (1, 2, 0), (2, 1, 0)]);
    index.retire(user, DocumentId(1), Retire::Generation(1)).await.expect("retire 1");
    assert_eq!(named(&search(index, 3, 5, None).await), vec![(1, 2, 0), (2, 1, 0)]);
    index.write(user, DocumentId(1), 3, chunks(&[E1])).await.expect("write 3");
    index.retire(user, DocumentId(1), Retire::Through(2)).await.expect("retire through 2");
    assert_eq!(named(&search(index, 3, 5, None).await), vec![(1, 3, 0), (2, 1, 0)], "3 is spared");
    index.retire(user, DocumentId(1), Retire::Through(3)).await.expect("retire through 3");
    assert_eq!(named(&search(index, 3, 5, None).await), vec![(2, 1, 0)]);
    // Nothing to retire, or no collection at all: fine.
    index.retire(user, DocumentId(1), Retire::Through(u64::MAX >> 1)).await.expect("retire again");
    index
        .retire(UserId(3_000), DocumentId(1), Retire::Through(u64::MAX >> 1))
        .await
        .expect("no collection");
}

async fn a_documents_filter_is_honoured(index: &ChromaIndex) {
    let user = UserId(4);
    for d in 1..=3 {
        index.write(user, DocumentId(d), 1, chunks(&[E1, E12])).await.expect("write");
    }
    let only_2 = search(index, 4, 10, Some(&[2])).await;
    assert_eq!(named(&only_2), vec![(2, 1, 0), (2, 1, 1)]);
    let hits = search(index, 4, 10, Some(&[3, 1, 99])).await;
    assert!(hits.iter().all(|h| [1, 3].contains(&h.document.0)) && hits.len() == 4);
    assert!(search(index, 4, 10, Some(&[])).await.is_empty());
    assert!(search(index, 4, 0, None).await.is_empty());
}

async fn users_are_isolated(index: &ChromaIndex) {
    let (alice, bob) = (UserId(5), UserId(6));
    index.write(alice, DocumentId(50), 1, chunks(&[E1, E2])).await.expect("write");
    assert!(search(index, 6, 10, None).await.is_empty(), "bob has no collection");
    assert!(index.inventory(bob).await.expect("inventory").is_empty());
    index.write(bob, DocumentId(60), 1, chunks(&[E1])).await.expect("write");
    assert_eq!(named(&search(index, 6, 10, None).await), vec![(60, 1, 0)]);
    assert!(search(index, 5, 10, None).await.iter().all(|h| h.document.0 == 50));
    assert_eq!(index.inventory(alice).await.expect("inventory"), vec![version(50, 1, 2)]);
}

async fn remove_user_forgets_everything(index: &ChromaIndex) {
    let user = UserId(7);
    index.write(user, DocumentId(1), 1, chunks(&[E1])).await.expect("write");
    index.remove_user(user).await.expect("remove");
    assert!(search(index, 7, 10, None).await.is_empty());
    assert!(index.inventory(user).await.expect("inventory").is_empty());
    index.remove_user(user).await.expect("removing nothing is fine");
    index.write(user, DocumentId(2), 1, chunks(&[E1])).await.expect("write after");
    assert_eq!(named(&search(index, 7, 10, None).await), vec![(2, 1, 0)]);
}

async fn a_collection_deleted_underneath_is_made_again(index: &ChromaIndex, url: &str) {
    let user = UserId(8);
    let other = connect(url).await;
    index.write(user, DocumentId(1), 1, chunks(&[E1])).await.expect("write");
    other.remove_user(user).await.expect("removed by another instance");
    assert!(search(index, 8, 10, None).await.is_empty(), "stale uuid, no collection");
    index.write(user, DocumentId(2), 1, chunks(&[E1])).await.expect("write");
    other.remove_user(user).await.expect("removed again");
    index.write(user, DocumentId(3), 1, chunks(&[E1])).await.expect("stale uuid: made again");
    assert_eq!(named(&search(index, 8, 10, None).await), vec![(3, 1, 0)]);
    assert_eq!(named(&search(&other, 8, 10, None).await), vec![(3, 1, 0)]);
}

async fn inventory_counts_each_version(index: &ChromaIndex) {
    let user = UserId(9);
    index.write(user, DocumentId(2), 5, chunks(&[E1])).await.expect("write");
    index.write(user, DocumentId(1), 2, chunks(&[E1, E2])).await.expect("write");
    index.write(user, DocumentId(1), 1, chunks(&[E1, E2, E3])).await.expect("write");
    let got = index.inventory(user).await.expect("inventory");
    assert_eq!(got, vec![version(1, 1, 3), version(1, 2, 2), version(2, 5, 1)]);
}

async fn dimensions_are_checked(index: &ChromaIndex, url: &str) {
    let user = UserId(11);
    index.write(user, DocumentId(1), 1, chunks(&[E1])).await.expect("write");
    let short = vec![IndexedChunk { chunk: 0, vector: unit(&[1.0, 1.0, 0.0]) }];
    match index.write(user, DocumentId(2), 1, short).await {
        Err(IndexError::Failed(m)) => assert!(m.contains("dimension"), "{m}"),
        other => panic!("a write of the wrong dimension: {other:?}"),
    }
    for index in [index, &connect(url).await] {
        let wrong = index.search(user, unit(&[1.0, 0.0, 0.0]), 5, None).await;
        assert_eq!(wrong, Err(IndexError::Dimension { got: 3, want: 4 }));
    }
}

async fn tenant_and_database_are_created(index: &ChromaIndex, url: &str) {
    let config = ChromaConfig {
        tenant: "ragmill_tests".into(),
        database: "db_one".into(),
        ..ChromaConfig::new(url)
    };
    let elsewhere = ChromaIndex::connect(config.clone()).await.expect("creates both");
    ChromaIndex::connect(config).await.expect("finds both");
    elsewhere.write(UserId(1), DocumentId(77), 1, chunks(&[E1])).await.expect("write");
    assert_eq!(named(&search(&elsewhere, 1, 10, None).await), vec![(77, 1, 0)]);
    assert!(search(index, 1, 10, None).await.iter().all(|h| h.document.0 == 10));
}

async fn more_records_than_the_servers_batch(index: &ChromaIndex) {
    let user = UserId(10);
    assert!(index.batch_size() <= 1_000);
    // 6,000 records: more than Chroma's max_batch_size (5,461) and six of ours.
    let mut seed = 7u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
    };
    let many: Vec<IndexedChunk> = (0..6_000)
        .map(|chunk| IndexedChunk {
            chunk,
            vector: unit(&(0..8).map(|_| next()).collect::<Vec<_>>()),
        })
        .collect();
    let probe = many[4_321].vector.clone();
    index.write(user, DocumentId(1), 1, many).await.expect("write 6,000");
    assert_eq!(index.inventory(user).await.expect("inventory"), vec![version(1, 1, 6_000)]);
    let hits = index.search(user, probe, 3, None).await.expect("search");
    assert_eq!((hits[0].chunk, hits.len()), (4_321, 3));
    assert!((hits[0].score - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn a_killed_server_is_unavailable_and_keeps_its_data() {
    let mut chroma = ChromaProcess::start();
    let index = connect(&chroma.url()).await;
    index.write(UserId(1), DocumentId(1), 1, chunks(&[E1, E2])).await.expect("write");
    chroma.kill();
    let unavailable = |r: Result<(), IndexError>| matches!(r, Err(IndexError::Unavailable(_)));
    let write = index.write(UserId(1), DocumentId(2), 1, chunks(&[E1])).await;
    assert!(unavailable(write.clone()), "{write:?}");
    let found = index.search(UserId(1), unit(E1), 5, None).await;
    assert!(matches!(found, Err(IndexError::Unavailable(_))), "{found:?}");
    let health = index.health().await;
    assert!(unavailable(health.clone()), "{health:?}");
    assert!(health.expect_err("down").to_string().contains(&chroma.url()));
    let connected = ChromaIndex::connect(ChromaConfig::new(chroma.url())).await;
    assert!(matches!(connected, Err(IndexError::Unavailable(_))));

    chroma.restart();
    index.health().await.expect("healthy again");
    assert_eq!(named(&search(&index, 1, 5, None).await), vec![(1, 1, 0), (1, 1, 1)]);
}
