//! The training engine: runs an experiment's arms on background threads and reports through
//! [`EngineEvent`]s. Front ends (the TUI, `metalab run`, tests) hold an [`EngineHandle`].

pub(crate) mod arm;
pub mod messages;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use thiserror::Error;

pub use messages::{
    ArmIndex, ClassFit, Command, EngineEvent, EvalResult, FailureCause, TaskFit, TaskPoint,
    TrainPoint,
};

use crate::experiment::{Experiment, FamilySpec};
use crate::model::{ModelError, Network};
use crate::pool::GpuKernels;
use crate::runs::RunError;
use crate::tasks::{build_family_reporting, FamilyError, Progress, TaskFamily};

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Family(#[from] FamilyError),
    /// A data error located in the experiment file (`file:line:col: `), as `check` reports it.
    /// (Not a `#[source]`: the message already holds it, and `{:#}` would print it twice.)
    #[error("{at}`family`: {error}")]
    Data { at: String, error: FamilyError },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no arm named `{name}` in experiment `{experiment}`\n  fix: use one of: {available}")]
    UnknownArm {
        name: String,
        experiment: String,
        available: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Where run directories go (`runs/`).
    pub runs_root: PathBuf,
    /// Train only these arms (by name); all when `None`.
    pub arms: Option<Vec<String>>,
    /// Override `train.iterations` (the override is frozen into the run's config).
    pub iterations: Option<usize>,
    /// Worker threads for the whole experiment; else `experiment.threads`, else all cores.
    pub threads: Option<usize>,
    /// Override the Omniglot data folder.
    pub data: Option<PathBuf>,
    /// The file the experiment came from, recorded in the run.
    pub source: Option<PathBuf>,
    /// Set by `rerun`: the run being reproduced.
    pub rerun_of: Option<String>,
    /// Set by `metalab sweep`: the variant the runs belong to, recorded in their `run.json`.
    pub variant: Option<String>,
    /// Where `device: Cuda(n)` runs its kernels: the GPU, except in tests of the GPU engine.
    pub gpu_kernels: GpuKernels,
}

/// Per-arm cooperative control, checked once per meta-iteration.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    paused: AtomicBool,
}

impl Control {
    pub fn apply(&self, cmd: Command) {
        match cmd {
            Command::Pause => self.paused.store(true, Ordering::SeqCst),
            Command::Resume => self.paused.store(false, Ordering::SeqCst),
            Command::Stop => self.stop.store(true, Ordering::SeqCst),
        }
    }
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

/// A launched experiment.
pub struct EngineHandle {
    pub events: Receiver<EngineEvent>,
    controls: Vec<Arc<Control>>,
    coordinator: Option<JoinHandle<()>>,
    /// Names of the launched arms, indexed by `ArmIndex`.
    pub arm_names: Vec<String>,
}

impl EngineHandle {
    /// Send a command to one arm, or to all with `None`.
    pub fn send(&self, arm: Option<ArmIndex>, cmd: Command) {
        for (i, c) in self.controls.iter().enumerate() {
            if arm.is_none_or(|a| a == i) {
                c.apply(cmd);
            }
        }
    }

    /// A handle to stop all arms from elsewhere (a Ctrl-C handler).
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let controls = self.controls.clone();
        move || controls.iter().for_each(|c| c.apply(Command::Stop))
    }

    /// True when every arm has ended (finished, stopped or failed).
    pub fn is_done(&self) -> bool {
        self.coordinator.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Wait for every arm to end.
    pub fn join(mut self) {
        if let Some(h) = self.coordinator.take() {
            let _ = h.join();
        }
    }
}

/// An experiment with its family loaded and network built: everything that can fail before
/// training starts has been checked.
pub struct Prepared {
    pub experiment: Experiment,
    /// Where training episodes come from (distorted when `train.augment` says so).
    pub family: Arc<dyn TaskFamily>,
    /// Where evaluation episodes come from: `family` itself unless `eval` gives them another
    /// shape (the same data and class split, other ways, shots or queries) or training
    /// distorts its images.
    pub eval_family: Arc<dyn TaskFamily>,
    pub net: Arc<Network>,
    pub opts: LaunchOptions,
    /// Continue this run directory from its checkpoint instead of creating a new one.
    pub resume: Option<PathBuf>,
}

impl Prepared {
    pub fn new(exp: Experiment, opts: LaunchOptions) -> Result<Prepared, EngineError> {
        Prepared::new_reporting(exp, opts, &|_, _| {})
    }

    /// [`new`](Self::new), telling `progress` how loading the data goes.
    pub fn new_reporting(
        exp: Experiment,
        opts: LaunchOptions,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        let file = opts.source.clone();
        Prepared::new_from(exp, opts, file.as_deref(), progress)
    }

    /// `file` is where the experiment's text is, to locate data errors in it.
    fn new_from(
        mut exp: Experiment,
        opts: LaunchOptions,
        file: Option<&std::path::Path>,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        check_arms(&exp, &opts)?;
        if let Some(names) = &opts.arms {
            exp.arms.retain(|a| names.contains(&a.name));
        }
        if let Some(n) = opts.iterations {
            exp.train.iterations = n.max(1);
        }
        if let (Some(data), FamilySpec::Omniglot(o)) = (&opts.data, &mut exp.family) {
            o.root = data.clone();
        }
        let build = |spec: &FamilySpec| -> Result<Arc<dyn TaskFamily>, EngineError> {
            let family =
                build_family_reporting(spec, exp.seed, progress).map_err(|source| match file {
                    Some(f) => EngineError::Data {
                        at: crate::tasks::data_position(f),
                        error: source,
                    },
                    None => EngineError::Family(source),
                })?;
            Ok(Arc::from(family))
        };
        let family = build(&exp.family)?;
        let eval_spec = exp.eval_family();
        let eval_family = if eval_spec == exp.family {
            Arc::clone(&family)
        } else {
            build(&eval_spec)?
        };
        // Only training episodes are distorted; evaluations see the images as they are.
        let family = crate::tasks::augment::wrap(family, exp.train.augment);
        let net = Arc::new(Network::new(&exp.model, &family.shape())?);
        Ok(Prepared {
            experiment: exp,
            family,
            eval_family,
            net,
            opts,
            resume: None,
        })
    }

    /// Continue a run from its last checkpoint.
    pub fn resume(run_dir: &std::path::Path, opts: LaunchOptions) -> Result<Prepared, EngineError> {
        Prepared::resume_reporting(run_dir, opts, &|_, _| {})
    }

    /// [`resume`](Self::resume), telling `progress` how loading the data goes.
    pub fn resume_reporting(
        run_dir: &std::path::Path,
        mut opts: LaunchOptions,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        crate::runs::refuse_links(run_dir)?;
        // Killed before its first checkpoint: say so, rather than fail on a missing file.
        if std::fs::symlink_metadata(run_dir.join(crate::runs::CHECKPOINT)).is_err() {
            return Err(crate::runs::RunError::NoCheckpoint {
                id: crate::runs::run_id(run_dir),
            }
            .into());
        }
        let exp = crate::runs::load_config(run_dir)?;
        opts.arms = None;
        opts.iterations = None;
        let config = run_dir.join(crate::runs::CONFIG);
        let mut p = Prepared::new_from(exp, opts, Some(&config), progress)?;
        p.resume = Some(run_dir.to_path_buf());
        Ok(p)
    }

    fn threads_per_arm(&self) -> usize {
        let total = self
            .opts
            .threads
            .or((self.experiment.threads > 0).then_some(self.experiment.threads))
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        (total / self.experiment.arms.len().max(1)).max(1)
    }

    /// Start every arm on its own thread (each with its own worker pool) and return at once.
    pub fn launch(self) -> EngineHandle {
        let (tx, rx) = channel();
        let controls: Vec<Arc<Control>> = self
            .experiment
            .arms
            .iter()
            .map(|_| Arc::default())
            .collect();
        let arm_names = self
            .experiment
            .arms
            .iter()
            .map(|a| a.name.clone())
            .collect();
        let threads = self.threads_per_arm();
        let ctl = controls.clone();
        let coordinator = std::thread::Builder::new()
            .name("metalab-engine".into())
            .spawn(move || run_arms(self, threads, ctl, tx))
            .expect("spawn engine thread");
        EngineHandle {
            events: rx,
            controls,
            coordinator: Some(coordinator),
            arm_names,
        }
    }
}

fn run_arms(p: Prepared, threads: usize, controls: Vec<Arc<Control>>, tx: Sender<EngineEvent>) {
    let p = Arc::new(p);
    let handles: Vec<_> = controls
        .into_iter()
        .enumerate()
        .map(|(index, control)| {
            let p = Arc::clone(&p);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("metalab-arm-{index}"))
                .spawn(move || arm::run(&p, index, threads, &control, &tx))
                .expect("spawn arm thread")
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// Every arm named in `opts.arms` exists.
fn check_arms(exp: &Experiment, opts: &LaunchOptions) -> Result<(), EngineError> {
    let names = opts.arms.iter().flatten();
    match names
        .into_iter()
        .find(|n| !exp.arms.iter().any(|a| &a.name == *n))
    {
        Some(n) => Err(EngineError::UnknownArm {
            name: n.clone(),
            experiment: exp.name.clone(),
            available: exp
                .arms
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => Ok(()),
    }
}

/// Launch without blocking: loading the family (which may read thousands of images) happens on
/// the engine thread, and a failure arrives as a `Failed` event for every arm.
pub fn launch(exp: Experiment, opts: LaunchOptions) -> Result<EngineHandle, EngineError> {
    check_arms(&exp, &opts)?;
    let arm_names: Vec<String> = exp
        .arms
        .iter()
        .filter(|a| opts.arms.as_ref().is_none_or(|n| n.contains(&a.name)))
        .map(|a| a.name.clone())
        .collect();
    Ok(spawn(arm_names, move |progress| {
        Prepared::new_reporting(exp, opts, progress)
    }))
}

/// Resume a run without blocking, like [`launch`].
pub fn resume(run_dir: &std::path::Path, opts: LaunchOptions) -> Result<EngineHandle, EngineError> {
    let exp = crate::runs::load_config(run_dir)?;
    let arm_names = exp.arms.iter().map(|a| a.name.clone()).collect();
    let dir = run_dir.to_path_buf();
    Ok(spawn(arm_names, move |progress| {
        Prepared::resume_reporting(&dir, opts, progress)
    }))
}

fn spawn(
    arm_names: Vec<String>,
    prepare: impl FnOnce(&Progress<'_>) -> Result<Prepared, EngineError> + Send + 'static,
) -> EngineHandle {
    let controls: Vec<Arc<Control>> = arm_names.iter().map(|_| Arc::default()).collect();
    let (tx, rx) = channel();
    let ctl = controls.clone();
    let coordinator = std::thread::Builder::new()
        .name("metalab-engine".into())
        .spawn(move || {
            let arms = ctl.len();
            let loading = std::sync::Mutex::new(tx.clone());
            let progress = move |done: usize, total: usize| {
                let tx = loading.lock().unwrap_or_else(|e| e.into_inner());
                for arm in 0..arms {
                    let _ = tx.send(EngineEvent::Loading { arm, done, total });
                }
            };
            match prepare(&progress) {
                Ok(p) => {
                    let threads = p.threads_per_arm();
                    run_arms(p, threads, ctl, tx)
                }
                Err(e) => {
                    for arm in 0..ctl.len() {
                        let _ = tx.send(EngineEvent::Failed {
                            arm,
                            iteration: 0,
                            cause: FailureCause::Start,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        })
        .expect("spawn engine thread");
    EngineHandle {
        events: rx,
        controls,
        coordinator: Some(coordinator),
        arm_names,
    }
}
