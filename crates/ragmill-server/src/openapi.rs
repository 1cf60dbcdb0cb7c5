//! The OpenAPI 3.1 description of the service, generated from the handlers' types and
//! `#[utoipa::path]` annotations, and served without auth at `GET /openapi.json`.
//!
//! Types of other crates (`DocumentState`, `Stage`, `DocumentKind`) cannot implement
//! `ToSchema` here, so they are described by the mirror enums below; each converts from its
//! original by an exhaustive match, so a variant added there fails to compile until it is
//! added here, and a unit test checks both serialise alike.

use std::sync::LazyLock;

use axum::Json;
use ragmill_core::{DocumentKind, Stage};
use ragmill_store::DocumentState;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::embeddings::ollama::{
    EmbedInput, OllamaEmbedRequest, OllamaEmbedResponse, OllamaError, OllamaModel,
    OllamaModelDetails, OllamaTags,
};
use crate::embeddings::openai::{
    OpenAiEmbedding, OpenAiEmbeddings, OpenAiEmbeddingsRequest, OpenAiError, OpenAiErrorBody,
    OpenAiModel, OpenAiModels, OpenAiUsage, OpenAiVector,
};
use crate::error::{ErrorBody, ErrorResponse};
use crate::routes::chat::{
    ChatBackendView, ChatDone, ChatEvent, ChatRequest, ChatSource, ChatSources, ChatStatus,
    ChatToken, ChatTurn,
};
use crate::routes::documents::{
    AcceptedDocument, DocumentList, DocumentView, ProgressView, UploadForm, UploadResponse,
};
use crate::routes::events::{EventToken, Snapshot, SnapshotType, StreamMessage};
use crate::routes::search::{RagStatusView, SearchRequest, SearchResponse, SearchResult};
use crate::routes::stats::{Batcher, Me, Scope, Stats, StatsHistory, WorkerProcess, Workers};
use crate::routes::{QueueDepth, Readiness};
use ragmill_core::Event;

/// The OpenAPI document of every route the router serves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ragmill",
        description = "Self-hosted multi-user RAG ingestion: upload documents, follow their \
processing live, search their chunks. Every error is `{\"error\":{\"code\",\"message\"}}` with a \
stable snake_case code; another user's document answers 404 exactly like one that never existed. \
The `embeddings` routes speak Ollama's and OpenAI's wire formats instead, errors included.",
    ),
    paths(
        crate::routes::documents::upload,
        crate::routes::documents::list,
        crate::routes::documents::get,
        crate::routes::documents::delete,
        crate::routes::documents::reprocess,
        crate::routes::batch::cancel_one,
        crate::routes::batch::cancel_many,
        crate::routes::batch::pause_one,
        crate::routes::batch::pause_many,
        crate::routes::batch::resume_one,
        crate::routes::batch::resume_many,
        crate::routes::batch::retry_many,
        crate::routes::original::file,
        crate::routes::original::link,
        crate::routes::chunked::chunked,
        crate::routes::stats::stats,
        crate::routes::stats::me,
        crate::routes::stats::history,
        crate::routes::search::search,
        crate::routes::search::rag_status,
        crate::routes::chat::status,
        crate::routes::chat::chat,
        crate::routes::admin::users,
        crate::routes::admin::create,
        crate::routes::admin::new_key,
        crate::routes::admin::revoke,
        crate::routes::admin::change,
        crate::routes::admin::settings,
        crate::routes::conversations::list,
        crate::routes::conversations::create,
        crate::routes::conversations::get,
        crate::routes::conversations::rename,
        crate::routes::conversations::delete,
        crate::routes::events::events,
        crate::routes::events::token,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics,
        crate::embeddings::ollama::embed,
        crate::embeddings::ollama::tags,
        crate::embeddings::openai::embeddings,
        crate::embeddings::openai::models,
        serve,
    ),
    components(schemas(
        ErrorResponse,
        ErrorBody,
        DocumentView,
        ProgressView,
        DocumentList,
        AcceptedDocument,
        UploadResponse,
        UploadForm,
        crate::routes::batch::Selection,
        crate::routes::batch::BulkResult,
        SearchRequest,
        SearchResponse,
        SearchResult,
        RagStatusView,
        ChatStatus,
        ChatBackendView,
        ChatRequest,
        ChatTurn,
        ChatEvent,
        ChatSources,
        ChatSource,
        ChatToken,
        ChatDone,
        crate::routes::admin::AdminUser,
        crate::routes::admin::AdminUsers,
        crate::routes::admin::NewKey,
        crate::routes::admin::NewUser,
        crate::routes::admin::UserChange,
        crate::routes::admin::Revoked,
        crate::routes::conversations::ConversationView,
        crate::routes::conversations::ConversationList,
        crate::routes::conversations::ConversationDetail,
        crate::routes::conversations::MessageView,
        crate::routes::conversations::TitleRequest,
        EventToken,
        crate::routes::original::FileLink,
        StreamMessage,
        Snapshot,
        SnapshotType,
        EventSchema,
        Readiness,
        QueueDepth,
        Stats,
        StatsHistory,
        crate::history::Sample,
        Me,
        Scope,
        Workers,
        WorkerProcess,
        Batcher,
        crate::processing::Counters,
        crate::processing::Processing,
        crate::processing::Bucket,
        crate::processing::Origin,
        crate::processing::Basis,
        crate::processing::Stages,
        crate::processing::StageTime,
        DocumentStateSchema,
        StageSchema,
        DocumentKindSchema,
        EmbedInput,
        OllamaEmbedRequest,
        OllamaEmbedResponse,
        OllamaError,
        OllamaTags,
        OllamaModel,
        OllamaModelDetails,
        OpenAiEmbeddingsRequest,
        OpenAiEmbeddings,
        OpenAiEmbedding,
        OpenAiVector,
        OpenAiUsage,
        OpenAiModels,
        OpenAiModel,
        OpenAiError,
        OpenAiErrorBody,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "documents", description = "Upload, list, inspect, delete and reprocess documents"),
        (name = "search", description = "Search the user's ready documents"),
        (name = "chat", description = "Chat with the configured model, optionally over the user's documents with cited sources"),
        (name = "events", description = "Live progress over WebSocket or Server-Sent Events"),
        (name = "embeddings", description = "The served model over Ollama's (`/api/...`) and OpenAI's (`/v1/embeddings`, `/v1/models`) wire formats, errors in each format's own style"),
        (name = "probes", description = "Health, readiness, metrics and this document; no auth"),
    ),
)]
pub struct ApiDoc;

/// The security schemes the paths refer to: `bearer` (an API key), `event_token` and
/// `file_link`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `ragmill users add`: `Authorization: Bearer KEY`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "event_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A 60-second token from `POST /v1/events/token`, for browsers opening `GET /v1/events`",
            ))),
        );
        components.add_security_scheme(
            "file_link",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A one-hour token from `POST /v1/documents/{id}/file/link`, for a browser tab opening that document's `GET /v1/documents/{id}/file`",
            ))),
        );
    }
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    summary = "This OpenAPI 3.1 document",
    tag = "probes",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")),
)]
pub async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

/// Where a document stands (mirrors `ragmill_store::DocumentState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DocumentState)]
pub enum DocumentStateSchema {
    /// Accepted and waiting for a worker.
    Queued,
    /// A worker is on it.
    Processing,
    /// Its chunks are searchable.
    Ready,
    /// Its last version could not be processed; `error` says why.
    Failed,
    /// Held by its user before it was processed; resuming queues it again.
    Paused,
}

impl From<DocumentState> for DocumentStateSchema {
    fn from(s: DocumentState) -> Self {
        match s {
            DocumentState::Queued => Self::Queued,
            DocumentState::Processing => Self::Processing,
            DocumentState::Ready => Self::Ready,
            DocumentState::Failed => Self::Failed,
            DocumentState::Paused => Self::Paused,
        }
    }
}

/// A stage of processing, in order (mirrors `ragmill_core::Stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Stage)]
pub enum StageSchema {
    /// Accepted, waiting for a worker.
    Queued,
    /// Turning bytes into text.
    Extracting,
    /// Splitting text into token-bounded chunks.
    Chunking,
    /// Looking up the cache and embedding the misses.
    Embedding,
    /// Writing chunks and vectors atomically.
    Storing,
    /// Processed, waiting for the vector index (ChromaDB) to come back; retried with back-off.
    Waiting,
    /// Searchable.
    Ready,
    /// Given up on, with an error.
    Failed,
}

impl From<Stage> for StageSchema {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Queued => Self::Queued,
            Stage::Extracting => Self::Extracting,
            Stage::Chunking => Self::Chunking,
            Stage::Embedding => Self::Embedding,
            Stage::Storing => Self::Storing,
            Stage::Waiting => Self::Waiting,
            Stage::Ready => Self::Ready,
            Stage::Failed => Self::Failed,
        }
    }
}

/// A document format, detected from the content (mirrors `ragmill_core::DocumentKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = DocumentKind)]
pub enum DocumentKindSchema {
    /// Plain text in any encoding.
    Text,
    /// CommonMark / GitHub-flavoured Markdown.
    Markdown,
    /// An HTML page.
    Html,
    /// A PDF with a text layer.
    Pdf,
    /// An Office Open XML word-processing document.
    Docx,
}

impl From<DocumentKind> for DocumentKindSchema {
    fn from(k: DocumentKind) -> Self {
        match k {
            DocumentKind::Text => Self::Text,
            DocumentKind::Markdown => Self::Markdown,
            DocumentKind::Html => Self::Html,
            DocumentKind::Pdf => Self::Pdf,
            DocumentKind::Docx => Self::Docx,
        }
    }
}

/// An event on a user's stream, told apart by `type` (mirrors `ragmill_core::Event`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type")]
#[schema(as = Event)]
pub enum EventSchema {
    /// A document advanced.
    #[serde(rename = "document.progress")]
    Progress {
        /// The document.
        id: i64,
        /// Its stage.
        stage: StageSchema,
        /// Units done in the stage.
        done: usize,
        /// Units in the stage.
        total: usize,
    },
    /// A document became searchable.
    #[serde(rename = "document.ready")]
    Ready {
        /// The document.
        id: i64,
        /// Its chunks.
        chunks: usize,
    },
    /// A document could not be processed.
    #[serde(rename = "document.failed")]
    Failed {
        /// The document.
        id: i64,
        /// `{code, message}`.
        error: ErrorBody,
    },
    /// A document was paused by its user.
    #[serde(rename = "document.paused")]
    Paused {
        /// The document.
        id: i64,
    },
    /// The user's first document became searchable.
    #[serde(rename = "rag.available")]
    RagAvailable,
}

impl From<Event> for EventSchema {
    fn from(e: Event) -> Self {
        match e {
            Event::Progress { id, stage, done, total } => {
                Self::Progress { id: id.0, stage: stage.into(), done, total }
            }
            Event::Ready { id, chunks } => Self::Ready { id: id.0, chunks },
            Event::Failed { id, error } => Self::Failed { id: id.0, error: error.into() },
            Event::Paused { id } => Self::Paused { id: id.0 },
            Event::RagAvailable => Self::RagAvailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_mirror_serialises_like_the_event() {
        use ragmill_core::{DocumentId, Failure};
        let events = [
            Event::Progress { id: DocumentId(1), stage: Stage::Chunking, done: 0, total: 1 },
            Event::Ready { id: DocumentId(2), chunks: 5 },
            Event::Failed {
                id: DocumentId(3),
                error: Failure { code: "no_text".into(), message: "none".into() },
            },
            Event::Paused { id: DocumentId(4) },
            Event::RagAvailable,
        ];
        for e in events {
            let original = serde_json::to_value(&e).expect("serialises");
            assert_eq!(original, serde_json::to_value(EventSchema::from(e)).expect("serialises"));
        }
    }

    fn enum_values(doc: &serde_json::Value, name: &str) -> Vec<serde_json::Value> {
        doc["components"]["schemas"][name]["enum"].as_array().cloned().unwrap_or_default()
    }

    fn same<T: Serialize + Copy, M: Serialize + From<T>>(all: &[T], schema: &[serde_json::Value]) {
        assert_eq!(all.len(), schema.len(), "{schema:?}");
        for &v in all {
            let original = serde_json::to_value(v).expect("serialises");
            assert_eq!(original, serde_json::to_value(M::from(v)).expect("serialises"));
            assert!(schema.contains(&original), "{original} missing from {schema:?}");
        }
    }

    #[test]
    fn mirror_enums_serialise_like_their_originals_and_are_in_the_document() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        use DocumentState as D;
        same::<_, DocumentStateSchema>(
            &[D::Queued, D::Processing, D::Ready, D::Failed, D::Paused],
            &enum_values(&doc, "DocumentState"),
        );
        use Stage as S;
        same::<_, StageSchema>(
            &[
                S::Queued,
                S::Extracting,
                S::Chunking,
                S::Embedding,
                S::Storing,
                S::Waiting,
                S::Ready,
                S::Failed,
            ],
            &enum_values(&doc, "Stage"),
        );
        use DocumentKind as K;
        same::<_, DocumentKindSchema>(
            &[K::Text, K::Markdown, K::Html, K::Pdf, K::Docx],
            &enum_values(&doc, "DocumentKind"),
        );
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
    }
}
