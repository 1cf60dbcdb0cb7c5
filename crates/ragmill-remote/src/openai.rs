//! A client for one OpenAI-compatible server: `POST {url}/v1/embeddings`.
//!
//! Request `{"model": M, "input": [texts], "encoding_format": "float"}` with an optional
//! `Authorization: Bearer KEY`; answer `{"data": [{"embedding": [floats], "index": i}, ...],
//! "model": ...}`. Servers may list `data` in any order (each item says its `index`), and some
//! send base64 (little-endian f32) even when asked for floats; both are handled. Errors come as
//! an HTTP status with `{"error": {"message": ...}}`.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::BackendKind;
use crate::error::RemoteError;
use crate::http;
use crate::target::{DEFAULT_TIMEOUT, Target, remote_client};
use crate::vectors;

/// Embeds through one OpenAI-compatible server. Implements [`Embedder`] for a known dimension;
/// sends a batch as one request (splitting and retrying are the [`Pool`](crate::Pool)'s
/// business).
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    target: Target,
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

remote_client!(OpenAiClient);

/// `{base}/v1/{resource}`, or `{base}/{resource}` when the trimmed base already ends in `/v1`.
pub(crate) fn api_url(base: &str, resource: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/{resource}")
    } else {
        format!("{base}/v1/{resource}")
    }
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
        Self::new(url, model, api_key, 0)?.probe().await
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        url: &str,
        model: &str,
        api_key: Option<String>,
        dimensions: usize,
        timeout: Duration,
    ) -> Self {
        let path = |base: &str| api_url(base, "embeddings");
        let target = Target::new(http, BackendKind::OpenAi, url, path, model, dimensions, timeout);
        OpenAiClient { target }.with_api_key(api_key)
    }

    /// Embeds `texts` in one request and checks the answer: one vector per text (put back in
    /// `index` order), all of `dimensions` floats (or all of one dimension, when `None`),
    /// finite; L2-normalised.
    pub async fn request(
        &self,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        let t = &self.target;
        let body = Request { model: &t.model, input: texts, encoding_format: "float" };
        let answer: Response = t.post(&body).send().await?;
        let ordered = in_index_order(&t.url, answer.data, texts.len())?;
        vectors::finish(&t.url, ordered, texts.len(), dimensions)
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
