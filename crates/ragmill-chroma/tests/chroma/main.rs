//! ragmill-chroma's integration tests, one binary: `server` runs the index against a real Chroma
//! server ([`ragmill_chroma::testing::ChromaProcess`]); `garbage` against a fake one that
//! answers what a real server must not.

mod garbage;
mod server;

use ragmill_core::IndexedChunk;

/// `v` scaled to unit length.
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// Chunks 0, 1, … with the unit vectors of `vectors`.
fn chunks(vectors: &[&[f32]]) -> Vec<IndexedChunk> {
    (0u32..).zip(vectors).map(|(chunk, v)| IndexedChunk { chunk, vector: unit(v) }).collect()
}
