//! ragmill's core: the vocabulary every other crate speaks, and nothing else.
//!
//! - [`ExtractedDocument`] is what extraction produces: text, its page spans and its headings.
//! - [`Chunk`] is a span of that text sized for the embedding model, with its provenance.
//! - [`Embedder`] is the seam every embedding backend implements (local model, Ollama,
//!   OpenAI-compatible servers, pools of them).
//! - [`ContentHash`] names content: a document's bytes, or a chunk's text in the embedding cache.
//! - [`Stage`] and [`Progress`] describe where a document is in the pipeline.
//! - [`Reranker`] rescores a search's top candidates against the query ([`RerankError`]).
//! - [`VectorIndex`] is where chunks' vectors are written and searched, per user.
//! - [`Catalog`] is what ingestion reads from and writes to the store of record, in this
//!   process or behind a cluster's main server.
//! - The seams a deployment can swap: [`JobQueue`] (embedded SQLite or Redis Streams),
//!   [`EventBus`] and [`LiveProgress`] (one process or across processes), [`Roster`] (which
//!   workers are alive), with the wire types
//!   they carry ([`Event`], [`Lease`]).
//!
//! Invariant: this crate does no I/O: no files, no sockets, no threads, no clocks.
//!
//! ```
//! use ragmill_core::ContentHash;
//! let a = ContentHash::of(b"hello");
//! assert_eq!(a, ContentHash::of(b"hello"));
//! assert_eq!(a.to_hex().len(), 64);
//! ```

mod catalog;
mod document;
mod embed;
mod events;
mod hash;
mod ids;
mod progress;
mod queue;
mod rerank;
mod roster;
mod text;
mod vector;
mod vectors;

pub use catalog::{
    Begun, Catalog, CatalogError, DocumentVersion, EmbeddedChunk, FailedVersion, Finished,
    JobSource, StageTimings, StoredVersion,
};
pub use document::{Chunk, DocumentKind, ExtractedDocument, Heading, PageSpan};
pub use embed::{EmbedError, Embedder, ModelInfo};
pub use events::{BusError, Event, EventBus, EventStream, Failure, Live, LiveProgress, Received};
pub use hash::{ContentHash, ParseHashError};
pub use ids::{DocumentId, UserId};
pub use progress::{Progress, Stage};
pub use queue::{Depth, Failed, JobId, JobQueue, JobState, Lease, QueueError};
pub use rerank::{RerankError, Reranker};
pub use roster::{Roster, WORKER_STALE_MS, WorkerStatus};
pub use text::{error_chain, one_line};
pub use vector::{cosine, dot, normalize};
pub use vectors::{IndexError, IndexedChunk, IndexedVersion, Retire, VectorHit, VectorIndex};
