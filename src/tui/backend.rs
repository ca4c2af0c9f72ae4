//! The one place the TUI touches the engine and the run store, so API changes land here only.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use crate::engine::messages::{ArmIndex, Command, EngineEvent, EvalResult, TaskPoint, TrainPoint};
use crate::experiment::Experiment;

/// A saved run as the browser shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub dir: PathBuf,
    pub experiment: String,
    pub arm: String,
    pub algorithm: String,
    pub status: String,
    /// Why a failed run failed.
    pub reason: Option<String>,
    pub started_unix: u64,
    pub iteration: usize,
    pub total_iterations: usize,
    pub headline: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub train: Vec<TrainPoint>,
    pub evals: Vec<EvalResult>,
    pub tasks: Vec<TaskPoint>,
    pub classification: bool,
}

/// A launched experiment: its event stream and its control.
pub struct Engine {
    pub events: Receiver<EngineEvent>,
}

impl Engine {
    pub fn send(&self, _arm: Option<ArmIndex>, _cmd: Command) {}
    pub fn is_done(&self) -> bool {
        true
    }
}

pub fn launch(_exp: Experiment, _runs_root: &Path, _source: Option<PathBuf>) -> Result<Engine, String> {
    Err("the training engine is not available in this build yet".into())
}

pub fn list_runs(_root: &Path) -> Vec<RunRow> {
    Vec::new()
}

pub fn load_metrics(dir: &Path) -> Result<Metrics, String> {
    Err(format!("{}: cannot load metrics yet", dir.display()))
}

pub fn load_config(dir: &Path) -> Result<Experiment, String> {
    Err(format!("{}: cannot load the config yet", dir.display()))
}

pub fn delete_run(_root: &Path, id: &str) -> Result<(), String> {
    Err(format!("cannot delete {id} yet"))
}
