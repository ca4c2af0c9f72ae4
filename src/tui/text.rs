//! Words for the status line and the views: plurals, ordinals, the first line of an error.
//! Below every other TUI module, so any of them can use it.

/// `n arm` / `n arms`, and so on: one place for plurals.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// 1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The first line of a (multi-line) error: what the status line has room for.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
