//! Pool and endpoint settings, as read from a configuration file (serde, with defaults).
//!
//! Durations are plain numbers of milliseconds, under names ending in `_ms`
//! (`attempt_timeout_ms = 30000`), so no duration-parsing dependency is needed.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Which wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Ollama's native API: `POST {url}/api/embed`.
    Ollama,
    /// The OpenAI embeddings API, or a compatible server (vLLM, TEI, llama.cpp, LiteLLM, Ollama's
    /// `/v1`): `POST {url}/v1/embeddings`.
    #[serde(rename = "openai")]
    OpenAi,
}

impl BackendKind {
    /// The name used in configuration and in [`ModelInfo::space`](ragmill_core::ModelInfo):
    /// `ollama` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Ollama => "ollama",
            BackendKind::OpenAi => "openai",
        }
    }

    /// Texts per request when the endpoint does not say: 32 for Ollama, 64 for OpenAI.
    pub fn default_batch_size(self) -> usize {
        match self {
            BackendKind::Ollama => 32,
            BackendKind::OpenAi => 64,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests in flight per endpoint when the endpoint does not say.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;

/// One server that serves the pool's model.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL, e.g. `http://gpu-1:11434` (Ollama) or `https://api.openai.com/v1` (OpenAI; with
    /// or without the trailing `/v1`).
    pub url: String,
    /// The wire protocol.
    pub kind: BackendKind,
    /// The model name as the server knows it.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` (OpenAI-compatible servers only).
    #[serde(default)]
    pub api_key: Option<String>,
    /// Texts per request; default [`BackendKind::default_batch_size`].
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Requests in flight at once; default [`DEFAULT_MAX_CONCURRENCY`].
    #[serde(default)]
    pub max_concurrency: Option<usize>,
}

impl EndpointConfig {
    /// An endpoint with default batch size and concurrency and no API key.
    pub fn new(kind: BackendKind, url: impl Into<String>, model: impl Into<String>) -> Self {
        EndpointConfig {
            url: url.into(),
            kind,
            model: model.into(),
            api_key: None,
            batch_size: None,
            max_concurrency: None,
        }
    }

    /// The batch size in effect (configured or the kind's default).
    pub fn effective_batch_size(&self) -> usize {
        self.batch_size.unwrap_or_else(|| self.kind.default_batch_size())
    }

    /// The concurrency limit in effect (configured or [`DEFAULT_MAX_CONCURRENCY`]).
    pub fn effective_max_concurrency(&self) -> usize {
        self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY)
    }
}

// Hand-written so that an API key never reaches a log line.
impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("batch_size", &self.batch_size)
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

/// How many retries the pool may add on top of first attempts.
///
/// Over the last `window`, retries may number at most `min_retries + ratio × requests`, where
/// `requests` counts first attempts. This bounds the extra load retries can put on struggling
/// servers (a retry storm) while still letting a quiet pool retry its occasional failure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Retries allowed per first attempt (0.2: retries add at most 20% to the load).
    pub ratio: f64,
    /// Retries always allowed per window, whatever the traffic.
    pub min_retries: u32,
    /// The sliding window.
    #[serde(rename = "window_ms", deserialize_with = "millis")]
    pub window: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig { ratio: 0.2, min_retries: 10, window: Duration::from_secs(10) }
    }
}

/// A pool of endpoints serving one model. Every field has a default except `endpoints`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// The servers; all must speak the same protocol and serve the same model.
    pub endpoints: Vec<EndpointConfig>,
    /// Limit on one request to one endpoint (connect, send, answer). Default 30 s.
    #[serde(rename = "attempt_timeout_ms", deserialize_with = "millis")]
    pub attempt_timeout: Duration,
    /// Attempts per sub-batch, the first included. Default 3.
    pub max_attempts: u32,
    /// Backoff before the first retry (doubling after each, with full jitter). Default 50 ms.
    #[serde(rename = "backoff_base_ms", deserialize_with = "millis")]
    pub backoff_base: Duration,
    /// Longest backoff. Default 2 s.
    #[serde(rename = "backoff_max_ms", deserialize_with = "millis")]
    pub backoff_max: Duration,
    /// The retry budget.
    pub retry_budget: RetryBudgetConfig,
    /// Consecutive failures that open an endpoint's circuit. Default 5.
    pub breaker_failures: u32,
    /// How long an open circuit stays open before one probe may pass. Default 10 s.
    #[serde(rename = "breaker_cooldown_ms", deserialize_with = "millis")]
    pub breaker_cooldown: Duration,
    /// How often the background task probes endpoints whose cool-down is over. Default 5 s.
    #[serde(rename = "health_interval_ms", deserialize_with = "millis")]
    pub health_interval: Duration,
    /// The model's input limit in tokens, reported in `ModelInfo::max_tokens`. Default 512.
    pub max_tokens: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            endpoints: Vec::new(),
            attempt_timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            retry_budget: RetryBudgetConfig::default(),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            max_tokens: 512,
        }
    }
}

impl PoolConfig {
    /// A pool of `endpoints` with every other setting at its default.
    pub fn new(endpoints: Vec<EndpointConfig>) -> Self {
        PoolConfig { endpoints, ..PoolConfig::default() }
    }

    /// Checks what the types cannot: a non-empty endpoint list of one kind and model, usable
    /// URLs, positive sizes and limits.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let Some(first) = self.endpoints.first() else {
            return Err("a pool needs at least one endpoint".into());
        };
        for e in &self.endpoints {
            check_url(&e.url)?;
            if e.kind != first.kind || e.model != first.model {
                return Err(format!(
                    "all endpoints of a pool must serve the same model: {} serves {}:{}, {} serves {}:{}",
                    first.url, first.kind, first.model, e.url, e.kind, e.model
                ));
            }
            if e.model.is_empty() {
                return Err(format!("{}: empty model name", e.url));
            }
            if e.effective_batch_size() == 0 || e.effective_max_concurrency() == 0 {
                return Err(format!(
                    "{}: batch_size and max_concurrency must be at least 1",
                    e.url
                ));
            }
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.breaker_failures == 0 {
            return Err("breaker_failures must be at least 1".into());
        }
        if self.attempt_timeout.is_zero() || self.health_interval.is_zero() {
            return Err("attempt_timeout_ms and health_interval_ms must be positive".into());
        }
        if self.retry_budget.window.is_zero()
            || !(self.retry_budget.ratio.is_finite() && self.retry_budget.ratio >= 0.0)
        {
            return Err("retry_budget needs a positive window_ms and a ratio >= 0".into());
        }
        Ok(())
    }
}

/// Checks that `url` is one this build can reach: `http://`, or `https://` with the `rustls`
/// feature.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") {
        return Ok(());
    }
    if lower.starts_with("https://") {
        return if cfg!(feature = "rustls") {
            Ok(())
        } else {
            Err(format!(
                "{url}: https needs ragmill-remote's `rustls` feature (this build speaks plain http only)"
            ))
        };
    }
    Err(format!("{url}: not an http:// or https:// URL"))
}

pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let mut c = PoolConfig::new(vec![EndpointConfig::new(
            BackendKind::Ollama,
            "http://a:11434",
            "nomic-embed-text",
        )]);
        assert!(c.validate().is_ok());
        assert_eq!(c.endpoints[0].effective_batch_size(), 32);
        assert_eq!(c.endpoints[0].effective_max_concurrency(), 4);

        c.endpoints.push(EndpointConfig::new(BackendKind::Ollama, "http://b:11434", "other"));
        assert!(c.validate().expect_err("invalid").contains("same model"));
        c.endpoints.pop();

        c.endpoints.push(EndpointConfig::new(BackendKind::Ollama, "ftp://b", "nomic-embed-text"));
        assert!(c.validate().expect_err("invalid").contains("not an http"));
        c.endpoints.pop();

        assert!(
            PoolConfig::default()
                .validate()
                .expect_err("invalid")
                .contains("at least one endpoint")
        );
    }

    #[test]
    fn https_needs_the_feature() {
        let r = check_url("https://api.openai.com/v1");
        assert_eq!(r.is_ok(), cfg!(feature = "rustls"), "{r:?}");
    }

    #[test]
    fn api_key_is_not_in_debug_output() {
        let mut e = EndpointConfig::new(BackendKind::OpenAi, "http://x", "m");
        e.api_key = Some("sk-secret".into());
        let s = format!("{e:?}");
        assert!(!s.contains("sk-secret") && s.contains("redacted"), "{s}");
    }
}
