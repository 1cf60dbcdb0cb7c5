//! The queue contract: the same cases against the embedded queue (SQLite) and Redis.

mod cases;

use std::sync::Arc;
use std::time::Duration;

use ragmill_core::JobQueue;
use ragmill_queue::{EmbeddedQueue, QueueConfig, SqliteQueue};
use ragmill_redis::RedisConfig;

use crate::common::{RedisServer, unique_prefix};

/// Short enough that the cases run in seconds.
pub const LEASE: Duration = Duration::from_millis(300);
pub const BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_ATTEMPTS: u32 = 3;
/// Leases lost before a job is parked, in these tests.
pub const MAX_LOST: u32 = 3;

/// Where a case's queue lives; `open` gives another handle on the same jobs (another process,
/// as far as the queue can tell).
pub enum Backend {
    Embedded(tempfile::TempDir),
    Redis(RedisServer, String),
}

impl Backend {
    pub fn embedded() -> Self {
        Backend::Embedded(tempfile::tempdir().expect("temp dir"))
    }

    pub fn redis() -> Self {
        Backend::Redis(RedisServer::start(), unique_prefix())
    }

    pub async fn open(&self) -> Arc<dyn JobQueue> {
        match self {
            Backend::Embedded(dir) => {
                let config = QueueConfig {
                    lease: LEASE,
                    max_attempts: MAX_ATTEMPTS,
                    max_lost: MAX_LOST,
                    backoff: BACKOFF,
                    ..QueueConfig::default()
                };
                let queue = SqliteQueue::open(&dir.path().join("queue.db"), config).expect("open");
                Arc::new(EmbeddedQueue::new(queue))
            }
            Backend::Redis(server, prefix) => {
                let config = RedisConfig {
                    prefix: prefix.clone(),
                    lease: LEASE,
                    max_attempts: MAX_ATTEMPTS,
                    max_lost: MAX_LOST,
                    backoff: BACKOFF,
                    ..RedisConfig::default()
                };
                server.seams(config).await.queue
            }
        }
    }
}

/// One test per case and backend.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::Backend::embedded()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::Backend::redis()).await;
                }
            )*
        }
    };
}

contract!(
    lease_then_complete,
    fail_retries_with_backoff_then_parks,
    an_expired_lease_is_taken_over,
    heartbeat_keeps_the_lease,
    leases_lost_every_time_park_the_job,
    release_does_not_count_an_attempt,
    enqueue_twice_is_one_job,
    reprocess_while_leased,
    cancel_drops_queued_and_parked_jobs,
    users_take_turns_and_small_documents_go_first,
    depth_counts_by_state_and_user,
    concurrent_workers_never_share_a_job,
);
