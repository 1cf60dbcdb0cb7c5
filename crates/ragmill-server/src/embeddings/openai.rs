//! OpenAI's wire format: `POST /v1/embeddings` and `GET /v1/models`. Errors are an HTTP status
//! with `{"error":{"message","type","param","code"}}`.

use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ollama::EmbedInput;
use super::{EmbeddingService, Failure, InputStyle, inputs};

/// The body of `POST /v1/embeddings`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OpenAiEmbeddingsRequest {
    /// The served model's short name, its full id, or empty.
    #[serde(default)]
    pub model: Option<String>,
    /// A string or a list of strings (at most 2048); token arrays are refused.
    #[serde(default)]
    #[schema(value_type = EmbedInput)]
    pub input: Option<Value>,
    /// `float` (default) or `base64` (little-endian `f32` bytes).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Only the model's own dimension is accepted (vectors cannot be shortened).
    #[serde(default)]
    pub dimensions: Option<u64>,
    /// Accepted and ignored.
    #[serde(default)]
    pub user: Option<String>,
}

/// The answer of `POST /v1/embeddings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbeddings {
    /// `list`.
    pub object: String,
    /// One entry per input, in input order.
    pub data: Vec<OpenAiEmbedding>,
    /// The served model's short name.
    pub model: String,
    /// Tokens the model saw.
    pub usage: OpenAiUsage,
}

/// One vector.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    /// `embedding`.
    pub object: String,
    /// The L2-normalised vector: floats, or base64 of its little-endian `f32` bytes.
    pub embedding: OpenAiVector,
    /// The input's position.
    pub index: usize,
}

/// A vector as floats or as base64.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OpenAiVector {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// Token counts (special tokens included, each input at most the model's window).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiUsage {
    /// Tokens of all inputs.
    pub prompt_tokens: usize,
    /// The same.
    pub total_tokens: usize,
}

/// The answer of `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiModels {
    /// `list`.
    pub object: String,
    /// The one served model.
    pub data: Vec<OpenAiModel>,
}

/// A model as `GET /v1/models` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiModel {
    /// The short name.
    pub id: String,
    /// `model`.
    pub object: String,
    /// Always 0.
    pub created: u64,
    /// `ragmill`.
    pub owned_by: String,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiError {
    /// What went wrong.
    pub error: OpenAiErrorBody,
}

/// What went wrong, as OpenAI says it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// For a human.
    pub message: String,
    /// `invalid_request_error` (4xx) or `server_error` (5xx).
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// `invalid_api_key` (401), `model_not_found` (404), `request_too_large` (413), else null.
    pub code: Option<String>,
}

fn error(failure: Failure) -> Response {
    let kind =
        if failure.status.is_server_error() { "server_error" } else { "invalid_request_error" };
    let code = match failure.status {
        StatusCode::UNAUTHORIZED => Some("invalid_api_key"),
        StatusCode::NOT_FOUND => Some("model_not_found"),
        StatusCode::PAYLOAD_TOO_LARGE => Some("request_too_large"),
        _ => None,
    };
    let body = OpenAiErrorBody {
        message: failure.message,
        kind: kind.into(),
        param: failure.param.map(str::to_owned),
        code: code.map(str::to_owned),
    };
    (failure.status, Json(OpenAiError { error: body })).into_response()
}

/// Embeds texts (OpenAI).
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    operation_id = "openaiEmbeddings",
    summary = "Embed texts (OpenAI's format)",
    description = "Texts from every client are packed into shared batches; inputs longer than \
the model's window are truncated.",
    tag = "embeddings",
    security(("bearer" = [])),
    request_body(content = OpenAiEmbeddingsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One vector per input, in order", body = OpenAiEmbeddings),
        (status = 400, description = "Malformed body, token arrays, too many inputs, another `dimensions` or `encoding_format`", body = OpenAiError),
        (status = 401, description = "Missing or invalid API key", body = OpenAiError),
        (status = 404, description = "Not the served model", body = OpenAiError),
        (status = 413, description = "Body too large", body = OpenAiError),
        (status = 500, description = "Internal error", body = OpenAiError),
    ),
)]
pub async fn embeddings(State(service): State<EmbeddingService>, req: Request) -> Response {
    let started = Instant::now();
    let result = answer(&service, req).await;
    service.finish("/v1/embeddings", started, result, error)
}

async fn answer(
    service: &EmbeddingService,
    req: Request,
) -> Result<(OpenAiEmbeddings, usize), Failure> {
    let body: OpenAiEmbeddingsRequest = service.read(req).await?;
    service.check_model(body.model.as_deref())?;
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(Failure::invalid(
                Some("encoding_format"),
                format!("unknown encoding_format {other:?}: use \"float\" or \"base64\""),
            ));
        }
    };
    let dimensions = service.info().dimensions;
    if let Some(d) = body.dimensions.filter(|&d| d != dimensions as u64) {
        return Err(Failure::invalid(
            Some("dimensions"),
            format!(
                "this model's vectors have {dimensions} dimensions and cannot be shortened to {d}; omit `dimensions` or send {dimensions}"
            ),
        ));
    }
    let texts = inputs(body.input, InputStyle::OpenAi)?;
    service.check_count(texts.len())?;
    let (texts, counts) = service.count(texts).await?;
    let n = texts.len();
    let embedded = service.embed(texts, &counts).await?;
    let data = embedded
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding".into(),
            embedding: if base64 {
                OpenAiVector::Base64(encode(v))
            } else {
                OpenAiVector::Float(v.to_vec())
            },
            index,
        })
        .collect();
    let response = OpenAiEmbeddings {
        object: "list".into(),
        data,
        model: service.name().into(),
        usage: OpenAiUsage { prompt_tokens: embedded.tokens, total_tokens: embedded.tokens },
    };
    Ok((response, n))
}

/// Base64 (standard, padded) of the little-endian bytes of `v`.
fn encode(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The served model (OpenAI).
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "openaiModels",
    summary = "The served model (OpenAI's format)",
    tag = "embeddings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The one served model", body = OpenAiModels),
        (status = 401, description = "Missing or invalid API key", body = OpenAiError),
    ),
)]
pub async fn models(State(service): State<EmbeddingService>, req: Request) -> Response {
    let started = Instant::now();
    let result = service.authorize(req.headers()).await.map(|()| {
        let model = OpenAiModel {
            id: service.name().into(),
            object: "model".into(),
            created: 0,
            owned_by: "ragmill".into(),
        };
        (OpenAiModels { object: "list".into(), data: vec![model] }, 0)
    });
    service.finish("/v1/models", started, result, error)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn base64_is_the_little_endian_f32_bytes() {
        let v = [1.0f32, -0.5, 0.25];
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(super::encode(&v)).expect("base64");
        let back: Vec<f32> =
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(back, v);
    }
}
