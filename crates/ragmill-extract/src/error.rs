//! Extraction errors: one clear line each, with a stable code for APIs and logs.

use serde::{Deserialize, Serialize};

/// Why a document could not be extracted.
///
/// [`Display`](std::fmt::Display) gives one human line without the file name (the caller adds
/// it); [`ExtractError::code`] gives a stable snake_case code. The type is serialisable because it
/// crosses the process boundary of [`crate::Extractor::isolated`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExtractError {
    /// The file is empty or holds only whitespace.
    #[error("the file is empty")]
    Empty,
    /// The file is larger than [`crate::Limits::max_input_bytes`].
    #[error("the file is {}, over the {} limit", human_bytes(*size), human_bytes(*limit))]
    TooLarge {
        /// Size of the file in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The content is of a kind ragmill does not read.
    #[error("unsupported file type: {detail}")]
    Unsupported {
        /// What the content looks like, e.g. "PNG image".
        detail: String,
    },
    /// The name claims one type and the content is another.
    #[error("the name says {named} but the content is {detected}")]
    TypeMismatch {
        /// What the extension claims, e.g. "PDF".
        named: String,
        /// What the content is, e.g. "plain text".
        detected: String,
    },
    /// The document is password-protected.
    #[error("{detail}")]
    Encrypted {
        /// Which kind of document, and what to do about it.
        detail: String,
    },
    /// The document is damaged or truncated.
    #[error("the file is damaged or truncated: {detail}")]
    Corrupt {
        /// What the parser found wrong.
        detail: String,
    },
    /// The document has no extractable text (e.g. a scanned PDF).
    #[error("{detail}")]
    NoText {
        /// Why there is no text.
        detail: String,
    },
    /// A compressed document expands beyond [`crate::Limits::max_decompressed_bytes`].
    #[error("the archive expands to more than {} (decompression bomb?)", human_bytes(*limit))]
    DecompressionBomb {
        /// The limit in bytes.
        limit: u64,
    },
    /// The document's text is larger than [`crate::Limits::max_text_bytes`].
    #[error("the document's text is {}, over the {} limit", human_bytes(*size), human_bytes(*limit))]
    TextTooLarge {
        /// Bytes of text found (at least; extraction may stop at the limit).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The document's structure is beyond what is parsed safely (nesting depth, element count).
    #[error("the document is too complex to read: {detail}")]
    TooComplex {
        /// Which bound it passes.
        detail: String,
    },
    /// Extraction took longer than [`crate::Limits::timeout`].
    #[error("extraction took longer than {secs} s and was stopped")]
    Timeout {
        /// The time limit in whole seconds (rounded up).
        secs: u64,
    },
    /// The parser crashed (panic, signal, out of memory) or its process returned garbage.
    #[error("the extractor crashed: {detail}")]
    Crashed {
        /// What happened: the panic message, the signal, the tail of the child's stderr.
        detail: String,
    },
    /// The extractor process could not be run or talked to.
    #[error("extractor I/O failed: {detail}")]
    Io {
        /// The underlying error.
        detail: String,
    },
}

impl ExtractError {
    /// A stable snake_case code for APIs, logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Empty => "empty_file",
            ExtractError::TooLarge { .. } => "file_too_large",
            ExtractError::Unsupported { .. } => "unsupported_type",
            ExtractError::TypeMismatch { .. } => "type_mismatch",
            ExtractError::Encrypted { .. } => "encrypted",
            ExtractError::Corrupt { .. } => "corrupt_file",
            ExtractError::NoText { .. } => "no_text",
            ExtractError::DecompressionBomb { .. } => "decompression_bomb",
            ExtractError::TextTooLarge { .. } => "text_too_large",
            ExtractError::TooComplex { .. } => "too_complex",
            ExtractError::Timeout { .. } => "extract_timeout",
            ExtractError::Crashed { .. } => "extract_crashed",
            ExtractError::Io { .. } => "extract_io",
        }
    }

    pub(crate) fn corrupt(detail: impl std::fmt::Display) -> Self {
        ExtractError::Corrupt { detail: one_line(&detail.to_string(), 300) }
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Self {
        ExtractError::Unsupported { detail: detail.into() }
    }

    pub(crate) fn crashed(detail: impl std::fmt::Display) -> Self {
        ExtractError::Crashed { detail: one_line(&detail.to_string(), 500) }
    }

    pub(crate) fn timeout(limit: std::time::Duration) -> Self {
        let secs = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
        ExtractError::Timeout { secs: secs.max(1) }
    }
}

/// Squeezes `s` onto one line of at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        joined
    } else {
        let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// "12.3 MiB", "64 MiB", "512 bytes".
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_codes_stable() {
        let e =
            ExtractError::TooLarge { size: 70 * 1024 * 1024 + 512 * 1024, limit: 64 * 1024 * 1024 };
        assert_eq!(e.to_string(), "the file is 70.5 MiB, over the 64 MiB limit");
        assert_eq!(e.code(), "file_too_large");
        let e = ExtractError::crashed("boom\nat line 3\n\tsomewhere");
        assert_eq!(e.to_string(), "the extractor crashed: boom at line 3 somewhere");
        assert_eq!(
            ExtractError::timeout(std::time::Duration::from_millis(1500)).to_string(),
            "extraction took longer than 2 s and was stopped"
        );
        assert_eq!(human_bytes(100), "100 bytes");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }

    #[test]
    fn errors_round_trip_through_json() {
        let e = ExtractError::TypeMismatch { named: "PDF".into(), detected: "plain text".into() };
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(json, r#"{"kind":"type_mismatch","named":"PDF","detected":"plain text"}"#);
        let back: Result<ExtractError, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(e));
        let back: Result<ExtractError, _> = serde_json::from_str(r#"{"kind":"empty"}"#);
        assert_eq!(back.ok(), Some(ExtractError::Empty));
    }
}
