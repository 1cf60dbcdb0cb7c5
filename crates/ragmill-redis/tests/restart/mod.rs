//! Redis restarts (kill -9, AOF on): no job is lost, connections come back.

use std::time::{Duration, Instant};

use ragmill_core::{Depth, DocumentId, Event, EventBus, JobQueue, QueueError, Received, UserId};
use ragmill_queue::{EmbeddedQueue, QueueConfig, SqliteQueue};
use ragmill_redis::RedisConfig;

use crate::common::{RedisServer, eventually, unique_prefix};
use crate::events::next;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_no_job() {
    let mut server = RedisServer::start();
    let config = RedisConfig { prefix: unique_prefix(), ..RedisConfig::default() };
    let seams = server.seams(config).await;
    let q = &seams.queue;
    for i in 0..20 {
        q.enqueue(UserId(1 + i % 2), DocumentId(i), 100 + i as u64).await.expect("enqueue");
    }
    let held = q.lease("w1").await.expect("lease").expect("a job");
    let mut events = seams.bus.subscribe(UserId(1)).await.expect("subscribe");

    server.restart();
    let depth = eventually(Duration::from_secs(10), "the queue back", || async {
        match q.depth().await {
            Ok(d) => Some(d),
            Err(e) => {
                assert!(matches!(e, QueueError::Unavailable(_)), "{e:?}");
                None
            }
        }
    })
    .await;
    assert_eq!(depth, Depth { queued: 19, leased: 1, parked: 0 });
    q.heartbeat(&held).await.expect("the lease survived");
    q.complete(&held).await.expect("complete");
    let mut leased = 0;
    while let Some(l) = q.lease("w2").await.expect("lease") {
        q.complete(&l).await.expect("complete");
        leased += 1;
    }
    assert_eq!(leased, 19);

    // The subscription resubscribes and says it may have missed events.
    assert_eq!(next(&mut events, Duration::from_secs(10)).await, Some(Received::Lagged(0)));
    seams.bus.publish(UserId(1), Event::RagAvailable);
    assert_eq!(
        next(&mut events, Duration::from_secs(5)).await,
        Some(Received::Event(Event::RagAvailable))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_calls_are_unavailable_while_redis_is_down() {
    let server = RedisServer::start();
    let seams = server.seams(RedisConfig { prefix: unique_prefix(), ..Default::default() }).await;
    drop(server);
    let start = Instant::now();
    let err = seams.queue.enqueue(UserId(1), DocumentId(1), 1).await.expect_err("down");
    assert!(err.retryable(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10), "fails fast: {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_queue_reconnects() {
    let mut server = RedisServer::start();
    let seams = server.seams(RedisConfig { prefix: unique_prefix(), ..Default::default() }).await;
    let q = &seams.queue;
    q.enqueue(UserId(1), DocumentId(1), 1).await.expect("enqueue");
    server.kill();
    // Down long enough for the connection manager to use up a round of reconnection attempts.
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(4) {
        let err = q.depth().await.expect_err("down");
        assert!(err.retryable(), "{err:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.start_again();
    let back = Instant::now();
    let l = eventually(Duration::from_secs(15), "a lease after the outage", || async {
        q.lease("w1").await.ok().flatten()
    })
    .await;
    println!("reconnected {:?} after Redis came back", back.elapsed());
    assert_eq!(l.document, DocumentId(1));
}

/// Lease + complete round trips, embedded against Redis, with few and with many users
/// waiting. Run with `cargo test -p ragmill-redis -- --ignored --nocapture round_trip`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn round_trip() {
    const N: i64 = 2000;
    let server = RedisServer::start();
    for users in [10, 1000] {
        let redis =
            server.seams(RedisConfig { prefix: unique_prefix(), ..Default::default() }).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite =
            SqliteQueue::open(&dir.path().join("q.db"), QueueConfig::default()).expect("db");
        let embedded = EmbeddedQueue::new(sqlite);
        for (name, q) in [("embedded", &embedded as &dyn JobQueue), ("redis", &*redis.queue)] {
            let start = Instant::now();
            for i in 0..N {
                q.enqueue(UserId(i % users), DocumentId(i), 1000).await.expect("enqueue");
            }
            let enqueue = start.elapsed() / N as u32;
            let start = Instant::now();
            while let Some(l) = q.lease("w").await.expect("lease") {
                q.heartbeat(&l).await.expect("heartbeat");
                q.complete(&l).await.expect("complete");
            }
            let cycle = start.elapsed() / N as u32;
            println!(
                "{name}: enqueue {enqueue:?}, lease+heartbeat+complete {cycle:?} per job \
                 ({N} jobs, {users} users)"
            );
        }
    }
}
