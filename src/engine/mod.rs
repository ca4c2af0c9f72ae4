//! The training engine: runs an experiment's arms on background threads and reports through
//! [`EngineEvent`]s. Front ends (the TUI, `metalab run`, tests) hold an [`EngineHandle`].

pub(crate) mod arm;
pub mod control;
mod loading;
pub mod messages;
pub mod prepared;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use control::Control;
pub use messages::{
    ArmIndex, ClassFit, Command, EngineEvent, EvalResult, FailureCause, TaskFit, TaskPoint,
    TrainPoint,
};
use prepared::check_arms;
pub use prepared::{EngineError, LaunchOptions, Prepared};

use crate::experiment::Experiment;
use crate::tasks::Progress;

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

impl Prepared {
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
            let loading = std::sync::Mutex::new(loading::LoadingReports::new(tx.clone(), arms));
            let progress = move |done: usize, total: usize| {
                loading
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .report(done, total)
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
