//! A [`Reranker`] over an HTTP rerank endpoint, in either of the two shapes servers speak.
//!
//! - [`RerankFormat::Tei`], Hugging Face text-embeddings-inference (and servers copying it):
//!   `POST {url}` with `{"query": q, "texts": [..], "raw_scores": false, "return_text": false,
//!   "truncate": true}`, answered `[{"index": i, "score": s}, ..]`, best first.
//! - [`RerankFormat::Cohere`], Cohere's and Jina's APIs (and vLLM, Infinity, LiteLLM):
//!   `POST {url}` with `{"model": m, "query": q, "documents": [..], "top_n": n,
//!   "return_documents": false}`, answered `{"results": [{"index": i, "relevance_score": s}, ..]}`.
//!
//! Every answer is checked and put back in input order: exactly one finite score per text, no
//! index out of range or twice; anything else is [`RerankError::Invalid`]. Texts are sent in
//! batches of at most [`RerankConfig::max_batch`] (TEI refuses more than 32 by default), all at
//! once; an answer is read up to [`MAX_RERANK_ANSWER_BYTES`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ragmill_core::{RerankError, Reranker};
use serde::{Deserialize, Serialize};

use crate::config::{check_url, millis};
use crate::error::{RemoteError, one_line};
use crate::http;

/// The most bytes read of one answer (a few hundred scores take a few KiB).
pub const MAX_RERANK_ANSWER_BYTES: usize = 4 << 20;

/// The default limit on one request: reranking sits on a search's path.
pub const DEFAULT_RERANK_TIMEOUT: Duration = Duration::from_secs(10);

/// Which shape of rerank API an endpoint speaks. Read as `tei`, `cohere` or `jina` (the same as
/// `cohere`), any case; written as `tei` or `cohere`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RerankFormat {
    /// Hugging Face TEI's `POST /rerank`: `texts` in, `[{index, score}]` out.
    Tei,
    /// Cohere's and Jina's `POST /v1/rerank`: `documents` in, `{results: [{index,
    /// relevance_score}]}` out.
    #[serde(alias = "jina")]
    Cohere,
}

impl RerankFormat {
    /// The name used in configuration: `tei` or `cohere`.
    pub fn as_str(self) -> &'static str {
        match self {
            RerankFormat::Tei => "tei",
            RerankFormat::Cohere => "cohere",
        }
    }

    /// Texts per request when the configuration does not say: 32 for TEI (its default
    /// `--max-client-batch-size`), 100 for Cohere (one search unit).
    pub fn default_max_batch(self) -> usize {
        match self {
            RerankFormat::Tei => 32,
            RerankFormat::Cohere => 100,
        }
    }
}

impl fmt::Display for RerankFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RerankFormat {
    type Err = RemoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tei" => Ok(RerankFormat::Tei),
            "cohere" | "jina" => Ok(RerankFormat::Cohere),
            _ => Err(RemoteError::Config(format!(
                "unknown rerank format {s:?} (expected tei, cohere or jina)"
            ))),
        }
    }
}

/// One rerank endpoint. Readable with serde (`timeout_ms` in milliseconds).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankConfig {
    /// The full endpoint URL, e.g. `http://gpu-1:8080/rerank` or `https://api.jina.ai/v1/rerank`.
    pub url: String,
    /// The API's shape.
    pub format: RerankFormat,
    /// The model (Cohere/Jina: sent when set; TEI serves one model and is sent none).
    #[serde(default)]
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer <key>`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Limit on one request (connect, send, answer). Default [`DEFAULT_RERANK_TIMEOUT`].
    #[serde(rename = "timeout_ms", default = "default_timeout", deserialize_with = "millis")]
    pub timeout: Duration,
    /// Texts per request; default [`RerankFormat::default_max_batch`].
    #[serde(default)]
    pub max_batch: Option<usize>,
}

fn default_timeout() -> Duration {
    DEFAULT_RERANK_TIMEOUT
}

impl RerankConfig {
    /// An endpoint with no model, no key and the default timeout and batch size.
    pub fn new(url: impl Into<String>, format: RerankFormat) -> Self {
        RerankConfig {
            url: url.into(),
            format,
            model: None,
            api_key: None,
            timeout: DEFAULT_RERANK_TIMEOUT,
            max_batch: None,
        }
    }

    /// The batch size in effect (configured or the format's default).
    pub fn effective_max_batch(&self) -> usize {
        self.max_batch.unwrap_or_else(|| self.format.default_max_batch())
    }

    /// Checks the settings: an http(s) URL (https needs the `rustls` feature), a non-empty
    /// model when one is set, a positive timeout and batch size.
    pub fn validate(&self) -> Result<(), String> {
        check_url(&self.url)?;
        if self.model.as_deref().is_some_and(str::is_empty) {
            return Err(format!("{}: empty rerank model name", self.url));
        }
        if self.timeout.is_zero() || self.effective_max_batch() == 0 {
            return Err(format!("{}: rerank timeout and max_batch must be positive", self.url));
        }
        Ok(())
    }
}

// Hand-written so that an API key never reaches a log line.
impl fmt::Debug for RerankConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RerankConfig")
            .field("url", &self.url)
            .field("format", &self.format)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// Reranks through one HTTP endpoint. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct HttpReranker {
    http: reqwest::Client,
    config: RerankConfig,
    /// `format[:model]@url`, for [`Reranker::name`].
    name: String,
}

#[derive(Serialize)]
struct TeiRequest<'a> {
    query: &'a str,
    texts: &'a [String],
    raw_scores: bool,
    return_text: bool,
    truncate: bool,
}

#[derive(Serialize)]
struct CohereRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    query: &'a str,
    documents: &'a [String],
    top_n: usize,
    return_documents: bool,
}

#[derive(Deserialize)]
struct TeiItem {
    index: usize,
    score: f32,
}

#[derive(Deserialize)]
struct CohereAnswer {
    results: Vec<CohereItem>,
}

#[derive(Deserialize)]
struct CohereItem {
    index: usize,
    relevance_score: f32,
}

impl HttpReranker {
    /// A reranker for the endpoint `config` describes, once [`RerankConfig::validate`] passes.
    /// Does no I/O.
    pub fn new(config: RerankConfig) -> Result<Self, RemoteError> {
        config.validate().map_err(RemoteError::Config)?;
        let name = match &config.model {
            Some(model) => format!("{}:{model}@{}", config.format, config.url),
            None => format!("{}@{}", config.format, config.url),
        };
        Ok(HttpReranker { http: http::client()?, config, name })
    }

    /// The settings it was built with.
    pub fn config(&self) -> &RerankConfig {
        &self.config
    }

    /// Scores one batch in one request, in input order.
    async fn request(&self, query: &str, texts: &[String]) -> Result<Vec<f32>, RemoteError> {
        let c = &self.config;
        let body = match c.format {
            RerankFormat::Tei => serde_json::to_vec(&TeiRequest {
                query,
                texts,
                raw_scores: false,
                return_text: false,
                truncate: true,
            }),
            RerankFormat::Cohere => serde_json::to_vec(&CohereRequest {
                model: c.model.as_deref(),
                query,
                documents: texts,
                top_n: texts.len(),
                return_documents: false,
            }),
        };
        let body = body.map_err(|e| RemoteError::Config(format!("rerank request: {e}")))?;
        let transport = |e: reqwest::Error| http::transport_error(&c.url, c.timeout, &e);
        let mut request = self
            .http
            .post(&c.url)
            .timeout(c.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &c.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let answer = read_bounded(&c.url, c.timeout, response).await;
        if !status.is_success() {
            return Err(http::status_error(&c.url, status, answer.as_deref().unwrap_or_default()));
        }
        let answer = answer?;
        let invalid = |e: serde_json::Error| invalid(&c.url, one_line(&e.to_string(), 200));
        let scored: Vec<(usize, f32)> = match c.format {
            RerankFormat::Tei => serde_json::from_slice::<Vec<TeiItem>>(&answer)
                .map_err(invalid)?
                .into_iter()
                .map(|i| (i.index, i.score))
                .collect(),
            RerankFormat::Cohere => serde_json::from_slice::<CohereAnswer>(&answer)
                .map_err(invalid)?
                .results
                .into_iter()
                .map(|i| (i.index, i.relevance_score))
                .collect(),
        };
        in_input_order(&c.url, scored, texts.len())
    }
}

#[async_trait]
impl Reranker for HttpReranker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn rerank(&self, query: &str, texts: Vec<String>) -> Result<Vec<f32>, RerankError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batches = texts.chunks(self.config.effective_max_batch());
        let scores = futures::future::try_join_all(batches.map(|b| self.request(query, b))).await?;
        Ok(scores.concat())
    }
}

fn invalid(url: &str, message: String) -> RemoteError {
    RemoteError::InvalidResponse { url: url.to_owned(), message }
}

/// The body of `response`, or an error past [`MAX_RERANK_ANSWER_BYTES`] (by its
/// `Content-Length`, or as it streams in).
async fn read_bounded(
    url: &str,
    timeout: Duration,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, RemoteError> {
    let too_large = || invalid(url, format!("answer over {MAX_RERANK_ANSWER_BYTES} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_RERANK_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| http::transport_error(url, timeout, &e))?
    {
        if body.len() + chunk.len() > MAX_RERANK_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The scores of `scored` (index, score) placed by index: exactly one finite score for each of
/// `want` texts.
fn in_input_order(
    url: &str,
    scored: Vec<(usize, f32)>,
    want: usize,
) -> Result<Vec<f32>, RemoteError> {
    let got = scored.len();
    let mut slots: Vec<Option<f32>> = vec![None; want];
    for (index, score) in scored {
        let Some(slot) = slots.get_mut(index) else {
            return Err(invalid(url, format!("index {index} out of range for {want} texts")));
        };
        if slot.is_some() {
            return Err(invalid(url, format!("index {index} appears twice")));
        }
        if !score.is_finite() {
            return Err(invalid(url, format!("score of index {index} is not finite")));
        }
        *slot = Some(score);
    }
    slots
        .iter()
        .enumerate()
        .map(|(index, slot)| {
            slot.ok_or_else(|| {
                invalid(url, format!("no score for index {index} ({got} scores for {want} texts)"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::fake::{FakeReranker, FakeServer, RerankFault, rerank_score};

    const QUERY: &str = "rust borrow checker";
    /// Scores 0, 1, 1/3 and 2/3 against [`QUERY`]: ranked 1, 3, 2, 0.
    const TEXTS: [&str; 4] = [
        "a guide to gardening",
        "The Rust borrow checker, explained",
        "rust for beginners",
        "checker boards and borrow rules",
    ];

    fn texts() -> Vec<String> {
        TEXTS.map(str::to_owned).to_vec()
    }

    fn config(server: &FakeServer, format: RerankFormat) -> RerankConfig {
        let path = match format {
            RerankFormat::Tei => "rerank",
            RerankFormat::Cohere => "v1/rerank",
        };
        RerankConfig::new(format!("{}/{path}", server.url()), format)
    }

    async fn rerank(config: RerankConfig) -> Result<Vec<f32>, RerankError> {
        HttpReranker::new(config).expect("config").rerank(QUERY, texts()).await
    }

    /// The indices of `scores`, best first.
    fn ranking(scores: &[f32]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        order
    }

    #[tokio::test]
    async fn both_formats_score_in_input_order() {
        let server = FakeReranker::with_key("k").await.expect("start");
        let expected: Vec<f32> = TEXTS.iter().map(|t| rerank_score(QUERY, t)).collect();
        for format in [RerankFormat::Tei, RerankFormat::Cohere] {
            let config = RerankConfig {
                model: Some("rerank-m".into()),
                api_key: Some("k".into()),
                ..config(&server, format)
            };
            let scores = rerank(config).await.expect("reranked");
            assert_eq!(scores, expected, "{format}");
            assert_eq!(ranking(&scores), vec![1, 3, 2, 0], "{format}");

            let (body, auth) = server.last_rerank_request().expect("request");
            assert_eq!(auth.as_deref(), Some("Bearer k"));
            assert_eq!(body["query"], QUERY);
            if format == RerankFormat::Tei {
                assert_eq!(body["texts"].as_array().map(Vec::len), Some(4));
                assert_eq!((&body["truncate"], &body["raw_scores"]), (&json!(true), &json!(false)));
                assert!(body.get("model").is_none(), "TEI is sent no model: {body}");
            } else {
                assert_eq!(body["documents"].as_array().map(Vec::len), Some(4));
                assert_eq!((&body["model"], &body["top_n"]), (&json!("rerank-m"), &json!(4)));
                assert_eq!(body["return_documents"], json!(false));
            }
        }
        assert_eq!(server.rerank_requests(), 2);
    }

    #[tokio::test]
    async fn large_inputs_go_in_batches_and_none_sends_nothing() {
        let server = FakeReranker::start().await.expect("start");
        let many: Vec<String> = (0..5).flat_map(|_| texts()).collect();
        let config = RerankConfig { max_batch: Some(3), ..config(&server, RerankFormat::Tei) };
        let reranker = HttpReranker::new(config).expect("config");
        let scores = reranker.rerank(QUERY, many.clone()).await.expect("rerank");
        let expected: Vec<f32> = many.iter().map(|t| rerank_score(QUERY, t)).collect();
        assert_eq!(scores, expected);
        assert_eq!(server.rerank_requests(), 7, "20 texts in batches of 3");

        assert_eq!(reranker.rerank(QUERY, Vec::new()).await, Ok(Vec::new()));
        assert_eq!(server.rerank_requests(), 7, "no texts, no request");
    }

    /// Asserts that `result` failed, retryably or not, with a message containing `part`.
    fn check_error(result: Result<Vec<f32>, RerankError>, retryable: bool, part: &str) {
        let error = result.expect_err(part);
        assert_eq!(matches!(error, RerankError::Unavailable(_)), retryable, "{error}");
        assert!(error.to_string().contains(part), "{part:?} not in: {error}");
    }

    #[tokio::test]
    async fn wrong_answers_are_invalid() {
        let server = FakeReranker::start().await.expect("start");
        let cases = [
            (RerankFault::MissingOne, "no score for index 0 (3 scores for 4 texts)"),
            (RerankFault::OutOfRange, "index 4 out of range for 4 texts"),
            (RerankFault::Duplicate, "index 1 appears twice"),
            (RerankFault::NonFinite, "score of index 1 is not finite"),
            (RerankFault::NotJson, "expected value"),
            (RerankFault::Oversized, "answer over 4194304 bytes"),
        ];
        for format in [RerankFormat::Tei, RerankFormat::Cohere] {
            for (fault, part) in cases {
                server.set_rerank_fault(Some(fault));
                check_error(rerank(config(&server, format)).await, false, part);
            }
        }
    }

    #[tokio::test]
    async fn error_statuses_by_kind() {
        let server = FakeReranker::with_key("right").await.expect("start");
        let wrong_key =
            RerankConfig { api_key: Some("wrong".into()), ..config(&server, RerankFormat::Cohere) };
        check_error(rerank(wrong_key).await, false, "HTTP 401");
        server.set_failing(true);
        let right_key =
            RerankConfig { api_key: Some("right".into()), ..config(&server, RerankFormat::Tei) };
        check_error(rerank(right_key).await, true, "HTTP 500: fake failure");

        let cases = [
            (503, "", true, "HTTP 503: Service Unavailable"),
            (429, r#"{"message": "slow down"}"#, true, "HTTP 429: slow down"),
            (400, r#"{"message": "unknown model"}"#, false, "HTTP 400: unknown model"),
            (404, "Not Found", false, "HTTP 404"),
        ];
        for (status, body, retryable, part) in cases {
            server.set_canned(status, body);
            check_error(rerank(config(&server, RerankFormat::Cohere)).await, retryable, part);
        }
    }

    #[tokio::test]
    async fn no_server_or_no_answer_is_unavailable() {
        let server = FakeReranker::start().await.expect("start");
        let timeout = Duration::from_millis(100);
        let slow = RerankConfig { timeout, ..config(&server, RerankFormat::Tei) };
        server.set_latency(Duration::from_secs(2));
        check_error(rerank(slow).await, true, "no answer within 100 ms");

        server.kill().await;
        check_error(rerank(config(&server, RerankFormat::Tei)).await, true, &server.url());
    }

    #[test]
    fn formats_and_configuration() {
        for (text, format) in [
            ("tei", RerankFormat::Tei),
            ("Cohere", RerankFormat::Cohere),
            ("jina", RerankFormat::Cohere),
        ] {
            assert_eq!(text.parse::<RerankFormat>().expect(text), format);
        }
        assert!("voyage".parse::<RerankFormat>().is_err());
        assert_eq!(RerankFormat::Cohere.to_string(), "cohere");
        assert_eq!(serde_json::to_value(RerankFormat::Tei).ok(), Some(json!("tei")));

        let config: RerankConfig = serde_json::from_value(json!({
            "url": "http://h:8080/v1/rerank", "format": "jina", "model": "m", "timeout_ms": 2500,
        }))
        .expect("config");
        assert_eq!(
            (config.format, config.timeout),
            (RerankFormat::Cohere, Duration::from_millis(2500))
        );
        assert_eq!(config.effective_max_batch(), 100);
        let reranker = HttpReranker::new(config).expect("valid");
        assert_eq!(reranker.name(), "cohere:m@http://h:8080/v1/rerank");

        let keyed = RerankConfig {
            api_key: Some("secret".into()),
            ..RerankConfig::new("http://h/rerank", RerankFormat::Tei)
        };
        assert!(!format!("{keyed:?}").contains("secret"));
        assert_eq!(HttpReranker::new(keyed).expect("valid").name(), "tei@http://h/rerank");
        let bad = |c: RerankConfig| HttpReranker::new(c).is_err();
        assert!(bad(RerankConfig::new("h:8080/rerank", RerankFormat::Tei)));
        assert!(bad(RerankConfig {
            max_batch: Some(0),
            ..RerankConfig::new("http://h/r", RerankFormat::Tei)
        }));
        assert!(bad(RerankConfig {
            model: Some(String::new()),
            ..RerankConfig::new("http://h/r", RerankFormat::Cohere)
        }));
    }
}
