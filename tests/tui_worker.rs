//! Issue 18 §1: explicit actions on runs — open for Compare, export, delete, rerun — read and
//! write the disk on the worker thread, never the UI thread. The turn that handles the key
//! only hands the job over and says so ("opening 2 runs…"): the answer can only arrive in a
//! later turn, so the screen keeps answering keys meanwhile, whatever the disk does.

#[path = "cli_common/mod.rs"]
mod cli_common;
mod tui_common;

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use metalab::engine::LaunchOptions;
use metalab::tui::app::Screen;
use metalab::tui::runtime::Runtime;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_common::{status, wake_key};

type Rt = Runtime<TestBackend>;

/// Turn the loop until `done` holds; a guard, not a timing assertion.
fn turn_until(rt: &mut Rt, what: &str, done: impl Fn(&Rt) -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !done(rt) {
        assert!(
            Instant::now() < until,
            "never: {what}; status {:?}",
            rt.app.status
        );
        rt.turn();
    }
}

/// One key, handled in one turn.
fn press(rt: &mut Rt, k: KeyCode) {
    rt.waker().send(wake_key(k)).unwrap();
    let before = rt.stats.inputs;
    while rt.stats.inputs == before {
        rt.turn();
    }
}

#[test]
fn compare_export_delete_and_rerun_run_on_the_worker() {
    let project = tempfile::tempdir().unwrap();
    let runs = project.path().join("runs");
    std::fs::create_dir_all(project.path().join("experiments")).unwrap();
    let a = cli_common::train_in_process(&runs, 20, false);
    let b = cli_common::train_in_process(&runs, 20, false);

    let term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    press(&mut rt, KeyCode::Char('2'));
    turn_until(&mut rt, "both runs listed", |rt| rt.app.runs.len() == 2);

    // Compare: the key's turn hands the job over; the screen changes in a later turn.
    press(&mut rt, KeyCode::Char('M'));
    press(&mut rt, KeyCode::Char('c'));
    assert_eq!(rt.app.screen, Screen::Runs, "opened on the UI thread");
    assert_eq!(rt.app.jobs, 1);
    assert!(
        status(&rt.app).contains("opening 2 runs…"),
        "{}",
        status(&rt.app)
    );
    assert!(tui_common::screen(&rt.app, 120, 40).contains("opening 2 runs…"));
    // Keys are answered meanwhile.
    press(&mut rt, KeyCode::Char('?'));
    assert!(rt.app.modal.is_some(), "help opened while the runs load");
    press(&mut rt, KeyCode::Esc);
    turn_until(&mut rt, "compare opened", |rt| {
        rt.app.screen == Screen::Compare
    });
    assert_eq!(rt.app.jobs, 0);
    assert_eq!(
        rt.app.session().unwrap().arms.len(),
        1,
        "two seeds of one arm"
    );

    // Export.
    press(&mut rt, KeyCode::Char('2'));
    press(&mut rt, KeyCode::Char('x'));
    assert!(
        status(&rt.app).contains("exporting 1 run…"),
        "{}",
        status(&rt.app)
    );
    turn_until(&mut rt, "exported", |rt| rt.app.jobs == 0);
    let exported = std::fs::read_dir(project.path().join("exports"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        exported >= 3,
        "CSV, SVG and PNG: {exported}; {}",
        status(&rt.app)
    );

    // Rerun: the config is read on the worker, then the launch starts.
    press(&mut rt, KeyCode::Char('r'));
    assert_eq!(rt.app.screen, Screen::Runs);
    assert!(
        status(&rt.app).contains("reading the config of"),
        "{}",
        status(&rt.app)
    );
    turn_until(&mut rt, "rerun started", |rt| {
        rt.app.screen == Screen::Monitor
    });
    assert!(status(&rt.app).contains("rerunning"), "{}", status(&rt.app));
    turn_until(&mut rt, "rerun finished", |rt| !rt.app.training());

    // Delete: `y` hands it over; the folder goes and the list follows.
    press(&mut rt, KeyCode::Char('2'));
    turn_until(&mut rt, "three runs listed", |rt| rt.app.runs.len() == 3);
    let id = rt.app.runs[rt.app.run_sel].id.clone();
    let dir = rt.app.runs[rt.app.run_sel].dir.clone();
    press(&mut rt, KeyCode::Char('d'));
    press(&mut rt, KeyCode::Char('y'));
    assert!(
        status(&rt.app).contains("deleting 1 run…"),
        "{}",
        status(&rt.app)
    );
    turn_until(&mut rt, "deleted", |rt| rt.app.jobs == 0);
    assert_eq!(status(&rt.app), format!("deleted {id}"));
    assert!(!dir.exists());
    turn_until(&mut rt, "listed again", |rt| rt.app.runs.len() == 2);
    assert!([a, b].iter().filter(|d| d.exists()).count() >= 1);
    press(&mut rt, KeyCode::Char('q'));
    rt.turn();
}
