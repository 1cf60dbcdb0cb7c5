//! ChromaDB as ragmill's vector index: [`ChromaIndex`] implements
//! [`ragmill_core::VectorIndex`] over Chroma's HTTP API v2 (checked against Chroma 1.5).
//!
//! # Design
//!
//! - **One collection per user**, `ragmill_user_{id}` after the user's stable numeric id (never
//!   a name), in the configured tenant and database (both created by [`ChromaIndex::connect`]
//!   if missing). A collection is created on the user's first write (`get_or_create`, cosine
//!   space, HNSW with 32 neighbours and 128 candidates, like the store's own index); reads never
//!   create one: a user without a collection has no hits, an empty inventory and nothing to
//!   retire. Isolation is structural: every request names the user's collection.
//! - **Records** are named `"{document}:{generation}:{chunk}"` with the same three integers as
//!   metadata. Writing a generation again upserts the same ids, so a retried job duplicates
//!   nothing; retiring is a delete by metadata (`document`, or `document` and `generation`).
//!   The store decides which generation is current; hits carry their generation so it can.
//! - **Every answer is checked** before it is believed: parallel lists of equal length, at most
//!   `k` hits, integer metadata that agrees with each id, finite distances, no hit outside a
//!   documents filter, no id twice. Anything else is [`IndexError::Failed`]. Scores are
//!   `1 - cosine distance`, best first.
//! - **Errors by kind**: no connection, a timeout, HTTP 5xx, 408 or 429 are
//!   [`IndexError::Unavailable`] (retryable); another 4xx is [`IndexError::Failed`] with
//!   Chroma's own `error: message`; a query of the wrong dimension (known from the collection)
//!   is [`IndexError::Dimension`]. Decisions are made on status codes, never on message text.
//! - **Batches**: upserts are cut to the server's `max_batch_size` (from `pre-flight-checks`)
//!   and at most 1,000 records; vectors travel as base64 little-endian `f32` when the server
//!   supports it.
//! - **Collection uuids are cached** per user. A cached uuid answering 404 (the collection was
//!   deleted underneath) is dropped and looked up again once; a write then creates it again.
//! - The token, if any, is sent as `x-chroma-token` and `Authorization: Bearer`, marked
//!   sensitive, and never logged or shown by `Debug`.
//!
//! Only plain `http://` works unless the binary gives reqwest a TLS backend (ragmill-remote's
//! `rustls` feature).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), ragmill_core::IndexError> {
//! use ragmill_chroma::{ChromaConfig, ChromaIndex};
//! use ragmill_core::{DocumentId, IndexedChunk, UserId, VectorIndex};
//!
//! let index = ChromaIndex::connect(ChromaConfig::new("http://127.0.0.1:8000")).await?;
//! let chunk = IndexedChunk { chunk: 0, vector: vec![0.6, 0.8] };
//! index.write(UserId(1), DocumentId(7), 1, vec![chunk]).await?;
//! let hits = index.search(UserId(1), vec![0.6, 0.8], 5, None).await?;
//! assert_eq!(hits[0].generation, Some(1));
//! # Ok(()) }
//! ```
//!
//! [`testing::ChromaProcess`] runs a real Chroma server for tests.

mod config;
mod http;
mod index;
pub mod testing;
mod wire;

pub use config::ChromaConfig;
pub use index::ChromaIndex;

#[doc(no_inline)]
pub use ragmill_core::IndexError;
