//! `GET /v1/stats`: the live figures behind the dashboard; `GET /v1/me`: who the key belongs to.
//!
//! Every user sees their own documents, queue and activity; an administrator
//! (`ragmill users add NAME --admin`) sees the whole service's. The embedding backend (model,
//! batches, pool endpoints with latency, errors and circuit state) is shared by everyone, so
//! everyone sees it, but only administrators see endpoint addresses and their last errors.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ragmill_store::DocumentTotals;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::activity::Counters;
use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::metrics::BatchTotals;
use crate::routes::QueueDepth;
use crate::state::AppState;

/// Whose figures a [`Stats`] answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The asking user's own documents.
    User,
    /// Every user's (administrators).
    Service,
}

/// The answer of `GET /v1/stats`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// `user` or `service` (administrators).
    pub scope: Scope,
    /// Seconds since the counters in `activity` started (the process start).
    pub uptime_s: f64,
    /// Documents by state and their chunks, now.
    #[schema(value_type = Object)]
    pub documents: DocumentTotals,
    /// Jobs waiting and held; for a user, their documents queued (`queued`) and processing
    /// (`leased`).
    pub queue: QueueDepth,
    /// Background workers: `busy` on this scope's documents now, and `total`.
    pub workers: Workers,
    /// Counters since start-up; read twice for rates.
    pub activity: Counters,
    /// The embedding model.
    #[schema(value_type = Object)]
    pub model: Value,
    /// The embedder's own state: for a pool, every endpoint's requests, errors, latency
    /// histogram and circuit; for the local model, engine, precision and kernels.
    #[schema(value_type = Object)]
    pub embedder: Option<Value>,
    /// The batcher that feeds the embedder: batches, texts, texts joined to one already queued,
    /// failures and time.
    pub batcher: Batcher,
}

/// Workers busy and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Workers {
    /// Processing a document of this scope now.
    pub busy: u64,
    /// Started by this process.
    pub total: u64,
}

/// The batcher's totals since start-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Batcher {
    /// Batches sent to the embedder.
    pub batches: u64,
    /// Texts in them.
    pub texts: u64,
    /// Texts joined to an identical one already queued or in flight.
    pub joined: u64,
    /// Batches that failed.
    pub failures: u64,
    /// Time the embedder took for all batches, in seconds.
    pub seconds: f64,
}

/// The answer of `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Me {
    /// The user's name.
    pub user: String,
    /// Whether they are an administrator (their `GET /v1/stats` covers the whole service).
    pub admin: bool,
}

/// `GET /v1/me`.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "getMe",
    summary = "The user the API key belongs to",
    tag = "service",
    responses(
        (status = 200, description = "The key's user and role", body = Me),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn me(State(state): State<AppState>, Auth(user): Auth) -> Result<Json<Me>, ApiError> {
    let store = Arc::clone(&state.store);
    let account = blocking(move || store.account(user)).await??;
    // A key whose user was deleted meanwhile is as good as unknown.
    let account = account.ok_or_else(ApiError::unauthorized)?;
    Ok(Json(Me { user: account.name, admin: account.admin }))
}

/// `GET /v1/stats`.
#[utoipa::path(
    get,
    path = "/v1/stats",
    operation_id = "getStats",
    summary = "Live figures for the dashboard: the user's own, or the whole service's for an administrator",
    tag = "service",
    responses(
        (status = 200, description = "Documents, queue, workers, counters since start-up, and the embedding backend", body = Stats),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn stats(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<Stats>, ApiError> {
    let (store, queue) = (Arc::clone(&state.store), Arc::clone(&state.queue));
    let (admin, documents, depth) = blocking(move || {
        let admin = store.is_admin(user)?;
        let documents = if admin { store.totals()? } else { store.user(user).totals()? };
        let depth = if admin { Some(queue.depth()?) } else { None };
        Ok::<_, ApiError>((admin, documents, depth))
    })
    .await??;
    let (scope, activity, queue) = match depth {
        Some(d) if admin => (
            Scope::Service,
            state.activity.service(),
            QueueDepth { queued: d.queued, leased: d.leased, parked: d.parked },
        ),
        _ => (
            Scope::User,
            state.activity.user(user),
            QueueDepth { queued: documents.queued, leased: documents.processing, parked: 0 },
        ),
    };
    let embedder = state.pipeline.embedder();
    let info = embedder.info();
    let mut backend = embedder.stats();
    if !admin && let Some(b) = backend.as_mut() {
        redact_endpoints(b);
    }
    let batches = state.pipeline.batcher_stats();
    let BatchTotals { failures, seconds, .. } = state.metrics.batch_totals();
    Ok(Json(Stats {
        scope,
        uptime_s: state.activity.uptime_s(),
        documents,
        queue,
        workers: Workers { busy: activity.workers_busy, total: state.config.workers as u64 },
        activity,
        model: json!({
            "id": info.id,
            "space": info.space,
            "dimensions": info.dimensions,
            "max_tokens": info.max_tokens,
            "preferred_batch": info.preferred_batch,
        }),
        embedder: backend,
        batcher: Batcher {
            batches: batches.batches,
            texts: batches.texts,
            joined: batches.joined,
            failures,
            seconds,
        },
    }))
}

/// Replaces endpoint addresses by `endpoint N` and drops their last errors (which may name
/// hosts): the operator's network layout is not every user's business.
fn redact_endpoints(stats: &mut Value) {
    if let Some(endpoints) = stats.get_mut("endpoints").and_then(Value::as_array_mut) {
        for (i, e) in endpoints.iter_mut().enumerate() {
            if let Some(e) = e.as_object_mut() {
                e.insert("url".into(), Value::String(format!("endpoint {}", i + 1)));
                e.insert("last_error".into(), Value::Null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_addresses_and_errors_but_keeps_the_figures() {
        let mut v = json!({"endpoints": [
            {"url": "http://10.0.0.7:11434", "last_error": "connect to 10.0.0.7 refused", "errors": 3},
            {"url": "http://gpu-2:11434", "last_error": null, "errors": 0},
        ]});
        redact_endpoints(&mut v);
        assert_eq!(v["endpoints"][0]["url"], "endpoint 1");
        assert_eq!(v["endpoints"][1]["url"], "endpoint 2");
        assert_eq!(v["endpoints"][0]["last_error"], Value::Null);
        assert_eq!(v["endpoints"][0]["errors"], 3);
        let mut local = json!({"backend": "local", "engine": "native"});
        redact_endpoints(&mut local);
        assert_eq!(local, json!({"backend": "local", "engine": "native"}));
    }
}
