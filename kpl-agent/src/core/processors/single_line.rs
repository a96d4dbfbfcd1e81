//! `SINGLELINE` (`SingleLineDataConverter.java` L56–66): a multi-line record made one line.

use super::java_trim;

/// `SINGLELINE`, with `parseOptions` `NO_TRIM` and `ESCAPE_NEW_LINE`.
///
/// The record is split on `\n` (trailing empty pieces dropped, as Java's `split`), each piece trimmed of
/// every character up to U+0020 unless `no_trim`, the pieces joined with nothing (no space, despite the
/// agent's class comment) or with the two characters `\n` (backslash, `n`) under `escape_new_line`, and
/// `\n` appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SingleLine {
    /// `NO_TRIM`: keep the pieces' leading and trailing whitespace.
    pub no_trim: bool,
    /// `ESCAPE_NEW_LINE`: join with a backslash and `n` instead of nothing.
    pub escape_new_line: bool,
}

impl SingleLine {
    /// Converts one record.
    pub fn convert(&self, text: &str) -> String {
        let mut pieces: Vec<&str> = text.split('\n').collect();
        while pieces.last().is_some_and(|piece| piece.is_empty()) {
            pieces.pop();
        }
        if !self.no_trim {
            pieces = pieces.into_iter().map(java_trim).collect();
        }
        let mut out = pieces.join(if self.escape_new_line { "\\n" } else { "" });
        out.push('\n');
        out
    }
}
