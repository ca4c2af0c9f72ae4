use std::path::{Path, PathBuf};

use thiserror::Error;

use super::schema::Experiment;
use super::validate::{validate, ValidationError};

#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error("{path}: cannot read the experiment file: {source}")]
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
    let exp: Experiment = ron_options().from_str(text).map_err(|e| {
        let message = e.code.to_string();
        ExperimentError::Syntax {
            path: path.to_path_buf(),
            line: e.position.line,
            col: e.position.col,
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
    let text = std::fs::read_to_string(path).map_err(|source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
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
