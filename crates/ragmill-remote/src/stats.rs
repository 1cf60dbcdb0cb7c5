//! Per-endpoint and pool metrics: lock-free counters while serving, a serialisable snapshot
//! ([`PoolStats`]) on demand.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::config::BackendKind;

/// Upper bounds of the latency histogram's buckets, in milliseconds; a last bucket counts
/// everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 12] =
    [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

/// An endpoint's circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Healthy: traffic flows.
    Closed,
    /// Failing: no traffic until the cool-down is over.
    Open,
    /// Cool-down over: one probe request is (or may be) in flight.
    HalfOpen,
}

/// Request latencies of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyHistogram {
    /// Upper bounds of the buckets in milliseconds ([`LATENCY_BUCKETS_MS`]).
    pub bounds_ms: Vec<u64>,
    /// Requests per bucket (not cumulative); one more than `bounds_ms`, the last counting
    /// requests slower than every bound.
    pub counts: Vec<u64>,
    /// Requests measured.
    pub count: u64,
    /// Their total time in milliseconds.
    pub sum_ms: f64,
}

/// One endpoint's counters and state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStats {
    /// The endpoint's base URL.
    pub url: String,
    /// Its protocol.
    pub kind: BackendKind,
    /// Texts per request.
    pub batch_size: usize,
    /// Requests in flight at most.
    pub max_concurrency: usize,
    /// The circuit breaker's state.
    pub circuit: CircuitState,
    /// Embedding requests sent (retries included, health probes not).
    pub requests: u64,
    /// Requests that failed (error status, transport error, timeout, bad answer).
    pub errors: u64,
    /// Requests that were retries of a sub-batch that failed elsewhere or here.
    pub retries: u64,
    /// Health-check probes sent by the background task.
    pub probes: u64,
    /// Probes that failed.
    pub probe_failures: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Latency of every completed request, failed ones included.
    pub latency: LatencyHistogram,
    /// The last failure, one line.
    pub last_error: Option<String>,
}

/// Sums over the pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolTotals {
    /// Calls of `embed` on the pool.
    pub batches: u64,
    /// Texts in them.
    pub texts: u64,
    /// Calls that returned an error.
    pub failed_batches: u64,
    /// Requests sent, over all endpoints.
    pub requests: u64,
    /// Failed requests, over all endpoints.
    pub errors: u64,
    /// Retries sent, over all endpoints.
    pub retries: u64,
    /// Retries not sent because the retry budget was spent.
    pub retries_denied: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Endpoints whose circuit is closed.
    pub closed: usize,
    /// Endpoints whose circuit is open.
    pub open: usize,
    /// Endpoints whose circuit is half-open.
    pub half_open: usize,
}

/// A snapshot of a [`Pool`](crate::Pool)'s metrics (served as `GET /v1/stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolStats {
    /// The model, as `ModelInfo::id` (`kind:model`).
    pub model: String,
    /// Its vectors' dimension.
    pub dimensions: usize,
    /// Every endpoint, in configuration order.
    pub endpoints: Vec<EndpointStats>,
    /// Sums over the pool.
    pub totals: PoolTotals,
}

/// The live counters of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct EndpointMetrics {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub probes: AtomicU64,
    pub probe_failures: AtomicU64,
    pub in_flight: AtomicUsize,
    latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_us: AtomicU64,
    /// Exponentially weighted moving average of request latency, in µs (0: none seen yet).
    ewma_us: AtomicU64,
    /// When `ewma_us` was last updated, in ms since [`epoch`].
    ewma_at_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Milliseconds since the first call, on a monotonic clock.
fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl EndpointMetrics {
    pub(crate) fn observe_latency(&self, took: Duration) {
        let ms = took.as_millis();
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| ms <= u128::from(b))
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        if let Some(counter) = self.latency.get(bucket) {
            counter.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Relaxed);
        // new = 3/4 old + 1/4 sample; a racing update may drop a sample, which is harmless.
        let old = self.ewma_us.load(Relaxed);
        let new = if old == 0 { us.max(1) } else { (old / 4 * 3).saturating_add(us / 4).max(1) };
        self.ewma_us.store(new, Relaxed);
        self.ewma_at_ms.store(epoch_ms(), Relaxed);
    }

    /// Forgets the latency average (after the endpoint's circuit closes again).
    pub(crate) fn reset_latency_average(&self) {
        self.ewma_us.store(0, Relaxed);
    }

    /// Milliseconds since the latency average was last updated.
    pub(crate) fn ewma_age_ms(&self) -> u64 {
        epoch_ms().saturating_sub(self.ewma_at_ms.load(Relaxed))
    }

    /// The latency average, in µs; `None` before the first request.
    pub(crate) fn ewma_us(&self) -> Option<u64> {
        Some(self.ewma_us.load(Relaxed)).filter(|&v| v > 0)
    }

    pub(crate) fn set_last_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn latency(&self) -> LatencyHistogram {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Relaxed)).collect();
        LatencyHistogram {
            bounds_ms: LATENCY_BUCKETS_MS.to_vec(),
            count: counts.iter().sum(),
            counts,
            sum_ms: self.latency_sum_us.load(Relaxed) as f64 / 1000.0,
        }
    }
}

/// The live counters of the pool as a whole.
#[derive(Debug, Default)]
pub(crate) struct PoolMetrics {
    pub batches: AtomicU64,
    pub texts: AtomicU64,
    pub failed_batches: AtomicU64,
    pub retries_denied: AtomicU64,
}

pub(crate) fn totals(pool: &PoolMetrics, endpoints: &[EndpointStats]) -> PoolTotals {
    let count = |state| endpoints.iter().filter(|e| e.circuit == state).count();
    PoolTotals {
        batches: pool.batches.load(Relaxed),
        texts: pool.texts.load(Relaxed),
        failed_batches: pool.failed_batches.load(Relaxed),
        requests: endpoints.iter().map(|e| e.requests).sum(),
        errors: endpoints.iter().map(|e| e.errors).sum(),
        retries: endpoints.iter().map(|e| e.retries).sum(),
        retries_denied: pool.retries_denied.load(Relaxed),
        in_flight: endpoints.iter().map(|e| e.in_flight).sum(),
        closed: count(CircuitState::Closed),
        open: count(CircuitState::Open),
        half_open: count(CircuitState::HalfOpen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let m = EndpointMetrics::default();
        m.observe_latency(Duration::from_millis(3));
        m.observe_latency(Duration::from_millis(5));
        m.observe_latency(Duration::from_millis(7));
        m.observe_latency(Duration::from_secs(60));
        let h = m.latency();
        assert_eq!(h.counts.len(), h.bounds_ms.len() + 1);
        assert_eq!((h.counts[0], h.counts[1], h.counts[12], h.count), (2, 1, 1, 4));
        assert!((h.sum_ms - 60_015.0).abs() < 1e-6);
    }
}
