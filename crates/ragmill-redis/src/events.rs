//! [`RedisBus`] (pub/sub, one channel per user) and [`RedisLive`] (a hash per user), both
//! writing through a [`Writer`]: a bounded channel drained by one background task, so the sync,
//! never-blocking `publish`/`set`/`clear` of the seams stay that way.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use ragmill_core::{
    BusError, DocumentId, Event, EventBus, EventStream, Live, LiveProgress, Received, UserId,
};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One write for the background task.
#[derive(Debug)]
pub(crate) enum Write {
    Publish { channel: String, payload: String },
    Set { key: String, field: i64, value: String, ttl_ms: u64 },
    Clear { key: String, field: i64 },
    Put { key: String, field: String, value: String },
    Remove { key: String, field: String },
}

/// A bounded queue of writes and the task that sends them, a batch per round trip. Writes that
/// find it full are dropped and counted: events and progress are hints (the store is the truth).
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Write>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    /// Most writes sent in one pipeline.
    const BATCH: usize = 256;

    /// Starts the task on the current tokio runtime; it ends when every `Writer` clone is gone.
    pub(crate) fn spawn(conn: ConnectionManager, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(Self::run(conn, rx));
        Writer { tx, dropped: Arc::default() }
    }

    async fn run(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Write>) {
        let mut batch = Vec::with_capacity(Self::BATCH);
        while rx.recv_many(&mut batch, Self::BATCH).await > 0 {
            let mut pipe = redis::pipe();
            for w in batch.drain(..) {
                match w {
                    Write::Publish { channel, payload } => {
                        pipe.publish(channel, payload).ignore();
                    }
                    Write::Set { key, field, value, ttl_ms } => {
                        pipe.hset(&key, field, value).ignore();
                        pipe.pexpire(&key, i64::try_from(ttl_ms).unwrap_or(i64::MAX)).ignore();
                    }
                    Write::Clear { key, field } => {
                        pipe.hdel(key, field).ignore();
                    }
                    Write::Put { key, field, value } => {
                        pipe.hset(key, field, value).ignore();
                    }
                    Write::Remove { key, field } => {
                        pipe.hdel(key, field).ignore();
                    }
                }
            }
            // Not retried: a later event or progress mends a lost one.
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::warn!(error = %e, "events/progress not written to Redis");
            }
        }
    }

    pub(crate) fn send(&self, write: Write) {
        if self.tx.try_send(write).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "Redis writer full or gone: dropped");
            }
        }
    }

    /// Writes dropped so far because the queue was full (Redis slow or away).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The event bus over Redis pub/sub: `<prefix>events:<user_id>`, events as JSON.
///
/// A subscription has its own connection. If it drops (Redis restarts), the stream
/// resubscribes with back-off (100 ms doubling to 5 s) and then yields
/// [`Received::Lagged`]`(0)`, so the client re-reads a snapshot taken after the gap; it never
/// ends on its own.
#[derive(Debug)]
pub struct RedisBus {
    client: redis::Client,
    prefix: String,
    writer: Writer,
    timeout: Duration,
}

impl RedisBus {
    pub(crate) fn new(
        client: redis::Client,
        prefix: String,
        writer: Writer,
        timeout: Duration,
    ) -> Self {
        RedisBus { client, prefix, writer, timeout }
    }

    fn channel(&self, user: UserId) -> String {
        format!("{}events:{}", self.prefix, user.0)
    }

    /// Events dropped so far because the publisher's queue was full.
    pub fn dropped(&self) -> u64 {
        self.writer.dropped()
    }
}

/// Opens a pub/sub connection subscribed to `channel`.
async fn open(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<redis::aio::PubSubStream, String> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub.into_on_message())
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Where a subscription stands between two items.
struct Subscription {
    client: redis::Client,
    channel: String,
    timeout: Duration,
    messages: Option<redis::aio::PubSubStream>,
    backoff: Duration,
}

impl Subscription {
    const MIN_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);

    async fn next(&mut self) -> Received {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                tokio::time::sleep(self.backoff).await;
                match open(&self.client, &self.channel, self.timeout).await {
                    Ok(stream) => {
                        tracing::info!(channel = self.channel, "event subscription restored");
                        self.messages = Some(stream);
                        self.backoff = Self::MIN_BACKOFF;
                        return Received::Lagged(0);
                    }
                    Err(e) => {
                        tracing::debug!(channel = self.channel, error = e, "resubscribe failed");
                        self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
                        continue;
                    }
                }
            };
            match messages.next().await {
                Some(msg) => match serde_json::from_slice::<Event>(msg.get_payload_bytes()) {
                    Ok(event) => return Received::Event(event),
                    Err(e) => tracing::warn!(channel = self.channel, error = %e, "bad event"),
                },
                None => {
                    tracing::warn!(channel = self.channel, "event subscription lost");
                    self.messages = None;
                }
            }
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    fn publish(&self, user: UserId, event: Event) {
        match serde_json::to_string(&event) {
            Ok(payload) => {
                self.writer.send(Write::Publish { channel: self.channel(user), payload })
            }
            Err(e) => tracing::warn!(error = %e, "event not serialisable"),
        }
    }

    async fn subscribe(&self, user: UserId) -> Result<EventStream, BusError> {
        let channel = self.channel(user);
        let messages =
            open(&self.client, &channel, self.timeout).await.map_err(BusError::Unavailable)?;
        let sub = Subscription {
            client: self.client.clone(),
            channel,
            timeout: self.timeout,
            messages: Some(messages),
            backoff: Subscription::MIN_BACKOFF,
        };
        Ok(Box::pin(futures::stream::unfold(sub, |mut sub| async move {
            let item = sub.next().await;
            Some((item, sub))
        })))
    }
}

/// A [`Live`] as stored: with the time it was written, so a stale entry (its worker vanished
/// mid-stage) is ignored even while the hash's TTL is kept alive by other documents.
#[derive(Serialize, Deserialize)]
struct Stamped {
    #[serde(flatten)]
    live: Live,
    at: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Live progress over Redis: a hash per user (`<prefix>live:<user_id>`, field = document id,
/// value = JSON [`Live`] plus its write time). The hash expires `ttl` after its last write; an
/// entry older than `stale` is ignored. Staleness is judged by the clocks of the writer and the
/// reader, which must agree within a fraction of `stale`.
#[derive(Debug)]
pub struct RedisLive {
    conn: ConnectionManager,
    prefix: String,
    writer: Writer,
    ttl: Duration,
    stale: Duration,
}

impl RedisLive {
    pub(crate) fn new(
        conn: ConnectionManager,
        prefix: String,
        writer: Writer,
        ttl: Duration,
        stale: Duration,
    ) -> Self {
        RedisLive { conn, prefix, writer, ttl, stale }
    }

    fn key(&self, user: UserId) -> String {
        format!("{}live:{}", self.prefix, user.0)
    }
}

#[async_trait]
impl LiveProgress for RedisLive {
    fn set(&self, user: UserId, document: DocumentId, live: Live) {
        match serde_json::to_string(&Stamped { live, at: now_ms() }) {
            Ok(value) => self.writer.send(Write::Set {
                key: self.key(user),
                field: document.0,
                value,
                ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            }),
            Err(e) => tracing::warn!(error = %e, "progress not serialisable"),
        }
    }

    fn clear(&self, user: UserId, document: DocumentId) {
        self.writer.send(Write::Clear { key: self.key(user), field: document.0 });
    }

    async fn get(&self, user: UserId, documents: &[DocumentId]) -> HashMap<DocumentId, Live> {
        if documents.is_empty() {
            return HashMap::new();
        }
        let mut conn = self.conn.clone();
        let fields: Vec<i64> = documents.iter().map(|d| d.0).collect();
        let values: Vec<Option<String>> = match redis::cmd("HMGET")
            .arg(self.key(user))
            .arg(fields)
            .query_async(&mut conn)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "live progress unavailable");
                return HashMap::new();
            }
        };
        let oldest = now_ms().saturating_sub(u64::try_from(self.stale.as_millis()).unwrap_or(0));
        documents
            .iter()
            .zip(values)
            .filter_map(|(d, v)| {
                let stamped: Stamped = serde_json::from_str(&v?).ok()?;
                (stamped.at >= oldest).then_some((*d, stamped.live))
            })
            .collect()
    }
}
