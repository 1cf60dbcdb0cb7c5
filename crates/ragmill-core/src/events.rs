//! The event seams: what a user is told while their documents are processed, and where it
//! travels.
//!
//! [`Event`] is the wire type of a user's stream (`GET /v1/events`), serialised with a `type`
//! tag and read back on the other side of a process boundary. [`EventBus`] carries events from
//! whichever process made them (a worker) to whichever holds the user's stream (an API server);
//! [`LiveProgress`] keeps the latest progress of each document in flight, for
//! `GET /v1/documents`. Implementations: in one process (`ragmill-server`'s local bus) and over
//! Redis (`ragmill-redis`).
//!
//! Events are hints, the store is the truth: a subscriber that falls behind is told so
//! ([`Received::Lagged`]) and re-reads a snapshot, and a lost progress event is mended by the
//! next one. Every call carries the [`UserId`]; nothing of one user reaches another's stream.

use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use crate::{DocumentId, Stage, UserId};

/// An event on a user's stream, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A document advanced.
    #[serde(rename = "document.progress")]
    Progress {
        /// The document.
        id: DocumentId,
        /// Its stage.
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
        id: DocumentId,
        /// Its chunks.
        chunks: usize,
    },
    /// A document could not be processed.
    #[serde(rename = "document.failed")]
    Failed {
        /// The document.
        id: DocumentId,
        /// Why.
        error: Failure,
    },
    /// A document was paused by its user (resuming it sends a `document.progress` in stage
    /// `queued`).
    #[serde(rename = "document.paused")]
    Paused {
        /// The document.
        id: DocumentId,
    },
    /// The user's first document became searchable.
    #[serde(rename = "rag.available")]
    RagAvailable,
}

/// Why something failed: a stable snake_case code and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Stable snake_case code.
    pub code: String,
    /// For a human.
    pub message: String,
}

/// Live progress of a document being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// The stage.
    pub stage: Stage,
    /// Units done.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// The next event.
    Event(Event),
    /// The subscriber fell behind and `n` events were dropped: re-read the state.
    Lagged(u64),
}

/// A user's events as they come; ends when the bus goes away.
pub type EventStream = Pin<Box<dyn Stream<Item = Received> + Send>>;

/// The bus could not be subscribed to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached now (Redis down): try again later.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}

/// Carries events from the processes that make them to the streams of their user.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Sends `event` to `user`'s subscribers, wherever they are. Never blocks: delivery is
    /// best effort (see the [module docs](self)).
    fn publish(&self, user: UserId, event: Event);
    /// `user`'s events from now on.
    async fn subscribe(&self, user: UserId) -> Result<EventStream, BusError>;
}

/// The latest progress of each document in flight, readable from any process.
#[async_trait]
pub trait LiveProgress: Send + Sync {
    /// Records `live` as `document`'s progress. Never blocks; best effort.
    fn set(&self, user: UserId, document: DocumentId, live: Live);
    /// Forgets `document`'s progress (it reached a final state or was deleted).
    fn clear(&self, user: UserId, document: DocumentId);
    /// The progress of those of `documents` (all `user`'s) that are in flight.
    async fn get(&self, user: UserId, documents: &[DocumentId]) -> HashMap<DocumentId, Live>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_they_were_written() {
        let events = [
            Event::Progress { id: DocumentId(1), stage: Stage::Embedding, done: 3, total: 9 },
            Event::Ready { id: DocumentId(1), chunks: 9 },
            Event::Failed {
                id: DocumentId(2),
                error: Failure { code: "empty_file".into(), message: "empty".into() },
            },
            Event::Paused { id: DocumentId(3) },
            Event::RagAvailable,
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap_or_default();
            assert_eq!(serde_json::from_str::<Event>(&json).ok(), Some(e), "{json}");
        }
        let ready = serde_json::to_value(Event::Ready { id: DocumentId(4), chunks: 2 });
        assert_eq!(
            ready.ok(),
            Some(serde_json::json!({"type": "document.ready", "id": 4, "chunks": 2}))
        );
    }
}
