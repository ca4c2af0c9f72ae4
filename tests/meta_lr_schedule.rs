//! `train.meta_lr_schedule`: refused where it cannot work, frozen into the run, and applied by
//! Adam from the step it names.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn metalab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metalab"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run metalab")
}

const TINY: &str = r#"Experiment(
    name: "sched",
    seed: 3,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [16]),
    arms: [Arm(name: "maml", algorithm: Fomaml)],
    train: Train(iterations: 20, meta_batch: 4, log_every: 5, meta_lr: 0.01SCHEDULE),
    eval: Eval(every: 0, tasks: 10, periodic_tasks: 5, inner_steps: 1),
)
"#;

/// Train losses per logged window of the one run in `dir/runs`.
fn train_losses(dir: &Path) -> Vec<f64> {
    let run = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["kind"] == "train").then(|| v["loss"].as_f64()).flatten()
        })
        .collect()
}

fn train(schedule: &str) -> (tempfile::TempDir, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.ron"), TINY.replace("SCHEDULE", schedule)).unwrap();
    let out = metalab(dir.path(), &["run", "s.ron", "--quiet", "--threads", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let losses = train_losses(dir.path());
    (dir, losses)
}

#[test]
fn a_step_schedule_changes_training_only_after_its_first_step() {
    let (_a, constant) = train("");
    let (b, stepped) = train(", meta_lr_schedule: Step(every: 5, factor: 0.1)");
    assert_eq!(constant.len(), 4, "{constant:?}");
    // Iterations 1–5 use the base rate under both.
    assert_eq!(constant[0], stepped[0]);
    assert_ne!(constant[1..], stepped[1..], "the schedule was not applied");
    let run = std::fs::read_dir(b.path().join("runs"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let frozen = std::fs::read_to_string(run.join("config.ron")).unwrap();
    assert!(
        frozen.contains("Step(") && frozen.contains("every: 5"),
        "{frozen}"
    );
}

#[test]
fn a_schedule_that_cannot_shrink_the_rate_is_refused_at_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.ron");
    let text = TINY.replace(
        "SCHEDULE",
        ", meta_lr_schedule: Step(every: 0, factor: 1.5)",
    );
    std::fs::write(&file, text).unwrap();
    let out = metalab(dir.path(), &["check", "s.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let t =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("s.ron:7:") && t.contains("train.meta_lr_schedule.factor"),
        "{t}"
    );
    assert!(t.contains("train.meta_lr_schedule.every"), "{t}");
    assert!(t.contains("fix:"), "{t}");
}
