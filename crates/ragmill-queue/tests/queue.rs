//! The queue through its public API, on a real SQLite file in a temporary directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ragmill_core::{Depth, DocumentId, Failed, UserId};
use ragmill_queue::{Clock, ManualClock, QueueConfig, QueueError, SqliteQueue};

const A: UserId = UserId(1);
const B: UserId = UserId(2);

fn doc(n: i64) -> DocumentId {
    DocumentId(n)
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ragmill.db")
}

/// A queue on a manual clock (60 s leases, 3 attempts, 3 lost leases, 1 s backoff).
fn manual(path: &Path) -> (SqliteQueue, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let config =
        QueueConfig { clock: Clock::Manual(clock.clone()), max_lost: 3, ..QueueConfig::default() };
    (SqliteQueue::open(path, config).expect("open queue"), clock)
}

fn depth(queued: u64, leased: u64, parked: u64) -> Depth {
    Depth { queued, leased, parked }
}

fn is_lease_lost<T: std::fmt::Debug>(r: Result<T, QueueError>) -> bool {
    matches!(r, Err(QueueError::LeaseLost))
}

#[test]
fn lease_then_complete_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 0));
    let job = q.enqueue(A, doc(1), 10).expect("enqueue");
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));

    let lease = q.lease("w1").expect("lease").expect("a job");
    assert_eq!((lease.job.clone(), lease.user, lease.document, lease.attempt), (job, A, doc(1), 1));
    assert_eq!(q.depth().expect("depth"), depth(0, 1, 0));
    assert!(q.lease("w2").expect("lease").is_none(), "the only job is held");

    q.complete(&lease).expect("complete");
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 0));
    assert!(q.lease("w1").expect("lease").is_none());
    assert!(is_lease_lost(q.complete(&lease)), "a lease ends once");
}

#[test]
fn expired_lease_is_taken_over_and_the_old_token_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, clock) = manual(&db(&dir));
    q.enqueue(A, doc(1), 10).expect("enqueue");
    let first = q.lease("dead").expect("lease").expect("a job");

    clock.advance(Duration::from_secs(59));
    assert!(q.lease("w2").expect("lease").is_none(), "lease still holds at 59 s");
    clock.advance(Duration::from_secs(2));
    let second = q.lease("w2").expect("lease").expect("taken over");
    assert_eq!(second.job, first.job);
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token);

    assert!(is_lease_lost(q.heartbeat(&first)));
    assert!(is_lease_lost(q.complete(&first)));
    assert!(is_lease_lost(q.fail(&first, "late")));
    assert!(is_lease_lost(q.release(&first)));

    // Heartbeats keep the new lease alive well past its first deadline.
    for _ in 0..4 {
        clock.advance(Duration::from_secs(40));
        q.heartbeat(&second).expect("heartbeat");
        assert!(q.lease("w3").expect("lease").is_none(), "heartbeat keeps the lease");
    }
    q.complete(&second).expect("the holder completes");
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 0));
}

#[test]
fn a_job_whose_workers_keep_dying_is_parked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, clock) = manual(&db(&dir));
    q.enqueue(A, doc(7), 10).expect("enqueue");
    for attempt in 1..=3 {
        let lease = q.lease("w").expect("lease").expect("a job");
        assert_eq!(lease.attempt, attempt);
        clock.advance(Duration::from_secs(61));
    }
    assert!(q.lease("w").expect("lease").is_none(), "attempts exhausted");
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 1));
    assert_eq!(
        q.parked(A).expect("parked"),
        vec![(doc(7), "worker lost the job 3 times".to_owned())]
    );
}

#[test]
fn failures_back_off_then_park_with_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, clock) = manual(&db(&dir));
    q.enqueue(A, doc(1), 10).expect("enqueue");

    let l1 = q.lease("w").expect("lease").expect("a job");
    assert_eq!(q.fail(&l1, "boom 1").expect("fail"), Failed::Retrying { attempt: 2 });
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));
    clock.advance(Duration::from_millis(999));
    assert!(q.lease("w").expect("lease").is_none(), "backoff 1 s not over");
    clock.advance(Duration::from_millis(1));
    let l2 = q.lease("w").expect("lease").expect("after 1 s");
    assert_eq!(l2.attempt, 2);

    assert_eq!(q.fail(&l2, "boom 2").expect("fail"), Failed::Retrying { attempt: 3 });
    clock.advance(Duration::from_millis(1999));
    assert!(q.lease("w").expect("lease").is_none(), "backoff 2 s not over");
    clock.advance(Duration::from_millis(1));
    let l3 = q.lease("w").expect("lease").expect("after 2 s");
    assert_eq!(l3.attempt, 3);

    assert_eq!(q.fail(&l3, "boom 3").expect("fail"), Failed::Parked);
    assert!(is_lease_lost(q.fail(&l3, "again")));
    clock.advance(Duration::from_secs(3600));
    assert!(q.lease("w").expect("lease").is_none(), "parked jobs are not leased");
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 1));
    assert_eq!(q.parked(A).expect("parked"), vec![(doc(1), "boom 3".to_owned())]);
    assert!(q.parked(B).expect("parked").is_empty());

    // Enqueueing the document again (reprocess) replaces the parked job with a fresh one.
    q.enqueue(A, doc(1), 10).expect("enqueue");
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));
    assert_eq!(q.lease("w").expect("lease").expect("a job").attempt, 1);
}

#[test]
fn release_does_not_count_an_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    q.enqueue(A, doc(1), 10).expect("enqueue");
    for _ in 0..5 {
        let lease = q.lease("w").expect("lease").expect("a job");
        assert_eq!(lease.attempt, 1);
        q.release(&lease).expect("release");
        assert!(is_lease_lost(q.heartbeat(&lease)), "a released lease is gone");
        assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));
    }
    let lease = q.lease("w").expect("lease").expect("at once, no backoff");
    assert_eq!(lease.attempt, 1);
}

#[test]
fn round_robin_across_users_then_smallest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    // Sizes 1..=200 in a scrambled order (37 is coprime with 200).
    let sizes: Vec<u64> = (0..200u64).map(|i| (i * 37) % 200 + 1).collect();
    for (i, size) in sizes.iter().enumerate() {
        q.enqueue(A, doc(i as i64 + 1), *size).expect("enqueue A");
    }
    let b_job = q.enqueue(B, doc(1000), 5_000_000).expect("enqueue B");

    let first = q.lease("w").expect("lease").expect("a job");
    let second = q.lease("w").expect("lease").expect("a job");
    assert_eq!(first.user, A);
    assert_eq!(second.job, b_job, "B's single, large job is leased second");

    let mut a_sizes = vec![sizes[(first.document.0 - 1) as usize]];
    q.complete(&first).expect("complete");
    q.complete(&second).expect("complete");
    while let Some(lease) = q.lease("w").expect("lease") {
        assert_eq!(lease.user, A);
        a_sizes.push(sizes[(lease.document.0 - 1) as usize]);
        q.complete(&lease).expect("complete");
    }
    assert_eq!(a_sizes, (1..=200).collect::<Vec<u64>>(), "within a user, smaller first");
}

#[test]
fn users_alternate_while_both_have_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    for i in 0..3 {
        q.enqueue(A, doc(i), 1).expect("enqueue");
        q.enqueue(B, doc(100 + i), 1_000).expect("enqueue");
    }
    let mut users = Vec::new();
    while let Some(lease) = q.lease("w").expect("lease") {
        users.push(lease.user);
        q.complete(&lease).expect("complete");
    }
    assert_eq!(users, vec![A, B, A, B, A, B]);
}

#[test]
fn one_live_job_per_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    let j1 = q.enqueue(A, doc(1), 10).expect("enqueue");
    let j2 = q.enqueue(A, doc(1), 99).expect("enqueue again");
    assert_eq!(j1, j2, "queued twice is one job");
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));

    let running = q.lease("w1").expect("lease").expect("a job");
    let j3 = q.enqueue(A, doc(1), 50).expect("reprocess while processing");
    assert_ne!(j3, j1);
    assert_eq!(q.depth().expect("depth"), depth(1, 1, 0));
    assert_eq!(q.enqueue(A, doc(1), 60).expect("and again"), j3, "still one queued job");
    assert!(q.lease("w2").expect("lease").is_none(), "not while the first one runs");

    q.complete(&running).expect("complete");
    let next = q.lease("w2").expect("lease").expect("the reprocess job");
    assert_eq!((next.job.clone(), next.attempt), (j3, 1));
    q.complete(&next).expect("complete");
    assert_eq!(q.depth().expect("depth"), depth(0, 0, 0));

    // A failed or released lease whose document was queued again gives way to the newer job.
    let j4 = q.enqueue(A, doc(2), 1).expect("enqueue");
    let l4 = q.lease("w").expect("lease").expect("a job");
    let j5 = q.enqueue(A, doc(2), 1).expect("enqueue while leased");
    assert_eq!(q.fail(&l4, "boom").expect("fail"), Failed::Retrying { attempt: 1 });
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));
    let l5 = q.lease("w").expect("lease").expect("the newer job");
    assert_eq!(l5.job, j5);
    assert_ne!(j4, j5);
    q.enqueue(A, doc(2), 1).expect("enqueue while leased");
    q.release(&l5).expect("release");
    assert_eq!(q.depth().expect("depth"), depth(1, 0, 0));
}

#[test]
fn cancel_and_per_user_depth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = manual(&db(&dir));
    q.enqueue(A, doc(1), 1).expect("enqueue");
    q.enqueue(A, doc(2), 2).expect("enqueue");
    q.enqueue(B, doc(3), 3).expect("enqueue");
    let leased = q.lease("w").expect("lease").expect("a job");
    assert_eq!((leased.user, leased.document), (A, doc(1)));
    q.enqueue(A, doc(1), 1).expect("reprocess while leased");

    assert_eq!(q.depth_for(A).expect("depth"), depth(2, 1, 0));
    assert_eq!(q.depth_for(B).expect("depth"), depth(1, 0, 0));
    assert_eq!(q.depth_for(UserId(3)).expect("depth"), depth(0, 0, 0));
    assert_eq!(q.depth().expect("depth"), depth(3, 1, 0));

    assert_eq!(q.cancel(A, doc(1)).expect("cancel"), 1, "the queued one only");
    assert_eq!(q.cancel(A, doc(2)).expect("cancel"), 1);
    assert_eq!(q.cancel(A, doc(3)).expect("cancel"), 0, "another user's document");
    assert_eq!(q.depth_for(A).expect("depth"), depth(0, 1, 0));
    assert_eq!(q.depth_for(B).expect("depth"), depth(1, 0, 0));
    q.complete(&leased).expect("the leased job is left to its worker");
}

#[test]
fn two_queues_on_one_file_lease_each_job_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db(&dir);
    let q1 = Arc::new(SqliteQueue::open(&path, QueueConfig::default()).expect("open 1"));
    let q2 = Arc::new(SqliteQueue::open(&path, QueueConfig::default()).expect("open 2"));
    let mut all = HashSet::new();
    for i in 0..120 {
        let user = UserId(i % 4);
        let queue = if i % 2 == 0 { &q1 } else { &q2 };
        all.insert(queue.enqueue(user, doc(i), (i * 7 % 13) as u64).expect("enqueue"));
    }
    assert_eq!(all.len(), 120);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let queue = Arc::clone(if t % 2 == 0 { &q1 } else { &q2 });
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                while let Some(lease) = queue.lease(&format!("t{t}")).expect("lease") {
                    seen.lock().expect("seen").push(lease.job.clone());
                    queue.complete(&lease).expect("complete");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let seen = seen.lock().expect("seen");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no job leased twice");
    assert_eq!(unique, all, "every job leased");
    assert_eq!(q1.depth().expect("depth"), depth(0, 0, 0));
}

#[test]
fn queued_jobs_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db(&dir);
    let held = {
        // A "process" that queues three jobs, takes one and dies holding it.
        let (q, _) = manual(&path);
        q.enqueue(A, doc(1), 10).expect("enqueue");
        q.enqueue(B, doc(2), 20).expect("enqueue");
        q.enqueue(A, doc(3), 30).expect("enqueue");
        q.lease("dead").expect("lease").expect("a job")
    };
    // Reopened on the system clock, long after the manual clock's lease ran out.
    let q = SqliteQueue::open(&path, QueueConfig::default()).expect("reopen");
    assert_eq!(q.depth().expect("depth"), depth(2, 1, 0));
    let mut leased = Vec::new();
    while let Some(lease) = q.lease("w").expect("lease") {
        leased.push((lease.document, lease.attempt));
        q.complete(&lease).expect("complete");
    }
    leased.sort_by_key(|(d, _)| d.0);
    assert_eq!(held.document, doc(1));
    assert_eq!(leased, vec![(doc(1), 2), (doc(2), 1), (doc(3), 1)], "every job resumed");
    assert!(is_lease_lost(q.complete(&held)));
}

#[test]
fn the_queue_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SqliteQueue>();
}
