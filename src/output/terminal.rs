//! Text from a model or a server shown on a terminal. Tensor names, tokens and repo file names
//! are data, and data may hold ESC, OSC or BEL sequences that a terminal would obey (retitle the
//! window, hide lines, forge a link) or a newline that forges a line of output. On the terminal
//! every control character is shown as a visible `\u{…}`, as the report page shows it; files
//! (CSV, JSON, Parquet) keep the exact bytes.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// `text` with every control character (C0, DEL, C1, newlines and tabs included) shown as
/// `\u{001B}` and the like; borrowed unchanged when it has none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Appends `c` to `out` as `\u{XXXX}`: a character that must not act, made visible.
pub fn push_visible(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:04X}}}", c as u32);
}

/// Lines of text for the terminal, gathered to be printed at once, each with its control
/// characters made visible ([`escape_controls`]).
#[derive(Debug, Default)]
pub struct TerminalText {
    text: String,
}

impl TerminalText {
    /// Appends `line` and a newline.
    pub fn line(&mut self, line: &str) {
        self.text.push_str(&escape_controls(line));
        self.text.push('\n');
    }
}

impl fmt::Display for TerminalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(
            escape_controls("w\u{1b}]0;pwned\u{7}\n1\t2\u{9b}\u{7f}"),
            "w\\u{001B}]0;pwned\\u{0007}\\u{000A}1\\u{0009}2\\u{009B}\\u{007F}"
        );
        assert!(matches!(escape_controls("plain é ▁"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_text_is_escaped_line_by_line() {
        let mut text = TerminalText::default();
        text.line("token \u{1b}[2J");
        text.line("");
        text.line("two\nlines");
        assert_eq!(
            text.to_string(),
            "token \\u{001B}[2J\n\ntwo\\u{000A}lines\n"
        );
    }
}
