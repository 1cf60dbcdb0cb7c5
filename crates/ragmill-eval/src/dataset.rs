//! Loading a BEIR-format dataset from disk.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a dataset could not be loaded. Every variant names the file; parse errors name the line.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read (missing, unreadable).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// One document of the corpus (`corpus.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusDoc {
    /// The document id (`_id`; numeric ids are kept as their decimal text).
    pub id: String,
    /// The title; empty when the dataset has none.
    pub title: String,
    /// The body text.
    pub text: String,
}

/// One query (`queries.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The query id (`_id`; numeric ids are kept as their decimal text).
    pub id: String,
    /// The query text.
    pub text: String,
}

/// A BEIR-format dataset: corpus, queries and relevance judgements for one split.
#[derive(Debug, Clone, Default)]
pub struct BeirDataset {
    /// Every document of `corpus.jsonl`, in file order.
    pub corpus: Vec<CorpusDoc>,
    /// The queries that have at least one judgement with score > 0 in the split, in
    /// `queries.jsonl` order.
    pub queries: Vec<Query>,
    /// query id → (document id → relevance), for the kept queries. Judgements with score ≤ 0 are
    /// kept as given (they never count as relevant).
    pub qrels: HashMap<String, HashMap<String, i32>>,
}

impl BeirDataset {
    /// Loads `dir/corpus.jsonl`, `dir/queries.jsonl` and `dir/qrels/{split}.tsv`.
    ///
    /// - JSON lines: `_id` may be a string or a number; `title` may be absent or null (empty);
    ///   `text` is required; other fields are ignored; blank lines are skipped. A duplicate id is
    ///   an error.
    /// - qrels: tab-separated `query-id  corpus-id  score` with an optional header line starting
    ///   with `query-id`; the score must be an integer. A query judged twice for the same
    ///   document with different scores is an error (a repeated identical line is harmless).
    /// - Only queries present in `queries.jsonl` that have at least one judgement with score > 0
    ///   are kept, as BEIR's loader does; judgements for queries not in `queries.jsonl` are
    ///   dropped. Judged documents missing from the corpus are kept (they count as relevant
    ///   documents nobody can retrieve, as in BEIR).
    pub fn load(dir: &Path, split: &str) -> Result<Self, EvalError> {
        let corpus_path = dir.join("corpus.jsonl");
        let corpus = read_jsonl(&corpus_path, |obj, line| {
            Ok(CorpusDoc {
                id: id_field(obj).map_err(|m| parse_err(&corpus_path, line, m))?,
                title: opt_string_field(obj, "title")
                    .map_err(|m| parse_err(&corpus_path, line, m))?,
                text: string_field(obj, "text").map_err(|m| parse_err(&corpus_path, line, m))?,
            })
        })?;
        check_unique(
            &corpus_path,
            corpus.iter().map(|(line, d)| (*line, d.id.as_str())),
            "document",
        )?;

        let queries_path = dir.join("queries.jsonl");
        let queries = read_jsonl(&queries_path, |obj, line| {
            Ok(Query {
                id: id_field(obj).map_err(|m| parse_err(&queries_path, line, m))?,
                text: string_field(obj, "text").map_err(|m| parse_err(&queries_path, line, m))?,
            })
        })?;
        check_unique(
            &queries_path,
            queries.iter().map(|(line, q)| (*line, q.id.as_str())),
            "query",
        )?;

        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        let mut qrels = read_qrels(&qrels_path)?;

        let queries: Vec<Query> = queries
            .into_iter()
            .map(|(_, q)| q)
            .filter(|q| qrels.get(&q.id).is_some_and(|judged| judged.values().any(|&r| r > 0)))
            .collect();
        let kept: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        qrels.retain(|qid, _| kept.contains(qid.as_str()));

        Ok(Self { corpus: corpus.into_iter().map(|(_, d)| d).collect(), queries, qrels })
    }
}

fn parse_err(path: &Path, line: usize, message: impl fmt::Display) -> EvalError {
    EvalError::Parse { path: path.to_path_buf(), line, message: message.to_string() }
}

fn read_file(path: &Path) -> Result<String, EvalError> {
    let bytes =
        fs::read(path).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|e| {
        // Name the line holding the first invalid byte.
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        parse_err(path, line, "not valid UTF-8")
    })
}

/// Reads a JSON-lines file, handing each non-blank line's object and 1-based line number to
/// `parse`. Returns the parsed items with their line numbers.
fn read_jsonl<T>(
    path: &Path,
    mut parse: impl FnMut(&serde_json::Map<String, Value>, usize) -> Result<T, EvalError>,
) -> Result<Vec<(usize, T)>, EvalError> {
    let content = read_file(path)?;
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_start_matches('\u{feff}').trim();
        if raw.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| parse_err(path, line, format!("invalid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(parse_err(path, line, "expected a JSON object"));
        };
        out.push((line, parse(&obj, line)?));
    }
    Ok(out)
}

fn id_field(obj: &serde_json::Map<String, Value>) -> Result<String, String> {
    match obj.get("_id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err("field \"_id\" is empty".into()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => {
            Err(format!("field \"_id\" must be a string or a number, found {}", kind(other)))
        }
        None => Err("missing field \"_id\"".into()),
    }
}

fn string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, String> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("field \"{name}\" must be a string, found {}", kind(other))),
        None => Err(format!("missing field \"{name}\"")),
    }
}

fn opt_string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => string_field(obj, name),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_unique<'a>(
    path: &Path,
    ids: impl Iterator<Item = (usize, &'a str)>,
    what: &str,
) -> Result<(), EvalError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, id) in ids {
        if let Some(first) = seen.insert(id, line) {
            return Err(parse_err(
                path,
                line,
                format!("duplicate {what} id {id:?} (first on line {first})"),
            ));
        }
    }
    Ok(())
}

fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, i32>>, EvalError> {
    let content = read_file(path)?;
    let mut qrels: HashMap<String, HashMap<String, i32>> = HashMap::new();
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if raw.trim().is_empty() || (line == 1 && raw.starts_with("query-id")) {
            continue;
        }
        let fields: Vec<&str> = raw.split('\t').collect();
        let [qid, did, score] = fields[..] else {
            return Err(parse_err(
                path,
                line,
                format!(
                    "expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                    fields.len()
                ),
            ));
        };
        let (qid, did, score) = (qid.trim(), did.trim(), score.trim());
        if qid.is_empty() || did.is_empty() {
            return Err(parse_err(path, line, "empty query-id or corpus-id"));
        }
        let score: i32 = score
            .parse()
            .map_err(|_| parse_err(path, line, format!("score {score:?} is not an integer")))?;
        match qrels.entry(qid.to_string()).or_default().insert(did.to_string(), score) {
            Some(previous) if previous != score => {
                return Err(parse_err(
                    path,
                    line,
                    format!(
                        "query {qid:?} judged twice for document {did:?}, with scores {previous} and {score}"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(qrels)
}
