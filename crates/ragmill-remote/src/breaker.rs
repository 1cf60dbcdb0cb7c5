//! A circuit breaker per endpoint.
//!
//! Closed (traffic flows) → Open after `threshold` consecutive failures, or at once when the
//! endpoint is ejected (it answered another model's dimension). Open sheds all traffic for the
//! cool-down; after it, the next request (or the health checker's probe) passes as the one
//! probe of HalfOpen. The probe's success closes the circuit, its failure opens it for another
//! cool-down. Outcomes of requests admitted before the circuit opened are ignored while it is
//! open, so a burst of late failures cannot extend the cool-down and a late success cannot
//! close it without a probe.
//!
//! Time is passed in, so the state machine is tested without waiting.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::stats::CircuitState;

/// How a request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The circuit is closed.
    Normal,
    /// The circuit is half-open and this request is its one probe.
    Probe,
}

/// A change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The state as reported in stats.
    pub(crate) fn state(&self) -> CircuitState {
        self.with(|s| match *s {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        })
    }

    /// Whether [`admit`](Self::admit) would let a request through now.
    pub(crate) fn is_available(&self, now: Instant) -> bool {
        self.with(|s| match *s {
            State::Closed { .. } => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probing } => !probing,
        })
    }

    /// Whether the endpoint is waiting for a probe: open past its cool-down, or half-open with
    /// no probe in flight.
    pub(crate) fn probe_due(&self, now: Instant) -> bool {
        self.with(|s| match *s {
            State::Closed { .. } => false,
            State::Open { until } => now >= until,
            State::HalfOpen { probing } => !probing,
        })
    }

    /// Lets a request through, or not.
    pub(crate) fn admit(&self, now: Instant) -> Option<Admission> {
        self.with(|s| match *s {
            State::Closed { .. } => Some(Admission::Normal),
            State::Open { until } if now >= until => {
                *s = State::HalfOpen { probing: true };
                Some(Admission::Probe)
            }
            State::HalfOpen { probing: false } => {
                *s = State::HalfOpen { probing: true };
                Some(Admission::Probe)
            }
            State::Open { .. } | State::HalfOpen { probing: true } => None,
        })
    }

    pub(crate) fn on_success(&self, how: Admission) -> Transition {
        self.with(|s| match (*s, how) {
            (State::Closed { .. }, _) => {
                *s = State::Closed { failures: 0 };
                Transition::None
            }
            (State::HalfOpen { .. }, Admission::Probe) => {
                *s = State::Closed { failures: 0 };
                Transition::Closed
            }
            _ => Transition::None,
        })
    }

    pub(crate) fn on_failure(&self, how: Admission, now: Instant) -> Transition {
        let open = State::Open { until: now + self.cooldown };
        self.with(|s| match (*s, how) {
            (State::Closed { failures }, _) if failures + 1 >= self.threshold => {
                *s = open;
                Transition::Opened
            }
            (State::Closed { failures }, _) => {
                *s = State::Closed { failures: failures + 1 };
                Transition::None
            }
            (State::HalfOpen { .. }, Admission::Probe) => {
                *s = open;
                Transition::Opened
            }
            _ => Transition::None,
        })
    }

    /// Opens the circuit now, whatever its state (the endpoint is misconfigured).
    pub(crate) fn eject(&self, now: Instant) -> Transition {
        let open = State::Open { until: now + self.cooldown };
        self.with(|s| {
            let was_open = matches!(*s, State::Open { .. });
            *s = open;
            if was_open { Transition::None } else { Transition::Opened }
        })
    }

    /// A request admitted as `how` ended without an outcome (its caller gave up): a probe's
    /// slot is freed for the next one.
    pub(crate) fn on_cancel(&self, how: Admission) {
        self.with(|s| {
            if how == Admission::Probe && *s == (State::HalfOpen { probing: true }) {
                *s = State::HalfOpen { probing: false };
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = Breaker::new(3, COOL);
        let t = Instant::now();
        assert_eq!(b.on_failure(Admission::Normal, t), Transition::None);
        assert_eq!(b.on_failure(Admission::Normal, t), Transition::None);
        b.on_success(Admission::Normal); // resets the count
        assert_eq!(b.on_failure(Admission::Normal, t), Transition::None);
        assert_eq!(b.on_failure(Admission::Normal, t), Transition::None);
        assert_eq!(b.on_failure(Admission::Normal, t), Transition::Opened);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(!b.is_available(t) && b.admit(t).is_none() && !b.probe_due(t));
        // Late outcomes of requests admitted before it opened change nothing.
        assert_eq!(b.on_failure(Admission::Normal, t + COOL / 2), Transition::None);
        assert_eq!(b.on_success(Admission::Normal), Transition::None);
        assert!(b.is_available(t + COOL), "the cool-down was not extended");
    }

    #[test]
    fn half_open_lets_one_probe_through() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        b.on_failure(Admission::Normal, t);
        let later = t + COOL;
        assert!(b.probe_due(later));
        assert_eq!(b.admit(later), Some(Admission::Probe));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.admit(later), None, "one probe at a time");
        // A failed probe re-opens for a whole cool-down.
        assert_eq!(b.on_failure(Admission::Probe, later), Transition::Opened);
        assert!(!b.is_available(later + COOL / 2));
        // A cancelled probe frees the slot; a successful one closes.
        let again = later + COOL;
        assert_eq!(b.admit(again), Some(Admission::Probe));
        b.on_cancel(Admission::Probe);
        assert!(b.probe_due(again));
        assert_eq!(b.admit(again), Some(Admission::Probe));
        assert_eq!(b.on_success(Admission::Probe), Transition::Closed);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(again), Some(Admission::Normal));
    }

    #[test]
    fn eject_opens_at_once() {
        let b = Breaker::new(5, COOL);
        let t = Instant::now();
        assert_eq!(b.eject(t), Transition::Opened);
        assert_eq!(b.eject(t), Transition::None);
        assert!(!b.is_available(t));
    }
}
