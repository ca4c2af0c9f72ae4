//! `metalab eval`: saved checkpoints evaluated under other protocols and on a Lake-layout
//! one-shot runs folder built here from generated images; results go to evals.jsonl and the
//! training result is left alone.

use std::path::{Path, PathBuf};

use metalab::algo::eval::Scoring;
use metalab::experiment::{parse_str, SyntheticSpec};
use metalab::runs;
use metalab::saved::{evaluate_lake, evaluate_run, load_evals, EvalRequest, SavedEvalError};
use metalab::tasks::synthetic::Synthetic;
use metalab::tasks::{Rng, Split, Targets, TaskFamily};
use rand::SeedableRng;

#[path = "engine_common/mod.rs"]
mod engine_common;

const SEED: u64 = 3;

fn train(arm: &str, iterations: usize, root: &Path) -> PathBuf {
    let text = format!(
        r#"Experiment(name: "syn", seed: {SEED},
            family: Synthetic(ways: 5, shots: 1, queries: 5),
            model: Mlp(hidden: [64, 64]),
            arms: [Arm(name: "a", algorithm: {arm})],
            train: Train(iterations: {iterations}, meta_batch: 8, inner_lr: 0.1),
            eval: Eval(every: 0, tasks: 100, periodic_tasks: 20, inner_steps: 5, inner_lr: 0.1))"#
    );
    let e = parse_str(&text, Path::new("t.ron")).unwrap();
    engine_common::run_dir(&engine_common::run_all(e, root))
}

fn req() -> EvalRequest {
    EvalRequest {
        threads: Some(2),
        ..EvalRequest::default()
    }
}

#[test]
fn an_unchanged_protocol_reproduces_the_training_result_and_other_ways_are_stored_apart() {
    let root = tempfile::tempdir().unwrap();
    let dir = train("ProtoNet", 100, root.path());
    let meta_before = std::fs::read_to_string(dir.join(runs::META)).unwrap();
    let trained = runs::load_meta(&dir).unwrap().final_eval.unwrap();

    let same = evaluate_run(&dir, &req()).unwrap();
    assert_eq!(
        same.result.accuracy, trained.accuracy,
        "same tasks, same numbers"
    );
    assert_eq!(same.result.loss, trained.loss);
    assert_eq!(same.checkpoint_iteration, 100);

    let wider = evaluate_run(
        &dir,
        &EvalRequest {
            ways: Some(10),
            shots: Some(2),
            tasks: Some(50),
            ..req()
        },
    )
    .unwrap();
    let p = &wider.protocol;
    assert_eq!((p.ways, p.shots, p.tasks), (Some(10), 2, 50));
    assert!(p.adaptation.contains("prototypes"), "{}", p.adaptation);
    assert!(p.head.starts_with("none"), "{}", p.head);
    let acc = wider.result.accuracy.unwrap();
    assert_eq!(acc.n, 50);
    assert!(acc.mean > 0.2, "10-way accuracy {acc:?} (chance 0.1)");

    let saved = load_evals(&dir).unwrap();
    assert_eq!(saved.len(), 2);
    // (JSON keeps floats to their last digit or so: compare the protocol and the mean.)
    assert_eq!(saved[1].protocol, wider.protocol);
    assert!((saved[1].result.accuracy.unwrap().mean - acc.mean).abs() < 1e-12);
    assert_eq!(
        std::fs::read_to_string(dir.join(runs::META)).unwrap(),
        meta_before,
        "run.json is not touched"
    );
}

#[test]
fn scoring_only_the_ends_gives_the_same_result_without_the_per_step_curve() {
    let root = tempfile::tempdir().unwrap();
    let dir = train("Fomaml", 20, root.path());
    let every = evaluate_run(
        &dir,
        &EvalRequest {
            tasks: Some(30),
            ..req()
        },
    )
    .unwrap();
    let ends = evaluate_run(
        &dir,
        &EvalRequest {
            tasks: Some(30),
            scoring: Scoring::Ends,
            ..req()
        },
    )
    .unwrap();
    assert_eq!(every.result.per_step.len(), 6, "steps 0..=5");
    assert!(ends.result.per_step.is_empty());
    assert_eq!(ends.result.loss, every.result.loss);
    assert_eq!(ends.result.loss_before, every.result.loss_before);
    assert_eq!(ends.result.accuracy, every.result.accuracy);
    assert_eq!(every.result.per_step[5].loss, every.result.loss);
    assert_ne!(
        every.result.loss_before, every.result.loss,
        "five steps of 0.1 change the loss, so the two ends are distinct scores"
    );
}

#[test]
fn a_gradient_based_head_refuses_other_ways_unless_asked_for_a_fresh_head() {
    let root = tempfile::tempdir().unwrap();
    let dir = train("Fomaml", 20, root.path());
    let ten = EvalRequest {
        ways: Some(10),
        tasks: Some(20),
        ..req()
    };
    let err = evaluate_run(&dir, &ten).unwrap_err();
    assert!(matches!(err, SavedEvalError::HeadTooNarrow { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("5 outputs") && msg.contains("--fresh-head"),
        "{msg}"
    );
    assert!(
        load_evals(&dir).unwrap().is_empty(),
        "nothing stored for a refusal"
    );

    let fresh = evaluate_run(
        &dir,
        &EvalRequest {
            fresh_head: true,
            ..ten
        },
    )
    .unwrap();
    assert!(
        fresh.protocol.head.contains("fresh zero head (10 outputs)"),
        "{}",
        fresh.protocol.head
    );
    assert_eq!(fresh.result.inner_steps, 5);
    assert_eq!(load_evals(&dir).unwrap().len(), 1);
}

fn write_png(path: &Path, ink: &[f32], size: usize) {
    let grey: Vec<u8> = ink
        .iter()
        .map(|&v| (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8)
        .collect();
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size as u32, size as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&grey).unwrap();
}

/// `runs` runs of 20-way 1-shot in Lake's layout, from the synthetic family's held-out classes
/// (the same family and seed the runs were trained on); test items in shuffled order.
fn lake_fixture(root: &Path, runs: usize) {
    let size = 12;
    let fam = Synthetic::new(
        SyntheticSpec {
            ways: 20,
            shots: 1,
            queries: 1,
            ..SyntheticSpec::default()
        },
        SEED,
    )
    .unwrap();
    let mut rng = Rng::seed_from_u64(77);
    for r in 1..=runs {
        let run = format!("run{r:02}");
        let dir = root.join(&run);
        std::fs::create_dir_all(dir.join("training")).unwrap();
        std::fs::create_dir_all(dir.join("test")).unwrap();
        let task = fam.sample_task(Split::Test, &mut rng);
        let ep = fam.sample_episode(&task, &mut rng);
        let (Targets::Classes(sy), Targets::Classes(qy)) = (&ep.support.y, &ep.query.y) else {
            unreachable!()
        };
        let n = size * size;
        for (j, &y) in sy.iter().enumerate() {
            let p = dir.join("training").join(format!("class{:02}.png", y + 1));
            write_png(&p, &ep.support.x[j * n..(j + 1) * n], size);
        }
        // Items numbered in a shuffled order, so item k is not class k.
        let mut order: Vec<usize> = (0..qy.len()).collect();
        order.rotate_left(7 * r % qy.len());
        order.reverse();
        let mut labels = String::new();
        for (item, &i) in order.iter().enumerate() {
            let name = format!("item{:02}.png", item + 1);
            write_png(
                &dir.join("test").join(&name),
                &ep.query.x[i * n..(i + 1) * n],
                size,
            );
            labels += &format!(
                "{run}/test/{name} {run}/training/class{:02}.png\n",
                qy[i] + 1
            );
        }
        std::fs::write(dir.join("class_labels.txt"), labels).unwrap();
    }
}

#[test]
fn lake_runs_folder_reports_error_rate_per_run_and_overall() {
    let root = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    lake_fixture(lake.path(), 3);
    let trained = train("ProtoNet", 300, root.path());
    let untrained = train("ProtoNet", 1, root.path());
    let good = evaluate_lake(&trained, lake.path(), &req()).unwrap();
    let bad = evaluate_lake(&untrained, lake.path(), &req()).unwrap();
    let report = good.lake.as_ref().unwrap();
    let names: Vec<&str> = report.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!(names, ["run01", "run02", "run03"]);
    assert!(report.runs.iter().all(|r| r.items == 20));
    let (e_good, e_bad) = (report.error_rate.mean, bad.lake.unwrap().error_rate.mean);
    eprintln!(
        "Lake-layout fixture, 20-way 1-shot: error rate trained {e_good:.3}, untrained {e_bad:.3}"
    );
    assert!(e_good < 0.6, "20-way error rate {e_good} (chance 0.95)");
    assert!(e_good < e_bad, "training helps: {e_good} vs {e_bad}");
    assert_eq!(good.protocol.ways, Some(20));
    assert_eq!(load_evals(&trained).unwrap().len(), 1);

    // A 5-way gradient-based head cannot take 20-way runs.
    let maml = train("Fomaml", 2, root.path());
    let err = evaluate_lake(&maml, lake.path(), &req()).unwrap_err();
    assert!(err.to_string().contains("20-way"), "{err}");

    // A broken labels file names the file and the line.
    std::fs::write(
        lake.path().join("run02/class_labels.txt"),
        "just-one-field\n",
    )
    .unwrap();
    let err = evaluate_lake(&trained, lake.path(), &req())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("run02/class_labels.txt") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn within_alphabet_is_refused_for_a_family_without_alphabets() {
    let root = tempfile::tempdir().unwrap();
    let dir = train("ProtoNet", 5, root.path());
    let err = evaluate_run(
        &dir,
        &EvalRequest {
            within_alphabet: true,
            ..req()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SavedEvalError::WithinAlphabetWithoutAlphabets { .. })
            && msg.contains("--within-alphabet")
            && msg.contains("fix: drop --within-alphabet"),
        "{msg}"
    );
    assert!(
        load_evals(&dir).unwrap().is_empty(),
        "nothing is recorded for a refused protocol"
    );
}

#[test]
fn support_copies_are_recorded_reproducible_and_leave_the_tasks_alone() {
    let root = tempfile::tempdir().unwrap();
    let dir = train("ProtoNet", 100, root.path());
    let plain = evaluate_run(&dir, &req()).unwrap();
    let copied = |copies| {
        evaluate_run(
            &dir,
            &EvalRequest {
                support_copies: copies,
                ..req()
            },
        )
        .unwrap()
    };
    let (a, b) = (copied(3), copied(3));
    assert_eq!(
        a.result.loss, b.result.loss,
        "the copies come from a seeded stream"
    );
    assert_eq!(a.result.accuracy, b.result.accuracy);
    assert_ne!(a.result.loss, plain.result.loss, "the prototypes moved");
    assert_eq!(
        a.result.accuracy.unwrap().n,
        plain.result.accuracy.unwrap().n,
        "the same tasks"
    );
    let c = a.protocol.support_copies.as_ref().expect("recorded");
    assert_eq!(c.copies, 3);
    assert!(c.distortions.contains("rotation ±10°"), "{}", c.distortions);
    assert!(plain.protocol.support_copies.is_none());
    let saved = load_evals(&dir).unwrap();
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[1].protocol, a.protocol, "read back as written");
    assert_eq!(saved[0].protocol.support_copies, None);
}

#[test]
fn support_copies_are_refused_for_a_family_without_images() {
    let root = tempfile::tempdir().unwrap();
    let text = r#"Experiment(name: "sine", seed: 1, family: Sinusoid(), model: Mlp(hidden: [8]),
        arms: [Arm(name: "a", algorithm: Fomaml)],
        train: Train(iterations: 3, meta_batch: 2),
        eval: Eval(every: 0, tasks: 4, periodic_tasks: 2, inner_steps: 1))"#;
    let e = parse_str(text, Path::new("t.ron")).unwrap();
    let dir = engine_common::run_dir(&engine_common::run_all(e, root.path()));
    let err = evaluate_run(
        &dir,
        &EvalRequest {
            support_copies: 2,
            ..req()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SavedEvalError::SupportCopiesWithoutImages { .. })
            && msg.contains("fix: drop --support-copies"),
        "{msg}"
    );
    assert!(load_evals(&dir).unwrap().is_empty());
}
