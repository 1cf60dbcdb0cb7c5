//! Text extraction by content: plain text in any encoding, Markdown, HTML, PDF and DOCX, with hostile-input limits and process isolation.
//!
//! - [`detect`] names a document's kind from its bytes; the name only breaks ties (Markdown,
//!   HTML) and exposes lies (a `.pdf` that is not a PDF is a [`ExtractError::TypeMismatch`]).
//! - [`extract`] does the work in this process, synchronously.
//! - [`Extractor`] does it from async code with a wall-clock [`Limits::timeout`], either in this
//!   process ([`Extractor::in_process`]) or with PDF and DOCX parsed in a child process that
//!   runs [`child_main`] under memory and CPU rlimits ([`Extractor::isolated`]), so that a parser
//!   that spins, overflows its stack or eats memory fails one document and nothing else.
//!
//! Errors are one human line each (the caller prefixes the file name) with a stable
//! [`ExtractError::code`].
//!
//! ```
//! use ragmill_core::DocumentKind;
//! use ragmill_extract::{Limits, detect, extract};
//!
//! assert_eq!(detect(b"# Notes\n\nhello", "notes").ok(), Some(DocumentKind::Markdown));
//! let doc = extract(b"<h1>Hi</h1><p>there</p>", "page.html", &Limits::default()).expect("html");
//! assert_eq!(doc.text, "# Hi\n\nthere");
//! assert_eq!(detect(b"plain words", "report.pdf").map_err(|e| e.code()), Err("type_mismatch"));
//! ```

mod detect;
mod docx;
mod error;
mod html;
mod isolate;
mod pdf;
mod render;
mod text;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use ragmill_core::{DocumentKind, ExtractedDocument};

pub use error::ExtractError;
pub use isolate::{Extractor, child_main};

use detect::Sniffed;

/// Limits applied to every document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes (default 64 MiB).
    pub max_input_bytes: u64,
    /// Most bytes a DOCX may inflate to, all entries together (default 256 MiB).
    pub max_decompressed_bytes: u64,
    /// Wall-clock limit for one extraction (default 60 s). Enforced by [`Extractor`]; the
    /// synchronous [`extract`] cannot stop itself.
    pub timeout: Duration,
    /// Address-space limit of the isolated child process, in bytes (default 2 GiB).
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_decompressed_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            memory_bytes: 2 << 30,
        }
    }
}

/// Detects the kind of a document from its content.
///
/// Text is decoded to tell Text, Markdown and HTML apart (and whitespace-only files from real
/// ones); a ZIP's central directory is read to find `word/document.xml`.
pub fn detect(bytes: &[u8], name: &str) -> Result<DocumentKind, ExtractError> {
    Ok(match detect::sniff(bytes, name)? {
        Sniffed::Pdf => DocumentKind::Pdf,
        Sniffed::Docx => DocumentKind::Docx,
        Sniffed::Text(kind, _) => kind,
    })
}

/// Extracts a document in this process, synchronously.
///
/// Parser panics are caught and reported as [`ExtractError::Crashed`]; the timeout and the memory
/// limit are not enforced here (use [`Extractor`]), and a parser that overflows its stack takes
/// the process down (use [`Extractor::isolated`] for untrusted PDFs).
pub fn extract(
    bytes: &[u8],
    name: &str,
    limits: &Limits,
) -> Result<ExtractedDocument, ExtractError> {
    check_size(bytes, limits)?;
    let sniffed = detect::sniff(bytes, name)?;
    extract_sniffed(sniffed, bytes, limits)
}

pub(crate) fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), ExtractError> {
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(ExtractError::Empty);
    }
    if size > limits.max_input_bytes {
        return Err(ExtractError::TooLarge { size, limit: limits.max_input_bytes });
    }
    Ok(())
}

fn extract_sniffed(
    sniffed: Sniffed,
    bytes: &[u8],
    limits: &Limits,
) -> Result<ExtractedDocument, ExtractError> {
    match sniffed {
        Sniffed::Text(kind, text) => extract_text(kind, text),
        Sniffed::Pdf => guarded("PDF", || pdf::extract(bytes)),
        Sniffed::Docx => guarded("DOCX", || docx::extract(bytes, limits)),
    }
}

pub(crate) fn extract_text(
    kind: DocumentKind,
    text: String,
) -> Result<ExtractedDocument, ExtractError> {
    match kind {
        DocumentKind::Html => {
            if html::approximate_depth(&text) > html::MAX_DEPTH {
                return Err(ExtractError::corrupt(format!(
                    "the HTML nests elements more than {} deep",
                    html::MAX_DEPTH
                )));
            }
            let (rendered, headings) = guarded("HTML", || Ok(html::render(&text)))?;
            if rendered.is_empty() {
                return Err(ExtractError::NoText {
                    detail: "the HTML page has no visible text".into(),
                });
            }
            Ok(ExtractedDocument {
                kind,
                text: rendered,
                markdown: true,
                headings,
                pages: Vec::new(),
            })
        }
        DocumentKind::Markdown => {
            let headings = guarded("Markdown", || Ok(text::markdown_headings(&text)))?;
            Ok(ExtractedDocument { kind, text, markdown: true, headings, pages: Vec::new() })
        }
        _ => Ok(ExtractedDocument {
            kind: DocumentKind::Text,
            text,
            markdown: false,
            headings: Vec::new(),
            pages: Vec::new(),
        }),
    }
}

/// Runs a parser, turning a panic into [`ExtractError::Crashed`].
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, ExtractError>,
) -> Result<T, ExtractError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ExtractError::crashed(format!("the {what} parser panicked: {message}")))
        }
    }
}
