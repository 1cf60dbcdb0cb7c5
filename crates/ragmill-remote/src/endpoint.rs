//! One endpoint of a pool: its client, concurrency limit, circuit breaker and metrics, and the
//! [`Slot`] through which every request to it goes.

use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::breaker::{Admission, Breaker, Transition};
use crate::config::{BackendKind, EndpointConfig, PoolConfig};
use crate::error::RemoteError;
use crate::ollama::OllamaClient;
use crate::openai::OpenAiClient;
use crate::stats::{EndpointMetrics, EndpointStats};

/// The client for an endpoint's protocol.
enum Client {
    Ollama(OllamaClient),
    OpenAi(OpenAiClient),
}

impl Client {
    async fn request(
        &self,
        texts: &[String],
        dims: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        match self {
            Client::Ollama(c) => c.request(texts, dims).await,
            Client::OpenAi(c) => c.request(texts, dims).await,
        }
    }
}

pub(crate) struct Endpoint {
    pub url: String,
    pub kind: BackendKind,
    pub batch_size: usize,
    pub max_concurrency: usize,
    client: Client,
    permits: Semaphore,
    pub breaker: Breaker,
    pub metrics: EndpointMetrics,
}

impl Endpoint {
    pub(crate) fn new(config: &EndpointConfig, pool: &PoolConfig, http: &reqwest::Client) -> Self {
        let timeout = pool.attempt_timeout;
        let client = match config.kind {
            BackendKind::Ollama => Client::Ollama(
                OllamaClient::with_http(http.clone(), &config.url, &config.model, 0, timeout)
                    .with_api_key(config.api_key.clone()),
            ),
            BackendKind::OpenAi => Client::OpenAi(OpenAiClient::with_http(
                http.clone(),
                &config.url,
                &config.model,
                config.api_key.clone(),
                0,
                timeout,
            )),
        };
        let max_concurrency = config.effective_max_concurrency();
        Endpoint {
            url: config.url.trim_end_matches('/').to_owned(),
            kind: config.kind,
            batch_size: config.effective_batch_size(),
            max_concurrency,
            client,
            permits: Semaphore::new(max_concurrency),
            breaker: Breaker::new(pool.breaker_failures, pool.breaker_cooldown),
            metrics: EndpointMetrics::default(),
        }
    }

    /// What power-of-two-choices compares: the expected time a new request would take here,
    /// `latency average x (requests in flight + 1)` ("peak EWMA", as Finagle and Linkerd
    /// balance). An endpoint ten times slower than the rest thus gets about a tenth of the
    /// traffic instead of an equal share of slots. `unknown` stands in for the latency of an
    /// endpoint that has not answered yet (the fastest known one, so it gets tried).
    ///
    /// Latencies under a millisecond count as one (loopback noise is not a reason to shun an
    /// endpoint), and an average that has not been refreshed relaxes towards `unknown` with a
    /// half-life of five seconds, so an endpoint avoided for being slow is tried again later.
    pub(crate) fn cost(&self, unknown: u64) -> f64 {
        const FLOOR_US: f64 = 1000.0;
        const HALF_LIFE_MS: f64 = 5000.0;
        let unknown = (unknown as f64).max(FLOOR_US);
        let latency = match self.metrics.ewma_us() {
            None => unknown,
            Some(us) => {
                let us = (us as f64).max(FLOOR_US);
                let age = self.metrics.ewma_age_ms() as f64;
                if us > unknown {
                    unknown + (us - unknown) * 0.5f64.powf(age / HALF_LIFE_MS)
                } else {
                    us
                }
            }
        };
        latency * (self.metrics.in_flight.load(Relaxed) as f64 + 1.0)
    }

    /// The latency average in µs, if any request has finished.
    pub(crate) fn latency_us(&self) -> Option<u64> {
        self.metrics.ewma_us()
    }

    pub(crate) fn has_free_slot(&self) -> bool {
        self.permits.available_permits() > 0
    }

    /// A slot for one attempt, if the endpoint has a free one and its circuit lets a request
    /// through now.
    pub(crate) fn try_slot<'a>(
        &'a self,
        index: usize,
        now: Instant,
        freed: &'a Notify,
    ) -> Option<Slot<'a>> {
        let permit = self.permits.try_acquire().ok()?;
        let admission = self.breaker.admit(now)?;
        self.metrics.in_flight.fetch_add(1, Relaxed);
        Some(Slot { endpoint: self, index, permit: Some(permit), admission, freed, settled: false })
    }

    /// A slot for a health-check probe: no concurrency permit (an open endpoint has no traffic),
    /// and only if a probe is due.
    pub(crate) fn probe_slot<'a>(
        &'a self,
        index: usize,
        now: Instant,
        freed: &'a Notify,
    ) -> Option<Slot<'a>> {
        if !self.breaker.probe_due(now) {
            return None;
        }
        match self.breaker.admit(now)? {
            Admission::Probe => Some(Slot {
                endpoint: self,
                index,
                permit: None,
                admission: Admission::Probe,
                freed,
                settled: false,
            }),
            Admission::Normal => None, // closed in the meantime: nothing to probe
        }
    }

    /// Marks the endpoint failed at once (start-up probe failed or answered another dimension).
    pub(crate) fn eject(&self, error: &RemoteError) {
        self.metrics.set_last_error(error.to_string());
        if self.breaker.eject(Instant::now()) == Transition::Opened {
            tracing::warn!(endpoint = %self.url, %error, "endpoint ejected: circuit opened");
        }
    }

    /// Sends the start-up probe, which learns the dimension (any is accepted here).
    pub(crate) async fn startup_probe(&self) -> Result<usize, RemoteError> {
        self.metrics.probes.fetch_add(1, Relaxed);
        let result = self.client.request(&[crate::PROBE_TEXT.to_owned()], None).await;
        if result.is_err() {
            self.metrics.probe_failures.fetch_add(1, Relaxed);
        }
        result.map(|v| v.first().map_or(0, Vec::len))
    }

    pub(crate) fn stats(&self) -> EndpointStats {
        let m = &self.metrics;
        EndpointStats {
            url: self.url.clone(),
            kind: self.kind,
            batch_size: self.batch_size,
            max_concurrency: self.max_concurrency,
            circuit: self.breaker.state(),
            requests: m.requests.load(Relaxed),
            errors: m.errors.load(Relaxed),
            retries: m.retries.load(Relaxed),
            probes: m.probes.load(Relaxed),
            probe_failures: m.probe_failures.load(Relaxed),
            in_flight: m.in_flight.load(Relaxed),
            latency: m.latency(),
            last_error: m.last_error(),
        }
    }
}

/// What an attempt is, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    First,
    Retry,
    Probe,
}

/// The right to send one attempt to one endpoint: a concurrency permit (not for probes) and the
/// breaker's admission. Dropping it unsettled (the caller gave up) frees a half-open probe for
/// the next request; dropping it at all frees the permit and wakes requests waiting for one.
pub(crate) struct Slot<'a> {
    pub endpoint: &'a Endpoint,
    pub index: usize,
    permit: Option<SemaphorePermit<'a>>,
    admission: Admission,
    freed: &'a Notify,
    settled: bool,
}

impl Slot<'_> {
    /// Embeds `texts` on this endpoint, in requests of at most its batch size (a retry can land
    /// on an endpoint with a smaller one), each under the attempt timeout; checks the answers
    /// against `dims`; records metrics and the outcome in the breaker.
    pub(crate) async fn run(
        &mut self,
        texts: &[String],
        dims: usize,
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        let result = self.send(texts, dims, purpose).await;
        self.settle(result.as_ref().err());
        result
    }

    async fn send(
        &self,
        texts: &[String],
        dims: usize,
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, RemoteError> {
        let ep = self.endpoint;
        let m = &ep.metrics;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(ep.batch_size.max(1)) {
            match purpose {
                Purpose::Probe => m.probes.fetch_add(1, Relaxed),
                Purpose::Retry => {
                    m.retries.fetch_add(1, Relaxed);
                    m.requests.fetch_add(1, Relaxed)
                }
                Purpose::First => m.requests.fetch_add(1, Relaxed),
            };
            let started = Instant::now();
            let result = ep.client.request(chunk, Some(dims)).await;
            if purpose != Purpose::Probe {
                m.observe_latency(started.elapsed());
            }
            match result {
                Ok(vectors) => out.extend(vectors),
                Err(e) => {
                    let counter =
                        if purpose == Purpose::Probe { &m.probe_failures } else { &m.errors };
                    counter.fetch_add(1, Relaxed);
                    m.set_last_error(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn settle(&mut self, error: Option<&RemoteError>) {
        self.settled = true;
        let ep = self.endpoint;
        let now = Instant::now();
        let transition = match error {
            None => ep.breaker.on_success(self.admission),
            Some(e) if e.is_wrong_dimension() => ep.breaker.eject(now),
            Some(_) => ep.breaker.on_failure(self.admission, now),
        };
        match (transition, error) {
            (Transition::Opened, Some(error)) => {
                tracing::warn!(endpoint = %ep.url, %error, "circuit opened");
            }
            (Transition::Closed, _) => {
                tracing::info!(endpoint = %ep.url, "circuit closed: endpoint healthy again");
                // Its latency record dates from when it was failing: start afresh.
                ep.metrics.reset_latency_average();
                self.freed.notify_waiters();
            }
            _ => {}
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.endpoint.breaker.on_cancel(self.admission);
        }
        if self.permit.take().is_some() {
            self.endpoint.metrics.in_flight.fetch_sub(1, Relaxed);
        }
        self.freed.notify_waiters();
    }
}
