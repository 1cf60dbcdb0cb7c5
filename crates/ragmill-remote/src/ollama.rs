//! A client for one Ollama server: `POST {url}/api/embed`.
//!
//! Request `{"model": M, "input": [texts]}`, answer `{"embeddings": [[floats], ...]}` in input
//! order; errors come as an HTTP status with `{"error": "message"}`.

use std::time::Duration;

use async_trait::async_trait;
use ragmill_core::{EmbedError, Embedder, ModelInfo};
use serde::{Deserialize, Serialize};

use crate::config::BackendKind;
use crate::error::RemoteError;
use crate::http::{self, Post};
use crate::vectors;

/// The default limit on one request of a standalone client (the pool sets its own).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Embeds through one Ollama server. Implements [`Embedder`] for a known dimension; sends a
/// batch as one request (splitting and retrying are the [`Pool`](crate::Pool)'s business).
#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: reqwest::Client,
    url: String,
    embed_url: String,
    model: String,
    /// Sent as `Authorization: Bearer` when set: Ollama ignores it, but an authenticating
    /// proxy in front of it (or a ragmill `embed-server --api-key`) needs it.
    api_key: Option<String>,
    timeout: Duration,
    info: ModelInfo,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct Response {
    embeddings: Vec<Vec<f32>>,
}

impl OllamaClient {
    /// A client for `model` on the server at `url` (e.g. `http://localhost:11434`), whose
    /// vectors have `dimensions` floats. Does no I/O.
    pub fn new(url: &str, model: &str, dimensions: usize) -> Result<Self, RemoteError> {
        crate::config::check_url(url).map_err(RemoteError::Config)?;
        Ok(Self::with_http(http::client()?, url, model, dimensions, DEFAULT_TIMEOUT))
    }

    /// Like [`new`](Self::new), learning the dimension by embedding a short text.
    pub async fn connect(url: &str, model: &str) -> Result<Self, RemoteError> {
        let mut client = Self::new(url, model, 0)?;
        let probe = client.request(&[crate::PROBE_TEXT.to_owned()], None).await?;
        client.info.dimensions = probe.first().map_or(0, Vec::len);
        Ok(client)
    }

    /// Sends `key` as a Bearer token with every request.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        url: &str,
        model: &str,
        dimensions: usize,
        timeout: Duration,
    ) -> Self {
        let endpoint = url.trim_end_matches('/').to_owned();
        let name = format!("{}:{model}", BackendKind::Ollama);
        OllamaClient {
            http,
            embed_url: format!("{endpoint}/api/embed"),
            url: endpoint,
            model: model.to_owned(),
            api_key: None,
            timeout,
            info: ModelInfo {
                id: name.clone(),
                space: name,
                dimensions,
                max_tokens: 512,
                preferred_batch: BackendKind::Ollama.default_batch_size(),
            },
        }
    }

    /// Sets the limit on one request (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the `max_tokens` reported by [`Embedder::info`] (default 512).
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.info.max_tokens = max_tokens;
        self
    }

    /// The server's base URL, as configured (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Embeds `texts` in one request and checks the answer: one vector per text, all of
    /// `dimensions` floats (or all of one dimension, when `None`), finite; L2-normalised.
    pub async fn request(
        &self,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        let answer: Response = Post {
            http: &self.http,
            endpoint: &self.url,
            url: &self.embed_url,
            bearer: self.api_key.as_deref(),
            body: &Request { model: &self.model, input: texts },
            timeout: self.timeout,
        }
        .send()
        .await?;
        vectors::finish(&self.url, answer.embeddings, texts.len(), dimensions)
    }
}

#[async_trait]
impl Embedder for OllamaClient {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.request(&texts, Some(self.info.dimensions)).await?)
    }
}
