//! Where a field is written in an experiment file, by its dotted path (`arms[2].name`,
//! `eval.inner_steps`), so an error points at the arm or section it is about rather than at the
//! first field of that name anywhere in the file.
//!
//! A small RON-aware scanner: it skips strings and comments and follows brackets, which is all
//! that is needed to find `name:` at the right depth. It never fails; an unknown path gives the
//! deepest part of it that was found.

/// 1-based (line, column) of `path` in `text`, or of its deepest written ancestor; `None` only
/// when nothing of it is written (a section left to its defaults in a file with no brackets).
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let toks = tokens(text);
    // The experiment's own fields: inside the first top-level bracket.
    let first = toks.iter().position(|t| t.kind == Kind::Open)?;
    let mut region = inner(&toks, first);
    let mut found = Some(toks[first].at);
    for seg in segments(path) {
        match seg {
            Seg::Field(name) => {
                let Some(i) = field_in(&toks, region.clone(), name, true)
                    .or_else(|| field_in(&toks, region.clone(), name, false))
                else {
                    break;
                };
                found = Some(toks[i].at);
                region = value_region(&toks, i + 2, region.end);
            }
            Seg::Index(n) => {
                let Some(el) = element(&toks, region.clone(), n) else {
                    break;
                };
                found = Some(toks[el].at);
                region = value_region(&toks, el, region.end);
            }
        }
    }
    found.map(|at| line_col(text, at))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ident,
    Colon,
    Comma,
    Open,
    Close,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    /// Byte offset in the text.
    at: usize,
    /// Index of the matching bracket, for `Open`.
    close: usize,
}

fn tokens(text: &str) -> Vec<Tok<'_>> {
    let b = text.as_bytes();
    let mut out: Vec<Tok> = vec![];
    let mut stack = vec![];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                Kind::Other
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Kind::Open
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close
            }
            b':' => {
                i += 1;
                Kind::Colon
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {
                // Numbers, signs, and any UTF-8 byte: one token per run of them.
                i += 1;
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"()[]{}:,\"/".contains(&b[i])
                {
                    i += 1;
                }
                Kind::Other
            }
        };
        let idx = out.len();
        out.push(Tok {
            kind,
            text: text.get(start..i.min(b.len())).unwrap_or(""),
            at: start,
            close: usize::MAX,
        });
        match kind {
            Kind::Open => stack.push(idx),
            Kind::Close => {
                if let Some(o) = stack.pop() {
                    out[o].close = idx;
                }
            }
            _ => {}
        }
    }
    let n = out.len();
    for t in &mut out {
        if t.kind == Kind::Open && t.close == usize::MAX {
            t.close = n;
        }
    }
    out
}

/// Token indices strictly inside the bracket at `open`.
fn inner(toks: &[Tok], open: usize) -> std::ops::Range<usize> {
    open + 1..toks[open].close.min(toks.len())
}

/// `name:` at the top level of `region` (or, with `direct` false, anywhere inside it: fields of
/// an algorithm variant are reported as `arms[i].hvp_eps`).
fn field_in(
    toks: &[Tok],
    region: std::ops::Range<usize>,
    name: &str,
    direct: bool,
) -> Option<usize> {
    let mut i = region.start;
    while i < region.end {
        let t = &toks[i];
        if t.kind == Kind::Ident
            && t.text == name
            && toks.get(i + 1).is_some_and(|n| n.kind == Kind::Colon)
        {
            return Some(i);
        }
        i = if direct && t.kind == Kind::Open {
            t.close + 1
        } else {
            i + 1
        };
    }
    None
}

/// The `n`-th element of the list whose value starts at `region` (just inside its `[`).
fn element(toks: &[Tok], region: std::ops::Range<usize>, n: usize) -> Option<usize> {
    let mut i = region.start;
    let mut k = 0;
    while i < region.end {
        if k == n {
            return Some(i);
        }
        // Skip one element: up to the next comma at this depth.
        while i < region.end && toks[i].kind != Kind::Comma {
            i = if toks[i].kind == Kind::Open {
                toks[i].close + 1
            } else {
                i + 1
            };
        }
        i += 1;
        k += 1;
    }
    None
}

/// The fields of the value starting at token `i`: inside `Name(...)`, `(...)` or `[...]`, and
/// inside a doubled `Mlp((...))` as well. A plain value has no fields: an empty region.
fn value_region(toks: &[Tok], mut i: usize, end: usize) -> std::ops::Range<usize> {
    if toks.get(i).is_some_and(|t| t.kind == Kind::Ident) {
        i += 1;
    }
    if i >= end || toks.get(i).is_none_or(|t| t.kind != Kind::Open) {
        return i..i;
    }
    let mut r = inner(toks, i);
    if toks[r.start..r.end]
        .first()
        .is_some_and(|t| t.kind == Kind::Open)
        && toks[r.start].close + 1 == r.end
    {
        r = inner(toks, r.start);
    }
    r
}

enum Seg<'a> {
    Field(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = vec![];
    for part in path.split('.') {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                out.push(Seg::Field(&rest[..b]));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(e) = stripped.find(']') else { break };
                if let Ok(n) = stripped[..e].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &stripped[e + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Seg::Field(rest));
        }
    }
    out
}

/// 1-based line and column (in characters) of byte offset `at`.
/// The dotted path of the field whose value holds the 1-based (line, column) — `train.meta_batch`,
/// `arms[1].algorithm` — so a parse error can name the field rather than the character.
pub fn field_at(text: &str, line: usize, col: usize) -> Option<String> {
    let at = offset(text, line, col);
    // One frame per open bracket: the field being written at that depth, and for a list the
    // index of the element.
    struct Frame<'a> {
        field: Option<&'a str>,
        list: Option<usize>,
    }
    let toks = tokens(text);
    let mut stack = vec![Frame {
        field: None,
        list: None,
    }];
    for (i, t) in toks.iter().enumerate() {
        if t.at >= at {
            break;
        }
        let top = stack.len() - 1;
        match t.kind {
            Kind::Ident if toks.get(i + 1).is_some_and(|n| n.kind == Kind::Colon) => {
                stack[top].field = Some(t.text)
            }
            Kind::Comma => match stack[top].list.as_mut() {
                Some(n) => *n += 1,
                None => stack[top].field = None,
            },
            Kind::Open => stack.push(Frame {
                field: None,
                list: (t.text == "[").then_some(0),
            }),
            Kind::Close if stack.len() > 1 => {
                stack.pop();
            }
            _ => {}
        }
    }
    let mut path = String::new();
    for f in &stack {
        if let Some(name) = f.field {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
        }
        if let (Some(n), false) = (f.list, path.is_empty()) {
            path.push_str(&format!("[{n}]"));
        }
    }
    // A path ending in an index is inside a list element that is not a struct: the list's field.
    (!path.is_empty()).then_some(path)
}

/// Byte offset of the 1-based (line, column, in characters).
pub fn offset(text: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..floor_char(text, at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Where `name:` first appears as a field in the text (1-based line, column).
pub fn find_field(text: &str, name: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut from = 0;
        while let Some(at) = code[from..].find(name) {
            let start = from + at;
            let before_ok = start == 0
                || !code[..start]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = code[start + name.len()..].trim_start();
            if before_ok && after.starts_with(':') {
                return Some((i + 1, start + 1));
            }
            from = start + name.len();
        }
    }
    None
}

/// Where `leaf:` appears inside the `arm`-th `Arm(` of the text (1-based line, column): the
/// first occurrence after that arm's opening, falling back to the arm itself.
pub fn find_arm_field(text: &str, arm: usize, leaf: &str) -> Option<(usize, usize)> {
    let mut starts = vec![];
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut from = 0;
        while let Some(at) = code[from..].find("Arm(") {
            let col = from + at;
            let before_ok = col == 0
                || !code[..col]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if before_ok {
                starts.push((i, col));
            }
            from = col + 4;
        }
    }
    let &(line, col) = starts.get(arm)?;
    let lines: Vec<&str> = text.lines().collect();
    let end = starts.get(arm + 1).map_or(lines.len(), |&(l, _)| l + 1);
    for (i, l) in lines.iter().enumerate().take(end).skip(line) {
        let code = l.split("//").next().unwrap_or("");
        let skip = if i == line { col } else { 0 };
        if let Some((_, c)) = find_field(&code[skip..], leaf) {
            return Some((i + 1, skip + c));
        }
    }
    Some((line + 1, col + 1))
}

#[cfg(test)]
mod tests {
    use super::{field_at, offset};

    #[test]
    fn the_field_at_a_position_is_named_by_its_path() {
        let text = "Experiment(\n  name: \"x\",\n  train: Train(iterations: 5, meta_batch: \"x\"),\n  arms: [Arm(name: \"a\"), Arm(name: 3)],\n)";
        assert_eq!(field_at(text, 3, 43).as_deref(), Some("train.meta_batch"));
        assert_eq!(field_at(text, 2, 9).as_deref(), Some("name"));
        assert_eq!(field_at(text, 4, 36).as_deref(), Some("arms[1].name"));
        assert_eq!(offset(text, 2, 3), text.find("name").unwrap());
    }

    #[test]
    fn finds_fields_but_not_substrings() {
        let text = "A(\n  shots: 1,\n  ways: 5, // ways: 9\n)";
        assert_eq!(super::find_field(text, "ways"), Some((3, 3)));
        assert_eq!(super::find_field(text, "hots"), None);
    }

    use super::*;

    const TEXT: &str = r#"Experiment(
    name: "x", // name: "not this"
    family: Omniglot(root: "/d", ways: 5),
    model: Mlp((hidden: [40, 40])),
    arms: [
        Arm(name: "a", algorithm: Maml(hvp_eps: 1e-3)),
        Arm(name: "b", algorithm: Fomaml, inner_steps: 3),
    ],
    train: Train(inner_steps: 2),
    eval: Eval(inner_steps: 10),
)"#;

    #[test]
    fn fields_are_found_in_their_own_section() {
        assert_eq!(locate(TEXT, "name"), Some((2, 5)));
        assert_eq!(locate(TEXT, "arms[0].name"), Some((6, 13)));
        assert_eq!(locate(TEXT, "arms[1].name"), Some((7, 13)));
        assert_eq!(locate(TEXT, "arms[1].inner_steps"), Some((7, 43)));
        assert_eq!(locate(TEXT, "arms[0].hvp_eps"), Some((6, 40)));
        assert_eq!(locate(TEXT, "train.inner_steps"), Some((9, 18)));
        assert_eq!(locate(TEXT, "eval.inner_steps"), Some((10, 16)));
        assert_eq!(locate(TEXT, "family.ways"), Some((3, 34)));
        assert_eq!(locate(TEXT, "model.hidden"), Some((4, 17)));
    }

    #[test]
    fn unwritten_fields_fall_back_to_their_section() {
        // arms[0] does not override inner_steps: point at the arm.
        assert_eq!(locate(TEXT, "arms[0].inner_steps"), Some((6, 9)));
        assert_eq!(locate(TEXT, "train.meta_batch"), Some((9, 5)));
        assert_eq!(locate(TEXT, "nothing.here"), Some((1, 11)));
        assert_eq!(locate("", "name"), None);
        // Never panics on broken or odd text.
        for t in ["(", ")", "([", "(\"", "(/*", "(a: [1, (", "(é: 1)"] {
            let _ = locate(t, "a.b[3].c");
        }
    }
}
