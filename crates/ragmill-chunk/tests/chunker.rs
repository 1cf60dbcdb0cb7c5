//! Chunker invariants, checked with the real all-MiniLM-L6-v2 tokenizer.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use ragmill_chunk::{ChunkBudget, Chunker, ChunkerConfig};
use ragmill_core::{DocumentKind, ExtractedDocument, Heading, PageSpan};
use tokenizers::Tokenizer;

fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    })
}

fn tokenizer() -> Tokenizer {
    let path = model_dir().join("tokenizer.json");
    Tokenizer::from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-model.sh)", path.display()))
}

/// The tokenizer without its padding (to 128) and truncation: exact counts.
fn exact_tokenizer() -> Tokenizer {
    let mut exact = tokenizer();
    exact.with_padding(None);
    exact.with_truncation(None).expect("no truncation");
    exact
}

fn chunker(config: ChunkerConfig) -> Chunker {
    Chunker::new(tokenizer(), config).expect("valid config")
}

fn default_chunker() -> &'static Chunker {
    static C: OnceLock<Chunker> = OnceLock::new();
    C.get_or_init(|| {
        chunker(ChunkerConfig { max_tokens: 64, target_tokens: 48, overlap_tokens: 8 })
    })
}

fn plain(text: &str) -> ExtractedDocument {
    ExtractedDocument {
        kind: DocumentKind::Text,
        text: text.to_owned(),
        markdown: false,
        headings: vec![],
        pages: vec![],
    }
}

/// Every invariant the pipeline relies on.
fn check_invariants(chunker: &Chunker, doc: &ExtractedDocument) {
    let chunks = chunker.chunk(doc).expect("chunking succeeds");
    let max = chunker.config().max_tokens;
    let exact = exact_tokenizer();
    let mut covered = vec![false; doc.text.len()];
    let mut last_start = None;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i);
        assert_eq!(&doc.text[c.start..c.end], c.text, "range matches text");
        // Token limit, counted independently with special tokens.
        let n = exact.encode(c.text.as_str(), true).expect("encode").len();
        assert_eq!(n, c.tokens, "recorded token count");
        assert!(n <= max, "chunk {i} has {n} tokens > {max}");
        // In order.
        if let Some(prev) = last_start {
            assert!(c.start > prev, "starts strictly increase");
        }
        last_start = Some(c.start);
        covered[c.start..c.end].iter_mut().for_each(|b| *b = true);
    }
    // Full coverage: every non-whitespace character lies in some chunk.
    for (pos, ch) in doc.text.char_indices() {
        if !ch.is_whitespace() {
            assert!(covered[pos], "byte {pos} ({ch:?}) not in any chunk");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prose_respects_limits_and_covers_everything(
        words in prop::collection::vec("[a-zA-Z]{1,12}|[0-9]{1,6}|[.,;!?]|\n\n|é|日本|🙂", 0..600)
    ) {
        check_invariants(default_chunker(), &plain(&words.join(" ")));
    }

    #[test]
    fn markdown_respects_limits_and_covers_everything(
        sections in prop::collection::vec(("[A-Z][a-z]{2,10}", prop::collection::vec("[a-z]{1,10}", 1..120)), 1..8)
    ) {
        let text: String = sections.iter().enumerate()
            .map(|(i, (h, body))| format!("{} {h}\n\n{}\n\n", "#".repeat(i % 3 + 1), body.join(" ")))
            .collect();
        let doc = ExtractedDocument { markdown: true, kind: DocumentKind::Markdown, ..plain(&text) };
        check_invariants(default_chunker(), &doc);
    }
}

#[test]
fn consecutive_chunks_overlap() {
    let text: String = (0..400).map(|i| format!("word{i} ")).collect();
    let chunks = default_chunker().chunk(&plain(&text)).expect("chunks");
    assert!(chunks.len() > 3);
    for pair in chunks.windows(2) {
        assert!(
            pair[1].start < pair[0].end,
            "chunk {} does not overlap the one before",
            pair[1].ordinal
        );
    }
}

#[test]
fn a_single_unbroken_token_run_is_still_bounded() {
    // No spaces, no sentence breaks: the splitter must fall back to character boundaries.
    let text = "x".repeat(5000) + &"語".repeat(3000);
    check_invariants(default_chunker(), &plain(&text));
}

#[test]
fn pages_and_heading_paths_are_recorded() {
    let text = "# Guide\n\nIntro text here.\n\n## Install\n\nRun the installer.\n\n## Use\n\nType a query.";
    let offset = |s: &str| text.find(s).expect("present");
    let doc = ExtractedDocument {
        kind: DocumentKind::Markdown,
        text: text.to_owned(),
        markdown: true,
        headings: vec![
            Heading { level: 1, title: "Guide".into(), offset: 0 },
            Heading { level: 2, title: "Install".into(), offset: offset("## Install") },
            Heading { level: 2, title: "Use".into(), offset: offset("## Use") },
        ],
        pages: vec![
            PageSpan { number: 1, start: 0, end: offset("## Use") },
            PageSpan { number: 2, start: offset("## Use"), end: text.len() },
        ],
    };
    let small = chunker(ChunkerConfig { max_tokens: 12, target_tokens: 10, overlap_tokens: 0 });
    let chunks = small.chunk(&doc).expect("chunks");
    let use_chunk = chunks.iter().find(|c| c.text.contains("Type a query")).expect("last section");
    assert_eq!(use_chunk.heading_path, vec!["Guide", "Use"]);
    assert_eq!(use_chunk.page, Some(2));
    let install = chunks.iter().find(|c| c.text.contains("installer")).expect("install section");
    assert_eq!(install.heading_path, vec!["Guide", "Install"]);
    assert_eq!(install.page, Some(1));
}

#[test]
fn default_config_fits_the_model_window() {
    let text: String = (0..3000).map(|i| format!("token{i} and more words. ")).collect();
    check_invariants(&chunker(ChunkerConfig::default()), &plain(&text));
}

#[test]
fn bad_sizes_are_refused() {
    let bad = |max, target, overlap| {
        Chunker::new(
            tokenizer(),
            ChunkerConfig { max_tokens: max, target_tokens: target, overlap_tokens: overlap },
        )
        .is_err()
    };
    assert!(bad(2, 2, 0), "no room beside [CLS] and [SEP]");
    assert!(bad(256, 300, 0), "target above max");
    assert!(bad(256, 100, 98), "overlap as large as the target's content");
    assert!(!bad(256, 256, 32));
}

#[test]
fn empty_text_gives_no_chunks() {
    assert!(default_chunker().chunk(&plain("   \n\n ")).expect("ok").is_empty());
}

fn markdown(text: &str) -> ExtractedDocument {
    ExtractedDocument { markdown: true, kind: DocumentKind::Markdown, ..plain(text) }
}

/// Chunks `doc` with the invariants checked, and each chunk within the byte bound too.
fn check_bounded(chunker: &Chunker, doc: &ExtractedDocument) -> Vec<ragmill_core::Chunk> {
    check_invariants(chunker, doc);
    let chunks = chunker.chunk(doc).expect("chunking succeeds");
    for c in &chunks {
        assert!(
            c.text.len() <= chunker.max_chunk_bytes(),
            "chunk {} has {} bytes",
            c.ordinal,
            c.text.len()
        );
    }
    chunks
}

#[test]
fn a_long_word_is_cut_into_pieces_the_model_reads() {
    // WordPiece reads any word over 100 characters as one [UNK]: before, 300 KB without a
    // space was one chunk of 3 tokens.
    let mut rng = 7u64;
    let text: String = (0..300_000)
        .map(|_| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'a' + (rng >> 33) as u8 % 26)
        })
        .collect();
    let words = format!("Some words first. {text} and after.");
    for chunker in [default_chunker(), &chunker(ChunkerConfig::default())] {
        let chunks = check_bounded(chunker, &plain(&words));
        assert!(chunks.len() >= 3000, "{} chunks", chunks.len());
        let exact = exact_tokenizer();
        let unk = exact.token_to_id("[UNK]").expect("BERT has [UNK]");
        for c in &chunks {
            let ids = exact.encode(c.text.as_str(), false).expect("encode").get_ids().to_vec();
            assert!(!ids.contains(&unk), "chunk {} is read as [UNK]: {:?}", c.ordinal, c.text);
        }
    }
}

#[test]
fn whitespace_cannot_fill_a_chunk_with_megabytes() {
    let text: String = (0..2000).map(|i| format!("w{i}{}", " ".repeat(500))).collect();
    let chunks = check_bounded(default_chunker(), &plain(&text));
    assert!(chunks.len() > 200, "{} chunks", chunks.len());
}

fn nested_list(depth: usize) -> String {
    (0..depth).map(|i| format!("{}- item {i}\n", "  ".repeat(i))).collect()
}

#[test]
fn deeply_nested_markdown_lists_chunk_in_linear_time() {
    // 1,000 levels (1 MB, mostly indentation) took 379 s: each chunk re-measured the first
    // list item, which holds every deeper one. Now the splitter sees bounded windows.
    let doc = markdown(&nested_list(1000));
    let chunker = chunker(ChunkerConfig::default());
    let started = std::time::Instant::now();
    let chunks = chunker.chunk(&doc).expect("chunks");
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(4), "took {elapsed:?}");
    assert!(chunks.iter().all(|c| c.text.len() <= chunker.max_chunk_bytes()));
    for i in [0, 499, 999] {
        let item = format!("- item {i}\n");
        assert!(chunks.iter().any(|c| c.text.contains(item.trim_end())), "item {i} lost");
    }
    check_bounded(default_chunker(), &markdown(&nested_list(300)));
}

#[test]
fn a_document_over_its_budget_is_refused_with_a_stable_code() {
    let config = ChunkerConfig { max_tokens: 64, target_tokens: 48, overlap_tokens: 8 };
    let text = "Some words that make up a sentence of prose. ".repeat(400);
    let all = default_chunker().chunk(&plain(&text)).expect("within the default budget");
    assert!(all.len() > 20, "{} chunks", all.len());
    let budget = ChunkBudget { max_chunks: 10, ..ChunkBudget::default() };
    let small = chunker(config).with_budget(budget);
    assert_eq!(small.budget(), budget);
    let e = small.chunk(&plain(&text)).expect_err("too many");
    assert_eq!(e.code(), "too_many_chunks");
    assert_eq!(e.to_string(), "the document makes more than 10 chunks");
    // Cut words count too.
    let e = small.chunk(&plain(&"x".repeat(100_000))).expect_err("too many pieces");
    assert_eq!(e.code(), "too_many_chunks");
    // A budget of no time at all stops at the first check.
    // The deadline grows with the text: 60 s, and 20 s per MiB.
    assert_eq!(ChunkBudget::default().time_for(3 << 19), std::time::Duration::from_secs(90));
    let zero = std::time::Duration::ZERO;
    let budget = ChunkBudget { timeout: zero, timeout_per_mib: zero, ..ChunkBudget::default() };
    let e = chunker(config).with_budget(budget).chunk(&plain(&text)).expect_err("no time");
    assert_eq!(
        (e.code(), e.to_string()),
        ("chunk_timeout", "chunking took longer than 1 s and was stopped".into())
    );
}

#[test]
fn counting_squeezes_whitespace_without_changing_counts() {
    let chunker = default_chunker();
    let exact = exact_tokenizer();
    for text in [
        "a  b\n\n\nc\t \td",
        "x\u{0B}\u{0B}y z\u{0C} \u{0C}w",
        "nbsp\u{A0}\u{A0}ideo\u{3000}\u{3000}graphic \u{85}\u{85} nel",
        "  lead and trail  ",
        "日 \n 本  한국어\u{200B} \u{200B}x",
    ] {
        let want = exact.encode(text, true).expect("encode").len();
        assert_eq!(chunker.count_tokens(text).expect("count"), want, "{text:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_text_chunks_within_bounds(text in ".{0,3000}", is_markdown in any::<bool>()) {
        let doc = if is_markdown { markdown(&text) } else { plain(&text) };
        check_bounded(default_chunker(), &doc);
    }

    #[test]
    fn whitespace_squeezing_keeps_counts(
        words in prop::collection::vec("[a-z]{1,6}|[ \t\n]{1,4}|\u{0B}|\u{0C}|\u{85}|\u{A0}|\u{3000}|\u{200B}|日|한|[.,]", 0..40)
    ) {
        let text = words.concat();
        let want = exact_tokenizer().encode(text.as_str(), true).expect("encode").len();
        prop_assert_eq!(default_chunker().count_tokens(&text).expect("count"), want);
    }
}

#[test]
#[ignore = "a measurement: cargo test -p ragmill-chunk --test chunker -- --ignored --nocapture"]
fn chunking_throughput() {
    let chunker = chunker(ChunkerConfig::default());
    let prose = "The keeper trims the wick of the lamp every evening, and logs passing ships. "
        .repeat(40)
        + "\n\n";
    for (name, text, md) in [
        ("prose", prose.repeat(400), false),
        ("markdown", format!("# Title\n\n{}", prose.repeat(400)), true),
    ] {
        let started = std::time::Instant::now();
        let chunks =
            chunker.chunk(&ExtractedDocument { markdown: md, ..plain(&text) }).expect("ok");
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {:.1} MB, {} chunks in {secs:.2} s: {:.2} MB/s",
            text.len() as f64 / 1e6,
            chunks.len(),
            text.len() as f64 / 1e6 / secs
        );
    }
}
