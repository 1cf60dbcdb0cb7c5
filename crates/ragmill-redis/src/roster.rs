//! [`RedisRoster`]: worker processes report themselves into one hash, `<prefix>workers`
//! (field: the worker's name, value: its [`WorkerStatus`] as JSON), through the same
//! background writer as events; listing drops those not heard from for
//! [`WORKER_STALE_MS`](ragmill_core::WORKER_STALE_MS).

use async_trait::async_trait;
use ragmill_core::{Roster, WORKER_STALE_MS, WorkerStatus};
use redis::aio::ConnectionManager;

use crate::events::{Write, Writer, now_ms};

/// The cluster's worker processes, in Redis.
#[derive(Debug)]
pub struct RedisRoster {
    conn: ConnectionManager,
    key: String,
    writer: Writer,
}

impl RedisRoster {
    pub(crate) fn new(conn: ConnectionManager, prefix: &str, writer: Writer) -> Self {
        RedisRoster { conn, key: format!("{prefix}workers"), writer }
    }
}

#[async_trait]
impl Roster for RedisRoster {
    fn report(&self, status: WorkerStatus) {
        match serde_json::to_string(&status) {
            Ok(value) => {
                self.writer.send(Write::Put { key: self.key.clone(), field: status.name, value })
            }
            Err(e) => tracing::warn!(error = %e, "worker status not serialisable"),
        }
    }

    async fn list(&self) -> Vec<WorkerStatus> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> =
            match redis::cmd("HGETALL").arg(&self.key).query_async(&mut conn).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "worker roster unavailable");
                    return Vec::new();
                }
            };
        let oldest = now_ms().saturating_sub(WORKER_STALE_MS);
        let mut alive = Vec::new();
        for (name, value) in all {
            match serde_json::from_str::<WorkerStatus>(&value) {
                Ok(s) if s.last_seen_ms >= oldest => alive.push(s),
                // Gone (or garbled): forget it.
                _ => self.writer.send(Write::Remove { key: self.key.clone(), field: name }),
            }
        }
        alive.sort_by(|a, b| a.name.cmp(&b.name));
        alive
    }
}
