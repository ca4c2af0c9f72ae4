//! Text read from a run folder, made safe to print.

/// `s` with control characters (escape sequences, NUL) shown as `?`, newlines kept, for text
/// that reaches a terminal or a file format that forbids them.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}
