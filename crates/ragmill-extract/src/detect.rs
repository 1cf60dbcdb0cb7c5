//! Type detection from the content; the name only breaks ties and exposes lies.

use std::io::Cursor;

use ragmill_core::DocumentKind;

use crate::ExtractError;
use crate::{html, text};

/// What the content turned out to be.
pub(crate) enum Sniffed {
    Pdf,
    Docx,
    /// Text, Markdown or HTML, decoded.
    Text(DocumentKind, String),
}

/// What the name's extension claims.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    Pdf,
    Docx,
    Text,
    Markdown,
    Html,
    None,
}

fn claim(name: &str) -> Claim {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let ext = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    match ext.as_str() {
        "pdf" => Claim::Pdf,
        "docx" | "docm" | "dotx" => Claim::Docx,
        "txt" | "text" => Claim::Text,
        "md" | "markdown" | "mdx" | "mkd" | "mdown" => Claim::Markdown,
        "html" | "htm" | "xhtml" => Claim::Html,
        _ => Claim::None,
    }
}

fn claim_label(c: Claim) -> &'static str {
    match c {
        Claim::Pdf => "PDF",
        Claim::Docx => "DOCX",
        Claim::Text => "plain text",
        Claim::Markdown => "Markdown",
        Claim::Html => "HTML",
        Claim::None => "unknown",
    }
}

pub(crate) fn kind_label(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Text => "plain text",
        DocumentKind::Markdown => "Markdown",
        DocumentKind::Html => "HTML",
        DocumentKind::Pdf => "a PDF",
        DocumentKind::Docx => "a DOCX document",
    }
}

/// Detects the kind of `bytes` (decoding text on the way).
pub(crate) fn sniff(bytes: &[u8], name: &str) -> Result<Sniffed, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    let claim = claim(name);
    let mismatch = |detected: String| ExtractError::TypeMismatch {
        named: claim_label(claim).into(),
        detected,
    };

    let content = classify(bytes, claim);
    match (claim, content) {
        (_, Err(ExtractError::Empty)) => Err(ExtractError::Empty),
        // A password-protected .docx is an OLE container: say so rather than "mismatch".
        (Claim::Docx, Err(e @ ExtractError::Encrypted { .. })) => Err(e),
        (Claim::Pdf | Claim::Docx, Ok(Sniffed::Text(kind, _))) => {
            Err(mismatch(kind_label(kind).into()))
        }
        (Claim::Pdf, Ok(Sniffed::Docx)) => Err(mismatch("a DOCX document".into())),
        (Claim::Docx, Ok(Sniffed::Pdf)) => Err(mismatch("a PDF".into())),
        (Claim::Pdf | Claim::Docx, Err(ExtractError::Unsupported { detail })) => {
            Err(mismatch(detail))
        }
        (Claim::Text | Claim::Markdown | Claim::Html, Ok(Sniffed::Pdf)) => {
            Err(mismatch("a PDF".into()))
        }
        (Claim::Text | Claim::Markdown | Claim::Html, Ok(Sniffed::Docx)) => {
            Err(mismatch("a DOCX document".into()))
        }
        (_, other) => other,
    }
}

fn classify(bytes: &[u8], claim: Claim) -> Result<Sniffed, ExtractError> {
    // Signatures are only hints: content that reads as text stays text unless the signature is
    // one that text cannot carry by accident (binary bytes, or a PDF header where readers
    // look for it).
    let textual = text::looks_like_text(bytes);
    match pdf_header(bytes) {
        Some(PdfHeader::AtStart) => return Ok(Sniffed::Pdf),
        // Readers accept junk before the header; a text that merely quotes "%PDF-" neither is
        // binary nor ends like a PDF.
        Some(PdfHeader::Later) if !textual || ends_like_pdf(bytes) => return Ok(Sniffed::Pdf),
        _ => {}
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return classify_zip(bytes, claim);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(classify_ole(bytes));
    }
    let has_bom = encoding_rs::Encoding::for_bom(bytes).is_some();
    if !has_bom && text::utf16_without_bom(bytes).is_none() {
        if let Some(t) = infer::get(bytes)
            && t.matcher_type() != infer::MatcherType::Text
            && !(textual && text_wins_over(t, bytes, claim))
        {
            return Err(ExtractError::unsupported(format!(
                "{} ({})",
                describe_mime(t.mime_type()),
                t.extension()
            )));
        }
        if looks_binary(bytes) {
            return Err(ExtractError::unsupported(
                "binary data, not text or a known document format",
            ));
        }
    }

    let decoded = text::decode(bytes);
    if decoded.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    let kind =
        if html::looks_like_html(&decoded) || (claim == Claim::Html && html::has_tags(&decoded)) {
            DocumentKind::Html
        } else if claim == Claim::Markdown
            || (matches!(claim, Claim::None | Claim::Text) && text::looks_like_markdown(&decoded))
        {
            DocumentKind::Markdown
        } else {
            DocumentKind::Text
        };
    Ok(Sniffed::Text(kind, decoded))
}

fn describe_mime(mime: &str) -> String {
    let (top, sub) = mime.split_once('/').unwrap_or((mime, ""));
    match top {
        "image" | "audio" | "video" | "font" => {
            format!("{} {top}", sub.trim_start_matches("x-").to_ascii_uppercase())
        }
        _ => mime.to_owned(),
    }
}

/// Where a PDF header was found in the first KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PdfHeader {
    /// At offset 0, or after nothing but a UTF-8 BOM and whitespace.
    AtStart,
    /// After other content: a PDF with a junk prefix, or a text quoting a header.
    Later,
}

fn pdf_header(bytes: &[u8]) -> Option<PdfHeader> {
    const HEADER: &[u8] = b"%PDF-";
    let head = &bytes[..bytes.len().min(1024)];
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if body[start..].starts_with(HEADER) {
        Some(PdfHeader::AtStart)
    } else {
        find(head, HEADER).map(|_| PdfHeader::Later)
    }
}

/// The end-of-file marker every PDF writer puts in its last bytes.
fn ends_like_pdf(bytes: &[u8]) -> bool {
    find(&bytes[bytes.len().saturating_sub(1024)..], b"%%EOF").is_some()
}

/// Whether text content overrides what `infer` matched. Binary formats' signatures are a few
/// printable bytes ("BM", "MZ", "ID3") that text often starts with, and their real files are
/// never valid text, so text always wins. RTF and PostScript files are themselves text: without
/// a name that claims text, their full signatures still mark them as unsupported.
fn text_wins_over(t: infer::Type, bytes: &[u8], claim: Claim) -> bool {
    if matches!(claim, Claim::Text | Claim::Markdown | Claim::Html) {
        return true;
    }
    match t.extension() {
        "rtf" => !bytes.starts_with(b"{\\rtf1"),
        "ps" => !bytes.starts_with(b"%!PS"),
        _ => true,
    }
}

/// NUL bytes or many control bytes in the first 8 KiB.
fn looks_binary(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(8192)];
    if sample.contains(&0) {
        return true;
    }
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
        .count();
    controls * 10 > sample.len()
}

fn classify_zip(bytes: &[u8], claim: Claim) -> Result<Sniffed, ExtractError> {
    let archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) if claim == Claim::Docx => {
            return Err(ExtractError::corrupt(format!("cannot open the DOCX archive ({e})")));
        }
        Err(_) => return Err(ExtractError::unsupported("a damaged ZIP archive")),
    };
    let has = |name: &str| archive.index_for_name(name).is_some();
    if has(crate::docx::DOCUMENT_XML) {
        return Ok(Sniffed::Docx);
    }
    let what = if has("xl/workbook.xml") {
        "an Excel workbook (.xlsx)"
    } else if has("ppt/presentation.xml") {
        "a PowerPoint presentation (.pptx)"
    } else if has("mimetype") && has("content.xml") {
        "an OpenDocument file (.odt/.ods/.odp)"
    } else if has("META-INF/container.xml") {
        "an EPUB e-book"
    } else {
        "a ZIP archive that is not a Word document (no word/document.xml)"
    };
    Err(ExtractError::unsupported(what))
}

fn classify_ole(bytes: &[u8]) -> ExtractError {
    // Password-protected OOXML files are OLE containers holding an "EncryptedPackage" stream;
    // directory entry names are UTF-16LE.
    let marker: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    if find(bytes, &marker).is_some() {
        ExtractError::Encrypted {
            detail:
                "the Office document is password-protected; remove the password and upload it again"
                    .into(),
        }
    } else {
        ExtractError::unsupported(
            "a legacy Office document (.doc/.xls/.ppt); save it as .docx or PDF",
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8], name: &str) -> Result<DocumentKind, String> {
        match sniff(bytes, name) {
            Ok(Sniffed::Pdf) => Ok(DocumentKind::Pdf),
            Ok(Sniffed::Docx) => Ok(DocumentKind::Docx),
            Ok(Sniffed::Text(k, _)) => Ok(k),
            Err(e) => Err(format!("{}: {e}", e.code())),
        }
    }

    #[test]
    fn content_decides_and_names_break_ties() {
        assert_eq!(kind(b"%PDF-1.7\n...", "x"), Ok(DocumentKind::Pdf));
        assert_eq!(kind(b"hello", "notes"), Ok(DocumentKind::Text));
        assert_eq!(kind(b"hello", "notes.md"), Ok(DocumentKind::Markdown));
        assert_eq!(kind(b"# Title\n\nhello", "notes"), Ok(DocumentKind::Markdown));
        assert_eq!(kind(b"# Title\n\nhello", "notes.txt"), Ok(DocumentKind::Markdown));
        assert_eq!(kind(b"<p>hi</p>", "page.htm"), Ok(DocumentKind::Html));
        assert_eq!(kind(b"<p>hi</p>", "page.txt"), Ok(DocumentKind::Text));
        assert_eq!(kind(b"<!doctype html><p>hi", "page.txt"), Ok(DocumentKind::Html));
    }

    #[test]
    fn lies_and_junk() {
        assert_eq!(
            kind(b"just text", "report.pdf"),
            Err("type_mismatch: the name says PDF but the content is plain text".into())
        );
        assert_eq!(
            kind(b"%PDF-1.4 ...", "notes.txt"),
            Err("type_mismatch: the name says plain text but the content is a PDF".into())
        );
        assert_eq!(
            kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", "pic.pdf"),
            Err("type_mismatch: the name says PDF but the content is PNG image (png)".into())
        );
        assert_eq!(
            kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", "pic"),
            Err("unsupported_type: unsupported file type: PNG image (png)".into())
        );
        assert_eq!(
            kind(b"\x00\x01\x02\x03\xff\xfe\x00\x10", "x.bin").map_err(|e| e[..16].to_owned()),
            Err("unsupported_type".into())
        );
        assert_eq!(kind(b"  \n\t\r\n", "x.txt"), Err("empty_file: the file is empty".into()));
        assert_eq!(kind(b"\xef\xbb\xbf  ", "x.txt"), Err("empty_file: the file is empty".into()));
        let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        ole.extend(std::iter::repeat_n(0u8, 100));
        assert_eq!(
            kind(&ole, "old.doc"),
            Err("unsupported_type: unsupported file type: a legacy Office document (.doc/.xls/.ppt); save it as .docx or PDF".into())
        );
        ole.extend("EncryptedPackage".encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(
            kind(&ole, "secret.docx"),
            Err("encrypted: the Office document is password-protected; remove the password and upload it again".into())
        );
    }
}
