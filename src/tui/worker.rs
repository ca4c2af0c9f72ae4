//! The workbench's worker for explicit actions on runs — open for Monitor/Compare, export,
//! delete, load a config to rerun — on its own thread, so a large run folder or a slow disk
//! never stops the screen from answering. [`run`] is the disk work itself; without a worker
//! (tests, `App::new`) the app calls it in place.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::time::SystemTime;

use crate::experiment::Experiment;
use crate::export::{self, ArmCurves};
use crate::runs::label::Subject;
use crate::runs::RunStatus;

use super::screen::Screen;
use super::store::{self, Metrics, RunRow};
use super::text::first_line;

/// Disk work an action asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Read runs' metrics and configs, to show in `screen`.
    Open { rows: Vec<RunRow>, screen: Screen },
    /// Write the runs' curves to `exports_dir` as CSV, SVG and PNG.
    Export {
        rows: Vec<RunRow>,
        exports_dir: PathBuf,
    },
    /// Delete runs by id, refusing those still training.
    Delete { runs_dir: PathBuf, ids: Vec<String> },
    /// Read a run's frozen config to train it again.
    Rerun { row: Box<RunRow> },
}

impl Job {
    /// What the status line says while it runs.
    pub fn doing(&self) -> String {
        let runs = |n: usize| super::text::plural(n, "run");
        match self {
            Job::Open { rows, .. } => format!("opening {}…", runs(rows.len())),
            Job::Export { rows, .. } => format!("exporting {}…", runs(rows.len())),
            Job::Delete { ids, .. } => format!("deleting {}…", runs(ids.len())),
            Job::Rerun { row } => format!("reading the config of {}…", row.id),
        }
    }
}

/// One run read for [`Job::Open`].
#[derive(Debug, Clone)]
pub struct Loaded {
    pub metrics: Result<Metrics, String>,
    pub config: Option<Experiment>,
}

/// A job's outcome, for the UI thread to show.
#[derive(Debug, Clone)]
pub enum Done {
    Opened {
        rows: Vec<RunRow>,
        screen: Screen,
        loaded: Vec<Loaded>,
    },
    /// The export's summary, or why it failed.
    Exported(Result<String, String>),
    Deleted {
        deleted: Vec<String>,
        /// (id, why) of each run kept.
        kept: Vec<(String, String)>,
    },
    Rerun {
        row: Box<RunRow>,
        config: Box<Result<Experiment, String>>,
    },
}

/// Carry out `job` on this thread.
pub fn run(job: Job) -> Done {
    match job {
        Job::Open { rows, screen } => {
            // Stop at the first unreadable run: the UI reports it and opens nothing.
            let mut loaded = Vec::with_capacity(rows.len());
            for r in &rows {
                let metrics = store::load_metrics(&r.dir);
                let failed = metrics.is_err();
                let config = store::load_config(&r.dir).ok();
                loaded.push(Loaded { metrics, config });
                if failed {
                    break;
                }
            }
            Done::Opened {
                rows,
                screen,
                loaded,
            }
        }
        Job::Export { rows, exports_dir } => Done::Exported(export_rows(&exports_dir, &rows)),
        Job::Delete { runs_dir, ids } => {
            let (mut deleted, mut kept) = (vec![], vec![]);
            for id in ids {
                match store::delete_run(&runs_dir, &id) {
                    Ok(()) => deleted.push(id),
                    Err(e) => {
                        let why = first_line(&e).to_string();
                        kept.push((id, why))
                    }
                }
            }
            Done::Deleted { deleted, kept }
        }
        Job::Rerun { row } => {
            let config = Box::new(store::load_config(&row.dir));
            Done::Rerun { row, config }
        }
    }
}

/// Curves of `rows` to `exports_dir`, read in full from disk, under a name made from what they
/// are (one run's id, the experiment, or `compare-N-runs`) and the minute.
fn export_rows(exports_dir: &std::path::Path, rows: &[RunRow]) -> Result<String, String> {
    if rows.is_empty() {
        return Err("nothing to export".into());
    }
    let mut curves = Vec::new();
    let mut classification = false;
    let names = labels(rows);
    for (r, label) in rows.iter().zip(names.clone()) {
        let m = store::load_metrics(&r.dir)?;
        classification |= m.classification;
        curves.push(ArmCurves {
            run: r.id.clone(),
            label,
            identity: r.arm.clone(),
            train: m.train,
            evals: m.evals,
            tasks: m.tasks,
            clock: m.clock,
            algorithm: r.algorithm.clone(),
            stopped_at: matches!(r.status, RunStatus::Stopped | RunStatus::Interrupted)
                .then_some(r.iteration),
            ways: store::load_config(&r.dir).ok().and_then(|c| c.eval_ways()),
        });
    }
    let stem = export::name::stem(&subjects(rows), SystemTime::now());
    let done = export::write(exports_dir, &stem, &curves, classification)
        .map_err(|e| format!("export failed: {e}"))?;
    // Runs that recorded task views (embeddings, affinities) get their figures beside.
    let mut extra = 0;
    for (r, label) in rows.iter().zip(&names) {
        let stem = if rows.len() > 1 {
            format!("{}-{label}", done.stem)
        } else {
            done.stem.clone()
        };
        extra += export::write_task_figures(exports_dir, &stem, &r.dir, label)
            .map_err(|e| format!("export failed: {e}"))?
            .len();
    }
    Ok(match extra {
        0 => done.summary(),
        n => format!(
            "{} and {n} task-view file{} ({}-*)",
            done.summary(),
            if n == 1 { "" } else { "s" },
            done.stem
        ),
    })
}

/// The runs' names in every view and export of them: one rule, so the Compare view, the Runs
/// pane's export and `metalab export` agree, and a rerun never shares its original's name.
pub fn labels(rows: &[RunRow]) -> Vec<String> {
    crate::runs::label::unique(&subjects(rows))
}

fn subjects(rows: &[RunRow]) -> Vec<Subject> {
    rows.iter()
        .map(|r| Subject::new(&r.experiment, &r.arm, Some(&r.id)).with_seed(r.seed))
        .collect()
}

/// The handle the app keeps; the thread ends when it drops.
#[derive(Debug)]
pub struct Worker {
    tx: Sender<Job>,
}

impl Worker {
    /// Start the thread; `reply` is called on it with every outcome, in order.
    pub fn spawn(reply: impl Fn(Done) + Send + 'static) -> Worker {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("metalab-worker".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    reply(run(job));
                }
            })
            .expect("spawn the worker thread");
        Worker { tx }
    }

    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}
