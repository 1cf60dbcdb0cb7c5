//! Text extraction by content: plain text in any encoding, Markdown, HTML, PDF and DOCX, with hostile-input limits and process isolation.
//!
//! - [`detect`] names a document's kind from its bytes; the name only breaks ties (Markdown,
//!   HTML) and exposes lies (a `.pdf` that is not a PDF is a [`ExtractError::TypeMismatch`]).
//! - [`extract`] does the work in this process, synchronously.
//! - [`Extractor`] does it from async code with a wall-clock [`Limits::timeout`], either in this
//!   process ([`Extractor::in_process`]) or with every PDF and DOCX, and every text larger than
//!   [`Limits::in_process_bytes`], parsed in a child process that runs [`child_main`] under
//!   memory and CPU rlimits ([`Extractor::isolated`]), so that a parser that spins, overflows its
//!   stack or eats memory fails one document and nothing else. The small texts kept in the
//!   calling process are bounded by their size: the decoders and parsers are linear, HTML
//!   nesting and element counts are capped before html5ever sees the page, and every format's
//!   output is capped at [`Limits::max_text_bytes`].
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
    /// Most bytes of UTF-8 text one document may yield, whatever its format (default 64 MiB):
    /// decoding can triple a legacy encoding, and a PDF's compressed streams or a DOCX's XML
    /// can hold far more text than the file's size suggests. Over it: [`ExtractError::TextTooLarge`].
    pub max_text_bytes: u64,
    /// Text, Markdown and HTML files up to this size are extracted in the calling process by
    /// [`Extractor::isolated`]; larger ones go to the child process like every PDF and DOCX
    /// (default 256 KiB). Starting the child costs a few milliseconds, as much as embedding a
    /// small document, while a small text's worst case is bounded by its size (the parsers are
    /// linear, HTML nesting is capped): the sandbox is paid for where it is needed.
    pub in_process_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_decompressed_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            memory_bytes: 2 << 30,
            max_text_bytes: 64 << 20,
            in_process_bytes: 256 << 10,
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
    let doc = match sniffed {
        Sniffed::Text(kind, text) => return extract_text(kind, text, limits),
        Sniffed::Pdf => guarded("PDF", || pdf::extract(bytes, limits))?,
        Sniffed::Docx => guarded("DOCX", || docx::extract(bytes, limits))?,
    };
    check_text(doc.text.len(), limits)?;
    Ok(doc)
}

/// Refuses text over [`Limits::max_text_bytes`].
pub(crate) fn check_text(len: usize, limits: &Limits) -> Result<(), ExtractError> {
    let size = len as u64;
    if size > limits.max_text_bytes {
        return Err(ExtractError::TextTooLarge { size, limit: limits.max_text_bytes });
    }
    Ok(())
}

pub(crate) fn extract_text(
    kind: DocumentKind,
    text: String,
    limits: &Limits,
) -> Result<ExtractedDocument, ExtractError> {
    check_text(text.len(), limits)?;
    match kind {
        DocumentKind::Html => {
            let shape = html::shape(&text);
            if shape.depth > html::MAX_DEPTH {
                return Err(ExtractError::TooComplex {
                    detail: format!("the HTML nests elements more than {} deep", html::MAX_DEPTH),
                });
            }
            if shape.elements > html::MAX_ELEMENTS {
                return Err(ExtractError::TooComplex {
                    detail: format!("the HTML has more than {} elements", html::MAX_ELEMENTS),
                });
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
