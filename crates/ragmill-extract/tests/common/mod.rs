//! Helpers shared by the integration tests: fixtures and hand-built hostile files.
#![allow(dead_code, missing_docs)]

use std::io::Write;
use std::path::PathBuf;

use zip::write::SimpleFileOptions;

pub fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A PDF from object bodies (numbered from 1, object 1 the catalog), with a correct xref table.
pub fn pdf(objects: &[String]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

pub fn stream(content: &str) -> String {
    format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len())
}

/// One page showing `text` in Helvetica; `page` is the page dictionary's extra entries.
pub fn one_page_pdf(page_extra: &str, text: &str) -> Vec<u8> {
    pdf(&[
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        format!("<< /Type /Page {page_extra} /Contents 4 0 R >>"),
        stream(&format!("BT /F1 12 Tf 72 712 Td ({text}) Tj ET")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
    ])
}

pub const RESOURCES: &str = "/Resources << /Font << /F1 5 0 R >> >>";

/// A page whose /Parent is itself and which has no /Resources: pdf-extract's inherited-attribute
/// lookup follows it forever (a tail call, compiled to an endless loop).
pub fn self_parent_pdf() -> Vec<u8> {
    one_page_pdf("/Parent 3 0 R /MediaBox [0 0 612 792]", "Loop")
}

/// A page drawing a form XObject that draws itself: pdf-extract recurses until the stack overflows.
pub fn xobject_loop_pdf() -> Vec<u8> {
    pdf(&[
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X 5 0 R >> >> /Contents 4 0 R >>".into(),
        stream("/X Do"),
        format!(
            "<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X 5 0 R >> >> /Length {} >>\nstream\n/X Do\nendstream",
            "/X Do".len()
        ),
    ])
}

/// A PDF with an object nested `depth` arrays deep.
pub fn nested_pdf(depth: usize) -> Vec<u8> {
    pdf(&[
        "<< /Type /Catalog /Pages 2 0 R /Nested 6 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] {RESOURCES} /Contents 4 0 R >>"
        ),
        stream("BT /F1 12 Tf 72 712 Td (Nested) Tj ET"),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
    ])
}

/// A zip with the given entries, deflated.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        w.start_file(*name, options).expect("zip entry");
        w.write_all(body).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// A DOCX whose word/document.xml is `size` bytes of a repeated paragraph, streamed into the
/// deflater a mebibyte at a time.
pub fn docx_bomb(size: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(size > u32::MAX as usize);
    w.start_file("[Content_Types].xml", options).expect("entry");
    w.write_all(b"<Types/>").expect("write");
    w.start_file("word/document.xml", options).expect("entry");
    let chunk = "<w:p><w:r><w:t>bomb</w:t></w:r></w:p>".repeat(1 << 20 >> 5);
    let mut written = 0;
    while written < size {
        let n = chunk.len().min(size - written);
        w.write_all(&chunk.as_bytes()[..n]).expect("write");
        written += n;
    }
    w.finish().expect("zip finish").into_inner()
}

/// A small DOCX from a document.xml body.
pub fn docx(body: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", xml.as_bytes())])
}

/// Deterministic junk.
pub fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
