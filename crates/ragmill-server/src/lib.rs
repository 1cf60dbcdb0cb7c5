//! ragmill's HTTP service.
//!
//! [`app`] builds the axum router over an [`AppState`] (the store, the [`Seams`] a deployment
//! swaps — job queue, event bus, live progress — the pipeline and the blob directory);
//! [`ledger::Ledger`] is the one owner of a document's state paired with its job; [`spawn_workers`] starts the background workers that lease jobs and
//! process documents and record [`metrics::Metrics`] (served at `GET /metrics`); [`serve`] runs both until a shutdown signal, then stops accepting
//! connections and lets the workers finish or hand back their jobs. [`openapi::ApiDoc`] is the
//! OpenAPI 3.1 description of every route, generated from the handlers' types and served at
//! `GET /openapi.json`. [`embeddings`] serves the model over Ollama's and OpenAI's embedding
//! wire formats, inside the service or as a lean server of its own.
//!
//! Invariants: only this crate knows about HTTP; every handler that touches a user's data
//! takes [`auth::Auth`] and reaches the store through that user's `UserStore`, so another
//! user's document answers 404 exactly like one that never existed.

pub mod activity;
pub mod auth;
mod blobs;
pub mod embeddings;
mod error;
pub mod events;
pub mod history;
mod jobs;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod processing;
pub mod roster;
mod routes;
mod state;
pub mod sweeper;
pub mod web;
mod worker;

use std::future::Future;
use std::time::Duration;

pub use blobs::Blobs;
pub use error::{ApiError, ErrorResponse};
pub use events::Reporter;
pub use jobs::LocalJobs;
pub use state::{AppState, Seams, ServerConfig};
pub use worker::{WorkerContext, Workers, gone_from_here, spawn_workers, worker_prefix};

/// The router of the whole service.
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves `state` on `listener` with workers until `shutdown` resolves; then stops accepting,
/// drains open requests, and gives workers `grace` to finish before their jobs are released.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let _ = state.local_addr.set(addr);
    }
    let workers = spawn_workers(&state.worker_context());
    let sampler = tokio::spawn(history::record(state.clone()));
    let reconciler =
        tokio::spawn(state.ledger.clone().keep_reconciling(state.config.reconcile_every));
    let sweeper = state
        .pipeline
        .vectors()
        .map(|v| tokio::spawn(sweeper::keep_sweeping(v, state.config.reconcile_every)));
    let result = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await;
    sampler.abort();
    reconciler.abort();
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    workers.shutdown(grace).await;
    result
}
