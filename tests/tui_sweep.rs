//! Sweep files in the workbench: listed with the experiments (validated like them), launched
//! with `r` onto the local queue — the real `metalab` binary as each variant's process — with
//! each variant's progress in the details and every run in runs/ afterwards.

mod tui_common;
use tui_common::wake_key;

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use metalab::engine::LaunchOptions;
use metalab::sweep::queue::Outcome;
use metalab::tui::catalog::EntryKind;
use metalab::tui::runtime::Runtime;
use metalab::tui::sweep_view::VariantState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const BASE: &str = r#"Experiment(
    name: "tiny",
    seed: 1,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "fomaml", algorithm: Fomaml)],
    train: Train(iterations: 60, meta_batch: 2, log_every: 20),
    eval: Eval(every: 30, tasks: 4, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 1),
)
"#;

const SWEEP: &str = r#"Sweep(
    name: "tiny-seeds",
    experiment: "tiny.ron",
    axes: [Axis(path: "seed", values: [1, 2])],
)
"#;

fn screen(rt: &Runtime<TestBackend>) -> String {
    tui_common::screen(&rt.app, 120, 40)
}

#[test]
fn a_sweep_file_is_listed_and_runs_on_the_local_queue() {
    let project = tempfile::tempdir().unwrap();
    let exp = project.path().join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(exp.join("tiny.ron"), BASE).unwrap();
    std::fs::write(exp.join("tiny-seeds.sweep.ron"), SWEEP).unwrap();
    std::fs::write(
        exp.join("broken.sweep.ron"),
        SWEEP.replace("tiny.ron", "missing.ron"),
    )
    .unwrap();

    let term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    rt.set_exe(std::path::Path::new(env!("CARGO_BIN_EXE_metalab")));
    let until = Instant::now() + Duration::from_secs(30);
    while rt.app.experiments.len() < 3 {
        assert!(Instant::now() < until, "never listed");
        rt.turn();
    }
    let names: Vec<_> = rt
        .app
        .experiments
        .iter()
        .map(|e| e.file_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["broken.sweep.ron", "tiny-seeds.sweep.ron", "tiny.ron"]
    );
    let broken = &rt.app.experiments[0];
    assert_eq!(broken.kind, EntryKind::Sweep);
    let err = broken.error.as_deref().unwrap_or_default();
    assert!(err.contains("missing.ron"), "{err}");
    let sweep = &rt.app.experiments[1];
    assert!(sweep.is_valid(), "{:?}", sweep.error);
    assert_eq!(sweep.arms, ["seed=1", "seed=2"]);

    // r on the broken one says why, and starts nothing.
    rt.waker().send(wake_key(KeyCode::Char('r'))).unwrap();
    rt.turn();
    assert!(rt.app.sweep.is_none());
    rt.waker().send(wake_key(KeyCode::Down)).unwrap();
    rt.waker().send(wake_key(KeyCode::Char('r'))).unwrap();
    rt.turn();
    assert!(rt.app.sweeping(), "{:?}", rt.app.status);
    let s = screen(&rt);
    assert!(s.contains("● sweep 0/2"), "{s}");

    let until = Instant::now() + Duration::from_secs(300);
    let mut saw_running = false;
    while rt.app.sweeping() {
        assert!(
            Instant::now() < until,
            "the sweep never ended:\n{}",
            screen(&rt)
        );
        rt.turn();
        if !saw_running {
            let s = screen(&rt);
            saw_running = s.contains("▶ seed=") && s.contains("running on the local queue");
        }
    }
    let view = rt.app.sweep.clone().unwrap();
    assert!(
        view.variants
            .iter()
            .all(|v| v.state == VariantState::Ended(Outcome::Finished)),
        "{view:?}"
    );
    let done = view.done.clone().unwrap();
    assert!(done.contains("2 finished now"), "{done}");
    let s = screen(&rt);
    assert!(s.contains("✓ seed=1") && s.contains("✓ seed=2"), "{s}");
    eprintln!("{s}");
    assert!(saw_running, "no variant was ever shown running");

    // Both variants' runs are listed in Runs.
    let until = Instant::now() + Duration::from_secs(10);
    while rt.app.all_runs.len() < 2 {
        assert!(Instant::now() < until, "runs not listed");
        rt.app.refresh_runs();
        rt.turn();
    }
    assert!(rt.app.all_runs.iter().all(|r| r.variant.is_some()));

    // Launched again, nothing is redone: both were finished before.
    rt.waker().send(wake_key(KeyCode::Char('r'))).unwrap();
    rt.turn();
    while rt.app.sweeping() {
        rt.turn();
    }
    let done = rt.app.sweep.as_ref().unwrap().done.clone().unwrap();
    assert!(
        done.contains("0 finished now, 2 already finished"),
        "{done}"
    );
}
