//! Negative transfer through the engine and `metalab eval` (issue 21): multi-task arms of one
//! experiment record every training task's losses on the same episodes at their end; the
//! joint arm, its trunk a bottleneck too narrow for two kinds of function, is flagged against
//! the single-task baseline, and an arm with a group per task (the baseline by another road,
//! so the same numbers) is not. Also the trunk options' validation, at the field's line and
//! column.

mod engine_common;

use std::path::{Path, PathBuf};

#[path = "omniglot_common/mod.rs"]
mod omniglot_common;
use omniglot_common::fake_omniglot;

use metalab::engine::EngineEvent;
use metalab::experiment::{parse_str, ExperimentError, Trunks};
use metalab::saved::{evaluate_run_against, task_losses, EvalRequest};
use metalab::transfer::{self, TaskLosses};

fn experiment(arms: &str, iterations: usize) -> String {
    format!(
        r#"Experiment(
    name: "nt",
    seed: 3,
    family: Mixed(shots: 10, queries: 10, groups: [Sine, Line], tasks_per_group: 2),
    model: Mlp(hidden: [20, 1], activation: Tanh),
    arms: [
{arms}
    ],
    train: Train(iterations: {iterations}, meta_batch: 4, meta_lr: 0.01,
                 affinity: Affinity(every: 10, lookahead_lr: 0.01)),
    eval: Eval(every: 0, tasks: 4, periodic_tasks: 2, inner_steps: 1),
)"#
    )
}

/// Each arm's run folder, by arm name.
fn run_dirs(events: &[EngineEvent]) -> Vec<(String, PathBuf)> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Started { name, run_dir, .. } => Some((name.clone(), run_dir.clone())),
            _ => None,
        })
        .collect()
}

fn dir_of<'a>(dirs: &'a [(String, PathBuf)], name: &str) -> &'a Path {
    &dirs.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn the_joint_arm_is_flagged_against_the_single_task_baseline_and_a_group_per_task_is_not() {
    let arms = r#"
        Arm(name: "single", algorithm: MultiTask(tasks: 4, trunks: PerTask)),
        Arm(name: "joint", algorithm: MultiTask(tasks: 4)),
        Arm(name: "grouped", algorithm: MultiTask(tasks: 4, trunks: Groups([[0], [1], [2], [3]]))),
        Arm(name: "affinity", algorithm: MultiTask(tasks: 4, trunks: Affinity(groups: 2, after: 100))),"#;
    let text = experiment(arms, 600);
    let e = parse_str(&text, Path::new("nt.ron")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dirs = run_dirs(&engine_common::run_all(e, root.path()));
    assert_eq!(dirs.len(), 4);
    for (name, dir) in &dirs {
        // The record the run's end wrote is what its checkpoint gives again.
        let recorded = TaskLosses::load(dir).unwrap().unwrap();
        assert_eq!(recorded.losses.len(), 4, "{name}");
        assert!(recorded
            .losses
            .iter()
            .all(|l| l.len() == transfer::EPISODES));
        assert_eq!(
            task_losses(dir, 2).unwrap().as_ref(),
            Some(&recorded),
            "{name}"
        );
    }
    let single = dir_of(&dirs, "single");
    assert_eq!(
        TaskLosses::load(single).unwrap().unwrap().trunks,
        Trunks::PerTask
    );
    let req = EvalRequest {
        threads: Some(2),
        ..EvalRequest::default()
    };
    let report = |arm: &str| {
        let r = evaluate_run_against(dir_of(&dirs, arm), &req, Some(single)).unwrap();
        let t = r.transfer.unwrap();
        for task in &t.tasks {
            eprintln!("{arm} task {} {:?}: {:?}", task.task, task.group, task.row);
        }
        t
    };
    let joint = report("joint");
    assert!(joint.tasks.iter().any(|t| t.negative()), "{joint:?}");
    // A trunk per group of one is a trunk per task: the same training, the same losses.
    let grouped = report("grouped");
    assert!(grouped.tasks.iter().all(|t| !t.negative()), "{grouped:?}");
    assert!(grouped.tasks.iter().all(|t| t.row.unwrap().ratio == 1.0));
    assert_eq!(
        TaskLosses::load(dir_of(&dirs, "grouped"))
            .unwrap()
            .unwrap()
            .losses,
        TaskLosses::load(single).unwrap().unwrap().losses
    );
    // The report is in evals.jsonl with the rest of the evaluation.
    let evals = metalab::saved::load_evals(dir_of(&dirs, "joint")).unwrap();
    assert_eq!(evals.last().unwrap().transfer.as_ref(), Some(&joint));
    // The export's table has the joint and grouped arms against the baseline.
    let out = tempfile::tempdir().unwrap();
    let runs: Vec<(String, PathBuf)> = dirs.iter().map(|(n, d)| (n.clone(), d.clone())).collect();
    let csv = metalab::export::transfer::write(out.path(), "nt", &runs)
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(csv).unwrap();
    assert!(text.starts_with("arm,baseline,task,name,group,ratio,lo,hi,negative\n"));
    assert!(text
        .lines()
        .any(|l| l.starts_with("joint,single,") && l.ends_with(",true")));
    assert!(!text
        .lines()
        .any(|l| l.starts_with("grouped,") && l.ends_with(",true")));
}

#[test]
fn eval_against_an_arm_without_a_task_set_says_so() {
    let arms = r#"
        Arm(name: "joint", algorithm: MultiTask(tasks: 4)),
        Arm(name: "fomaml", algorithm: Fomaml),"#;
    let e = parse_str(&experiment(arms, 2), Path::new("nt.ron")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dirs = run_dirs(&engine_common::run_all(e, root.path()));
    let fomaml = dir_of(&dirs, "fomaml");
    assert_eq!(TaskLosses::load(fomaml).unwrap(), None);
    let req = EvalRequest {
        threads: Some(2),
        ..EvalRequest::default()
    };
    let err = evaluate_run_against(dir_of(&dirs, "joint"), &req, Some(fomaml)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("FOMAML run") && msg.contains("fix:"), "{msg}");
}

#[test]
fn a_resumed_run_continues_the_affinity_means_and_ends_as_an_uninterrupted_one() {
    use metalab::engine::Prepared;
    let arms = r#"
        Arm(name: "affinity", algorithm: MultiTask(tasks: 4, trunks: Affinity(groups: 2, after: 60))),"#;
    // An evaluation every 20 iterations writes the affinity record.
    let text = experiment(arms, 120).replace("Eval(every: 0", "Eval(every: 20");
    let e = parse_str(&text, Path::new("nt.ron")).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (straight, _) = engine_common::run_until(
        Prepared::new(e.clone(), engine_common::opts(a.path(), 2)).unwrap(),
        None,
    );
    // Stopped before the groups are found, resumed on another thread count.
    let (stopped, _) = engine_common::run_until(
        Prepared::new(e, engine_common::opts(b.path(), 2)).unwrap(),
        Some(30),
    );
    let early = metalab::runs::load_affinity(&stopped).unwrap();
    assert!(early.iteration < 60, "{}", early.iteration);
    engine_common::run_until(
        Prepared::resume(&stopped, engine_common::opts(b.path(), 1)).unwrap(),
        None,
    );
    let (x, y) = (
        metalab::runs::load_affinity(&straight).unwrap(),
        metalab::runs::load_affinity(&stopped).unwrap(),
    );
    assert_eq!(x.iteration, 120);
    assert_eq!(x, y);
    assert_eq!(
        metalab::runs::deterministic_metrics(&straight).unwrap(),
        metalab::runs::deterministic_metrics(&stopped).unwrap()
    );
    assert_eq!(
        TaskLosses::load(&straight).unwrap(),
        TaskLosses::load(&stopped).unwrap()
    );
}

/// The first validation error's position and text.
fn refused(arm: &str) -> ((usize, usize), String) {
    let text = experiment(arm, 100);
    match parse_str(&text, Path::new("nt.ron")) {
        Err(ExperimentError::Invalid { errors, .. }) => {
            (errors[0].position.unwrap(), errors[0].to_string())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn trunk_options_that_cannot_work_are_refused_at_the_field_with_a_fix() {
    let cases = [
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Groups([[0, 1], [2]]))),"#,
            "tasks 3 are in no group",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Groups([[0, 1, 2], [2, 3]]))),"#,
            "tasks 2 are in more than one group",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Groups([[0, 1, 2, 3], [7]]))),"#,
            "names task 7",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Groups([[0, 1, 2, 3], []]))),"#,
            "is empty",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Affinity(groups: 5, after: 10))),"#,
            "it must be 2 to 4",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Affinity(groups: 2, after: 100))),"#,
            "must be 1 to 99",
        ),
        (
            r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: PerTask), aggregate: PcGrad),"#,
            "separate trunks",
        ),
    ];
    for (arm, says) in cases {
        let ((line, col), msg) = refused(arm);
        assert_eq!(line, 7, "{msg}");
        assert!(msg.contains(says) && msg.contains("fix:"), "{says}: {msg}");
        let field = if says == "separate trunks" {
            "aggregate"
        } else {
            "trunks"
        };
        assert_eq!(col, arm.find(field).unwrap() + 1, "{msg}");
    }
    // Affinity groups need the affinities measured.
    let text = experiment(
        r#"        Arm(name: "g", algorithm: MultiTask(tasks: 4, trunks: Affinity(groups: 2, after: 10))),"#,
        100,
    )
    .replace("affinity: Affinity(every: 10, lookahead_lr: 0.01)", "");
    let Err(ExperimentError::Invalid { errors, .. }) = parse_str(&text, Path::new("nt.ron")) else {
        panic!("accepted")
    };
    assert!(
        errors[0].to_string().contains("train.affinity is not set"),
        "{errors:?}"
    );
}

fn omniglot_experiment(root: &Path, held_out: usize) -> String {
    format!(
        r#"Experiment(
    name: "alphabets",
    seed: 2,
    family: Omniglot(root: "{}", ways: 3, shots: 1, queries: 2, image_size: 8,
        protocol: CharacterSplit(train: 0.8, validation: 0.1), alphabet_tasks: Alphabets(held_out: {held_out})),
    model: Mlp(hidden: [16, 8], activation: Relu),
    arms: [
        Arm(name: "single", algorithm: MultiTask(tasks: 4, trunks: PerTask)),
        Arm(name: "joint", algorithm: MultiTask(tasks: 4)),
    ],
    train: Train(iterations: 40, meta_batch: 4, meta_lr: 0.01,
                 affinity: Affinity(every: 5, lookahead_lr: 0.01)),
    eval: Eval(every: 0, tasks: 4, periodic_tasks: 2, inner_steps: 1),
)"#,
        root.display()
    )
}

#[test]
fn omniglot_alphabets_train_as_named_tasks_with_affinities_and_per_task_losses() {
    let data = tempfile::tempdir().unwrap();
    fake_omniglot(data.path(), (4, 10, 20), 20, |a, c, d| {
        a * 7 + c * 3 + d % 2
    });
    let e = parse_str(&omniglot_experiment(data.path(), 4), Path::new("a.ron")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dirs = run_dirs(&engine_common::run_all(e, root.path()));
    assert_eq!(dirs.len(), 2);
    // One task per alphabet, each named in the run's record with its characters.
    let meta = metalab::runs::load_meta(dir_of(&dirs, "joint")).unwrap();
    let tasks = meta.class_split["alphabet_tasks"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = tasks
        .iter()
        .map(|t| t["alphabet"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "images_background/Alpha0",
            "images_background/Alpha1",
            "images_background/Alpha2",
            "images_background/Alpha3"
        ]
    );
    for (a, t) in tasks.iter().enumerate() {
        let chars = t["characters"].as_array().unwrap();
        assert_eq!(chars.len(), 3);
        assert!(chars
            .iter()
            .all(|c| c.as_str().unwrap().contains(&format!("Alpha{a}/"))));
    }
    // The joint arm measured a 4 × 4 affinity matrix; both arms scored every alphabet.
    let aff = metalab::runs::load_affinity(dir_of(&dirs, "joint")).unwrap();
    assert_eq!(aff.cosine.len(), 4);
    assert!(aff.cosine[0][1].is_some() && aff.lookahead[2][3].is_some());
    let single = TaskLosses::load(dir_of(&dirs, "single")).unwrap().unwrap();
    let joint = TaskLosses::load(dir_of(&dirs, "joint")).unwrap().unwrap();
    assert_eq!(joint.losses.len(), 4);
    // Scored on the held-out drawings, each once: four parts (one drawing of each of a
    // task's three characters), not 100 episodes reusing the same four drawings.
    assert_eq!(joint.scored_on, transfer::ScoredOn::HeldOutParts);
    assert!(
        joint.losses.iter().all(|l| l.len() == 4),
        "{:?}",
        joint.losses
    );
    let rows = transfer::against(&joint, &single).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.row.is_some()));
    // Parts hold different drawings, so the intervals have width.
    assert!(
        rows.iter().all(|r| r.row.unwrap().hi > r.row.unwrap().lo),
        "{rows:?}"
    );
    // Each comparison is named by its alphabet, in the record's task order.
    assert_eq!(joint.task_names, names);
    let labels: Vec<String> = rows.iter().map(|r| r.label()).collect();
    assert_eq!(labels, names);
    let csv = transfer::transfers_csv(&[("joint".into(), "single".into(), rows)]);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("joint,single,0,images_background/Alpha0,,"),
        "{csv}"
    );
}

#[test]
fn too_few_held_out_drawings_are_refused_at_the_field() {
    let text = omniglot_experiment(Path::new("/nowhere"), 2);
    let Err(ExperimentError::Invalid { errors, .. }) = parse_str(&text, Path::new("a.ron")) else {
        panic!("accepted")
    };
    let msg = errors[0].to_string();
    assert!(
        msg.contains("held_out: 2") && msg.contains("fix: use held_out: 3"),
        "{msg}"
    );
    let line = text
        .lines()
        .position(|l| l.contains("alphabet_tasks"))
        .unwrap()
        + 1;
    let col = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("alphabet_tasks")
        .unwrap()
        + 1;
    assert_eq!(errors[0].position, Some((line, col)), "{msg}");
}
