//! Plain text in any encoding, and Markdown headings.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use ragmill_core::Heading;

/// Decodes `bytes` to UTF-8 text: a BOM wins, then valid UTF-8, then BOM-less UTF-16 by its
/// NUL pattern, then chardetng's guess. Line ends are normalised to LF.
pub(crate) fn decode(bytes: &[u8]) -> String {
    let decoded: Cow<'_, str> = if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _had_errors) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        text
    } else if let Some(encoding) = utf16_without_bom(bytes) {
        encoding.decode_without_bom_handling(bytes).0
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        Cow::Borrowed(s)
    } else {
        let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        detector.feed(bytes, true);
        let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
        encoding.decode_without_bom_handling(bytes).0
    };
    normalize_newlines(&decoded)
}

/// UTF-16 without a BOM: mostly-ASCII text leaves a NUL in every other byte.
pub(crate) fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    // ≥ 70 % NULs on one side and (almost) none on the other.
    if odd_nul * 10 >= pairs * 7 && even_nul * 20 <= pairs {
        Some(UTF_16LE)
    } else if even_nul * 10 >= pairs * 7 && odd_nul * 20 <= pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Whether the first 8 KiB read as real text: no NUL, almost no control characters, and either
/// valid UTF-8 (a character cut by the sample's end is fine) or a legacy 8-bit encoding with no
/// stray controls and mostly ASCII. Real binary files (images, executables, compressed data)
/// fail within their first bytes; a format's printable magic number ("BM", "MZ", "ID3") does not
/// make text binary.
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(8192)];
    if sample.is_empty() || sample.contains(&0) {
        return false;
    }
    let controls = sample
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B)) || b == 0x7F)
        .count();
    match std::str::from_utf8(sample) {
        Ok(_) => controls * 100 <= sample.len(),
        Err(e) if e.error_len().is_none() => controls * 100 <= sample.len(),
        Err(_) => {
            let high = sample.iter().filter(|b| !b.is_ascii()).count();
            controls == 0 && high * 3 <= sample.len()
        }
    }
}

/// CRLF and lone CR become LF.
pub(crate) fn normalize_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether decoded text clearly is Markdown even without a .md name: two or more ATX headings,
/// or one that opens the text.
pub(crate) fn looks_like_markdown(text: &str) -> bool {
    let mut headings = 0;
    let mut first_nonblank = true;
    for line in text.lines().take(2000) {
        if line.trim().is_empty() {
            continue;
        }
        if is_atx_heading(line) {
            if first_nonblank {
                return true;
            }
            headings += 1;
            if headings >= 2 {
                return true;
            }
        }
        first_nonblank = false;
    }
    false
}

fn is_atx_heading(line: &str) -> bool {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes)
        && line[hashes..].starts_with(' ')
        && line[hashes..].trim().chars().next().is_some_and(|c| c.is_alphanumeric())
}

/// The headings of Markdown `text`: level, plain title, byte offset of the heading's line.
pub(crate) fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut current: Option<(u8, usize, String)> = None;
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    for (event, range) in parser.into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((level as u8, range.start, String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, offset, title)) = current.take() {
                    let title = collapse_whitespace(&title);
                    if !title.is_empty() {
                        headings.push(Heading { level, title, offset });
                    }
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) => {
                if let Some((_, _, title)) = current.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = current.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }
    headings
}

pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_boms_utf8_and_legacy_encodings() {
        assert_eq!(decode(b"\xef\xbb\xbfhi\r\nthere\r"), "hi\nthere\n");
        assert_eq!(decode(b"\xfe\xff\x00h\x00\xe9"), "hé");
        assert_eq!(decode(b"\xff\xfeh\x00\xe9\x00"), "hé");
        assert_eq!(decode("naïve €".as_bytes()), "naïve €");
        // BOM-less UTF-16LE.
        let utf16: Vec<u8> =
            "plain ascii text here".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(decode(&utf16), "plain ascii text here");
        // windows-1252 with curly quotes and a euro sign.
        let cp1252 =
            b"Le \x93caf\xe9\x94 co\xfbte 5 \x80 et c'est d\xe9j\xe0 tr\xe8s cher pour un caf\xe9.";
        assert_eq!(
            decode(cp1252),
            "Le \u{201c}café\u{201d} coûte 5 € et c'est déjà très cher pour un café."
        );
        // Shift_JIS: 日本語のテキストです。これは文字コードの判定のテストです。
        let (sjis, _, _) = encoding_rs::SHIFT_JIS
            .encode("日本語のテキストです。これは文字コードの判定のテストです。");
        assert_eq!(decode(&sjis), "日本語のテキストです。これは文字コードの判定のテストです。");
    }

    #[test]
    fn markdown_sniffing() {
        assert!(looks_like_markdown("\n# Title\n\ntext"));
        assert!(looks_like_markdown("intro\n## One\ntext\n## Two\n"));
        assert!(!looks_like_markdown("intro\n# just a comment\nmore"));
        assert!(!looks_like_markdown("#!/bin/sh\necho hi\n"));
        assert!(!looks_like_markdown("#hashtag\n#another\n"));
    }

    #[test]
    fn headings_with_offsets() {
        let text = "# Title\n\nIntro.\n\n## Part `one`\n\nBody.\n\nSetext *two*\n---\n";
        let h = markdown_headings(text);
        let got: Vec<(u8, &str, usize)> =
            h.iter().map(|h| (h.level, h.title.as_str(), h.offset)).collect();
        assert_eq!(got, vec![(1, "Title", 0), (2, "Part one", 17), (2, "Setext two", 39)]);
        assert!(text[17..].starts_with("## Part"));
        assert!(text[39..].starts_with("Setext"));
    }
}
