//! A writer for Markdown-like text: blocks separated by blank lines, `#` headings recorded with
//! their byte offsets, inline whitespace collapsed.

use ragmill_core::Heading;

#[derive(Default)]
pub(crate) struct MarkdownWriter {
    text: String,
    headings: Vec<Heading>,
    /// Newlines owed before the next content (1 = new line, 2 = blank line).
    pending_break: usize,
    /// Whitespace seen since the last content.
    pending_space: bool,
    /// An open heading: (level, offset of its `#` line, offset of its title).
    heading: Option<(u8, usize, usize)>,
}

impl MarkdownWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Asks for `n` newlines (1 or 2) before the next content.
    pub(crate) fn want_break(&mut self, n: usize) {
        if self.heading.is_some() {
            self.pending_space = true;
        } else if !self.text.is_empty() {
            self.pending_break = self.pending_break.max(n);
        }
    }

    fn flush_break(&mut self) {
        if self.pending_break > 0 {
            self.trim_trailing_blanks();
            let have = self.text.len() - self.text.trim_end_matches('\n').len();
            for _ in have..self.pending_break {
                self.text.push('\n');
            }
            self.pending_break = 0;
            self.pending_space = false;
        }
    }

    fn trim_trailing_blanks(&mut self) {
        let kept = self.text.trim_end_matches([' ', '\t']).len();
        self.text.truncate(kept);
    }

    /// Inline text: runs of whitespace become one space.
    pub(crate) fn inline(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
                continue;
            }
            if self.pending_break > 0 {
                self.flush_break();
            } else if self.pending_space
                && !self.text.is_empty()
                && !self.text.ends_with([' ', '\n'])
            {
                self.text.push(' ');
            }
            self.pending_space = false;
            self.text.push(c);
        }
    }

    /// Text kept as is (preformatted).
    pub(crate) fn verbatim(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.flush_break();
        self.pending_space = false;
        self.text.push_str(s);
    }

    /// A literal marker such as "- " or " | ", after any owed break.
    pub(crate) fn marker(&mut self, s: &str) {
        self.flush_break();
        if s.starts_with(' ') {
            self.trim_trailing_blanks();
        }
        self.pending_space = false;
        self.text.push_str(s);
    }

    /// A hard line break.
    pub(crate) fn line_break(&mut self) {
        if self.heading.is_some() {
            self.pending_space = true;
            return;
        }
        if self.text.is_empty() {
            return;
        }
        self.flush_break();
        self.trim_trailing_blanks();
        self.text.push('\n');
        self.pending_space = false;
    }

    pub(crate) fn in_heading(&self) -> bool {
        self.heading.is_some()
    }

    /// Starts a heading line of `level` (1–6).
    pub(crate) fn begin_heading(&mut self, level: u8) {
        if self.heading.is_some() {
            return;
        }
        let level = level.clamp(1, 6);
        self.want_break(2);
        self.flush_break();
        let start = self.text.len();
        for _ in 0..level {
            self.text.push('#');
        }
        self.text.push(' ');
        self.pending_space = false;
        self.heading = Some((level, start, self.text.len()));
    }

    /// Ends the open heading: records it, or removes it when it has no text.
    pub(crate) fn end_heading(&mut self) {
        let Some((level, start, title_start)) = self.heading.take() else { return };
        let title = crate::text::collapse_whitespace(&self.text[title_start..]);
        if title.is_empty() {
            self.text.truncate(start);
        } else {
            self.text.truncate(title_start);
            self.text.push_str(&title);
            self.headings.push(Heading { level, title, offset: start });
        }
        self.pending_space = false;
        self.want_break(2);
    }

    /// A whole heading at once.
    pub(crate) fn heading(&mut self, level: u8, title: &str) {
        self.begin_heading(level);
        self.inline(title);
        self.end_heading();
    }

    pub(crate) fn finish(mut self) -> (String, Vec<Heading>) {
        self.end_heading();
        let kept = self.text.trim_end().len();
        self.text.truncate(kept);
        (self.text, self.headings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_headings_and_offsets() {
        let mut w = MarkdownWriter::new();
        w.want_break(2);
        w.heading(1, "  Main \n title ");
        w.inline("  some   text\n here ");
        w.want_break(2);
        w.want_break(1);
        w.marker("- ");
        w.inline("item");
        w.want_break(1);
        w.marker("- ");
        w.inline(" two");
        w.begin_heading(2);
        w.end_heading(); // empty: dropped
        w.heading(3, "Deep");
        let (text, headings) = w.finish();
        assert_eq!(text, "# Main title\n\nsome text here\n\n- item\n- two\n\n### Deep");
        assert_eq!(headings.len(), 2);
        assert_eq!(
            (headings[0].level, headings[0].title.as_str(), headings[0].offset),
            (1, "Main title", 0)
        );
        assert_eq!(
            (headings[1].level, headings[1].offset),
            (3, text.find("### Deep").unwrap_or(0))
        );
    }
}
