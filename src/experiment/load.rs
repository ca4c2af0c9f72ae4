use std::path::{Path, PathBuf};

use thiserror::Error;

use super::schema::Experiment;
use super::validate::{validate, ValidationError};

#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error("{path}: cannot read the experiment file: {source}\n  fix: check the path (and that it is a file you may read); `ls experiments/` lists the shipped ones")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}\n  fix: {hint}")]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
        hint: String,
    },
    #[error("{}", format_invalid(path, errors))]
    Invalid {
        path: PathBuf,
        errors: Vec<ValidationError>,
    },
}

fn format_invalid(path: &Path, errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}:{e}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ExperimentError {
    /// The first (line, column) the error points at, 1-based, if any: the editor jumps there.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ExperimentError::Syntax { line, col, .. } => Some((*line, *col)),
            ExperimentError::Invalid { errors, .. } => errors.iter().find_map(|e| e.position),
            ExperimentError::Io { .. } => None,
        }
    }
}

fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    )
}

/// Parse and validate experiment text; `path` is only used to name the file in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Experiment, ExperimentError> {
    // Some Windows editors start UTF-8 files with a byte-order mark; it is not part of the text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let exp: Experiment = ron_options().from_str(text).map_err(|e| {
        let col = field_start(text, &e);
        if let Some((message, hint)) = wrong_type(text, &e) {
            return ExperimentError::Syntax {
                path: path.to_path_buf(),
                line: e.position.line,
                col,
                message,
                hint,
            };
        }
        // RON writes "named `x`in `Train`", and quotes what it found, however long.
        let message = clip(&e.code.to_string().replace("`in ", "` in "), 300);
        ExperimentError::Syntax {
            path: path.to_path_buf(),
            line: e.position.line,
            col,
            hint: syntax_hint(&message),
            message,
        }
    })?;
    let errors = validate(&exp, text);
    if errors.is_empty() {
        Ok(exp)
    } else {
        Err(ExperimentError::Invalid {
            path: path.to_path_buf(),
            errors,
        })
    }
}

pub fn load_file(path: &Path) -> Result<Experiment, ExperimentError> {
    parse_str(&read_text(path)?, path)
}

/// Experiment files are a few kilobytes; anything this large is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// An experiment file's text, or where and why it is not UTF-8 text (binary, UTF-16, Latin-1).
/// The file is opened once, without blocking (a FIFO's open waits for a writer), and only a
/// regular file is read, at most [`MAX_FILE_BYTES`] of it: a FIFO, `/dev/zero` or a 1 GB file
/// is refused before it can hang or fill memory.
pub fn read_text(path: &Path) -> Result<String, ExperimentError> {
    let io = |source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = read_capped(path).map_err(io)?;
    match bytes {
        Capped::Whole(bytes) => decode_text(&bytes, path),
        Capped::TooLong(len) => Err(ExperimentError::Syntax {
            path: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!(
                "the file is {len} bytes; experiment files are a few kilobytes of RON text"
            ),
            hint: "check that this is the experiment file you meant (README.md shows one)".into(),
        }),
    }
}

enum Capped {
    Whole(Vec<u8>),
    /// More than the cap: its size, or at least the cap and one.
    TooLong(u64),
}

fn read_capped(path: &Path) -> std::io::Result<Capped> {
    use std::io::Read;
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?
    };
    #[cfg(not(unix))]
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(crate::runs::files::not_regular(
            crate::runs::files::describe(meta.file_type()),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Capped::TooLong(meta.len()));
    }
    // The size can change between the stat and the read: the read itself is capped too.
    let mut bytes = vec![];
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Capped::TooLong(bytes.len() as u64));
    }
    Ok(Capped::Whole(bytes))
}

fn decode_text(bytes: &[u8], path: &Path) -> Result<String, ExperimentError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let at = |offset: usize, message: String, hint: &str| {
        // Everything before `offset` is valid UTF-8 (checked by the caller's cut).
        let before = String::from_utf8_lossy(&bytes[..offset]);
        let (line, col) = super::locate::line_col(&before, before.len());
        ExperimentError::Syntax {
            path: path.to_path_buf(),
            line,
            col,
            message,
            hint: hint.into(),
        }
    };
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(at(
            0,
            "the file is UTF-16 text; experiment files are UTF-8".into(),
            "save it as UTF-8 (\"UTF-8\" in the editor's encoding menu, or `iconv -f UTF-16 -t UTF-8`)",
        ));
    }
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    if let Some(nul) = bytes[..valid].iter().position(|&b| b == 0) {
        return Err(at(
            nul,
            "a NUL byte: this is a binary file, not RON text".into(),
            "check that this is the experiment file you meant (README.md shows one)",
        ));
    }
    if valid < bytes.len() {
        return Err(at(
            valid,
            format!("byte 0x{:02X} is not UTF-8 text", bytes[valid]),
            "save the file as UTF-8 (`iconv -f LATIN1 -t UTF-8` converts Latin-1), or remove the character",
        ));
    }
    Ok(String::from_utf8(bytes.to_vec()).expect("checked above"))
}

/// `s` cut to `n` characters, saying so: errors quote the input, which can be a megabyte.
fn clip(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        return s.to_string();
    }
    let head: String = s.chars().take(n).collect();
    format!("{head}… ({} more characters)", len - n)
}

/// RON reports an unknown field at the end of its name; point at its start, as every other
/// error does.
fn field_start(text: &str, e: &ron::error::SpannedError) -> usize {
    let col = e.position.col;
    if let ron::Error::NoSuchStructField { found: field, .. } = &e.code {
        let line = text
            .lines()
            .nth(e.position.line.saturating_sub(1))
            .unwrap_or("");
        let before: String = line.chars().take(col.saturating_sub(1)).collect();
        if before.ends_with(field.as_str()) {
            return col - field.chars().count();
        }
    }
    col
}

/// A value of the wrong type (`meta_batch: "x"`, `shots: 2.5`): name the field and the type it
/// takes, rather than hint at brackets and commas. `None` for every other error.
fn wrong_type(text: &str, e: &ron::error::SpannedError) -> Option<(String, String)> {
    use ron::Error as E;
    let (line, col) = (e.position.line, e.position.col);
    let at = super::locate::offset(text, line, col);
    // What is written there, up to the next separator.
    let found: String = text[at..]
        .chars()
        .take_while(|c| !matches!(c, ',' | ')' | ']' | '}' | '\n'))
        .collect();
    let found = clip(found.trim(), 60);
    let found = found.as_str();
    let (expects, example) = match &e.code {
        E::ExpectedInteger | E::IntegerOutOfBounds | E::UnderscoreAtBeginning => {
            ("a whole number (an integer)", "25")
        }
        E::ExpectedFloat | E::FloatUnderscore => ("a number", "0.001"),
        E::ExpectedBoolean => ("true or false", "true"),
        E::ExpectedString | E::ExpectedStringEnd => ("text in double quotes", "\"name\""),
        E::ExpectedArray => ("a list in [ ]", "[40, 40]"),
        // `2.5` where an integer goes: RON reads `2` and stops at the dot.
        E::ExpectedComma | E::ExpectedStructLikeEnd
            if found.starts_with('.') && text[..at].ends_with(|c: char| c.is_ascii_digit()) =>
        {
            let field = super::locate::field_at(text, line, col)?;
            let start = text[..at]
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .len();
            let number = format!("{}{found}", &text[start..at]);
            return Some((
                format!(
                    "the field `{field}` expects a whole number (an integer), found `{number}`"
                ),
                format!("write a whole number, e.g. `{}: 2`", last(&field)),
            ));
        }
        E::InvalidValueForType { expected, found } => {
            let field = super::locate::field_at(text, line, col)?;
            return Some((
                format!("the field `{field}` expects {expected}, found {found}"),
                "README.md shows each field's type and an example".into(),
            ));
        }
        _ => return None,
    };
    let field = super::locate::field_at(text, line, col)?;
    let found = if found.is_empty() {
        String::new()
    } else {
        format!(", found `{found}`")
    };
    Some((
        format!("the field `{field}` expects {expects}{found}"),
        format!("write e.g. `{}: {example}`", last(&field)),
    ))
}

/// `train.meta_batch` → `meta_batch`; `arms[1].name` → `name`.
fn last(path: &str) -> &str {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    leaf.split('[').next().unwrap_or(leaf)
}

fn syntax_hint(message: &str) -> String {
    if message.contains("Unexpected field") || message.contains("unknown field") {
        "remove the field or correct its spelling; README.md lists every field".into()
    } else if message.contains("missing field") || message.contains("Unexpected missing field") {
        "add the field; README.md shows a complete example".into()
    } else if message.contains("variant") {
        "use one of the variants listed in the message".into()
    } else {
        "check the brackets, commas and quotes just before this position".into()
    }
}
