//! What both clients hold and do alike: one endpoint's connection settings, the model they
//! report, the shared builder methods and the `Embedder` impl ([`remote_client!`]).

use std::time::Duration;

use ragmill_core::ModelInfo;
use serde::Serialize;

use crate::config::BackendKind;
use crate::http::Post;

/// The default limit on one request of a standalone client (the pool sets its own).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One endpoint as a client talks to it.
#[derive(Clone)]
pub(crate) struct Target {
    pub http: reqwest::Client,
    /// The base URL as configured, without a trailing `/` (named in every error).
    pub url: String,
    /// The full URL embeddings are posted to.
    pub embed_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer` when set.
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub info: ModelInfo,
}

impl Target {
    /// `kind`'s endpoint at `url` (`path` builds the embedding URL from the trimmed base).
    pub(crate) fn new(
        http: reqwest::Client,
        kind: BackendKind,
        url: &str,
        path: impl FnOnce(&str) -> String,
        model: &str,
        dimensions: usize,
        timeout: Duration,
    ) -> Self {
        let url = url.trim_end_matches('/').to_owned();
        let name = format!("{kind}:{model}");
        Target {
            http,
            embed_url: path(&url),
            url,
            model: model.to_owned(),
            api_key: None,
            timeout,
            info: ModelInfo {
                id: name.clone(),
                space: name,
                dimensions,
                max_tokens: 512,
                preferred_batch: kind.default_batch_size(),
            },
        }
    }

    /// A JSON request of `body` to the embedding URL.
    pub(crate) fn post<'a, B: Serialize>(&'a self, body: &'a B) -> Post<'a, B> {
        Post {
            http: &self.http,
            endpoint: &self.url,
            url: &self.embed_url,
            bearer: self.api_key.as_deref(),
            body,
            timeout: self.timeout,
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The methods both clients share (builders, `url`, `connect`'s probe) and their [`Embedder`]
/// impl, for a struct with a `target: Target` field and an inherent
/// `request(&self, &[String], Option<usize>)`.
///
/// [`Embedder`]: ragmill_core::Embedder
macro_rules! remote_client {
    ($client:ident) => {
        impl $client {
            /// Sets the limit on one request (default 60 s).
            pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.target.timeout = timeout;
                self
            }

            /// Sets the `max_tokens` reported by [`Embedder::info`] (default 512).
            pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
                self.target.info.max_tokens = max_tokens;
                self
            }

            /// Sends `key` as a Bearer token with every request.
            pub fn with_api_key(mut self, key: Option<String>) -> Self {
                self.target.api_key = key;
                self
            }

            /// The server's base URL, as configured (without a trailing `/`).
            pub fn url(&self) -> &str {
                &self.target.url
            }

            /// Learns the dimension by embedding a short text.
            async fn probe(mut self) -> Result<Self, crate::error::RemoteError> {
                let probe = self.request(&[crate::PROBE_TEXT.to_owned()], None).await?;
                self.target.info.dimensions = probe.first().map_or(0, Vec::len);
                Ok(self)
            }
        }

        #[async_trait::async_trait]
        impl ragmill_core::Embedder for $client {
            fn info(&self) -> &ragmill_core::ModelInfo {
                &self.target.info
            }

            async fn embed(
                &self,
                texts: Vec<String>,
            ) -> Result<Vec<Vec<f32>>, ragmill_core::EmbedError> {
                if texts.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(self.request(&texts, Some(self.target.info.dimensions)).await?)
            }
        }
    };
}
pub(crate) use remote_client;
