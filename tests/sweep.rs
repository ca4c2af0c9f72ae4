//! Sweeps: expansion (grid, seeded random, refused paths with positions), the local queue
//! (killed twice mid-way, resumed, every variant finished exactly once with the metrics of an
//! uninterrupted sweep), runs merged from another host, and aggregation over seeds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use metalab::runs::{self, RunStatus};
use metalab::sweep::{self, aggregate};

const TINY: &str = r#"Experiment(
    name: "tiny",
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [16]),
    arms: [
        Arm(name: "fomaml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(), inner_steps: 2),
    ],
    train: Train(iterations: 60, meta_batch: 4, log_every: 10),
    eval: Eval(every: 20, tasks: 10, periodic_tasks: 5, tracked_tasks: 2),
)
"#;

fn project(sweep_text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.ron"), TINY).unwrap();
    let file = dir.path().join("s.sweep.ron");
    std::fs::write(&file, sweep_text).unwrap();
    (dir, file)
}

fn metalab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metalab"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn grid_expands_every_combination_first_axis_slowest_with_stable_names() {
    let (_d, file) = project(
        r#"Sweep(name: "g", experiment: "tiny.ron", axes: [
            Axis(path: "seed", values: [3, 4]),
            Axis(path: "arms.reptile.algorithm.epsilon", values: [0.5, 1.0]),
            Axis(path: "model.activation", values: ["Tanh"]),
            Axis(path: "arms.*.inner_lr", values: [0.02]),
        ])"#,
    );
    let s = sweep::load(&file).unwrap();
    assert_eq!(s.variants.len(), 4);
    let seeds: Vec<u64> = s.variants.iter().map(|v| v.experiment.seed).collect();
    assert_eq!(seeds, [3, 3, 4, 4]);
    let eps: Vec<f64> = s
        .variants
        .iter()
        .map(|v| match v.experiment.arms[1].algorithm {
            metalab::experiment::Algorithm::Reptile { epsilon, .. } => epsilon,
            _ => panic!("arm 1 is reptile"),
        })
        .collect();
    assert_eq!(eps, [0.5, 1.0, 0.5, 1.0]);
    for v in &s.variants {
        assert!(matches!(
            v.experiment.model,
            metalab::experiment::ModelSpec::Mlp(ref m) if m.activation == metalab::experiment::Activation::Tanh
        ));
        assert!(v.experiment.arms.iter().all(|a| a.inner_lr == Some(0.02)));
        assert!(
            v.name.starts_with(&format!("g-{:03}-", v.index)),
            "{}",
            v.name
        );
    }
    // Names are a function of the sweep: the same on every load (every machine).
    let again = sweep::load(&file).unwrap();
    let names = |s: &sweep::Sweep| {
        s.variants
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&s), names(&again));
    let mut unique = names(&s);
    unique.dedup();
    assert_eq!(unique.len(), 4);
}

#[test]
fn random_sample_is_seeded_reproducible_and_crossed_with_seeds() {
    let text = |seed: u64| {
        format!(
            r#"Sweep(name: "r", experiment: "tiny.ron", sample: Random(count: 3, seed: {seed}), axes: [
                Axis(path: "seed", values: [1, 2]),
                Axis(path: "train.meta_lr", log_uniform: (1e-4, 1e-2)),
                Axis(path: "eval.inner_steps", values: [1, 5, 10]),
            ])"#
        )
    };
    let (d, file) = project(&text(7));
    let a = sweep::load(&file).unwrap();
    let b = sweep::load(&file).unwrap();
    assert_eq!(a.variants, b.variants);
    assert_eq!(a.variants.len(), 6);
    for pair in a.variants.chunks(2) {
        // Each draw runs on every seed, with identical other settings.
        assert_eq!((pair[0].experiment.seed, pair[1].experiment.seed), (1, 2));
        assert_eq!(pair[0].group_label(), pair[1].group_label());
        let lr = pair[0].experiment.train.meta_lr;
        assert!((1e-4..=1e-2).contains(&lr), "{lr}");
        assert!([1, 5, 10].contains(&pair[0].experiment.eval.inner_steps));
    }
    let lrs: Vec<f64> = a
        .variants
        .iter()
        .map(|v| v.experiment.train.meta_lr)
        .collect();
    assert!(
        lrs[0] != lrs[2] || lrs[2] != lrs[4],
        "three draws, all equal: {lrs:?}"
    );
    let other = d.path().join("other.sweep.ron");
    std::fs::write(&other, text(8)).unwrap();
    let c = sweep::load(&other).unwrap();
    assert_ne!(
        lrs,
        c.variants
            .iter()
            .map(|v| v.experiment.train.meta_lr)
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_paths_and_values_are_refused_at_the_axis_position() {
    let (d, file) = project(
        "Sweep(\n    name: \"bad\",\n    experiment: \"tiny.ron\",\n    axes: [\n        Axis(path: \"train.meta_lrr\", values: [0.1]),\n        Axis(path: \"arms.nope.inner_lr\", values: [0.1]),\n        Axis(path: \"eval.inner_steps\", values: [1.5]),\n        Axis(path: \"train.inner_lr\", values: [-1.0]),\n        Axis(path: \"model.activation\", values: [\"Sigmoid\"]),\n        Axis(path: \"train.meta_lr\", uniform: (0.1, 0.2)),\n    ],\n)\n",
    );
    let err = sweep::load(&file).unwrap_err().to_string();
    let f = file.display().to_string();
    for expected in [
        format!("{f}:5:20: axis `train.meta_lrr`: no field `meta_lrr` in `train`"),
        "fix: use one of: inner_lr, inner_steps, iterations, log_every, max_loss, meta_batch, meta_lr".to_string(),
        format!("{f}:6:20: axis `arms.nope.inner_lr`: no arm named `nope`"),
        format!("{f}:7:20: axis `eval.inner_steps`: the value 1.5 does not fit"),
        format!("{f}:8:20: `train.inner_lr`: learning rate -1 must be a positive number"),
        format!("{f}:9:20: axis `model.activation`: the value \"Sigmoid\" does not fit: unknown variant `Sigmoid`"),
        format!("{f}:10:20: axis `train.meta_lr`: a range needs random sampling"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    // `metalab check` reports the same, and fails.
    let out = metalab(d.path(), &["check", "s.sweep.ron"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("s.sweep.ron:5:20: axis `train.meta_lrr`"),
        "{}",
        text(&out)
    );
    // A base experiment that is missing is named with the sweep's `experiment:` position.
    std::fs::write(
        &file,
        "Sweep(\n  name: \"x\",\n  experiment: \"missing.ron\",\n  axes: [],\n)",
    )
    .unwrap();
    let err = sweep::load(&file).unwrap_err().to_string();
    assert!(err.contains(":3:3: no base experiment at"), "{err}");
}

#[test]
fn check_accepts_a_valid_sweep_and_the_shipped_one() {
    let (d, _) = project(
        r#"Sweep(name: "ok", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2, 3])])"#,
    );
    let out = metalab(d.path(), &["check", "s.sweep.ron"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("sweep ok: 3 variants of tiny.ron over seed"),
        "{}",
        text(&out)
    );
    let shipped = sweep::load(Path::new("experiments/sinusoid-compare-seeds.sweep.ron")).unwrap();
    assert_eq!(shipped.variants.len(), 5);
}

/// Finished runs of a runs folder by (variant, arm), asserting there is exactly one of each.
fn finished_once(root: &Path, s: &sweep::Sweep) -> Vec<((String, String), PathBuf)> {
    let mut out = vec![];
    for v in &s.variants {
        let found = sweep::variant_runs(root, &v.name);
        for arm in &v.experiment.arms {
            let mine: Vec<_> = found.iter().filter(|(_, m)| m.arm == arm.name).collect();
            assert_eq!(
                mine.len(),
                1,
                "{} / {}: {} run dirs",
                v.name,
                arm.name,
                mine.len()
            );
            assert_eq!(
                mine[0].1.status,
                RunStatus::Finished,
                "{} / {}",
                v.name,
                arm.name
            );
            out.push(((v.name.clone(), arm.name.clone()), mine[0].0.clone()));
        }
    }
    out
}

fn max_iteration(root: &Path) -> usize {
    runs::list_runs(root)
        .iter()
        .map(|r| r.iteration)
        .max()
        .unwrap_or(0)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn killed_sweep_resumes_and_finishes_every_variant_once_with_uninterrupted_metrics() {
    // Big enough that one variant takes a while; checkpoints every 50 iterations.
    let slow = TINY
        .replace("hidden: [16]", "hidden: [40, 40]")
        .replace(
            "Arm(name: \"fomaml\", algorithm: Fomaml)",
            "Arm(name: \"maml\", algorithm: Maml())",
        )
        .replace(
            "iterations: 60, meta_batch: 4",
            "iterations: 1000, meta_batch: 10",
        )
        .replace("every: 20", "every: 50");
    let (d, file) = project(
        r#"Sweep(name: "q", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2, 3])])"#,
    );
    std::fs::write(d.path().join("tiny.ron"), &slow).unwrap();
    let s = sweep::load(&file).unwrap();
    let args = |runs: &'static str| -> Vec<&'static str> {
        vec![
            "sweep",
            "s.sweep.ron",
            "--jobs",
            "2",
            "--threads",
            "2",
            "--runs",
            runs,
        ]
    };

    // The reference: one uninterrupted sweep.
    let out = metalab(d.path(), &args("ref"));
    assert!(out.status.success(), "{}", text(&out));
    let reference = finished_once(&d.path().join("ref"), &s);

    let spawn = || {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_metalab"))
            .args(args("runs"))
            .current_dir(d.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the second interruption can kill the queue and its
            // children at once, as a lost node or `kill -9` would.
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let root = d.path().join("runs");

    // 1. SIGTERM (what Slurm and `kill` send): the queue stops its children at a checkpoint.
    let child = spawn();
    wait_for("a first checkpoint", || max_iteration(&root) >= 50);
    let kill = |args: &[&str]| assert!(Command::new("kill").args(args).status().unwrap().success());
    kill(&["-TERM", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let listed = runs::list_runs(&root);
    assert!(
        listed.iter().any(|r| r.status == RunStatus::Stopped),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .filter(|r| r.status == RunStatus::Finished)
            .count()
            < 6,
        "the sweep finished before it was stopped"
    );
    let stopped_at = max_iteration(&root);

    // 2. SIGKILL of the whole process group after the resumed runs move on: nothing gets to
    //    checkpoint, runs are left `running` by dead processes.
    let child = spawn();
    wait_for("progress after resuming", || {
        max_iteration(&root) > stopped_at
    });
    kill(&["-KILL", "--", &format!("-{}", child.id())]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");
    // The children die with the queue; give the kernel a moment to take their processes away.
    wait_for("the killed runs to show as interrupted", || {
        runs::list_runs(&root)
            .iter()
            .all(|r| r.status != RunStatus::Running)
    });
    let listed = runs::list_runs(&root);
    assert!(
        listed
            .iter()
            .filter(|r| r.status == RunStatus::Finished)
            .count()
            < 6,
        "the sweep finished before it was killed"
    );
    assert!(
        listed.iter().any(|r| r.status == RunStatus::Interrupted),
        "{listed:?}"
    );

    // 3. Re-invoked, it finishes; 4. again, it has nothing left to do.
    let out = metalab(d.path(), &args("runs"));
    assert!(out.status.success(), "{}", text(&out));
    let before = std::fs::read_dir(&root).unwrap().count();
    let out = metalab(d.path(), &args("runs"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("0 finished now, 3 already finished"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), before);

    let resumed = finished_once(&root, &s);
    assert_eq!(resumed.len(), reference.len());
    for ((key, dir), (key_ref, dir_ref)) in resumed.iter().zip(&reference) {
        assert_eq!(key, key_ref);
        assert_eq!(
            runs::deterministic_metrics(dir).unwrap(),
            runs::deterministic_metrics(dir_ref).unwrap(),
            "{key:?}: the interrupted sweep's metrics differ from the uninterrupted one's"
        );
    }

    // --status: every variant finished, and the table groups the three seeds per arm.
    let out = metalab(
        d.path(),
        &["sweep", "s.sweep.ron", "--status", "--runs", "runs"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 finished"), "{}", text(&out));
    let groups = aggregate::group(&aggregate::load_finished(&root));
    assert_eq!(groups.len(), 2);
    for g in &groups {
        assert_eq!(
            g.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }
}

#[test]
fn aggregation_groups_by_config_except_seed_with_a_t_interval() {
    let (d, file) = project(
        r#"Sweep(name: "a", experiment: "tiny.ron", axes: [
            Axis(path: "seed", values: [1, 2, 3]),
            Axis(path: "train.meta_lr", values: [0.001, 0.003]),
        ])"#,
    );
    let out = metalab(
        d.path(),
        &["sweep", "s.sweep.ron", "--jobs", "2", "--threads", "2"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let s = sweep::load(&file).unwrap();
    let root = d.path().join("runs");
    let groups = aggregate::group(&aggregate::load_finished(&root));
    // 2 arms × 2 learning rates, 3 seeds each.
    assert_eq!(groups.len(), 4, "{groups:?}");
    for g in &groups {
        assert_eq!(g.seeds.len(), 3);
        assert!(g.differs.contains("train.meta_lr="), "{}", g.differs);
        let lr: f64 = g
            .differs
            .split("train.meta_lr=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // The group's seeds are exactly the variants with that learning rate and arm.
        let mut expect = vec![];
        for v in s
            .variants
            .iter()
            .filter(|v| v.experiment.train.meta_lr == lr)
        {
            let (dir, _) = sweep::variant_runs(&root, &v.name)
                .into_iter()
                .find(|(_, m)| m.arm == g.arm)
                .unwrap();
            expect.push(runs::load_meta(&dir).unwrap().final_eval.unwrap().loss.mean);
        }
        let values: Vec<f64> = g.seeds.iter().map(|s| s.value).collect();
        assert_eq!(values, expect);
        let mean = expect.iter().sum::<f64>() / 3.0;
        let sd = (expect.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((g.summary.mean - mean).abs() < 1e-12);
        // t(0.975, 2 df) = 4.303, not 1.96.
        assert!((g.summary.ci95 - 4.303 * sd / 3f64.sqrt()).abs() < 1e-9);
    }
    let table = aggregate::table(&groups);
    assert!(table.contains("SEEDS"), "{table}");
    // The same table from `metalab runs --group`, and the CSV from `metalab export --group`.
    let out = metalab(d.path(), &["runs", "--group"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), table);
    let out = metalab(d.path(), &["export", "--group", "--out", "ex"]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = std::fs::read_to_string(d.path().join("ex/aggregate.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",mean,")).count(), 4);
    assert_eq!(
        csv.lines().skip(1).filter(|l| l.contains(",seed,")).count(),
        12
    );
}

#[test]
fn runs_from_another_host_are_listed_grouped_and_not_taken_for_dead_local_ones() {
    let (d, _) = project(
        r#"Sweep(name: "m", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2])])"#,
    );
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--runs", "here"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--runs", "there"]);
    assert!(out.status.success(), "{}", text(&out));
    let here = d.path().join("here");
    // Every run records where and with what it ran; ids differ even for the same work.
    let ids_here: Vec<String> = runs::list_runs(&here).into_iter().map(|r| r.id).collect();
    for r in runs::list_runs(&here) {
        let m = runs::load_meta(&r.dir).unwrap();
        assert_eq!(m.host, runs::local_host());
        assert!(!m.device_detail.is_empty() && !m.metalab_version.is_empty());
    }
    // Copy the other folder's runs in as if from host "node17"; one of them still running there.
    let mut running_id = String::new();
    for r in runs::list_runs(&d.path().join("there")) {
        assert!(!ids_here.contains(&r.id), "ids collide: {}", r.id);
        let to = here.join(&r.id);
        std::fs::create_dir(&to).unwrap();
        for f in std::fs::read_dir(&r.dir).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
        let mut m = runs::load_meta(&to).unwrap();
        m.host = "node17".into();
        m.seed += 10;
        if running_id.is_empty() {
            m.status = RunStatus::Running;
            m.pid = 999_999_999;
            running_id = m.id.clone();
        }
        std::fs::write(to.join("run.json"), serde_json::to_string(&m).unwrap()).unwrap();
    }
    let listed = runs::list_runs(&here);
    assert_eq!(listed.len(), 8);
    let r = listed.iter().find(|r| r.id == running_id).unwrap();
    assert_eq!(
        r.status,
        RunStatus::Running,
        "a run on another host cannot be probed from here"
    );
    let out = metalab(d.path(), &["runs", "--runs", "here"]);
    assert!(text(&out).contains(&running_id), "{}", text(&out));
    // Finished runs from both hosts group as seeds of one configuration (3 per arm: the
    // running one is not counted).
    let groups = aggregate::group(&aggregate::load_finished(&here));
    let counts: Vec<usize> = groups.iter().map(|g| g.seeds.len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 7, "{groups:?}");
    assert!(groups
        .iter()
        .any(|g| g.seeds.iter().any(|s| s.host == "node17")));
    // An old run.json without the new fields still reads.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(listed[0].dir.join("run.json")).unwrap())
            .unwrap();
    for k in ["host", "device_detail", "variant"] {
        v.as_object_mut().unwrap().remove(k);
    }
    std::fs::write(listed[0].dir.join("run.json"), v.to_string()).unwrap();
    assert!(runs::load_meta(&listed[0].dir).unwrap().host.is_empty());
}

#[test]
fn a_variant_claimed_by_another_process_is_left_to_it() {
    let (d, file) = project(
        r#"Sweep(name: "cl", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2])])"#,
    );
    let sw = sweep::load(&file).unwrap();
    let root = d.path().join("runs");
    let v = &sw.variants[0];
    // This test process plays the other sweep, mid-way through variant 0.
    let claim = sweep::claim_path(&sw, &root, v);
    let held = sweep::claim(&claim).unwrap().expect("free at first");
    assert!(
        sweep::claim(&claim).unwrap().is_none(),
        "a second open of the claim conflicts with the first"
    );
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--task", "0"]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(sweep::EXIT_CLAIMED)),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("being run by another process") && text(&out).contains(".lock"),
        "{}",
        text(&out)
    );
    assert!(
        sweep::variant_runs(&root, &v.name).is_empty(),
        "no run started"
    );

    // The local queue reports it as running elsewhere and does the other variant.
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 running elsewhere"), "{}", text(&out));
    assert!(sweep::variant_runs(&root, &v.name).is_empty());
    assert_eq!(sweep::variant_runs(&root, &sw.variants[1].name).len(), 2);

    drop(held);
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--task", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    finished_once(&root, &sw);
}

#[test]
fn slurm_dry_run_writes_a_requeueing_array_script() {
    let (d, _) = project(
        r#"Sweep(name: "sl", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2, 3, 4])])"#,
    );
    let out = metalab(
        d.path(),
        &[
            "sweep",
            "s.sweep.ron",
            "--slurm",
            "--dry-run",
            "--partition",
            "gpu",
            "--time",
            "01:00:00",
            "--cpus-per-task",
            "4",
            "--gpus",
            "1",
            "--jobs",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let script =
        std::fs::read_to_string(d.path().join("runs/sweeps/sl/slurm/array.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-3%2",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=01:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gpus=1",
        "--task \"$TASK\"",
        "scontrol requeue",
    ] {
        assert!(script.contains(line), "missing {line:?}:\n{script}");
    }
    // The script is valid bash.
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(d.path().join("runs/sweeps/sl/slurm/array.sbatch"))
        .status()
        .unwrap();
    assert!(syntax.success());
    // Finished variants are left out of a new submission.
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--task", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--slurm", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let script =
        std::fs::read_to_string(d.path().join("runs/sweeps/sl/slurm/array.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0,2-3\n"), "{script}");
}

#[path = "tui_common/mod.rs"]
mod tui_common;

#[test]
fn the_workbench_shows_a_sweep_as_a_group_with_its_result_over_seeds() {
    let (d, _) = project(
        r#"Sweep(name: "wb", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [1, 2, 3])])"#,
    );
    // One ordinary run first, then the sweep: the sweep's six runs must be listed together.
    let out = metalab(d.path(), &["run", "tiny.ron", "--arm", "fomaml", "-q"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = metalab(
        d.path(),
        &["sweep", "s.sweep.ron", "--jobs", "2", "--threads", "2"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut app = metalab::tui::App::new(d.path());
    app.refresh_runs();
    let variants: Vec<Option<String>> = app.runs.iter().map(|r| r.variant.clone()).collect();
    assert_eq!(variants.len(), 7);
    let first_plain = variants.iter().position(Option::is_none).unwrap();
    assert!(
        first_plain == 0 || first_plain == 6,
        "the sweep's runs are split: {variants:?}"
    );
    let sweep_rows: Vec<_> = app.runs.iter().filter(|r| r.variant.is_some()).collect();
    assert!(sweep_rows
        .windows(2)
        .all(|w| (w[0].variant.as_ref(), &w[0].arm) <= (w[1].variant.as_ref(), &w[1].arm)));
    // Each arm's seeds are one group row in the pane (issue 18 §3); fomaml's holds the 3 sweep
    // seeds and the ordinary run, which is seed 1 again (the newest one counts).
    let groups: Vec<_> = app
        .run_items
        .iter()
        .filter_map(|i| match i {
            metalab::tui::run_groups::RunItem::Group(g) => Some(g),
            _ => None,
        })
        .collect();
    for r in &sweep_rows {
        let g = groups
            .iter()
            .find(|g| g.members.iter().any(|&i| app.runs[i].id == r.id))
            .unwrap_or_else(|| panic!("no group for {}", r.id));
        assert_eq!(g.seeds, 3);
        let label = g.result.unwrap().label(g.seeds);
        assert!(label.starts_with("3 seeds: MSE "), "{label}");
    }
    app.screen = metalab::tui::app::Screen::Runs;
    let shown = tui_common::screen(&app, 140, 30);
    assert!(shown.contains("▸ wb"), "{shown}");
    assert!(shown.contains("3 seeds: MSE"), "{shown}");
}

/// The array script's own logic, run by bash as Slurm would run it (with a stand-in `scontrol`
/// that records its arguments): the time-limit warning (USR1) checkpoints metalab and requeues
/// the task, and the requeued script finishes the same run directories.
#[cfg(unix)]
#[test]
fn the_array_script_checkpoints_and_requeues_on_the_time_limit_warning() {
    let slow = TINY
        .replace("hidden: [16]", "hidden: [40, 40]")
        .replace(
            "iterations: 60, meta_batch: 4",
            "iterations: 100000, meta_batch: 10",
        )
        .replace("every: 20", "every: 50");
    let (d, _) = project(
        r#"Sweep(name: "tl", experiment: "tiny.ron", axes: [Axis(path: "seed", values: [5])])"#,
    );
    std::fs::write(d.path().join("tiny.ron"), &slow).unwrap();
    let out = metalab(d.path(), &["sweep", "s.sweep.ron", "--slurm", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let script = d.path().join("runs/sweeps/tl/slurm/array.sbatch");
    let bin = d.path().join("fakebin");
    std::fs::create_dir(&bin).unwrap();
    let calls = d.path().join("scontrol.calls");
    std::fs::write(
        bin.join("scontrol"),
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", calls.display()),
    )
    .unwrap();
    assert!(Command::new("chmod")
        .arg("+x")
        .arg(bin.join("scontrol"))
        .status()
        .unwrap()
        .success());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let task = || {
        Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_JOB_ID", "42")
            .env("SLURM_CPUS_PER_TASK", "2")
            .current_dir(d.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let root = d.path().join("runs");
    let child = task();
    wait_for("a first checkpoint", || max_iteration(&root) >= 50);
    assert!(Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("requeueing"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().trim(),
        "requeue 42_0"
    );
    let listed = runs::list_runs(&root);
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|r| r.status == RunStatus::Stopped),
        "{listed:?}"
    );
    let stopped_at: Vec<usize> = listed.iter().map(|r| r.iteration).collect();

    // The requeued task: shorten the frozen runs so it finishes soon, and run the script again.
    for r in &listed {
        let cfg = r.dir.join("config.ron");
        let frozen = std::fs::read_to_string(&cfg).unwrap();
        let end = r.iteration + 20;
        std::fs::write(
            &cfg,
            frozen.replace("iterations: 100000", &format!("iterations: {end}")),
        )
        .unwrap();
    }
    let out = task().wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming"), "{}", text(&out));
    let listed = runs::list_runs(&root);
    assert_eq!(
        listed.len(),
        2,
        "the requeued task made new run directories"
    );
    for (r, at) in listed.iter().zip(stopped_at) {
        assert_eq!(r.status, RunStatus::Finished);
        assert_eq!(r.iteration, at + 20);
    }
    // Only the first attempt asked for a requeue.
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().count(), 1);
}
