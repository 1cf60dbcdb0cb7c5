//! ragmill's seams over Redis, for a cluster: one main server, workers on other machines.
//!
//! [`connect`] opens one [`RedisConfig::url`] and returns [`RedisSeams`]: a [`RedisQueue`]
//! ([`ragmill_core::JobQueue`]), a [`RedisBus`] ([`ragmill_core::EventBus`]) and a
//! [`RedisLive`] ([`ragmill_core::LiveProgress`]). Every key starts with
//! [`RedisConfig::prefix`] (default `ragmill:`), so deployments or tests can share a server.
//! Commands go through a [`redis::aio::ConnectionManager`], which reconnects with back-off (up
//! to 1 s between attempts) after Redis restarts; while it cannot, queue calls answer
//! [`QueueError::Unavailable`] (retryable) within [`RedisConfig::timeout`].
//!
//! # The queue
//!
//! The contract is the embedded queue's (`ragmill-queue`), and the same contract tests run
//! against both. Every change that touches more than one key is one Lua script (`src/lua/`),
//! so Redis runs it atomically; time (leases, backoff) is the Redis server's clock, so workers'
//! clocks need not agree. Keys, under the prefix:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `job:<id>` | hash | user, doc, size, attempts, state, error; when leased the stream entry, worker, token |
//! | `doc:<user>:<doc>` | hash | the document's `queued`, `leased` and `parked` job ids (one each at most) |
//! | `wait:<user>` | sorted set | the user's waiting jobs, score = size, member = zero-padded id |
//! | `ready` | sorted set | users with a waiting job, score = their turn |
//! | `turn` | hash | each user's turn: the `served` counter at their last lease |
//! | `delayed` | sorted set | jobs backing off after `fail`, score = due time (ms) |
//! | `stream` | stream | one entry per leased job, consumer group `workers` |
//! | `dead` | stream | dead-letter log: job, user, doc, attempts, error (capped ~10,000) |
//! | `count`, `count:<user>` | hash | queued / leased / parked counters |
//!
//! **Fairness.** `lease` first moves due retries from `delayed` into their user's `wait` set,
//! then walks `ready` in turn order and gives the first user with an eligible job (its document
//! not being processed) their smallest job, ties to the oldest. The user's turn becomes a
//! global counter incremented on every lease, so users take turns: the one served longest ago
//! goes first, users never served before all others in the order first seen. One user's 1,000
//! uploads never starve another's single file, and small documents go before large ones. A
//! lease costs O(log n) per sorted-set step plus the users and documents skipped, which is
//! bounded by the users waiting and the jobs in flight.
//!
//! **Leases.** The picked job is `XADD`ed to `stream` and read back with `XREADGROUP` by the
//! leasing worker (its name is the consumer), inside the same script: a leased job is exactly a
//! pending entry of the group. The lease token is `<entry id>.<counter>`, stored in the job and
//! checked by every later call. `heartbeat` re-claims the entry for its own consumer
//! (`XCLAIM … JUSTID`, which resets the entry's idle time) and answers `LeaseLost` if the token
//! no longer holds the job. `complete` is the only acknowledgement of a job done (`XACK` +
//! `XDEL`: the stream holds only jobs in flight).
//!
//! **Claiming.** Before picking, `lease` runs `XAUTOCLAIM` (one entry at a time) for entries
//! idle longer than the lease: their worker stopped heartbeating. A claimed job counts an
//! attempt and is handed straight to the claiming worker (it was already picked fairly once);
//! the old holder's calls answer `LeaseLost`. If the document was re-queued meanwhile, the
//! stale job is dropped instead and the newer one waits its turn.
//!
//! **Dead workers.** A process that restarts on the same host can hand back its predecessors'
//! jobs at once, uncounted, instead of waiting out their leases:
//! [`RedisQueue::lease_holders`] lists the consumers with pending entries and
//! [`RedisQueue::release_held_by`] re-queues one's jobs and deletes the consumer (consumers are
//! otherwise never deleted: one small entry per worker name ever seen).
//!
//! **Dead letters.** A job whose `max_attempts` failed attempts are used up (by `fail`), or
//! whose lease ran out `max_lost` times (`worker lost the job N times`: a poison document that
//! kills its workers; counted apart, so workers dying for reasons of their own fail nothing) — is
//! acknowledged, appended to the `dead` stream, and kept as parked: `job_state` answers
//! `Parked(error)` until the document is enqueued again (which replaces it) or cancelled.
//!
//! **Backoff.** `fail` before the last attempt puts the job in `delayed`, due after
//! `backoff · 2^(attempt-1)`; `release` puts it back at once, the attempt not counted.
//!
//! **Durability.** Run Redis with `appendonly yes`: every script's effects are in the AOF
//! before its reply is sent, so a restart of the Redis process (even `kill -9`) loses no job
//! that was acknowledged; with `appendfsync everysec` (Redis's default) a power loss can lose
//! the last second. Redelivery is harmless by contract: a job whose worker was merely slow can
//! run twice, and the store keeps one copy of the document.
//!
//! Keys are not declared to the scripts (they are built from the prefix), so this runs on a
//! single Redis server or a primary with replicas, not Redis Cluster.
//!
//! # Events and live progress
//!
//! [`RedisBus`] publishes each user's events as JSON on `<prefix>events:<user_id>`;
//! [`RedisLive`] keeps `<prefix>live:<user_id>` (field = document id, JSON value with a
//! timestamp; the hash expires an hour after its last write, entries older than ten minutes are
//! ignored). `publish`, `set` and `clear` never block: they queue the write for a background
//! task (bounded; when full the write is dropped and counted), which sends batches in one
//! pipeline. A subscription that loses its connection resubscribes with back-off and yields
//! `Received::Lagged(0)`, so its client re-reads a snapshot.
//!
//! ```no_run
//! # async fn example() -> Result<(), ragmill_redis::ConnectError> {
//! use ragmill_core::JobQueue;
//! let seams = ragmill_redis::connect(ragmill_redis::RedisConfig {
//!     url: "redis://127.0.0.1:6379/0".into(),
//!     ..Default::default()
//! })
//! .await?;
//! if let Some(lease) = seams.queue.lease("host:1234:0").await? {
//!     seams.queue.complete(&lease).await?;
//! }
//! # Ok(())
//! # }
//! ```

mod events;
mod queue;
mod roster;

use std::sync::Arc;
use std::time::Duration;

use ragmill_core::QueueError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use events::{RedisBus, RedisLive};
pub use queue::RedisQueue;
pub use roster::RedisRoster;

/// Where Redis is and how the seams behave. Build it with `..RedisConfig::default()`.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (default `redis://127.0.0.1:6379/0`).
    pub url: String,
    /// Prepended to every key and channel (default `ragmill:`).
    pub prefix: String,
    /// How long a lease holds without a heartbeat (default 60 s).
    pub lease: Duration,
    /// Attempts before a job is parked (default 3; 0 is taken as 1).
    pub max_attempts: u32,
    /// Leases that ran out before a job is dead-lettered as a poison document (default 5; 0 is
    /// taken as 1), counted apart from failures.
    pub max_lost: u32,
    /// Backoff before retry `n + 1` after attempt `n` failed: `backoff · 2^(n-1)` (default 1 s).
    pub backoff: Duration,
    /// How long a command may wait for its reply, and a connection for Redis (default 5 s).
    pub timeout: Duration,
    /// Writes (events, progress) queued for the background task before new ones are dropped
    /// (default 4,096).
    pub write_buffer: usize,
    /// A user's live-progress hash expires this long after its last write (default 1 h).
    pub live_ttl: Duration,
    /// Live progress older than this is ignored (default 10 min).
    pub live_stale: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: "ragmill:".into(),
            lease: Duration::from_secs(60),
            max_attempts: 3,
            max_lost: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            write_buffer: 4096,
            live_ttl: Duration::from_secs(3600),
            live_stale: Duration::from_secs(600),
        }
    }
}

/// The three seams over one Redis.
#[derive(Debug, Clone)]
pub struct RedisSeams {
    /// The job queue.
    pub queue: Arc<RedisQueue>,
    /// The event bus.
    pub bus: Arc<RedisBus>,
    /// Live progress.
    pub live: Arc<RedisLive>,
    /// The cluster's worker processes.
    pub roster: Arc<RedisRoster>,
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("bad Redis URL: {0}")]
    Url(String),
    /// Redis could not be reached (retry later).
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// Redis answered, but not as expected.
    #[error("Redis failed: {0}")]
    Backend(String),
}

impl From<QueueError> for ConnectError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) => ConnectError::Unavailable(m),
            other => ConnectError::Backend(other.to_string()),
        }
    }
}

/// Connects to `config.url` and builds the three seams. Must run inside a tokio runtime (it
/// spawns the background writer).
pub async fn connect(config: RedisConfig) -> Result<RedisSeams, ConnectError> {
    let client = redis::Client::open(config.url.as_str())
        .map_err(|e| ConnectError::Url(format!("{}: {e}", config.url)))?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_max_delay(Duration::from_secs(1));
    let conn = ConnectionManager::new_with_config(client.clone(), manager)
        .await
        .map_err(queue::queue_error)?;
    let writer = events::Writer::spawn(conn.clone(), config.write_buffer);
    let queue = RedisQueue::new(conn.clone(), &config);
    let bus = RedisBus::new(client, config.prefix.clone(), writer.clone(), config.timeout);
    let roster = RedisRoster::new(conn.clone(), &config.prefix, writer.clone());
    let live =
        RedisLive::new(conn, config.prefix.clone(), writer, config.live_ttl, config.live_stale);
    Ok(RedisSeams {
        queue: Arc::new(queue),
        bus: Arc::new(bus),
        live: Arc::new(live),
        roster: Arc::new(roster),
    })
}
