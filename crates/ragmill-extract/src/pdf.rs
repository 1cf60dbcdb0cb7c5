//! PDF: text per page through pdf-extract (and the lopdf it is built on).

use pdf_extract::{Document, PlainTextOutput, output_doc_page};
use ragmill_core::{DocumentKind, ExtractedDocument, PageSpan};

use crate::{ExtractError, Limits};

pub(crate) const ENCRYPTED: &str =
    "the PDF is password-protected; remove the password and upload it again";

/// Extracts the text of a PDF page by page.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<ExtractedDocument, ExtractError> {
    let mut doc = Document::load_mem(bytes)
        .map_err(|e| ExtractError::corrupt(format!("cannot parse the PDF ({e})")))?;
    let was_encrypted = doc.is_encrypted() || doc.was_encrypted();
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Encrypted { detail: ENCRYPTED.into() });
    }
    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    if page_numbers.is_empty() {
        return Err(if was_encrypted {
            ExtractError::Encrypted { detail: ENCRYPTED.into() }
        } else {
            ExtractError::corrupt("the PDF has no pages")
        });
    }

    let mut text = String::new();
    let mut pages = Vec::with_capacity(page_numbers.len());
    let mut first_error: Option<String> = None;
    let mut failed = 0usize;
    for (index, &number) in page_numbers.iter().enumerate() {
        let mut raw = String::new();
        // pdf-extract panics on some malformed pages (e.g. no MediaBox): lose the page, not
        // the document.
        let result = crate::guarded("PDF", || {
            let mut output = PlainTextOutput::new(&mut raw);
            output_doc_page(&doc, &mut output, number).map_err(ExtractError::corrupt)
        });
        if let Err(e) = result {
            let detail = match e {
                ExtractError::Corrupt { detail } | ExtractError::Crashed { detail } => detail,
                other => other.to_string(),
            };
            tracing::debug!(page = number, error = %detail, "PDF page failed");
            failed += 1;
            first_error.get_or_insert(detail);
            raw.clear();
        }
        let page_text = tidy_page(&raw);
        if !page_text.is_empty() && !text.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        text.push_str(&page_text);
        // Page numbers are 1-based positions, whatever the PDF's own numbering.
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        pages.push(PageSpan { number, start, end: text.len() });
        // Compressed content streams can hold far more text than the file's size: stop at the
        // limit rather than after the last page.
        crate::check_text(text.len(), limits)?;
    }

    if text.trim().is_empty() {
        return Err(match first_error {
            Some(e) if failed == page_numbers.len() => {
                ExtractError::corrupt(format!("cannot read the PDF's pages ({e})"))
            }
            _ if was_encrypted => ExtractError::Encrypted { detail: ENCRYPTED.into() },
            _ => ExtractError::NoText {
                detail: "the PDF has no text layer (a scanned document? OCR it first)".into(),
            },
        });
    }
    Ok(ExtractedDocument {
        kind: DocumentKind::Pdf,
        text,
        markdown: false,
        headings: Vec::new(),
        pages,
    })
}

/// Trims each line's trailing blanks and the page's ends; at most one blank line in a row.
fn tidy_page(raw: &str) -> String {
    let raw = crate::text::normalize_newlines(raw);
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0usize;
    for line in raw.split('\n') {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidies_pages() {
        assert_eq!(
            tidy_page("\n\n  Hello  \n\n\n\nworld\r\nagain \n\n"),
            "  Hello\n\nworld\nagain"
        );
        assert_eq!(tidy_page(" \n \n"), "");
    }
}
