//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use ragmill_core::{Chunk, ContentHash, DocumentKind, normalize};
use ragmill_store::{NewChunk, NewDocument, Store};

pub const MODEL: &str = "test-model@000000000000";

pub fn chunk(ordinal: u32, text: &str) -> Chunk {
    Chunk {
        ordinal,
        text: text.into(),
        start: 0,
        end: text.len(),
        tokens: 3,
        page: Some(ordinal + 1),
        heading_path: vec!["Top".into(), format!("S{ordinal}")],
    }
}

pub fn unit(v: [f32; 3]) -> Vec<f32> {
    let mut v = v.to_vec();
    normalize(&mut v);
    v
}

pub fn doc<'a>(name: &'a str, content: &str) -> NewDocument<'a> {
    NewDocument {
        id: None,
        name,
        content_hash: ContentHash::of(content.as_bytes()),
        kind: Some(DocumentKind::Text),
        size: content.len() as u64,
        timings: [("embedding".to_string(), 0.5)].into(),
    }
}

/// Stores `texts` with `vectors` as document `name` for `user`.
pub fn put(
    store: &Store,
    user: &str,
    name: &str,
    texts: &[&str],
    vectors: &[Vec<f32>],
) -> ragmill_store::DocumentId {
    let dims = vectors.first().map_or(3, Vec::len);
    let uid = store.ensure_user(user).expect("user");
    let chunks: Vec<Chunk> = texts.iter().enumerate().map(|(i, t)| chunk(i as u32, t)).collect();
    let new: Vec<NewChunk<'_>> = chunks
        .iter()
        .zip(vectors)
        .map(|(c, v)| NewChunk { chunk: c, hash: ContentHash::of(c.text.as_bytes()), vector: v })
        .collect();
    store
        .user(uid)
        .replace_document(&doc(name, &texts.concat()), &new, MODEL, dims)
        .expect("stored")
}

pub fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    (dir, store)
}
