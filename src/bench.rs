//! `metalab bench`: fixed workloads, timed per meta-iteration.
//!
//! Settings are fixed here, not read from `experiments/`, so figures stay comparable across
//! versions. Each workload runs in a child process so its peak memory is its own.
//!
//! `--device cuda` runs the GPU rows (the target shapes: conv4 5-way 1-shot, meta-batch
//! 32, 15 queries, FOMAML and second-order MAML with 1 and 5 inner steps, and sinusoid MAML)
//! through the GPU engine (`gpu::GpuTasks` on `Cuda(0)`); without a usable GPU it stops before
//! any workload with the probe's error, which names the fix.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng as _, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::algo::{self, AlgoContext, MetaAlgorithm};
use crate::experiment::{
    Activation, AffineRanges, Algorithm, ArmSettings, Augment, ConvSpec, DeviceSpec,
    InnerOptimizer, MetaLrSchedule, MlpSpec, ModelSpec, SinusoidSpec,
};
use crate::model::Network;
use crate::pool::WorkerPool;
use crate::tasks::augment;
use crate::tasks::sinusoid::Sinusoid;
use crate::tasks::{Batch, Episode, FamilyShape, Rng, Split, Targets, Task, TaskFamily};

/// Where `metalab bench` runs its workloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BenchDevice {
    /// The CPU workers, every workload.
    #[default]
    Cpu,
    /// The GPU engine on CUDA device 0, the GPU rows.
    Cuda,
}

impl BenchDevice {
    fn spec(self) -> DeviceSpec {
        match self {
            BenchDevice::Cpu => DeviceSpec::Cpu,
            BenchDevice::Cuda => DeviceSpec::Cuda(0),
        }
    }
    fn arg(self) -> &'static str {
        match self {
            BenchDevice::Cpu => "cpu",
            BenchDevice::Cuda => "cuda",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub workload: String,
    /// Results from before the GPU rows are CPU results.
    #[serde(default)]
    pub device: BenchDevice,
    pub iterations: usize,
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub iters_per_s: f64,
    /// Median seconds of a meta-iteration spent sampling its tasks (inside `median_s`'s
    /// iterations, serial before the workers start): what an `-augment` row's distortions cost,
    /// read apart from the step's noise. Absent in results from before it was measured.
    #[serde(default)]
    pub sample_s: f64,
    pub peak_rss_mib: f64,
    pub threads: usize,
    /// The GPU rows' device memory: the estimate and what the engine's buffers took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<GpuMemory>,
}

/// A GPU row's device memory (`gpu::memory`): the estimate for its meta-iteration, and the
/// peak of the engine's own buffers over the timed iterations (`gpu::Metered`'s count; the
/// driver's figure adds its context and cuBLAS's workspace).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuMemory {
    pub estimate: crate::gpu::memory::Estimate,
    pub engine_peak_bytes: u64,
    /// What crossed the bus per timed meta-iteration (`gpu::Metered`'s count), in bytes and
    /// transfers each way. Absent in results from before it was counted.
    #[serde(default)]
    pub per_iteration: Option<crate::gpu::Transfers>,
}

struct Workload {
    name: &'static str,
    /// (warm-up, timed) iterations, and the same for `--quick`.
    full: (usize, usize),
    quick: (usize, usize),
    /// (warm-up, timed) iterations on the GPU engine: the GPU rows (`--device cuda`).
    gpu: Option<(usize, usize)>,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "sinusoid-maml2",
        full: (50, 500),
        quick: (10, 50),
        gpu: Some((20, 200)),
    },
    Workload {
        name: "sinusoid-fomaml",
        full: (50, 500),
        quick: (10, 50),
        gpu: None,
    },
    Workload {
        name: "sinusoid-reptile5",
        full: (50, 500),
        quick: (10, 50),
        gpu: None,
    },
    Workload {
        name: "omniglot-fomaml-1step",
        full: (1, 5),
        quick: (1, 2),
        gpu: Some((3, 20)),
    },
    Workload {
        name: "omniglot-maml2-1step",
        full: (1, 5),
        quick: (1, 2),
        gpu: Some((3, 20)),
    },
    Workload {
        name: "omniglot-maml2-1step-augment",
        full: (1, 5),
        quick: (1, 2),
        gpu: None,
    },
    Workload {
        name: "omniglot-fomaml-5step",
        full: (1, 3),
        quick: (1, 1),
        gpu: Some((3, 20)),
    },
    Workload {
        name: "omniglot-maml2-5step",
        full: (1, 3),
        quick: (1, 1),
        gpu: Some((3, 10)),
    },
    Workload {
        name: "omniglot-multitask",
        full: (1, 5),
        quick: (1, 2),
        gpu: None,
    },
    Workload {
        name: "omniglot-protonet",
        full: (1, 5),
        quick: (1, 2),
        gpu: None,
    },
    // The same with `augment: Affine()`: what distorting every training image costs.
    Workload {
        name: "omniglot-protonet-augment",
        full: (1, 5),
        quick: (1, 2),
        gpu: None,
    },
    Workload {
        name: "omniglot-anil2-1step",
        full: (1, 5),
        quick: (1, 2),
        gpu: None,
    },
    Workload {
        name: "omniglot-anil2-5step",
        full: (1, 3),
        quick: (1, 1),
        gpu: None,
    },
];

/// Random 1×28×28 images with random labels: the compute of Omniglot 5-way 1-shot, not its data.
struct RandomImages {
    ways: usize,
    shots: usize,
    queries: usize,
}

impl TaskFamily for RandomImages {
    fn shape(&self) -> FamilyShape {
        crate::tasks::episode::image_classes_shape(28, self.ways)
    }
    fn sample_task(&self, split: Split, _rng: &mut Rng) -> Task {
        Task::Classes {
            split,
            classes: (0..self.ways).collect(),
        }
    }
    fn sample_episode(&self, _task: &Task, rng: &mut Rng) -> Episode {
        let mut batch = |per_class: usize| {
            let n = self.ways * per_class;
            Batch {
                n,
                x: (0..n * 28 * 28)
                    .map(|_| rng.gen_range(0.0f32..1.0))
                    .collect(),
                y: Targets::Classes((0..n).map(|i| i / per_class).collect()),
            }
        };
        Episode {
            support: batch(self.shots),
            query: batch(self.queries),
        }
    }
    fn describe(&self) -> String {
        "random 28×28 images".into()
    }
}

/// A workload's family, network, algorithm, settings and meta-batch size.
type Setup = (Arc<dyn TaskFamily>, Network, Algorithm, ArmSettings, usize);

fn setup(name: &str) -> Result<Setup> {
    let sinusoid = || -> Result<(Box<dyn TaskFamily>, Network)> {
        let fam = Sinusoid::new(SinusoidSpec {
            shots: 10,
            queries: 10,
        });
        let net = Network::new(
            &ModelSpec::Mlp(MlpSpec {
                hidden: vec![40, 40],
                activation: Activation::Relu,
            }),
            &fam.shape(),
        )?;
        Ok((Box::new(fam), net))
    };
    let omniglot = || -> Result<(Box<dyn TaskFamily>, Network)> {
        let fam = RandomImages {
            ways: 5,
            shots: 1,
            queries: 15,
        };
        let net = Network::new(
            &ModelSpec::Conv(ConvSpec {
                blocks: 4,
                channels: 64,
                batch_norm: true,
            }),
            &fam.shape(),
        )?;
        Ok((Box::new(fam), net))
    };
    let s = |inner_steps: usize, inner_lr: f64| ArmSettings {
        inner_steps,
        inner_lr,
        meta_lr: 1e-3,
        meta_lr_schedule: MetaLrSchedule::Constant,
        aggregate: Default::default(),
        affinity: None,
    };
    let maml = Algorithm::Maml { hvp_eps: 1e-3 };
    let (fam, net) = if name.starts_with("sinusoid") {
        sinusoid()?
    } else {
        omniglot()?
    };
    // An `-augment` workload is its plain namesake with every training image distorted.
    let (name, fam) = match name.strip_suffix("-augment") {
        Some(plain) => (
            plain,
            augment::wrap(Arc::from(fam), Augment::Affine(AffineRanges::default())),
        ),
        None => (name, Arc::from(fam)),
    };
    let (algo, settings, meta_batch) = match name {
        "sinusoid-maml2" => (maml, s(1, 0.01), 25),
        "sinusoid-fomaml" => (Algorithm::Fomaml, s(1, 0.01), 25),
        "sinusoid-reptile5" => (
            Algorithm::Reptile {
                epsilon: 1.0,
                anneal: false,
                inner_optimizer: InnerOptimizer::Sgd,
            },
            s(5, 0.01),
            25,
        ),
        "omniglot-fomaml-1step" => (Algorithm::Fomaml, s(1, 0.4), 32),
        "omniglot-maml2-1step" => (maml, s(1, 0.4), 32),
        "omniglot-fomaml-5step" => (Algorithm::Fomaml, s(5, 0.4), 32),
        "omniglot-maml2-5step" => (maml, s(5, 0.4), 32),
        "omniglot-multitask" => (
            Algorithm::MultiTask {
                tasks: 32,
                trunks: Default::default(),
            },
            s(1, 0.4),
            32,
        ),
        "omniglot-protonet" => (Algorithm::ProtoNet, s(1, 0.4), 32),
        "omniglot-anil2-1step" => (Algorithm::Anil { first_order: false }, s(1, 0.4), 32),
        "omniglot-anil2-5step" => (Algorithm::Anil { first_order: false }, s(5, 0.4), 32),
        other => bail!("no workload named {other}"),
    };
    Ok((fam, net, algo, settings, meta_batch))
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Time one workload in this process, on `device`.
pub fn run_workload(
    name: &str,
    quick: bool,
    threads: Option<usize>,
    device: BenchDevice,
) -> Result<BenchResult> {
    run_workload_within(name, quick, threads, device, None)
}

/// [`run_workload`], the GPU engine's buffers within `gpu_budget` bytes where given (the GPU
/// check times the default budget's calls against whole meta-batches).
pub fn run_workload_within(
    name: &str,
    quick: bool,
    threads: Option<usize>,
    device: BenchDevice,
    gpu_budget: Option<u64>,
) -> Result<BenchResult> {
    let w = WORKLOADS
        .iter()
        .find(|w| w.name == name)
        .with_context(|| format!("no workload named {name}"))?;
    let (warmup, timed) = match (device, w.gpu) {
        (BenchDevice::Cuda, None) => bail!("{name} is not one of the bench's GPU rows"),
        (BenchDevice::Cuda, Some(_)) | (BenchDevice::Cpu, _) if quick => w.quick,
        (BenchDevice::Cuda, Some(gpu)) => gpu,
        (BenchDevice::Cpu, _) => w.full,
    };
    let (fam, net, algorithm, settings, meta_batch) = setup(name)?;
    // The GPU engine is one thread driving the device.
    let threads = match device {
        BenchDevice::Cuda => 1,
        BenchDevice::Cpu => threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
    };
    let pool = WorkerPool::new(&net, device.spec(), 0, threads)?;
    let budget = gpu_budget.unwrap_or(crate::gpu::memory::DEFAULT_BUDGET);
    pool.set_gpu_budget(budget)?;
    let estimate = crate::gpu::memory::meta_iteration(
        &net,
        meta_batch,
        query_examples(fam.as_ref()),
        settings.inner_steps,
        budget,
    );
    let ctx = AlgoContext {
        net: Arc::new(net),
        settings,
        total_iterations: warmup + timed,
        seed: 0,
    };
    let mut algo: Box<dyn MetaAlgorithm> = algo::build(&algorithm, ctx, fam.as_ref());
    let mut rng = Rng::seed_from_u64(0);
    let mut times = Vec::with_capacity(timed);
    let mut sampling = Vec::with_capacity(timed);
    for it in 0..warmup + timed {
        // Task sampling is part of a meta-iteration's cost, as in training.
        let start = Instant::now();
        let batch = algo.sample_batch(fam.as_ref(), &mut rng, meta_batch);
        let sampled = start.elapsed().as_secs_f64();
        let stats = algo.step(it, batch, &pool).map_err(anyhow::Error::msg)?;
        let dt = start.elapsed().as_secs_f64();
        if !stats.loss.is_finite() {
            bail!(
                "{name}: loss became {} — the bench would time garbage",
                stats.loss
            );
        }
        if it >= warmup {
            times.push(dt);
            sampling.push(sampled);
        }
        if it + 1 == warmup {
            if let Some(m) = pool.gpu_meter() {
                m.reset_peak();
                m.reset_transfers();
            }
        }
    }
    times.sort_by(f64::total_cmp);
    sampling.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(BenchResult {
        workload: name.into(),
        device,
        iterations: timed,
        median_s: median,
        min_s: times[0],
        max_s: *times.last().expect("timed > 0"),
        iters_per_s: 1.0 / median,
        sample_s: sampling[sampling.len() / 2],
        peak_rss_mib: peak_rss_mib(),
        threads,
        gpu_memory: pool.gpu_meter().map(|m| GpuMemory {
            estimate,
            engine_peak_bytes: m.peak(),
            per_iteration: Some(m.transfers().per(timed as u64)),
        }),
    })
}

/// Examples in a task's query set: what the largest call of a meta-iteration runs on.
fn query_examples(fam: &dyn TaskFamily) -> usize {
    let mut rng = Rng::seed_from_u64(0);
    let task = fam.sample_task(crate::tasks::Split::Train, &mut rng);
    fam.sample_episode(&task, &mut rng).query.n
}

/// `metalab bench`: every workload (or those matching `only`) in its own child process.
/// Run every workload whose name contains `only` (on CUDA: every GPU row), each in its own
/// process, printing the table as results come unless `json`; returns the results.
pub fn run(
    quick: bool,
    json: bool,
    only: Option<&str>,
    device: BenchDevice,
) -> Result<Vec<BenchResult>> {
    let exe = std::env::current_exe().context("locating the metalab binary")?;
    let mut results = vec![];
    let on = match device {
        BenchDevice::Cpu => String::new(),
        // Before any workload: no driver, NVRTC, cuBLAS or device is named with its fix here.
        BenchDevice::Cuda => {
            let name = crate::gpu::probe::check(0)
                .map_err(|e| anyhow!("metalab bench --device cuda: {e}"))?;
            format!(" on {name} (GPU engine, CUDA device 0)")
        }
    };
    if !json {
        println!(
            "metalab bench{}{on} — {} core(s), release build: seconds per meta-iteration (median of timed iterations after warm-up)",
            if quick { " --quick" } else { "" },
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
        println!(
            "{:<28} {:>6} {:>11} {:>23} {:>9} {:>10} {:>10} {:>7}",
            "workload",
            "iters",
            "median s",
            "min–max s",
            "it/s",
            "sample ms",
            "peak MiB",
            "threads"
        );
    }
    for w in WORKLOADS
        .iter()
        .filter(|w| only.is_none_or(|o| w.name.contains(o)))
        .filter(|w| device == BenchDevice::Cpu || w.gpu.is_some())
    {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench-one", w.name, "--device", device.arg()]);
        if quick {
            cmd.arg("--quick");
        }
        let out = cmd
            .output()
            .with_context(|| format!("running workload {}", w.name))?;
        if !out.status.success() {
            bail!(
                "workload {} failed:\n{}",
                w.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let r: BenchResult =
            serde_json::from_slice(&out.stdout).context("reading a workload's result")?;
        if !json {
            println!(
                "{:<28} {:>6} {:>11.4} {:>11.4}–{:<11.4} {:>9.2} {:>10.1} {:>10.1} {:>7}",
                r.workload,
                r.iterations,
                r.median_s,
                r.min_s,
                r.max_s,
                r.iters_per_s,
                1e3 * r.sample_s,
                r.peak_rss_mib,
                r.threads
            );
            if let Some(g) = &r.gpu_memory {
                let e = &g.estimate;
                let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
                println!(
                    "  GPU memory: estimate {:.0} MiB (calls of {} tasks, {} a step, {:.0} MiB each; parameter handles {:.0} MiB); the engine's buffers peaked at {:.0} MiB",
                    mib(e.total),
                    e.tasks_per_call,
                    e.calls,
                    mib(e.call_peak),
                    mib(e.handles),
                    mib(g.engine_peak_bytes)
                );
                if let Some(t) = &g.per_iteration {
                    println!(
                        "  bus per meta-iteration: {:.2} MiB up in {} transfers, {:.2} MiB down in {}",
                        mib(t.upload_bytes),
                        t.uploads,
                        mib(t.download_bytes),
                        t.downloads
                    );
                }
            }
        }
        results.push(r);
    }
    Ok(results)
}
