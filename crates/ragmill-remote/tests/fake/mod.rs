//! Test helpers around the library's fake servers ([`ragmill_remote::fake`]): the vectors a
//! correct client must return, distinct texts, polling.
//!
//! The fakes answer every text with a hash-seeded vector ([`raw_vector`]) that is deliberately
//! not of unit length, so a test computes the expected, normalised answer itself
//! ([`expected`]).

#![allow(dead_code, unused_imports)] // each test binary uses part of it

use std::time::Duration;

pub use ragmill_remote::fake::{FakeOllama, FakeOpenAi, FakeServer, Wire, raw_vector};

/// What a correct client returns for `text`: the raw vector at unit length.
pub fn expected(text: &str, dim: usize) -> Vec<f32> {
    let v = raw_vector(text, dim);
    let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    v.iter().map(|&x| (f64::from(x) / norm) as f32).collect()
}

/// `n` distinct texts.
pub fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text number {i}: {}", "lorem ipsum ".repeat(i % 5))).collect()
}

/// Whether `got` matches `expected(text)` for every text, in order.
pub fn all_expected(texts: &[String], got: &[Vec<f32>], dim: usize) -> bool {
    texts.len() == got.len()
        && texts.iter().zip(got).all(|(t, v)| {
            let want = expected(t, dim);
            v.len() == dim && v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6)
        })
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts a fake Ollama server answering vectors of `dim` floats.
pub async fn ollama(dim: usize) -> FakeServer {
    FakeOllama::start(dim).await.expect("start a fake Ollama server")
}

/// Starts a fake OpenAI-compatible server answering vectors of `dim` floats, without a key.
pub async fn openai(dim: usize) -> FakeServer {
    FakeOpenAi::start(dim).await.expect("start a fake OpenAI server")
}
