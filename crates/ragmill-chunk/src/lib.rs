//! Token-aware chunking with the embedding model's own tokenizer.
//!
//! [`Chunker`] cuts an [`ExtractedDocument`] into [`Chunk`]s that each fit the model's window
//! *including* its special tokens, aiming at a target size with a configurable overlap, and
//! preferring boundaries at headings, then paragraphs, then sentences, then words
//! (`text-splitter`, with its Markdown splitter for Markdown-shaped text). Each chunk records
//! its byte range in the extracted text, its page and its heading path.
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

mod sizer;

use std::path::Path;

use ragmill_core::{Chunk, ExtractedDocument};
use text_splitter::{ChunkCapacity, ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

pub use sizer::TokenCounter;

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
}

/// Cuts documents into model-sized chunks. Cheap to share across threads.
pub struct Chunker {
    counter: TokenCounter,
    config: ChunkerConfig,
    text: TextSplitter<TokenCounter>,
    markdown: MarkdownSplitter<TokenCounter>,
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
        let chunk_config = || {
            ChunkConfig::new(capacity)
                .with_sizer(counter.clone())
                .with_overlap(config.overlap_tokens)
                .map_err(|e| ChunkError::Config(e.to_string()))
        };
        Ok(Self {
            text: TextSplitter::new(chunk_config()?),
            markdown: MarkdownSplitter::new(chunk_config()?),
            counter,
            config,
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

    /// The sizes in force.
    pub fn config(&self) -> ChunkerConfig {
        self.config
    }

    /// Model tokens in `text`, special tokens included.
    pub fn count_tokens(&self, text: &str) -> Result<usize, ChunkError> {
        self.counter.count_with_specials(text).map_err(ChunkError::Tokenize)
    }

    /// Cuts `doc` into chunks, in document order.
    pub fn chunk(&self, doc: &ExtractedDocument) -> Result<Vec<Chunk>, ChunkError> {
        let pieces: Vec<(usize, &str)> = if doc.markdown {
            self.markdown.try_chunk_indices(&doc.text).collect::<Result<_, _>>()
        } else {
            self.text.try_chunk_indices(&doc.text).collect::<Result<_, _>>()
        }
        .map_err(|e| ChunkError::Tokenize(e.to_string()))?;

        pieces
            .into_iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .enumerate()
            .map(|(i, (start, text))| {
                Ok(Chunk {
                    ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                    text: text.to_owned(),
                    start,
                    end: start + text.len(),
                    tokens: self.count_tokens(text)?,
                    page: doc.page_at(start),
                    heading_path: doc.heading_path_at(start),
                })
            })
            .collect()
    }
}
