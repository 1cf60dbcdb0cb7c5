//! The embedded durable job queue: one SQLite file, leases, bounded attempts, fair ordering.
//!
//! [`SqliteQueue`] keeps one job per document to process, in its own tables (`queue_jobs`,
//! `queue_users`) inside the store's SQLite file (`<data_dir>/ragmill.db`, WAL mode), through its
//! own connection. Jobs name the store's users and documents by value; the queue never reads the
//! store's tables and the store never reads the queue's. Its calls block (SQLite);
//! [`EmbeddedQueue`] puts them on tokio's blocking threads behind the async
//! [`ragmill_core::JobQueue`] seam that the server's workers speak.
//!
//! # The run-loop contract
//!
//! A worker loops:
//!
//! 1. [`SqliteQueue::lease`] takes the next job, or `None` (sleep a little and ask again). The
//!    [`Lease`] is held until `now + QueueConfig::lease`.
//! 2. It does the work, calling [`SqliteQueue::heartbeat`] well within every lease period (a third of
//!    it is a good rhythm) so the lease does not run out under it.
//! 3. It ends the lease exactly once:
//!    - [`SqliteQueue::complete`]: done, the job is gone;
//!    - [`SqliteQueue::fail`]: this attempt failed; the job is retried after a backoff, or parked
//!      with the error once `max_attempts` attempts have been made ([`Failed`] says which);
//!    - [`SqliteQueue::release`]: graceful shutdown; the job goes back to the queue and the attempt
//!      does not count.
//!
//! Any of these calls answers [`QueueError::LeaseLost`] when the lease's token no longer holds
//! the job (the lease ran out and another worker took the job, or the job was handed back): the
//! worker must then drop its result without touching the job again. Work must be idempotent,
//! because a job whose worker was merely slow can run twice.
//!
//! # Invariants
//!
//! - A job is `queued`, `leased` or `parked`. Only a transaction begun with `BEGIN IMMEDIATE`
//!   changes a job, so two connections (or processes) on the same file never lease the same job.
//! - At most one queued job per document. A document whose job is leased may have one more,
//!   queued, job (a reprocess requested while processing); it is not leased until the leased one
//!   ends, so one document is never processed by two workers at once (unless a lease expires).
//! - A lease that ran out counts as lost ("the worker died"), apart from failed attempts; when
//!   `max_lost` leases were lost the job is parked with `worker lost the job N times` instead
//!   of leased again (a poison document that kills its workers).
//! - Every lease carries a token unique to it; every later call checks it.
//! - Fairness: the next job goes to the eligible user whose last lease is the oldest (users never
//!   served first, in the order they first enqueued), then the smallest job of that user, then
//!   the oldest. One user's thousand files never starve another user's single file, and small
//!   documents go before large ones.
//! - The queue does not touch the store's schema version (`PRAGMA user_version`) and runs with
//!   foreign keys off on its own connection.
//!
//! ```no_run
//! use ragmill_core::Failed;
//! use ragmill_queue::{QueueConfig, SqliteQueue};
//! # fn work(_: &ragmill_core::Lease) -> Result<(), String> { Ok(()) }
//! # fn main() -> Result<(), ragmill_queue::QueueError> {
//! let queue = SqliteQueue::open(std::path::Path::new("data/ragmill.db"), QueueConfig::default())?;
//! while let Some(lease) = queue.lease("worker-1")? {
//!     match work(&lease) {
//!         Ok(()) => queue.complete(&lease)?,
//!         Err(e) => match queue.fail(&lease, &e)? {
//!             Failed::Retrying { attempt } => eprintln!("will retry as attempt {attempt}"),
//!             Failed::Parked => eprintln!("gave up: {e}"),
//!         },
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod clock;
mod config;
mod embedded;
mod queue;

pub use clock::{Clock, ManualClock};
pub use config::{QueueConfig, QueueError};
pub use embedded::EmbeddedQueue;
pub use queue::SqliteQueue;
