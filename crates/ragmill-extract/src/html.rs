//! HTML: visible text rendered as Markdown-like text.

use scraper::{Html, Node};

use crate::render::MarkdownWriter;
use ragmill_core::Heading;

/// Elements whose whole subtree is not visible text.
const SKIPPED: &[&str] = &[
    "head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "nav", "footer", "aside", "button", "select", "option", "textarea", "datalist",
    "input", "dialog", "map", "audio", "video", "picture", "source", "track",
];

/// Elements that start a block separated by a blank line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "table",
    "figure",
    "figcaption",
    "address",
    "hr",
    "fieldset",
    "details",
    "summary",
    "form",
    "caption",
    "center",
    "body",
    "html",
    "legend",
    "hgroup",
];

/// Deepest element nesting accepted: html5ever's cost grows with the square of the depth of
/// open elements such as `div`, so 100 000 of them would take minutes.
pub(crate) const MAX_DEPTH: usize = 2048;

/// Most elements accepted: html5ever's tree costs a few hundred bytes per element, so 64 MiB of
/// `<b>` tags would need gigabytes. A million elements is ten times a large real page.
pub(crate) const MAX_ELEMENTS: usize = 1_000_000;

/// Elements without content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen", "image", "basefont", "bgsound", "frame",
];

/// Elements whose end tag may be left out, which a tag count cannot follow.
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "tbody", "thead", "tfoot",
    "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body",
];

/// Elements whose content is raw text up to their end tag.
const RAW_TEXT: &[&str] =
    &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"];

/// What a tag count tells about a page before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Approximate deepest element nesting.
    pub(crate) depth: usize,
    /// Opening tags.
    pub(crate) elements: usize,
}

/// Approximate element nesting depth.
#[cfg(test)]
fn approximate_depth(source: &str) -> usize {
    shape(source).depth
}

/// Nesting depth and element count, by counting tags without building a tree (linear time).
pub(crate) fn shape(source: &str) -> Shape {
    let bytes = source.as_bytes();
    let (mut depth, mut max, mut elements) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        if bytes[i..].starts_with(b"!--") {
            i = find_from(bytes, i, b"-->").map_or(bytes.len(), |p| p + 3);
            continue;
        }
        let closing = bytes.get(i) == Some(&b'/');
        let name_start = if closing { i + 1 } else { i };
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = source[name_start..name_start + name_len].to_ascii_lowercase();
        let Some(end) = bytes[name_start..].iter().position(|&b| b == b'>').map(|p| name_start + p)
        else {
            break;
        };
        i = end + 1;
        elements += usize::from(!closing);
        if VOID.contains(&name.as_str()) || OPTIONAL_END.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if bytes[end - 1] != b'/' {
            depth += 1;
            max = max.max(depth);
            if RAW_TEXT.contains(&name.as_str()) {
                // Skip to the end tag (ASCII case-insensitively), which closes it.
                let close = format!("</{name}");
                i = bytes[i..]
                    .windows(close.len())
                    .position(|w| w.eq_ignore_ascii_case(close.as_bytes()))
                    .map_or(bytes.len(), |p| i + p);
            }
        }
    }
    Shape { depth: max, elements }
}

fn find_from(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

/// Whether text looks like an HTML document.
pub(crate) fn looks_like_html(text: &str) -> bool {
    let head: String =
        text.trim_start().chars().take(2048).collect::<String>().to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<html")
        || head.contains("<body")
        || (head.starts_with("<?xml") && head.contains("<html"))
}

/// Whether text has something that looks like a tag.
pub(crate) fn has_tags(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// Renders the visible text of an HTML document.
pub(crate) fn render(source: &str) -> (String, Vec<Heading>) {
    let html = Html::parse_document(source);
    let mut has_h1 = false;
    let mut title: Option<String> = None;
    for node in html.tree.nodes() {
        if let Node::Element(el) = node.value() {
            match el.name() {
                "h1" => has_h1 = true,
                "title" if title.is_none() => {
                    let t: String = node
                        .descendants()
                        .filter_map(|d| d.value().as_text().map(|t| t.to_string()))
                        .collect();
                    let t = crate::text::collapse_whitespace(&t);
                    if !t.is_empty() {
                        title = Some(t);
                    }
                }
                _ => {}
            }
        }
    }

    let mut w = MarkdownWriter::new();
    if let (false, Some(title)) = (has_h1, &title) {
        w.heading(1, title);
    }

    // Iterative depth-first walk: nesting depth costs no stack.
    let mut walker =
        Walker { w, pre_depth: 0, list_depth: 0, cell_depth: 0, row_cells: Vec::new() };
    let root = html.tree.root();
    let mut node = root;
    'walk: loop {
        let descend = walker.open(node.value());
        if descend {
            if let Some(child) = node.first_child() {
                node = child;
                continue;
            }
            walker.close(node.value());
        }
        loop {
            if node.id() == root.id() {
                break 'walk;
            }
            if let Some(sibling) = node.next_sibling() {
                node = sibling;
                continue 'walk;
            }
            match node.parent() {
                Some(parent) => {
                    node = parent;
                    walker.close(node.value());
                }
                None => break 'walk,
            }
        }
    }
    walker.w.finish()
}

struct Walker {
    w: MarkdownWriter,
    pre_depth: usize,
    list_depth: usize,
    cell_depth: usize,
    /// Cells opened so far in each open table row.
    row_cells: Vec<usize>,
}

impl Walker {
    fn block(&mut self, n: usize) {
        if self.cell_depth > 0 {
            self.w.inline(" ");
        } else {
            self.w.want_break(n);
        }
    }

    /// Handles an opening node; false means its subtree is skipped.
    fn open(&mut self, node: &Node) -> bool {
        match node {
            Node::Text(t) => {
                if self.pre_depth > 0 && !self.w.in_heading() {
                    self.w.verbatim(t);
                } else {
                    self.w.inline(t);
                }
                true
            }
            Node::Element(el) => {
                let name = el.name();
                let hidden = el.attr("hidden").is_some()
                    || el.attr("aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                if hidden || SKIPPED.contains(&name) {
                    return false;
                }
                match name {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        let level = name.as_bytes()[1] - b'0';
                        if self.cell_depth > 0 {
                            self.w.inline(" ");
                        } else {
                            self.w.begin_heading(level);
                        }
                    }
                    "br" => {
                        if self.cell_depth > 0 {
                            self.w.inline(" ");
                        } else {
                            self.w.line_break();
                        }
                    }
                    "pre" => {
                        self.block(2);
                        self.pre_depth += 1;
                    }
                    "ul" | "ol" => {
                        self.block(if self.list_depth > 0 { 1 } else { 2 });
                        self.list_depth += 1;
                    }
                    "li" | "dt" | "dd" => {
                        self.block(1);
                        if name == "li" && self.cell_depth == 0 && !self.w.in_heading() {
                            self.w.marker("- ");
                        }
                    }
                    "tr" => {
                        if self.cell_depth == 0 {
                            self.w.want_break(1);
                        }
                        self.row_cells.push(0);
                    }
                    "td" | "th" => {
                        if let Some(count) = self.row_cells.last_mut() {
                            if *count > 0 && self.cell_depth == 0 {
                                self.w.marker(" | ");
                            }
                            *count += 1;
                        }
                        self.cell_depth += 1;
                    }
                    _ if BLOCKS.contains(&name) => self.block(2),
                    _ => {}
                }
                true
            }
            Node::Document | Node::Fragment => true,
            _ => false,
        }
    }

    fn close(&mut self, node: &Node) {
        let Node::Element(el) = node else { return };
        let name = el.name();
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if self.cell_depth == 0 => {
                self.w.end_heading();
            }
            "pre" => {
                self.pre_depth = self.pre_depth.saturating_sub(1);
                self.block(2);
            }
            "ul" | "ol" => {
                self.list_depth = self.list_depth.saturating_sub(1);
                self.block(if self.list_depth > 0 { 1 } else { 2 });
            }
            "tr" => {
                self.row_cells.pop();
                if self.cell_depth == 0 {
                    self.w.want_break(1);
                }
            }
            "td" | "th" => self.cell_depth = self.cell_depth.saturating_sub(1),
            _ if BLOCKS.contains(&name) => self.block(2),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_visible_text_as_markdown() {
        let src = "<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body>\
            <nav>menu</nav><script>var a = 1;</script>\
            <h1>Main <em>Title</em></h1><p>One   two<br>three</p>\
            <div hidden>secret</div><span aria-hidden=\"true\">icon</span>\
            <h2>Lists</h2><ul><li>a</li><li>b<ul><li>b1</li></ul></li></ul>\
            <table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td><p>2</p></td></tr></table>\
            <pre>  x\n    y</pre><p>after &amp; done</p><footer>foot</footer></body></html>";
        let (text, headings) = render(src);
        assert_eq!(
            text,
            "# Main Title\n\nOne two\nthree\n\n## Lists\n\n- a\n- b\n- b1\n\nA | B\n1 | 2\n\n  x\n    y\n\nafter & done"
        );
        let got: Vec<(u8, &str, usize)> =
            headings.iter().map(|h| (h.level, h.title.as_str(), h.offset)).collect();
        assert_eq!(got, vec![(1, "Main Title", 0), (2, "Lists", 29)]);
        assert!(text[29..].starts_with("## Lists"));
    }

    #[test]
    fn title_becomes_heading_without_h1_and_nesting_is_harmless() {
        let (text, headings) =
            render("<html><head><title> Page  Name </title></head><body><p>x</p></body></html>");
        assert_eq!(text, "# Page Name\n\nx");
        assert_eq!(headings.len(), 1);
        let deep = format!(
            "<html><body>{}deep{}</body></html>",
            "<div>".repeat(1000),
            "</div>".repeat(1000)
        );
        assert_eq!(render(&deep).0, "deep");
        assert_eq!(approximate_depth(&deep), 1000);
    }

    #[test]
    fn depth_estimate_ignores_void_optional_raw_and_comments() {
        let src = "<html><body><div><p>a<p>b<br><img src=x/><ul><li>1<li>2</ul>\
            <script>if (a<div) x = '<div><div><div>';</script><!-- <div><div> --><div/></div></body></html>";
        assert_eq!(approximate_depth(src), 2);
        assert_eq!(approximate_depth(&"<div>".repeat(100_000)), 100_000);
        assert_eq!(approximate_depth("a < b > c <"), 0);
        assert_eq!(shape(src).elements, 12);
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_html("\n<!DOCTYPE html>\n<p>x"));
        assert!(looks_like_html("<HTML><BODY>x"));
        assert!(!looks_like_html("a < b and c > d"));
        assert!(has_tags("x <p>y"));
        assert!(!has_tags("a < b"));
    }
}
