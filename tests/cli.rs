//! The `metalab` binary on valid and invalid input: exit codes and the words users read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "omniglot_common/mod.rs"]
mod omniglot_common;
use omniglot_common::fake_omniglot;

fn metalab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metalab"))
        .args(args)
        .current_dir(dir)
        .env_remove("METALAB_OMNIGLOT")
        .stdin(Stdio::null())
        .output()
        .expect("run metalab")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const TINY: &str = r#"Experiment(
    name: "tiny",
    seed: 3,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [16]),
    arms: [Arm(name: "fomaml", algorithm: Fomaml)],
    train: Train(iterations: ITER, meta_batch: 4, log_every: 5),
    eval: Eval(every: 10, tasks: 20, periodic_tasks: 5, inner_steps: 2),
)
"#;

fn project(iterations: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.ron");
    std::fs::write(&file, TINY.replace("ITER", &iterations.to_string())).unwrap();
    (dir, file)
}

#[test]
fn run_then_list_then_rerun_reproduces_the_metrics() {
    let (dir, _) = project(20);
    let out = metalab(dir.path(), &["run", "tiny.ron", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("MSE"), "{}", text(&out));
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let id = runs[0].file_name().to_string_lossy().to_string();

    let list = metalab(dir.path(), &["runs"]);
    assert!(
        text(&list).contains(&id) && text(&list).contains("finished"),
        "{}",
        text(&list)
    );

    let again = metalab(dir.path(), &["rerun", &id, "--threads", "1"]);
    assert!(again.status.success(), "{}", text(&again));
    let all = metalab::runs::list_runs(&dir.path().join("runs"));
    assert_eq!(all.len(), 2);
    let [a, b] = [&all[0].dir, &all[1].dir];
    assert_eq!(
        metalab::runs::deterministic_metrics(a).unwrap(),
        metalab::runs::deterministic_metrics(b).unwrap()
    );
    let rerun_meta = all
        .iter()
        .map(|r| metalab::runs::load_meta(&r.dir).unwrap())
        .find(|m| m.rerun_of.is_some())
        .unwrap();
    assert_eq!(rerun_meta.rerun_of.as_deref(), Some(id.as_str()));

    let export = metalab(dir.path(), &["export", &id, "--out", "figs"]);
    assert!(export.status.success(), "{}", text(&export));
    let csv = std::fs::read_to_string(dir.path().join("figs").join(format!("{id}.csv"))).unwrap();
    assert!(
        csv.starts_with("run,label,series,") && csv.contains(&format!("\n{id},")),
        "{csv}"
    );
    let svg = std::fs::read_to_string(dir.path().join("figs").join(format!("{id}.svg"))).unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    let png = std::fs::read(dir.path().join("figs").join(format!("{id}.png"))).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    // Sinusoid MSE after each of the 2 test steps, then the same result scored at the ends only.
    let eval = metalab(dir.path(), &["eval", &id, "--tasks", "10"]);
    assert!(eval.status.success(), "{}", text(&eval));
    let result = |o: &Output| {
        text(o)
            .lines()
            .find(|l| l.starts_with("result: "))
            .map(str::to_owned)
    };
    assert!(
        text(&eval).contains("after each step: 0: ") && text(&eval).contains("  2: "),
        "{}",
        text(&eval)
    );
    let ends = metalab(dir.path(), &["eval", &id, "--tasks", "10", "--no-per-step"]);
    assert!(ends.status.success(), "{}", text(&ends));
    assert!(!text(&ends).contains("after each step"), "{}", text(&ends));
    assert!(result(&eval).is_some());
    assert_eq!(result(&eval), result(&ends));

    let resume = metalab(dir.path(), &["resume", &id]);
    assert!(!resume.status.success());
    assert!(
        text(&resume).contains("already finished"),
        "{}",
        text(&resume)
    );
}

#[test]
fn run_ids_cannot_escape_the_runs_folder() {
    let (dir, _) = project(5);
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    for bad in ["..", "../..", "/etc"] {
        let out = metalab(dir.path(), &["rerun", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("not inside the runs folder") || t.contains("no run"),
            "{bad}: {t}"
        );
    }
}

#[test]
fn malformed_ron_names_file_line_column_and_a_fix() {
    let (dir, file) = project(5);
    let broken = TINY.replace("ITER", "5").replace("seed: 3,", "seed: 3");
    std::fs::write(&file, broken).unwrap();
    for cmd in ["run", "check"] {
        let out = metalab(dir.path(), &[cmd, "tiny.ron"]);
        assert!(!out.status.success());
        let t = text(&out);
        assert!(t.contains("tiny.ron:4:5"), "{cmd}: {t}");
        assert!(t.contains("fix:"), "{cmd}: {t}");
    }
    assert!(
        !dir.path().join("runs").exists(),
        "nothing is written for a broken file"
    );
}

#[test]
fn unknown_fields_and_impossible_values_point_at_the_field() {
    let (dir, file) = project(5);
    std::fs::write(
        &file,
        TINY.replace("ITER", "5")
            .replace("seed: 3,", "seed: 3, sed: 4,"),
    )
    .unwrap();
    let t = text(&metalab(dir.path(), &["check", "tiny.ron"]));
    assert!(t.contains("tiny.ron:3:") && t.contains("sed"), "{t}");

    let impossible = r#"Experiment(name: "x",
    family: Synthetic(ways: 5, classes: 10),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "a", algorithm: Maml(), inner_steps: 0, inner_lr: -0.1)],
)"#;
    std::fs::write(&file, impossible).unwrap();
    let out = metalab(dir.path(), &["check", "tiny.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("tiny.ron:2:23: `family.ways`: 5-way tasks need 5 classes"),
        "{t}"
    );
    assert!(t.contains("`arms[0].inner_steps`: zero inner steps"), "{t}");
    assert!(t.contains("`arms[0].inner_lr`: learning rate -0.1"), "{t}");
    assert!(t.matches("fix:").count() >= 3, "{t}");
}

#[test]
fn missing_data_and_too_few_classes_are_explained() {
    let (dir, file) = project(5);
    let omni = |root: &str, ways: usize| {
        format!(
            r#"Experiment(name: "o",
    family: Omniglot(root: "{root}", ways: {ways}, shots: 1, queries: 2, image_size: 10,
                     protocol: AlphabetSplit(train: 0.34, validation: 0.33)),
    model: Conv(blocks: 2, channels: 4),
    arms: [Arm(name: "a", algorithm: Fomaml)],
    train: Train(iterations: 2, meta_batch: 2),
    eval: Eval(every: 0, tasks: 4, periodic_tasks: 2, inner_steps: 1),
)"#
        )
    };
    std::fs::write(&file, omni("nowhere", 5)).unwrap();
    let out = metalab(dir.path(), &["check", "tiny.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("tiny.ron:2:22") && t.contains("nowhere") && t.contains("does not exist"),
        "{t}"
    );
    assert!(
        t.contains("--data DIR") && t.contains("METALAB_OMNIGLOT"),
        "{t}"
    );
    let run = metalab(dir.path(), &["run", "tiny.ron"]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(text(&run).contains("does not exist"), "{}", text(&run));

    // Three alphabets of three characters: one alphabet, three classes, per split.
    fake_omniglot(&dir.path().join("omni"), (3, 3, 4), 20, |a, c, d| {
        a * 7 + c * 3 + d
    });
    std::fs::write(&file, omni("omni", 5)).unwrap();
    let t = text(&metalab(dir.path(), &["check", "tiny.ron"]));
    assert!(
        t.contains("3 classes but tasks are 5-way") && t.contains("fix:"),
        "{t}"
    );
    std::fs::write(&file, omni("elsewhere", 3)).unwrap();
    let ok = metalab(dir.path(), &["check", "tiny.ron", "--data", "omni"]);
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn without_a_terminal_the_workbench_points_at_headless_runs() {
    let (dir, _) = project(5);
    let out = metalab(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("metalab run experiments/"),
        "{}",
        text(&out)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_checkpoints_and_resume_finishes_the_run() {
    let (dir, _) = project(1_000_000);
    let child = Command::new(env!("CARGO_BIN_EXE_metalab"))
        .args(["run", "tiny.ron", "--threads", "1"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training has produced metrics.
    let start = Instant::now();
    let run_dir = loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run never started"
        );
        let found = std::fs::read_dir(dir.path().join("runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(d) = found {
            if std::fs::metadata(d.join("metrics.jsonl"))
                .map(|m| m.len() > 200)
                .unwrap_or(false)
            {
                break d;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("metalab resume"), "{}", text(&out));
    let meta = metalab::runs::load_meta(&run_dir).unwrap();
    assert_eq!(meta.status, metalab::runs::RunStatus::Stopped);
    assert!(run_dir.join("checkpoint.safetensors").is_file());

    // Shorten the frozen run so resuming it finishes quickly: the config is the source of truth.
    let config = run_dir.join("config.ron");
    let frozen = std::fs::read_to_string(&config).unwrap();
    let stopped_at = meta.iteration;
    std::fs::write(
        &config,
        frozen.replace(
            "iterations: 1000000",
            &format!("iterations: {}", stopped_at + 10),
        ),
    )
    .unwrap();
    let id = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let resumed = metalab(dir.path(), &["resume", &id]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let meta = metalab::runs::load_meta(&run_dir).unwrap();
    assert_eq!(meta.status, metalab::runs::RunStatus::Finished);
    assert_eq!(meta.iteration, stopped_at + 10);
}
