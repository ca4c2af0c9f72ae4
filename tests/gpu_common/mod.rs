// The GPU engine (`gpu::GpuTasks`) held to the CPU path, written once for the CPU proof
// (tests/gpu_engine.rs: kernels on the CPU, `GpuKernels::Host`) and the GPU check
// (tests/gpu_device.rs: `GpuKernels::Device`). A folder module, so not a test target of its own.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use metalab::algo::eval::{adapt_and_score, Scoring};
use metalab::algo::{self, AlgoContext, MetaAlgorithm, StepStats};
use metalab::engine::{EngineEvent, LaunchOptions, Prepared};
use metalab::experiment::{
    parse_str, Algorithm, ArmSettings, DeviceSpec, Experiment, InnerOptimizer, MetaLrSchedule,
};
use metalab::pool::{GpuKernels, WorkerPool};
use metalab::runs;
use std::sync::Arc;

use metalab::gpu::{GpuTasks, Kernels, Meter, Metered, Transfers};
use metalab::model::lockstep::sgd_step;
use metalab::model::LockStepModel;
use metalab::tasks::{Batch, Episode, Rng, Split, Targets};
use rand::SeedableRng;

pub const META_LR: f32 = 0.01;
pub const SINUSOID: &str = "Sinusoid(shots: 5, queries: 5)";
pub const CLASSES: &str =
    "Synthetic(ways: 3, shots: 2, queries: 2, classes: 30, image_size: 4, noise: 0.3)";

/// ‖a − b‖ / ‖b‖.
pub fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    num.sqrt() / den.sqrt().max(1e-12)
}

pub fn experiment(
    family: &str,
    model: &str,
    arms: &str,
    device: &str,
    iterations: usize,
    meta_batch: usize,
) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "gpu", seed: 3, device: {device},
            family: {family},
            model: {model},
            arms: [{arms}],
            train: Train(iterations: {iterations}, meta_batch: {meta_batch}, inner_steps: 1, log_every: 1),
            eval: Eval(every: 25, tasks: 3, periodic_tasks: 2, inner_steps: 1, tracked_tasks: 1),
        )"#
    );
    parse_str(&text, Path::new("gpu.ron")).unwrap_or_else(|e| panic!("{e}"))
}

/// A one-iteration FOMAML experiment of `family` and `model` on the CPU, prepared, with `tasks`
/// training episodes and an initialisation for each, all from one seeded stream: the inputs of
/// the tests that hold one batched call of the engine to the CPU path's jobs.
pub fn episodes_and_inits(
    family: &str,
    model: &str,
    tasks: usize,
) -> (Prepared, Vec<Episode>, Vec<Vec<f32>>) {
    let arms = r#"Arm(name: "a", algorithm: Fomaml)"#;
    let p = Prepared::new(
        experiment(family, model, arms, "Cpu", 1, 2),
        Default::default(),
    )
    .unwrap();
    let mut rng = Rng::seed_from_u64(5);
    let eps: Vec<Episode> = (0..tasks)
        .map(|_| {
            let t = p.family.sample_task(Split::Train, &mut rng);
            p.family.sample_episode(&t, &mut rng)
        })
        .collect();
    let values = eps.iter().map(|_| p.net.init(&mut rng)).collect();
    (p, eps, values)
}

/// The algorithms that run on the MLP, by name.
pub fn mlp_algorithms() -> Vec<Algorithm> {
    vec![
        Algorithm::Maml { hvp_eps: 1e-3 },
        Algorithm::Fomaml,
        Algorithm::Reptile {
            epsilon: 0.5,
            anneal: false,
            inner_optimizer: InnerOptimizer::Sgd,
        },
        Algorithm::Anil { first_order: false },
        Algorithm::MetaSgd { hvp_eps: 1e-3 },
        Algorithm::MultiTask {
            tasks: 4,
            trunks: Default::default(),
        },
    ]
}

/// The meta-gradient's tolerance: 2e-3 where a finite-difference HVP divides rounding by its
/// 2ε, 1e-4 elsewhere.
pub fn grad_tolerance(a: &Algorithm) -> f64 {
    match a {
        Algorithm::Maml { .. }
        | Algorithm::MetaSgd { .. }
        | Algorithm::Anil { first_order: false } => 2e-3,
        _ => 1e-4,
    }
}

/// The context of the tests' meta-iterations: `inner_steps` SGD steps of 0.1, Adam at
/// [`META_LR`], seed 7.
pub fn context(p: &Prepared, inner_steps: usize) -> AlgoContext {
    AlgoContext {
        net: p.net.clone(),
        settings: ArmSettings {
            inner_steps,
            inner_lr: 0.1,
            meta_lr: META_LR as f64,
            meta_lr_schedule: MetaLrSchedule::Constant,
            aggregate: Default::default(),
            affinity: None,
        },
        total_iterations: 10,
        seed: 7,
    }
}

/// One meta-iteration of `algorithm` on `pool`: the step's statistics, the state after it,
/// the evaluation protocol's per-step losses from the result on 2 test tasks, and the step's
/// seconds.
fn one_step(
    p: &Prepared,
    algorithm: &Algorithm,
    pool: &WorkerPool,
    meta_batch: usize,
) -> (StepStats, BTreeMap<String, Vec<f32>>, Vec<f32>, f64) {
    let ctx = context(p, 2);
    let mut algo: Box<dyn MetaAlgorithm> = algo::build(algorithm, ctx, p.family.as_ref());
    let mut rng = Rng::seed_from_u64(8);
    let batch = algo.sample_batch(p.family.as_ref(), &mut rng, meta_batch);
    let t0 = Instant::now();
    let stats = algo.step(0, batch, pool).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let (start, mode) = algo.adapt_start();
    let test = (0..2)
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
    (stats, algo.state().into_iter().collect(), losses, secs)
}

/// How far the GPU engine's meta-iteration is from the CPU path's (relative errors).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Agreement {
    pub algorithm: String,
    pub query_loss: f64,
    pub same_accuracy: bool,
    /// From Adam's first moment after one step, `(1 − β₁)·g`; none for Reptile (no Adam).
    pub meta_gradient: Option<f64>,
    /// The parameters after the step, over the entries whose meta-gradient is not within
    /// rounding of zero (see [`adam_steps`]).
    pub params_after: f64,
    /// Every near-zero entry moved at most Adam's step on both paths.
    pub near_zero_within_a_step: bool,
    pub eval_losses: f64,
    pub cpu_step_s: f64,
    pub gpu_step_s: f64,
}

/// Adam's first step is `lr·g/(|g| + ε)`, about `lr·sign(g)`: where an entry of the
/// meta-gradient `m` is within rounding of zero (below 1e-5 of the largest), rounding decides
/// its sign, so there the two results are only held to at most two steps apart; elsewhere
/// they are compared. Returns that comparison and whether the near-zero entries hold.
fn adam_steps(gpu: &[f32], cpu: &[f32], m: &[f32]) -> (f64, bool) {
    let big = m.iter().fold(0f32, |a, g| a.max(g.abs()));
    let (mut g_keep, mut c_keep, mut held) = (vec![], vec![], true);
    for i in 0..m.len() {
        if m[i].abs() > 1e-5 * big {
            g_keep.push(gpu[i]);
            c_keep.push(cpu[i]);
        } else {
            held &= (gpu[i] - cpu[i]).abs() <= 2.0 * META_LR * 1.001;
        }
    }
    (rel(&g_keep, &c_keep), held)
}

/// `algorithm`'s meta-iteration and evaluation on the GPU engine (kernels where `kernels`
/// says) against the CPU path.
pub fn agreement(
    family: &str,
    model: &str,
    algorithm: &Algorithm,
    kernels: GpuKernels,
    meta_batch: usize,
) -> Agreement {
    let p = Prepared::new(
        experiment(
            family,
            model,
            r#"Arm(name: "a", algorithm: Fomaml)"#,
            "Cpu",
            1,
            meta_batch,
        ),
        LaunchOptions::default(),
    )
    .unwrap();
    let cpu = WorkerPool::new(&p.net, DeviceSpec::Cpu, 1, 2).unwrap();
    let gpu = WorkerPool::with_kernels(&p.net, DeviceSpec::Cuda(0), kernels, 1, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let (s_cpu, st_cpu, ev_cpu, t_cpu) = one_step(&p, algorithm, &cpu, meta_batch);
    let (s_gpu, st_gpu, ev_gpu, t_gpu) = one_step(&p, algorithm, &gpu, meta_batch);
    assert_eq!(
        st_gpu.keys().collect::<Vec<_>>(),
        st_cpu.keys().collect::<Vec<_>>()
    );
    let (after_gpu, after_cpu) = (&st_gpu["params"], &st_cpu["params"]);
    let (meta_gradient, (params_after, near_zero_within_a_step)) = match st_cpu.get("adam.m") {
        Some(m) => (
            Some(rel(&st_gpu["adam.m"], m)),
            adam_steps(after_gpu, after_cpu, m),
        ),
        None => (None, (rel(after_gpu, after_cpu), true)),
    };
    Agreement {
        algorithm: format!("{algorithm:?}"),
        query_loss: rel(&[s_gpu.loss as f32], &[s_cpu.loss as f32]),
        same_accuracy: s_gpu.accuracy == s_cpu.accuracy,
        meta_gradient,
        params_after,
        near_zero_within_a_step,
        eval_losses: rel(&ev_gpu, &ev_cpu),
        cpu_step_s: t_cpu,
        gpu_step_s: t_gpu,
    }
}

/// Holds `a` to the stated tolerances (see tests/gpu_engine.rs), printing its figures.
pub fn assert_agrees(a: &Agreement, grad_tol: f64) {
    eprintln!("{a:?}");
    let name = &a.algorithm;
    assert!(
        a.query_loss <= 1e-5,
        "{name}: query loss {:e}",
        a.query_loss
    );
    assert!(a.same_accuracy, "{name}: accuracy differs");
    if let Some(g) = a.meta_gradient {
        assert!(g <= grad_tol, "{name}: meta-gradient {g:e} > {grad_tol:e}");
    }
    assert!(
        a.params_after <= 1e-5,
        "{name}: parameters {:e}",
        a.params_after
    );
    assert!(
        a.near_zero_within_a_step,
        "{name}: a near-zero entry moved too far"
    );
    assert!(
        a.eval_losses <= 1e-4,
        "{name}: evaluation {:e}",
        a.eval_losses
    );
}

/// `e` run to its end through the engine under `root`, `device: Cuda(n)`'s kernels where
/// `kernels` says: its run directory and its seconds.
pub fn run(e: Experiment, root: &Path, kernels: GpuKernels) -> (PathBuf, f64) {
    let o = LaunchOptions {
        runs_root: root.to_path_buf(),
        threads: Some(2),
        gpu_kernels: kernels,
        ..LaunchOptions::default()
    };
    let t0 = Instant::now();
    let h = Prepared::new(e, o).unwrap().launch();
    let events: Vec<EngineEvent> = h.events.iter().collect();
    h.join();
    let secs = t0.elapsed().as_secs_f64();
    let dir = events
        .iter()
        .find_map(|e| match e {
            EngineEvent::Started { run_dir, .. } => Some(run_dir.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no arm started: {events:?}"));
    assert_eq!(
        runs::load_meta(&dir).unwrap().status,
        runs::RunStatus::Finished,
        "{events:?}"
    );
    (dir, secs)
}

/// A run through the engine on `device: Cuda(0)` against the same run on the CPU, and again.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineRuns {
    pub iterations: usize,
    pub train_points: usize,
    pub loss_curve: f64,
    pub evaluations: f64,
    pub same_evaluation_count: bool,
    pub gpu_runs_bit_identical: bool,
    pub cpu_s: f64,
    pub gpu_s: f64,
}

impl EngineRuns {
    /// The Host-kernel engine run held to the CPU run: every iteration logged, the loss curve
    /// and the evaluations within 1e-3, and two engine runs the same bits.
    pub fn assert_follows_the_cpu_run(&self) {
        eprintln!("{self:?}");
        assert_eq!(self.train_points, self.iterations);
        assert!(self.loss_curve <= 1e-3, "loss curve {:e}", self.loss_curve);
        assert!(self.same_evaluation_count);
        assert!(
            self.evaluations <= 1e-3,
            "evaluations {:e}",
            self.evaluations
        );
        assert!(
            self.gpu_runs_bit_identical,
            "two runs on the GPU engine differ"
        );
    }
}

pub fn engine_runs(
    root: &Path,
    model: &str,
    arms: &str,
    iterations: usize,
    meta_batch: usize,
    kernels: GpuKernels,
) -> EngineRuns {
    engine_runs_on(root, SINUSOID, model, arms, iterations, meta_batch, kernels)
}

/// [`engine_runs`] on `family`.
pub fn engine_runs_on(
    root: &Path,
    family: &str,
    model: &str,
    arms: &str,
    iterations: usize,
    meta_batch: usize,
    kernels: GpuKernels,
) -> EngineRuns {
    let on = |device| experiment(family, model, arms, device, iterations, meta_batch);
    let (cpu, cpu_s) = run(on("Cpu"), root, kernels.clone());
    let (gpu, gpu_s) = run(on("Cuda(0)"), root, kernels.clone());
    let (again, _) = run(on("Cuda(0)"), root, kernels);
    let (mc, mg) = (
        runs::load_metrics(&cpu).unwrap(),
        runs::load_metrics(&gpu).unwrap(),
    );
    let curve = |m: &runs::RunMetrics| m.train.iter().map(|t| t.loss as f32).collect::<Vec<_>>();
    let evals = |m: &runs::RunMetrics| {
        m.evals
            .iter()
            .map(|e| e.loss.mean as f32)
            .collect::<Vec<_>>()
    };
    let same_evaluation_count = mg.evals.len() == mc.evals.len() && !mc.evals.is_empty();
    EngineRuns {
        iterations,
        train_points: mg.train.len(),
        loss_curve: rel(&curve(&mg), &curve(&mc)),
        evaluations: if same_evaluation_count {
            rel(&evals(&mg), &evals(&mc))
        } else {
            f64::INFINITY
        },
        same_evaluation_count,
        gpu_runs_bit_identical: runs::deterministic_metrics(&gpu).unwrap()
            == runs::deterministic_metrics(&again).unwrap(),
        cpu_s,
        gpu_s,
    }
}

pub const TRANSFER_CONV: &str = "Conv(blocks: 2, channels: 3)";
pub const TRANSFER_MLP: &str = "Mlp(hidden: [8, 6])";

/// Bytes a batch's data takes on the device: its inputs and its targets.
pub fn data_bytes(b: &Batch) -> u64 {
    let y = match &b.y {
        Targets::Values(v) => v.len(),
        Targets::Classes(c) => c.len(),
    };
    4 * (b.x.len() + y) as u64
}

/// `tasks` tasks of `model` on `family` on the engine over `backend`, every transfer counted.
pub struct MeteredTasks<B: Kernels> {
    pub p: Prepared,
    pub eps: Vec<Episode>,
    pub meter: Arc<Meter>,
    pub gpu: GpuTasks<Metered<B>>,
    /// Each task's initial parameters, loaded.
    pub thetas: Vec<<Metered<B> as metalab::gpu::Backend>::F32>,
}

pub fn metered_tasks<B: Kernels>(
    backend: B,
    family: &str,
    model: &str,
    tasks: usize,
) -> MeteredTasks<B> {
    let (p, eps, inits) = episodes_and_inits(family, model, tasks);
    let meter = Meter::new();
    let mut gpu = GpuTasks::new(Metered::new(backend, Arc::clone(&meter)), &p.net).unwrap();
    let thetas = inits.iter().map(|v| gpu.load(v.clone())).collect();
    MeteredTasks {
        p,
        eps,
        meter,
        gpu,
        thetas,
    }
}

/// Holds `LockStepModel::descend` on the engine over backend `make()` (counted by a meter) to
/// what tests/gpu_transfers.rs states: an inner step brings back its losses only, takes up only
/// the batches' data, and steps bit for bit as the host would on the downloaded gradient; on the
/// conv net and the MLP. The CPU proof runs it on `Host`, the GPU check on `Cuda`.
pub fn assert_inner_steps_stay_on_the_device<B: Kernels>(make: impl Fn() -> B) {
    for (family, model) in [
        (CLASSES, TRANSFER_CONV),
        (SINUSOID, TRANSFER_MLP),
        (CLASSES, TRANSFER_MLP),
    ] {
        let tasks = 3;
        let MeteredTasks {
            p: _,
            eps,
            meter,
            mut gpu,
            thetas,
        } = metered_tasks(make(), family, model, tasks);
        let at: Vec<_> = thetas.iter().collect();
        let supports: Vec<&Batch> = eps.iter().map(|e| &e.support).collect();
        let lr = 0.1;

        meter.reset_transfers();
        let stepped = gpu.descend(&at, &supports, lr);
        let t: Transfers = meter.transfers();
        eprintln!("{model} on {family}: one inner step of {tasks} tasks moved {t:?}");
        // A loss a task, and for a classification its count of correct rows.
        assert!(
            t.download_bytes <= 2 * 4 * tasks as u64,
            "{model}: {} B came back",
            t.download_bytes
        );
        let data: u64 = supports.iter().map(|b| data_bytes(b)).sum();
        assert!(
            t.upload_bytes <= data,
            "{model}: {} B went up, the batches hold {data} B",
            t.upload_bytes
        );

        // The reference: the gradient brought back, stepped on the host's values.
        let grads = gpu.gradients(&at, &supports);
        for (i, ((out, next), (g_out, g))) in stepped.iter().zip(&grads).enumerate() {
            assert_eq!(
                out.loss.to_bits(),
                g_out.loss.to_bits(),
                "{model}: task {i}'s loss"
            );
            assert_eq!(out.correct, g_out.correct, "{model}: task {i}'s accuracy");
            let host = sgd_step(&gpu.read(&thetas[i]), g, lr);
            let device = gpu.read(next);
            assert!(
                host.iter()
                    .zip(device.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{model}: task {i}'s step differs from the host's"
            );
        }
    }
}

/// Holds `LockStepModel::step_back` (second-order MAML's step back through an inner step) on
/// the engine over backend `make()` to what tests/gpu_transfers.rs states: the vectors, the kink
/// codes recorded at θ, the shifted points θ ± r·v and their gradients stay on the device —
/// what comes back is the norms' block sums and the losses; what goes up, the batches — and
/// each vector is bit for bit the host path's (`model::hvps`
/// over the same engine, then `v − lr·H·v` in f64). A zero vector stays as it is, at no cost.
/// On the conv net and the MLP (ReLU: codes; tanh: none).
pub fn assert_steps_back_stay_on_the_device<B: Kernels>(make: impl Fn() -> B) {
    use metalab::model::hvp::{self, SUM_BLOCK};
    use metalab::model::lockstep::record_kinks;
    for (family, model) in [
        (CLASSES, TRANSFER_CONV),
        (SINUSOID, TRANSFER_MLP),
        (SINUSOID, "Mlp(hidden: [8, 6], activation: Tanh)"),
        (CLASSES, TRANSFER_MLP),
    ] {
        let tasks = 3;
        let MeteredTasks {
            p,
            eps,
            meter,
            mut gpu,
            thetas,
        } = metered_tasks(make(), family, model, tasks);
        let at: Vec<_> = thetas.iter().collect();
        let supports: Vec<&Batch> = eps.iter().map(|e| &e.support).collect();
        let queries: Vec<&Batch> = eps.iter().map(|e| &e.query).collect();
        let (lr, eps_fd) = (0.1, 1e-3);
        // The query gradients as the vectors, the last task's zero.
        let mut host: Vec<Vec<f64>> = gpu
            .gradients(&at, &queries)
            .into_iter()
            .map(|(_, g)| g.iter().map(|&g| g as f64).collect())
            .collect();
        host[tasks - 1].iter_mut().for_each(|v| *v = 0.0);
        let vs: Vec<_> = host.iter().map(|v| gpu.vector(v.clone())).collect();
        let codes: u64 = record_kinks(&mut gpu, &[0, 1], &at, &supports)
            .iter()
            .map(|p| p.codes.iter().map(|c| c.len() as u64).sum::<u64>())
            .sum();

        meter.reset_transfers();
        let back = gpu.step_back(&at, &supports, vs, lr, eps_fd);
        let t: Transfers = meter.transfers();
        eprintln!(
            "{model} on {family}: a step back of {tasks} tasks (θ {} values, one zero vector) moved {t:?}, kink codes {codes} B",
            p.net.num_params()
        );
        let blocks = tasks as u64 * 8 * p.net.num_params().div_ceil(SUM_BLOCK) as u64;
        // The two gradient passes' losses and counts: 2 × 8 B an active task. No kink codes:
        // they are recorded and replayed on the device.
        let active = (tasks - 1) as u64;
        assert!(
            t.download_bytes <= blocks + active * 2 * 8,
            "{model}: {} B came back (the recorded codes are {codes} B)",
            t.download_bytes
        );
        // The supports, for the recording pass and the two gradient passes.
        let data: u64 = supports[..tasks - 1].iter().map(|b| data_bytes(b)).sum();
        assert!(
            t.upload_bytes <= 3 * data,
            "{model}: {} B went up, the batches hold {data} B",
            t.upload_bytes
        );

        let hs = metalab::model::hvps(&mut gpu, &at, &supports, &host, eps_fd);
        for (i, (v, (mut h, hv))) in back.into_iter().zip(host.into_iter().zip(hs)).enumerate() {
            hvp::step_back_host(&mut h, &hv, lr);
            let device = gpu.read_vector(v);
            assert!(
                h.iter()
                    .zip(&device)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{model}: task {i}'s vector differs from the host path's"
            );
            if i == tasks - 1 {
                assert!(device.iter().all(|&v| v == 0.0), "{model}: zero stays zero");
            }
        }
    }
}
