//! In-process extraction of real files (tests/data, made by scripts/make-extract-fixtures.py)
//! and of hostile inputs built here.

mod common;

use common::*;
use ragmill_core::{DocumentKind, ExtractedDocument};
use ragmill_extract::{ExtractError, Limits, detect, extract};

fn ok(bytes: &[u8], name: &str) -> ExtractedDocument {
    extract(bytes, name, &Limits::default())
        .unwrap_or_else(|e| panic!("{name}: {} ({})", e, e.code()))
}

fn err(bytes: &[u8], name: &str, limits: &Limits) -> ExtractError {
    match extract(bytes, name, limits) {
        Ok(doc) => panic!("{name}: expected an error, got {doc:?}"),
        Err(e) => e,
    }
}

fn headings(doc: &ExtractedDocument) -> Vec<(u8, &str, usize)> {
    doc.headings.iter().map(|h| (h.level, h.title.as_str(), h.offset)).collect()
}

#[test]
fn real_pdf_text_per_page() {
    let doc = ok(&data("two-pages.pdf"), "two-pages.pdf");
    assert_eq!(doc.kind, DocumentKind::Pdf);
    assert!(!doc.markdown);
    assert_eq!(doc.text, "Alpha page one text.\n\nThe quick brown fox.\n\nBeta page two text.");
    let pages: Vec<(u32, &str)> =
        doc.pages.iter().map(|p| (p.number, &doc.text[p.start..p.end])).collect();
    assert_eq!(
        pages,
        vec![(1, "Alpha page one text.\n\nThe quick brown fox."), (2, "Beta page two text.")]
    );
    assert_eq!(doc.page_at(doc.text.find("Beta").expect("beta")), Some(2));
    assert!(doc.headings.is_empty());
    // The name does not matter when it does not lie.
    assert_eq!(ok(&data("two-pages.pdf"), "upload").text, doc.text);
}

#[test]
fn encrypted_pdfs() {
    let e = err(&data("encrypted-user-password.pdf"), "secret.pdf", &Limits::default());
    assert_eq!(e.code(), "encrypted");
    assert_eq!(
        e.to_string(),
        "the PDF is password-protected; remove the password and upload it again"
    );
    // Encrypted with an empty user password: opens without one, so the text is extracted.
    let doc = ok(&data("encrypted-owner-only.pdf"), "owner-only.pdf");
    assert_eq!(doc.text, "Alpha page one text.\n\nThe quick brown fox.\n\nBeta page two text.");
    assert_eq!(doc.pages.len(), 2);
}

#[test]
fn scanned_pdf_has_no_text() {
    let e = err(&data("no-text.pdf"), "scan.pdf", &Limits::default());
    assert_eq!(e.code(), "no_text");
    assert_eq!(e.to_string(), "the PDF has no text layer (a scanned document? OCR it first)");
}

#[test]
fn truncated_pdf_is_corrupt() {
    let full = data("two-pages.pdf");
    let e = err(&full[..full.len() * 4 / 10], "cut.pdf", &Limits::default());
    assert_eq!(e.code(), "corrupt_file");
    assert!(
        e.to_string().starts_with("the file is damaged or truncated: cannot parse the PDF ("),
        "{e}"
    );
}

#[test]
fn hand_built_pdfs() {
    let doc = ok(
        &one_page_pdf(&format!("/Parent 2 0 R /MediaBox [0 0 612 792] {RESOURCES}"), "Hand made"),
        "h.pdf",
    );
    assert_eq!(doc.text, "Hand made");
    assert_eq!(doc.pages.len(), 1);
    // No MediaBox: pdf-extract panics on the page; the panic is caught and the page lost.
    let e = err(
        &one_page_pdf(&format!("/Parent 2 0 R {RESOURCES}"), "No box"),
        "nobox.pdf",
        &Limits::default(),
    );
    assert_eq!(e.code(), "corrupt_file");
    assert_eq!(
        e.to_string(),
        "the file is damaged or truncated: cannot read the PDF's pages (the PDF parser panicked: MediaBox)"
    );
}

#[test]
fn deeply_nested_pdf_object_is_bounded_by_lopdf() {
    // lopdf caps nesting at 100 levels, so 200 000 nested arrays neither overflow the stack
    // nor stop the rest of the document from being read.
    let doc = ok(&nested_pdf(200_000), "nested.pdf");
    assert_eq!(doc.text, "Nested");
}

#[test]
fn real_docx_headings_paragraphs_table() {
    let doc = ok(&data("report.docx"), "report.docx");
    assert_eq!(doc.kind, DocumentKind::Docx);
    assert!(doc.markdown);
    assert_eq!(
        doc.text,
        "# Quarterly Report\n\n# Introduction\n\nRagmill reads DOCX files.\n\nBefore tab\tafter tab\nsecond line\n\n\
         ## Details\n\nA table follows.\n\nName | Value\nalpha | 1\n\nThe end."
    );
    assert_eq!(
        headings(&doc),
        vec![(1, "Quarterly Report", 0), (1, "Introduction", 20), (2, "Details", 97)]
    );
    for h in &doc.headings {
        assert!(doc.text[h.offset..].starts_with(&format!(
            "{} {}",
            "#".repeat(h.level.into()),
            h.title
        )));
    }
    assert_eq!(
        doc.heading_path_at(doc.text.find("Name |").expect("table")),
        vec!["Introduction", "Details"]
    );
}

#[test]
fn docx_details() {
    let body = r#"<w:p><w:pPr><w:pStyle w:val="Heading3"/><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t>Deep &amp; &#8364;</w:t></w:r></w:p>
        <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t xml:space="preserve">first </w:t></w:r><w:r><w:t>item</w:t></w:r></w:p>
        <w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t>second</w:t></w:r></w:p>
        <w:p><w:r><w:t>kept</w:t></w:r><w:del><w:r><w:delText>deleted</w:delText></w:r></w:del><w:r><w:instrText>PAGE</w:instrText></w:r></w:p>
        <w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p><w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc><w:tc><w:p/></w:tc><w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#;
    let doc = ok(&docx(body), "d.docx");
    assert_eq!(doc.text, "### Deep & €\n\n- first item\n- second\n\nkept\n\na b |  | c");
    assert_eq!(headings(&doc), vec![(3, "Deep & €", 0)]);
}

#[test]
fn docx_without_text() {
    let e =
        err(&docx("<w:p/><w:p><w:r><w:t>  </w:t></w:r></w:p>"), "blank.docx", &Limits::default());
    assert_eq!((e.code(), e.to_string().as_str()), ("no_text", "the DOCX has no text"));
}

#[test]
fn docx_bomb_default_limits() {
    // 300 MiB of XML deflates to under a mebibyte; the default budget is 256 MiB.
    let t = std::time::Instant::now();
    let bomb = docx_bomb(300 << 20);
    eprintln!("made a {} byte bomb in {:?}", bomb.len(), t.elapsed());
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let e = err(&bomb, "bomb.docx", &Limits::default());
    assert_eq!(e, ExtractError::DecompressionBomb { limit: 256 << 20 });
    assert_eq!(e.code(), "decompression_bomb");
    assert_eq!(e.to_string(), "the archive expands to more than 256 MiB (decompression bomb?)");
}

#[test]
fn docx_bomb_with_lying_sizes_is_bounded_by_the_read() {
    let limits = Limits { max_decompressed_bytes: 1 << 20, ..Limits::default() };
    let mut bomb = docx_bomb(4 << 20);
    // Rewrite every declared uncompressed size of document.xml to 100 bytes: local header
    // (offset 22) and central directory entry (offset 24).
    let name = b"word/document.xml";
    let mut patched = 0;
    for sig_pos in 0..bomb.len().saturating_sub(46) {
        let sig = &bomb[sig_pos..sig_pos + 4];
        let (size_at, name_at) = match sig {
            b"PK\x03\x04" => (sig_pos + 22, sig_pos + 30),
            b"PK\x01\x02" => (sig_pos + 24, sig_pos + 46),
            _ => continue,
        };
        if bomb.get(name_at..name_at + name.len()) == Some(name) {
            bomb[size_at..size_at + 4].copy_from_slice(&100u32.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let e = err(&bomb, "liar.docx", &limits);
    // The zip crate stops at the declared size, the CRC then fails: a damaged file, not 4 MiB
    // of memory.
    assert_eq!(e.code(), "corrupt_file", "{e}");
}

#[test]
fn docx_bomb_small_limit() {
    let limits = Limits { max_decompressed_bytes: 1 << 20, ..Limits::default() };
    let e = err(&docx_bomb(2 << 20), "bomb.docx", &limits);
    assert_eq!(e, ExtractError::DecompressionBomb { limit: 1 << 20 });
}

#[test]
fn zips_that_are_not_docx() {
    let z = zip(&[("hello.txt", b"hello")]);
    let e = err(&z, "archive.zip", &Limits::default());
    assert_eq!(e.code(), "unsupported_type");
    assert_eq!(
        e.to_string(),
        "unsupported file type: a ZIP archive that is not a Word document (no word/document.xml)"
    );
    let e = err(&z, "report.docx", &Limits::default());
    assert_eq!(
        e,
        ExtractError::TypeMismatch {
            named: "DOCX".into(),
            detected: "a ZIP archive that is not a Word document (no word/document.xml)".into()
        }
    );
    let xlsx = zip(&[("xl/workbook.xml", b"<workbook/>")]);
    assert_eq!(
        err(&xlsx, "book.xlsx", &Limits::default()).to_string(),
        "unsupported file type: an Excel workbook (.xlsx)"
    );
}

#[test]
fn lying_names() {
    let e = err(b"Just some notes, not a PDF at all.", "report.pdf", &Limits::default());
    assert_eq!(e.to_string(), "the name says PDF but the content is plain text");
    assert_eq!(e.code(), "type_mismatch");
    let e = err(&data("two-pages.pdf"), "notes.txt", &Limits::default());
    assert_eq!(
        e,
        ExtractError::TypeMismatch { named: "plain text".into(), detected: "a PDF".into() }
    );
    let e = err(&data("report.docx"), "page.html", &Limits::default());
    assert_eq!(
        e,
        ExtractError::TypeMismatch { named: "HTML".into(), detected: "a DOCX document".into() }
    );
    let e = err(&data("two-pages.pdf"), "report.docx", &Limits::default());
    assert_eq!(e.to_string(), "the name says DOCX but the content is a PDF");
    let e = err(&junk(4096, 7), "scan.pdf", &Limits::default());
    assert_eq!(
        e.to_string(),
        "the name says PDF but the content is binary data, not text or a known document format"
    );
    assert_eq!(detect(&data("report.docx"), "no-extension").ok(), Some(DocumentKind::Docx));
}

#[test]
fn empty_and_junk() {
    assert_eq!(err(b"", "x.txt", &Limits::default()), ExtractError::Empty);
    assert_eq!(err(b" \n\t \r\n", "x.md", &Limits::default()), ExtractError::Empty);
    assert_eq!(err(b"", "x.txt", &Limits::default()).to_string(), "the file is empty");
    let e = err(&junk(64 * 1024, 42), "data", &Limits::default());
    assert_eq!(
        e.to_string(),
        "unsupported file type: binary data, not text or a known document format"
    );
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(junk(512, 3));
    assert_eq!(
        err(&png, "photo", &Limits::default()).to_string(),
        "unsupported file type: PNG image (png)"
    );
}

#[test]
fn too_large() {
    let limits = Limits { max_input_bytes: 10, ..Limits::default() };
    let e = err(b"hello world, this is long", "x.txt", &limits);
    assert_eq!(e, ExtractError::TooLarge { size: 25, limit: 10 });
    assert_eq!(e.code(), "file_too_large");
}

#[test]
fn decoded_text_and_html_elements_are_capped() {
    // Latin-1 grows in UTF-8: 60 bytes in, 72 out.
    let latin1 = [b"caf\xe9 ".as_slice(); 12].concat();
    let limits = Limits { max_text_bytes: 70, ..Limits::default() };
    let e = err(&latin1, "menu.txt", &limits);
    assert_eq!(e, ExtractError::TextTooLarge { size: 72, limit: 70 });
    assert_eq!(e.code(), "text_too_large");
    // Every format's output is capped, a PDF's included.
    let limits = Limits { max_text_bytes: 3, ..Limits::default() };
    assert_eq!(err(&data("two-pages.pdf"), "t.pdf", &limits).code(), "text_too_large");
    // A flat page of a million tiny elements is refused before html5ever builds its tree.
    let flat = format!("<html><body>{}</body></html>", "<b>x</b>".repeat(1_000_001));
    let e = err(flat.as_bytes(), "flat.html", &Limits::default());
    assert_eq!(e.code(), "too_complex");
    assert_eq!(
        e.to_string(),
        "the document is too complex to read: the HTML has more than 1000000 elements"
    );
}

#[test]
fn html_fixture() {
    let doc = ok(&data("page.html"), "page.html");
    assert_eq!(doc.kind, DocumentKind::Html);
    assert!(doc.markdown);
    assert_eq!(
        doc.text,
        "# Main Title\n\nFirst paragraph with bold text.\n\n## Section\n\n- one\n- two\n\nA | B\n1 | 2\n\n  keep\n    this"
    );
    assert_eq!(headings(&doc), vec![(1, "Main Title", 0), (2, "Section", 47)]);
    // Content decides: the same bytes under a neutral name are still HTML.
    assert_eq!(ok(&data("page.html"), "download").kind, DocumentKind::Html);
    // Absurd nesting is refused before html5ever (quadratic in depth) sees it.
    let deep = format!("<html><body>{}x</body></html>", "<div>".repeat(100_000));
    let e = err(deep.as_bytes(), "deep.html", &Limits::default());
    assert_eq!(
        e.to_string(),
        "the document is too complex to read: the HTML nests elements more than 2048 deep"
    );
    let e = err(
        b"<html><head><script>x()</script></head><body> </body></html>",
        "s.html",
        &Limits::default(),
    );
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("no_text", "the HTML page has no visible text")
    );
}

#[test]
fn markdown_fixture() {
    let doc = ok(&data("notes.md"), "notes.md");
    assert_eq!(doc.kind, DocumentKind::Markdown);
    assert_eq!(
        doc.text,
        "# Title\n\nIntro text.\n\n## Part `one`\n\nBody.\n\n### Deep *three*\n\nMore.\n"
    );
    assert_eq!(headings(&doc), vec![(1, "Title", 0), (2, "Part one", 22), (3, "Deep three", 44)]);
    assert_eq!(doc.heading_path_at(50), vec!["Title", "Part one", "Deep three"]);
}

#[test]
fn encodings() {
    let doc = ok(&data("latin1.txt"), "latin1.txt");
    assert_eq!(doc.kind, DocumentKind::Text);
    assert!(!doc.markdown);
    assert_eq!(
        doc.text,
        "Café crème brûlée à la façon du château, très appréciée.\nDéjà vu: naïve façade, été à München.\n"
    );
    let doc = ok(&data("utf16le-bom.txt"), "utf16.txt");
    assert_eq!(doc.text, "Hello UTF-16 über\nline two\n");
    // UTF-16BE with a BOM, made here.
    let mut be = vec![0xFE, 0xFF];
    be.extend("# Überschrift\n\nText".encode_utf16().flat_map(|u| u.to_be_bytes()));
    let doc = ok(&be, "be.md");
    assert_eq!((doc.kind, doc.text.as_str()), (DocumentKind::Markdown, "# Überschrift\n\nText"));
    assert_eq!(headings(&doc), vec![(1, "Überschrift", 0)]);
}

/// Prefixes that `infer` takes for a binary format's magic number but that text starts with.
const WEAK_MAGIC: &[&str] = &[
    "BMI and blood pressure",
    "BMAL1 regulates the circadian clock",
    "ID3 tags hold an MP3's title",
    "MZ is the DOS header's signature",
    "GIF8 is how every GIF begins",
    "%! marks a PostScript program",
    "{\\rtf is how RTF opens",
    "OggS pages carry Vorbis audio",
    "fLaC streams are lossless",
    "MThd starts a MIDI file",
    "BZh9 is a bzip2 header",
    "8BPS is a Photoshop file",
    "CWS and FWS are Flash files",
    "FWS is the uncompressed one",
    "Cr24 is a Chrome extension",
    "MSCF is a cabinet archive",
    "LZIP files are compressed",
    "!<arch> opens an ar archive",
    "SQLite format 3 is the database header",
];

#[test]
fn text_starting_like_a_magic_number_is_text() {
    for prefix in WEAK_MAGIC {
        let body = format!("{prefix}.\n\nA second paragraph, café and 日本.\n");
        for (name, kind) in
            [("notes.txt", DocumentKind::Text), ("notes.md", DocumentKind::Markdown)]
        {
            let doc = ok(body.as_bytes(), name);
            assert_eq!((doc.kind, doc.text.as_str()), (kind, body.as_str()), "{name}: {prefix}");
        }
        // The same in a legacy encoding (é as one Latin-1 byte).
        let latin1: Vec<u8> =
            format!("{prefix}, caf\u{e9}.\n").chars().map(|c| c as u32 as u8).collect();
        assert_eq!(ok(&latin1, "notes.txt").kind, DocumentKind::Text, "latin-1: {prefix}");
    }
    // Binary formats' signatures never make text binary, whatever the name.
    assert_eq!(detect(b"BMI and blood pressure", "upload").ok(), Some(DocumentKind::Text));
    // Text formats' full signatures still mark an unnamed file as unsupported.
    assert_eq!(
        detect(b"{\\rtf1\\ansi hello}", "upload").map_err(|e| e.code()),
        Err("unsupported_type")
    );
    assert_eq!(
        detect(b"%!PS-Adobe-3.0\n", "upload").map_err(|e| e.code()),
        Err("unsupported_type")
    );
}

#[test]
fn text_quoting_a_pdf_header_is_text() {
    let body = "Every PDF starts with %PDF- and a version, such as %PDF-1.7.\n";
    for name in ["quote.txt", "quote.md", "upload"] {
        assert_ne!(detect(body.as_bytes(), name).ok(), Some(DocumentKind::Pdf), "{name}");
        assert_eq!(ok(body.as_bytes(), name).text, body);
    }
}

#[test]
fn binary_files_with_signatures_are_still_refused() {
    let unsupported = |bytes: &[u8], name: &str| {
        let e = err(bytes, name, &Limits::default());
        assert!(matches!(e.code(), "unsupported_type" | "type_mismatch"), "{name}: {e}");
    };
    let with_junk = |head: &[u8]| [head, &junk(2048, 9)].concat();
    let mut bmp = b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00".to_vec();
    bmp.extend(junk(512, 1));
    for (bytes, what) in [
        (bmp, "bmp"),
        (with_junk(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"), "exe"),
        (with_junk(b"ID3\x03\x00\x00\x00\x00\x0f\x76"), "mp3"),
        (with_junk(b"GIF89a\x10\x00\x10\x00\xf7\x00"), "gif"),
        (with_junk(b"SQLite format 3\x00\x10\x00"), "sqlite"),
        (with_junk(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "png"),
    ] {
        for name in ["upload", "notes.txt", "notes.md"] {
            unsupported(&bytes, &format!("{name} ({what})"));
        }
    }
    let e = err(&zip(&[("a.txt", b"hi")]), "notes.txt", &Limits::default());
    assert_eq!(e.code(), "unsupported_type");
    // Real PDFs: at offset 0, after a BOM and whitespace, or after a junk prefix.
    let pdf = data("two-pages.pdf");
    for prefix in [&b""[..], b"\xef\xbb\xbf", b"\r\n  \n", b"HTTP/1.1 200 OK\r\n\r\n"] {
        let bytes = [prefix, &pdf[..]].concat();
        assert_eq!(detect(&bytes, "upload").ok(), Some(DocumentKind::Pdf), "{prefix:?}");
        let e = err(&bytes, "notes.txt", &Limits::default());
        assert_eq!(e.to_string(), "the name says plain text but the content is a PDF");
    }
}

mod arbitrary_bytes {
    use proptest::prelude::*;
    use ragmill_extract::{Limits, detect, extract};

    /// Text-ish bytes with a signature or two mixed in, and plain noise.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let head = prop::sample::select(vec![
            &b""[..],
            b"%PDF-1.4\n",
            b"BM",
            b"MZ",
            b"ID3",
            b"PK\x03\x04",
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b"{\\rtf1",
            b"<html>",
            b"# ",
        ]);
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            ".{0,512}".prop_map(String::into_bytes),
        ];
        (head, body).prop_map(|(h, b)| [h, &b[..]].concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn detect_and_extract_never_panic(bytes in bytes(), name in "(x|a\\.txt|a\\.md|a\\.pdf|a\\.html|a\\.docx)") {
            let detected = detect(&bytes, &name);
            let extracted = extract(&bytes, &name, &Limits::default());
            // Whatever extract reads, detect agrees it is readable.
            if let Ok(doc) = &extracted {
                prop_assert!(detected.is_ok(), "{:?}", detected);
                prop_assert!(!doc.text.trim().is_empty());
            }
            if let Err(e) = &extracted {
                prop_assert!(!e.code().is_empty());
            }
        }
    }
}
