//! [`RedisQueue`]: the [`JobQueue`] seam over Redis Streams, a consumer group and Lua scripts.

use std::time::Duration;

use async_trait::async_trait;
use ragmill_core::{
    Depth, DocumentId, Failed, JobId, JobQueue, JobState, Lease, QueueError, UserId,
};
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, RedisError, Script};

use crate::RedisConfig;

/// The queue's scripts, each prefixed with the shared helpers (`lua/common.lua`).
struct Scripts {
    enqueue: Script,
    lease: Script,
    heartbeat: Script,
    complete: Script,
    fail: Script,
    release: Script,
    cancel: Script,
    state: Script,
    release_held: Script,
    holders: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_common = |body: &str| Script::new(&format!("{COMMON}\n{body}"));
        Scripts {
            enqueue: with_common(include_str!("lua/enqueue.lua")),
            lease: with_common(include_str!("lua/lease.lua")),
            heartbeat: with_common(include_str!("lua/heartbeat.lua")),
            complete: with_common(include_str!("lua/complete.lua")),
            fail: with_common(include_str!("lua/fail.lua")),
            release: with_common(include_str!("lua/release.lua")),
            cancel: with_common(include_str!("lua/cancel.lua")),
            state: with_common(include_str!("lua/state.lua")),
            release_held: with_common(include_str!("lua/release_held.lua")),
            holders: with_common(include_str!("lua/holders.lua")),
        }
    }
}

const COMMON: &str = include_str!("lua/common.lua");

/// The job queue over Redis; see the [crate docs](crate) for the design. Cheap to share in an
/// `Arc`: every call goes through one multiplexed, self-reconnecting connection.
pub struct RedisQueue {
    conn: ConnectionManager,
    prefix: String,
    lease: Duration,
    max_attempts: u32,
    max_lost: u32,
    backoff: Duration,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .field("max_attempts", &self.max_attempts)
            .field("max_lost", &self.max_lost)
            .finish_non_exhaustive()
    }
}

/// A Redis failure as the seam sees it: the connection (down, refused, timed out, still loading
/// its AOF) is worth retrying; anything else (a script error, a reply of the wrong shape) is not.
pub(crate) fn queue_error(e: RedisError) -> QueueError {
    if unavailable(&e) {
        QueueError::Unavailable(e.to_string())
    } else {
        QueueError::Backend(e.to_string())
    }
}

/// Whether `e` says Redis cannot be reached now (as opposed to a wrong request or reply).
pub(crate) fn unavailable(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisQueue {
    /// A queue over `conn` with `config`'s prefix, lease, attempts and backoff.
    pub fn new(conn: ConnectionManager, config: &RedisConfig) -> Self {
        RedisQueue {
            conn,
            prefix: config.prefix.clone(),
            lease: config.lease,
            max_attempts: config.max_attempts.max(1),
            max_lost: config.max_lost.max(1),
            backoff: config.backoff,
            scripts: Scripts::new(),
        }
    }

    /// Runs `script` with the prefix and `args`, parsing its reply as `T`.
    async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        args: &[&(dyn ToString + Sync)],
    ) -> Result<T, QueueError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        for a in args {
            invocation.arg(a.to_string());
        }
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await.map_err(queue_error)
    }

    /// Runs a script on a lease that answers 1 (done) or 0 (the lease is lost).
    async fn on_lease(&self, script: &Script, lease: &Lease) -> Result<(), QueueError> {
        let held: i64 = self.run(script, &[&lease.job.0, &lease.token]).await?;
        if held == 1 { Ok(()) } else { Err(QueueError::LeaseLost) }
    }

    /// The workers holding leases now (the consumers with pending entries).
    pub async fn lease_holders(&self) -> Result<Vec<String>, QueueError> {
        self.run(&self.scripts.holders, &[]).await
    }

    /// Hands back every job leased by `worker`, which is known to be gone (a process killed and
    /// restarted on the same host): queued again at once, the attempt not counted, and the
    /// consumer removed from the group. Answers how many.
    pub async fn release_held_by(&self, worker: &str) -> Result<u64, QueueError> {
        let n: u64 = self.run(&self.scripts.release_held, &[&worker]).await?;
        if n > 0 {
            tracing::info!(worker, jobs = n, "took back the jobs of a worker that is gone");
        }
        Ok(n)
    }

    async fn counters(&self, key: String) -> Result<Depth, QueueError> {
        let mut conn = self.conn.clone();
        let (queued, leased, parked): (Option<i64>, Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(key)
            .arg(&["queued", "leased", "parked"])
            .query_async(&mut conn)
            .await
            .map_err(queue_error)?;
        let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
        Ok(Depth { queued: n(queued), leased: n(leased), parked: n(parked) })
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(
        &self,
        user: UserId,
        document: DocumentId,
        size: u64,
    ) -> Result<(), QueueError> {
        let job: String = self.run(&self.scripts.enqueue, &[&user.0, &document.0, &size]).await?;
        tracing::debug!(job, user = user.0, document = document.0, size, "job queued");
        Ok(())
    }

    async fn lease(&self, worker: &str) -> Result<Option<Lease>, QueueError> {
        let picked: Option<(String, i64, i64, u32, String)> = self
            .run(
                &self.scripts.lease,
                &[&worker, &millis(self.lease), &self.max_attempts, &self.max_lost],
            )
            .await?;
        Ok(picked.map(|(job, user, document, attempt, token)| {
            tracing::debug!(job, user, document, attempt, worker, "job leased");
            Lease {
                job: JobId(job),
                user: UserId(user),
                document: DocumentId(document),
                attempt,
                token,
            }
        }))
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError> {
        self.on_lease(&self.scripts.heartbeat, lease).await
    }

    async fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        self.on_lease(&self.scripts.complete, lease).await?;
        tracing::debug!(job = %lease.job, document = lease.document.0, "job complete");
        Ok(())
    }

    async fn fail(&self, lease: &Lease, error: &str) -> Result<Failed, QueueError> {
        let (kind, attempt): (i64, u32) = self
            .run(
                &self.scripts.fail,
                &[&lease.job.0, &lease.token, &error, &self.max_attempts, &millis(self.backoff)],
            )
            .await?;
        let outcome = match kind {
            1 => Failed::Retrying { attempt },
            0 => Failed::Parked,
            _ => return Err(QueueError::LeaseLost),
        };
        tracing::info!(job = %lease.job, document = lease.document.0, ?outcome, error, "job failed");
        Ok(outcome)
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.on_lease(&self.scripts.release, lease).await
    }

    async fn cancel(&self, user: UserId, document: DocumentId) -> Result<u64, QueueError> {
        self.run(&self.scripts.cancel, &[&user.0, &document.0]).await
    }

    async fn job_state(
        &self,
        user: UserId,
        document: DocumentId,
    ) -> Result<Option<JobState>, QueueError> {
        let state: Option<Vec<String>> =
            self.run(&self.scripts.state, &[&user.0, &document.0]).await?;
        let Some(state) = state else { return Ok(None) };
        match state.as_slice() {
            [s] if s == "queued" => Ok(Some(JobState::Queued)),
            [s] if s == "leased" => Ok(Some(JobState::Leased)),
            [s, error] if s == "parked" => Ok(Some(JobState::Parked(error.clone()))),
            other => Err(QueueError::Backend(format!("unexpected job state {other:?}"))),
        }
    }

    async fn depth(&self) -> Result<Depth, QueueError> {
        self.counters(format!("{}count", self.prefix)).await
    }

    async fn depth_for(&self, user: UserId) -> Result<Depth, QueueError> {
        self.counters(format!("{}count:{}", self.prefix, user.0)).await
    }

    fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// Uploads reach the main server, which cannot wake a worker on another machine: idle
    /// workers ask every 100 ms (a lease that finds nothing is one cheap script call).
    fn idle_poll(&self) -> Duration {
        Duration::from_millis(100)
    }
}
