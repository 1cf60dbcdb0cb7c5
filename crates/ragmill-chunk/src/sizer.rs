//! Counting model tokens for the splitter.

use std::sync::Arc;

use text_splitter::TryChunkSizer;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{ModelWrapper, Tokenizer};

/// Counts tokens with the model's tokenizer; cheap to clone.
///
/// The tokenizer's own padding and truncation are switched off: a `tokenizer.json` that pads
/// to a fixed length (as all-MiniLM-L6-v2's does, at 128) would otherwise make every text look
/// 128 tokens long, and truncation would hide oversized chunks.
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: Arc<Tokenizer>,
    specials: usize,
    /// Whether runs of whitespace only separate words (BERT's normaliser and pre-tokenizer),
    /// so that counting may squeeze them to one space: a deeply indented Markdown list is
    /// mostly spaces, and the normaliser's per-byte work on them dominated chunking.
    squeeze: bool,
}

impl TokenCounter {
    /// Wraps `tokenizer`, clearing its padding and truncation.
    pub fn new(mut tokenizer: Tokenizer) -> Self {
        tokenizer.with_padding(None);
        // Clearing truncation cannot fail; `with_truncation(None)` only errs on bad params.
        let _ = tokenizer.with_truncation(None);
        let specials = tokenizer.encode("", true).map(|e| e.len()).unwrap_or(0);
        let squeeze =
            matches!(tokenizer.get_pre_tokenizer(), Some(PreTokenizerWrapper::BertPreTokenizer(_)))
                && matches!(
                    tokenizer.get_normalizer(),
                    None | Some(NormalizerWrapper::BertNormalizer(_))
                );
        Self { tokenizer: Arc::new(tokenizer), specials, squeeze }
    }

    /// Special tokens the model adds to every input ([CLS] and [SEP] for BERT).
    pub fn special_tokens(&self) -> usize {
        self.specials
    }

    /// Tokens in `text` without special tokens.
    pub fn count(&self, text: &str) -> Result<usize, String> {
        let squeezed;
        let text = if self.squeeze && has_space_run(text) {
            squeezed = squeeze_spaces(text);
            squeezed.as_str()
        } else {
            text
        };
        self.tokenizer.encode_fast(text, false).map(|e| e.len()).map_err(|e| e.to_string())
    }

    /// The longest word, in characters, that the model's vocabulary splits into pieces: WordPiece
    /// maps any longer word to a single unknown token. `None` for models without that limit.
    pub(crate) fn max_word_chars(&self) -> Option<usize> {
        match self.tokenizer.get_model() {
            ModelWrapper::WordPiece(wp) => Some(wp.max_input_chars_per_word),
            _ => None,
        }
    }

    /// Tokens in `text` as the model sees it, special tokens included.
    pub fn count_with_specials(&self, text: &str) -> Result<usize, String> {
        self.count(text).map(|n| n + self.specials)
    }
}

/// Whitespace that BERT's normaliser keeps as a word separator: not the control characters
/// (vertical tab, form feed, NEL) that it deletes, joining their neighbours.
fn is_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{0B}' | '\u{0C}' | '\u{85}')
}

fn has_space_run(text: &str) -> bool {
    let mut prev = false;
    text.chars().any(|c| {
        let space = is_space(c);
        let run = prev && space;
        prev = space;
        run
    })
}

/// `text` with each run of separating whitespace replaced by one space.
fn squeeze_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = false;
    for c in text.chars() {
        let space = is_space(c);
        if !space {
            out.push(c);
        } else if !prev {
            out.push(' ');
        }
        prev = space;
    }
    out
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

/// The splitter's measure: model tokens, except that text over `max_bytes` is "too big" without
/// being tokenized. The bound keeps whitespace-heavy or unknown-token text out of chunks, and
/// keeps the tokenizer's memory (tens of bytes per input byte) proportional to a chunk, not to
/// whatever candidate the splitter happens to measure.
#[derive(Clone)]
pub(crate) struct BoundedSizer {
    pub(crate) counter: TokenCounter,
    pub(crate) max_bytes: usize,
}

/// What [`BoundedSizer`] reports for text over its byte bound: above any chunk capacity, and
/// far from overflowing when the splitter does arithmetic on it.
const OVERSIZE: usize = u32::MAX as usize;

impl TryChunkSizer for BoundedSizer {
    type Error = TokenizeError;

    fn try_size(&self, chunk: &str) -> Result<usize, Self::Error> {
        if chunk.len() > self.max_bytes {
            return Ok(OVERSIZE);
        }
        self.counter.try_size(chunk)
    }
}
