//! The queue seen from outside the run loop: what the server asks of it when a user cancels or
//! deletes a document, lists failures, or looks at the dashboard, and the hand-back of a worker
//! known to be gone. The run loop itself (enqueue, lease, heartbeat, complete, fail, release)
//! is in the parent module.

use ragmill_core::{Depth, DocumentId, JobState, UserId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteQueue, to_u64};
use crate::QueueError;

impl SqliteQueue {
    /// Removes the document's queued and parked jobs (when it is deleted); answers how many. A
    /// leased job is left alone: its worker will find the document gone.
    pub fn cancel(&self, user: UserId, document: DocumentId) -> Result<u64, QueueError> {
        let conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM queue_jobs
             WHERE user_id = ?1 AND document_id = ?2 AND state IN ('queued', 'parked')",
            params![user.0, document.0],
        )?;
        Ok(n as u64)
    }

    /// The user's parked jobs: each document with its last error, oldest job first.
    pub fn parked(&self, user: UserId) -> Result<Vec<(DocumentId, String)>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT document_id, COALESCE(error, '') FROM queue_jobs
             WHERE user_id = ?1 AND state = 'parked' ORDER BY id",
        )?;
        let rows = stmt.query_map(params![user.0], |r| Ok((DocumentId(r.get(0)?), r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The document's newest job and where it stands, if it has one.
    pub fn job_state(
        &self,
        user: UserId,
        document: DocumentId,
    ) -> Result<Option<JobState>, QueueError> {
        let conn = self.conn()?;
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT state, error FROM queue_jobs WHERE user_id = ?1 AND document_id = ?2
                 ORDER BY id DESC LIMIT 1",
                params![user.0, document.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(state, error)| match state.as_str() {
            "queued" => JobState::Queued,
            "leased" => JobState::Leased,
            _ => JobState::Parked(error.unwrap_or_default()),
        }))
    }

    /// The names of the workers holding leases now.
    pub fn lease_holders(&self) -> Result<Vec<String>, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT DISTINCT COALESCE(worker, '') FROM queue_jobs WHERE state = 'leased'",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Hands back every job leased by `worker`, which is known to be gone (a process that was
    /// killed and restarted): queued again at once, the attempt not counted, since a crash of
    /// the whole process is no fault of the document it was working on. Answers how many.
    pub fn release_held_by(&self, worker: &str) -> Result<u64, QueueError> {
        let now = self.now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Vec<(i64, i64, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT id, user_id, document_id FROM queue_jobs
                 WHERE state = 'leased' AND worker = ?1",
            )?;
            let rows =
                stmt.query_map(params![worker], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for &(id, user, document) in &held {
            self.hand_back(&tx, id, user, document, now)?;
        }
        tx.commit()?;
        if !held.is_empty() {
            tracing::info!(
                worker,
                jobs = held.len(),
                "took back the jobs of a worker that is gone"
            );
        }
        Ok(held.len() as u64)
    }

    /// Jobs in each state, all users.
    pub fn depth(&self) -> Result<Depth, QueueError> {
        self.count("SELECT state, COUNT(*) FROM queue_jobs GROUP BY state", params![])
    }

    /// Jobs in each state for one user.
    pub fn depth_for(&self, user: UserId) -> Result<Depth, QueueError> {
        self.count(
            "SELECT state, COUNT(*) FROM queue_jobs WHERE user_id = ?1 GROUP BY state",
            params![user.0],
        )
    }

    fn count(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Depth, QueueError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(args)?;
        let mut depth = Depth::default();
        while let Some(row) = rows.next()? {
            let state: String = row.get(0)?;
            let n = to_u64(row.get(1)?);
            match state.as_str() {
                "queued" => depth.queued = n,
                "leased" => depth.leased = n,
                "parked" => depth.parked = n,
                _ => {}
            }
        }
        Ok(depth)
    }
}
