//! A client for one Ollama server: `POST {url}/api/embed`.
//!
//! Request `{"model": M, "input": [texts]}`, answer `{"embeddings": [[floats], ...]}` in input
//! order; errors come as an HTTP status with `{"error": "message"}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::BackendKind;
use crate::error::RemoteError;
use crate::http;
use crate::target::{DEFAULT_TIMEOUT, Target, remote_client};
use crate::vectors;

/// Embeds through one Ollama server. Implements [`Embedder`] for a known dimension; sends a
/// batch as one request (splitting and retrying are the [`Pool`](crate::Pool)'s business).
/// An API key, if set, goes as a Bearer token: Ollama ignores it, but an authenticating proxy
/// in front of it (or a ragmill `embed-server --api-key`) needs it.
#[derive(Debug, Clone)]
pub struct OllamaClient {
    target: Target,
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

remote_client!(OllamaClient);

impl OllamaClient {
    /// A client for `model` on the server at `url` (e.g. `http://localhost:11434`), whose
    /// vectors have `dimensions` floats. Does no I/O.
    pub fn new(url: &str, model: &str, dimensions: usize) -> Result<Self, RemoteError> {
        crate::config::check_url(url).map_err(RemoteError::Config)?;
        Ok(Self::with_http(http::client()?, url, model, dimensions, DEFAULT_TIMEOUT))
    }

    /// Like [`new`](Self::new), learning the dimension by embedding a short text.
    pub async fn connect(url: &str, model: &str) -> Result<Self, RemoteError> {
        Self::new(url, model, 0)?.probe().await
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        url: &str,
        model: &str,
        dimensions: usize,
        timeout: Duration,
    ) -> Self {
        let path = |base: &str| format!("{base}/api/embed");
        let target = Target::new(http, BackendKind::Ollama, url, path, model, dimensions, timeout);
        OllamaClient { target }
    }

    /// Embeds `texts` in one request and checks the answer: one vector per text, all of
    /// `dimensions` floats (or all of one dimension, when `None`), finite; L2-normalised.
    pub async fn request(
        &self,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        let t = &self.target;
        let answer: Response = t.post(&Request { model: &t.model, input: texts }).send().await?;
        vectors::finish(&t.url, answer.embeddings, texts.len(), dimensions)
    }
}
