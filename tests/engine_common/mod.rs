// Shared by the tests that train through the engine's public API and read what it recorded (a
// folder module, so it is not a test target of its own).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use metalab::engine::{EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::Experiment;

/// Train every arm of `e` to its end under `root` on 2 threads; every event, in order.
pub fn run_all(e: Experiment, root: &Path) -> Vec<EngineEvent> {
    let o = LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(2),
        ..LaunchOptions::default()
    };
    let h = Prepared::new(e, o).unwrap().launch();
    let events: Vec<EngineEvent> = h.events.iter().collect();
    h.join();
    events
}

/// The run directory of the first arm that started.
pub fn run_dir(events: &[EngineEvent]) -> PathBuf {
    events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no arm started: {events:?}"))
}
