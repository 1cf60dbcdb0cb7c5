//! [`Pool`]: several endpoints serving one model, behind one [`Embedder`].
//!
//! A batch is cut into sub-batches as endpoints have room: each time a slot frees up on some
//! endpoint (power of two choices by expected latency, latency average x (in flight + 1), among endpoints whose
//! circuit lets traffic through), the next texts, as many as that endpoint's batch size, go
//! there. Sub-batches run concurrently; each is retried on failure (after a jittered backoff,
//! on another endpoint when there is one, while the retry budget allows) and its vectors land
//! in their place exactly once. The first sub-batch that cannot be embedded fails the call and
//! cancels the rest.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ragmill_core::{EmbedError, Embedder, ModelInfo};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::budget::RetryBudget;
use crate::config::PoolConfig;
use crate::endpoint::{Endpoint, Purpose, Slot};
use crate::error::RemoteError;
use crate::stats::{PoolMetrics, PoolStats, totals};

/// How often a request waiting for a free slot looks again even unwoken (a cool-down may have
/// ended meanwhile).
const RECHECK: Duration = Duration::from_millis(100);

/// A load-balanced, self-healing pool of remote endpoints serving one model.
///
/// Built by [`Pool::connect`]; implements [`Embedder`]. A background task probes failed
/// endpoints (see [`PoolConfig::health_interval`]); it stops when the pool is dropped.
pub struct Pool {
    inner: Arc<Inner>,
    // Dropping the pool drops this sender, which stops the health-check task.
    _stop_health: oneshot::Sender<()>,
}

pub(crate) struct Inner {
    pub endpoints: Vec<Endpoint>,
    pub config: PoolConfig,
    pub info: ModelInfo,
    budget: RetryBudget,
    /// Woken whenever a slot is freed or a circuit closes.
    pub freed: Notify,
    metrics: PoolMetrics,
}

impl Pool {
    /// Builds the pool and learns the model's dimension by embedding a short text on every
    /// endpoint at once. The dimension most endpoints answer wins (on a tie, that of the first
    /// endpoint in configuration order); endpoints that answer another one, or fail, start with
    /// their circuit open, are logged, and come back through the health check once they answer
    /// correctly.
    ///
    /// Fails with [`EmbedError::Unavailable`] for an invalid configuration or when no endpoint
    /// answers.
    pub async fn connect(config: PoolConfig) -> Result<Pool, EmbedError> {
        config
            .validate()
            .map_err(|m| EmbedError::Unavailable(format!("invalid pool configuration: {m}")))?;
        let http = crate::http::client().map_err(EmbedError::from)?;
        let endpoints: Vec<Endpoint> =
            config.endpoints.iter().map(|e| Endpoint::new(e, &config, &http)).collect();
        // `validate` guarantees at least one endpoint, all of one kind and model.
        let first = &config.endpoints[0];
        let name = format!("{}:{}", first.kind, first.model);

        let answers =
            futures::future::join_all(endpoints.iter().map(Endpoint::startup_probe)).await;
        let mut votes: Vec<(usize, usize)> = Vec::new(); // (dimension, endpoints answering it), first answer first
        for dim in answers.iter().flatten() {
            match votes.iter_mut().find(|(d, _)| d == dim) {
                Some((_, n)) => *n += 1,
                None => votes.push((*dim, 1)),
            }
        }
        // `max_by_key` keeps the last of equal maxima; reversing makes it the first.
        let Some(&(dimensions, _)) = votes.iter().rev().max_by_key(|(_, n)| *n) else {
            let why: Vec<String> =
                answers.iter().filter_map(|a| a.as_ref().err()).map(ToString::to_string).collect();
            return Err(EmbedError::Unavailable(format!(
                "no endpoint of {name} answered: {}",
                why.join("; ")
            )));
        };
        for (endpoint, answer) in endpoints.iter().zip(&answers) {
            match answer {
                Ok(dim) if *dim == dimensions => {}
                Ok(dim) => endpoint.eject(&RemoteError::Shape {
                    url: endpoint.url.clone(),
                    got: 1,
                    dim: *dim,
                    want: 1,
                    want_dim: dimensions,
                }),
                Err(e) => endpoint.eject(e),
            }
        }

        let info = ModelInfo {
            id: name.clone(),
            space: name,
            dimensions,
            max_tokens: config.max_tokens,
            preferred_batch: endpoints.iter().map(|e| e.batch_size).sum(),
        };
        tracing::info!(
            model = %info.id,
            dimensions,
            endpoints = endpoints.len(),
            healthy = answers.iter().filter(|a| a.as_ref().is_ok_and(|d| *d == dimensions)).count(),
            "embedding pool connected"
        );
        let inner = Arc::new(Inner {
            budget: RetryBudget::new(&config.retry_budget),
            endpoints,
            config,
            info,
            freed: Notify::new(),
            metrics: PoolMetrics::default(),
        });
        let (stop, stopped) = oneshot::channel();
        crate::health::spawn(Arc::downgrade(&inner), stopped);
        Ok(Pool { inner, _stop_health: stop })
    }

    /// A snapshot of the pool's metrics: per endpoint and totals.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let endpoints: Vec<_> = inner.endpoints.iter().map(Endpoint::stats).collect();
        PoolStats {
            model: inner.info.id.clone(),
            dimensions: inner.info.dimensions,
            totals: totals(&inner.metrics, &endpoints),
            endpoints,
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("info", &self.inner.info)
            .field(
                "endpoints",
                &self.inner.endpoints.iter().map(|e| e.url.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[async_trait]
impl Embedder for Pool {
    fn stats(&self) -> Option<serde_json::Value> {
        serde_json::to_value(Pool::stats(self)).ok()
    }

    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let m = &self.inner.metrics;
        m.batches.fetch_add(1, Relaxed);
        m.texts.fetch_add(texts.len() as u64, Relaxed);
        let result = self.inner.embed(&texts).await;
        if let Err(e) = &result {
            m.failed_batches.fetch_add(1, Relaxed);
            tracing::warn!(model = %self.inner.info.id, texts = texts.len(), error = %e, "embedding batch failed");
        }
        result
    }
}

impl Inner {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let n = texts.len();
        let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
        let mut next = 0;
        let mut running = FuturesUnordered::new();
        while next < n || !running.is_empty() {
            tokio::select! {
                biased;
                Some(done) = running.next(), if !running.is_empty() => {
                    let (start, vectors): (usize, Vec<Vec<f32>>) = done?;
                    for (i, v) in vectors.into_iter().enumerate() {
                        let place = out.get_mut(start + i).ok_or_else(|| lost("a sub-batch overflowed"))?;
                        if place.replace(v).is_some() {
                            return Err(lost("a text was embedded twice"));
                        }
                    }
                }
                slot = self.acquire(&[]), if next < n => {
                    let slot = slot.map_err(EmbedError::Backend)?;
                    let end = n.min(next + slot.endpoint.batch_size);
                    running.push(self.sub_batch(&texts[next..end], next, slot));
                    next = end;
                }
            }
        }
        out.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| lost("a text was not embedded"))
    }

    /// Embeds one sub-batch starting at `start`, first through `slot`, retrying as allowed.
    async fn sub_batch<'a>(
        &'a self,
        texts: &'a [String],
        start: usize,
        slot: Slot<'a>,
    ) -> Result<(usize, Vec<Vec<f32>>), EmbedError> {
        self.budget.record_request(Instant::now());
        let mut slot = slot;
        let mut tried = Vec::new();
        let mut attempt = 1;
        loop {
            tried.push(slot.index);
            let purpose = if attempt == 1 { Purpose::First } else { Purpose::Retry };
            let result = slot.run(texts, self.info.dimensions, purpose).await;
            drop(slot); // free the slot before backing off
            let error = match result {
                Ok(vectors) => return Ok((start, vectors)),
                Err(e) => e,
            };
            let texts_note = if texts.len() == 1 {
                "1 text".to_owned()
            } else {
                format!("{} texts", texts.len())
            };
            if attempt >= self.config.max_attempts {
                return Err(EmbedError::Backend(format!(
                    "{texts_note} failed after {attempt} attempts; last error: {error}"
                )));
            }
            if !self.budget.try_retry(Instant::now()) {
                self.metrics.retries_denied.fetch_add(1, Relaxed);
                return Err(EmbedError::Backend(format!(
                    "{texts_note} failed and the retry budget is spent (too many failures across the pool); last error: {error}"
                )));
            }
            let backoff = self.backoff(attempt);
            tracing::debug!(%error, attempt, ?backoff, "retrying sub-batch");
            tokio::time::sleep(backoff).await;
            slot = self.acquire(&tried).await.map_err(|m| {
                EmbedError::Backend(format!("{m}; these texts last failed with: {error}"))
            })?;
            attempt += 1;
        }
    }

    /// Full jitter: uniform in `[0, min(max, base × 2^(attempt-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp =
            self.config.backoff_base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.config.backoff_max).mul_f64(fastrand::f64())
    }

    /// Waits for a slot on an endpoint whose circuit lets traffic through, preferring those not
    /// in `avoid` (already tried for this sub-batch) while any of them is available. Fails at
    /// once when no circuit lets traffic through.
    async fn acquire(&self, avoid: &[usize]) -> Result<Slot<'_>, String> {
        loop {
            // Registered before looking, so a slot freed in between still wakes us.
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let now = Instant::now();
            let available: Vec<usize> = (0..self.endpoints.len())
                .filter(|&i| self.endpoints[i].breaker.is_available(now))
                .collect();
            if available.is_empty() {
                return Err(self.none_available());
            }
            let fresh: Vec<usize> =
                available.iter().copied().filter(|i| !avoid.contains(i)).collect();
            let candidates = if fresh.is_empty() { available } else { fresh };
            if let Some(slot) = self.pick(&candidates, now) {
                return Ok(slot);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Power of two choices: of two random candidates with a free slot, the one with the lower
    /// expected time ([`Endpoint::cost`]); the others in order of cost only if both slots were
    /// taken in the meantime. A free endpoint whose cost is more than twice the best of *all*
    /// candidates (busy ones included) is passed over: waiting for a slot on a fast endpoint
    /// beats queueing behind a slow one.
    fn pick(&self, candidates: &[usize], now: Instant) -> Option<Slot<'_>> {
        let unknown =
            candidates.iter().filter_map(|&i| self.endpoints[i].latency_us()).min().unwrap_or(1);
        let cost = |i: usize| self.endpoints[i].cost(unknown);
        let best = candidates.iter().map(|&i| cost(i)).fold(f64::INFINITY, f64::min);
        let mut free: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.endpoints[i].has_free_slot() && cost(i) <= 2.0 * best)
            .collect();
        if free.len() >= 2 {
            let a = fastrand::usize(..free.len());
            let b = (a + 1 + fastrand::usize(..free.len() - 1)) % free.len();
            let (a, b) =
                if cost(free[b]) < cost(free[a]) { (free[b], free[a]) } else { (free[a], free[b]) };
            free.retain(|&i| i != a && i != b);
            free.sort_by(|&x, &y| cost(x).total_cmp(&cost(y)));
            free.splice(0..0, [a, b]);
        }
        free.into_iter().find_map(|i| self.endpoints[i].try_slot(i, now, &self.freed))
    }

    fn none_available(&self) -> String {
        let why: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| match e.metrics.last_error() {
                Some(error) => format!("{} ({})", e.url, error),
                None => e.url.clone(),
            })
            .collect();
        format!(
            "no endpoint of {} available: every circuit is open or probing; {}",
            self.info.id,
            why.join("; ")
        )
    }
}

fn lost(what: &str) -> EmbedError {
    EmbedError::Backend(format!("internal error in the embedding pool: {what}"))
}
