//! What the Redis queue leaves in Redis: the stream, the dead letters, the consumers.

use std::time::Duration;

use ragmill_core::{DocumentId, Failed, JobQueue, JobState, QueueError, UserId};
use ragmill_redis::{RedisConfig, RedisSeams};
use redis::aio::MultiplexedConnection;

use crate::common::{RedisServer, unique_prefix};

/// `XPENDING key group`: count, smallest id, largest id, (consumer, count) pairs.
type Summary = (u64, Option<String>, Option<String>, Option<Vec<(String, String)>>);

async fn setup() -> (RedisServer, RedisSeams, MultiplexedConnection, String) {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let config = RedisConfig {
        prefix: prefix.clone(),
        lease: Duration::from_millis(300),
        backoff: Duration::from_millis(1),
        ..RedisConfig::default()
    };
    let seams = server.seams(config).await;
    let client = redis::Client::open(server.url()).expect("url");
    let raw = client.get_multiplexed_async_connection().await.expect("raw connection");
    (server, seams, raw, prefix)
}

async fn query<T: redis::FromRedisValue>(
    raw: &mut MultiplexedConnection,
    cmd: &mut redis::Cmd,
) -> T {
    cmd.query_async(raw).await.expect("raw query")
}

#[tokio::test]
async fn the_stream_holds_only_jobs_in_flight_and_dead_letters_keep_the_error() {
    let (_server, seams, mut raw, p) = setup().await;
    let q = &seams.queue;
    q.enqueue(UserId(1), DocumentId(1), 10).await.expect("enqueue");
    q.enqueue(UserId(1), DocumentId(2), 20).await.expect("enqueue");
    let done = q.lease("w1").await.expect("lease").expect("a job");
    let pending: Summary =
        query(&mut raw, redis::cmd("XPENDING").arg(format!("{p}stream")).arg("workers")).await;
    assert_eq!(pending.0, 1, "a leased job is a pending entry");
    assert_eq!(pending.3, Some(vec![("w1".to_owned(), "1".to_owned())]));
    q.complete(&done).await.expect("complete");
    let mut l = q.lease("w1").await.expect("lease").expect("a job");
    loop {
        match q.fail(&l, "boom").await.expect("fail") {
            Failed::Retrying { .. } => {}
            Failed::Parked => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        l = q.lease("w1").await.expect("lease").expect("the retry");
    }
    let len: u64 = query(&mut raw, redis::cmd("XLEN").arg(format!("{p}stream"))).await;
    assert_eq!(len, 0, "acknowledged entries are deleted");
    let dead: Vec<(String, Vec<String>)> =
        query(&mut raw, redis::cmd("XRANGE").arg(format!("{p}dead")).arg("-").arg("+")).await;
    assert_eq!(dead.len(), 1);
    let fields = &dead[0].1;
    assert!(fields.windows(2).any(|w| w == ["error", "boom"]), "{fields:?}");
    assert!(fields.windows(2).any(|w| w == ["doc", "2"]), "{fields:?}");
    assert_eq!(
        q.job_state(UserId(1), DocumentId(2)).await,
        Ok(Some(JobState::Parked("boom".into())))
    );
}

#[tokio::test]
async fn heartbeat_resets_the_entry_idle_time() {
    let (_server, seams, mut raw, p) = setup().await;
    let q = &seams.queue;
    q.enqueue(UserId(1), DocumentId(1), 10).await.expect("enqueue");
    let l = q.lease("w1").await.expect("lease").expect("a job");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = |raw: &mut MultiplexedConnection| {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(format!("{p}stream")).arg("workers").arg("IDLE").arg(0).arg("-").arg("+").arg(1);
        let mut raw = raw.clone();
        async move {
            let rows: Vec<(String, String, u64, u64)> = query(&mut raw, &mut cmd).await;
            rows[0].2
        }
    };
    assert!(idle(&mut raw).await >= 200);
    q.heartbeat(&l).await.expect("heartbeat");
    assert!(idle(&mut raw).await < 100);
}

#[tokio::test]
async fn a_dead_workers_jobs_are_handed_back_uncounted() {
    let (_server, seams, _raw, _p) = setup().await;
    let q = &seams.queue;
    assert_eq!(q.lease_holders().await, Ok(vec![]));
    q.enqueue(UserId(1), DocumentId(1), 10).await.expect("enqueue");
    q.enqueue(UserId(2), DocumentId(1), 10).await.expect("enqueue");
    q.lease("host:1:0").await.expect("lease").expect("a job");
    q.lease("host:1:0").await.expect("lease").expect("a job");
    assert_eq!(q.lease_holders().await, Ok(vec!["host:1:0".to_owned()]));
    assert_eq!(q.release_held_by("host:1:0").await, Ok(2));
    assert_eq!(q.lease_holders().await, Ok(vec![]));
    let l = q.lease("host:2:0").await.expect("lease").expect("back at once");
    assert_eq!(l.attempt, 1, "not counted");
    assert_eq!(q.lease_holders().await, Ok(vec!["host:2:0".to_owned()]));
}

#[tokio::test]
async fn a_corrupt_key_is_a_backend_error_not_a_panic() {
    let (_server, seams, mut raw, p) = setup().await;
    let () = query(&mut raw, redis::cmd("SET").arg(format!("{p}doc:1:1")).arg("garbage")).await;
    let err = seams.queue.enqueue(UserId(1), DocumentId(1), 1).await.expect_err("wrong type");
    assert!(matches!(err, QueueError::Backend(_)), "{err:?}");
    assert!(!err.retryable());
}
