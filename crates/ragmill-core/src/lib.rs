//! ragmill's core: the vocabulary every other crate speaks, and nothing else.
//!
//! - [`ExtractedDocument`] is what extraction produces: text, its page spans and its headings.
//! - [`Chunk`] is a span of that text sized for the embedding model, with its provenance.
//! - [`Embedder`] is the seam every embedding backend implements (local model, Ollama,
//!   OpenAI-compatible servers, pools of them).
//! - [`ContentHash`] names content: a document's bytes, or a chunk's text in the embedding cache.
//! - [`Stage`] and [`Progress`] describe where a document is in the pipeline.
//!
//! Invariant: this crate does no I/O: no files, no sockets, no threads, no clocks.
//!
//! ```
//! use ragmill_core::ContentHash;
//! let a = ContentHash::of(b"hello");
//! assert_eq!(a, ContentHash::of(b"hello"));
//! assert_eq!(a.to_hex().len(), 64);
//! ```

mod document;
mod embed;
mod hash;
mod ids;
mod progress;
mod vector;

pub use document::{Chunk, DocumentKind, ExtractedDocument, Heading, PageSpan};
pub use embed::{EmbedError, Embedder, ModelInfo};
pub use hash::{ContentHash, ParseHashError};
pub use ids::{DocumentId, UserId};
pub use progress::{Progress, Stage};
pub use vector::{cosine, dot, normalize};
