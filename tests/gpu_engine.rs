//! The GPU engine as the algorithms' lock-step backend (`gpu::GpuTasks`), with its kernels run on
//! the CPU (`gpu::Host`), held to the CPU path (`model::SerialTasks` on the worker pool):
//!
//! * one meta-iteration of every algorithm that runs on the MLP (second-order MAML, FOMAML,
//!   Reptile, ANIL, Meta-SGD, multi-task trunk) on the sinusoid, plus MAML and ProtoNets on a
//!   classification MLP: the query loss, the meta-gradient (Adam's first moment after one step
//!   is `(1 − β₁)·g`, so the checkpoint state carries it; Reptile's step is its update) and the
//!   parameters after the step; then the evaluation protocol from the stepped parameters;
//! * a 50-iteration run through the engine (`device: Cuda(0)` with `GpuKernels::Host`) against
//!   the same run on the CPU: the training loss curve and the evaluations;
//! * two engine runs on the GPU engine, bit for bit.
//!
//! Tolerances (relative, ‖a − b‖/‖b‖): the GPU engine sums in another order than dfdx (per-task
//! GEMMs, per-block reductions), so floats agree to rounding: losses 1e-5, first-order
//! meta-gradients 1e-4, second-order ones 2e-3 (a finite-difference HVP divides rounding by
//! its 2ε); the 50-iteration loss curve 1e-3 (the difference compounds through Adam).

use std::collections::BTreeMap;
use std::path::Path;

use metalab::algo::eval::{adapt_and_score, Scoring};
use metalab::algo::{self, AlgoContext, MetaAlgorithm, StepStats};
use metalab::engine::{EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::{parse_str, Algorithm, ArmSettings, Experiment, MetaLrSchedule};
use metalab::pool::{GpuKernels, WorkerPool};
use metalab::runs;
use metalab::tasks::{Rng, Split};
use rand::SeedableRng;

fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    num.sqrt() / den.sqrt().max(1e-12)
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f64) {
    let e = rel(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    eprintln!("{what}: relative error {e:.2e} (≤ {tol:e})");
}

fn experiment(
    family: &str,
    model: &str,
    arms: &str,
    device: &str,
    iterations: usize,
) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "gpu", seed: 3, device: {device},
            family: {family},
            model: {model},
            arms: [{arms}],
            train: Train(iterations: {iterations}, meta_batch: 3, log_every: 1),
            eval: Eval(every: 25, tasks: 4, periodic_tasks: 3, inner_steps: 2, tracked_tasks: 1),
        )"#
    );
    parse_str(&text, Path::new("gpu.ron")).unwrap_or_else(|e| panic!("{e}"))
}

const META_LR: f32 = 0.01;
const SINUSOID: &str = "Sinusoid(shots: 5, queries: 5)";
const SMALL_MLP: &str = "Mlp(hidden: [12, 12])";

/// One meta-iteration of `algorithm` on `pool`: the step's statistics, the state after it,
/// and the evaluation protocol's per-step losses from the result on 3 test tasks.
fn one_step(
    p: &Prepared,
    algorithm: &Algorithm,
    pool: &WorkerPool,
) -> (StepStats, BTreeMap<String, Vec<f32>>, Vec<f32>) {
    let ctx = AlgoContext {
        net: p.net.clone(),
        settings: ArmSettings {
            inner_steps: 2,
            inner_lr: 0.1,
            meta_lr: META_LR as f64,
            meta_lr_schedule: MetaLrSchedule::Constant,
            aggregate: Default::default(),
            affinity: None,
        },
        total_iterations: 10,
        seed: 7,
    };
    let mut algo: Box<dyn MetaAlgorithm> = algo::build(algorithm, ctx, p.family.as_ref());
    let mut rng = Rng::seed_from_u64(8);
    let batch = algo.sample_batch(p.family.as_ref(), &mut rng, 3);
    let stats = algo.step(0, batch, pool).unwrap();
    let (start, mode) = algo.adapt_start();
    let test = (0..3)
        .map(|_| {
            let task = p.family.sample_task(Split::Test, &mut rng);
            p.family.sample_episode(&task, &mut rng)
        })
        .collect();
    let evals = adapt_and_score(pool, start, mode, test, 2, 0.1, Scoring::EveryStep).unwrap();
    let losses = evals
        .iter()
        .flat_map(|e| e.per_step.iter().map(|s| s.loss as f32))
        .collect();
    (stats, algo.state().into_iter().collect(), losses)
}

/// Adam's first step is `lr·g/(|g| + ε)`, about `lr·sign(g)`: where an entry of the
/// meta-gradient `g` is within rounding of zero (below 1e-5 of the largest), rounding decides
/// its sign, so there both steps are only held to at most `lr`; everywhere else the parameters
/// after the step agree within 1e-5.
fn adam_steps_agree(name: &str, gpu: &[f32], cpu: &[f32], m: &[f32]) {
    let big = m.iter().fold(0f32, |a, g| a.max(g.abs()));
    let (mut g_keep, mut c_keep) = (vec![], vec![]);
    for i in 0..m.len() {
        if m[i].abs() > 1e-5 * big {
            g_keep.push(gpu[i]);
            c_keep.push(cpu[i]);
        } else {
            assert!(
                (gpu[i] - cpu[i]).abs() <= 2.0 * META_LR * 1.001,
                "{name}: parameter {i} moved {} on the GPU engine, {} on the CPU",
                gpu[i],
                cpu[i]
            );
        }
    }
    close(
        &format!("{name} parameters after the step"),
        &g_keep,
        &c_keep,
        1e-5,
    );
}

/// `algorithm`'s meta-iteration and evaluation on the GPU engine (Host kernels) against the CPU.
fn compare(family: &str, model: &str, algorithm: Algorithm, grad_tol: f64) {
    let p = Prepared::new(
        experiment(
            family,
            model,
            r#"Arm(name: "a", algorithm: Fomaml)"#,
            "Cpu",
            1,
        ),
        LaunchOptions::default(),
    )
    .unwrap();
    let cpu = WorkerPool::new(&p.net, p.experiment.device, 1, 2).unwrap();
    let gpu = WorkerPool::with_kernels(
        &p.net,
        metalab::experiment::DeviceSpec::Cuda(0),
        GpuKernels::Host,
        1,
        1,
    )
    .unwrap();
    let (s_cpu, st_cpu, ev_cpu) = one_step(&p, &algorithm, &cpu);
    let (s_gpu, st_gpu, ev_gpu) = one_step(&p, &algorithm, &gpu);
    let name = format!("{algorithm:?}");
    close(
        &format!("{name} query loss"),
        &[s_gpu.loss as f32],
        &[s_cpu.loss as f32],
        1e-5,
    );
    assert_eq!(s_gpu.accuracy, s_cpu.accuracy, "{name} accuracy");
    assert_eq!(
        st_gpu.keys().collect::<Vec<_>>(),
        st_cpu.keys().collect::<Vec<_>>()
    );
    let (after_gpu, after_cpu) = (&st_gpu["params"], &st_cpu["params"]);
    match st_cpu.get("adam.m") {
        Some(m) => {
            close(
                &format!("{name} meta-gradient"),
                &st_gpu["adam.m"],
                m,
                grad_tol,
            );
            adam_steps_agree(&name, after_gpu, after_cpu, m);
        }
        None => close(
            &format!("{name} parameters after the step"),
            after_gpu,
            after_cpu,
            1e-5,
        ),
    }
    close(&format!("{name} evaluation losses"), &ev_gpu, &ev_cpu, 1e-4);
}

#[test]
fn maml_second_order_matches_the_cpu_path() {
    compare(SINUSOID, SMALL_MLP, Algorithm::Maml { hvp_eps: 1e-3 }, 2e-3);
}

#[test]
fn fomaml_matches_the_cpu_path() {
    compare(SINUSOID, SMALL_MLP, Algorithm::Fomaml, 1e-4);
}

#[test]
fn reptile_matches_the_cpu_path() {
    use metalab::experiment::InnerOptimizer;
    compare(
        SINUSOID,
        SMALL_MLP,
        Algorithm::Reptile {
            epsilon: 0.5,
            anneal: false,
            inner_optimizer: InnerOptimizer::Sgd,
        },
        1e-4,
    );
}

#[test]
fn anil_matches_the_cpu_path() {
    compare(
        SINUSOID,
        SMALL_MLP,
        Algorithm::Anil { first_order: false },
        2e-3,
    );
}

#[test]
fn meta_sgd_matches_the_cpu_path() {
    compare(
        SINUSOID,
        SMALL_MLP,
        Algorithm::MetaSgd { hvp_eps: 1e-3 },
        2e-3,
    );
}

#[test]
fn multitask_matches_the_cpu_path() {
    compare(SINUSOID, SMALL_MLP, Algorithm::MultiTask { tasks: 4 }, 1e-4);
}

/// Classification on the MLP: softmax cross-entropy and accuracy counts, and `features` (the
/// prototypes) through the GPU engine.
#[test]
fn classification_maml_and_protonets_match_the_cpu_path() {
    let family = "Synthetic(ways: 3, shots: 2, queries: 2, classes: 30, image_size: 4, noise: 0.3)";
    compare(family, SMALL_MLP, Algorithm::Maml { hvp_eps: 1e-3 }, 2e-3);
    compare(family, SMALL_MLP, Algorithm::ProtoNet, 1e-4);
}

/// Every event of `e` run to its end under `root` with `kernels`.
fn run(e: Experiment, root: &Path, kernels: GpuKernels) -> std::path::PathBuf {
    let o = LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(2),
        gpu_kernels: kernels,
        ..LaunchOptions::default()
    };
    let h = Prepared::new(e, o).unwrap().launch();
    let events: Vec<EngineEvent> = h.events.iter().collect();
    h.join();
    events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no arm started: {events:?}"))
}

#[test]
fn fifty_iterations_through_the_engine_follow_the_cpu_run_and_rerun_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let arms = r#"Arm(name: "fomaml", algorithm: Fomaml)"#;
    let on = |device| experiment(SINUSOID, "Mlp(hidden: [8, 8])", arms, device, 50);
    let cpu = run(on("Cpu"), root.path(), GpuKernels::Host);
    let gpu = run(on("Cuda(0)"), root.path(), GpuKernels::Host);
    let again = run(on("Cuda(0)"), root.path(), GpuKernels::Host);
    let (mc, mg) = (
        runs::load_metrics(&cpu).unwrap(),
        runs::load_metrics(&gpu).unwrap(),
    );
    assert_eq!(mg.train.len(), 50);
    let curve = |m: &runs::RunMetrics| m.train.iter().map(|t| t.loss as f32).collect::<Vec<_>>();
    close("50-iteration loss curve", &curve(&mg), &curve(&mc), 1e-3);
    let evals = |m: &runs::RunMetrics| {
        m.evals
            .iter()
            .map(|e| e.loss.mean as f32)
            .collect::<Vec<_>>()
    };
    assert_eq!(mg.evals.len(), mc.evals.len());
    close("evaluations", &evals(&mg), &evals(&mc), 1e-3);
    assert_eq!(
        runs::deterministic_metrics(&gpu).unwrap(),
        runs::deterministic_metrics(&again).unwrap(),
        "two runs on the GPU engine"
    );
    let meta = runs::load_meta(&gpu).unwrap();
    assert_eq!(runs::load_meta(&again).unwrap().device, meta.device);
}

#[test]
fn the_conv_net_is_refused_by_the_gpu_engine_naming_it() {
    let family = "Synthetic(ways: 3, shots: 2, queries: 2, classes: 30, image_size: 8, noise: 0.3)";
    let p = Prepared::new(
        experiment(
            family,
            "Conv(blocks: 2, channels: 3)",
            r#"Arm(name: "a", algorithm: Fomaml)"#,
            "Cpu",
            1,
        ),
        LaunchOptions::default(),
    )
    .unwrap();
    let err = WorkerPool::with_kernels(
        &p.net,
        metalab::experiment::DeviceSpec::Cuda(0),
        GpuKernels::Host,
        1,
        1,
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        err.contains("conv net") && err.contains("device: Cpu"),
        "{err}"
    );
}
