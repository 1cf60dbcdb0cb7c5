//! [`MainServer`]: a `ragmill worker`'s view of the cluster's main server — the [`Catalog`]
//! and [`JobSource`] seams over its authenticated `/internal/v1` routes.
//!
//! A refused connection, a timeout or a 5xx is [`CatalogError::Unavailable`] (the job is
//! retried); 503 `vector_index_unavailable` is [`CatalogError::IndexUnavailable`] (the job
//! waits for the main server's vector index); 410 `document_gone` is [`CatalogError::Gone`]; 409 `model_mismatch` is
//! [`CatalogError::ModelMismatch`]; any other refusal or a garbled answer is
//! [`CatalogError::Failed`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use ragmill_core::{
    Begun, Catalog, CatalogError, ContentHash, DocumentId, FailedVersion, Finished, JobSource,
    StoredVersion, UserId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::chain;
use crate::http::error_message;

/// The main server, as a worker reaches it.
#[derive(Clone)]
pub struct MainServer {
    http: reqwest::Client,
    base: String,
    key: String,
    timeout: Duration,
}

impl MainServer {
    /// The main server at `base` (e.g. `http://main:8080`), authenticated with the cluster's
    /// worker `key`.
    pub fn new(base: &str, key: &str) -> Result<Self, crate::RemoteError> {
        Ok(Self {
            http: crate::http::client()?,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            timeout: Duration::from_secs(300),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/internal/v1/{path}", self.base)
    }

    async fn post<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CatalogError> {
        let response = self
            .http
            .post(self.url(path))
            .timeout(self.timeout)
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .map_err(|e| CatalogError::Unavailable(format!("{}: {}", self.base, chain(&e))))?;
        let bytes = self.checked(response).await?;
        if bytes.is_empty() {
            // 204: decode `null` so `()` and `Option` answers work alike.
            return serde_json::from_slice(b"null")
                .map_err(|e| CatalogError::Failed(e.to_string()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CatalogError::Failed(format!("{}: a garbled answer: {e}", self.base)))
    }

    async fn checked(&self, response: reqwest::Response) -> Result<Vec<u8>, CatalogError> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CatalogError::Unavailable(format!("{}: {}", self.base, chain(&e))))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let message = error_message(&bytes).unwrap_or_else(|| status.to_string());
        let code = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Err(refusal(&self.base, status, &code, message))
    }
}

/// The catalog error a refusal of the main server's stands for, by status and stable code.
fn refusal(base: &str, status: reqwest::StatusCode, code: &str, message: String) -> CatalogError {
    match (status.as_u16(), code) {
        (410, _) | (_, "document_gone") => CatalogError::Gone(DocumentId(0)),
        (409, _) | (_, "model_mismatch") => CatalogError::ModelMismatch(message),
        (_, "vector_index_unavailable") => CatalogError::IndexUnavailable(message),
        (s, _) if s >= 500 => CatalogError::Unavailable(format!("{base}: {status}: {message}")),
        _ => CatalogError::Failed(format!("{base}: {status}: {message}")),
    }
}

#[async_trait]
impl Catalog for MainServer {
    async fn stored(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<Option<StoredVersion>, CatalogError> {
        self.post("stored", &json!({"user": user, "name": name})).await
    }

    async fn cached(
        &self,
        user: UserId,
        model: &str,
        hashes: Vec<ContentHash>,
    ) -> Result<HashMap<ContentHash, Vec<f32>>, CatalogError> {
        let body = json!({"user": user, "model": model, "hashes": hashes});
        let found: Vec<(ContentHash, Vec<f32>)> = self.post("cached", &body).await?;
        Ok(found.into_iter().collect())
    }

    async fn remember(
        &self,
        user: UserId,
        model: &str,
        vectors: Vec<(ContentHash, Vec<f32>)>,
    ) -> Result<(), CatalogError> {
        let body = json!({"user": user, "model": model, "vectors": vectors});
        self.post::<_, ()>("remember", &body).await
    }

    async fn finish(&self, user: UserId, version: Finished) -> Result<DocumentId, CatalogError> {
        let document = version.version.document;
        self.post("finish", &json!({"user": user, "version": version})).await.map_err(|e| {
            match (e, document) {
                (CatalogError::Gone(_), Some(id)) => CatalogError::Gone(id),
                (e, _) => e,
            }
        })
    }

    async fn fail(&self, user: UserId, version: FailedVersion) -> Result<DocumentId, CatalogError> {
        self.post("fail", &json!({"user": user, "version": version})).await
    }
}

#[async_trait]
impl JobSource for MainServer {
    async fn begin(&self, user: UserId, id: DocumentId) -> Result<Option<Begun>, CatalogError> {
        self.post("begin", &json!({"user": user, "document": id})).await
    }

    async fn original(&self, hash: ContentHash, limit: u64) -> Result<Vec<u8>, CatalogError> {
        let url = self.url(&format!("originals/{}", hash.to_hex()));
        let response = self
            .http
            .get(url)
            .timeout(self.timeout)
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| CatalogError::Unavailable(format!("{}: {}", self.base, chain(&e))))?;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(CatalogError::Failed(format!("the original is over {limit} bytes")));
        }
        let bytes = self.checked(response).await?;
        if bytes.len() as u64 > limit {
            return Err(CatalogError::Failed(format!("the original is over {limit} bytes")));
        }
        Ok(bytes)
    }

    async fn requeued(&self, user: UserId, id: DocumentId) -> Result<(), CatalogError> {
        self.post("requeued", &json!({"user": user, "document": id})).await
    }

    async fn wanted(&self, user: UserId, id: DocumentId) -> Result<bool, CatalogError> {
        self.post("wanted", &json!({"user": user, "document": id})).await
    }

    async fn give_up(
        &self,
        user: UserId,
        id: DocumentId,
        code: &str,
        message: &str,
    ) -> Result<(), CatalogError> {
        let body = json!({"user": user, "document": id, "code": code, "message": message});
        self.post("give-up", &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode as S;

    #[test]
    fn refusals_map_by_status_and_code() {
        let r = |status, code: &str| refusal("http://main", status, code, "why".into());
        assert_eq!(r(S::GONE, ""), CatalogError::Gone(DocumentId(0)));
        assert_eq!(r(S::CONFLICT, "model_mismatch"), CatalogError::ModelMismatch("why".into()));
        // The main server's vector index is down: the worker waits, uncounted.
        assert_eq!(
            r(S::SERVICE_UNAVAILABLE, "vector_index_unavailable"),
            CatalogError::IndexUnavailable("why".into())
        );
        assert!(matches!(r(S::BAD_GATEWAY, ""), CatalogError::Unavailable(_)));
        assert!(matches!(r(S::BAD_REQUEST, "invalid_request"), CatalogError::Failed(_)));
    }
}
