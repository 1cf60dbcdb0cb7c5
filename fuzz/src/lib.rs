//! Shared checks of the fuzz targets: what must hold for any input, beyond "no crash".
//!
//! A parser panic that `ragmill-extract` catches (and reports as `extract_crashed`) is its
//! contract, not a finding, so the targets silence the panic hook for the extraction and let
//! only an escaped panic, a hang (libFuzzer's `-timeout`), memory beyond `-rss_limit_mb`, or a
//! broken invariant below abort the run.

use std::path::PathBuf;
use std::sync::Once;

use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::ExtractedDocument;
use ragmill_extract::{ExtractError, Limits};

/// Limits for fuzzing: the defaults, with a small decompression bound so that a generated zip
/// bomb costs milliseconds, not seconds.
pub fn limits() -> Limits {
    Limits { max_decompressed_bytes: 16 << 20, ..Limits::default() }
}

/// Caught panics are part of the contract: keep them from aborting the fuzzer.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Panics inside the extractor's guards unwind into `catch_unwind` and become
            // `extract_crashed`; anything else reaches libFuzzer's hook and aborts.
            if !GUARDED.with(std::cell::Cell::get) {
                libfuzzer_hook(info);
            }
        }));
    });
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Detects and extracts `data` as a file called `name`, checking every invariant of the result.
pub fn extract(data: &[u8], name: &str) {
    quiet_panics();
    let limits = limits();
    let detected = ragmill_extract::detect(data, name);
    GUARDED.with(|g| g.set(true));
    let result = std::panic::catch_unwind(|| ragmill_extract::extract(data, name, &limits));
    GUARDED.with(|g| g.set(false));
    let result = match result {
        Ok(r) => r,
        Err(_) => panic!("a panic escaped ragmill_extract::extract"),
    };
    match result {
        Ok(doc) => {
            let kind = detected.unwrap_or_else(|e| panic!("extracted, but detect said {e}"));
            assert_eq!(kind, doc.kind, "detect and extract disagree");
            check_document(&doc, &limits);
        }
        Err(e) => check_error(&e),
    }
}

fn check_document(doc: &ExtractedDocument, limits: &Limits) {
    let text = &doc.text;
    assert!(text.len() as u64 <= limits.max_text_bytes, "text over the limit");
    let mut last = 0;
    for h in &doc.headings {
        assert!((1..=6).contains(&h.level), "heading level {}", h.level);
        assert!(h.offset <= text.len() && text.is_char_boundary(h.offset), "heading offset");
        assert!(h.offset >= last, "headings out of order");
        assert!(!h.title.trim().is_empty(), "empty heading title");
        last = h.offset;
    }
    let mut end = 0;
    for p in &doc.pages {
        assert!(p.start >= end && p.start <= p.end && p.end <= text.len(), "page span {p:?}");
        assert!(text.is_char_boundary(p.start) && text.is_char_boundary(p.end), "page cut");
        end = p.end;
    }
}

fn check_error(e: &ExtractError) {
    let line = e.to_string();
    assert!(!line.contains('\n'), "error message on several lines: {line:?}");
    assert!(!e.code().is_empty());
}

/// The chunker of the fuzz runs: the real MiniLM tokenizer (at `RAGMILL_MODEL_DIR`, default
/// `models/all-MiniLM-L6-v2` in the repository) with small sizes, so that short inputs make
/// several chunks.
pub fn chunker() -> &'static Chunker {
    static CHUNKER: std::sync::OnceLock<Chunker> = std::sync::OnceLock::new();
    CHUNKER.get_or_init(|| {
        let dir = std::env::var_os("RAGMILL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2")
        });
        let config = ChunkerConfig { max_tokens: 32, target_tokens: 24, overlap_tokens: 4 };
        match Chunker::from_file(&dir.join("tokenizer.json"), config) {
            Ok(c) => c,
            Err(e) => panic!("{e} (set RAGMILL_MODEL_DIR)"),
        }
    })
}

/// Chunks `text` and checks what the pipeline relies on.
pub fn chunk(text: &str, markdown: bool) {
    let chunker = chunker();
    let doc = ExtractedDocument {
        kind: if markdown {
            ragmill_core::DocumentKind::Markdown
        } else {
            ragmill_core::DocumentKind::Text
        },
        text: text.to_owned(),
        markdown,
        headings: Vec::new(),
        pages: Vec::new(),
    };
    let chunks = match chunker.chunk(&doc) {
        Ok(c) => c,
        Err(e) => panic!("chunking failed: {e}"),
    };
    let max = chunker.config().max_tokens;
    let mut last_start = None;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i);
        assert!(c.tokens <= max, "chunk {i} has {} tokens", c.tokens);
        assert!(c.text.len() <= chunker.max_chunk_bytes(), "chunk {i} over the byte bound");
        assert!(c.start < c.end && c.end <= text.len(), "chunk {i} range");
        assert_eq!(&text[c.start..c.end], c.text, "chunk {i} text is not its range");
        assert!(!c.text.trim().is_empty(), "blank chunk {i}");
        if let Some(s) = last_start {
            assert!(c.start > s, "chunks out of order");
        }
        last_start = Some(c.start);
        let counted = chunker.count_tokens(&c.text).unwrap_or(usize::MAX);
        assert_eq!(counted, c.tokens, "chunk {i} token count");
    }
}
