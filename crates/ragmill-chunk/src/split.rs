//! Cutting a text into pieces in time and memory proportional to its length.
//!
//! `text-splitter` measures candidate chunks from its cursor to the end of the next semantic
//! section, and the next section can be the rest of the text: a line without sentence breaks,
//! or a Markdown list whose first item contains every deeper one. Each chunk then costs work in
//! the length of the text, and a deeply nested list (whose size grows with the square of its
//! depth) took time cubic in its depth. So the splitter only ever sees a window of a few chunks'
//! worth of text; over-long words are cut here directly ([`crate::runs`]).

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::runs::{long_runs, prefix_end};
use crate::{ChunkBudget, ChunkError, Chunker};

/// A window holds this many maximum-size chunks: large enough that the chunk dropped at each
/// window's end (and redone in the next window) costs little, small enough to bound the
/// splitter's work per chunk.
const WINDOW_CHUNKS: usize = 8;

/// A future chunk: its byte offset, its text and, when already known, its token count
/// (special tokens included).
pub(crate) struct Piece<'t> {
    pub(crate) start: usize,
    pub(crate) text: &'t str,
    pub(crate) tokens: Option<usize>,
}

impl<'t> Piece<'t> {
    fn new(start: usize, text: &'t str, tokens: Option<usize>) -> Self {
        Piece { start, text, tokens }
    }
}

/// Keeps one document within its [`ChunkBudget`]; checked after each window and each piece of
/// a cut word, so between two checks the work is bounded by a window.
pub(crate) struct Meter {
    max_chunks: usize,
    allowed: Duration,
    started: Instant,
}

impl Meter {
    pub(crate) fn start(budget: ChunkBudget, text_bytes: usize) -> Self {
        let allowed = budget.time_for(text_bytes);
        Meter { max_chunks: budget.max_chunks, allowed, started: Instant::now() }
    }

    fn check(&self, pieces: usize) -> Result<(), ChunkError> {
        if pieces > self.max_chunks {
            return Err(ChunkError::TooManyChunks { limit: self.max_chunks });
        }
        if self.started.elapsed() > self.allowed {
            let t = self.allowed;
            let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            return Err(ChunkError::Timeout { secs: secs.max(1) });
        }
        Ok(())
    }
}

impl Chunker {
    /// The pieces of `text`, trimmed, in order, with their byte offsets.
    pub(crate) fn pieces<'t>(
        &self,
        text: &'t str,
        markdown: bool,
        meter: &Meter,
    ) -> Result<Vec<Piece<'t>>, ChunkError> {
        let mut out = Vec::new();
        let mut done = 0;
        for run in long_runs(text, self.word_chars) {
            self.split_windows(text, done..run.start, markdown, &mut out, meter)?;
            self.cut_run(text, run.clone(), &mut out, meter)?;
            done = run.end;
        }
        self.split_windows(text, done..text.len(), markdown, &mut out, meter)?;
        meter.check(out.len())?;
        Ok(out)
    }

    /// Splits `text[range]` one window at a time. Each window's last chunk may have been
    /// shortened by the window's end, so it is dropped and the next window starts there.
    fn split_windows<'t>(
        &self,
        text: &'t str,
        range: Range<usize>,
        markdown: bool,
        out: &mut Vec<Piece<'t>>,
        meter: &Meter,
    ) -> Result<(), ChunkError> {
        let window_bytes = self.max_bytes * WINDOW_CHUNKS;
        let mut start = range.start;
        while start < range.end {
            meter.check(out.len())?;
            let end = window_end(text, start, range.end, window_bytes);
            let window = &text[start..end];
            let mut chunks: Vec<(usize, &str)> = if markdown {
                self.markdown.try_chunk_indices(window).collect::<Result<_, _>>()
            } else {
                self.text.try_chunk_indices(window).collect::<Result<_, _>>()
            }
            .map_err(|e| ChunkError::Tokenize(e.to_string()))?;
            if end == range.end {
                out.extend(chunks.into_iter().map(|(at, s)| Piece::new(start + at, s, None)));
                break;
            }
            let next = match chunks.pop() {
                None => end,
                Some((at, _)) if at > 0 => start + at,
                // The window's only chunk, at its very start: the rest is whitespace.
                Some((at, last)) => {
                    chunks.push((at, last));
                    if last.is_empty() { end } else { start + at + last.len() }
                }
            };
            out.extend(chunks.into_iter().map(|(at, s)| Piece::new(start + at, s, None)));
            start = next;
        }
        Ok(())
    }

    /// Cuts a word too long for the model into pieces that it reads in full: each within the
    /// word limit, the byte bound and the model's window.
    fn cut_run<'t>(
        &self,
        text: &'t str,
        run: Range<usize>,
        out: &mut Vec<Piece<'t>>,
        meter: &Meter,
    ) -> Result<(), ChunkError> {
        let mut start = run.start;
        while start < run.end {
            meter.check(out.len())?;
            let one_char = prefix_end(text, start, run.end, 0, 0);
            let mut end = prefix_end(text, start, run.end, self.word_chars, self.max_bytes);
            // Halve until the model's window holds it; a single character is kept whatever it
            // counts (a byte-level model may read one character as several tokens).
            let mut tokens = self.count_tokens(&text[start..end])?;
            while end > one_char && tokens > self.config.max_tokens {
                end = prefix_end(text, start, end, 0, (end - start) / 2);
                tokens = self.count_tokens(&text[start..end])?;
            }
            out.push(Piece::new(start, &text[start..end], Some(tokens)));
            start = end;
        }
        Ok(())
    }
}

/// Where a window from `start` ends: `limit` if near, else the last line break in the back half
/// of `window_bytes` (so that Markdown blocks are rarely cut), else a character boundary.
fn window_end(text: &str, start: usize, limit: usize, window_bytes: usize) -> usize {
    if limit - start <= window_bytes {
        return limit;
    }
    let mut end = start + window_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let back_half = start + window_bytes / 2;
    match text.as_bytes()[back_half..end].iter().rposition(|&b| b == b'\n') {
        Some(i) => back_half + i + 1,
        None => end,
    }
}
