//! DOCX: word/document.xml rendered as Markdown-like text, with a decompression budget.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use ragmill_core::{DocumentKind, ExtractedDocument};
use zip::ZipArchive;

use crate::render::MarkdownWriter;
use crate::{ExtractError, Limits};

pub(crate) const DOCUMENT_XML: &str = "word/document.xml";
const STYLES_XML: &str = "word/styles.xml";

/// Extracts a DOCX.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<ExtractedDocument, ExtractError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::corrupt(format!("cannot open the DOCX archive ({e})")))?;
    let limit = limits.max_decompressed_bytes;
    let bomb = || ExtractError::DecompressionBomb { limit };

    // Declared sizes first: cheap, and catches honest bombs before inflating anything.
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| ExtractError::corrupt(format!("bad DOCX archive entry ({e})")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limit {
        return Err(bomb());
    }

    // Then actual reads, bounded, in case the declared sizes lie.
    let mut budget = limit;
    let document = read_entry(&mut archive, DOCUMENT_XML, &mut budget)?
        .ok_or_else(|| ExtractError::corrupt("the DOCX has no word/document.xml"))?
        .ok_or_else(bomb)?;
    let styles = match read_entry(&mut archive, STYLES_XML, &mut budget)? {
        Some(Some(xml)) => heading_styles(&xml),
        Some(None) => return Err(bomb()),
        None => HashMap::new(),
    };
    let (text, headings) = render(&document, &styles)?;
    if text.is_empty() {
        return Err(ExtractError::NoText { detail: "the DOCX has no text".into() });
    }
    Ok(ExtractedDocument {
        kind: DocumentKind::Docx,
        text,
        markdown: true,
        headings,
        pages: Vec::new(),
    })
}

/// Reads one entry within `budget`: None if absent, Some(None) if over budget.
fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
) -> Result<Option<Option<String>>, ExtractError> {
    let Some(index) = archive.index_for_name(name) else { return Ok(None) };
    let entry = archive
        .by_index(index)
        .map_err(|e| ExtractError::corrupt(format!("cannot read {name} ({e})")))?;
    if entry.size() > *budget {
        return Ok(Some(None));
    }
    let mut data = Vec::with_capacity(usize::try_from(entry.size().min(16 << 20)).unwrap_or(0));
    entry.take(budget.saturating_add(1)).read_to_end(&mut data).map_err(|e| match e.kind() {
        std::io::ErrorKind::OutOfMemory => {
            ExtractError::crashed(format!("out of memory inflating {name}"))
        }
        _ => ExtractError::corrupt(format!("cannot inflate {name} ({e})")),
    })?;
    let got = data.len() as u64;
    if got > *budget {
        return Ok(Some(None));
    }
    *budget -= got;
    // UTF-8 (BOM or not) or UTF-16 with a BOM, as XML allows.
    let (text, _, _) = encoding_rs::UTF_8.decode(&data);
    Ok(Some(Some(text.into_owned())))
}

/// Maps paragraph style ids to heading levels: built-in ids ("Heading1", "Title"), style names
/// ("heading 1", which localised Word keeps), and outline levels.
fn heading_styles(xml: &str) -> HashMap<String, u8> {
    let mut map = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<(String, Option<u8>)> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match local(&e).as_str() {
                "style" => {
                    current = attr(&e, "styleId").map(|id| (id, None));
                }
                "name" => {
                    if let (Some((_, level)), Some(name)) = (current.as_mut(), attr(&e, "val"))
                        && let Some(l) = level_from_style(&name.replace(' ', ""))
                    {
                        *level = Some(l);
                    }
                }
                "outlineLvl" => {
                    if let (Some((_, level @ None)), Some(v)) = (current.as_mut(), attr(&e, "val"))
                        && let Ok(n) = v.parse::<u8>()
                        && n < 6
                    {
                        *level = Some(n + 1);
                    }
                }
                _ => {}
            },
            Ok(Event::End(e)) => {
                if e.local_name().as_ref() == "style"
                    && let Some((id, Some(level))) = current.take()
                {
                    map.insert(id, level);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    map
}

fn level_from_style(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let n = lower.strip_prefix("heading")?.parse::<u8>().ok()?;
    (1..=6).contains(&n).then_some(n)
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

fn attr(e: &BytesStart<'_>, local_name: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local_name)
        .map(|a| a.value.into_owned())
}

/// A paragraph being collected.
#[derive(Default)]
struct Para {
    text: String,
    style: Option<String>,
    list: bool,
}

/// One table being collected: rows of cells.
#[derive(Default)]
struct Table {
    rows: Vec<String>,
    cells: Vec<String>,
    cell: String,
}

/// Walks document.xml. Depth is tracked with counters and stacks on the heap, never recursion.
fn render(
    xml: &str,
    styles: &HashMap<String, u8>,
) -> Result<(String, Vec<ragmill_core::Heading>), ExtractError> {
    let mut w = MarkdownWriter::new();
    let mut reader = Reader::from_str(xml);
    let mut paras: Vec<Para> = Vec::new();
    let mut tables: Vec<Table> = Vec::new();
    let mut run_depth = 0usize;
    let mut in_text = false;
    let mut in_ppr = 0usize;
    // Subtrees whose text is not document text (fallbacks, deleted text, field codes).
    let mut skip_depth = 0usize;
    let mut last_was_list = false;

    loop {
        let event = reader.read_event().map_err(|e| {
            ExtractError::corrupt(format!(
                "bad XML in word/document.xml at byte {} ({e})",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(e) => {
                let name = local(&e);
                if skip_depth > 0 {
                    skip_depth += 1;
                    continue;
                }
                match name.as_str() {
                    "Fallback" | "delText" | "instrText" | "del" | "footnoteReference" => {
                        skip_depth = 1
                    }
                    "p" => paras.push(Para::default()),
                    "pPr" => in_ppr += 1,
                    "r" => run_depth += 1,
                    "t" if run_depth > 0 => in_text = true,
                    "tbl" => tables.push(Table::default()),
                    "tr" => {
                        if let Some(t) = tables.last_mut() {
                            t.cells.clear();
                        }
                    }
                    "tc" => {
                        if let Some(t) = tables.last_mut() {
                            t.cell.clear();
                        }
                    }
                    _ => on_empty_like(&name, &e, &mut paras, run_depth, in_ppr),
                }
            }
            Event::Empty(e) => {
                if skip_depth > 0 {
                    continue;
                }
                on_empty_like(&local(&e), &e, &mut paras, run_depth, in_ppr);
            }
            Event::Text(t) => {
                if in_text
                    && skip_depth == 0
                    && let Some(p) = paras.last_mut()
                {
                    p.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if in_text
                    && skip_depth == 0
                    && let Some(p) = paras.last_mut()
                {
                    p.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) if in_text && skip_depth == 0 => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => quick_xml::escape::resolve_predefined_entity(&r).map(str::to_owned),
                };
                if let (Some(p), Some(s)) = (paras.last_mut(), resolved) {
                    p.text.push_str(&s);
                }
            }
            Event::End(e) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                match e.local_name().as_ref() {
                    "t" => in_text = false,
                    "r" => run_depth = run_depth.saturating_sub(1),
                    "pPr" => in_ppr = in_ppr.saturating_sub(1),
                    "p" => {
                        let Some(para) = paras.pop() else { continue };
                        if let Some(outer) = paras.last_mut() {
                            // A paragraph inside a paragraph (text box): inline it.
                            outer.text.push(' ');
                            outer.text.push_str(para.text.trim());
                        } else if let Some(table) = tables.last_mut() {
                            let t = crate::text::collapse_whitespace(&para.text);
                            if !t.is_empty() {
                                if !table.cell.is_empty() {
                                    table.cell.push(' ');
                                }
                                table.cell.push_str(&t);
                            }
                        } else {
                            emit_paragraph(&mut w, &para, styles, &mut last_was_list);
                        }
                    }
                    "tc" => {
                        if let Some(t) = tables.last_mut() {
                            let cell = std::mem::take(&mut t.cell);
                            t.cells.push(cell);
                        }
                    }
                    "tr" => {
                        if let Some(t) = tables.last_mut() {
                            let cells = std::mem::take(&mut t.cells);
                            if cells.iter().any(|c| !c.is_empty()) {
                                t.rows.push(cells.join(" | "));
                            }
                        }
                    }
                    "tbl" => {
                        let Some(table) = tables.pop() else { continue };
                        if let Some(outer) = tables.last_mut() {
                            // Nested table: flatten into the enclosing cell.
                            if !outer.cell.is_empty() && !table.rows.is_empty() {
                                outer.cell.push(' ');
                            }
                            outer.cell.push_str(&table.rows.join("; "));
                        } else if !table.rows.is_empty() {
                            w.want_break(2);
                            for (i, row) in table.rows.iter().enumerate() {
                                if i > 0 {
                                    w.line_break();
                                }
                                w.verbatim(row);
                            }
                            w.want_break(2);
                            last_was_list = false;
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(w.finish())
}

/// Elements that matter whether written as `<x/>` or `<x>…</x>`.
fn on_empty_like(
    name: &str,
    e: &BytesStart<'_>,
    paras: &mut [Para],
    run_depth: usize,
    in_ppr: usize,
) {
    let Some(p) = paras.last_mut() else { return };
    match name {
        "pStyle" if in_ppr > 0 => p.style = attr(e, "val"),
        "numPr" if in_ppr > 0 => p.list = true,
        "tab" if run_depth > 0 && in_ppr == 0 => p.text.push('\t'),
        "br" | "cr" if run_depth > 0 => p.text.push('\n'),
        "noBreakHyphen" if run_depth > 0 => p.text.push('-'),
        _ => {}
    }
}

fn emit_paragraph(
    w: &mut MarkdownWriter,
    para: &Para,
    styles: &HashMap<String, u8>,
    last_was_list: &mut bool,
) {
    let text = para.text.trim();
    if text.is_empty() {
        return;
    }
    let level =
        para.style.as_deref().and_then(|s| styles.get(s).copied().or_else(|| level_from_style(s)));
    if let Some(level) = level {
        w.heading(level, text);
        *last_was_list = false;
        return;
    }
    w.want_break(if para.list && *last_was_list { 1 } else { 2 });
    if para.list {
        w.marker("- ");
    }
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            w.line_break();
        }
        w.verbatim(line.trim_end());
    }
    *last_was_list = para.list;
}
