//! `BeirDataset::load` on tiny datasets written to a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ragmill_eval::{BeirDataset, EvalError, evaluate};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ragmill-eval-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("qrels")).expect("create temp dir");
        Self(dir)
    }

    fn write(&self, rel: &str, content: &str) -> &Self {
        fs::write(self.0.join(rel), content).expect("write temp file");
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const CORPUS: &str = r#"{"_id": "d1", "title": "Tides", "text": "The moon pulls the oceans."}
{"_id": 2, "title": null, "text": "Sourdough starters need feeding.", "metadata": {"x": 1}}

{"_id": "d3", "text": "Volcanoes erupt."}
"#;

const QUERIES: &str = r#"{"_id": "q1", "text": "what causes tides"}
{"_id": 7, "text": "feeding a starter"}
{"_id": "q3", "text": "only judged irrelevant"}
{"_id": "q4", "text": "not judged at all"}
"#;

const QRELS: &str =
    "query-id\tcorpus-id\tscore\nq1\td1\t2\n7\t2\t1\n7\td3\t0\nq3\td3\t0\nq9\td1\t1\n";

fn good() -> TempDir {
    let t = TempDir::new();
    t.write("corpus.jsonl", CORPUS).write("queries.jsonl", QUERIES).write("qrels/test.tsv", QRELS);
    t
}

fn parse_error(err: EvalError) -> (PathBuf, usize, String) {
    match err {
        EvalError::Parse { path, line, message } => (path, line, message),
        other => panic!("expected a parse error, got {other}"),
    }
}

#[test]
fn loads_a_well_formed_dataset() {
    let t = good();
    let ds = BeirDataset::load(t.path(), "test").expect("loads");

    let ids: Vec<&str> = ds.corpus.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d1", "2", "d3"], "numeric _id kept as its decimal text");
    assert_eq!(ds.corpus[0].title, "Tides");
    assert_eq!(ds.corpus[1].title, "", "null title is empty");
    assert_eq!(ds.corpus[2].title, "", "missing title is empty");
    assert_eq!(ds.corpus[1].text, "Sourdough starters need feeding.");

    // q3 has only a score-0 judgement, q4 none, q9 is not in queries.jsonl: only q1 and 7 stay.
    let qids: Vec<&str> = ds.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(qids, ["q1", "7"]);
    assert_eq!(ds.queries[1].text, "feeding a starter");
    assert_eq!(ds.qrels.len(), 2);
    assert_eq!(ds.qrels["q1"]["d1"], 2);
    assert_eq!(ds.qrels["7"]["2"], 1);
    assert_eq!(ds.qrels["7"]["d3"], 0, "zero judgements of kept queries are kept");

    let runs = std::collections::HashMap::from([
        ("q1".to_string(), vec![("d1".to_string(), 0.9_f32)]),
        ("7".to_string(), vec![("d3".to_string(), 0.9_f32), ("2".to_string(), 0.8)]),
    ]);
    let m = evaluate(&ds, &runs);
    assert_eq!((m.queries, m.documents), (2, 3));
    assert!((m.mrr_at_10 - 0.75).abs() < 1e-12);
}

#[test]
fn header_is_optional_and_crlf_is_accepted() {
    let t = good();
    t.write("qrels/dev.tsv", "q1\td1\t1\r\n7\t2\t2\r\n");
    let ds = BeirDataset::load(t.path(), "dev").expect("loads");
    assert_eq!(ds.queries.len(), 2);
    assert_eq!(ds.qrels["7"]["2"], 2);
}

#[test]
fn malformed_corpus_line_names_file_and_line() {
    let t = good();
    t.write(
        "corpus.jsonl",
        "{\"_id\": \"d1\", \"text\": \"ok\"}\n{\"_id\": \"d2\", \"text\": \"unterminated}\n",
    );
    let err = BeirDataset::load(t.path(), "test").expect_err("malformed");
    let shown = err.to_string();
    let (path, line, message) = parse_error(err);
    assert!(path.ends_with("corpus.jsonl"));
    assert_eq!(line, 2);
    assert!(message.starts_with("invalid JSON"), "{message}");
    assert!(shown.contains("corpus.jsonl:2: invalid JSON"), "{shown}");
}

#[test]
fn missing_and_mistyped_fields_are_reported() {
    let cases: &[(&str, &str)] = &[
        ("{\"title\": \"t\", \"text\": \"x\"}\n", "missing field \"_id\""),
        ("{\"_id\": \"a\"}\n", "missing field \"text\""),
        (
            "{\"_id\": [1], \"text\": \"x\"}\n",
            "\"_id\" must be a string or a number, found an array",
        ),
        ("{\"_id\": \"a\", \"text\": 5}\n", "\"text\" must be a string, found a number"),
        ("{\"_id\": \"\", \"text\": \"x\"}\n", "\"_id\" is empty"),
        ("[1, 2]\n", "expected a JSON object"),
    ];
    for (corpus, expected) in cases {
        let t = good();
        t.write("corpus.jsonl", corpus);
        let (_, line, message) =
            parse_error(BeirDataset::load(t.path(), "test").expect_err(corpus));
        assert_eq!(line, 1, "{corpus}");
        assert!(message.contains(expected), "{corpus}: {message}");
    }
}

#[test]
fn duplicate_ids_are_errors() {
    let t = good();
    t.write(
        "queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"a\"}\n\n{\"_id\": \"q1\", \"text\": \"b\"}\n",
    );
    let err = BeirDataset::load(t.path(), "test").expect_err("duplicate");
    assert!(
        err.to_string().ends_with("queries.jsonl:3: duplicate query id \"q1\" (first on line 1)"),
        "{err}"
    );
}

#[test]
fn malformed_qrels_lines_name_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("query-id\tcorpus-id\tscore\nq1\td1\n", 2, "expected 3 tab-separated fields"),
        ("q1\td1\t1\nq1 d1 1\n", 2, "found 1"),
        ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", 2, "score \"high\" is not an integer"),
        ("q1\td1\t1\nq1\td1\t2\n", 2, "judged twice"),
        ("q1\t\t1\n", 1, "empty query-id or corpus-id"),
    ];
    for (qrels, line, expected) in cases {
        let t = good();
        t.write("qrels/test.tsv", qrels);
        let (path, got_line, message) =
            parse_error(BeirDataset::load(t.path(), "test").expect_err(qrels));
        assert!(path.ends_with("qrels/test.tsv"), "{}", path.display());
        assert_eq!(got_line, *line, "{qrels:?}");
        assert!(message.contains(expected), "{qrels:?}: {message}");
    }
    // A repeated identical judgement is harmless.
    let t = good();
    t.write("qrels/test.tsv", "q1\td1\t1\nq1\td1\t1\n");
    assert!(BeirDataset::load(t.path(), "test").is_ok());
}

#[test]
fn missing_files_are_named() {
    let t = good();
    let err = BeirDataset::load(t.path(), "dev").expect_err("no dev split");
    match &err {
        EvalError::Io { path, .. } => assert!(path.ends_with("qrels/dev.tsv")),
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    assert!(err.to_string().contains("dev.tsv"), "{err}");

    fs::remove_file(t.path().join("corpus.jsonl")).expect("remove");
    let err = BeirDataset::load(t.path(), "test").expect_err("no corpus");
    assert!(err.to_string().contains("corpus.jsonl"), "{err}");
}

#[test]
fn invalid_utf8_names_the_line() {
    let t = good();
    fs::write(
        t.path().join("queries.jsonl"),
        b"{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q2\", \"text\": \"\xff\"}\n",
    )
    .expect("write");
    let (_, line, message) =
        parse_error(BeirDataset::load(t.path(), "test").expect_err("bad utf-8"));
    assert_eq!(line, 2);
    assert_eq!(message, "not valid UTF-8");
}
