//! The event bus and live progress over Redis.

use std::time::Duration;

use futures::StreamExt;
use ragmill_core::{
    DocumentId, Event, EventBus, EventStream, Live, LiveProgress, Received, Stage, UserId,
};
use ragmill_redis::RedisConfig;

use crate::common::{RedisServer, eventually, unique_prefix};

/// The next item of `stream`, or `None` after `wait`.
pub async fn next(stream: &mut EventStream, wait: Duration) -> Option<Received> {
    tokio::time::timeout(wait, stream.next()).await.ok().flatten()
}

fn ready(doc: i64) -> Event {
    Event::Ready { id: DocumentId(doc), chunks: 3 }
}

#[tokio::test]
async fn each_user_hears_only_their_own_events() {
    let server = RedisServer::start();
    let config = RedisConfig { prefix: unique_prefix(), ..RedisConfig::default() };
    let (api, worker) = (server.seams(config.clone()).await, server.seams(config).await);
    let mut a = api.bus.subscribe(UserId(1)).await.expect("subscribe");
    let mut b = api.bus.subscribe(UserId(2)).await.expect("subscribe");
    // Another process publishes.
    worker.bus.publish(UserId(1), ready(10));
    worker.bus.publish(UserId(2), ready(20));
    worker.bus.publish(UserId(1), Event::RagAvailable);
    let wait = Duration::from_secs(5);
    assert_eq!(next(&mut a, wait).await, Some(Received::Event(ready(10))));
    assert_eq!(next(&mut a, wait).await, Some(Received::Event(Event::RagAvailable)));
    assert_eq!(next(&mut b, wait).await, Some(Received::Event(ready(20))));
    let quiet = Duration::from_millis(200);
    assert_eq!(next(&mut a, quiet).await, None, "nothing of user 2 reaches user 1");
    assert_eq!(next(&mut b, quiet).await, None, "nothing of user 1 reaches user 2");
    assert_eq!(worker.bus.dropped(), 0);
}

#[tokio::test]
async fn subscribing_without_redis_is_unavailable() {
    let server = RedisServer::start();
    let seams = server.seams(RedisConfig { prefix: unique_prefix(), ..Default::default() }).await;
    drop(server);
    assert!(seams.bus.subscribe(UserId(1)).await.is_err());
    // Publishing still never blocks.
    for i in 0..10_000 {
        seams.bus.publish(UserId(1), ready(i));
    }
}

#[tokio::test]
async fn live_progress_is_per_user_and_cleared() {
    let server = RedisServer::start();
    let config = RedisConfig { prefix: unique_prefix(), ..RedisConfig::default() };
    let (api, worker) = (server.seams(config.clone()).await, server.seams(config).await);
    let live = |done| Live { stage: Stage::Embedding, done, total: 10 };
    worker.live.set(UserId(1), DocumentId(1), live(1));
    worker.live.set(UserId(1), DocumentId(2), live(2));
    worker.live.set(UserId(2), DocumentId(3), live(3));
    worker.live.set(UserId(1), DocumentId(1), live(4));
    worker.live.clear(UserId(1), DocumentId(2));
    let docs = [DocumentId(1), DocumentId(2), DocumentId(3)];
    let got = eventually(Duration::from_secs(5), "user 1's progress", || async {
        let got = api.live.get(UserId(1), &docs).await;
        (got.len() == 1 && got.get(&DocumentId(1)) == Some(&live(4))).then_some(got)
    })
    .await;
    assert!(!got.contains_key(&DocumentId(3)), "user 2's document");
    let other = api.live.get(UserId(2), &docs).await;
    assert_eq!(other.into_iter().collect::<Vec<_>>(), vec![(DocumentId(3), live(3))]);
    assert!(api.live.get(UserId(3), &docs).await.is_empty());
    assert!(api.live.get(UserId(1), &[]).await.is_empty());
}

#[tokio::test]
async fn stale_live_progress_is_ignored() {
    let server = RedisServer::start();
    let config = RedisConfig {
        prefix: unique_prefix(),
        live_stale: Duration::from_millis(300),
        ..RedisConfig::default()
    };
    let seams = server.seams(config).await;
    let live = Live { stage: Stage::Chunking, done: 0, total: 1 };
    seams.live.set(UserId(1), DocumentId(1), live);
    eventually(Duration::from_secs(5), "the progress", || async {
        seams.live.get(UserId(1), &[DocumentId(1)]).await.get(&DocumentId(1)).copied()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(seams.live.get(UserId(1), &[DocumentId(1)]).await.is_empty());
}
