//! `ragmill ingest --server URL --api-key KEY`: extract and chunk here, send only the chunks.
//!
//! Each file is read, extracted (PDF and DOCX in the sandboxed child process, as locally) and
//! chunked with the model's tokenizer on this machine; the server receives the chunks with the
//! document's name, hash, size and kind at `POST /v1/documents/chunked`, embeds what its cache
//! lacks and stores the document. Less to upload than the file for PDFs and DOCX, and no
//! extraction or chunking on the server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ragmill_chunk::{Chunker, ChunkerConfig};
use ragmill_core::{ContentHash, Progress, Stage};
use ragmill_embed::ModelDir;
use ragmill_extract::Extractor;
use ragmill_pipeline::{Input, Prechunked, Source};
use serde_json::{Value, json};

use crate::app;
use crate::cli::{ChunkArgs, Global};

/// What became of one file: its counts (`chunks`, `embedded`, `cache_hits`, `unchanged`), or
/// a code and a message. Local and remote runs report alike.
pub type Outcome = Result<Value, (String, String)>;

/// The client side of a remote ingest.
pub struct Remote {
    url: String,
    key: String,
    http: reqwest::Client,
    extractor: Extractor,
    chunker: Arc<Chunker>,
}

impl Remote {
    /// Sets up extraction and chunking with the local model directory's tokenizer (which must
    /// be the server model's, for the token counts to agree; the server checks them).
    pub fn new(g: &Global, url: &str, key: &str, chunking: ChunkArgs) -> Result<Self> {
        let dir = ModelDir::open(&g.model_dir)
            .context("chunking on this machine needs the model's tokenizer (--model-dir)")?;
        let window = dir.max_seq_length;
        let config = ChunkerConfig {
            max_tokens: window,
            target_tokens: chunking.chunk_tokens.min(window),
            overlap_tokens: chunking.chunk_overlap,
        };
        let chunker =
            Chunker::from_file(&dir.tokenizer(), config).context("setting up the chunker")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            http,
            extractor: app::extractor()?,
            chunker: Arc::new(chunker),
        })
    }

    /// Asks the server who the key belongs to (`GET /v1/me`) before anything is sent, so that
    /// a wrong key, a wrong URL or a key of another user fails the run once, with one clear
    /// line, instead of once per file. A server without `/v1/me` (404) is let through.
    pub async fn check_key(&self, user: &str) -> Result<()> {
        let response = self
            .http
            .get(format!("{}/v1/me", self.url))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.url))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => {}
            401 | 403 => bail!(
                "the server at {} refused the API key (HTTP {status}{}): check --api-key \
                 (RAGMILL_API_KEY); nothing was sent",
                self.url,
                value["error"]["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default()
            ),
            404 => return Ok(()),
            _ => bail!(
                "the server at {} answered HTTP {status} when asked who the API key belongs to{}",
                self.url,
                value["error"]["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default()
            ),
        }
        match value["user"].as_str() {
            Some(owner) if owner != user.trim() => bail!(
                "the API key belongs to user {owner:?} on {}, not {user:?}: the documents would \
                 go to {owner:?}'s collection; nothing was sent",
                self.url
            ),
            _ => Ok(()),
        }
    }

    /// Extracts and chunks one input here and sends its chunks, reporting its stages (the
    /// end is the caller's to report).
    pub async fn one(&self, input: Input, progress: &(dyn Fn(Progress) + Sync)) -> Outcome {
        let fail = |code: &str, message: String| (code.to_owned(), message);
        let bytes = match &input.source {
            Source::Path(p) => {
                tokio::fs::read(p).await.map_err(|e| fail("read_failed", e.to_string()))?
            }
            Source::Bytes(b) => b.clone(),
        };
        let (hash, size) = (ContentHash::of(&bytes).to_hex(), bytes.len() as u64);
        progress(Progress { stage: Stage::Extracting, done: 0, total: 1 });
        let doc = self
            .extractor
            .extract(&input.name, bytes)
            .await
            .map_err(|e| fail(e.code(), e.to_string()))?;
        progress(Progress { stage: Stage::Chunking, done: 0, total: 1 });
        let chunker = Arc::clone(&self.chunker);
        let kind = doc.kind;
        let chunks = tokio::task::spawn_blocking(move || chunker.chunk(&doc))
            .await
            .map_err(|e| fail("internal", e.to_string()))?
            .map_err(|e| fail("chunking_failed", e.to_string()))?;
        if chunks.is_empty() {
            return Err(fail("no_text", "the document has no text to index".into()));
        }
        let total = chunks.len();
        progress(Progress { stage: Stage::Embedding, done: 0, total });
        let body = Prechunked { name: input.name, content_hash: hash, size, kind, chunks };
        let response = self
            .http
            .post(format!("{}/v1/documents/chunked", self.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .map_err(|e| fail("server_unreachable", format!("{}: {e}", self.url)))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let code = value["error"]["code"].as_str().unwrap_or("server_error");
        let message = value["error"]["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        Err(fail(code, message))
    }
}

/// How a document ended: `ready`, `unchanged` or `failed`.
pub fn state(outcome: &Outcome) -> &'static str {
    match outcome {
        Ok(v) if v["unchanged"].as_bool() == Some(true) => "unchanged",
        Ok(_) => "ready",
        Err(_) => "failed",
    }
}

/// The run's counts, local or remote.
pub fn summarise(outcomes: &[(String, Outcome)]) -> Value {
    let (mut ready, mut unchanged, mut chunks, mut embedded, mut hits) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for (name, outcome) in outcomes {
        match outcome {
            Ok(v) if v["unchanged"].as_bool() == Some(true) => unchanged += 1,
            Ok(v) => {
                ready += 1;
                chunks += v["chunks"].as_u64().unwrap_or(0);
                embedded += v["embedded"].as_u64().unwrap_or(0);
                hits += v["cache_hits"].as_u64().unwrap_or(0);
            }
            Err((code, message)) => {
                failures.push(json!({"document": name, "code": code, "message": message}))
            }
        }
    }
    json!({
        "documents": outcomes.len(),
        "ingested": ready,
        "unchanged": unchanged,
        "failed": failures.len(),
        "chunks": chunks,
        "embedded": embedded,
        "cache_hits": hits,
        "failures": failures,
    })
}
