//! Which chat models a [`ChatClient`] offers: a fixed list (configured), or the models its
//! server lists (Ollama's `GET /api/tags`, OpenAI's `GET /v1/models`), the configured model
//! always first.
//!
//! A server's list is read at most once a minute and kept; a server that cannot list (down,
//! an error, an answer that is not the protocol's) offers the configured model alone until the
//! next try, so a chat never waits for or fails on the listing. Models whose names say they
//! embed (`nomic-embed-text`, `text-embedding-3-small`) or do something else than chat
//! (`whisper-1`, `dall-e-3`, `tts-1`, moderation) are left out: a server's list mixes them in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::ChatClient;
use crate::config::BackendKind;
use crate::error::RemoteError;
use crate::http::{status_error, transport_error};

/// How long a server's list is kept.
const KEEP: Duration = Duration::from_secs(60);
/// How long listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most models offered.
const MAX_MODELS: usize = 100;
/// Longest model name offered.
const MAX_NAME: usize = 200;
/// Most bytes of a listing read.
const MAX_BODY: usize = 4 << 20;
/// Parts of a name that mark a model that does not chat.
const NOT_CHAT: [&str; 8] =
    ["embed", "whisper", "dall-e", "tts-", "moderation", "transcribe", "rerank", "bge-"];

/// A server's list, and when it was read.
type Listing = Option<(Instant, Vec<String>)>;

/// Where a client's offered models come from.
#[derive(Clone)]
pub(super) enum Offer {
    /// These, as configured (the configured model first).
    Fixed(Arc<[String]>),
    /// The server's list, read now and then.
    Listed(Arc<Mutex<Listing>>),
}

impl Default for Offer {
    fn default() -> Self {
        Offer::Listed(Arc::default())
    }
}

impl ChatClient {
    /// Offers exactly `models` (and the configured model, first), without asking the server.
    pub fn with_models(mut self, models: &[String]) -> Self {
        let mut fixed = vec![self.model.clone()];
        for m in models.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            if !fixed.iter().any(|f| f == m) {
                fixed.push(m.to_owned());
            }
        }
        self.offer = Offer::Fixed(fixed.into());
        self
    }

    /// The models a chat may pick, the configured one first (see the module's docs).
    pub async fn offered(&self) -> Vec<String> {
        let cache = match &self.offer {
            Offer::Fixed(models) => return models.to_vec(),
            Offer::Listed(cache) => cache,
        };
        let mut kept = cache.lock().await;
        if let Some((at, models)) = kept.as_ref()
            && at.elapsed() < KEEP
        {
            return models.clone();
        }
        let listed = match self.list().await {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "the chat server's models could not be listed");
                Vec::new()
            }
        };
        let mut models = vec![self.model.clone()];
        for name in listed.into_iter().filter(|n| chats(n)) {
            if models.len() < MAX_MODELS && !models.contains(&name) {
                models.push(name);
            }
        }
        *kept = Some((Instant::now(), models.clone()));
        models
    }

    /// This client, answering with `model` instead (one of [`ChatClient::offered`]).
    pub fn for_model(&self, model: &str) -> Self {
        Self { model: model.to_owned(), ..self.clone() }
    }

    /// The names the server lists.
    async fn list(&self) -> Result<Vec<String>, RemoteError> {
        let url = match self.backend {
            BackendKind::Ollama => format!("{}/api/tags", self.url),
            BackendKind::OpenAi => crate::openai::api_url(&self.url, "models"),
        };
        let mut request = self.http.get(&url).timeout(LIST_TIMEOUT);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let endpoint = self.url.as_str();
        let mut response =
            request.send().await.map_err(|e| transport_error(endpoint, LIST_TIMEOUT, &e))?;
        let mut body = Vec::new();
        while let Some(bytes) =
            response.chunk().await.map_err(|e| transport_error(endpoint, LIST_TIMEOUT, &e))?
        {
            body.extend_from_slice(&bytes);
            if body.len() > MAX_BODY {
                return Err(invalid(endpoint, "the model list is over 4 MiB"));
            }
        }
        if !response.status().is_success() {
            return Err(status_error(endpoint, response.status(), &body));
        }
        names(self.backend, &body).map_err(|m| invalid(endpoint, m))
    }
}

fn invalid(url: &str, message: &str) -> RemoteError {
    RemoteError::InvalidResponse { url: url.to_owned(), message: message.to_owned() }
}

/// The model names of a listing: Ollama's `{"models": [{"name"}]}` or OpenAI's
/// `{"data": [{"id"}]}`; names that are empty, too long or not printable are skipped.
pub(super) fn names(backend: BackendKind, body: &[u8]) -> Result<Vec<String>, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the model list is not JSON")?;
    let (list, key) = match backend {
        BackendKind::Ollama => (v.get("models"), "name"),
        BackendKind::OpenAi => (v.get("data"), "id"),
    };
    let list = list.and_then(Value::as_array).ok_or("the model list has no models")?;
    Ok(list
        .iter()
        .filter_map(|m| m.get(key).and_then(Value::as_str))
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= MAX_NAME && !n.chars().any(char::is_control))
        .map(str::to_owned)
        .collect())
}

/// Whether a model's name leaves it a chat model (see [`NOT_CHAT`]).
fn chats(name: &str) -> bool {
    let lower = name.to_lowercase();
    !NOT_CHAT.iter().any(|part| lower.contains(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_listings_read_and_garbage_is_an_error() {
        let ollama = br#"{"models":[{"name":"llama3.2:latest","details":{"family":"llama"}},
            {"name":"nomic-embed-text:latest"},{"name":""},{"model":"no-name"}]}"#;
        assert_eq!(
            names(BackendKind::Ollama, ollama),
            Ok(vec!["llama3.2:latest".to_owned(), "nomic-embed-text:latest".to_owned()])
        );
        let openai = br#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"},
            {"id":"text-embedding-3-small"},{"id":"bad\u0007name"},{"id":42}]}"#;
        assert_eq!(
            names(BackendKind::OpenAi, openai),
            Ok(vec!["gpt-4o-mini".to_owned(), "text-embedding-3-small".to_owned()])
        );
        assert!(names(BackendKind::Ollama, b"<html>").is_err());
        assert!(names(BackendKind::OpenAi, br#"{"models":[]}"#).is_err(), "the other shape");
    }

    #[test]
    fn models_that_do_not_chat_are_left_out() {
        for name in ["llama3.2", "qwen2.5:7b", "gpt-4o-mini", "mistral-nemo"] {
            assert!(chats(name), "{name}");
        }
        for name in
            ["nomic-embed-text", "text-embedding-3-small", "whisper-1", "dall-e-3", "tts-1-hd"]
        {
            assert!(!chats(name), "{name}");
        }
    }

    #[tokio::test]
    async fn a_fixed_list_is_offered_as_configured_with_the_model_first() {
        let client = ChatClient::new(BackendKind::Ollama, "http://127.0.0.1:9", "small", None)
            .expect("client")
            .with_models(&["big".into(), "small".into(), " ".into(), "big".into()]);
        assert_eq!(client.offered().await, vec!["small".to_owned(), "big".to_owned()]);
        assert_eq!(client.for_model("big").model(), "big");
    }

    #[tokio::test]
    async fn a_server_that_cannot_list_offers_the_configured_model_alone() {
        // Port 9 (discard) refuses connections on loopback.
        let client =
            ChatClient::new(BackendKind::OpenAi, "http://127.0.0.1:9", "m", None).expect("client");
        assert_eq!(client.offered().await, vec!["m".to_owned()]);
    }
}
