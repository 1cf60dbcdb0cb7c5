//! Live events: one broadcast channel per user, progress throttled per document.
//!
//! Every final state (ready, failed) and every stage change is sent; within a stage, progress
//! is sent at most every [`EventBus::PROGRESS_INTERVAL`] (and always when it completes), so a
//! 10,000-chunk document cannot flood a browser. A client that falls behind the channel's
//! buffer is sent a fresh snapshot instead of the events it missed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ragmill_core::{DocumentId, Stage, UserId};
use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::openapi::StageSchema;

/// An event on a user's stream, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// A document advanced.
    #[serde(rename = "document.progress")]
    Progress {
        /// The document.
        #[schema(value_type = i64)]
        id: DocumentId,
        /// Its stage.
        #[schema(value_type = StageSchema)]
        stage: Stage,
        /// Units done in the stage.
        done: usize,
        /// Units in the stage.
        total: usize,
    },
    /// A document became searchable.
    #[serde(rename = "document.ready")]
    Ready {
        /// The document.
        #[schema(value_type = i64)]
        id: DocumentId,
        /// Its chunks.
        chunks: usize,
    },
    /// A document could not be processed.
    #[serde(rename = "document.failed")]
    Failed {
        /// The document.
        #[schema(value_type = i64)]
        id: DocumentId,
        /// `{code, message}`.
        error: ErrorBody,
    },
    /// The user's first document became searchable.
    #[serde(rename = "rag.available")]
    RagAvailable,
}

/// An error as events, documents and error answers carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    /// For a human.
    pub message: String,
}

/// Live progress of a document being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Live {
    /// The stage.
    pub stage: Stage,
    /// Units done.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
}

/// Per-user event channels and the latest progress of documents in flight.
#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<UserId, broadcast::Sender<Event>>>,
    live: Mutex<HashMap<DocumentId, (Live, Instant)>>,
}

impl EventBus {
    /// Least time between two progress events of one document within one stage.
    pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
    const BUFFER: usize = 256;

    /// Subscribes to `user`'s events.
    pub fn subscribe(&self, user: UserId) -> broadcast::Receiver<Event> {
        match self.channels.lock() {
            Ok(mut map) => {
                map.entry(user).or_insert_with(|| broadcast::channel(Self::BUFFER).0).subscribe()
            }
            Err(_) => broadcast::channel(1).1,
        }
    }

    /// Sends `event` to `user`'s subscribers (none is fine).
    pub fn publish(&self, user: UserId, event: Event) {
        if let Ok(mut map) = self.channels.lock()
            && let Some(tx) = map.get(&user)
            && tx.send(event).is_err()
        {
            map.remove(&user); // nobody listens any more
        }
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(3600));
        }
    }

    /// Records progress of `document` and publishes it unless throttled.
    pub fn progress(&self, user: UserId, document: DocumentId, now: Live) {
        let send = match self.live.lock() {
            Ok(mut live) => {
                let due = match live.get(&document) {
                    Some((last, at)) => {
                        last.stage != now.stage
                            || now.done == now.total
                            || at.elapsed() >= Self::PROGRESS_INTERVAL
                    }
                    None => true,
                };
                let stamp = if due {
                    Instant::now()
                } else {
                    live.get(&document).map_or_else(Instant::now, |v| v.1)
                };
                live.insert(document, (now, stamp));
                due
            }
            Err(_) => true,
        };
        if send {
            self.publish(
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

    /// Forgets the live progress of a document that reached a final state.
    pub fn finished(&self, document: DocumentId) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&document);
        }
    }

    /// The latest progress of `document`, if it is in flight.
    pub fn live(&self, document: DocumentId) -> Option<Live> {
        self.live.lock().ok()?.get(&document).map(|(l, _)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn progress_is_throttled_but_stage_changes_and_completion_are_not() {
        let bus = EventBus::default();
        let (user, doc) = (UserId(1), DocumentId(7));
        let mut rx = bus.subscribe(user);
        let mut other = bus.subscribe(UserId(2));
        for done in 0..=1000 {
            bus.progress(user, doc, Live { stage: Stage::Embedding, done, total: 1000 });
        }
        bus.progress(user, doc, Live { stage: Stage::Storing, done: 0, total: 1 });
        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            got.push(e);
        }
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
        assert_eq!(bus.live(doc), Some(Live { stage: Stage::Storing, done: 0, total: 1 }));
        assert!(other.try_recv().is_err(), "another user hears nothing");
        bus.finished(doc);
        assert_eq!(bus.live(doc), None);
    }
}
