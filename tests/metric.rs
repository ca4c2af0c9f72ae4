//! The metric-based arms (Prototypical, Matching, Relation networks), ANIL and Meta-SGD: losses
//! through real bodies against finite differences, known results on the synthetic family, and
//! `check`'s refusals.

use std::path::Path;

use metalab::algo::eval::AdaptationRule;
use metalab::algo::metric::episode_loss;
use metalab::engine::{EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::{
    parse_str, Activation, ConvSpec, DeviceSpec, Experiment, MlpSpec, ModelSpec, SyntheticSpec,
};
use metalab::model::metric::MetricKind;
use metalab::model::Network;
use metalab::runs;
use metalab::tasks::synthetic::Synthetic;
use metalab::tasks::{Rng, Split, TaskFamily};
use rand::SeedableRng;

#[path = "engine_common/mod.rs"]
mod engine_common;

const KINDS: [MetricKind; 3] = [
    MetricKind::Prototypes,
    MetricKind::Matching,
    MetricKind::Relation { hidden: 5 },
];

fn family(ways: usize, shots: usize, image_size: usize) -> Synthetic {
    Synthetic::new(
        SyntheticSpec {
            ways,
            shots,
            queries: 3,
            classes: 60,
            image_size,
            noise: 0.3,
        },
        1,
    )
    .unwrap()
}

/// `params = body ++ module` for `kind`, from the network's initialisation.
fn metric_params(net: &Network, kind: MetricKind, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut p = net.init(&mut rng)[..net.layout.head_start].to_vec();
    p.extend(kind.init_module(net.layout.feature_dim(), &mut rng));
    p
}

/// Central differences of the f32 episode loss at step `h`, coordinate `i`.
fn fd(mut loss: impl FnMut(&[f32]) -> f64, p: &[f32], i: usize, h: f32) -> f64 {
    let (up, down) = (p[i] + h, p[i] - h);
    let mut q = p.to_vec();
    q[i] = up;
    let a = loss(&q);
    q[i] = down;
    let b = loss(&q);
    // The step actually taken in f32.
    (a - b) / (up - down) as f64
}

#[test]
fn metric_losses_through_an_mlp_body_match_finite_differences() {
    let fam = family(3, 2, 4);
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![6, 5],
        activation: Activation::Tanh,
    });
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let mut rng = Rng::seed_from_u64(9);
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    let hs = net.layout.head_start;
    for kind in KINDS {
        let params = metric_params(&net, kind, 2);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let mut g = vec![0.0f32; params.len()];
        let out = episode_loss(ev.as_mut(), kind, &params, hs, &ep, Some(&mut g));
        let again = episode_loss(ev.as_mut(), kind, &params, hs, &ep, None);
        assert_eq!(out, again, "{kind:?}: with and without gradients");
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (i, &gi) in g.iter().enumerate() {
            let f = fd(
                |p| episode_loss(ev.as_mut(), kind, p, hs, &ep, None).loss as f64,
                &params,
                i,
                1e-3,
            );
            num += (f - gi as f64).powi(2);
            den += f * f;
        }
        let err = (num / den).sqrt();
        eprintln!("{kind:?} through a tanh MLP: relative gradient error {err:.2e}");
        assert!(
            den > 1e-6,
            "{kind:?}: the gradient is zero, the check is vacuous"
        );
        // The relation module's MSE-on-sigmoid gradients are ~100× smaller than the others', so
        // the f32 rounding of the loss dominates its central differences (no coordinate is off
        // by more than 1e-3); `model::metric::relation`'s f64 test checks it to 1e-6.
        let tolerance = match kind {
            MetricKind::Relation { .. } => 5e-2,
            _ => 1e-2,
        };
        assert!(err < tolerance, "{kind:?}: relative gradient error {err}");
    }
}

/// Through conv blocks (batch norm over support and query together, ReLU, max pool): kinks make
/// a few coordinates' central differences meaningless, so the median relative error is checked.
#[test]
fn metric_losses_through_a_conv_body_match_finite_differences() {
    let fam = family(3, 2, 8);
    let spec = ModelSpec::Conv(ConvSpec {
        blocks: 2,
        channels: 3,
        batch_norm: true,
    });
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let mut rng = Rng::seed_from_u64(4);
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    let hs = net.layout.head_start;
    for kind in KINDS {
        let params = metric_params(&net, kind, 3);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let mut g = vec![0.0f32; params.len()];
        episode_loss(ev.as_mut(), kind, &params, hs, &ep, Some(&mut g));
        let mut errs = vec![];
        for i in (0..params.len()).step_by(3) {
            let f = fd(
                |p| episode_loss(ev.as_mut(), kind, p, hs, &ep, None).loss as f64,
                &params,
                i,
                1e-3,
            );
            if f.abs() < 1e-3 {
                continue;
            }
            errs.push(((g[i] as f64 - f) / f).abs());
        }
        errs.sort_by(f64::total_cmp);
        let median = errs[errs.len() / 2];
        eprintln!(
            "{kind:?} through conv: median relative error {median:.2e} over {} coordinates",
            errs.len()
        );
        assert!(
            errs.len() >= 10,
            "{kind:?}: too few coordinates with a gradient"
        );
        assert!(median < 1e-2, "{kind:?}: median relative error {median}");
    }
}

fn exp(text: &str) -> Experiment {
    parse_str(text, Path::new("test.ron")).unwrap_or_else(|e| panic!("{e}"))
}

fn final_accuracy(e: Experiment, root: &Path) -> (f64, f64, std::path::PathBuf) {
    let events = engine_common::run_all(e, root);
    let dir = engine_common::run_dir(&events);
    let acc = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Finished {
                final_eval: Some(r),
                ..
            } => r.accuracy,
            _ => None,
        })
        .unwrap_or_else(|| panic!("did not finish: {events:?}"));
    (acc.mean, acc.ci95, dir)
}

fn synthetic(arm: &str, iterations: usize) -> Experiment {
    exp(&format!(
        r#"Experiment(name: "syn", seed: 3,
            family: Synthetic(ways: 5, shots: 1, queries: 5),
            model: Mlp(hidden: [64, 64]),
            arms: [Arm(name: "a", algorithm: {arm})],
            train: Train(iterations: {iterations}, meta_batch: 8, inner_lr: 0.1),
            eval: Eval(every: 0, tasks: 300, periodic_tasks: 20, inner_steps: 5, inner_lr: 0.1))"#
    ))
}

/// Each algorithm learns 5-way 1-shot synthetic classification (chance 20%) in a few hundred
/// cheap iterations, and beats its own untrained start by a wide margin.
fn learns(arm: &str, iterations: usize, floor: f64) {
    let root = tempfile::tempdir().unwrap();
    let (before, _, _) = final_accuracy(synthetic(arm, 1), root.path());
    let (after, ci, dir) = final_accuracy(synthetic(arm, iterations), root.path());
    eprintln!("{arm}: synthetic 5-way 1-shot accuracy untrained {before:.3}, after {iterations} iterations {after:.3} ± {ci:.3}");
    assert!(
        after > floor,
        "{arm}: {after:.3} after {iterations} iterations"
    );
    assert!(after - before > 0.1, "{arm}: {before:.3} -> {after:.3}");
    let meta = runs::load_meta(&dir).unwrap();
    assert!(!meta.protocol.description.is_empty());
}

#[test]
fn protonets_learn_synthetic_classification() {
    learns("ProtoNet", 300, 0.7);
}

#[test]
fn matching_nets_learn_synthetic_classification() {
    learns("MatchingNet", 300, 0.5);
}

#[test]
fn relation_nets_learn_synthetic_classification() {
    learns("RelationNet(hidden: 8)", 300, 0.6);
}

#[test]
fn anil_learns_synthetic_classification() {
    learns("Anil()", 300, 0.35);
}

#[test]
fn meta_sgd_learns_synthetic_classification() {
    learns("MetaSgd()", 300, 0.5);
}

#[test]
fn a_metric_run_records_that_evaluation_computed_prototypes() {
    let root = tempfile::tempdir().unwrap();
    let (_, _, dir) = final_accuracy(synthetic("ProtoNet", 2), root.path());
    let meta = runs::load_meta(&dir).unwrap();
    assert_eq!(meta.protocol.inner_steps, 0);
    assert_eq!(meta.protocol.adaptation, AdaptationRule::Prototypes);
    let words = &meta.protocol.description;
    assert!(
        words.contains("no gradient steps") && words.contains("prototypes"),
        "{words}"
    );
    let fin = meta.final_eval.unwrap();
    assert_eq!((fin.inner_steps, fin.inner_lr), (0, 0.0));
    // Before the support set is seen, the prediction is uniform over 5 classes.
    assert!((fin.loss_before.mean - 5f64.ln()).abs() < 1e-9);
}

#[test]
fn check_refuses_metric_arms_on_regression_with_the_arm_position() {
    let text = r#"Experiment(
    name: "sine",
    family: Sinusoid(),
    model: Mlp(hidden: [40, 40]),
    arms: [
        Arm(name: "maml", algorithm: Maml()),
        Arm(name: "proto", algorithm: ProtoNet),
        Arm(name: "anil", algorithm: Anil()),
    ],
)"#;
    let Err(metalab::experiment::ExperimentError::Invalid { errors, .. }) =
        parse_str(text, Path::new("sine.ron"))
    else {
        panic!("ProtoNets on sinusoid was accepted");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = &errors[0];
    assert_eq!(err.field, "arms[1].algorithm");
    assert_eq!(err.position, Some((7, 28)), "{err}");
    assert!(err.message.contains("regression"), "{err}");
    assert!(err.fix.contains("classification family"), "{err}");
}

/// `cargo test --release --test metric metric_timing -- --ignored --nocapture`: the features
/// path against a plain evaluation of the same 80 images through conv4-64.
#[test]
#[ignore = "timing; run in release"]
fn metric_timing() {
    use metalab::tasks::{Batch, Episode, Targets};
    let shape = metalab::tasks::FamilyShape {
        input: vec![1, 28, 28],
        outputs: 5,
        kind: metalab::tasks::TaskKind::Classification,
    };
    let net = Network::new(
        &ModelSpec::Conv(ConvSpec {
            blocks: 4,
            channels: 64,
            batch_norm: true,
        }),
        &shape,
    )
    .unwrap();
    let params = net.init(&mut Rng::seed_from_u64(1));
    let batch = |n: usize| Batch {
        n,
        x: (0..n * 784)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect(),
        y: Targets::Classes((0..n).map(|i| i % 5).collect()),
    };
    let ep = Episode {
        support: batch(5),
        query: batch(75),
    };
    let all = batch(80);
    let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let mut g = vec![0.0f32; params.len()];
    let hs = net.layout.head_start;
    for round in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..5 {
            ev.evaluate(&params, &all, Some(&mut g));
        }
        let plain = t.elapsed().as_secs_f64() / 5.0;
        let t = std::time::Instant::now();
        for _ in 0..5 {
            episode_loss(
                ev.as_mut(),
                MetricKind::Prototypes,
                &params[..hs],
                hs,
                &ep,
                Some(&mut g[..hs]),
            );
        }
        let proto = t.elapsed().as_secs_f64() / 5.0;
        eprintln!(
            "round {round}: evaluate 80 images {plain:.4}s, ProtoNets episode (5+75) {proto:.4}s"
        );
    }
}

fn small(arm: &str) -> Experiment {
    exp(&format!(
        r#"Experiment(name: "syn", seed: 5,
            family: Synthetic(ways: 3, shots: 1, queries: 3, classes: 30, image_size: 8),
            model: Mlp(hidden: [16]),
            arms: [Arm(name: "a", algorithm: {arm})],
            train: Train(iterations: 60, meta_batch: 4, inner_lr: 0.1, log_every: 5),
            eval: Eval(every: 20, tasks: 10, periodic_tasks: 4, inner_steps: 2, inner_lr: 0.1, tracked_tasks: 2))"#
    ))
}

fn launch_opts(root: &Path, threads: usize) -> LaunchOptions {
    LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(threads),
        ..LaunchOptions::default()
    }
}

/// The new arms rerun bit for bit from their frozen config on another thread count, and a run
/// stopped mid-window resumes from its checkpoint (Adam moments, Meta-SGD's rates, the relation
/// module) to the same numbers.
#[test]
fn new_arms_rerun_and_resume_bit_for_bit() {
    use metalab::engine::Command;
    for arm in ["ProtoNet", "RelationNet(hidden: 4)", "Anil()", "MetaSgd()"] {
        let root = tempfile::tempdir().unwrap();
        let (_, _, straight) = final_accuracy(small(arm), root.path());
        let frozen = runs::load_config(&straight).unwrap();
        let h = Prepared::new(frozen, launch_opts(root.path(), 1))
            .unwrap()
            .launch();
        let mut rerun = None;
        let mut stop_sent = false;
        for ev in h.events.iter() {
            if let EngineEvent::Started { run_dir, .. } = ev {
                rerun = Some(run_dir);
            }
        }
        h.join();
        assert_eq!(
            runs::deterministic_metrics(&straight).unwrap(),
            runs::deterministic_metrics(&rerun.unwrap()).unwrap(),
            "{arm}: rerun"
        );

        let h = Prepared::new(small(arm), launch_opts(root.path(), 2))
            .unwrap()
            .launch();
        let mut dir = None;
        for ev in h.events.iter() {
            match ev {
                EngineEvent::Started { run_dir, .. } => dir = Some(run_dir),
                EngineEvent::Train { point, .. } if point.iteration >= 25 && !stop_sent => {
                    h.send(None, Command::Stop);
                    stop_sent = true;
                }
                _ => {}
            }
        }
        h.join();
        let dir = dir.unwrap();
        assert_eq!(
            runs::load_meta(&dir).unwrap().status,
            runs::RunStatus::Stopped,
            "{arm}"
        );
        let resumed = Prepared::resume(&dir, launch_opts(root.path(), 1))
            .unwrap()
            .launch();
        let _: Vec<_> = resumed.events.iter().collect();
        resumed.join();
        assert_eq!(
            runs::deterministic_metrics(&straight).unwrap(),
            runs::deterministic_metrics(&dir).unwrap(),
            "{arm}: resume"
        );
    }
}
