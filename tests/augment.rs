//! Augmented training through the engine: distortions are part of the seeded stream, so a rerun
//! and a resumed run reproduce the uninterrupted one bit for bit; evaluations are not distorted.

use std::path::Path;

use metalab::engine::{EngineEvent, Prepared};
use metalab::experiment::{parse_str, Augment, Experiment, ExperimentError};
use metalab::runs;

#[path = "engine_common/mod.rs"]
mod engine_common;
use engine_common::{assert_reruns_and_resumes, opts, run_until as run};

fn exp(augment: &str, iterations: usize) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "aug", seed: 3,
            family: Synthetic(ways: 3, shots: 2, queries: 3, classes: 40, image_size: 10),
            model: Mlp(hidden: [16]),
            arms: [Arm(name: "fomaml", algorithm: Fomaml)],
            train: Train(iterations: {iterations}, meta_batch: 4, log_every: 5, inner_lr: 0.1{augment}),
            eval: Eval(every: 20, tasks: 20, periodic_tasks: 8, inner_steps: 2, inner_lr: 0.1, tracked_tasks: 1),
        )"#
    );
    parse_str(&text, Path::new("aug.ron")).unwrap_or_else(|e| panic!("{e}"))
}

const AFFINE: &str = ", augment: Affine()";

#[test]
fn augmented_runs_rerun_and_resume_bit_for_bit_and_differ_from_plain_ones() {
    let root = tempfile::tempdir().unwrap();
    let p = Prepared::new(exp(AFFINE, 60), opts(root.path(), 2)).unwrap();
    assert!(
        p.family.describe().contains("distorted"),
        "{}",
        p.family.describe()
    );
    assert!(
        !p.eval_family.describe().contains("distorted"),
        "evaluations see undistorted images: {}",
        p.eval_family.describe()
    );
    let (straight, events) = run(p, None);
    let started = events.iter().find_map(|e| match e {
        EngineEvent::Started {
            family, augment, ..
        } => Some((family.clone(), augment.clone())),
        _ => None,
    });
    let (family, augment) = started.expect("a Started event");
    assert!(family.contains("rotation ±10°"), "{family}");
    assert!(
        augment.is_some_and(|a| a.contains("shear ±0.3")),
        "the workbench is told, to mark the Monitor's header"
    );

    // The frozen config records the augmentation and alone reproduces the run, on 1 thread;
    // stopped mid-window and resumed, a run ends with the same numbers as the uninterrupted one.
    let frozen = runs::load_config(&straight).unwrap();
    assert!(matches!(frozen.train.augment, Augment::Affine(_)));
    let fresh = Prepared::new(exp(AFFINE, 60), opts(root.path(), 2)).unwrap();
    assert_reruns_and_resumes(&straight, fresh, 25, root.path());
    let numbers = |d: &Path| runs::deterministic_metrics(d).unwrap();

    // Without augmentation the same seed trains on other images.
    let (plain, _) = run(
        Prepared::new(exp("", 60), opts(root.path(), 2)).unwrap(),
        None,
    );
    assert_ne!(numbers(&straight), numbers(&plain));
}

#[test]
fn augmentation_of_a_family_without_images_is_refused_with_a_fix() {
    let invalid = |text: &str| match parse_str(text, Path::new("s.ron")) {
        Err(ExperimentError::Invalid { errors, .. }) => errors,
        other => panic!("{other:?}"),
    };
    let errors = invalid(
        r#"Experiment(
        name: "s", family: Sinusoid(), model: Mlp(hidden: [8]),
        arms: [Arm(name: "maml", algorithm: Maml())],
        train: Train(augment: Affine()),
    )"#,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = &errors[0];
    assert_eq!(
        (err.field.as_str(), err.position),
        ("train.augment", Some((4, 22)))
    );
    assert!(err.fix.contains("remove augment"), "{err:?}");

    let errors = invalid(
        r#"Experiment(
        name: "o", family: Synthetic(), model: Mlp(hidden: [8]),
        arms: [Arm(name: "maml", algorithm: Maml())],
        train: Train(augment: Affine(scale: (1.3, 0.9), chance: 2.0)),
    )"#,
    );
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["train.augment.chance", "train.augment.scale"]);
}
