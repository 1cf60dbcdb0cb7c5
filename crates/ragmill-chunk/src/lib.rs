//! Token-aware chunking with the embedding model's own tokenizer.
//!
//! [`Chunker`] cuts an [`ExtractedDocument`] into [`Chunk`]s that each fit the model's window
//! *including* its special tokens, aiming at a target size with a configurable overlap, and
//! preferring boundaries at headings, then paragraphs, then sentences, then words
//! (`text-splitter`, with its Markdown splitter for Markdown-shaped text). Each chunk records
//! its byte range in the extracted text, its page and its heading path.
//!
//! Hostile text stays cheap: a chunk never exceeds [`Chunker::max_chunk_bytes`] (so whitespace
//! or marks the model ignores cannot fill one with megabytes), a word longer than the model
//! reads (WordPiece turns 100+ characters into one `[UNK]`) is cut into pieces it does read,
//! and the splitter works on windows of a few chunks, so time and memory grow linearly with the
//! text whatever its shape (one endless line, a list nested a thousand deep). A
//! [`ChunkBudget`] still caps the chunks and the time one document may take.
//!
//! ```no_run
//! use ragmill_chunk::{Chunker, ChunkerConfig};
//! # fn doc() -> ragmill_core::ExtractedDocument { unimplemented!() }
//! let chunker = Chunker::from_file("models/all-MiniLM-L6-v2/tokenizer.json".as_ref(), ChunkerConfig::default())?;
//! for chunk in chunker.chunk(&doc())? {
//!     assert!(chunk.tokens <= 256);
//! }
//! # Ok::<(), ragmill_chunk::ChunkError>(())
//! ```

mod runs;
mod sizer;
mod split;

use std::path::Path;
use std::time::Duration;

use ragmill_core::{Chunk, ExtractedDocument};
use text_splitter::{ChunkCapacity, ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

pub use sizer::TokenCounter;

use sizer::BoundedSizer;

/// Bytes a chunk may hold per token of its window. Prose runs at four or five bytes a token
/// and CJK at three or four; only text the model reads as little or nothing (runs of
/// whitespace, stacked combining marks) comes near the bound, and it keeps such text from
/// filling a chunk with megabytes.
pub const MAX_BYTES_PER_TOKEN: usize = 32;

/// Sizes for the chunker, in model tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Hard limit per chunk, special tokens included: the model's window (256 for MiniLM).
    pub max_tokens: usize,
    /// The size the splitter aims for, special tokens included (at most `max_tokens`).
    pub target_tokens: usize,
    /// Tokens shared by consecutive chunks (less than the target).
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self { max_tokens: 256, target_tokens: 256, overlap_tokens: 32 }
    }
}

/// How much one document may cost the chunker; past it the document is refused with
/// [`ChunkError::TooManyChunks`] or [`ChunkError::Timeout`]. Set with [`Chunker::with_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBudget {
    /// Most chunks per document (default 50,000: about 50 MB of prose, which takes the
    /// local model an hour or more to embed on a small machine).
    pub max_chunks: usize,
    /// Wall-clock limit for chunking any document (default 60 s) ...
    pub timeout: Duration,
    /// ... plus this much per MiB of its text (default 20 s). Chunking is linear in the text
    /// (about 0.15 MB/s of prose per core with MiniLM's tokenizer and 256-token chunks, far
    /// faster for text that is cut as over-long words), so the deadline only stops a machine
    /// too loaded to finish, or a tokenizer gone wrong; it never refuses a document for its
    /// size alone.
    pub timeout_per_mib: Duration,
}

impl ChunkBudget {
    /// The time allowed for a text of `bytes`.
    pub fn time_for(&self, bytes: usize) -> Duration {
        let mib = bytes as f64 / f64::from(1 << 20);
        self.timeout.saturating_add(self.timeout_per_mib.mul_f64(mib))
    }
}

impl Default for ChunkBudget {
    fn default() -> Self {
        Self {
            max_chunks: 50_000,
            timeout: Duration::from_secs(60),
            timeout_per_mib: Duration::from_secs(20),
        }
    }
}

/// Why chunking could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The tokenizer file could not be read or parsed.
    #[error("cannot load tokenizer from {path}: {reason}")]
    Tokenizer {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The sizes do not make sense together.
    #[error("invalid chunk sizes: {0}")]
    Config(String),
    /// The tokenizer failed on some text.
    #[error("tokenizing failed: {0}")]
    Tokenize(String),
    /// The document would make more chunks than [`ChunkBudget::max_chunks`].
    #[error("the document makes more than {limit} chunks")]
    TooManyChunks {
        /// The limit.
        limit: usize,
    },
    /// Chunking took longer than [`ChunkBudget::timeout`].
    #[error("chunking took longer than {secs} s and was stopped")]
    Timeout {
        /// The limit in whole seconds (rounded up).
        secs: u64,
    },
}

impl ChunkError {
    /// A stable snake_case code for APIs, logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ChunkError::Tokenizer { .. } => "tokenizer_unavailable",
            ChunkError::Config(_) => "invalid_chunk_config",
            ChunkError::Tokenize(_) => "tokenize_failed",
            ChunkError::TooManyChunks { .. } => "too_many_chunks",
            ChunkError::Timeout { .. } => "chunk_timeout",
        }
    }
}

/// Cuts documents into model-sized chunks. Cheap to share across threads.
pub struct Chunker {
    counter: TokenCounter,
    config: ChunkerConfig,
    budget: ChunkBudget,
    /// Largest chunk in bytes: `max_tokens` × [`MAX_BYTES_PER_TOKEN`].
    max_bytes: usize,
    /// Longest word the model reads (WordPiece's limit), or `max_bytes` for other models.
    word_chars: usize,
    text: TextSplitter<BoundedSizer>,
    markdown: MarkdownSplitter<BoundedSizer>,
}

impl Chunker {
    /// Builds a chunker around `tokenizer` (its own padding and truncation are switched off).
    pub fn new(tokenizer: Tokenizer, config: ChunkerConfig) -> Result<Self, ChunkError> {
        let counter = TokenCounter::new(tokenizer);
        let specials = counter.special_tokens();
        if config.max_tokens <= specials + 1 {
            return Err(ChunkError::Config(format!(
                "max_tokens {} leaves no room beside {specials} special tokens",
                config.max_tokens
            )));
        }
        if config.target_tokens > config.max_tokens || config.target_tokens <= specials {
            return Err(ChunkError::Config(format!(
                "target_tokens {} must be above {specials} and at most max_tokens {}",
                config.target_tokens, config.max_tokens
            )));
        }
        let (desired, max) = (config.target_tokens - specials, config.max_tokens - specials);
        if config.overlap_tokens >= desired {
            return Err(ChunkError::Config(format!(
                "overlap_tokens {} must be below the target's {desired} content tokens",
                config.overlap_tokens
            )));
        }
        let capacity = ChunkCapacity::new(desired)
            .with_max(max)
            .map_err(|e| ChunkError::Config(e.to_string()))?;
        let max_bytes = config.max_tokens.saturating_mul(MAX_BYTES_PER_TOKEN);
        let word_chars = counter.max_word_chars().unwrap_or(max_bytes);
        let sizer = BoundedSizer { counter: counter.clone(), max_bytes };
        let chunk_config = || {
            ChunkConfig::new(capacity)
                .with_sizer(sizer.clone())
                .with_overlap(config.overlap_tokens)
                .map_err(|e| ChunkError::Config(e.to_string()))
        };
        Ok(Self {
            text: TextSplitter::new(chunk_config()?),
            markdown: MarkdownSplitter::new(chunk_config()?),
            counter,
            config,
            budget: ChunkBudget::default(),
            max_bytes,
            word_chars,
        })
    }

    /// Loads `tokenizer.json` and builds a chunker.
    pub fn from_file(path: &Path, config: ChunkerConfig) -> Result<Self, ChunkError> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| ChunkError::Tokenizer {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::new(tokenizer, config)
    }

    /// This chunker with another budget per document.
    pub fn with_budget(mut self, budget: ChunkBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The budget per document in force.
    pub fn budget(&self) -> ChunkBudget {
        self.budget
    }

    /// The sizes in force.
    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// Model tokens in `text`, special tokens included.
    pub fn count_tokens(&self, text: &str) -> Result<usize, ChunkError> {
        self.counter.count_with_specials(text).map_err(ChunkError::Tokenize)
    }

    /// Largest chunk in bytes: `max_tokens` × [`MAX_BYTES_PER_TOKEN`].
    pub fn max_chunk_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Cuts `doc` into chunks, in document order.
    ///
    /// Each chunk fits the model's window and [`Chunker::max_chunk_bytes`], and holds no word
    /// the model would read as a single unknown token; time and memory grow linearly with the
    /// text, and stop at the [`ChunkBudget`].
    pub fn chunk(&self, doc: &ExtractedDocument) -> Result<Vec<Chunk>, ChunkError> {
        let meter = split::Meter::start(self.budget, doc.text.len());
        self.pieces(&doc.text, doc.markdown, &meter)?
            .into_iter()
            .filter(|p| !p.text.trim().is_empty())
            .enumerate()
            .map(|(i, p)| {
                Ok(Chunk {
                    ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                    text: p.text.to_owned(),
                    start: p.start,
                    end: p.start + p.text.len(),
                    tokens: match p.tokens {
                        Some(n) => n,
                        None => self.count_tokens(p.text)?,
                    },
                    page: doc.page_at(p.start),
                    heading_path: doc.heading_path_at(p.start),
                })
            })
            .collect()
    }
}
