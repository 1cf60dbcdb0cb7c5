//! Chunks one file and prints the time taken and the chunk sizes: a probe for pathological
//! inputs, to be run under `/usr/bin/time -v` for peak memory.
//!
//! `cargo run --release -p ragmill-chunk --example chunk_file -- FILE [--markdown]`
//! (the tokenizer comes from `$RAGMILL_MODEL_DIR/tokenizer.json`).

use std::path::PathBuf;
use std::time::Instant;

use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::{DocumentKind, ExtractedDocument};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: chunk_file FILE [--markdown]")?;
    let markdown = args.next().as_deref() == Some("--markdown");
    let dir = std::env::var_os("RAGMILL_MODEL_DIR").ok_or("set RAGMILL_MODEL_DIR")?;
    let chunker =
        Chunker::from_file(&PathBuf::from(dir).join("tokenizer.json"), ChunkerConfig::default())?;
    let text = std::fs::read_to_string(&file)?;
    let doc = ExtractedDocument {
        kind: if markdown { DocumentKind::Markdown } else { DocumentKind::Text },
        text,
        markdown,
        headings: Vec::new(),
        pages: Vec::new(),
    };
    let start = Instant::now();
    let chunks = chunker.chunk(&doc)?;
    let elapsed = start.elapsed();
    let max_bytes = chunks.iter().map(|c| c.text.len()).max().unwrap_or(0);
    let max_tokens = chunks.iter().map(|c| c.tokens).max().unwrap_or(0);
    println!(
        "{} bytes -> {} chunks in {elapsed:.2?}; largest {max_bytes} bytes, {max_tokens} tokens",
        doc.text.len(),
        chunks.len()
    );
    Ok(())
}
