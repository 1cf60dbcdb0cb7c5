//! The whole service's figures (`GET /v1/stats` as an administrator sees it) every
//! [`INTERVAL`] for the last [`KEEP`] samples, so a dashboard opened now starts with the last
//! minutes instead of an empty chart. In memory only: what the samples add to the processing
//! log (which `GET /v1/stats/history` reads afresh) is the present of this process (queue
//! depth, workers busy, batches and endpoints), which is not recorded anywhere else.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::stats::{Stats, figures};
use crate::state::AppState;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Samples kept: six minutes.
pub const KEEP: usize = 180;

/// The service's figures at one moment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub t_ms: u64,
    /// What `GET /v1/stats` answered an administrator then (without `processing`: the log
    /// can be read again for any time).
    pub stats: Stats,
}

/// The last [`KEEP`] samples.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Adds a sample, forgetting the oldest beyond [`KEEP`].
    pub fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.push_back(sample);
        while samples.len() > KEEP {
            samples.pop_front();
        }
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Samples the service's figures every [`INTERVAL`], for as long as the task runs.
pub async fn record(state: AppState) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        match figures(&state, None, false).await {
            Ok(stats) => state.history.push(Sample { t_ms: now_ms(), stats }),
            Err(e) => tracing::warn!(error = ?e, "cannot sample the service's figures"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_samples_are_kept() {
        let history = History::default();
        let stats = crate::routes::stats::tests::empty_stats();
        for t_ms in 0..(KEEP as u64 + 5) {
            history.push(Sample { t_ms, stats: stats.clone() });
        }
        let kept = history.samples();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept.first().map(|s| s.t_ms), Some(5));
        assert_eq!(kept.last().map(|s| s.t_ms), Some(KEEP as u64 + 4));
    }
}
