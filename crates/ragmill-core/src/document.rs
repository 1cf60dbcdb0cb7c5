//! Documents as extraction leaves them and chunks as the chunker cuts them.

use serde::{Deserialize, Serialize};

/// A document format ragmill understands, as detected from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// Plain text in any encoding.
    Text,
    /// CommonMark / GitHub-flavoured Markdown.
    Markdown,
    /// An HTML page.
    Html,
    /// A PDF with a text layer.
    Pdf,
    /// An Office Open XML word-processing document.
    Docx,
}

impl DocumentKind {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Text => "text",
            DocumentKind::Markdown => "markdown",
            DocumentKind::Html => "html",
            DocumentKind::Pdf => "pdf",
            DocumentKind::Docx => "docx",
        }
    }

    /// Parses [`DocumentKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "text" => DocumentKind::Text,
            "markdown" => DocumentKind::Markdown,
            "html" => DocumentKind::Html,
            "pdf" => DocumentKind::Pdf,
            "docx" => DocumentKind::Docx,
            _ => return None,
        })
    }
}

/// A heading found in a document: its level (1 = top) and where it starts in the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 for a title, 2 for a section, and so on down to 6.
    pub level: u8,
    /// The heading's text, without markup.
    pub title: String,
    /// Byte offset of the heading in [`ExtractedDocument::text`].
    pub offset: usize,
}

/// Where one page's text lies in [`ExtractedDocument::text`] (PDF only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSpan {
    /// 1-based page number.
    pub number: u32,
    /// Byte offset where the page's text starts.
    pub start: usize,
    /// Byte offset just past the page's text.
    pub end: usize,
}

/// The text of a document and the structure worth keeping.
///
/// `markdown` tells the chunker to respect Markdown structure: Markdown sources stay as they
/// are, and HTML and DOCX are rendered to Markdown-like text (`#` headings, blank lines between
/// blocks) so that one splitter serves all three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedDocument {
    /// The detected format.
    pub kind: DocumentKind,
    /// The extracted text, UTF-8.
    pub text: String,
    /// Whether `text` is Markdown (or rendered as such).
    pub markdown: bool,
    /// Headings in document order, offsets ascending.
    pub headings: Vec<Heading>,
    /// Page spans in page order (empty for formats without pages).
    pub pages: Vec<PageSpan>,
}

impl ExtractedDocument {
    /// The page holding byte `offset`, if the document has pages.
    pub fn page_at(&self, offset: usize) -> Option<u32> {
        let i = self.pages.partition_point(|p| p.end <= offset);
        self.pages.get(i).or(self.pages.last()).map(|p| p.number)
    }

    /// The titles of the headings enclosing byte `offset`, outermost first.
    pub fn heading_path_at(&self, offset: usize) -> Vec<String> {
        let mut path: Vec<&Heading> = Vec::new();
        for h in self.headings.iter().take_while(|h| h.offset <= offset) {
            while path.last().is_some_and(|top| top.level >= h.level) {
                path.pop();
            }
            path.push(h);
        }
        path.into_iter().map(|h| h.title.clone()).collect()
    }
}

/// A piece of a document sized for the embedding model, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position of the chunk in its document, from 0.
    pub ordinal: u32,
    /// The chunk's text, a slice of the extracted text.
    pub text: String,
    /// Byte offset of the chunk in the extracted text.
    pub start: usize,
    /// Byte offset just past the chunk.
    pub end: usize,
    /// Model tokens in the chunk, special tokens included.
    pub tokens: usize,
    /// The page the chunk starts on (PDF).
    pub page: Option<u32>,
    /// Titles of the headings enclosing the chunk, outermost first.
    pub heading_path: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ExtractedDocument {
        let h = |level, title: &str, offset| Heading { level, title: title.into(), offset };
        ExtractedDocument {
            kind: DocumentKind::Markdown,
            text: String::new(),
            markdown: true,
            headings: vec![h(1, "A", 0), h(2, "A.1", 10), h(3, "A.1.a", 20), h(2, "A.2", 30)],
            pages: vec![
                PageSpan { number: 1, start: 0, end: 15 },
                PageSpan { number: 2, start: 15, end: 40 },
            ],
        }
    }

    #[test]
    fn heading_path_follows_levels() {
        let d = doc();
        assert_eq!(d.heading_path_at(5), vec!["A"]);
        assert_eq!(d.heading_path_at(25), vec!["A", "A.1", "A.1.a"]);
        assert_eq!(d.heading_path_at(35), vec!["A", "A.2"]);
    }

    #[test]
    fn page_lookup() {
        let d = doc();
        assert_eq!(d.page_at(0), Some(1));
        assert_eq!(d.page_at(15), Some(2));
        assert_eq!(d.page_at(99), Some(2));
        let no_pages = ExtractedDocument { pages: vec![], ..d };
        assert_eq!(no_pages.page_at(3), None);
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [
            DocumentKind::Text,
            DocumentKind::Markdown,
            DocumentKind::Html,
            DocumentKind::Pdf,
            DocumentKind::Docx,
        ] {
            assert_eq!(DocumentKind::parse(k.as_str()), Some(k));
        }
    }
}
