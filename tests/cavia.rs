//! CAVIA against ground truth: its context steps and its meta-gradient (first and second
//! order) against brute-force central differences of an independent f64 network that really
//! concatenates the context to its input; runs that rerun and resume bit for bit; the
//! experiment file's checks; `metalab eval`'s probe of the adapted embeddings.

use std::path::{Path, PathBuf};

use metalab::algo::cavia::{contexts, task_meta_grad};
use metalab::algo::embedding::TaskProperty;
use metalab::algo::maml::Order;
use metalab::engine::{EngineEvent, Prepared};
use metalab::experiment::{
    parse_str, Activation, DeviceSpec, Experiment, ExperimentError, MlpSpec, ModelSpec,
    SinusoidSpec,
};
use metalab::model::context::TaskContext;
use metalab::model::Network;
use metalab::runs::{self, RunStatus};
use metalab::saved::{evaluate_run, load_evals, EvalRequest};
use metalab::tasks::sinusoid::Sinusoid;
use metalab::tasks::{Batch, Episode, Rng, Split, TaskFamily};
use rand::SeedableRng;

#[path = "numeric_common/mod.rs"]
mod numeric_common;
use numeric_common::{assert_meta_grad_orders, fd_grad, mlp_loss as reference_loss, rel_err};

#[path = "engine_common/mod.rs"]
mod engine_common;
use engine_common::{assert_reruns_and_resumes, opts, run_until as run};

const WIDTH: usize = 2;

/// One inner step of the reference: `φ − lr·∇_φ L_s`, the gradient by central differences.
fn reference_step(
    net: &Network,
    p: &[f64],
    phi: &[f64],
    b: &Batch,
    lr: f64,
    act: Activation,
) -> Vec<f64> {
    let g = fd_grad(|q| reference_loss(net, p, q, b, act), phi, 1e-6);
    phi.iter().zip(&g).map(|(c, g)| c - lr * g).collect()
}

/// CAVIA's objective in f64: the query loss after `steps` context steps from zero.
fn objective(
    net: &Network,
    p: &[f64],
    ep: &Episode,
    steps: usize,
    lr: f64,
    act: Activation,
) -> f64 {
    let mut phi = vec![0.0; WIDTH];
    for _ in 0..steps {
        phi = reference_step(net, p, &phi, &ep.support, lr, act);
    }
    reference_loss(net, p, &phi, &ep.query, act)
}

fn setup(act: Activation) -> (Network, TaskContext, Vec<f32>, Episode) {
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![8, 8],
        activation: act,
    });
    let fam = Sinusoid::new(SinusoidSpec {
        shots: 6,
        queries: 6,
    });
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let ctx = TaskContext::new(&net, WIDTH, None).unwrap();
    let mut rng = Rng::seed_from_u64(42);
    let mut shared = net.init(&mut rng);
    shared.extend(ctx.init_rows(&mut rng));
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    (net, ctx, shared, ep)
}

const STEPS: usize = 2;
const LR: f64 = 0.5;

#[test]
fn context_steps_follow_the_context_gradient() {
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, ctx, shared, ep) = setup(act);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let path = contexts(ev.as_mut(), &shared, ctx, &ep.support, STEPS, LR);
        assert_eq!(path.len(), STEPS + 1);
        assert_eq!(path[0], vec![0.0; WIDTH], "every task starts from zero");
        let p64: Vec<f64> = shared.iter().map(|&x| x as f64).collect();
        // Each step from the algorithm's own previous context, so errors do not compound.
        for k in 0..STEPS {
            let from: Vec<f64> = path[k].iter().map(|&v| v as f64).collect();
            let want = reference_step(&net, &p64, &from, &ep.support, LR, act);
            let step: Vec<f64> = from.iter().zip(&want).map(|(a, b)| b - a).collect();
            let got: Vec<f64> = path[k + 1]
                .iter()
                .zip(&from)
                .map(|(&b, a)| b as f64 - a)
                .collect();
            let err = rel_err(&got, &step);
            assert!(err < 1e-4, "{act:?} step {k}: relative error {err}");
        }
        assert_ne!(path[1], path[0], "the context moved");
    }
}

#[test]
fn the_meta_gradient_matches_brute_force_first_and_second_order() {
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, ctx, shared, ep) = setup(act);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let order2 = Order::Second { hvp_eps: 1e-3 };
        let (second, q2) = task_meta_grad(ev.as_mut(), &shared, ctx, &ep, STEPS, LR, order2);
        let (first, q1) = task_meta_grad(ev.as_mut(), &shared, ctx, &ep, STEPS, LR, Order::First);
        assert_eq!(q1, q2, "the same adaptation either way");
        assert_eq!(second.len(), ctx.shared_len());
        let p64: Vec<f64> = shared.iter().map(|&x| x as f64).collect();
        let brute = fd_grad(|p| objective(&net, p, &ep, STEPS, LR, act), &p64, 1e-5);
        // First order by definition: the query loss's gradient with the adapted context held.
        let adapted: Vec<f64> = contexts(ev.as_mut(), &shared, ctx, &ep.support, STEPS, LR)[STEPS]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let held = fd_grad(
            |p| reference_loss(&net, p, &adapted, &ep.query, act),
            &p64,
            1e-6,
        );
        assert_meta_grad_orders(
            &format!("{act:?}"),
            (&second, &first),
            (&brute, &held),
            (1e-3, 1e-4),
        );
        // The context rows take part: their meta-gradient is not zero.
        let rows = &second[ctx.base_len()..];
        assert!(rows.iter().any(|g| g.abs() > 1e-4), "{rows:?}");
    }
}

fn exp(iterations: usize, arms: &str) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "cav", seed: 5,
            family: Sinusoid(shots: 5, queries: 5),
            model: Mlp(hidden: [16, 16]),
            arms: [{arms}],
            train: Train(iterations: {iterations}, meta_batch: 4, log_every: 5),
            eval: Eval(every: 20, tasks: 40, periodic_tasks: 8, inner_steps: 2, tracked_tasks: 1),
        )"#
    );
    parse_str(&text, Path::new("cav.ron")).unwrap_or_else(|e| panic!("{e}"))
}

const CAVIA: &str = r#"Arm(name: "cavia", algorithm: Cavia(context: 3))"#;

#[test]
fn a_cavia_run_reruns_and_resumes_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let (straight, _) = run(
        Prepared::new(exp(60, CAVIA), opts(root.path(), 2)).unwrap(),
        None,
    );
    let meta = runs::load_meta(&straight).unwrap();
    assert_eq!(meta.status, RunStatus::Finished);
    let protocol = serde_json::to_string(&meta.protocol).unwrap();
    assert!(protocol.contains("context_sgd"), "{protocol}");
    assert!(protocol.contains("3 context parameters"), "{protocol}");

    let fresh = Prepared::new(exp(60, CAVIA), opts(root.path(), 2)).unwrap();
    assert_reruns_and_resumes(&straight, fresh, 25, root.path());
}

fn invalid(text: &str) -> Vec<metalab::experiment::ValidationError> {
    match parse_str(text, Path::new("c.ron")) {
        Err(ExperimentError::Invalid { errors, .. }) => errors,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_cavia_arms_are_refused_at_their_place_with_a_fix() {
    let errors = invalid(
        r#"Experiment(
        name: "c", family: Synthetic(), model: Conv(blocks: 2, channels: 4),
        arms: [Arm(name: "cavia", algorithm: Cavia())],
    )"#,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].field.as_str(), errors[0].position),
        ("arms[0].algorithm", Some((3, 35)))
    );
    assert!(errors[0].fix.contains("Mlp"), "{:?}", errors[0]);

    let errors = invalid(
        r#"Experiment(
        name: "c", family: Sinusoid(), model: Mlp(hidden: [8]),
        arms: [Arm(name: "m", algorithm: Maml()),
               Arm(name: "c", algorithm: Cavia(context: 0, context_lr: -1.0),
                   inner_lr: 0.5)],
    )"#,
    );
    let found: Vec<(&str, Option<(usize, usize)>)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.position))
        .collect();
    assert_eq!(
        found,
        [
            ("arms[1].context", Some((4, 48))),
            ("arms[1].context_lr", Some((4, 60))),
            ("arms[1].inner_lr", Some((5, 20))),
        ]
    );
    assert!(
        errors[2].fix.contains("Cavia(context: 0, context_lr: 0.5)"),
        "{:?}",
        errors[2]
    );
}

#[test]
fn eval_probes_the_adapted_embeddings_for_the_sine_parameters() {
    let root = tempfile::tempdir().unwrap();
    let arms = format!(r#"{CAVIA}, Arm(name: "maml", algorithm: Maml())"#);
    let events = engine_common::run_all(exp(200, &arms), root.path());
    let dirs: Vec<PathBuf> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .collect();
    let cavia = dirs.iter().find(|d| d.to_string_lossy().contains("cavia"));
    let maml = dirs.iter().find(|d| d.to_string_lossy().contains("maml"));
    let (cavia, maml) = (cavia.unwrap(), maml.unwrap());
    let req = EvalRequest {
        threads: Some(2),
        ..EvalRequest::default()
    };
    let trained = runs::load_meta(cavia).unwrap().final_eval.unwrap();
    let record = evaluate_run(cavia, &req).unwrap();
    assert_eq!(record.result.loss, trained.loss, "the run's own test tasks");
    let probe = record.embedding.expect("a probe of the context");
    assert_eq!((probe.width, probe.tasks, probe.steps), (3, 40, 2));
    let props: Vec<TaskProperty> = probe.fits.iter().map(|f| f.property).collect();
    assert_eq!(
        props,
        [
            TaskProperty::Amplitude,
            TaskProperty::SinPhase,
            TaskProperty::CosPhase,
            TaskProperty::SinCoefficient,
            TaskProperty::CosCoefficient,
        ]
    );
    for f in &probe.fits {
        let r2 = f.fit.r2.unwrap();
        assert!((0.0..=1.0).contains(&r2), "{f:?}");
        assert_eq!(f.fit.coefficients.len(), 3);
    }
    eprintln!("{probe:?}");
    // After 200 iterations the context already holds the sine's coefficients.
    assert!(probe.fits[3].fit.r2.unwrap() > 0.5, "{:?}", probe.fits[3]);
    assert_eq!(
        load_evals(cavia).unwrap().last().unwrap().embedding,
        Some(probe)
    );
    // MAML has no task embedding to probe.
    assert_eq!(evaluate_run(maml, &req).unwrap().embedding, None);
}
