//! What only this process knows about its workers: how many are busy now, for the whole
//! service and on each user's documents, and how long the process has been up.
//!
//! Everything that happened (documents finished, chunks, cache hits, time, failures) is read
//! from the store's processing log instead ([`crate::processing`]), which counts every
//! process's work and survives a restart; this keeps only the present.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ragmill_core::UserId;

#[derive(Default)]
struct Busy {
    service: u64,
    users: HashMap<UserId, u64>,
}

/// Workers busy now, for the service and per user, and the process's uptime.
pub struct Activity {
    started: Instant,
    busy: Mutex<Busy>,
}

impl Default for Activity {
    fn default() -> Self {
        Self { started: Instant::now(), busy: Mutex::default() }
    }
}

impl Activity {
    /// Seconds since this process started.
    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Counts a worker busy on `user`'s document until the guard is dropped.
    pub fn busy(&self, user: UserId) -> BusyGuard<'_> {
        let mut b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        b.service += 1;
        *b.users.entry(user).or_default() += 1;
        BusyGuard { activity: self, user }
    }

    /// Workers busy now on anyone's documents.
    pub fn service_busy(&self) -> u64 {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner).service
    }

    /// Workers busy now on `user`'s documents.
    pub fn user_busy(&self, user: UserId) -> u64 {
        let b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        b.users.get(&user).copied().unwrap_or(0)
    }
}

/// Returned by [`Activity::busy`].
pub struct BusyGuard<'a> {
    activity: &'a Activity,
    user: UserId,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut b = self.activity.busy.lock().unwrap_or_else(PoisonError::into_inner);
        b.service = b.service.saturating_sub(1);
        if let Some(n) = b.users.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                b.users.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_workers_are_counted_per_user_and_for_the_service_until_dropped() {
        let a = Activity::default();
        let (alice, bob) = (UserId(1), UserId(2));
        let one = a.busy(alice);
        let two = a.busy(alice);
        let three = a.busy(bob);
        assert_eq!((a.user_busy(alice), a.user_busy(bob), a.service_busy()), (2, 1, 3));
        drop(one);
        drop(three);
        assert_eq!((a.user_busy(alice), a.user_busy(bob), a.service_busy()), (1, 0, 1));
        drop(two);
        assert_eq!((a.user_busy(alice), a.service_busy()), (0, 0));
        assert_eq!(a.user_busy(UserId(9)), 0);
    }
}
