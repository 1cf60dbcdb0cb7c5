//! The contract cases, each written against `dyn JobQueue` only.

use std::time::{Duration, Instant};

use ragmill_core::{Depth, DocumentId, Failed, JobQueue, JobState, Lease, QueueError, UserId};

use super::{BACKOFF, Backend, LEASE};
use crate::common::eventually;

const A: UserId = UserId(1);
const B: UserId = UserId(2);
const C: UserId = UserId(3);

async fn lease(q: &dyn JobQueue, worker: &str) -> Option<Lease> {
    q.lease(worker).await.expect("lease")
}

/// Waits (backoff) until `worker` gets a lease.
async fn lease_soon(q: &dyn JobQueue, worker: &str) -> Lease {
    eventually(Duration::from_secs(5), "a lease", || lease(q, worker)).await
}

async fn state(q: &dyn JobQueue, user: UserId, doc: i64) -> Option<JobState> {
    q.job_state(user, DocumentId(doc)).await.expect("job_state")
}

fn depth(queued: u64, leased: u64, parked: u64) -> Depth {
    Depth { queued, leased, parked }
}

pub async fn lease_then_complete(b: &Backend) {
    let q = b.open().await;
    assert_eq!(lease(&*q, "w1").await, None, "nothing queued yet");
    q.enqueue(A, DocumentId(7), 10).await.expect("enqueue");
    assert_eq!(state(&*q, A, 7).await, Some(JobState::Queued));
    let l = lease(&*q, "w1").await.expect("a job");
    assert_eq!((l.user, l.document, l.attempt), (A, DocumentId(7), 1));
    assert_eq!(state(&*q, A, 7).await, Some(JobState::Leased));
    assert_eq!(q.depth().await.expect("depth"), depth(0, 1, 0));
    assert_eq!(lease(&*q, "w2").await, None, "one job, already leased");
    q.heartbeat(&l).await.expect("heartbeat");
    q.complete(&l).await.expect("complete");
    assert_eq!(q.complete(&l).await, Err(QueueError::LeaseLost), "a lease ends once");
    assert_eq!(q.heartbeat(&l).await, Err(QueueError::LeaseLost));
    assert_eq!(state(&*q, A, 7).await, None);
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 0));
    assert_eq!(q.lease_duration(), LEASE);
}

pub async fn fail_retries_with_backoff_then_parks(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let l1 = lease(&*q, "w1").await.expect("a job");
    let failed_at = Instant::now();
    assert_eq!(q.fail(&l1, "e1").await, Ok(Failed::Retrying { attempt: 2 }));
    assert_eq!(q.fail(&l1, "e1").await, Err(QueueError::LeaseLost));
    assert_eq!(state(&*q, A, 1).await, Some(JobState::Queued));
    assert_eq!(q.depth().await.expect("depth"), depth(1, 0, 0), "backing off counts as queued");
    assert_eq!(lease(&*q, "w1").await, None, "backing off");
    let l2 = lease_soon(&*q, "w1").await;
    assert!(failed_at.elapsed() >= BACKOFF - Duration::from_millis(10), "waited the backoff");
    assert_eq!(l2.attempt, 2);
    assert_ne!(l2.token, l1.token);
    let failed_at = Instant::now();
    assert_eq!(q.fail(&l2, "e2").await, Ok(Failed::Retrying { attempt: 3 }));
    let l3 = lease_soon(&*q, "w1").await;
    assert!(failed_at.elapsed() >= 2 * BACKOFF - Duration::from_millis(10), "backoff doubles");
    assert_eq!(l3.attempt, 3);
    assert_eq!(q.fail(&l3, "boom").await, Ok(Failed::Parked));
    assert_eq!(state(&*q, A, 1).await, Some(JobState::Parked("boom".into())));
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 1));
    tokio::time::sleep(4 * BACKOFF).await;
    assert_eq!(lease(&*q, "w1").await, None, "a parked job is not leased");
    // Enqueueing again replaces the parked job, attempts afresh.
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), depth(1, 0, 0));
    assert_eq!(lease(&*q, "w1").await.map(|l| l.attempt), Some(1));
}

pub async fn an_expired_lease_is_taken_over(b: &Backend) {
    let (q1, q2) = (b.open().await, b.open().await);
    q1.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let old = lease(&*q1, "w1").await.expect("a job");
    assert_eq!(lease(&*q2, "w2").await, None, "held");
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    let new = lease(&*q2, "w2").await.expect("taken over");
    assert_eq!((new.document, new.attempt), (DocumentId(1), 2), "the lost lease counts");
    assert_eq!(q1.heartbeat(&old).await, Err(QueueError::LeaseLost));
    assert_eq!(q1.complete(&old).await, Err(QueueError::LeaseLost));
    assert_eq!(q1.fail(&old, "late").await, Err(QueueError::LeaseLost));
    assert_eq!(q1.release(&old).await, Err(QueueError::LeaseLost));
    assert_eq!(state(&*q1, A, 1).await, Some(JobState::Leased));
    q2.complete(&new).await.expect("the new holder completes");
    assert_eq!(q1.depth().await.expect("depth"), depth(0, 0, 0));
}

pub async fn heartbeat_keeps_the_lease(b: &Backend) {
    let (q1, q2) = (b.open().await, b.open().await);
    q1.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let l = lease(&*q1, "w1").await.expect("a job");
    let start = Instant::now();
    while start.elapsed() < 2 * LEASE {
        tokio::time::sleep(LEASE / 3).await;
        q1.heartbeat(&l).await.expect("heartbeat");
        assert_eq!(lease(&*q2, "w2").await, None, "still held");
    }
    q1.complete(&l).await.expect("complete");
}

pub async fn leases_lost_every_time_park_the_job(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    for attempt in 1..=3 {
        let l = lease_soon(&*q, &format!("w{attempt}")).await;
        assert_eq!(l.attempt, attempt);
        tokio::time::sleep(LEASE + Duration::from_millis(50)).await;
    }
    assert_eq!(lease(&*q, "w4").await, None, "attempts used up");
    match state(&*q, A, 1).await {
        Some(JobState::Parked(e)) => assert!(e.starts_with("worker lost the job"), "{e}"),
        other => panic!("expected parked, got {other:?}"),
    }
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 1));
}

pub async fn release_does_not_count_an_attempt(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let l1 = lease(&*q, "w1").await.expect("a job");
    q.release(&l1).await.expect("release");
    assert_eq!(q.release(&l1).await, Err(QueueError::LeaseLost));
    assert_eq!(state(&*q, A, 1).await, Some(JobState::Queued));
    let l2 = lease(&*q, "w2").await.expect("back at once");
    assert_eq!(l2.attempt, 1);
    q.complete(&l2).await.expect("complete");
}

pub async fn enqueue_twice_is_one_job(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 100).await.expect("enqueue");
    q.enqueue(A, DocumentId(2), 50).await.expect("enqueue");
    q.enqueue(A, DocumentId(1), 5).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), depth(2, 0, 0));
    let l = lease(&*q, "w1").await.expect("a job");
    assert_eq!(l.document, DocumentId(1), "the size was updated: now the smallest");
    // A failed job enqueued again starts afresh: attempts reset, no backoff.
    assert_eq!(q.fail(&l, "e").await, Ok(Failed::Retrying { attempt: 2 }));
    q.enqueue(A, DocumentId(1), 5).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), depth(2, 0, 0));
    let again = lease(&*q, "w1").await.expect("no backoff");
    assert_eq!((again.document, again.attempt), (DocumentId(1), 1));
}

pub async fn reprocess_while_leased(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let first = lease(&*q, "w1").await.expect("a job");
    q.enqueue(A, DocumentId(1), 20).await.expect("enqueue while leased");
    q.enqueue(A, DocumentId(1), 20).await.expect("and again");
    assert_eq!(q.depth().await.expect("depth"), depth(1, 1, 0));
    assert_eq!(state(&*q, A, 1).await, Some(JobState::Queued), "the newest job");
    assert_eq!(lease(&*q, "w2").await, None, "not while the first is leased");
    q.complete(&first).await.expect("complete");
    let second = lease(&*q, "w2").await.expect("the re-process");
    assert_eq!((second.document, second.attempt), (DocumentId(1), 1));
    assert_ne!(second.job, first.job);
    q.complete(&second).await.expect("complete");
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 0));
    // A failing first lease gives way to the re-process.
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    let first = lease(&*q, "w1").await.expect("a job");
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue while leased");
    assert_eq!(q.fail(&first, "e").await, Ok(Failed::Retrying { attempt: 1 }));
    assert_eq!(q.depth().await.expect("depth"), depth(1, 0, 0));
    assert_eq!(lease(&*q, "w1").await.map(|l| l.attempt), Some(1));
}

pub async fn cancel_drops_queued_and_parked_jobs(b: &Backend) {
    let q = b.open().await;
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    q.enqueue(A, DocumentId(2), 20).await.expect("enqueue");
    assert_eq!(q.cancel(A, DocumentId(1)).await, Ok(1));
    assert_eq!(q.cancel(A, DocumentId(1)).await, Ok(0));
    assert_eq!(q.cancel(B, DocumentId(2)).await, Ok(0), "another user's document");
    assert_eq!(state(&*q, A, 1).await, None);
    let l = lease(&*q, "w1").await.expect("a job");
    assert_eq!(l.document, DocumentId(2));
    assert_eq!(q.cancel(A, DocumentId(2)).await, Ok(0), "a leased job is not dropped");
    // Park it (last attempt), then cancel the parked job.
    let mut l = l;
    while let Failed::Retrying { .. } = q.fail(&l, "e").await.expect("fail") {
        l = lease_soon(&*q, "w1").await;
    }
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 1));
    assert_eq!(q.cancel(A, DocumentId(2)).await, Ok(1));
    assert_eq!(state(&*q, A, 2).await, None);
    // A job backing off is cancelled too.
    q.enqueue(A, DocumentId(3), 10).await.expect("enqueue");
    let l = lease(&*q, "w1").await.expect("a job");
    assert_eq!(q.fail(&l, "e").await, Ok(Failed::Retrying { attempt: 2 }));
    assert_eq!(q.cancel(A, DocumentId(3)).await, Ok(1));
    tokio::time::sleep(2 * BACKOFF).await;
    assert_eq!(lease(&*q, "w1").await, None);
    assert_eq!(q.depth().await.expect("depth"), depth(0, 0, 0));
}

pub async fn users_take_turns_and_small_documents_go_first(b: &Backend) {
    let q = b.open().await;
    for i in 0..50 {
        q.enqueue(A, DocumentId(1000 + i), 5000 - 10 * i as u64).await.expect("enqueue");
    }
    q.enqueue(B, DocumentId(1), 1_000_000).await.expect("enqueue");
    let mut order = Vec::new();
    while let Some(l) = lease(&*q, "w1").await {
        if order.len() == 10 {
            q.enqueue(C, DocumentId(1), 1).await.expect("enqueue");
        }
        order.push((l.user, l.document));
        q.complete(&l).await.expect("complete");
    }
    assert_eq!(order.len(), 52);
    let at = |u: UserId| order.iter().position(|(user, _)| *user == u);
    assert!(at(B).is_some_and(|i| i < 2), "B's single file waits for one of A's: {order:?}");
    assert!(at(C).is_some_and(|i| (11..13).contains(&i)), "C comes in turn: {order:?}");
    let a: Vec<i64> = order.iter().filter(|(u, _)| *u == A).map(|(_, d)| d.0).collect();
    let smallest_first: Vec<i64> = (1000..1050).rev().collect();
    assert_eq!(a, smallest_first, "within a user, the smallest first");
}

pub async fn depth_counts_by_state_and_user(b: &Backend) {
    let q = b.open().await;
    assert_eq!(q.depth().await.expect("depth"), Depth::default());
    q.enqueue(A, DocumentId(1), 10).await.expect("enqueue");
    q.enqueue(A, DocumentId(2), 20).await.expect("enqueue");
    q.enqueue(B, DocumentId(1), 30).await.expect("enqueue");
    let l = lease(&*q, "w1").await.expect("a job");
    assert_eq!(l.user, A);
    assert_eq!(q.depth().await.expect("depth"), depth(2, 1, 0));
    assert_eq!(q.depth_for(A).await.expect("depth"), depth(1, 1, 0));
    assert_eq!(q.depth_for(B).await.expect("depth"), depth(1, 0, 0));
    assert_eq!(q.depth_for(C).await.expect("depth"), Depth::default());
    q.complete(&l).await.expect("complete");
    assert_eq!(q.depth_for(A).await.expect("depth"), depth(1, 0, 0));
}

pub async fn concurrent_workers_never_share_a_job(b: &Backend) {
    let q = b.open().await;
    for i in 0..200 {
        q.enqueue(UserId(1 + i % 5), DocumentId(i), 10).await.expect("enqueue");
    }
    let mut workers = Vec::new();
    for w in 0..4 {
        let q = b.open().await;
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                match q.lease(&format!("w{w}")).await {
                    Ok(Some(l)) => {
                        got.push((l.user, l.document));
                        q.complete(&l).await.expect("complete");
                    }
                    Ok(None) => break,
                    Err(QueueError::Unavailable(_)) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e:?}"),
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (200, 200), "each job leased exactly once");
    assert_eq!(q.depth().await.expect("depth"), Depth::default());
}
