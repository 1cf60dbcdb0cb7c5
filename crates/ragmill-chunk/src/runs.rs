//! Runs of characters that the tokenizer reads as one word.
//!
//! BERT's WordPiece turns any word longer than `max_input_chars_per_word` (100) into a single
//! unknown token, so a 20 MB string without spaces counts as one token and would become one
//! chunk that the model sees as `[UNK]`. Such runs are found here and cut into pieces the model
//! really reads, before the splitter sees the text.

use std::ops::Range;

/// Whether the tokenizer ends a word at `c`: whitespace (but not the control characters its
/// normaliser deletes, such as form feed, which join their neighbours), ASCII punctuation and
/// CJK ideographs (each its own word). Other punctuation also splits words for BERT; counting it
/// as part of a word only makes runs look longer, which is the safe side.
fn separates(c: char) -> bool {
    (c.is_whitespace() && !matches!(c, '\u{0B}' | '\u{0C}' | '\u{85}'))
        || c.is_ascii_punctuation()
        || is_cjk(c)
}

/// The ranges BERT's normaliser puts spaces around.
fn is_cjk(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// Characters `c` becomes after normalisation: a Hangul syllable decomposes into up to three
/// jamo (NFD); everything else is counted as one (accent stripping only shortens).
pub(crate) fn weight(c: char) -> usize {
    if ('\u{AC00}'..='\u{D7A3}').contains(&c) { 3 } else { 1 }
}

/// Byte ranges of the words in `text` longer than `limit` (weighted) characters, in order.
pub(crate) fn long_runs(text: &str, limit: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    let mut chars = 0;
    for (i, c) in text.char_indices() {
        if separates(c) {
            if let Some(s) = start.take()
                && chars > limit
            {
                runs.push(s..i);
            }
            chars = 0;
        } else {
            start.get_or_insert(i);
            chars += weight(c);
        }
    }
    if let Some(s) = start
        && chars > limit
    {
        runs.push(s..text.len());
    }
    runs
}

/// The end of the longest prefix of `text[start..end]` with at most `max_chars` weighted
/// characters and `max_bytes` bytes; at least one character.
pub(crate) fn prefix_end(
    text: &str,
    start: usize,
    end: usize,
    max_chars: usize,
    max_bytes: usize,
) -> usize {
    let mut chars = 0;
    let mut stop = start;
    for (i, c) in text[start..end].char_indices() {
        chars += weight(c);
        let next = start + i + c.len_utf8();
        if stop > start && (chars > max_chars || next - start > max_bytes) {
            break;
        }
        stop = next;
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_words_over_the_limit() {
        let text = format!(
            "short {} ok-{}\u{0C}{} 日{}日",
            "a".repeat(5),
            "b".repeat(6),
            "c",
            "d".repeat(5)
        );
        // "b"×6 and "c" are joined by a form feed the normaliser deletes: 8 characters.
        let runs: Vec<&str> = long_runs(&text, 4).iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(runs, vec!["short", "aaaaa", "bbbbbb\u{0C}c", "ddddd"]);
        assert!(long_runs(&text, 8).is_empty());
        // Hangul syllables count three each.
        assert_eq!(long_runs("한국어", 8), vec![0..9]);
        assert!(long_runs("한국", 8).is_empty());
    }

    #[test]
    fn prefixes_respect_both_bounds() {
        let text = "ééééé";
        assert_eq!(prefix_end(text, 0, text.len(), 3, 100), 6);
        assert_eq!(prefix_end(text, 0, text.len(), 100, 5), 4);
        assert_eq!(prefix_end(text, 2, text.len(), 0, 0), 4, "always one character");
    }
}
