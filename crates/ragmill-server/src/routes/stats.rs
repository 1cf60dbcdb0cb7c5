//! `GET /v1/stats`: the embedding backend's live state, for operators and the dashboard.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::state::AppState;

/// The embedder's state (for a pool: every endpoint's requests, errors, latency histogram,
/// requests in flight and circuit state; for the local model: engine, precision, kernels) and
/// the batcher's totals. Any valid API key may read it.
#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = "service",
    responses(
        (status = 200, description = "Embedding backend and batcher state", body = Object),
        (status = 401, description = "Missing or unknown API key", body = crate::ErrorResponse),
    ),
    security(("bearer" = [])),
)]
pub async fn stats(State(state): State<AppState>, Auth(_): Auth) -> Json<Value> {
    let embedder = state.pipeline.embedder();
    let info = embedder.info();
    let batches = state.pipeline.batcher_stats();
    Json(json!({
        "model": {
            "id": info.id,
            "space": info.space,
            "dimensions": info.dimensions,
            "max_tokens": info.max_tokens,
            "preferred_batch": info.preferred_batch,
        },
        "embedder": embedder.stats(),
        "batcher": {
            "batches": batches.batches,
            "texts": batches.texts,
            "joined": batches.joined,
        },
    }))
}
