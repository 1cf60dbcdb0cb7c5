//! The processing log: one row for every processing attempt of a document version that ended,
//! stored or failed, whichever process did it (a server's worker, a remote `ragmill worker`
//! through the main server, or `ragmill ingest` on the same data directory).
//!
//! A row is written in the transaction that stores the version ([`UserStore::replace_document`]
//! and its kin) or records the failure ([`UserStore::record_failure`],
//! [`UserStore::mark_failed`]), so the log and the documents never disagree. It is append-only
//! and bounded: every write also deletes rows older than [`Retention::max_age`] and all but the
//! newest [`Retention::max_rows`] (both deletes seek an index, so they cost nothing when there is
//! nothing to delete).
//!
//! What a row holds that the store cannot see itself (who did the work, how many chunks were
//! embedded and how many came from the cache) comes with the write as an [`Attempt`]. The time
//! of the `storing` stage is the store's own: from the start of the write to its commit.
//!
//! Reads are scoped like everything else: [`UserStore::processing_series`] reads one user's
//! rows, [`Store::processing_series`] (the service's figures, for administrators) all of them.

use std::time::Duration;

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;

use crate::codec::now_ms;
use crate::{DocumentId, Store, StoreError, Timings, UserId, UserStore};

/// The stages whose times the log keeps, in the order they run; `total` is the whole document.
pub const STAGES: [&str; 5] = ["extracting", "chunking", "embedding", "storing", "total"];

/// What a processing attempt did that the store cannot see for itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempt {
    /// Who did it: `server`, `remote worker`, `cli`, … (`None`: not said).
    pub by: Option<String>,
    /// Distinct chunk texts that missed the cache and were embedded. A version written by a
    /// handle that was given no attempt (a bulk load) counts every chunk as embedded.
    pub embedded: u64,
    /// Chunks whose vector came from the cache (or from another chunk of the same text).
    pub cache_hits: u64,
}

impl Attempt {
    /// An attempt by `by`, with no chunk figures (a failure).
    pub fn by(by: &str) -> Self {
        Self { by: Some(by.to_owned()), ..Self::default() }
    }
}

/// How much of the log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rows older than this are deleted (default 30 days).
    pub max_age: Duration,
    /// Only the newest this many rows are kept (default 1,000,000: about 200 MB at most).
    pub max_rows: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(30 * 24 * 3600), max_rows: 1_000_000 }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "code")]
pub enum Outcome {
    /// The version was stored and is searchable.
    Ready,
    /// It failed with this stable code.
    Failed(String),
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    /// Whose document.
    pub user: UserId,
    /// Which document (it may have been deleted since).
    pub document: DocumentId,
    /// When the attempt ended, in milliseconds since the Unix epoch.
    pub finished_at: i64,
    /// Stored or failed.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Chunks stored (0 for a failure).
    pub chunks: u64,
    /// Chunk texts embedded (cache misses).
    pub embedded: u64,
    /// Chunks whose vector came from the cache.
    pub cache_hits: u64,
    /// Seconds per stage, for the stages in [`STAGES`] it reached.
    pub timings: Timings,
    /// Who did the work, if said.
    pub by: Option<String>,
}

/// The log's figures for one span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LogTotals {
    /// Versions stored.
    pub ready: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Chunks stored by the versions stored.
    pub chunks: u64,
    /// Chunk texts embedded (cache misses).
    pub embedded: u64,
    /// Chunks whose vector came from the cache.
    pub cache_hits: u64,
    /// Whole-document seconds of the versions stored (`total`), summed.
    pub seconds: f64,
}

impl LogTotals {
    /// Adds `other` in.
    pub fn add(&mut self, other: &LogTotals) {
        self.ready += other.ready;
        self.failed += other.failed;
        self.chunks += other.chunks;
        self.embedded += other.embedded;
        self.cache_hits += other.cache_hits;
        self.seconds += other.seconds;
    }
}

/// The log over a span, cut into equal buckets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSeries {
    /// The end of the last bucket (ms since the Unix epoch).
    pub until_ms: i64,
    /// Length of each bucket, in milliseconds.
    pub bucket_ms: i64,
    /// Oldest first; bucket `i` ends at `until_ms - (len - 1 - i) * bucket_ms`.
    pub buckets: Vec<LogTotals>,
    /// Attempts in the span by who did them, most first.
    pub by: Vec<(String, u64)>,
}

/// One stage's percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTime {
    /// Its name (one of [`STAGES`]).
    pub stage: String,
    /// Median, in seconds.
    pub p50_s: f64,
    /// 95th percentile, in seconds.
    pub p95_s: f64,
    /// Documents whose time it rests on.
    pub documents: u64,
}

/// Per-stage percentiles of stored versions, and what they rest on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTimes {
    /// True when they are over the window asked for; false when the window held no stored
    /// version and they are over the latest ones instead.
    pub in_window: bool,
    /// Documents they rest on.
    pub documents: u64,
    /// Finished times of the oldest and newest of those documents (ms), if any.
    pub span_ms: Option<(i64, i64)>,
    /// One per stage in [`STAGES`] that any of them reached.
    pub stages: Vec<StageTime>,
}

/// The nearest-rank percentile `p` (0 to 100) of `sorted` (ascending); `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// How an attempt on one document ended, as the write that records it knows.
pub(crate) struct Ended<'a> {
    pub(crate) document: DocumentId,
    pub(crate) outcome: Outcome,
    pub(crate) chunks: u64,
    pub(crate) timings: &'a Timings,
}

/// Writes one row inside `tx`, then prunes the log to `keep`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    user: UserId,
    ended: &Ended<'_>,
    attempt: Option<&Attempt>,
    keep: Retention,
) -> Result<(), StoreError> {
    let Ended { document, ref outcome, chunks, timings } = *ended;
    let stage = |name: &str| timings.get(name).copied().filter(|s| s.is_finite());
    // The whole document: the pipeline's own `total` when it has one, else its stages summed.
    let total = stage("total").or_else(|| {
        let stages: Vec<f64> = STAGES[..4].iter().filter_map(|s| stage(s)).collect();
        (!stages.is_empty()).then(|| stages.iter().sum())
    });
    let (kind, code) = match outcome {
        Outcome::Ready => ("ready", None),
        Outcome::Failed(code) => ("failed", Some(code.as_str())),
    };
    let (embedded, hits) = match (outcome, attempt) {
        (_, Some(a)) => (a.embedded, a.cache_hits),
        (Outcome::Ready, None) => (chunks, 0),
        (Outcome::Failed(_), None) => (0, 0),
    };
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO processing_log (user_id, document_id, finished_at, outcome, error_code, chunks,
             embedded, cache_hits, extracting, chunking, embedding, storing, total, by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        user.0,
        document.0,
        now,
        kind,
        code,
        chunks as i64,
        embedded as i64,
        hits as i64,
        stage("extracting"),
        stage("chunking"),
        stage("embedding"),
        stage("storing"),
        total,
        attempt.and_then(|a| a.by.as_deref()),
    ])?;
    let oldest = now.saturating_sub(i64::try_from(keep.max_age.as_millis()).unwrap_or(i64::MAX));
    tx.prepare_cached("DELETE FROM processing_log WHERE finished_at < ?1")?.execute([oldest])?;
    tx.prepare_cached(
        "DELETE FROM processing_log WHERE id <= (SELECT max(id) FROM processing_log) - ?1",
    )?
    .execute([i64::try_from(keep.max_rows).unwrap_or(i64::MAX)])?;
    Ok(())
}

/// Whether the newest row of `document` is a failure with `code` (its attempt is logged).
pub(crate) fn last_failed_with(
    tx: &Transaction<'_>,
    user: UserId,
    document: DocumentId,
    code: &str,
) -> Result<bool, StoreError> {
    Ok(tx.query_row(
        "SELECT coalesce((SELECT error_code = ?3 FROM processing_log
                          WHERE user_id = ?1 AND document_id = ?2 ORDER BY id DESC LIMIT 1), 0)",
        params![user.0, document.0, code],
        |r| r.get(0),
    )?)
}

/// The scope of a read: one user, or all of them (`None`).
type Scope = Option<UserId>;

/// The SQL condition of `scope` on parameter `?1` (bound to the user's id, or NULL): a
/// condition the planner can see through, so a user's read seeks the per-user index.
fn who(scope: Scope) -> &'static str {
    if scope.is_some() { "user_id = ?1" } else { "?1 IS NULL" }
}

fn series(
    conn: &Connection,
    scope: Scope,
    until_ms: i64,
    bucket_ms: i64,
    buckets: usize,
) -> Result<LogSeries, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    let since = until_ms - bucket_ms * buckets as i64;
    let mut out = vec![LogTotals::default(); buckets];
    let who = who(scope);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT (finished_at - ?2 - 1) / ?4, sum(outcome = 'ready'), sum(outcome = 'failed'),
                sum(chunks), sum(embedded), sum(cache_hits),
                coalesce(sum(CASE WHEN outcome = 'ready' THEN total END), 0)
         FROM processing_log
         WHERE finished_at > ?2 AND finished_at <= ?3 AND {who}
         GROUP BY 1"
    ))?;
    let rows = stmt.query_map(params![scope.map(|u| u.0), since, until_ms, bucket_ms], |r| {
        let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok((
            r.get::<_, i64>(0)?,
            LogTotals {
                ready: n(1)?,
                failed: n(2)?,
                chunks: n(3)?,
                embedded: n(4)?,
                cache_hits: n(5)?,
                seconds: r.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (i, totals) = row?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            *slot = totals;
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT coalesce(by, 'unknown'), count(*) FROM processing_log
         WHERE finished_at > ?2 AND finished_at <= ?3 AND {who}
         GROUP BY 1 ORDER BY 2 DESC, 1"
    ))?;
    let by = stmt
        .query_map(params![scope.map(|u| u.0), since, until_ms], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<_, _>>()?;
    Ok(LogSeries { until_ms, bucket_ms, buckets: out, by })
}

/// Rows of stored versions the percentiles rest on, at most this many.
const MAX_SAMPLE: i64 = 5_000;

fn stage_times(
    conn: &Connection,
    scope: Scope,
    since_ms: i64,
    latest: usize,
) -> Result<StageTimes, StoreError> {
    let read =
        |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<[Option<f64>; 6]>, StoreError> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(p, |r| {
                Ok([
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get::<_, Option<i64>>(5)?.map(|t| t as f64),
                ])
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
    let columns = format!(
        "SELECT extracting, chunking, embedding, storing, total, finished_at
         FROM processing_log WHERE outcome = 'ready' AND {}",
        who(scope)
    );
    let user = scope.map(|u| u.0);
    let mut rows = read(
        &format!("{columns} AND finished_at > ?2 ORDER BY finished_at DESC LIMIT ?3"),
        &[&user, &since_ms, &MAX_SAMPLE],
    )?;
    let in_window = !rows.is_empty();
    if !in_window {
        let limit = i64::try_from(latest).unwrap_or(MAX_SAMPLE).min(MAX_SAMPLE);
        rows = read(&format!("{columns} ORDER BY finished_at DESC LIMIT ?2"), &[&user, &limit])?;
    }
    let when: Vec<i64> = rows.iter().filter_map(|r| r[5].map(|t| t as i64)).collect();
    let span_ms = when.iter().min().copied().zip(when.iter().max().copied());
    let stages = STAGES
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let mut v: Vec<f64> = rows.iter().filter_map(|r| r[i]).collect();
            v.sort_by(f64::total_cmp);
            Some(StageTime {
                stage: (*name).to_owned(),
                p50_s: percentile(&v, 50.0)?,
                p95_s: percentile(&v, 95.0)?,
                documents: v.len() as u64,
            })
        })
        .collect();
    Ok(StageTimes { in_window, documents: rows.len() as u64, span_ms, stages })
}

fn entries(conn: &Connection, user: UserId, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT document_id, finished_at, outcome, error_code, chunks, embedded, cache_hits,
                extracting, chunking, embedding, storing, total, by
         FROM processing_log WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![user.0, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        let outcome: String = r.get(2)?;
        let code: Option<String> = r.get(3)?;
        let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        let mut timings = Timings::new();
        for (i, name) in STAGES.iter().enumerate() {
            if let Some(s) = r.get::<_, Option<f64>>(7 + i)? {
                timings.insert((*name).to_owned(), s);
            }
        }
        Ok(LogEntry {
            user,
            document: DocumentId(r.get(0)?),
            finished_at: r.get(1)?,
            outcome: match outcome.as_str() {
                "ready" => Outcome::Ready,
                _ => Outcome::Failed(code.unwrap_or_default()),
            },
            chunks: n(4)?,
            embedded: n(5)?,
            cache_hits: n(6)?,
            timings,
            by: r.get(12)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Keeps the processing log to `retention` from the next write on.
    pub fn set_log_retention(&self, retention: Retention) {
        if let Ok(mut keep) = self.retention.lock() {
            *keep = retention;
        }
    }

    pub(crate) fn log_retention(&self) -> Retention {
        self.retention.lock().map(|k| *k).unwrap_or_default()
    }

    /// Every user's processing log over the `buckets` buckets of `bucket_ms` that end at
    /// `until_ms`: the service's figures, for administrators.
    pub fn processing_series(
        &self,
        until_ms: i64,
        bucket_ms: i64,
        buckets: usize,
    ) -> Result<LogSeries, StoreError> {
        series(&*self.reader()?, None, until_ms, bucket_ms, buckets)
    }

    /// Per-stage p50 and p95 of every user's versions stored after `since_ms`, or of the latest
    /// `latest` stored if none was.
    pub fn stage_times(&self, since_ms: i64, latest: usize) -> Result<StageTimes, StoreError> {
        stage_times(&*self.reader()?, None, since_ms, latest)
    }
}

impl UserStore<'_> {
    /// Says what the processing attempt this handle writes for did (who, and its chunks), for
    /// the processing log; see [`Attempt`].
    pub fn with_attempt(mut self, attempt: Attempt) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// The user's processing log over the `buckets` buckets of `bucket_ms` that end at
    /// `until_ms`.
    pub fn processing_series(
        &self,
        until_ms: i64,
        bucket_ms: i64,
        buckets: usize,
    ) -> Result<LogSeries, StoreError> {
        series(&*self.store.reader()?, Some(self.user), until_ms, bucket_ms, buckets)
    }

    /// Per-stage p50 and p95 of the user's versions stored after `since_ms`, or of the latest
    /// `latest` stored if none was.
    pub fn stage_times(&self, since_ms: i64, latest: usize) -> Result<StageTimes, StoreError> {
        stage_times(&*self.store.reader()?, Some(self.user), since_ms, latest)
    }

    /// The user's newest `limit` rows of the log, newest first.
    pub fn processing_log(&self, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        entries(&*self.store.reader()?, self.user, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0], 95.0), Some(3.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 95.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
