//! Live events inside one process, and the reporter that throttles what workers send.
//!
//! [`LocalBus`] (one broadcast channel per user) and [`LocalLive`] (a map of documents in
//! flight) are the single-process implementations of the [`EventBus`] and [`LiveProgress`]
//! seams; `ragmill-redis` carries the same across processes. [`Reporter`] sits in front of
//! either and decides what is worth sending: every final state (ready, failed) and every stage
//! change; within a stage, progress at most every [`Reporter::PROGRESS_INTERVAL`] (and always
//! when it completes), so a 10,000-chunk document cannot flood a browser or Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ragmill_core::{
    BusError, DocumentId, Event, EventBus, EventStream, Failure, Live, LiveProgress, Received,
    Stage, UserId,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Per-user broadcast channels in this process.
#[derive(Default)]
pub struct LocalBus {
    channels: Mutex<HashMap<UserId, broadcast::Sender<Event>>>,
}

impl LocalBus {
    const BUFFER: usize = 256;
}

#[async_trait]
impl EventBus for LocalBus {
    fn publish(&self, user: UserId, event: Event) {
        let mut map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(&user)
            && tx.send(event).is_err()
        {
            map.remove(&user); // nobody listens any more
        }
    }

    async fn subscribe(&self, user: UserId) -> Result<EventStream, BusError> {
        let rx = {
            let mut map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(user).or_insert_with(|| broadcast::channel(Self::BUFFER).0).subscribe()
        };
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            let item = match rx.recv().await {
                Ok(event) => Received::Event(event),
                Err(RecvError::Lagged(n)) => Received::Lagged(n),
                Err(RecvError::Closed) => return None,
            };
            Some((item, rx))
        })))
    }
}

/// The latest progress of documents in flight in this process.
#[derive(Default)]
pub struct LocalLive {
    live: Mutex<HashMap<(UserId, DocumentId), (Live, Instant)>>,
}

impl LocalLive {
    /// Entries older than this are dropped (a document whose worker vanished mid-stage).
    const STALE: Duration = Duration::from_secs(3600);
}

#[async_trait]
impl LiveProgress for LocalLive {
    fn set(&self, user: UserId, document: DocumentId, live: Live) {
        let mut map = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, (_, at)| at.elapsed() < Self::STALE);
        map.insert((user, document), (live, Instant::now()));
    }

    fn clear(&self, user: UserId, document: DocumentId) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&(user, document));
    }

    async fn get(&self, user: UserId, documents: &[DocumentId]) -> HashMap<DocumentId, Live> {
        let map = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        documents.iter().filter_map(|d| map.get(&(user, *d)).map(|(l, _)| (*d, *l))).collect()
    }
}

/// What a worker reports through: throttles progress, then records it in [`LiveProgress`] and
/// publishes it on the [`EventBus`]. The throttle's memory is this process's own (each document
/// is processed by one worker at a time).
#[derive(Clone)]
pub struct Reporter {
    bus: Arc<dyn EventBus>,
    live: Arc<dyn LiveProgress>,
    last: Arc<Mutex<HashMap<DocumentId, (Live, Instant)>>>,
}

impl Reporter {
    /// Least time between two progress events of one document within one stage.
    pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

    /// A reporter over `bus` and `live`.
    pub fn new(bus: Arc<dyn EventBus>, live: Arc<dyn LiveProgress>) -> Self {
        Self { bus, live, last: Arc::default() }
    }

    /// `document` advanced to `now`; sent unless it is too soon after the last report.
    pub fn progress(&self, user: UserId, document: DocumentId, now: Live) {
        let due = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.get(&document).is_none_or(|(prev, at)| {
                prev.stage != now.stage
                    || now.done == now.total
                    || at.elapsed() >= Self::PROGRESS_INTERVAL
            });
            if due {
                last.insert(document, (now, Instant::now()));
            }
            due
        };
        if due {
            self.live.set(user, document, now);
            self.bus.publish(
                user,
                Event::Progress {
                    id: document,
                    stage: now.stage,
                    done: now.done,
                    total: now.total,
                },
            );
        }
    }

    /// `document` is ready with `chunks` chunks.
    pub fn ready(&self, user: UserId, document: DocumentId, chunks: usize) {
        self.forget(user, document);
        self.bus.publish(user, Event::Ready { id: document, chunks });
    }

    /// `document` failed for good.
    pub fn failed(&self, user: UserId, document: DocumentId, code: &str, message: &str) {
        self.forget(user, document);
        let error = Failure { code: code.to_owned(), message: message.to_owned() };
        self.bus.publish(user, Event::Failed { id: document, error });
    }

    /// `document` was paused by its user.
    pub fn paused(&self, user: UserId, document: DocumentId) {
        self.forget(user, document);
        self.bus.publish(user, Event::Paused { id: document });
    }

    /// `document` was queued again (resumed, retried or re-processed).
    pub fn queued(&self, user: UserId, document: DocumentId) {
        self.forget(user, document);
        let id = document;
        self.bus.publish(user, Event::Progress { id, stage: Stage::Queued, done: 0, total: 0 });
    }

    /// The user's first document became searchable.
    pub fn rag_available(&self, user: UserId) {
        self.bus.publish(user, Event::RagAvailable);
    }

    /// Forgets `document`'s progress without an event (deleted, or its work was dropped).
    pub fn forget(&self, user: UserId, document: DocumentId) {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).remove(&document);
        self.live.clear(user, document);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};

    fn drain(rx: &mut EventStream) -> Vec<Event> {
        let mut got = Vec::new();
        while let Some(Some(Received::Event(e))) = rx.next().now_or_never() {
            got.push(e);
        }
        got
    }

    #[tokio::test]
    async fn progress_is_throttled_but_stage_changes_and_completion_are_not() {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
        let live: Arc<dyn LiveProgress> = Arc::new(LocalLive::default());
        let reporter = Reporter::new(Arc::clone(&bus), Arc::clone(&live));
        let (user, doc) = (UserId(1), DocumentId(7));
        let mut rx = bus.subscribe(user).await.expect("subscribe");
        let mut other = bus.subscribe(UserId(2)).await.expect("subscribe");
        for done in 0..=1000 {
            reporter.progress(user, doc, Live { stage: Stage::Embedding, done, total: 1000 });
        }
        reporter.progress(user, doc, Live { stage: Stage::Storing, done: 0, total: 1 });
        let got = drain(&mut rx);
        assert!(got.len() <= 4, "1000 updates in a burst become a handful: {}", got.len());
        assert!(got.contains(&Event::Progress {
            id: doc,
            stage: Stage::Embedding,
            done: 1000,
            total: 1000
        }));
        assert_eq!(
            got.last(),
            Some(&Event::Progress { id: doc, stage: Stage::Storing, done: 0, total: 1 })
        );
        let now = live.get(user, &[doc]).await;
        assert_eq!(now.get(&doc), Some(&Live { stage: Stage::Storing, done: 0, total: 1 }));
        assert!(live.get(UserId(2), &[doc]).await.is_empty(), "progress is kept per user");
        assert!(drain(&mut other).is_empty(), "another user hears nothing");
        reporter.ready(user, doc, 3);
        assert_eq!(drain(&mut rx), vec![Event::Ready { id: doc, chunks: 3 }]);
        assert!(live.get(user, &[doc]).await.is_empty());
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_much_it_missed() {
        let bus = LocalBus::default();
        let mut rx = bus.subscribe(UserId(1)).await.expect("subscribe");
        for _ in 0..(LocalBus::BUFFER + 10) {
            bus.publish(UserId(1), Event::RagAvailable);
        }
        assert_eq!(rx.next().await, Some(Received::Lagged(10)));
        assert_eq!(rx.next().await, Some(Received::Event(Event::RagAvailable)));
    }
}
