//! [`JobQueue`]: the SQLite tables, leasing, and the end of a lease.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ragmill_core::{DocumentId, Failed, JobId, Lease, UserId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::clock::system_nanos;
use crate::config::{QueueConfig, QueueError};

mod outside;

/// The queue's tables. `queue_users` holds each user's turn for round-robin: `served` is the
/// sequence number of the user's last lease (0: never served), `seen` the order in which users
/// first enqueued, which breaks ties between users never served.
/// `IF NOT EXISTS` throughout: the file is shared with the store, which
/// versions its own schema with `PRAGMA user_version`; the queue leaves that alone.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    document_id INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'leased', 'parked')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    lost        INTEGER NOT NULL DEFAULT 0,
    not_before  INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    lease_seq   INTEGER NOT NULL DEFAULT 0,
    token       TEXT,
    worker      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_jobs_pick ON queue_jobs (state, user_id, size, id);
CREATE INDEX IF NOT EXISTS queue_jobs_doc ON queue_jobs (user_id, document_id, state);
CREATE UNIQUE INDEX IF NOT EXISTS queue_jobs_one_queued
    ON queue_jobs (user_id, document_id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS queue_jobs_expiry ON queue_jobs (lease_until) WHERE state = 'leased';
CREATE TABLE IF NOT EXISTS queue_users (
    user_id INTEGER PRIMARY KEY,
    served  INTEGER NOT NULL DEFAULT 0,
    seen    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_users_turn ON queue_users (served, seen);
";

/// The embedded durable job queue (blocking calls). `Send + Sync`: share it in an `Arc` between workers.
#[derive(Debug)]
pub struct SqliteQueue {
    /// A std mutex: every use is a short, blocking SQLite call, never held across an await.
    conn: Mutex<Connection>,
    config: QueueConfig,
}

/// Distinguishes leases made in the same nanosecond by one process.
static TOKEN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The row id behind a lease's opaque job id.
fn job_id(lease: &Lease) -> Result<i64, QueueError> {
    lease.job.0.parse().map_err(|_| QueueError::ForeignLease(lease.job.0.clone()))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue's tables in the SQLite file at `db_path`.
    pub fn open(db_path: &Path, config: QueueConfig) -> Result<Self, QueueError> {
        let mut conn = Connection::open(db_path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL (unlike the store's FULL): in WAL mode it survives a crash of the process
        // (kill -9); a power cut can drop the last commits, and that loses nothing: the store
        // is the truth, and the reconciler queues again any queued or processing document
        // whose job is missing, while a lost completion only runs a job again (idempotent).
        // The next FULL commit of the store syncs the shared WAL, these frames included.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.commit()?;
        Ok(SqliteQueue { conn: Mutex::new(conn), config })
    }

    /// The configuration the queue was opened with.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, QueueError> {
        self.conn.lock().map_err(|_| QueueError::Poisoned)
    }

    fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    fn max_attempts(&self) -> i64 {
        i64::from(self.config.max_attempts.max(1))
    }

    fn max_lost(&self) -> i64 {
        i64::from(self.config.max_lost.max(1))
    }

    /// Queues `document` for processing. One live job per document: if it already has a queued
    /// job, that job's size is updated, its attempts and backoff are reset, and it keeps its
    /// place; a parked job of the document is replaced. If its job is leased, a new queued job is
    /// added that will not be leased until the leased one ends (a reprocess while processing).
    pub fn enqueue(
        &self,
        user: UserId,
        document: DocumentId,
        size: u64,
    ) -> Result<JobId, QueueError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM queue_jobs WHERE user_id = ?1 AND document_id = ?2 AND state = 'parked'",
            params![user.0, document.0],
        )?;
        let queued: Option<i64> = tx
            .query_row(
                "SELECT id FROM queue_jobs
                 WHERE user_id = ?1 AND document_id = ?2 AND state = 'queued'",
                params![user.0, document.0],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO queue_users (user_id, served, seen)
             VALUES (?1, 0, (SELECT COALESCE(MAX(seen), 0) + 1 FROM queue_users))
             ON CONFLICT (user_id) DO NOTHING",
            params![user.0],
        )?;
        let id = match queued {
            Some(id) => {
                tx.execute(
                    "UPDATE queue_jobs SET size = ?2, attempts = 0, lost = 0, not_before = 0,
                         error = NULL, updated_at = ?3
                     WHERE id = ?1",
                    params![id, to_i64(size), now],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO queue_jobs (user_id, document_id, size, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
                    params![user.0, document.0, to_i64(size), now],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.commit()?;
        tracing::debug!(job = id, user = user.0, document = document.0, size, "job queued");
        Ok(JobId(id.to_string()))
    }

    /// Takes the next job for `worker` (a name for logs), or `None` when no job is eligible.
    ///
    /// First, leases that ran out are taken back: each counts as a failed attempt, and a job
    /// whose attempts are exhausted is parked with `worker lost the job N times`. Then the
    /// eligible queued jobs (past their backoff, and whose document has no other job leased) are
    /// ordered: the user whose last lease is oldest (never served first, in the order they first
    /// enqueued), then the smallest size, then the oldest job.
    pub fn lease(&self, worker: &str) -> Result<Option<Lease>, QueueError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.reclaim_expired(&tx, now)?;
        let picked = Self::pick(&tx, now)?;
        let Some((id, user, document, attempts, seq)) = picked else {
            tx.commit()?;
            return Ok(None);
        };
        let attempt = attempts.saturating_add(1);
        let seq = seq.saturating_add(1);
        let token = format!(
            "{id}.{seq}.{:x}.{:x}.{:x}",
            std::process::id(),
            system_nanos(),
            TOKEN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let until = now.saturating_add(millis(self.config.lease));
        tx.execute(
            "UPDATE queue_jobs SET state = 'leased', attempts = ?2, lease_seq = ?3, token = ?4,
                 worker = ?5, lease_until = ?6, updated_at = ?7
             WHERE id = ?1",
            params![id, attempt, seq, token, worker, until, now],
        )?;
        tx.execute(
            "UPDATE queue_users SET served = (SELECT MAX(served) + 1 FROM queue_users)
             WHERE user_id = ?1",
            params![user],
        )?;
        tx.commit()?;
        tracing::debug!(job = id, user, document, attempt, worker, "job leased");
        Ok(Some(Lease {
            job: JobId(id.to_string()),
            user: UserId(user),
            document: DocumentId(document),
            attempt: to_u32(attempt),
            token,
        }))
    }

    /// The next eligible job: users in turn (last served longest ago, never served first, ties
    /// by first enqueue), and for the first user with an eligible job, its smallest, then
    /// oldest. Each step follows an index, so a lease stays cheap with thousands queued.
    #[allow(clippy::type_complexity)]
    fn pick(
        tx: &Transaction<'_>,
        now: i64,
    ) -> Result<Option<(i64, i64, i64, i64, i64)>, QueueError> {
        let users: Vec<i64> = {
            let mut stmt = tx.prepare_cached(
                "SELECT u.user_id FROM queue_users u
                 WHERE EXISTS (
                     SELECT 1 FROM queue_jobs j
                     WHERE j.state = 'queued' AND j.user_id = u.user_id AND j.not_before <= ?1)
                 ORDER BY u.served, u.seen",
            )?;
            let rows = stmt.query_map(params![now], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut stmt = tx.prepare_cached(
            "SELECT j.id, j.user_id, j.document_id, j.attempts, j.lease_seq
             FROM queue_jobs j INDEXED BY queue_jobs_pick
             WHERE j.state = 'queued' AND j.user_id = ?1 AND j.not_before <= ?2
               AND NOT EXISTS (
                   SELECT 1 FROM queue_jobs l
                   WHERE l.user_id = j.user_id AND l.document_id = j.document_id
                     AND l.state = 'leased')
             ORDER BY j.size, j.id
             LIMIT 1",
        )?;
        for user in users {
            let job = stmt
                .query_row(params![user, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            if job.is_some() {
                return Ok(job);
            }
        }
        Ok(None)
    }

    /// Takes back every lease that ran out by `now` (inside the caller's transaction).
    fn reclaim_expired(&self, tx: &Transaction<'_>, now: i64) -> Result<(), QueueError> {
        let expired: Vec<(i64, i64, i64, i64, i64, Option<String>)> = {
            let mut stmt = tx.prepare(
                "SELECT id, user_id, document_id, attempts, lost, worker FROM queue_jobs
                 WHERE state = 'leased' AND lease_until <= ?1",
            )?;
            let rows = stmt.query_map(params![now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, user, document, attempts, lost, worker) in expired {
            let lost = lost.saturating_add(1);
            let worker = worker.unwrap_or_default();
            if self.newer_queued(tx, id, user, document)? {
                tx.execute("DELETE FROM queue_jobs WHERE id = ?1", params![id])?;
                tracing::warn!(
                    job = id,
                    user,
                    document,
                    worker,
                    "lease ran out; a newer job replaces it"
                );
            } else if lost >= self.max_lost() {
                let error = format!("worker lost the job {lost} times");
                tx.execute(
                    "UPDATE queue_jobs SET state = 'parked', lost = ?2, error = ?3, token = NULL,
                         lease_until = NULL, updated_at = ?4
                     WHERE id = ?1",
                    params![id, lost, error, now],
                )?;
                tracing::warn!(
                    job = id,
                    user,
                    document,
                    worker,
                    attempts,
                    "lease ran out; job parked"
                );
            } else {
                tx.execute(
                    "UPDATE queue_jobs SET state = 'queued', lost = ?2, not_before = ?3,
                         token = NULL, lease_until = NULL, updated_at = ?3
                     WHERE id = ?1",
                    params![id, lost, now],
                )?;
                tracing::warn!(
                    job = id,
                    user,
                    document,
                    worker,
                    attempts,
                    "lease ran out; job requeued"
                );
            }
        }
        Ok(())
    }

    /// Whether the document of job `id` has another job queued (which then replaces `id`).
    fn newer_queued(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        user: i64,
        document: i64,
    ) -> Result<bool, QueueError> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM queue_jobs
                 WHERE user_id = ?1 AND document_id = ?2 AND state = 'queued' AND id <> ?3",
                params![user, document, id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The attempts counted so far for the job the lease holds, or `LeaseLost`.
    fn held(tx: &Transaction<'_>, lease: &Lease) -> Result<i64, QueueError> {
        tx.query_row(
            "SELECT attempts FROM queue_jobs WHERE id = ?1 AND state = 'leased' AND token = ?2",
            params![job_id(lease)?, lease.token],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(QueueError::LeaseLost)
    }

    /// Extends the lease to `now + QueueConfig::lease`. A lease that ran out but was not yet
    /// taken over is extended too; one that was taken over answers `LeaseLost`.
    pub fn heartbeat(&self, lease: &Lease) -> Result<(), QueueError> {
        let now = self.now();
        let until = now.saturating_add(millis(self.config.lease));
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE queue_jobs SET lease_until = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'leased' AND token = ?2",
            params![job_id(lease)?, lease.token, until, now],
        )?;
        if n == 0 { Err(QueueError::LeaseLost) } else { Ok(()) }
    }

    /// The job is done: its row is deleted.
    pub fn complete(&self, lease: &Lease) -> Result<(), QueueError> {
        let conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM queue_jobs WHERE id = ?1 AND state = 'leased' AND token = ?2",
            params![job_id(lease)?, lease.token],
        )?;
        if n == 0 {
            return Err(QueueError::LeaseLost);
        }
        tracing::debug!(job = %lease.job, document = lease.document.0, "job complete");
        Ok(())
    }

    /// This attempt failed with `error`. Fewer than `max_attempts` attempts made: the job goes
    /// back to the queue, not leased again before `now + backoff · 2^(attempt-1)`. Otherwise it is
    /// parked with the error.
    pub fn fail(&self, lease: &Lease, error: &str) -> Result<Failed, QueueError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let attempts = Self::held(&tx, lease)?;
        let (id, user, document) = (job_id(lease)?, lease.user.0, lease.document.0);
        let outcome = if self.newer_queued(&tx, id, user, document)? {
            tx.execute("DELETE FROM queue_jobs WHERE id = ?1", params![id])?;
            let next: i64 = tx.query_row(
                "SELECT attempts FROM queue_jobs
                 WHERE user_id = ?1 AND document_id = ?2 AND state = 'queued'",
                params![user, document],
                |r| r.get(0),
            )?;
            Failed::Retrying { attempt: to_u32(next.saturating_add(1)) }
        } else if attempts < self.max_attempts() {
            let exp = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
            let delay = millis(self.config.backoff).saturating_mul(1i64 << exp);
            tx.execute(
                "UPDATE queue_jobs SET state = 'queued', not_before = ?2, error = ?3, token = NULL,
                     lease_until = NULL, updated_at = ?4
                 WHERE id = ?1",
                params![id, now.saturating_add(delay), error, now],
            )?;
            Failed::Retrying { attempt: to_u32(attempts.saturating_add(1)) }
        } else {
            tx.execute(
                "UPDATE queue_jobs SET state = 'parked', error = ?2, token = NULL,
                     lease_until = NULL, updated_at = ?3
                 WHERE id = ?1",
                params![id, error, now],
            )?;
            Failed::Parked
        };
        tx.commit()?;
        tracing::info!(job = id, user, document, attempts, ?outcome, error, "job failed");
        Ok(outcome)
    }

    /// Puts leased job `id` back in the queue at once with its attempt uncounted, or drops it
    /// when a newer job of its document is queued (inside the caller's transaction).
    fn hand_back(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        user: i64,
        document: i64,
        now: i64,
    ) -> Result<(), QueueError> {
        if self.newer_queued(tx, id, user, document)? {
            tx.execute("DELETE FROM queue_jobs WHERE id = ?1", params![id])?;
        } else {
            tx.execute(
                "UPDATE queue_jobs SET state = 'queued', attempts = MAX(attempts - 1, 0),
                     token = NULL, lease_until = NULL, updated_at = ?2
                 WHERE id = ?1",
                params![id, now],
            )?;
        }
        Ok(())
    }

    /// Hands the job back (graceful shutdown): queued again at once, the attempt not counted.
    pub fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::held(&tx, lease)?;
        let (id, user, document) = (job_id(lease)?, lease.user.0, lease.document.0);
        self.hand_back(&tx, id, user, document, now)?;
        tx.commit()?;
        tracing::debug!(job = id, user, document, "job released");
        Ok(())
    }
}
