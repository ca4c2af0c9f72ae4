//! Loss against adaptation steps and the regression fits: what the engine records for the
//! adaptation view, through its public API on real (short) training runs.

use std::path::Path;

use metalab::engine::{ClassFit, EngineEvent, EvalResult, TaskFit, TaskPoint};
use metalab::experiment::{parse_str, Experiment};
use metalab::runs;

#[path = "engine_common/mod.rs"]
mod engine_common;
use engine_common::run_all;

fn exp(text: &str) -> Experiment {
    parse_str(text, Path::new("test.ron")).unwrap_or_else(|e| panic!("{e}"))
}

fn evals(events: &[EngineEvent], arm: usize) -> Vec<EvalResult> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Eval { arm: a, result } if *a == arm => Some(result.clone()),
            _ => None,
        })
        .collect()
}

fn fits(events: &[EngineEvent], arm: usize) -> Vec<TaskFit> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Fit { arm: a, fit } if *a == arm => Some(fit.clone()),
            _ => None,
        })
        .collect()
}

/// The per-step curve of an inner-loop rule starts at `loss_before` and ends at `loss`
/// exactly: they are the same computation's first and last points.
fn assert_curve_spans_before_and_after(r: &EvalResult, steps: usize, what: &str) {
    assert_eq!(r.per_step.len(), steps + 1, "{what}: {:?}", r.per_step);
    assert_eq!(r.per_step[0].loss, r.loss_before, "{what}");
    assert_eq!(r.per_step[steps].loss, r.loss, "{what}");
    assert_eq!(r.per_step[steps].accuracy, r.accuracy, "{what}");
    for (s, p) in r.per_step.iter().enumerate() {
        assert_eq!(p.step, s, "{what}");
    }
}

#[test]
fn maml_on_sinusoid_records_every_step_and_its_fit_improves_with_adaptation() {
    let root = tempfile::tempdir().unwrap();
    let e = exp(r#"Experiment(name: "t", seed: 5,
            family: Sinusoid(shots: 10, queries: 10),
            model: Mlp(hidden: [40, 40]),
            arms: [Arm(name: "maml", algorithm: Maml())],
            train: Train(iterations: 300, meta_batch: 10, meta_lr: 0.003, log_every: 50),
            eval: Eval(every: 150, tasks: 50, periodic_tasks: 10, inner_steps: 5, tracked_tasks: 3))"#);
    let events = run_all(e, root.path());
    let all = evals(&events, 0);
    assert_eq!(all.len(), 3, "two periodic evaluations and the final one");
    for r in &all {
        assert_curve_spans_before_and_after(r, 5, "maml");
        assert!(r.per_step.iter().all(|p| p.accuracy.is_none()));
    }
    let last = all.last().unwrap();
    assert!(
        last.per_step[5].loss.mean < last.per_step[0].loss.mean,
        "{:?}",
        last.per_step
    );

    // One fit per tracked task at each periodic evaluation (the final test tracks none).
    let fits = fits(&events, 0);
    assert_eq!(fits.len(), 2 * 3, "{}", fits.len());
    let latest: Vec<&TaskFit> = fits.iter().filter(|f| f.iteration == 300).collect();
    assert_eq!(latest.len(), 3);
    for f in &latest {
        assert_eq!(f.x.len(), 100);
        assert_eq!(f.truth.len(), 100);
        assert_eq!(f.support_x.len(), 10);
        assert_eq!(f.support_y.len(), 10);
        assert_eq!(f.predictions.len(), 6, "steps 0..=5");
        assert!(f.predictions.iter().all(|p| p.len() == 100));
        let (before, after) = (f.grid_mse(0).unwrap(), f.grid_mse(5).unwrap());
        eprintln!(
            "task {}: grid MSE before adaptation {before:.3}, after 5 steps {after:.3}",
            f.task
        );
        assert!(after < before, "task {}: {before} -> {after}", f.task);
    }

    // The run keeps the latest fits, so a saved run shows them too.
    let dir = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .unwrap();
    let saved = runs::load_metrics(&dir).unwrap();
    assert_eq!(
        saved.fits,
        latest.into_iter().cloned().collect::<Vec<_>>(),
        "fits.json holds the latest evaluation's fits"
    );
    // run.json and metrics.jsonl carry the curve (JSON keeps 15 significant digits).
    let meta = runs::load_meta(&dir).unwrap();
    for read in [
        meta.final_eval.unwrap(),
        saved.evals.last().unwrap().clone(),
    ] {
        assert_eq!(read.per_step.len(), last.per_step.len());
        for (a, b) in read.per_step.iter().zip(&last.per_step) {
            assert!((a.loss.mean - b.loss.mean).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn every_rule_records_its_curve_from_loss_before_to_loss() {
    let root = tempfile::tempdir().unwrap();
    // Regression: the rules that adapt every parameter, the head, or with learned rates.
    let e = exp(r#"Experiment(name: "t", seed: 5,
            family: Sinusoid(shots: 10, queries: 10),
            model: Mlp(hidden: [20, 20]),
            arms: [Arm(name: "reptile", algorithm: Reptile()),
                   Arm(name: "multitask", algorithm: MultiTask(tasks: 20)),
                   Arm(name: "anil", algorithm: Anil()),
                   Arm(name: "metasgd", algorithm: MetaSgd())],
            train: Train(iterations: 10, meta_batch: 4, log_every: 5),
            eval: Eval(every: 0, tasks: 20, periodic_tasks: 5, inner_steps: 4, tracked_tasks: 1))"#);
    let events = run_all(e, root.path());
    for (arm, name) in ["reptile", "multitask", "anil", "metasgd"]
        .iter()
        .enumerate()
    {
        let r = evals(&events, arm).pop().unwrap();
        assert_curve_spans_before_and_after(&r, 4, name);
        let f = fits(&events, arm);
        assert_eq!(
            f.len(),
            1,
            "{name}: one tracked task at the last evaluation"
        );
        assert_eq!(f[0].predictions.len(), 5, "{name}");
    }

    // Classification with an inner loop: accuracy at every step too. A metric arm has no
    // steps: one point, its result. Neither draws a fit.
    let e = exp(r#"Experiment(name: "syn", seed: 3,
            family: Synthetic(ways: 3, shots: 1, queries: 3),
            model: Mlp(hidden: [16]),
            arms: [Arm(name: "fomaml", algorithm: Fomaml), Arm(name: "proto", algorithm: ProtoNet)],
            train: Train(iterations: 5, meta_batch: 4, inner_lr: 0.1),
            eval: Eval(every: 0, tasks: 20, periodic_tasks: 5, inner_steps: 3, inner_lr: 0.1, tracked_tasks: 1))"#);
    let events = run_all(e, root.path());
    let r = evals(&events, 0).pop().unwrap();
    assert_curve_spans_before_and_after(&r, 3, "fomaml");
    assert!(r.per_step.iter().all(|p| p.accuracy.is_some()));
    let p = evals(&events, 1).pop().unwrap();
    assert_eq!(p.per_step.len(), 1, "{:?}", p.per_step);
    assert_eq!(p.per_step[0].loss, p.loss);
    assert_eq!(p.per_step[0].accuracy, p.accuracy);
    assert!(fits(&events, 0).is_empty() && fits(&events, 1).is_empty());
}

#[test]
fn results_recorded_before_the_curve_still_read() {
    let old = r#"{"iteration":300,"split":"test","loss":{"mean":0.5,"ci95":0.1,"n":600},
        "accuracy":null,"loss_before":{"mean":3.0,"ci95":0.2,"n":600},"inner_steps":10,"inner_lr":0.01}"#;
    let r: EvalResult = serde_json::from_str(old).unwrap();
    assert!(r.per_step.is_empty());
    // And a run without fits.json has no fits.
    let dir = tempfile::tempdir().unwrap();
    assert!(runs::load_fits(dir.path()).is_empty());
}

/// Classification's tracked tasks: at each periodic evaluation one `ClassFit` per tracked task,
/// its per-step query results the very computation the `Task` point reports (last step = the
/// point), its support labels the episode's, its classes named; the latest kept in
/// `class_fits.json`. A metric arm has one step, its result.
#[test]
fn classification_tracked_tasks_record_steps_and_support_classes() {
    let root = tempfile::tempdir().unwrap();
    let e = exp(r#"Experiment(name: "syn", seed: 4,
            family: Synthetic(ways: 3, shots: 2, queries: 3),
            model: Mlp(hidden: [16]),
            arms: [Arm(name: "fomaml", algorithm: Fomaml), Arm(name: "proto", algorithm: ProtoNet)],
            train: Train(iterations: 10, meta_batch: 4, inner_lr: 0.1),
            eval: Eval(every: 5, tasks: 10, periodic_tasks: 5, inner_steps: 3, inner_lr: 0.1, tracked_tasks: 2))"#);
    let events = run_all(e, root.path());
    let class_fits = |arm: usize| -> Vec<ClassFit> {
        events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ClassFit { arm: a, fit } if *a == arm => Some(fit.clone()),
                _ => None,
            })
            .collect()
    };
    let points = |arm: usize| -> Vec<TaskPoint> {
        events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Task { arm: a, point } if *a == arm => Some(point.clone()),
                _ => None,
            })
            .collect()
    };
    for (arm, steps) in [(0, 4), (1, 1)] {
        let cf = class_fits(arm);
        assert_eq!(
            cf.len(),
            2 * 2,
            "two evaluations × two tracked tasks: {cf:?}"
        );
        let pts = points(arm);
        for f in &cf {
            assert_eq!(f.steps.len(), steps, "{f:?}");
            assert_eq!(f.classes.len(), 3);
            assert!(f.classes.iter().all(|c| c.starts_with("class ")), "{f:?}");
            let mut labels = f.support_labels.clone();
            labels.sort();
            assert_eq!(labels, vec![0, 0, 1, 1, 2, 2], "{f:?}");
            assert_eq!(f.shots(), vec![2, 2, 2]);
            let p = pts
                .iter()
                .find(|p| p.iteration == f.iteration && p.task == f.task)
                .expect("a task point for each class fit");
            let last = f.steps.last().unwrap();
            assert_eq!(last.loss, p.loss, "{f:?} vs {p:?}");
            assert_eq!(last.accuracy, p.accuracy);
            assert!(f.steps.iter().all(|s| s.accuracy.is_some()));
        }
        // Same tasks at both evaluations: the tracked tasks are fixed for the run.
        assert_eq!(cf[0].support_labels, cf[2].support_labels);
        assert_eq!(cf[0].classes, cf[2].classes);
        assert_ne!(cf[0].classes, cf[1].classes, "two tasks, two class draws");
        // On disk, the latest evaluation's.
        let dir = events
            .iter()
            .find_map(|e| match e {
                EngineEvent::Started {
                    arm: a, run_dir, ..
                } if *a == arm => Some(run_dir.clone()),
                _ => None,
            })
            .unwrap();
        let saved = runs::load_class_fits(&dir);
        assert_eq!(saved, cf[2..].to_vec());
        assert!(runs::load_fits(&dir).is_empty());
    }
    // Classification draws no regression fits.
    assert!(fits(&events, 0).is_empty());
}
