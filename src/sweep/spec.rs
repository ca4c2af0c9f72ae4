//! The sweep file: a base experiment and the axes to vary.
//!
//! ```ron
//! Sweep(
//!     name: "sinusoid-seeds",
//!     experiment: "sinusoid-compare.ron",          // relative to this file
//!     sample: Grid,                                 // or Random(count: 8, seed: 7)
//!     axes: [
//!         Axis(path: "seed", values: [1, 2, 3]),
//!         Axis(path: "train.meta_lr", values: [1e-3, 3e-3]),
//!         Axis(path: "arms.reptile.inner_lr", log_uniform: (1e-3, 1e-1)),   // Random only
//!         Axis(path: "model.activation", values: ["Relu", "Tanh"]),          // enum by name
//!     ],
//! )
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::experiment::ExperimentError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Sweep")]
pub struct SweepSpec {
    /// Used in variant names, hence in run metadata and the sweep's folder.
    pub name: String,
    /// The base experiment, relative to the sweep file.
    pub experiment: PathBuf,
    #[serde(default)]
    pub sample: Sample,
    pub axes: Vec<Axis>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub enum Sample {
    /// Every combination of every axis's values, the first axis slowest.
    #[default]
    Grid,
    /// `count` seeded draws over the axes; the `seed` axis, if any, is crossed with every draw,
    /// so each drawn configuration runs on every seed (what aggregation over seeds needs).
    Random { count: usize, seed: u64 },
}

/// One axis: a dotted path into the experiment and its values (or, for `Random`, a range).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Axis")]
pub struct Axis {
    /// `seed`, `train.meta_lr`, `eval.inner_steps`, `family.shots`, `model.activation`,
    /// `arms.<name>.inner_lr`, `arms.<name>.algorithm.epsilon`, `arms.*.inner_steps`…
    pub path: String,
    #[serde(default)]
    pub values: Option<Vec<ron::Value>>,
    #[serde(default)]
    pub uniform: Option<(f64, f64)>,
    #[serde(default)]
    pub log_uniform: Option<(f64, f64)>,
}

/// A problem in a sweep file, at the place it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepIssue {
    pub position: Option<(usize, usize)>,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for SweepIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{l}:{c}: ")?,
            None => write!(f, " ")?,
        }
        write!(f, "{}\n  fix: {}", self.message, self.fix)
    }
}

#[derive(Debug, Error)]
pub enum SweepError {
    #[error("{path}: cannot read the sweep file: {source}")]
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
    #[error("{}", .issues.iter().map(|i| format!("{}:{i}", .path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        issues: Vec<SweepIssue>,
    },
    #[error("{path}: the base experiment of this sweep is not valid:\n{source}")]
    Base {
        path: PathBuf,
        #[source]
        source: ExperimentError,
    },
}

impl SweepError {
    /// The first (line, column) in the sweep file the error points at.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            SweepError::Syntax { line, col, .. } => Some((*line, *col)),
            SweepError::Invalid { issues, .. } => issues.iter().find_map(|i| i.position),
            _ => None,
        }
    }
}

/// True when the text is a sweep file (`Sweep(` after comments), not an experiment.
pub fn is_sweep_text(text: &str) -> bool {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    code.trim_start().starts_with("Sweep")
}

/// True for `*.sweep.ron`, or any `.ron` file whose text is a sweep.
pub fn is_sweep_file(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".sweep.ron")
        || crate::experiment::read_text(path).is_ok_and(|t| is_sweep_text(&t))
}

pub fn parse_spec(text: &str, path: &Path) -> Result<SweepSpec, SweepError> {
    let opts =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    opts.from_str(text).map_err(|e| {
        let message = e.code.to_string();
        SweepError::Syntax {
            path: path.to_path_buf(),
            line: e.position.line,
            col: e.position.col,
            hint: if message.contains("field") {
                "a sweep has name, experiment, sample (optional) and axes; an Axis has path and one of values, uniform, log_uniform".into()
            } else {
                "check the brackets, commas and quotes just before this position".into()
            },
            message,
        }
    })
}

/// Where the axis with this path is written: the opening quote of its path string.
pub fn axis_position(text: &str, path: &str) -> Option<(usize, usize)> {
    let needle = format!("\"{path}\"");
    let after_axes = text.find("axes").unwrap_or(0);
    let at = text[after_axes..].find(&needle)? + after_axes;
    Some(line_col(text, at))
}

pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
