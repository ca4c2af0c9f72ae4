//! The one place the TUI touches the engine and the run store, so API changes land here only.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use crate::engine::{self, ArmIndex, Command, EngineEvent, EngineHandle, LaunchOptions};
use crate::experiment::Experiment;
use crate::runs::{self, RunNotes, RunStatus, Score};

pub use crate::runs::RunMetrics as Metrics;

/// A saved run as the browser shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
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
    /// The experiment's seed: runs of one configuration are labelled by it (`maml s2`).
    pub seed: Option<u64>,
    /// The sweep variant it belongs to (`metalab sweep`), if any.
    pub variant: Option<String>,
    /// What it shares with the other seeds of its configuration ([`seed_group_key`]); none
    /// when its frozen config cannot be read.
    pub seed_key: Option<String>,
    /// Where it came from, the researcher's notes, its result as a number.
    pub extra: RunExtra,
}

/// What the Runs pane knows of a run beyond its row's columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunExtra {
    /// The run it reproduces.
    pub rerun_of: Option<String>,
    /// The checkpoint iterations it was resumed from.
    pub resumed_at: Vec<usize>,
    pub score: Option<Score>,
    pub notes: RunNotes,
    pub host: String,
    /// `cpu (model)` or `cuda:0 (model)`; empty where unknown.
    pub device: String,
    pub threads: usize,
    /// Training seconds; 0 where unknown.
    pub seconds: f64,
    /// A run that ended without a final test: its last validation, as the result column
    /// shows it (`val MSE 0.412 ± 0.031 @2700`).
    pub last_validation: Option<String>,
}

/// `sinusoid-seeds-003-9090c3` → (`sinusoid-seeds`, `3`).
pub fn sweep_of(variant: &str) -> Option<(&str, &str)> {
    let (rest, _hash) = variant.rsplit_once('-')?;
    let (sweep, index) = rest.rsplit_once('-')?;
    Some((sweep, index.trim_start_matches('0').max("0")))
}

/// A launched experiment: its event stream and its control.
pub struct Engine {
    handle: EngineHandle,
}

impl Engine {
    pub fn events(&self) -> &Receiver<EngineEvent> {
        &self.handle.events
    }
    pub fn send(&self, arm: Option<ArmIndex>, cmd: Command) {
        self.handle.send(arm, cmd)
    }
    pub fn is_done(&self) -> bool {
        self.handle.is_done()
    }
}

/// `defaults` carries what the command line set for every launch (threads, data folder);
/// `rerun_of` names the run a rerun reproduces, recorded in the new run.
pub fn launch(
    exp: Experiment,
    runs_root: &Path,
    source: Option<PathBuf>,
    rerun_of: Option<String>,
    defaults: &LaunchOptions,
) -> Result<Engine, String> {
    let opts = LaunchOptions {
        runs_root: runs_root.to_path_buf(),
        source,
        rerun_of,
        ..defaults.clone()
    };
    engine::launch(exp, opts)
        .map(|handle| Engine { handle })
        .map_err(|e| e.to_string())
}

/// Continue a run from its checkpoint; the family loads on the engine thread.
pub fn resume(dir: &Path, runs_root: &Path, defaults: &LaunchOptions) -> Result<Engine, String> {
    let opts = LaunchOptions {
        runs_root: runs_root.to_path_buf(),
        ..defaults.clone()
    };
    engine::resume(dir, opts)
        .map(|handle| Engine { handle })
        .map_err(|e| e.to_string())
}

/// What must match for two runs to be seeds of one configuration: the experiment, the arm
/// and the frozen config with its seed (and thread count, which changes no number) cleared.
/// The one rule: the Runs pane groups by it and Compare merges by it.
pub fn seed_group_key(c: &Experiment, arm: &str) -> String {
    format!(
        "{}\u{1f}{arm}\u{1f}{}",
        c.name,
        crate::sweep::aggregate::key_config(c)
    )
}

/// Saved runs, newest first, with a sweep's runs kept together (ordered by variant, then arm)
/// where its newest run would be, each with its seed-group key.
pub fn list_runs(root: &Path) -> Vec<RunRow> {
    let here = runs::local_host();
    let mut rows: Vec<RunRow> = runs::list_runs(root)
        .into_iter()
        .map(|r| RunRow {
            extra: RunExtra {
                last_validation: if r.headline.is_none()
                    && matches!(r.status, RunStatus::Stopped | RunStatus::Interrupted)
                {
                    last_validation(&r.dir)
                } else {
                    None
                },
                rerun_of: r.rerun_of,
                resumed_at: r.resumed_at,
                score: r.score,
                notes: r.notes,
                // Named only when it is another machine (copied in, or a shared folder).
                host: if r.host == here {
                    "this machine".into()
                } else {
                    r.host
                },
                device: r.device,
                threads: r.threads,
                seconds: r.seconds,
            },
            seed_key: runs::load_config(&r.dir)
                .ok()
                .map(|c| seed_group_key(&c, &r.arm)),
            status: r.status,
            id: r.id,
            dir: r.dir,
            experiment: r.experiment,
            arm: r.arm,
            algorithm: r.algorithm,
            started_unix: r.started_unix,
            iteration: r.iteration,
            total_iterations: r.total_iterations,
            headline: r.headline,
            seed: r.seed,
            variant: r.variant,
        })
        .collect();
    let key = |r: &RunRow| {
        r.variant
            .as_deref()
            .and_then(sweep_of)
            .map_or_else(|| r.id.clone(), |(s, _)| format!("sweep {s}"))
    };
    let mut newest = std::collections::HashMap::new();
    for r in &rows {
        let t = newest.entry(key(r)).or_insert(0);
        *t = r.started_unix.max(*t);
    }
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        newest[&kb]
            .cmp(&newest[&ka])
            .then(ka.cmp(&kb))
            .then(a.variant.cmp(&b.variant))
            .then(a.arm.cmp(&b.arm))
            .then(b.started_unix.cmp(&a.started_unix))
    });
    rows
}

/// The last validation a run made, as a result: what a stopped run has instead of a test.
fn last_validation(dir: &Path) -> Option<String> {
    let m = runs::load_metrics(dir).ok()?;
    let e = m
        .evals
        .iter()
        .rev()
        .find(|e| e.split == crate::tasks::Split::Validation)?;
    let value = match e.accuracy {
        Some(a) => format!("acc {:.1}% ± {:.1}", 100.0 * a.mean, 100.0 * a.ci95),
        None if m.classification => format!("loss {:.3} ± {:.3}", e.loss.mean, e.loss.ci95),
        None => format!("MSE {:.3} ± {:.3}", e.loss.mean, e.loss.ci95),
    };
    Some(format!("val {value} @{}", e.iteration))
}

pub fn load_metrics(dir: &Path) -> Result<Metrics, String> {
    runs::load_metrics(dir).map_err(|e| e.to_string())
}

pub fn load_config(dir: &Path) -> Result<Experiment, String> {
    runs::load_config(dir).map_err(|e| e.to_string())
}

pub fn delete_run(root: &Path, id: &str) -> Result<(), String> {
    runs::delete_run(root, id).map_err(|e| e.to_string())
}

pub fn save_notes(dir: &Path, notes: &RunNotes) -> Result<(), String> {
    runs::save_notes(dir, notes).map_err(|e| e.to_string())
}

/// The run's frozen experiment, as written: what it ran with.
pub fn config_text(dir: &Path) -> Result<String, String> {
    let path = dir.join(runs::CONFIG);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}
