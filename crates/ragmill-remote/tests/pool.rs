//! The pool against fake servers on loopback: same answers with one or several endpoints, failing
//! / wrong-dimension / slow / killed endpoints ejected and healed without failing a batch, the
//! retry budget against a retry storm, power-of-two-choices, metrics, the health task's end.
//!
//! No fixed sleeps stand in for conditions (they are polled, with generous deadlines), and times
//! are asserted only as generous upper bounds.

mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{FakeServer, all_expected, ollama, openai, texts, wait_until};
use ragmill_core::{EmbedError, Embedder};
use ragmill_remote::{BackendKind, CircuitState, EndpointConfig, EndpointStats, Pool, PoolConfig};

const DIM: usize = 16;
const DEADLINE: Duration = Duration::from_secs(30);

/// A pool of `servers` (all `kind`), with quick breakers, backoff and health checks for tests.
fn config(kind: BackendKind, servers: &[&FakeServer]) -> PoolConfig {
    let mut c = PoolConfig::new(
        servers.iter().map(|s| EndpointConfig::new(kind, s.url(), "fake-model")).collect(),
    );
    c.attempt_timeout = Duration::from_secs(5);
    c.backoff_base = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(50);
    c.breaker_failures = 3;
    c.breaker_cooldown = Duration::from_millis(200);
    c.health_interval = Duration::from_millis(50);
    c
}

fn endpoint(pool: &Pool, server: &FakeServer) -> EndpointStats {
    pool.stats().endpoints.into_iter().find(|e| e.url == server.url()).expect("endpoint in stats")
}

/// `workers` concurrent callers, each embedding `calls` batches of `per_call` texts; every
/// result is checked against the expected vectors. Returns the number of failed calls.
async fn traffic(pool: &Arc<Pool>, workers: usize, calls: usize, per_call: usize) -> usize {
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut failed = 0;
                for c in 0..calls {
                    let input: Vec<String> =
                        texts(per_call).into_iter().map(|t| format!("w{w} c{c} {t}")).collect();
                    match pool.embed(input.clone()).await {
                        Ok(got) => {
                            assert!(all_expected(&input, &got, DIM), "wrong or misplaced vectors")
                        }
                        Err(e) => {
                            eprintln!("embed failed: {e}");
                            failed += 1;
                        }
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.expect("worker");
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_vectors_in_same_order_with_one_or_three_endpoints() {
    let input = texts(100);

    let solo = ollama(DIM).await;
    let mut c1 = config(BackendKind::Ollama, &[&solo]);
    c1.endpoints[0].batch_size = Some(8);
    let one = Pool::connect(c1).await.expect("connect 1");

    let trio = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    let mut c3 = config(BackendKind::Ollama, &[&trio[0], &trio[1], &trio[2]]);
    for (e, size) in c3.endpoints.iter_mut().zip([7, 16, 5]) {
        e.batch_size = Some(size);
    }
    let three = Pool::connect(c3).await.expect("connect 3");

    assert_eq!(one.info().id, "ollama:fake-model");
    assert_eq!(one.info().space, "ollama:fake-model");
    assert_eq!((one.info().dimensions, one.info().max_tokens), (DIM, 512));
    assert_eq!(three.info().preferred_batch, 7 + 16 + 5);

    let probed: Vec<usize> = trio.iter().map(FakeServer::texts).collect(); // one text each at connect
    let a = one.embed(input.clone()).await.expect("one endpoint");
    let b = three.embed(input.clone()).await.expect("three endpoints");
    assert!(all_expected(&input, &a, DIM));
    assert_eq!(a, b, "bit-identical vectors in the same order");
    let served: Vec<usize> = trio.iter().zip(&probed).map(|(s, p)| s.texts() - p).collect();
    assert_eq!(served.iter().sum::<usize>(), 100, "each text embedded once: {served:?}");
    assert!(served.iter().filter(|&&n| n > 0).count() >= 2, "the batch was spread: {served:?}");

    // OpenAI wire: shuffled `index` order and base64 on some endpoints change nothing.
    let open = [openai(DIM).await, openai(DIM).await, openai(DIM).await];
    open[0].set_shuffle(true);
    open[1].set_base64(true);
    let mut co = config(BackendKind::OpenAi, &[&open[0], &open[1], &open[2]]);
    for e in &mut co.endpoints {
        e.batch_size = Some(9);
    }
    let pool = Pool::connect(co).await.expect("connect openai");
    assert_eq!(pool.info().id, "openai:fake-model");
    assert_eq!(pool.embed(input.clone()).await.expect("openai pool"), a);
    assert!(pool.embed(Vec::new()).await.expect("nothing").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_endpoint_is_ejected_carried_and_healed() {
    let s = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]]);
    for e in &mut c.endpoints {
        e.batch_size = Some(4);
    }
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));
    s[2].set_failing(true);

    assert_eq!(traffic(&pool, 4, 10, 10).await, 0, "no batch failed");
    let bad = endpoint(&pool, &s[2]);
    assert_ne!(bad.circuit, CircuitState::Closed, "{bad:?}");
    assert!(bad.errors >= 3, "{bad:?}");
    assert!(
        bad.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 500") && e.contains("fake failure")),
        "{bad:?}"
    );
    let totals = pool.stats().totals;
    assert_eq!((totals.batches, totals.failed_batches), (40, 0));
    assert!(totals.retries >= 1 && totals.retries <= totals.requests);

    // Healed: the health check closes the circuit without any traffic.
    s[2].set_failing(false);
    wait_until("the healed endpoint's circuit closes", DEADLINE, || {
        endpoint(&pool, &s[2]).circuit == CircuitState::Closed
    })
    .await;
    let before = s[2].texts();
    for _ in 0..50 {
        pool.embed(texts(12)).await.expect("embed");
        if s[2].texts() > before {
            break;
        }
    }
    assert!(s[2].texts() > before, "the healed endpoint takes traffic again: {:#?}", pool.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_probe_by_traffic_closes_the_circuit() {
    let s = [ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1]]);
    c.health_interval = Duration::from_secs(3600); // traffic alone must do it
    c.breaker_failures = 1;
    let pool = Pool::connect(c).await.expect("connect");
    s[1].set_failing(true);
    let start = Instant::now();
    while endpoint(&pool, &s[1]).circuit == CircuitState::Closed {
        pool.embed(texts(3)).await.expect("carried by the other endpoint");
        assert!(start.elapsed() < DEADLINE);
    }
    s[1].set_failing(false);
    let start = Instant::now();
    while endpoint(&pool, &s[1]).circuit != CircuitState::Closed {
        pool.embed(texts(3)).await.expect("embed");
        assert!(start.elapsed() < DEADLINE, "no probe closed the circuit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(endpoint(&pool, &s[1]).probes, 1, "only the start-up probe: traffic probed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_dimension_ejects_at_once_and_batches_go_elsewhere() {
    let s = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]]);
    c.breaker_failures = 100; // ejection must not wait for consecutive failures
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));
    s[0].set_wrong_dim(Some(DIM * 2));

    assert_eq!(traffic(&pool, 3, 8, 20).await, 0, "no batch failed");
    let bad = endpoint(&pool, &s[0]);
    assert_ne!(bad.circuit, CircuitState::Closed, "{bad:?}");
    assert!(bad.errors >= 1 && bad.errors < 100, "{bad:?}");
    assert!(bad.last_error.as_deref().is_some_and(|e| e.contains("dimension 32")), "{bad:?}");

    s[0].set_wrong_dim(None);
    wait_until("the fixed endpoint's circuit closes", DEADLINE, || {
        endpoint(&pool, &s[0]).circuit == CircuitState::Closed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_takes_the_majority_dimension_and_ejects_the_rest() {
    let s = [ollama(DIM).await, ollama(8).await, ollama(DIM).await];
    let pool =
        Pool::connect(config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]])).await.expect("connect");
    assert_eq!(pool.info().dimensions, DIM);
    let odd = endpoint(&pool, &s[1]);
    assert_eq!(odd.circuit, CircuitState::Open);
    assert!(odd.last_error.as_deref().is_some_and(|e| e.contains("dimension 8")), "{odd:?}");
    let input = texts(40);
    assert!(all_expected(&input, &pool.embed(input.clone()).await.expect("embed"), DIM));
    assert_ne!(endpoint(&pool, &s[1]).circuit, CircuitState::Closed, "probes keep failing");

    // A tie goes to the first endpoint; a dead endpoint starts ejected; none answering fails.
    let (a, b, dead) = (ollama(12).await, ollama(DIM).await, ollama(DIM).await);
    dead.kill().await;
    let pool = Pool::connect(config(BackendKind::Ollama, &[&a, &b, &dead])).await.expect("connect");
    assert_eq!(pool.info().dimensions, 12);
    assert_eq!(endpoint(&pool, &dead).circuit, CircuitState::Open);
    let err =
        Pool::connect(config(BackendKind::Ollama, &[&dead])).await.expect_err("nobody answers");
    assert!(matches!(&err, EmbedError::Unavailable(m) if m.contains(&dead.url())), "{err}");
    let err = Pool::connect(PoolConfig::default()).await.expect_err("no endpoints");
    assert!(err.to_string().contains("at least one endpoint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_endpoint_times_out_and_is_ejected() {
    let s = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]]);
    c.attempt_timeout = Duration::from_secs(2);
    // The balancer sends a slow endpoint little traffic (its latency average makes it look
    // expensive), so it takes fewer failures in a row to see it ejected within the test.
    c.breaker_failures = 2;
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));
    s[1].set_latency(Duration::from_secs(60));

    let start = Instant::now();
    assert_eq!(traffic(&pool, 4, 8, 5).await, 0, "no batch failed");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "timeouts bound the run: {:?}",
        start.elapsed()
    );
    let slow = endpoint(&pool, &s[1]);
    assert_ne!(slow.circuit, CircuitState::Closed, "{slow:?}");
    assert!(
        slow.last_error.as_deref().is_some_and(|e| e.contains("no answer within 2000 ms")),
        "{slow:?}"
    );

    s[1].set_latency(Duration::ZERO);
    wait_until("the sped-up endpoint's circuit closes", DEADLINE, || {
        endpoint(&pool, &s[1]).circuit == CircuitState::Closed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_endpoint_mid_run_loses_nothing() {
    let s = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    for server in &s {
        server.set_latency(Duration::from_millis(20)); // so requests are in flight when it dies
    }
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]]);
    for e in &mut c.endpoints {
        e.batch_size = Some(3);
    }
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));

    let run = tokio::spawn({
        let pool = pool.clone();
        async move { traffic(&pool, 4, 30, 6).await }
    });
    wait_until("the victim has served some traffic", DEADLINE, || s[1].requests() >= 10).await;
    s[1].kill().await;
    assert_eq!(run.await.expect("traffic"), 0, "no batch failed");
    assert_ne!(endpoint(&pool, &s[1]).circuit, CircuitState::Closed);
    let totals = pool.stats().totals;
    assert_eq!((totals.batches, totals.failed_batches, totals.texts), (120, 0, 720));

    s[1].revive().await.expect("revive the fake server");
    wait_until("the revived endpoint's circuit closes", DEADLINE, || {
        endpoint(&pool, &s[1]).circuit == CircuitState::Closed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_budget_stops_a_retry_storm() {
    let s = [ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1]]);
    c.max_attempts = 10;
    c.breaker_failures = 10_000; // only the budget may stop the retries
    c.backoff_base = Duration::from_millis(1);
    c.backoff_max = Duration::from_millis(5);
    c.retry_budget.ratio = 0.2;
    c.retry_budget.min_retries = 5;
    c.retry_budget.window = Duration::from_secs(600);
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));
    let after_connect = pool.stats().totals.requests;
    for server in &s {
        server.kill().await;
    }

    let start = Instant::now();
    let calls = (0..50).map(|i| {
        let pool = pool.clone();
        async move { pool.embed(vec![format!("storm {i}")]).await }
    });
    let results = futures::future::join_all(calls).await;
    let took = start.elapsed();

    assert!(results.iter().all(Result::is_err));
    let budget_spent = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| e.to_string().contains("retry budget is spent"))
        .count();
    assert!(
        budget_spent >= 30,
        "most calls stopped by the budget, not max_attempts: {budget_spent}"
    );
    let message = results[0].as_ref().expect_err("failed").to_string();
    assert!(message.contains("127.0.0.1") && !message.contains('\n'), "{message}");

    let totals = pool.stats().totals;
    eprintln!("stopped by the budget: {budget_spent} of 50; {totals:?}; took {took:?}");
    // 50 first attempts + at most 5 + 20% of 50 retries, against 500 without a budget.
    assert!(totals.retries <= 15, "{totals:?}");
    assert!(totals.requests - after_connect <= 65, "{totals:?}");
    assert!(totals.retries_denied >= 30, "{totals:?}");
    assert!(took < Duration::from_secs(20), "the errors surfaced promptly: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_circuits_open_fails_fast() {
    let s = [ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1]]);
    c.breaker_failures = 2;
    c.breaker_cooldown = Duration::from_secs(3600); // stays open for the test
    let pool = Pool::connect(c).await.expect("connect");
    for server in &s {
        server.kill().await;
    }
    let start = Instant::now();
    let message = loop {
        let err = pool.embed(texts(2)).await.expect_err("everything is down");
        if err.to_string().contains("no endpoint") {
            break err.to_string();
        }
        assert!(start.elapsed() < DEADLINE, "circuits never opened: {err}");
    };
    assert!(message.contains(&s[0].url()) && message.contains(&s[1].url()), "{message}");
    let start = Instant::now();
    let again = pool.embed(texts(2)).await.expect_err("still down");
    assert!(start.elapsed() < Duration::from_secs(2), "fails fast without touching the network");
    assert!(again.to_string().contains("no endpoint"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_of_two_choices_avoids_the_slow_endpoint() {
    let s = [ollama(DIM).await, ollama(DIM).await, ollama(DIM).await];
    let mut c = config(BackendKind::Ollama, &[&s[0], &s[1], &s[2]]);
    for e in &mut c.endpoints {
        e.batch_size = Some(1);
        e.max_concurrency = Some(64); // the concurrency limit never binds: only P2C steers
    }
    let pool = Arc::new(Pool::connect(c).await.expect("connect"));
    s[2].set_latency(Duration::from_millis(300));
    let before: Vec<usize> = s.iter().map(FakeServer::requests).collect();

    assert_eq!(traffic(&pool, 12, 15, 1).await, 0);

    let served: Vec<usize> = s.iter().zip(&before).map(|(s, b)| s.requests() - b).collect();
    let total: usize = served.iter().sum();
    eprintln!("requests served (fast, fast, slow): {served:?}");
    assert_eq!(total, 180, "{served:?}");
    assert!(served[2] * 6 < total, "the slow endpoint got far less than its third: {served:?}");
    assert!(served[2] * 2 < served[0].min(served[1]), "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_serialise_and_cancelled_calls_free_their_slots() {
    let s = [ollama(DIM).await, ollama(DIM).await];
    let pool = Pool::connect(config(BackendKind::Ollama, &[&s[0], &s[1]])).await.expect("connect");
    pool.embed(texts(50)).await.expect("embed");

    let json = serde_json::to_value(pool.stats()).expect("serialise");
    assert_eq!(json["model"], "ollama:fake-model");
    assert_eq!(json["dimensions"], DIM);
    assert_eq!(json["totals"]["texts"], 50);
    let e = &json["endpoints"][0];
    for key in [
        "url",
        "kind",
        "circuit",
        "requests",
        "errors",
        "retries",
        "in_flight",
        "latency",
        "last_error",
    ] {
        assert!(e.get(key).is_some(), "{key} missing from {e}");
    }
    assert_eq!(e["circuit"], "closed");
    assert_eq!(e["kind"], "ollama");
    let requests: u64 = pool.stats().endpoints.iter().map(|e| e.requests).sum();
    let measured: u64 = pool.stats().endpoints.iter().map(|e| e.latency.count).sum();
    assert_eq!((requests, measured), (2, 2), "50 texts in batches of 32: two requests");

    // A caller that gives up mid-request frees its slots.
    for server in &s {
        server.set_latency(Duration::from_secs(60));
    }
    let gave_up = tokio::time::timeout(Duration::from_millis(200), pool.embed(texts(10))).await;
    assert!(gave_up.is_err());
    assert_eq!(pool.stats().totals.in_flight, 0);
    assert_eq!(pool.stats().totals.closed, 2, "a cancelled request is not a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_task_stops_when_the_pool_is_dropped() {
    let (good, bad) = (ollama(DIM).await, ollama(DIM).await);
    bad.set_failing(true);
    let mut c = config(BackendKind::Ollama, &[&good, &bad]);
    c.breaker_cooldown = Duration::from_millis(20);
    c.health_interval = Duration::from_millis(20);
    let pool = Pool::connect(c).await.expect("connect");
    wait_until("the failed endpoint is probed", DEADLINE, || bad.requests() >= 4).await;
    assert!(endpoint(&pool, &bad).probe_failures >= 3);

    drop(pool);
    // A probe in flight at the drop may still land; after that, silence.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = bad.requests();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bad.requests(), settled, "no probes after the pool is gone");
}

#[test]
fn config_reads_from_json_with_defaults() {
    let c: PoolConfig = serde_json::from_value(serde_json::json!({
        "endpoints": [
            {"url": "http://a:11434", "kind": "ollama", "model": "nomic-embed-text"},
            {"url": "http://b:8000/v1", "kind": "openai", "model": "bge", "api_key": "k", "batch_size": 16, "max_concurrency": 2}
        ],
        "attempt_timeout_ms": 1500,
        "retry_budget": {"ratio": 0.1}
    }))
    .expect("valid config");
    assert_eq!(c.attempt_timeout, Duration::from_millis(1500));
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.retry_budget.ratio, 0.1);
    assert_eq!(c.retry_budget.min_retries, 10);
    assert_eq!(c.max_tokens, 512);
    assert_eq!(c.endpoints[0].effective_batch_size(), 32);
    assert_eq!(c.endpoints[0].effective_max_concurrency(), 4);
    assert_eq!(
        (c.endpoints[1].kind, c.endpoints[1].effective_batch_size()),
        (BackendKind::OpenAi, 16)
    );
    let typo = serde_json::from_value::<PoolConfig>(
        serde_json::json!({"endpoints": [], "atempt_timeout_ms": 1}),
    );
    assert!(typo.is_err(), "unknown fields are refused");
}
