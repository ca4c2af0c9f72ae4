//! `eval.ways`/`shots`/`queries`: evaluation episodes shaped unlike training's (Snell et al.'s
//! train-60-way, test-20-way protocol), what `check` refuses, and `metalab eval` starting from
//! the run's own evaluation episodes.

use std::path::Path;

use metalab::engine::EngineEvent;
use metalab::experiment::{parse_str, ExperimentError, ValidationError};
use metalab::runs;
use metalab::saved::{evaluate_run, EvalRequest};

#[path = "engine_common/mod.rs"]
mod engine_common;

fn train(text: &str, root: &Path) -> std::path::PathBuf {
    let e = parse_str(text, Path::new("t.ron")).unwrap_or_else(|e| panic!("{e}"));
    let events = engine_common::run_all(e, root);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EngineEvent::Finished { stopped: false, .. })),
        "did not finish: {events:?}"
    );
    engine_common::run_dir(&events)
}

fn errors(text: &str) -> Vec<ValidationError> {
    match parse_str(text, Path::new("t.ron")) {
        Err(ExperimentError::Invalid { errors, .. }) => errors,
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn protonets_train_ten_way_and_evaluate_five_way_episodes() {
    let root = tempfile::tempdir().unwrap();
    let dir = train(
        r#"Experiment(name: "syn", seed: 3,
            family: Synthetic(ways: 10, shots: 1, queries: 5),
            model: Mlp(hidden: [64, 64]),
            arms: [Arm(name: "proto", algorithm: ProtoNet)],
            train: Train(iterations: 100, meta_batch: 4),
            eval: Eval(every: 50, tasks: 200, periodic_tasks: 20, ways: 5, queries: 3))"#,
        root.path(),
    );
    let meta = runs::load_meta(&dir).unwrap();
    let recorded = meta
        .protocol
        .eval_family
        .clone()
        .expect("eval family recorded");
    assert!(recorded.contains("5-way 1-shot (3 query)"), "{recorded}");
    assert!(meta.family.contains("10-way"), "{}", meta.family);
    let fin = meta.final_eval.unwrap();
    // Before the support set is seen a metric arm's prediction is uniform over the episode's
    // classes: ln 5, not the training episodes' ln 10.
    assert!((fin.loss_before.mean - 5f64.ln()).abs() < 1e-9, "{fin:?}");
    let config = runs::load_config(&dir).unwrap();
    assert_eq!(
        (config.eval.ways, config.eval.shots, config.eval.queries),
        (Some(5), None, Some(3)),
        "frozen with the run"
    );

    // `metalab eval` with no changes starts from the run's evaluation episodes: same numbers.
    let req = EvalRequest {
        threads: Some(2),
        ..EvalRequest::default()
    };
    let same = evaluate_run(&dir, &req).unwrap();
    assert_eq!(same.protocol.ways, Some(5));
    assert_eq!(same.protocol.queries, 3);
    assert_eq!(same.result.accuracy, fin.accuracy);
    let ten = evaluate_run(
        &dir,
        &EvalRequest {
            ways: Some(10),
            ..req
        },
    )
    .unwrap();
    assert_eq!(ten.protocol.ways, Some(10));
    let (five, ten) = (fin.accuracy.unwrap(), ten.result.accuracy.unwrap());
    assert!(
        five.mean > ten.mean,
        "5-way {five:?} should be easier than 10-way {ten:?}"
    );
}

#[test]
fn other_evaluation_ways_are_refused_for_an_arm_with_a_trained_head() {
    let errs = errors(
        r#"Experiment(name: "mix",
    family: Synthetic(ways: 10, shots: 1, queries: 5),
    model: Mlp(hidden: [32]),
    arms: [Arm(name: "proto", algorithm: ProtoNet), Arm(name: "maml", algorithm: Maml())],
    eval: Eval(ways: 5),
)"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert_eq!(e.field, "eval.ways");
    assert_eq!(e.position, Some((5, 16)), "{e}");
    assert!(
        e.message.contains("`maml`") && e.message.contains("10-way head"),
        "{e}"
    );
    assert!(e.fix.contains("set eval.ways to 10"), "{e}");

    // The same ways as training's are no change, whatever the arms.
    parse_str(
        r#"Experiment(name: "same", family: Synthetic(ways: 10), model: Mlp(hidden: [32]),
            arms: [Arm(name: "maml", algorithm: Maml())], eval: Eval(ways: 10, shots: 5))"#,
        Path::new("t.ron"),
    )
    .unwrap();
}

#[test]
fn evaluation_episodes_must_be_episodes_of_the_family() {
    let sine = errors(
        r#"Experiment(name: "sine", family: Sinusoid(), model: Mlp(hidden: [40]),
            arms: [Arm(name: "maml", algorithm: Maml())], eval: Eval(ways: 5))"#,
    );
    assert_eq!(sine.len(), 1, "{sine:?}");
    assert_eq!(sine[0].field, "eval.ways");
    assert!(sine[0].message.contains("regression"), "{}", sine[0]);

    let omniglot = errors(
        r#"Experiment(name: "o",
            family: Omniglot(root: "data/omniglot", ways: 20, shots: 1, queries: 5),
            model: Conv(blocks: 4, channels: 64),
            arms: [Arm(name: "proto", algorithm: ProtoNet)],
            eval: Eval(shots: 5, queries: 16))"#,
    );
    assert_eq!(omniglot.len(), 1, "{omniglot:?}");
    assert_eq!(omniglot[0].field, "eval.queries");
    assert!(omniglot[0].message.contains("= 21"), "{}", omniglot[0]);

    let zero = errors(
        r#"Experiment(name: "z", family: Synthetic(), model: Mlp(hidden: [32]),
            arms: [Arm(name: "proto", algorithm: ProtoNet)], eval: Eval(shots: 0, ways: 1))"#,
    );
    let fields: Vec<&str> = zero.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["eval.ways", "eval.shots"], "{zero:?}");
}
