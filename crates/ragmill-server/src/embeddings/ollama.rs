//! Ollama's wire format: `POST /api/embed` and `GET /api/tags`. Errors are an HTTP status with
//! `{"error":"message"}`.

use std::time::{Instant, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{EmbeddingService, Failure, InputStyle, inputs, rfc3339};

/// What to embed: one string or a list of strings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbedInput {
    /// One text.
    One(String),
    /// Several texts, answered in this order.
    Many(Vec<String>),
}

/// The body of `POST /api/embed`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OllamaEmbedRequest {
    /// The served model's short name (optionally `:latest`), its full id, or empty.
    #[serde(default)]
    pub model: Option<String>,
    /// A string or a list of strings (token arrays are refused); missing or `""`: no inputs.
    #[serde(default)]
    #[schema(value_type = Option<EmbedInput>)]
    pub input: Option<Value>,
    /// Truncate inputs longer than the model's window (default); `false` refuses them (400).
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Accepted and ignored (the model stays loaded).
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub keep_alive: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
}

/// The answer of `POST /api/embed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaEmbedResponse {
    /// The model name as requested (the short name when none was given).
    pub model: String,
    /// One L2-normalised vector per input, in input order.
    pub embeddings: Vec<Vec<f32>>,
    /// Time spent on the request, in nanoseconds.
    pub total_duration: u64,
    /// Always 0: the model is loaded at start.
    pub load_duration: u64,
    /// Model tokens of all inputs (special tokens included, each at most the window).
    pub prompt_eval_count: usize,
}

/// An error answer: `{"error":"message"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaError {
    /// What went wrong.
    pub error: String,
}

/// The answer of `GET /api/tags`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaTags {
    /// The one served model.
    pub models: Vec<OllamaModel>,
}

/// A model as `GET /api/tags` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaModel {
    /// The short name.
    pub name: String,
    /// The short name.
    pub model: String,
    /// When the weights were last modified (RFC 3339; the epoch when unknown).
    pub modified_at: String,
    /// Size of the weights in bytes (0 when unknown).
    pub size: u64,
    /// A stable hash of the model id (BLAKE3, 64 hex digits).
    pub digest: String,
    /// Format, family, size and precision.
    pub details: OllamaModelDetails,
}

/// `details` of a listed model.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaModelDetails {
    /// Always empty.
    pub parent_model: String,
    /// `safetensors`.
    pub format: String,
    /// `bert`.
    pub family: String,
    /// `["bert"]`.
    pub families: Vec<String>,
    /// Parameters, e.g. `22.71M` (`unknown` when not known).
    pub parameter_size: String,
    /// `F32`, or `Q8_0` for the INT8 encoder.
    pub quantization_level: String,
}

fn error(failure: Failure) -> Response {
    (failure.status, Json(OllamaError { error: failure.message })).into_response()
}

/// Embeds texts (Ollama).
#[utoipa::path(
    post,
    path = "/api/embed",
    operation_id = "ollamaEmbed",
    summary = "Embed texts (Ollama's format)",
    description = "Texts from every client are packed into shared batches. Any content type is \
accepted; the body is JSON. Inputs longer than the model's window are truncated unless \
`truncate` is false.",
    tag = "embeddings",
    security(("bearer" = [])),
    request_body(content = OllamaEmbedRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One vector per input, in order", body = OllamaEmbedResponse),
        (status = 400, description = "Malformed body, token arrays, too many inputs, or an input past the window with `truncate: false`", body = OllamaError),
        (status = 401, description = "Missing or invalid API key", body = OllamaError),
        (status = 404, description = "Not the served model", body = OllamaError),
        (status = 413, description = "Body too large", body = OllamaError),
        (status = 500, description = "Internal error", body = OllamaError),
    ),
)]
pub async fn embed(State(service): State<EmbeddingService>, req: Request) -> Response {
    let started = Instant::now();
    let result = answer(&service, req, started).await;
    service.finish("/api/embed", started, result, error)
}

async fn answer(
    service: &EmbeddingService,
    req: Request,
    started: Instant,
) -> Result<(OllamaEmbedResponse, usize), Failure> {
    let body: OllamaEmbedRequest = service.read(req).await?;
    service.check_model(body.model.as_deref())?;
    let texts = inputs(body.input, InputStyle::Ollama)?;
    service.check_count(texts.len())?;
    let (texts, counts) = service.count(texts).await?;
    let window = service.info().max_tokens;
    if body.truncate == Some(false)
        && let Some((i, n)) = counts.iter().enumerate().find(|(_, n)| **n > window)
    {
        return Err(Failure::invalid(
            Some("input"),
            format!(
                "input length exceeds maximum context length: input {i} has {n} tokens, the model takes {window}"
            ),
        ));
    }
    let n = texts.len();
    let embedded = service.embed(texts, &counts).await?;
    let model =
        body.model.filter(|m| !m.trim().is_empty()).unwrap_or_else(|| service.name().into());
    let response = OllamaEmbedResponse {
        model,
        embeddings: embedded.vectors.iter().map(|v| v.to_vec()).collect(),
        total_duration: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        load_duration: 0,
        prompt_eval_count: embedded.tokens,
    };
    Ok((response, n))
}

/// The served model (Ollama).
#[utoipa::path(
    get,
    path = "/api/tags",
    operation_id = "ollamaTags",
    summary = "The served model (Ollama's format)",
    tag = "embeddings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The one served model", body = OllamaTags),
        (status = 401, description = "Missing or invalid API key", body = OllamaError),
    ),
)]
pub async fn tags(State(service): State<EmbeddingService>, req: Request) -> Response {
    let started = Instant::now();
    let result = service.authorize(req.headers()).await.map(|()| (describe(&service), 0));
    service.finish("/api/tags", started, result, error)
}

fn describe(service: &EmbeddingService) -> OllamaTags {
    let details = &service.0.options.details;
    let id = &service.info().id;
    let quantization = if id.ends_with("+int8") { "Q8_0" } else { "F32" };
    OllamaTags {
        models: vec![OllamaModel {
            name: service.name().into(),
            model: service.name().into(),
            modified_at: rfc3339(details.modified.unwrap_or(UNIX_EPOCH)),
            size: details.size_bytes,
            digest: blake3::hash(id.as_bytes()).to_hex().to_string(),
            details: OllamaModelDetails {
                parent_model: String::new(),
                format: "safetensors".into(),
                family: "bert".into(),
                families: vec!["bert".into()],
                parameter_size: details.parameters.map_or_else(|| "unknown".into(), human),
                quantization_level: quantization.into(),
            },
        }],
    }
}

/// A parameter count as Ollama writes it: `22.71M`, `7.2B`.
fn human(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn parameter_sizes_read_like_ollamas() {
        assert_eq!(human(22_713_216), "22.71M");
        assert_eq!(human(7_241_732_096), "7.2B");
        assert_eq!(human(12_000), "12.0K");
        assert_eq!(human(12), "12");
    }
}
