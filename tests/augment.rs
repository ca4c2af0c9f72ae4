//! Augmented training through the engine: distortions are part of the seeded stream, so a rerun
//! and a resumed run reproduce the uninterrupted one bit for bit; evaluations are not distorted.

use std::path::Path;

use metalab::engine::{Command, EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::{parse_str, Augment, Experiment, ExperimentError};
use metalab::runs::{self, RunStatus};

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

fn opts(root: &Path, threads: usize) -> LaunchOptions {
    LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(threads),
        ..LaunchOptions::default()
    }
}

/// Run to the end (or until `stop_after` iterations, then stop); the run folder and its events.
fn run(p: Prepared, stop_after: Option<usize>) -> (std::path::PathBuf, Vec<EngineEvent>) {
    let h = p.launch();
    let mut events = vec![];
    for ev in h.events.iter() {
        if let (EngineEvent::Train { point, .. }, Some(n)) = (&ev, stop_after) {
            if point.iteration >= n {
                h.send(None, Command::Stop);
            }
        }
        events.push(ev);
    }
    h.join();
    let dir = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no run started: {events:?}"));
    (dir, events)
}

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

    // The frozen config records the augmentation and alone reproduces the run, on 1 thread.
    let frozen = runs::load_config(&straight).unwrap();
    assert!(matches!(frozen.train.augment, Augment::Affine(_)));
    let (rerun, _) = run(Prepared::new(frozen, opts(root.path(), 1)).unwrap(), None);
    let numbers = |d: &Path| runs::deterministic_metrics(d).unwrap();
    assert_eq!(numbers(&straight), numbers(&rerun));

    // Stopped mid-window, then resumed: the same numbers as the uninterrupted run.
    let (stopped, _) = run(
        Prepared::new(exp(AFFINE, 60), opts(root.path(), 2)).unwrap(),
        Some(25),
    );
    assert_eq!(
        runs::load_meta(&stopped).unwrap().status,
        RunStatus::Stopped
    );
    run(
        Prepared::resume(&stopped, opts(root.path(), 1)).unwrap(),
        None,
    );
    assert_eq!(
        runs::load_meta(&stopped).unwrap().status,
        RunStatus::Finished
    );
    assert_eq!(numbers(&straight), numbers(&stopped));

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
