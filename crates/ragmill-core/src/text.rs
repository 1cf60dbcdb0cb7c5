//! Messages from other systems, made fit for one log line or one error field.

/// `s` on one line (every run of whitespace one space), at most `max` characters, then `…`.
pub fn one_line(s: &str, max: usize) -> String {
    let folded = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= max {
        return folded;
    }
    let mut cut: String = folded.chars().take(max).collect();
    cut.push('…');
    cut
}

/// `e` and its causes on one line, `outer: inner: innermost`, skipping causes whose text the
/// outer message already contains (HTTP clients repeat themselves), at most `max` characters.
pub fn error_chain(e: &(dyn std::error::Error + 'static), max: usize) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    one_line(&out, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\nbroke")]
    struct Inner;

    #[test]
    fn messages_fold_onto_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        // The cause is already in the outer text: said once.
        assert_eq!(error_chain(&Outer(Inner), 100), "outer failed: inner broke");
    }
}
