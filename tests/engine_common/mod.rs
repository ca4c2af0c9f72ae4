// Shared by the tests that train through the engine's public API and read what it recorded (a
// folder module, so it is not a test target of its own).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use metalab::engine::{Command, EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::Experiment;
use metalab::runs::{self, RunStatus};

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

/// Runs under `root` on `threads` threads.
pub fn opts(root: &Path, threads: usize) -> LaunchOptions {
    LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(threads),
        ..LaunchOptions::default()
    }
}

/// Train `p` to its end, or ask it to stop once a training point reaches `stop_after`; the run
/// directory and every event, in order.
pub fn run_until(p: Prepared, stop_after: Option<usize>) -> (PathBuf, Vec<EngineEvent>) {
    let h = p.launch();
    let mut events = vec![];
    for ev in h.events.iter() {
        if let (EngineEvent::Train { point, .. }, Some(n)) = (&ev, stop_after) {
            if point.iteration >= n {
                h.send(None, Command::Stop);
            }
        }
        events.push(ev);
    }
    h.join();
    (run_dir(&events), events)
}

/// The reproducibility contract of a finished run `straight`: its frozen config alone reruns
/// it to the same numbers on one thread, and `fresh` (the same experiment, launched anew)
/// stopped at iteration `stop_at` and resumed ends with the same numbers too.
pub fn assert_reruns_and_resumes(straight: &Path, fresh: Prepared, stop_at: usize, root: &Path) {
    let one_thread = || opts(root, 1);
    let numbers = |d: &Path| runs::deterministic_metrics(d).unwrap();
    let frozen = runs::load_config(straight).unwrap();
    let (rerun, _) = run_until(Prepared::new(frozen, one_thread()).unwrap(), None);
    assert_eq!(numbers(straight), numbers(&rerun), "the rerun differs");

    let (stopped, _) = run_until(fresh, Some(stop_at));
    assert_eq!(
        runs::load_meta(&stopped).unwrap().status,
        RunStatus::Stopped
    );
    run_until(Prepared::resume(&stopped, one_thread()).unwrap(), None);
    assert_eq!(
        runs::load_meta(&stopped).unwrap().status,
        RunStatus::Finished
    );
    assert_eq!(
        numbers(straight),
        numbers(&stopped),
        "the resumed run differs"
    );
}
