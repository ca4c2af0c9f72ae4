//! Finding runs: listing a runs folder (damaged folders too), telling a live run from a dead
//! one, and deleting only what is not being written.

use std::path::{Path, PathBuf};

use super::error::RunError;
use super::lock::{holder, locked};
use super::meta::{local_host, RunMeta, RunStatus};
use super::names::{run_id, CHECKPOINT, CONFIG, LOCK, META, METRICS};
use super::notes::{load_notes, RunNotes};
use super::text::printable;
use super::{load_config, load_meta, locate};

/// A listed run, for the browser and `metalab runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: String,
    pub dir: PathBuf,
    pub experiment: String,
    pub arm: String,
    pub algorithm: String,
    pub status: RunStatus,
    pub started_unix: u64,
    pub iteration: usize,
    pub total_iterations: usize,
    pub headline: Option<String>,
    pub host: String,
    /// The experiment's seed (the frozen config's, for a damaged run that still has one):
    /// runs of one configuration are told apart by it.
    pub seed: Option<u64>,
    /// Where and how it ran, for the run's details: `cpu (AMD EPYC …)`, its thread count and
    /// its training seconds (0 where unknown).
    pub device: String,
    pub threads: usize,
    pub seconds: f64,
    pub variant: Option<String>,
    /// The run this one reproduces (`metalab rerun`, `r` in the workbench).
    pub rerun_of: Option<String>,
    /// The checkpoint iterations it was resumed from, oldest first.
    pub resumed_at: Vec<usize>,
    /// The final result as a number, for sorting by result.
    pub score: Option<Score>,
    /// `notes.json`: the researcher's note and tags.
    pub notes: RunNotes,
}

/// A final result reduced to what sorting needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f64,
    /// Accuracy (higher is better) rather than a loss (lower is better).
    pub accuracy: bool,
}

impl Score {
    pub fn of(e: &crate::metrics::EvalResult) -> Score {
        match e.accuracy {
            Some(a) => Score {
                value: a.mean,
                accuracy: true,
            },
            None => Score {
                value: e.loss.mean,
                accuracy: false,
            },
        }
    }
}

/// Every run under `root`, newest first. A folder that holds a run's files but no readable
/// `run.json` is listed as damaged, with the reason and what can still be done, rather than
/// silently left out.
pub fn list_runs(root: &Path) -> Vec<RunInfo> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return vec![];
    };
    let mut runs: Vec<RunInfo> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_symlink() {
                // Listed, so it does not vanish, but as what it is: every command refuses it.
                return dir.is_dir().then(|| linked(dir));
            }
            if !ft.is_dir() {
                return None;
            }
            match load_meta(&dir) {
                Ok(meta) => Some(RunInfo {
                    id: meta.id.clone(),
                    status: match status_at(&dir, &meta) {
                        RunStatus::Failed(why) => RunStatus::Failed(printable(&why)),
                        other => other,
                    },
                    // A run.json from elsewhere is text someone else wrote: what is shown of it
                    // must not carry terminal escape sequences.
                    experiment: printable(&meta.experiment),
                    arm: printable(&meta.arm),
                    algorithm: printable(&meta.algorithm),
                    started_unix: meta.started_unix,
                    iteration: meta.iteration,
                    total_iterations: meta.total_iterations,
                    headline: meta.headline.as_deref().map(printable),
                    host: printable(&meta.host),
                    seed: Some(meta.seed),
                    device: match meta.device {
                        crate::experiment::DeviceSpec::Cpu => "cpu".to_string(),
                        crate::experiment::DeviceSpec::Cuda(i) => format!("cuda:{i}"),
                    } + &if meta.device_detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", printable(&meta.device_detail))
                    },
                    threads: meta.threads,
                    seconds: meta.seconds,
                    score: meta.final_eval.as_ref().map(Score::of),
                    notes: printable_notes(load_notes(&dir)),
                    dir,
                    variant: meta.variant,
                    rerun_of: meta.rerun_of.as_deref().map(printable),
                    resumed_at: meta.resumed_at,
                }),
                Err(err) => damaged(dir, &err),
            }
        })
        .collect();
    runs.sort_by(|a, b| b.started_unix.cmp(&a.started_unix).then(b.id.cmp(&a.id)));
    runs
}

fn printable_notes(n: RunNotes) -> RunNotes {
    RunNotes {
        note: printable(&n.note).replace('\n', " "),
        tags: n.tags.iter().map(|t| printable(t)).collect(),
    }
}

/// An entry of the runs folder that is a link to a folder: refused by every command, the same
/// rule as [`super::resolve`]'s.
fn linked(dir: PathBuf) -> RunInfo {
    let target = std::fs::read_link(&dir)
        .map(|t| printable(&t.display().to_string()).replace('\n', "?"))
        .unwrap_or_default();
    unreadable(
        dir,
        RunStatus::Damaged(format!(
            "refused: a symbolic link (to {target}); metalab does not follow links in a runs folder\n  fix: to use that run, replace the link with a copy of the folder (`cp -r`); `rm` the link to remove it from this list"
        )),
    )
}

/// A row for a folder whose `run.json` could not be read: only its name and `status` known.
fn unreadable(dir: PathBuf, status: RunStatus) -> RunInfo {
    RunInfo {
        id: run_id(&dir),
        dir,
        experiment: "?".into(),
        arm: "?".into(),
        algorithm: "?".into(),
        status,
        started_unix: 0,
        iteration: 0,
        total_iterations: 0,
        headline: None,
        host: String::new(),
        seed: None,
        device: String::new(),
        threads: 0,
        seconds: 0.0,
        variant: None,
        rerun_of: None,
        resumed_at: Vec::new(),
        score: None,
        notes: RunNotes::default(),
    }
}

/// A folder that looks like a run (it has one of a run's files) but whose `run.json` is not
/// readable; `None` for any other folder.
fn damaged(dir: PathBuf, err: &RunError) -> Option<RunInfo> {
    if ![META, CONFIG, METRICS, CHECKPOINT]
        .iter()
        .any(|f| dir.join(f).exists())
    {
        return None;
    }
    let config = load_config(&dir).ok();
    let id = run_id(&dir);
    let why = match err {
        RunError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "run.json is missing".to_string()
        }
        RunError::Corrupt(_, why) => format!("run.json does not parse: {why}"),
        // Nothing metalab can do with it (a rerun reads config.ron through the same refusal).
        RunError::Link(_) => {
            return Some(RunInfo {
                status: RunStatus::Damaged(
                    err.to_string()
                        .replace(&dir.display().to_string(), &run_id(&dir)),
                ),
                ..linked(dir)
            })
        }
        other => other.to_string().lines().next().unwrap_or("").to_string(),
    };
    let todo = if config.is_some() {
        format!(
            "`metalab rerun {id}` trains it again from its config.ron; delete the folder when done"
        )
    } else {
        "its config.ron is missing or damaged too: nothing to rerun; delete the folder".into()
    };
    let started = std::fs::metadata(&dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let (experiment, arm, algorithm, total) = match &config {
        Some(e) => (
            e.name.clone(),
            e.arms.first().map_or("?".into(), |a| a.name.clone()),
            e.arms
                .first()
                .map_or("?".into(), |a| a.algorithm.label().to_string()),
            e.train.iterations,
        ),
        None => ("?".into(), "?".into(), "?".into(), 0),
    };
    Some(RunInfo {
        experiment,
        arm,
        algorithm,
        started_unix: started,
        total_iterations: total,
        seed: config.as_ref().map(|e| e.seed),
        ..unreadable(dir, RunStatus::Damaged(format!("{why}\n  fix: {todo}")))
    })
}

/// A run marked running whose process is gone was interrupted. Only a run of this host can be
/// probed; one made elsewhere (a copied run, a shared folder) keeps the status it recorded.
/// Without the folder this can only ask whether the recorded pid is a live metalab; prefer
/// [`status_at`], which asks the run's lock.
pub fn effective_status(meta: &RunMeta) -> RunStatus {
    let here = meta.host.is_empty() || meta.host == local_host();
    if meta.status == RunStatus::Running && here && !process_alive(meta.pid) {
        RunStatus::Interrupted
    } else {
        meta.status.clone()
    }
}

/// [`effective_status`] of the run in `dir`, where its lock is the truth: whoever writes a run
/// holds it, the kernel releases it when that process dies, and a recorded pid may be long dead
/// or reused by another metalab. Runs from before the lock have no lock file: for them the pid.
pub fn status_at(dir: &Path, meta: &RunMeta) -> RunStatus {
    let here = meta.host.is_empty() || meta.host == local_host();
    if meta.status != RunStatus::Running || !here {
        return meta.status.clone();
    }
    let live = if dir.join(LOCK).exists() {
        locked(dir)
    } else {
        process_alive(meta.pid)
    };
    if live {
        RunStatus::Running
    } else {
        RunStatus::Interrupted
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        // A killed process whose parent died too can linger as a zombie (state Z) until
        // someone reaps it: it is dead all the same. And a pid is reused once its process is
        // gone: only a metalab (or this very program, when the engine runs inside a test or
        // another front end) still training counts as alive; otherwise a stale run.json would
        // make its run undeletable and unresumable for ever.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        if rest.trim_start().starts_with(['Z', 'X']) {
            return false;
        }
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let own = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        comm == "metalab" || comm == own.trim()
    } else {
        true
    }
}

/// Refuse to touch a run whose process is still training it: its arm would fail on a missing
/// checkpoint, or two processes would write one folder.
pub fn ensure_not_running(dir: &Path) -> Result<(), RunError> {
    if locked(dir) {
        return Err(RunError::StillRunning {
            id: run_id(dir),
            pid: holder(&dir.join(LOCK)),
        });
    }
    match load_meta(dir) {
        Ok(meta) if status_at(dir, &meta) == RunStatus::Running => {
            if !meta.host.is_empty() && meta.host != local_host() {
                // Recorded as running elsewhere: this host cannot tell whether it still is.
                return Err(RunError::RunningElsewhere {
                    id: meta.id,
                    host: meta.host,
                });
            }
            // A run from before the lock file, whose recorded pid is a live metalab.
            Err(RunError::StillRunning {
                id: meta.id,
                pid: Some(meta.pid),
            })
        }
        // A damaged run.json cannot say it is running; deleting it is how it gets cleaned up.
        _ => Ok(()),
    }
}

/// Delete a run directory (only one inside `root`, never one still training). A link listed
/// in the runs folder is removed itself, never what it points to.
pub fn delete_run(root: &Path, id: &str) -> Result<(), RunError> {
    if let Some(link) = super::entry_link(root, id) {
        return std::fs::remove_file(&link).map_err(|e| RunError::io(&link, e));
    }
    let dir = locate(root, id)?;
    ensure_not_running(&dir)?;
    std::fs::remove_dir_all(&dir).map_err(|e| RunError::io(&dir, e))
}
