//! `ragmill bench pool`: the remote embedding pool's load balancing, measured against in-process
//! stand-in endpoints.
//!
//! Endpoints on this machine would share its cores, so they are not real models: each is a
//! [`FakeOllama`] in serial mode, which serves one request at a time with a fixed service time,
//! like a GPU server running one batch at a time. What is measured is therefore the balancer
//! itself: how close the pool gets to `endpoints × batch / service time`, what one slow endpoint
//! does to call latency, and whether jobs see errors when an endpoint dies.
//!
//! Every run is a fixed number of calls of one batch each (`--calls`, or by default as many as
//! the ideal pool serves in `--seconds`), made by `--callers-per-endpoint` concurrent callers per
//! endpoint, each calling `pool.embed` in a loop. The pool runs with its default settings apart
//! from the batch size and concurrency per endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ragmill_core::Embedder;
use ragmill_remote::fake::{FakeOllama, FakeServer};
use ragmill_remote::{BackendKind, EndpointConfig, Pool, PoolConfig, PoolStats};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::Status;
use crate::cli::{BenchPoolArgs, Global};
use crate::commands::print_json;

/// Endpoints in the slow-endpoint and dead-endpoint scenarios.
const FAULT_ENDPOINTS: usize = 4;
/// Which of them turns slow or dies (any would do: the balancer's choices are random).
const FAULTY: usize = 0;

pub async fn run(g: &Global, args: BenchPoolArgs) -> Result<Status> {
    check(&args)?;
    let service = Duration::from_millis(args.service_ms);

    let mut throughput = Vec::new();
    for &endpoints in &args.endpoints {
        let run = Scenario::new(&args, endpoints).run().await?;
        throughput.push(run);
    }

    let healthy = Scenario::new(&args, FAULT_ENDPOINTS).run().await?;
    let mut slow = Scenario::new(&args, FAULT_ENDPOINTS);
    slow.slow = Some(service * args.slowdown);
    let slow = slow.run().await?;

    let mut dead = Scenario::new(&args, FAULT_ENDPOINTS);
    dead.calls = dead.calls.max(2);
    let kill_after = ((dead.calls as f64 * args.kill_at).round() as usize).clamp(1, dead.calls - 1);
    dead.kill_after = Some(kill_after);
    let dead = dead.run().await?;

    let report = Report { args: &args, throughput, healthy, slow, dead };
    if g.json {
        print_json(&report.json());
    } else {
        report.print();
    }
    Ok(Status::Ok)
}

fn check(args: &BenchPoolArgs) -> Result<()> {
    if args.endpoints.is_empty() || args.endpoints.contains(&0) {
        bail!("--endpoints needs counts of at least 1, e.g. 1,2,4,8");
    }
    if args.service_ms == 0 || args.batch == 0 || args.callers_per_endpoint == 0 {
        bail!("--service-ms, --batch and --callers-per-endpoint must be at least 1");
    }
    if args.max_concurrency == 0 || args.slowdown == 0 || args.dim == 0 {
        bail!("--max-concurrency, --slowdown and --dim must be at least 1");
    }
    if args.calls == Some(0) || !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--calls and --seconds must be positive");
    }
    if !(args.kill_at > 0.0 && args.kill_at < 1.0) {
        bail!("--kill-at is a fraction of the run, between 0 and 1 (exclusive)");
    }
    Ok(())
}

/// One run: a pool over fresh stand-in endpoints, driven by concurrent callers.
struct Scenario {
    endpoints: usize,
    service: Duration,
    batch: usize,
    dim: usize,
    max_concurrency: usize,
    callers: usize,
    calls: usize,
    /// The faulty endpoint's service time, from the start.
    slow: Option<Duration>,
    /// Kill the faulty endpoint once this many calls have completed.
    kill_after: Option<usize>,
}

/// One completed call.
struct Call {
    /// When it completed, since the run started.
    end: Duration,
    latency: Duration,
    ok: bool,
}

/// What a run measured.
struct Run {
    endpoints: usize,
    batch: usize,
    service: Duration,
    calls: Vec<Call>,
    elapsed: Duration,
    killed_at: Option<Duration>,
    first_error: Option<String>,
    stats: PoolStats,
}

impl Scenario {
    fn new(args: &BenchPoolArgs, endpoints: usize) -> Scenario {
        let service = Duration::from_millis(args.service_ms);
        let callers = endpoints * args.callers_per_endpoint;
        // By default as many calls as the ideal pool serves in --seconds: each call is one
        // request, and each endpoint serves one request per service time.
        let calls = args.calls.unwrap_or_else(|| {
            let ideal = args.seconds * endpoints as f64 / service.as_secs_f64();
            (ideal.ceil() as usize).max(callers)
        });
        Scenario {
            endpoints,
            service,
            batch: args.batch,
            dim: args.dim,
            max_concurrency: args.max_concurrency,
            callers,
            calls,
            slow: None,
            kill_after: None,
        }
    }

    async fn run(self) -> Result<Run> {
        let mut servers: Vec<FakeServer> = Vec::with_capacity(self.endpoints);
        for _ in 0..self.endpoints {
            let server =
                FakeOllama::start(self.dim).await.context("starting a stand-in endpoint")?;
            server.set_serial(true);
            server.set_latency(self.service);
            servers.push(server);
        }
        if let (Some(slow), Some(server)) = (self.slow, servers.get(FAULTY)) {
            server.set_latency(slow);
        }
        let endpoints = servers
            .iter()
            .map(|s| {
                let mut e = EndpointConfig::new(BackendKind::Ollama, s.url(), "stand-in");
                e.batch_size = Some(self.batch);
                e.max_concurrency = Some(self.max_concurrency);
                e
            })
            .collect();
        let pool = Arc::new(
            Pool::connect(PoolConfig::new(endpoints))
                .await
                .context("connecting the pool to the stand-in endpoints")?,
        );

        let texts: Arc<[String]> = (0..self.batch)
            .map(|i| format!("stand-in chunk {i}: the quick brown fox jumps over the lazy dog"))
            .collect();
        let claimed = Arc::new(AtomicUsize::new(0));
        let completed = Arc::new(AtomicUsize::new(0));
        let progress = Arc::new(Notify::new());
        let errors = Arc::new(std::sync::Mutex::new(None::<String>));
        let started = Instant::now();
        let mut callers = JoinSet::new();
        for _ in 0..self.callers {
            let (pool, texts, claimed, completed, progress, errors) = (
                pool.clone(),
                texts.clone(),
                claimed.clone(),
                completed.clone(),
                progress.clone(),
                errors.clone(),
            );
            let total = self.calls;
            callers.spawn(async move {
                let mut calls = Vec::new();
                while claimed.fetch_add(1, SeqCst) < total {
                    let t0 = Instant::now();
                    let result = pool.embed(texts.to_vec()).await;
                    let latency = t0.elapsed();
                    let error = match result {
                        Ok(vectors) if vectors.len() == texts.len() => None,
                        Ok(vectors) => Some(format!(
                            "{} vectors answered for {} texts",
                            vectors.len(),
                            texts.len()
                        )),
                        Err(e) => Some(e.to_string()),
                    };
                    let ok = error.is_none();
                    if let Some(error) = error {
                        errors
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert(error);
                    }
                    calls.push(Call { end: started.elapsed(), latency, ok });
                    completed.fetch_add(1, SeqCst);
                    progress.notify_one();
                }
                calls
            });
        }

        let mut calls = Vec::with_capacity(self.calls);
        let mut killed_at = None;
        if let (Some(after), Some(server)) = (self.kill_after, servers.get(FAULTY)) {
            // Every claimed call completes, failed or not, and `after` is below the total, so
            // this ends; `notify_one` keeps a permit when nobody waits, so no completion is
            // missed. Callers that end meanwhile are collected (a panic ends the benchmark).
            while completed.load(SeqCst) < after && !callers.is_empty() {
                tokio::select! {
                    () = progress.notified() => {}
                    Some(done) = callers.join_next() => {
                        calls.extend(done.context("a benchmark caller panicked")?);
                    }
                }
            }
            server.kill().await;
            killed_at = Some(started.elapsed());
        }

        while let Some(done) = callers.join_next().await {
            calls.extend(done.context("a benchmark caller panicked")?);
        }
        let elapsed = started.elapsed();
        let first_error = errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        Ok(Run {
            endpoints: self.endpoints,
            batch: self.batch,
            service: self.service,
            calls,
            elapsed,
            killed_at,
            first_error,
            stats: pool.stats(),
        })
    }
}

impl Run {
    fn failed(&self) -> usize {
        self.calls.iter().filter(|c| !c.ok).count()
    }

    /// Texts embedded per second by the calls that succeeded and completed in `(from, to]`.
    fn rate(&self, from: Duration, to: Duration) -> f64 {
        let ok = self.calls.iter().filter(|c| c.ok && c.end > from && c.end <= to).count();
        let seconds = to.saturating_sub(from).as_secs_f64();
        if seconds > 0.0 { (ok * self.batch) as f64 / seconds } else { 0.0 }
    }

    /// Texts embedded per second over the whole run.
    fn texts_per_s(&self) -> f64 {
        self.rate(Duration::ZERO, self.elapsed)
    }

    /// `endpoints × batch / service time`.
    fn ideal(&self, endpoints: usize) -> f64 {
        (endpoints * self.batch) as f64 / self.service.as_secs_f64()
    }

    /// Nearest-rank percentile of the successful calls' latency, in milliseconds.
    fn percentile(&self, p: f64) -> f64 {
        let mut ms: Vec<f64> =
            self.calls.iter().filter(|c| c.ok).map(|c| c.latency.as_secs_f64() * 1e3).collect();
        if ms.is_empty() {
            return f64::NAN;
        }
        ms.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms[rank.clamp(1, ms.len()) - 1]
    }

    /// Embedding requests the pool sent to the faulty endpoint, and to all.
    fn faulty_requests(&self) -> (u64, u64) {
        let faulty = self.stats.endpoints.get(FAULTY).map_or(0, |e| e.requests);
        (faulty, self.stats.totals.requests)
    }

    fn summary(&self) -> Value {
        let texts_per_s = self.texts_per_s();
        let ideal = self.ideal(self.endpoints);
        json!({
            "endpoints": self.endpoints,
            "calls": self.calls.len(),
            "failed_calls": self.failed(),
            "seconds": self.elapsed.as_secs_f64(),
            "texts_per_s": texts_per_s,
            "ideal_texts_per_s": ideal,
            "efficiency": texts_per_s / ideal,
            "p50_ms": finite(self.percentile(50.0)),
            "p95_ms": finite(self.percentile(95.0)),
            "p99_ms": finite(self.percentile(99.0)),
            "requests": self.stats.totals.requests,
            "retries": self.stats.totals.retries,
            "first_error": self.first_error,
        })
    }
}

/// JSON has no NaN: `null` instead.
fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

struct Report<'a> {
    args: &'a BenchPoolArgs,
    throughput: Vec<Run>,
    healthy: Run,
    slow: Run,
    dead: Run,
}

impl Report<'_> {
    fn json(&self) -> Value {
        let a = self.args;
        let with_share = |run: &Run| {
            let mut v = run.summary();
            let (faulty, all) = run.faulty_requests();
            v["faulty_endpoint_requests"] = json!(faulty);
            v["faulty_endpoint_share"] = json!(share(faulty, all));
            v
        };
        let d = &self.dead;
        let killed = d.killed_at.unwrap_or(d.elapsed);
        let killed_after = d.calls.iter().filter(|c| c.end <= killed).count();
        json!({
            "stand_in": "in-process fake Ollama endpoints serving one request at a time with a fixed service time; no model",
            "service_ms": a.service_ms,
            "batch": a.batch,
            "dim": a.dim,
            "callers_per_endpoint": a.callers_per_endpoint,
            "max_concurrency": a.max_concurrency,
            "throughput": self.throughput.iter().map(Run::summary).collect::<Vec<_>>(),
            "slow_endpoint": {
                "endpoints": FAULT_ENDPOINTS,
                "slowdown": a.slowdown,
                "healthy": with_share(&self.healthy),
                "slow": with_share(&self.slow),
            },
            "dead_endpoint": {
                "endpoints": FAULT_ENDPOINTS,
                "calls": d.calls.len(),
                "killed_after_calls": killed_after,
                "killed_at_s": killed.as_secs_f64(),
                "failed_calls": d.failed(),
                "retries": d.stats.totals.retries,
                "retries_denied": d.stats.totals.retries_denied,
                "errors": d.stats.totals.errors,
                "texts_per_s_before": d.rate(Duration::ZERO, killed),
                "texts_per_s_after": d.rate(killed, d.elapsed),
                "ideal_texts_per_s_before": d.ideal(FAULT_ENDPOINTS),
                "ideal_texts_per_s_after": d.ideal(FAULT_ENDPOINTS - 1),
                "first_error": d.first_error,
            },
        })
    }

    fn print(&self) {
        let a = self.args;
        println!(
            "Stand-in endpoints: in-process fake Ollama servers, each serving one request at a time \
             in {} ms (no model); {} texts per request and call, {} callers per endpoint, \
             at most {} requests in flight per endpoint. A call's latency includes its wait behind \
             the requests queued before it on its endpoint.",
            a.service_ms, a.batch, a.callers_per_endpoint, a.max_concurrency
        );
        println!();
        println!("Throughput (ideal = endpoints × {} texts / {} ms)", a.batch, a.service_ms);
        println!();
        println!("| endpoints | calls | texts/s | ideal texts/s | efficiency | p50 ms | p99 ms |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for run in &self.throughput {
            let measured = run.texts_per_s();
            let ideal = run.ideal(run.endpoints);
            println!(
                "| {} | {} | {measured:.0} | {ideal:.0} | {:.2} | {:.0} | {:.0} |",
                run.endpoints,
                run.calls.len(),
                measured / ideal,
                run.percentile(50.0),
                run.percentile(99.0),
            );
        }
        println!();
        println!(
            "One slow endpoint ({FAULT_ENDPOINTS} endpoints; endpoint {} serves in {} ms instead of {} ms from the start)",
            FAULTY + 1,
            a.service_ms * u64::from(a.slowdown),
            a.service_ms
        );
        println!();
        println!(
            "| pool | calls | p50 ms | p95 ms | p99 ms | texts/s | requests to endpoint {} |",
            FAULTY + 1
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, run) in
            [("all healthy", &self.healthy), (&*format!("one {}× slower", a.slowdown), &self.slow)]
        {
            let (faulty, all) = run.faulty_requests();
            println!(
                "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {faulty} of {all} ({:.1}%) |",
                run.calls.len(),
                run.percentile(50.0),
                run.percentile(95.0),
                run.percentile(99.0),
                run.texts_per_s(),
                share(faulty, all) * 100.0,
            );
        }
        println!();
        let d = &self.dead;
        let killed = d.killed_at.unwrap_or(d.elapsed);
        let killed_after = d.calls.iter().filter(|c| c.end <= killed).count();
        println!(
            "One endpoint dies ({FAULT_ENDPOINTS} endpoints; endpoint {} killed after {killed_after} of {} calls, at {:.1} s)",
            FAULTY + 1,
            d.calls.len(),
            killed.as_secs_f64()
        );
        println!();
        println!(
            "| calls | failed calls | retries | retries denied | texts/s before (ideal) | texts/s after (ideal) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {} | {} | {:.0} ({:.0}) | {:.0} ({:.0}) |",
            d.calls.len(),
            d.failed(),
            d.stats.totals.retries,
            d.stats.totals.retries_denied,
            d.rate(Duration::ZERO, killed),
            d.ideal(FAULT_ENDPOINTS),
            d.rate(killed, d.elapsed),
            d.ideal(FAULT_ENDPOINTS - 1),
        );
        let failures: Vec<(String, &Run)> = self
            .throughput
            .iter()
            .map(|r| (format!("{} endpoints", r.endpoints), r))
            .chain([
                ("all healthy".to_owned(), &self.healthy),
                ("one slow".to_owned(), &self.slow),
                ("one dead".to_owned(), &self.dead),
            ])
            .filter(|(_, r)| r.failed() > 0)
            .collect();
        for (name, run) in failures {
            eprintln!(
                "warning: {} calls failed in the run \"{name}\"; first error: {}",
                run.failed(),
                run.first_error.as_deref().unwrap_or("unknown")
            );
        }
    }
}

fn share(part: u64, all: u64) -> f64 {
    if all == 0 { 0.0 } else { part as f64 / all as f64 }
}
