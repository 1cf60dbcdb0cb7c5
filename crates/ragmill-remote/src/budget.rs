//! The retry budget: retries may add at most `ratio` to the first attempts of the last
//! `window`, plus `min_retries` per window.
//!
//! When every endpoint struggles, per-request retry limits alone multiply the load by
//! `max_attempts` exactly when the servers can least take it. A budget shared by the whole pool
//! caps the extra load instead: once it is spent, a failure is reported at once.
//!
//! The window slides in ten steps: counts live in buckets of a tenth of the window each, and
//! buckets older than the window are dropped.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RetryBudgetConfig;

const STEPS: u32 = 10;

struct Bucket {
    start: Instant,
    requests: u64,
    retries: u64,
}

pub(crate) struct RetryBudget {
    ratio: f64,
    min_retries: u64,
    window: Duration,
    step: Duration,
    buckets: Mutex<VecDeque<Bucket>>,
}

impl RetryBudget {
    pub(crate) fn new(config: &RetryBudgetConfig) -> Self {
        let window = config.window.max(Duration::from_millis(STEPS.into()));
        RetryBudget {
            ratio: config.ratio,
            min_retries: config.min_retries.into(),
            window,
            step: window / STEPS,
            buckets: Mutex::new(VecDeque::new()),
        }
    }

    fn with<R>(&self, now: Instant, f: impl FnOnce(&mut VecDeque<Bucket>) -> R) -> R {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        while buckets.front().is_some_and(|b| now.saturating_duration_since(b.start) >= self.window)
        {
            buckets.pop_front();
        }
        if buckets.back().is_none_or(|b| now.saturating_duration_since(b.start) >= self.step) {
            buckets.push_back(Bucket { start: now, requests: 0, retries: 0 });
        }
        f(&mut buckets)
    }

    /// Counts a first attempt.
    pub(crate) fn record_request(&self, now: Instant) {
        self.with(now, |b| {
            if let Some(last) = b.back_mut() {
                last.requests += 1;
            }
        });
    }

    /// Takes one retry from the budget if there is one left.
    pub(crate) fn try_retry(&self, now: Instant) -> bool {
        self.with(now, |b| {
            let requests: u64 = b.iter().map(|x| x.requests).sum();
            let retries: u64 = b.iter().map(|x| x.retries).sum();
            let allowed = self.min_retries as f64 + self.ratio * requests as f64;
            if (retries as f64) < allowed {
                if let Some(last) = b.back_mut() {
                    last.retries += 1;
                }
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, min_retries: u32) -> RetryBudget {
        RetryBudget::new(&RetryBudgetConfig { ratio, min_retries, window: Duration::from_secs(10) })
    }

    #[test]
    fn floor_plus_ratio_of_requests() {
        let b = budget(0.2, 2);
        let t = Instant::now();
        assert!(b.try_retry(t) && b.try_retry(t), "the floor");
        assert!(!b.try_retry(t));
        for _ in 0..10 {
            b.record_request(t);
        }
        assert!(b.try_retry(t) && b.try_retry(t), "20% of 10");
        assert!(!b.try_retry(t));
    }

    #[test]
    fn the_window_slides() {
        let b = budget(0.0, 1);
        let t = Instant::now();
        assert!(b.try_retry(t));
        assert!(!b.try_retry(t + Duration::from_secs(5)));
        assert!(b.try_retry(t + Duration::from_secs(10)), "the first retry left the window");
    }
}
