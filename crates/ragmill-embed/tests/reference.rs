//! The local embedder against the reference implementation's vectors.

use std::path::PathBuf;

use ragmill_core::{Embedder, cosine};
use ragmill_embed::{Engine, LocalEmbedder, LocalOptions, ModelDir, Precision};

fn model_dir() -> ModelDir {
    let path = std::env::var_os("RAGMILL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    });
    ModelDir::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(serde::Deserialize)]
struct Fixture {
    max_seq_length: usize,
    items: Vec<Item>,
}

#[derive(serde::Deserialize)]
struct Item {
    text: String,
    embedding: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/minilm-reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present"))
        .expect("fixture parses")
}

/// The worst cosine between each engine's vectors and the reference's, over every fixture.
async fn worst_cosine(options: LocalOptions) -> (f32, String) {
    let fixture = fixture();
    let dir = model_dir();
    assert_eq!(dir.max_seq_length, fixture.max_seq_length);
    let embedder = LocalEmbedder::load(&dir, options).expect("model loads");
    assert_eq!(embedder.info().dimensions, 384);
    let texts: Vec<String> = fixture.items.iter().map(|i| i.text.clone()).collect();
    let vectors = embedder.embed(texts).await.expect("embeds");
    assert_eq!(vectors.len(), fixture.items.len());
    let mut worst = (1.0f32, String::new());
    for (item, v) in fixture.items.iter().zip(&vectors) {
        assert_eq!(v.len(), item.embedding.len());
        let c = cosine(v, &item.embedding);
        if c < worst.0 {
            worst = (c, item.text.chars().take(40).collect());
        }
        let norm = ragmill_core::dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
    }
    worst
}

// Batch of 7 so the fixtures span several passes of mixed lengths.

#[tokio::test(flavor = "multi_thread")]
async fn native_fp32_reproduces_every_reference_vector() {
    let worst = worst_cosine(LocalOptions { max_batch: 7, ..Default::default() }).await;
    assert!(worst.0 >= 0.9999, "cosine {} for {:?}", worst.0, worst.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn native_int8_stays_close_to_the_reference() {
    let options = LocalOptions { max_batch: 7, precision: Precision::Int8, ..Default::default() };
    let worst = worst_cosine(options).await;
    eprintln!("int8 worst cosine {} ({:?})", worst.0, worst.1);
    // The issue asks for 0.99; blocked quantisation gives 0.9986, so a regression shows.
    assert!(worst.0 >= 0.998, "cosine {} for {:?}", worst.0, worst.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn candle_engine_reproduces_every_reference_vector() {
    let worst =
        worst_cosine(LocalOptions { max_batch: 7, engine: Engine::Candle, ..Default::default() })
            .await;
    assert!(worst.0 >= 0.999, "cosine {} for {:?}", worst.0, worst.1);
}

#[test]
fn int8_needs_the_native_engine() {
    let options =
        LocalOptions { precision: Precision::Int8, engine: Engine::Candle, ..Default::default() };
    let err = LocalEmbedder::load(&model_dir(), options).err().expect("refused").to_string();
    assert!(err.contains("native engine"), "{err}");
}

#[test]
fn int8_vectors_are_cached_under_their_own_model_id() {
    let fp32 = LocalEmbedder::load(&model_dir(), LocalOptions::default()).expect("fp32");
    let int8 = LocalEmbedder::load(
        &model_dir(),
        LocalOptions { precision: Precision::Int8, ..Default::default() },
    )
    .expect("int8");
    assert_eq!(int8.info().id, format!("{}+int8", fp32.info().id));
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_composition_does_not_change_vectors() {
    for precision in [Precision::Fp32, Precision::Int8] {
        batch_composition_with(precision).await;
    }
}

async fn batch_composition_with(precision: Precision) {
    let options = LocalOptions { max_batch: 4, precision, ..Default::default() };
    let embedder = LocalEmbedder::load(&model_dir(), options).expect("loads");
    let texts: Vec<String> =
        ["short", "a somewhat longer sentence about tides and the moon", "", "x y z"]
            .into_iter()
            .map(String::from)
            .collect();
    let together = embedder.embed(texts.clone()).await.expect("batch");
    for (text, v) in texts.iter().zip(&together) {
        let alone = embedder.embed(vec![text.clone()]).await.expect("single");
        assert!(
            cosine(v, &alone[0]) > 0.99999,
            "{precision}: batching changed the vector of {text:?}"
        );
    }
    // Queries, alone or several sharing a pass, get the same vectors.
    let q = |i: usize| embedder.embed_query(texts[i].clone());
    let (a, b, c, d) = tokio::join!(q(0), q(1), q(2), q(3));
    for (i, query) in [a, b, c, d].into_iter().enumerate() {
        let query = query.expect("query");
        assert!(cosine(&query, &together[i]) > 0.99999, "{precision}: query {:?}", texts[i]);
    }
    assert!(embedder.embed(vec![]).await.expect("empty").is_empty());
}

#[test]
fn a_missing_model_names_the_file_and_the_fix() {
    let dir = tempfile_dir();
    let err = ModelDir::open(&dir).expect_err("empty dir").to_string();
    assert!(err.contains("config.json") && err.contains("models fetch"), "{err}");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ragmill-empty-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}
