//! `GET /v1/stats`: the live figures behind the dashboard, and `GET /v1/stats/history`, the
//! service's of the last minutes; `GET /v1/me`: who the key belongs to.
//!
//! Where each figure comes from, one owner each: documents by state and the queue, from the
//! store and the queue now; what processing did (documents finished, chunks, cache hits, time
//! per document and per stage, failures), from the store's processing log
//! ([`crate::processing`]), so `ragmill ingest` and every worker process count; workers busy,
//! from this process ([`crate::activity`]); batches and endpoints, from the embedder and
//! batcher of this process.
//!
//! Every user sees their own documents, queue and activity; an administrator
//! (`ragmill users add NAME --admin`) sees the whole service's. The embedding backend (model,
//! batches, pool endpoints with latency, errors and circuit state) is shared by everyone, so
//! everyone sees it, but only administrators see endpoint addresses and their last errors.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ragmill_core::UserId;
use ragmill_store::DocumentTotals;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::history::now_ms;
use crate::metrics::BatchTotals;
use crate::processing::{self, Counters, Processing};
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
    /// Seconds since this server process started.
    pub uptime_s: f64,
    /// Documents by state and their chunks, now.
    #[schema(value_type = Object)]
    pub documents: DocumentTotals,
    /// Jobs waiting and held; for a user, their documents queued (`queued`) and processing
    /// (`leased`).
    pub queue: QueueDepth,
    /// Background workers: `busy` on this scope's documents now, and `total`.
    pub workers: Workers,
    /// What processing did over the last `activity.window_s` seconds, from the processing log
    /// (every process's work, `ragmill ingest` included), and the workers busy now.
    pub activity: Counters,
    /// The processing log over the last `window_s` seconds in buckets, who did the work, and
    /// each stage's p50/p95 per document. Null in `GET /v1/stats/history`'s samples (the
    /// answer carries the log's series itself).
    pub processing: Option<Processing>,
    /// The embedding model.
    #[schema(value_type = Object)]
    pub model: Value,
    /// The embedder's own state: for a pool, every endpoint's requests, errors, latency
    /// histogram and circuit; for the local model, engine, precision and kernels.
    #[schema(value_type = Object)]
    pub embedder: Option<Value>,
    /// The batcher that feeds the embedder in this process: batches, texts, texts joined to one
    /// already queued, failures and time (since this process started).
    pub batcher: Batcher,
    /// Every worker process of the cluster heard from lately (this server's own and
    /// `ragmill worker`s elsewhere); administrators only, empty for users.
    pub processes: Vec<WorkerProcess>,
}

/// A worker process as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WorkerProcess {
    /// `<host>:<pid>`.
    pub name: String,
    /// Its machine.
    pub host: String,
    /// Jobs in hand now.
    pub busy: u64,
    /// Jobs it can hold at once.
    pub slots: u64,
    /// Jobs it finished since it started.
    pub jobs_done: u64,
    /// When it started (ms since the Unix epoch).
    pub started_ms: u64,
    /// When it last reported (ms since the Unix epoch, its clock).
    pub last_seen_ms: u64,
}

impl From<ragmill_core::WorkerStatus> for WorkerProcess {
    fn from(s: ragmill_core::WorkerStatus) -> Self {
        let ragmill_core::WorkerStatus {
            name,
            host,
            busy,
            slots,
            jobs_done,
            started_ms,
            last_seen_ms,
        } = s;
        Self { name, host, busy, slots, jobs_done, started_ms, last_seen_ms }
    }
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
    /// Time the embedder took for all batches, in seconds (divide by `batches` for the time
    /// per batch).
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
    let store = Arc::clone(&state.store);
    let admin = blocking(move || store.is_admin(user)).await??;
    Ok(Json(figures(&state, (!admin).then_some(user), true).await?))
}

/// The figures of `user`, or of the whole service for `None`; with `detail`, the processing
/// log's series and stage percentiles too (else `processing` is `None`).
pub(crate) async fn figures(
    state: &AppState,
    user: Option<UserId>,
    detail: bool,
) -> Result<Stats, ApiError> {
    let store = Arc::clone(&state.store);
    let now = now_ms();
    let (documents, log, totals) = blocking(move || -> Result<_, ragmill_store::StoreError> {
        let documents = match user {
            Some(user) => store.user(user).totals()?,
            None => store.totals()?,
        };
        let (log, totals) = if detail {
            let log = processing::read(&store, user, now)?;
            let totals = log.totals();
            (Some(log), totals)
        } else {
            (None, processing::totals(&store, user, now, processing::WINDOW_S)?)
        };
        Ok((documents, log, totals))
    })
    .await??;
    let depth = match user {
        Some(_) => None,
        None => Some(state.queue.depth().await?),
    };
    let (scope, busy, queue) = match (user, depth) {
        (None, Some(d)) => (
            Scope::Service,
            state.activity.service_busy(),
            QueueDepth { queued: d.queued, leased: d.leased, parked: d.parked },
        ),
        (user, _) => (
            Scope::User,
            user.map_or(0, |u| state.activity.user_busy(u)),
            QueueDepth { queued: documents.queued, leased: documents.processing, parked: 0 },
        ),
    };
    let activity = Counters::new(processing::WINDOW_S, &totals, busy);
    let embedder = state.pipeline.embedder();
    let info = embedder.info();
    let mut backend = embedder.stats();
    if user.is_some()
        && let Some(b) = backend.as_mut()
    {
        redact_endpoints(b);
    }
    let batches = state.pipeline.batcher_stats();
    let BatchTotals { failures, seconds } = state.metrics.batch_totals();
    let processes = match user {
        Some(_) => Vec::new(),
        None => state.roster.list().await.into_iter().map(WorkerProcess::from).collect(),
    };
    Ok(Stats {
        processes,
        scope,
        uptime_s: state.activity.uptime_s(),
        documents,
        queue,
        workers: Workers { busy, total: state.config.workers as u64 },
        activity,
        processing: log,
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
    })
}

/// The answer of `GET /v1/stats/history`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsHistory {
    /// Seconds between two samples.
    pub interval_s: u64,
    /// The server's clock now, in milliseconds since the Unix epoch (to align `t_ms`).
    pub now_ms: u64,
    /// What `GET /v1/stats` answered an administrator (its `processing` null), sampled while
    /// this process ran: queue, workers, batches and endpoints. Oldest first.
    pub samples: Vec<crate::history::Sample>,
    /// The whole service's processing log over its window, read now: every process's work,
    /// also what was done before this server started.
    pub processing: Processing,
}

/// `GET /v1/stats/history`.
#[utoipa::path(
    get,
    path = "/v1/stats/history",
    operation_id = "getStatsHistory",
    summary = "The whole service's figures of the last minutes (administrators)",
    description = "What `GET /v1/stats` answered an administrator, sampled every `interval_s` seconds since start-up, for the last few minutes, so a dashboard opened now starts with a past; and the processing log's series over its window, read now (every process's work, also before this server started).",
    tag = "service",
    responses(
        (status = 200, description = "Samples, oldest first", body = StatsHistory),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "`admin_only`: the key's user is not an administrator", body = ErrorResponse),
        (status = 500, description = "Internal error", body = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn history(
    State(state): State<AppState>,
    Auth(user): Auth,
) -> Result<Json<StatsHistory>, ApiError> {
    let store = Arc::clone(&state.store);
    if !blocking(move || store.is_admin(user)).await?? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_only",
            "the service's history is for administrators (ragmill users add NAME --admin)",
        ));
    }
    let (store, now) = (Arc::clone(&state.store), now_ms());
    let log = blocking(move || processing::read(&store, None, now)).await??;
    Ok(Json(StatsHistory {
        interval_s: crate::history::INTERVAL.as_secs(),
        now_ms: now,
        samples: state.history.samples(),
        processing: log,
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
pub(crate) mod tests {
    use super::*;

    /// A `Stats` with nothing in it.
    pub(crate) fn empty_stats() -> Stats {
        Stats {
            scope: Scope::Service,
            uptime_s: 0.0,
            documents: DocumentTotals::default(),
            queue: QueueDepth { queued: 0, leased: 0, parked: 0 },
            workers: Workers { busy: 0, total: 0 },
            activity: Counters::default(),
            processing: None,
            model: Value::Null,
            embedder: None,
            batcher: Batcher { batches: 0, texts: 0, joined: 0, failures: 0, seconds: 0.0 },
            processes: Vec::new(),
        }
    }

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
