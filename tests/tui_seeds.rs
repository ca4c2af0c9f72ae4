//! Seeds in the workbench (issue 18 §3): three seeds of a two-arm experiment, trained by the
//! real engine, marked with `M` in Runs and compared with `c`: one curve per arm (the mean over
//! seeds, banded across them), mean ± t-CI over seeds, n, and the paired test by seed.

mod tui_common;

use std::path::Path;

use metalab::engine::{self, LaunchOptions};
use metalab::experiment::parse_str;
use metalab::tui::app::Screen;
use metalab::tui::dispatch as update;
use metalab::tui::App;
use tui_common::{k, screen};

const TINY: &str = r#"Experiment(
    name: "tiny-seeds",
    seed: 1,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [
        Arm(name: "maml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(epsilon: 0.5), inner_steps: 2),
    ],
    train: Train(iterations: 40, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 20, periodic_tasks: 8, inner_steps: 2, tracked_tasks: 2),
)
"#;

fn train(root: &Path, seed: u64) {
    let mut exp = parse_str(TINY, Path::new("tiny.ron")).unwrap();
    exp.seed = seed;
    let h = engine::launch(
        exp,
        LaunchOptions {
            runs_root: root.join("runs"),
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !h.is_done() {
        assert!(
            std::time::Instant::now() < deadline,
            "seed {seed} did not finish"
        );
        let _ = h.events.recv_timeout(std::time::Duration::from_millis(50));
    }
}

/// `UPDATE_CAPTURES=1` writes the screens to docs/captures/ for the issue's record.
fn capture(name: &str, text: &str) {
    if std::env::var_os("UPDATE_CAPTURES").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/captures");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn a_seed_sweep_compares_as_one_banded_curve_per_arm_with_a_paired_test() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    for seed in [1, 2, 3] {
        train(dir.path(), seed);
    }
    let mut app = App::new(dir.path());
    update(&mut app, k('2'));
    assert_eq!(app.runs.len(), 6);
    // The Runs pane: each run's seed group result, over its 3 seeds.
    let s = screen(&app, 120, 40);
    capture("seeds_runs_120x40.txt", &s);
    assert!(s.contains("3 seeds"), "{s}");
    update(&mut app, k('M'));
    assert_eq!(app.marked.len(), 6);
    update(&mut app, k('c'));
    assert_eq!(app.screen, Screen::Compare);
    assert!(app.marked.is_empty());
    let sess = app.saved.as_ref().unwrap();
    assert_eq!(sess.arms.len(), 2, "one arm per configuration, not per run");
    assert_eq!(sess.title, "6 runs as 2 arms over seeds");
    for a in &sess.arms {
        assert_eq!(a.seeds.len(), 3);
        assert_eq!(a.final_eval.as_ref().unwrap().loss.n, 3);
    }
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        capture(&format!("seeds_compare_{w}x{h}.txt"), &s);
        assert!(s.contains("test @40, 20 tasks, 3 seeds"), "{s}");
        assert!(s.contains("● maml") && s.contains("● reptile"), "{s}");
        // Labelled by arm: no run's random hex.
        assert!(!s.contains(" #"), "{s}");
        if w >= 120 {
            assert!(s.contains("over seeds"), "{s}");
            assert!(s.contains("vs best, paired by seed"), "{s}");
            assert!(s.contains("(best)"), "{s}");
        }
    }
}
