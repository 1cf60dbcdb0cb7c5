//! Counting model tokens for the splitter.

use std::sync::Arc;

use text_splitter::TryChunkSizer;
use tokenizers::Tokenizer;

/// Counts tokens with the model's tokenizer; cheap to clone.
///
/// The tokenizer's own padding and truncation are switched off: a `tokenizer.json` that pads
/// to a fixed length (as all-MiniLM-L6-v2's does, at 128) would otherwise make every text look
/// 128 tokens long, and truncation would hide oversized chunks.
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: Arc<Tokenizer>,
    specials: usize,
}

impl TokenCounter {
    /// Wraps `tokenizer`, clearing its padding and truncation.
    pub fn new(mut tokenizer: Tokenizer) -> Self {
        tokenizer.with_padding(None);
        // Clearing truncation cannot fail; `with_truncation(None)` only errs on bad params.
        let _ = tokenizer.with_truncation(None);
        let specials = tokenizer.encode("", true).map(|e| e.len()).unwrap_or(0);
        Self { tokenizer: Arc::new(tokenizer), specials }
    }

    /// Special tokens the model adds to every input ([CLS] and [SEP] for BERT).
    pub fn special_tokens(&self) -> usize {
        self.specials
    }

    /// Tokens in `text` without special tokens.
    pub fn count(&self, text: &str) -> Result<usize, String> {
        self.tokenizer.encode_fast(text, false).map(|e| e.len()).map_err(|e| e.to_string())
    }

    /// Tokens in `text` as the model sees it, special tokens included.
    pub fn count_with_specials(&self, text: &str) -> Result<usize, String> {
        self.count(text).map(|n| n + self.specials)
    }
}

/// The error a failed tokenisation reports to the splitter.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenizeError(String);

impl TryChunkSizer for TokenCounter {
    type Error = TokenizeError;

    fn try_size(&self, chunk: &str) -> Result<usize, Self::Error> {
        self.count(chunk).map_err(TokenizeError)
    }
}
