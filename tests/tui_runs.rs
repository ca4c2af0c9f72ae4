//! The runs browser and the live monitor against the real engine on a tiny experiment.

mod tui_common;

use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use metalab::engine::{self, LaunchOptions};
use metalab::experiment::parse_str;
use metalab::tui::app::{Effect, Screen};
use metalab::tui::session::ArmStatus;
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use tui_common::{k, screen};

const TINY: &str = r#"Experiment(
    name: "tiny",
    seed: 3,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [
        Arm(name: "fomaml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(epsilon: 0.5), inner_steps: 2),
    ],
    train: Train(iterations: 30, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 4, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 2),
)
"#;

fn tiny_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    std::fs::write(dir.path().join("experiments/tiny.ron"), TINY).unwrap();
    dir
}

/// Drive the real engine, feeding its events to `update` as the event loop does.
fn train_live(root: &Path, app: &mut App) {
    let exp = parse_str(TINY, Path::new("tiny.ron")).unwrap();
    let h = engine::launch(
        exp,
        LaunchOptions {
            runs_root: root.join("runs"),
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(h.is_done() && app.live.as_ref().is_some_and(|s| !s.any_active())) {
        assert!(Instant::now() < deadline, "tiny run did not finish");
        if let Ok(ev) = h.events.recv_timeout(Duration::from_millis(50)) {
            update(app, Msg::Engine(ev));
        }
        let _ = screen(app, 120, 40); // the UI keeps drawing while training
    }
    for ev in h.events.try_iter() {
        update(app, Msg::Engine(ev));
    }
}

#[test]
fn live_training_then_browse_compare_export_rerun_delete() {
    let p = tiny_project();
    let mut app = App::new(p.path());
    update(&mut app, k('r'));
    assert!(matches!(app.effects.as_slice(), [Effect::Launch { .. }]));
    app.effects.clear();
    train_live(p.path(), &mut app);
    let s = app.live.as_ref().unwrap();
    assert!(
        s.arms.iter().all(|a| a.status == ArmStatus::Finished),
        "{:?}",
        s.arms.iter().map(|a| &a.status).collect::<Vec<_>>()
    );
    assert!(s
        .arms
        .iter()
        .all(|a| a.final_eval.is_some() && !a.train_loss.is_empty() && !a.tasks.is_empty()));
    let text = screen(&app, 120, 40);
    assert!(text.contains("finished"), "{text}");
    assert!(text.contains("test MSE"), "{text}");

    // Export what the monitor shows (read back in full from the run directories).
    update(&mut app, k('x'));
    let first: Vec<_> = std::fs::read_dir(p.path().join("exports"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(first.len(), 3, "{:?}", app.status); // CSV, SVG and PNG

    // Runs browser: both arms listed with their headline.
    update(&mut app, k('2'));
    assert_eq!(app.screen, Screen::Runs);
    assert_eq!(app.runs.len(), 2, "{:?}", app.runs);
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("tiny") && text.contains("finished") && text.contains("MSE"),
        "{text}"
    );

    // Open one run: its curves come back from disk.
    update(&mut app, Msg::Key(KeyEvent::from(KeyCode::Enter)));
    assert_eq!(app.screen, Screen::Monitor);
    let saved = app.saved.as_ref().unwrap();
    assert_eq!(saved.arms.len(), 1);
    assert!(!saved.arms[0].train_loss.is_empty());
    let text = screen(&app, 120, 40);
    assert!(text.contains("saved run"), "{text}");
    update(&mut app, k('q'));
    assert_eq!(app.screen, Screen::Runs);

    // Mark both and compare: config differences are found from the frozen configs.
    update(&mut app, k('g'));
    update(&mut app, k(' '));
    update(&mut app, k(' '));
    update(&mut app, k('c'));
    assert_eq!(app.screen, Screen::Compare);
    let text = screen(&app, 120, 40);
    assert!(
        // One experiment: the arm names alone tell the runs apart.
        text.contains("fomaml") && text.contains("reptile") && !text.contains("tiny/fomaml"),
        "{text}"
    );
    assert!(
        text.contains("config diff") && text.contains("inner_steps"),
        "{text}"
    );
    update(&mut app, k('q'));

    // Export the marked runs.
    update(&mut app, k('x'));
    let exports: Vec<_> = std::fs::read_dir(p.path().join("exports"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(exports.len(), 6, "{:?}", app.status);
    // Both exports are of experiment `tiny`: the second is written beside the first.
    let csv = exports
        .iter()
        .find(|p| p.extension().unwrap() == "csv" && !first.contains(p))
        .unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(csv.starts_with("run,label,series,"));
    assert!(csv.contains("-tiny-reptile-"), "{csv}");
    assert!(csv.contains(",reptile,train_loss"), "{csv}");
    assert!(csv.contains("eval_loss,test"));

    // Rerun the selected run: a launch of its frozen one-arm config.
    update(&mut app, k('r'));
    match app.effects.as_slice() {
        [Effect::Launch { exp, .. }] => assert_eq!(exp.arms.len(), 1),
        other => panic!("{other:?}"),
    }
    app.effects.clear();
    app.live.as_mut().unwrap().live = false; // pretend the rerun is not running
    app.screen = Screen::Runs;

    // Delete asks, then removes the directory.
    let id = app.runs[app.run_sel].id.clone();
    let dir = app.runs[app.run_sel].dir.clone();
    update(&mut app, k('d'));
    update(&mut app, k('n'));
    assert!(dir.exists());
    update(&mut app, k('d'));
    update(&mut app, k('y'));
    assert!(!dir.exists());
    assert!(app.runs.iter().all(|r| r.id != id));
}

/// A damaged line in a saved run's metrics is left out of its curves and said in the status
/// line when the run is opened, never dropped silently.
#[test]
fn opening_a_run_with_damaged_metrics_says_so() {
    let p = tiny_project();
    let mut app = App::new(p.path());
    update(&mut app, k('r'));
    app.effects.clear();
    train_live(p.path(), &mut app);
    app.refresh_runs();
    let row = app.runs[0].clone();
    let path = row.dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = format!("{{{{{}", lines[2]);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    metalab::tui::actions::perform(
        &mut app,
        metalab::tui::app::Io::OpenRuns {
            rows: vec![row.clone()],
            screen: Screen::Monitor,
        },
    );
    let (status, _) = app.status.clone().expect("a status line");
    assert!(
        status.contains(&row.id)
            && status.contains("line 3")
            && status.contains("1 damaged line left out"),
        "{status}"
    );
    // The rest is shown.
    assert!(!app.saved.as_ref().unwrap().arms[0].train_loss.is_empty());
}
