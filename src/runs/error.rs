//! What can go wrong with a run folder: the vocabulary every part of the run store returns.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::files;
use crate::experiment;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{path}: {why}: the file was edited or damaged, and resuming would carry that into the run\n  fix: `metalab rerun {id}` trains the run again from its config, to the same numbers")]
    MetricsHistory {
        path: PathBuf,
        why: String,
        id: String,
    },
    #[error("{path}: {source}{}", disk_hint(.source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: {1}\n  fix: the run directory is damaged; rerun it from its config.ron")]
    Corrupt(PathBuf, String),
    #[error("run `{0}` is not inside the runs folder {1}\n  fix: name a run by its id (as listed by `metalab runs`) or by runs/<id>")]
    Escapes(String, PathBuf),
    #[error("no run `{0}` in {1}\n  fix: `metalab runs` lists the runs")]
    NotFound(String, PathBuf),
    #[error("{0}")]
    Config(#[from] experiment::ExperimentError),
    #[error("run `{id}` is still training: still running in {}\n  fix: stop it first (`s` in the workbench's monitor, Ctrl-C{} for `metalab run`), then try again", holder_text(*.pid), pid.map(|p| format!(" or `kill {p}`")).unwrap_or_default())]
    StillRunning {
        id: String,
        /// The process holding the run's lock, when it says (the lock, not `run.json`, is
        /// the truth: a recorded pid may be long dead or reused).
        pid: Option<u32>,
    },
    #[error("{0}: a symbolic link: metalab never reads or writes through links in a runs folder or a run folder (a copied folder could point them anywhere)\n  fix: replace the link with a copy of what it points to (`cp -r`), or delete the link")]
    Link(PathBuf),
    #[error("run `{id}` was interrupted before its first checkpoint: there is nothing to resume\n  fix: rerun it (`metalab rerun {id}` trains it again from its config), then delete this folder")]
    NoCheckpoint { id: String },
    #[error("{path}: {}\n  fix: metalab never rewrites damaged lines away; repair or delete them by hand (their text is shown above), or `metalab rerun {id}` trains the run again from its config", damage_list(.damage))]
    MetricsDamaged {
        path: PathBuf,
        damage: Vec<MetricsDamage>,
        id: String,
    },
    #[error("run `{id}` is recorded as training on host {host}, which this machine cannot check\n  fix: stop it there first; if that job is gone, delete the folder by hand (`rm -r` it)")]
    RunningElsewhere { id: String, host: String },
    #[error("{dir}: the run could not be created: {reason}\n  fix: free disk space (or fix the folder's permissions) and run it again; the partial folder was removed")]
    NotCreated { dir: PathBuf, reason: String },
    #[error("{path}: {have} training lines up to the checkpoint's iteration {iteration}, where there should be {want}: the file was truncated or deleted, and resuming would leave a gap in the curves\n  fix: `metalab rerun {id}` trains the run again from its config, to the same numbers")]
    MetricsGap {
        path: PathBuf,
        have: usize,
        want: usize,
        iteration: usize,
        id: String,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("process {p}, which holds the run's lock"),
        None => "another process, which holds the run's lock".into(),
    }
}

fn damage_list(d: &[MetricsDamage]) -> String {
    let shown: Vec<String> = d.iter().take(5).map(|x| x.to_string()).collect();
    let more = d.len().saturating_sub(5);
    format!(
        "{} damaged line{}: {}{}",
        d.len(),
        if d.len() == 1 { "" } else { "s" },
        shown.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

/// Only what is true wherever the error happens: whether the run can be resumed depends on
/// whether it has a checkpoint yet, which the caller adds.
fn disk_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) => "\n  fix: the disk is full; free space",
        Some(13) => "\n  fix: check the folder's permissions",
        _ => "",
    }
}

impl RunError {
    pub fn io(path: &Path, source: std::io::Error) -> RunError {
        if files::is_link_refusal(&source) {
            return RunError::Link(path.to_path_buf());
        }
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A line of `metrics.jsonl` that is not a metrics record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsDamage {
    /// 1-based.
    pub line: usize,
    /// The start of the line, printable.
    pub text: String,
    /// The last line, cut short before its newline: what a process killed mid-append leaves.
    pub partial: bool,
}

impl std::fmt::Display for MetricsDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}{}: `{}`",
            self.line,
            if self.partial { " (cut short)" } else { "" },
            self.text
        )
    }
}
