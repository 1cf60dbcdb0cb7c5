//! The dashboard's processing figures, read from the store's processing log: documents
//! finished, chunks stored and embedded, cache hits, time per document, failures, and each
//! stage's p50/p95. The log has a row for every processing attempt that ended, whichever
//! process did it (this server's workers, remote `ragmill worker`s, `ragmill ingest` on the
//! same data directory), so these figures count all of them and survive a restart. What only
//! this process knows (workers busy now) stays in [`crate::activity`].

use std::sync::Arc;

use ragmill_core::UserId;
use ragmill_store::{LogSeries, LogTotals, StageTimes, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// The span the figures cover: the last 15 minutes.
pub const WINDOW_S: u64 = 15 * 60;
/// The length of one bucket of [`Processing::buckets`].
pub const BUCKET_S: u64 = 10;
/// The stored documents the percentiles rest on when the window has none: the latest 1,000.
pub const LATEST: usize = 1000;

/// The processing log's totals over a window, and the workers busy now (`GET /v1/stats`'s
/// `activity`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Counters {
    /// The window the totals cover, in seconds (ending now).
    pub window_s: u64,
    /// Document versions stored (ready) in the window, by any process.
    pub documents_ready: u64,
    /// Processing attempts that failed in the window (each attempt of a retried document).
    pub documents_failed: u64,
    /// Documents processed and stored, whose time is in `processing_seconds` (the same as
    /// `documents_ready`: an unchanged re-upload is not processed and not logged).
    pub documents_processed: u64,
    /// Whole-document seconds (extracting + chunking + embedding + storing) of those documents,
    /// summed.
    pub processing_seconds: f64,
    /// Chunks stored by those documents.
    pub chunks_stored: u64,
    /// Distinct chunk texts embedded for them (cache misses).
    pub chunks_embedded: u64,
    /// Chunks whose vector came from the cache.
    pub cache_hits: u64,
    /// Workers of this process busy on this scope's documents now (not from the log).
    pub workers_busy: u64,
}

impl Counters {
    /// The counters of `totals` over `window_s`, with `workers_busy` now.
    pub fn new(window_s: u64, totals: &LogTotals, workers_busy: u64) -> Self {
        Self {
            window_s,
            documents_ready: totals.ready,
            documents_failed: totals.failed,
            documents_processed: totals.ready,
            processing_seconds: totals.seconds,
            chunks_stored: totals.chunks,
            chunks_embedded: totals.embedded,
            cache_hits: totals.cache_hits,
            workers_busy,
        }
    }
}

/// What the processing log says of the last [`WINDOW_S`] seconds (`GET /v1/stats`'s
/// `processing`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Processing {
    /// The span covered, in seconds, ending at `until_ms`.
    pub window_s: u64,
    /// The length of each bucket, in seconds.
    pub bucket_s: u64,
    /// The end of the last bucket (the server's clock, ms since the Unix epoch).
    pub until_ms: u64,
    /// `window_s / bucket_s` buckets, oldest first; bucket `i` ends at
    /// `until_ms - (len - 1 - i) * bucket_s * 1000`.
    pub buckets: Vec<Bucket>,
    /// Attempts in the window by who did them (`server`, `remote worker`, `cli` for
    /// `ragmill ingest`, `unknown`), most first.
    pub by: Vec<Origin>,
    /// Each stage's p50 and p95 time per document.
    pub stages: Stages,
}

/// One bucket of the processing log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// Document versions stored.
    pub documents_ready: u64,
    /// Processing attempts that failed.
    pub documents_failed: u64,
    /// Chunks stored.
    pub chunks_stored: u64,
    /// Chunk texts embedded (cache misses).
    pub chunks_embedded: u64,
    /// Chunks whose vector came from the cache.
    pub cache_hits: u64,
    /// Whole-document seconds of the versions stored, summed.
    pub processing_seconds: f64,
}

impl From<&LogTotals> for Bucket {
    fn from(t: &LogTotals) -> Self {
        Self {
            documents_ready: t.ready,
            documents_failed: t.failed,
            chunks_stored: t.chunks,
            chunks_embedded: t.embedded,
            cache_hits: t.cache_hits,
            processing_seconds: t.seconds,
        }
    }
}

/// Who did some of the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Origin {
    /// `server` (this server's workers and ledger), `remote worker`, `cli` (`ragmill ingest`
    /// and other commands on the data directory), or `unknown`.
    pub by: String,
    /// Processing attempts that ended, stored or failed.
    pub attempts: u64,
}

/// Which documents the stage percentiles rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Documents stored in the last `window_s` seconds (at most the latest 5,000).
    Window,
    /// None was stored in the window: the latest `latest` stored.
    Latest,
}

/// The time one document spends in each stage, at p50 and p95.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stages {
    /// Over the window, or over the latest documents when the window had none.
    pub basis: Basis,
    /// The window, in seconds.
    pub window_s: u64,
    /// How many stored documents the fallback takes.
    pub latest: u64,
    /// Stored documents the figures rest on.
    pub documents: u64,
    /// When the oldest of them finished (ms since the Unix epoch), if any.
    pub from_ms: Option<i64>,
    /// When the newest of them finished, if any.
    pub to_ms: Option<i64>,
    /// `extracting`, `chunking`, `embedding`, `storing`, and `total` (the whole document),
    /// those that any of the documents reached.
    pub stages: Vec<StageTime>,
}

/// One stage's percentiles (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StageTime {
    /// The stage; `total` is the whole document, read to stored.
    pub stage: String,
    /// Median seconds per document.
    pub p50_s: f64,
    /// 95th percentile seconds per document.
    pub p95_s: f64,
    /// Documents with a time for this stage.
    pub documents: u64,
}

impl Stages {
    fn new(t: StageTimes) -> Self {
        Self {
            basis: if t.in_window { Basis::Window } else { Basis::Latest },
            window_s: WINDOW_S,
            latest: LATEST as u64,
            documents: t.documents,
            from_ms: t.span_ms.map(|s| s.0),
            to_ms: t.span_ms.map(|s| s.1),
            stages: t
                .stages
                .into_iter()
                .map(|s| StageTime {
                    stage: s.stage,
                    p50_s: s.p50_s,
                    p95_s: s.p95_s,
                    documents: s.documents,
                })
                .collect(),
        }
    }
}

impl Processing {
    /// The log's totals over the whole window.
    pub fn totals(&self) -> LogTotals {
        let mut t = LogTotals::default();
        for b in &self.buckets {
            t.add(&LogTotals {
                ready: b.documents_ready,
                failed: b.documents_failed,
                chunks: b.chunks_stored,
                embedded: b.chunks_embedded,
                cache_hits: b.cache_hits,
                seconds: b.processing_seconds,
            });
        }
        t
    }
}

/// Reads `user`'s figures, or every user's for `None`, over the window ending at `now_ms`.
/// Blocking (SQLite).
pub fn read(
    store: &Arc<Store>,
    user: Option<UserId>,
    now_ms: u64,
) -> Result<Processing, StoreError> {
    let until = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let bucket_ms = (BUCKET_S * 1000) as i64;
    let n = (WINDOW_S / BUCKET_S) as usize;
    let since = until - (WINDOW_S * 1000) as i64;
    let (series, stages) = match user {
        Some(u) => {
            let u = store.user(u);
            (u.processing_series(until, bucket_ms, n)?, u.stage_times(since, LATEST)?)
        }
        None => (store.processing_series(until, bucket_ms, n)?, store.stage_times(since, LATEST)?),
    };
    let LogSeries { buckets, by, .. } = series;
    Ok(Processing {
        window_s: WINDOW_S,
        bucket_s: BUCKET_S,
        until_ms: now_ms,
        buckets: buckets.iter().map(Bucket::from).collect(),
        by: by.into_iter().map(|(by, attempts)| Origin { by, attempts }).collect(),
        stages: Stages::new(stages),
    })
}

/// The log's totals of `user` (or every user) over the `window_s` seconds ending at `now_ms`,
/// in one bucket (no series, no percentiles: for history samples and the users' list).
/// Blocking (SQLite).
pub fn totals(
    store: &Store,
    user: Option<UserId>,
    now_ms: u64,
    window_s: u64,
) -> Result<LogTotals, StoreError> {
    let until = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let span = i64::try_from(window_s * 1000).unwrap_or(i64::MAX);
    let series = match user {
        Some(u) => store.user(u).processing_series(until, span, 1)?,
        None => store.processing_series(until, span, 1)?,
    };
    Ok(series.buckets.first().copied().unwrap_or_default())
}
