//! ragmill as an embedding server: the served model over the wire formats real embedding
//! servers speak, so any Ollama or OpenAI client (ragmill's own remote backends included) can
//! use a ragmill machine for its vectors.
//!
//! - Ollama ([`ollama`]): `POST /api/embed`, `GET /api/tags`; errors `{"error":"message"}`.
//! - OpenAI ([`openai`]): `POST /v1/embeddings` (floats or base64), `GET /v1/models`; errors
//!   `{"error":{"message","type","param","code"}}`.
//!
//! Handlers never call the embedder. Every input text goes to one shared [`Batcher`], which
//! packs the texts of every client in flight (and, in `ragmill serve`, the chunks of every
//! document being ingested) into the same batches, and embeds a text that is already queued or
//! in flight once for all who asked. The text of a one-input request (a query, nearly always)
//! is submitted urgently ([`Batcher::submit_urgent`]): it goes before queued texts and does
//! not wait for company. Tokens are counted by a function the caller supplies
//! ([`CountTokens`]; this crate has no tokenizer) for the batcher's token budget and for
//! `usage` / `prompt_eval_count`: tokens as the model sees them, special tokens included, at most
//! its window (longer inputs are truncated by the model).
//!
//! [`router`] serves the four routes over an [`EmbeddingService`] (mounted by the main router
//! with the service's user API keys); [`standalone`] builds a lean server around an embedder
//! alone (no store, no queue), with `GET /healthz` and `GET /metrics`.

pub mod ollama;
pub mod openai;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use ragmill_core::{ContentHash, Embedder, ModelInfo};
use ragmill_pipeline::{BatchConfig, Batcher};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::metrics::{EmbedApiMetrics, Metrics};
use crate::state::AppState;

/// Counts the model tokens of a text, special tokens included (the caller's tokenizer).
pub type CountTokens = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Who may use the embedding routes. Anyone else gets 401 in the route's own error format.
#[derive(Clone, Default)]
pub enum EmbedAuth {
    /// Anyone (a lean server on a trusted network).
    #[default]
    Open,
    /// `Authorization: Bearer KEY` where KEY has this BLAKE3 hash; compared in constant time
    /// (`blake3::Hash` equality). Build with [`EmbedAuth::key`].
    Key(blake3::Hash),
    /// Any valid, unrevoked user API key of the service (`ragmill serve`).
    Users(AppState),
}

impl EmbedAuth {
    /// One static key.
    pub fn key(key: &str) -> Self {
        Self::Key(blake3::hash(key.as_bytes()))
    }

    async fn check(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let key = crate::auth::bearer(headers);
        match (self, key) {
            (Self::Open, _) => Ok(()),
            (Self::Key(want), Some(key)) if blake3::hash(key.as_bytes()) == *want => Ok(()),
            (Self::Users(state), Some(key)) => match crate::auth::user_of_key(state, key).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(Failure::unauthorized()),
                Err(_) => Err(Failure::internal("cannot check the API key")),
            },
            _ => Err(Failure::unauthorized()),
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct EmbedLimits {
    /// Most inputs in one request (OpenAI's limit too).
    pub max_inputs: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Default for EmbedLimits {
    fn default() -> Self {
        Self { max_inputs: 2048, max_body_bytes: 16 << 20 }
    }
}

/// What `GET /api/tags` says about the model beyond its [`ModelInfo`]; unknown by default
/// (size 0, parameter size `unknown`, modified at the epoch).
#[derive(Debug, Clone, Default)]
pub struct ModelDetails {
    /// Size of the weights on disk, in bytes.
    pub size_bytes: u64,
    /// Number of parameters.
    pub parameters: Option<u64>,
    /// When the weights were last modified.
    pub modified: Option<SystemTime>,
}

/// How an [`EmbeddingService`] is set up besides its batcher and model.
#[derive(Clone, Default)]
pub struct EmbedOptions {
    /// Who may call.
    pub auth: EmbedAuth,
    /// Request limits.
    pub limits: EmbedLimits,
    /// Described by `/api/tags`.
    pub details: ModelDetails,
}

/// The embedding routes' shared state; cheap to clone.
#[derive(Clone)]
pub struct EmbeddingService(Arc<Service>);

struct Service {
    batcher: Batcher,
    info: ModelInfo,
    name: String,
    count_tokens: CountTokens,
    options: EmbedOptions,
    metrics: EmbedApiMetrics,
}

/// Vectors of one request, in input order, and the tokens the model saw for them.
struct Embedded {
    vectors: Vec<Arc<[f32]>>,
    tokens: usize,
}

impl EmbeddingService {
    /// Serves `info`'s model through `batcher` (whose embedder must be that model), counting
    /// tokens with `count_tokens` and each request in `metrics`.
    pub fn new(
        batcher: Batcher,
        info: ModelInfo,
        count_tokens: CountTokens,
        options: EmbedOptions,
        metrics: EmbedApiMetrics,
    ) -> Self {
        let name = short_name(&info.id).to_owned();
        Self(Arc::new(Service { batcher, info, name, count_tokens, options, metrics }))
    }

    /// The service's own model: the pipeline's batcher (shared with ingestion), its chunker's
    /// tokenizer, and the users' API keys.
    pub(crate) fn for_app(state: &AppState) -> Self {
        let chunker = Arc::clone(state.pipeline.chunker());
        let count_tokens: CountTokens =
            Arc::new(move |text| chunker.count_tokens(text).unwrap_or_else(|_| estimate(text)));
        Self::new(
            state.pipeline.batcher().clone(),
            state.pipeline.embedder().info().clone(),
            count_tokens,
            EmbedOptions { auth: EmbedAuth::Users(state.clone()), ..EmbedOptions::default() },
            state.metrics.embed_api(),
        )
    }

    /// The model's short name: its id up to `@` (the model directory's name for local models).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The served model.
    pub fn info(&self) -> &ModelInfo {
        &self.0.info
    }

    /// Checks the caller's key, then reads and parses the body: 401 before the body is read,
    /// 413 past the limit, 400 for JSON that does not fit `T` (any content type is accepted,
    /// as Ollama does: `curl -d` sends form-encoded).
    async fn read<T: DeserializeOwned>(&self, req: Request) -> Result<T, Failure> {
        self.authorize(req.headers()).await?;
        let limit = self.0.options.limits.max_body_bytes;
        let declared = req.headers().get(axum::http::header::CONTENT_LENGTH);
        let declared = declared.and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            // Refused before a byte of it is read.
            return Err(Failure::too_large(limit));
        }
        let body = Bytes::from_request(req, &()).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Failure::too_large(limit)
            } else {
                Failure::invalid(None, format!("cannot read the request body: {}", r.body_text()))
            }
        })?;
        serde_json::from_slice(&body)
            .map_err(|e| Failure::invalid(None, format!("invalid JSON body: {e}")))
    }

    async fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        self.0.options.auth.check(headers).await
    }

    /// Accepts the short name (optionally `:latest`, as Ollama clients add), the full id, or no
    /// name at all; anything else is a 404 naming the served model.
    fn check_model(&self, requested: Option<&str>) -> Result<(), Failure> {
        let requested = requested.map(str::trim).unwrap_or_default();
        let base = requested.strip_suffix(":latest").unwrap_or(requested);
        if requested.is_empty() || base == self.0.name || base == self.0.info.id {
            Ok(())
        } else {
            Err(Failure::model_not_found(requested, &self.0.name))
        }
    }

    fn check_count(&self, n: usize) -> Result<(), Failure> {
        let max = self.0.options.limits.max_inputs;
        if n > max {
            return Err(Failure::invalid(
                Some("input"),
                format!("too many inputs: {n} (at most {max} per request)"),
            ));
        }
        Ok(())
    }

    /// Model tokens of each text (uncapped), counted off the async threads.
    async fn count(&self, texts: Vec<String>) -> Result<(Vec<String>, Vec<usize>), Failure> {
        let count = Arc::clone(&self.0.count_tokens);
        tokio::task::spawn_blocking(move || {
            let counts = texts.iter().map(|t| count(t)).collect();
            (texts, counts)
        })
        .await
        .map_err(|e| Failure::internal(format_args!("counting tokens: {e}")))
    }

    /// Submits every text to the shared batcher and waits for all of them, in input order.
    /// A client that goes away drops its receivers, and the batcher skips texts nobody waits for.
    /// A request of one input is almost always a search query, with someone waiting on it: it
    /// is submitted urgently, so it neither lingers for company nor queues behind ingestion.
    async fn embed(&self, texts: Vec<String>, counts: &[usize]) -> Result<Embedded, Failure> {
        let max = self.0.info.max_tokens.max(1);
        let urgent = texts.len() == 1;
        let mut tokens = 0;
        let receivers: Vec<_> = texts
            .into_iter()
            .zip(counts)
            .map(|(text, &n)| {
                tokens += n.min(max);
                let (hash, n) = (ContentHash::of(text.as_bytes()), n.min(max));
                if urgent {
                    self.0.batcher.submit_urgent(hash, text, n)
                } else {
                    self.0.batcher.submit(hash, text, n)
                }
            })
            .collect();
        let mut vectors = Vec::with_capacity(receivers.len());
        for answer in futures::future::join_all(receivers).await {
            match answer {
                Ok(Ok(v)) => vectors.push(v),
                Ok(Err(e)) => return Err(Failure::internal(format_args!("embedding failed: {e}"))),
                Err(_) => return Err(Failure::internal("the embedding batcher has stopped")),
            }
        }
        Ok(Embedded { vectors, tokens })
    }

    /// Counts the request, logs it, and renders the answer or the failure.
    fn finish<T: serde::Serialize>(
        &self,
        route: &'static str,
        started: std::time::Instant,
        result: Result<(T, usize), Failure>,
        render: fn(Failure) -> axum::response::Response,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let elapsed = started.elapsed();
        match result {
            Ok((body, texts)) => {
                self.0.metrics.request(route, 200, texts);
                tracing::debug!(route, texts, ?elapsed, "embedding request");
                axum::Json(body).into_response()
            }
            Err(failure) => {
                self.0.metrics.request(route, failure.status.as_u16(), 0);
                tracing::debug!(route, status = failure.status.as_u16(), message = %failure.message, ?elapsed, "embedding request refused");
                render(failure)
            }
        }
    }
}

/// The four embedding routes over `service`, with their own body limit
/// ([`EmbedLimits::max_body_bytes`]).
pub fn router(service: EmbeddingService) -> Router {
    let limit = service.0.options.limits.max_body_bytes;
    Router::new()
        .route("/api/embed", post(ollama::embed))
        .route("/api/tags", get(ollama::tags))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

/// A lean embedding server around `embedder` alone: starts a [`Batcher`] with `batch` on the
/// current tokio runtime and serves the four embedding routes, `GET /healthz` (`ok`) and
/// `GET /metrics` (embedding batches and requests, OpenMetrics text).
pub fn standalone(
    embedder: Arc<dyn Embedder>,
    count_tokens: CountTokens,
    batch: BatchConfig,
    options: EmbedOptions,
) -> Router {
    let metrics = Arc::new(Metrics::embedding_server());
    let info = embedder.info().clone();
    let batcher = Batcher::start(embedder, batch);
    batcher.set_observer(metrics.batch_observer());
    let service = EmbeddingService::new(batcher, info, count_tokens, options, metrics.embed_api());
    router(service).route("/healthz", get(crate::routes::healthz)).route(
        "/metrics",
        get(move || async move {
            match metrics.encode(&[], ragmill_core::Depth::default(), 0) {
                Ok(body) => {
                    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
                }
                Err(e) => {
                    Err(crate::ApiError::internal(format_args!("cannot encode metrics: {e}")))
                }
            }
        }),
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Why a request was refused; each format renders it in its own style.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    message: String,
    /// The request field at fault (OpenAI's `param`).
    param: Option<&'static str>,
}

impl Failure {
    fn invalid(param: Option<&'static str>, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), param }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "a valid API key is required: Authorization: Bearer KEY".into(),
            param: None,
        }
    }

    fn model_not_found(requested: &str, served: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("model {requested:?} not found; this server serves {served:?}"),
            param: Some("model"),
        }
    }

    fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the request body is larger than {} MiB", limit >> 20),
            param: None,
        }
    }

    /// A failure on our side; the cause goes to the log only.
    fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "embedding request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error; see the server log".into(),
            param: None,
        }
    }
}

/// How a format reads `input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputStyle {
    /// Missing or `""` means no inputs (Ollama loads the model on an empty request).
    Ollama,
    /// `input` is required; `""` is one (empty) input.
    OpenAi,
}

const TOKEN_ARRAYS: &str = "token arrays are not accepted: send `input` as a string or a list of \
strings (this server tokenises with the model's own tokenizer)";

/// The texts of `input`: a string or a list of strings.
fn inputs(input: Option<Value>, style: InputStyle) -> Result<Vec<String>, Failure> {
    let invalid = |m: &str| Failure::invalid(Some("input"), m);
    match input {
        None if style == InputStyle::Ollama => Ok(Vec::new()),
        None => Err(invalid("`input` is required: a string or a list of strings")),
        Some(Value::String(s)) if s.is_empty() && style == InputStyle::Ollama => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Number(_) | Value::Array(_) => Err(invalid(TOKEN_ARRAYS)),
                _ => Err(invalid("every item of `input` must be a string")),
            })
            .collect(),
        Some(_) => Err(invalid("`input` must be a string or a list of strings")),
    }
}

/// A model's short name: its id up to `@` (`all-MiniLM-L6-v2@1a2b3c…` → `all-MiniLM-L6-v2`).
fn short_name(id: &str) -> &str {
    id.split('@').next().filter(|n| !n.is_empty()).unwrap_or(id)
}

/// A rough token count for text the tokenizer could not read (about 4 bytes a token).
fn estimate(text: &str) -> usize {
    text.len() / 4 + 2
}

/// `t` in RFC 3339, UTC, to the second.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days since the epoch to a civil date (Howard Hinnant's `civil_from_days`).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests;
