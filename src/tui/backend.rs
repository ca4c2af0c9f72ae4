//! The one place the TUI touches the engine and the run store, so API changes land here only.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use crate::engine::{self, ArmIndex, Command, EngineEvent, EngineHandle, LaunchOptions};
use crate::experiment::Experiment;
use crate::runs::{self, RunStatus};

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

/// `defaults` carries what the command line set for every launch (threads, data folder).
pub fn launch(
    exp: Experiment,
    runs_root: &Path,
    source: Option<PathBuf>,
    defaults: &LaunchOptions,
) -> Result<Engine, String> {
    let opts = LaunchOptions {
        runs_root: runs_root.to_path_buf(),
        source,
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

pub fn list_runs(root: &Path) -> Vec<RunRow> {
    runs::list_runs(root)
        .into_iter()
        .map(|r| RunRow {
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
        })
        .collect()
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
