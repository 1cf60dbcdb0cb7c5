//! A client for one OpenAI-compatible server: `POST {url}/v1/embeddings`.
//!
//! Request `{"model": M, "input": [texts], "encoding_format": "float"}` with an optional
//! `Authorization: Bearer KEY`; answer `{"data": [{"embedding": [floats], "index": i}, ...],
//! "model": ...}`. Servers may list `data` in any order (each item says its `index`), and some
//! send base64 (little-endian f32) even when asked for floats; both are handled. Errors come as
//! an HTTP status with `{"error": {"message": ...}}`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use ragmill_core::{EmbedError, Embedder, ModelInfo};
use serde::{Deserialize, Serialize};

use crate::config::BackendKind;
use crate::error::RemoteError;
use crate::http::{self, Post};
use crate::ollama::DEFAULT_TIMEOUT;
use crate::vectors;

/// Embeds through one OpenAI-compatible server. Implements [`Embedder`] for a known dimension;
/// sends a batch as one request (splitting and retrying are the [`Pool`](crate::Pool)'s
/// business).
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    url: String,
    embed_url: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    info: ModelInfo,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Encoded,
    index: usize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Encoded {
    Floats(Vec<f32>),
    Base64(String),
}

impl OpenAiClient {
    /// A client for `model` on the server at `url` (`https://api.openai.com` or
    /// `https://api.openai.com/v1`: with or without the `/v1`), whose vectors have `dimensions`
    /// floats. Does no I/O.
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        dimensions: usize,
    ) -> Result<Self, RemoteError> {
        crate::config::check_url(url).map_err(RemoteError::Config)?;
        Ok(Self::with_http(http::client()?, url, model, api_key, dimensions, DEFAULT_TIMEOUT))
    }

    /// Like [`new`](Self::new), learning the dimension by embedding a short text.
    pub async fn connect(
        url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<Self, RemoteError> {
        let mut client = Self::new(url, model, api_key, 0)?;
        let probe = client.request(&[crate::PROBE_TEXT.to_owned()], None).await?;
        client.info.dimensions = probe.first().map_or(0, Vec::len);
        Ok(client)
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        url: &str,
        model: &str,
        api_key: Option<String>,
        dimensions: usize,
        timeout: Duration,
    ) -> Self {
        let endpoint = url.trim_end_matches('/').to_owned();
        let url = if endpoint.ends_with("/v1") {
            format!("{endpoint}/embeddings")
        } else {
            format!("{endpoint}/v1/embeddings")
        };
        let name = format!("{}:{model}", BackendKind::OpenAi);
        OpenAiClient {
            http,
            url: endpoint,
            embed_url: url,
            model: model.to_owned(),
            api_key,
            timeout,
            info: ModelInfo {
                id: name.clone(),
                space: name,
                dimensions,
                max_tokens: 512,
                preferred_batch: BackendKind::OpenAi.default_batch_size(),
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

    /// Embeds `texts` in one request and checks the answer: one vector per text (put back in
    /// `index` order), all of `dimensions` floats (or all of one dimension, when `None`),
    /// finite; L2-normalised.
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
            body: &Request { model: &self.model, input: texts, encoding_format: "float" },
            timeout: self.timeout,
        }
        .send()
        .await?;
        let ordered = in_index_order(&self.url, answer.data, texts.len())?;
        vectors::finish(&self.url, ordered, texts.len(), dimensions)
    }
}

/// The vectors of `items` placed by their `index`, decoded from base64 where need be. A count
/// other than `want` is left for [`vectors::finish`] to report as a shape error.
fn in_index_order(url: &str, items: Vec<Item>, want: usize) -> Result<Vec<Vec<f32>>, RemoteError> {
    let invalid = |message: String| RemoteError::InvalidResponse { url: url.to_owned(), message };
    if items.len() != want {
        return items.into_iter().map(|i| decode(i.embedding).map_err(invalid)).collect();
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; want];
    for item in items {
        let slot = slots.get_mut(item.index).ok_or_else(|| {
            invalid(format!("index {} out of range for {want} inputs", item.index))
        })?;
        if slot.is_some() {
            return Err(invalid(format!("index {} appears twice", item.index)));
        }
        *slot = Some(decode(item.embedding).map_err(invalid)?);
    }
    // `want` items, no index twice, none out of range: every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

fn decode(e: Encoded) -> Result<Vec<f32>, String> {
    match e {
        Encoded::Floats(v) => Ok(v),
        Encoded::Base64(s) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| format!("bad base64 embedding: {e}"))?;
            if bytes.len() % 4 != 0 {
                return Err(format!("base64 embedding of {} bytes is not f32s", bytes.len()));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        }
    }
}

#[async_trait]
impl Embedder for OpenAiClient {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: usize, v: &[f32]) -> Item {
        Item { embedding: Encoded::Floats(v.to_vec()), index }
    }

    #[test]
    fn index_order_and_base64() {
        let b64 = base64::engine::general_purpose::STANDARD
            .encode([1.5f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        let items = vec![
            item(2, &[3.0]),
            Item { embedding: Encoded::Base64(b64), index: 0 },
            item(1, &[2.0]),
        ];
        let out = in_index_order("u", items, 3).expect("valid");
        assert_eq!(out, vec![vec![1.5, -2.0], vec![2.0], vec![3.0]]);

        let dup = in_index_order("u", vec![item(0, &[1.0]), item(0, &[1.0])], 2);
        assert!(dup.expect_err("dup").to_string().contains("appears twice"));
        let out_of_range = in_index_order("u", vec![item(5, &[1.0])], 1);
        assert!(out_of_range.expect_err("range").to_string().contains("out of range"));
        let bad = decode(Encoded::Base64("AAA=".into()));
        assert!(bad.expect_err("3 bytes").contains("not f32s"));
    }
}
