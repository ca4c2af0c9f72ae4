//! What the engine says and what it obeys. The only interface between training and any front end.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::stats::MeanCi;

/// Index of an arm within the launched experiment (order of `Experiment::arms`).
pub type ArmIndex = usize;

/// Result of evaluating on a set of tasks after adaptation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Meta-iteration the parameters come from.
    pub iteration: usize,
    /// "validation" for periodic evaluations, "test" for the final one.
    pub split: String,
    /// Query loss after `inner_steps` adaptation steps (MSE or cross-entropy).
    pub loss: MeanCi,
    /// Query accuracy after adaptation, for classification.
    pub accuracy: Option<MeanCi>,
    /// Query loss before adaptation, to show what adaptation buys.
    pub loss_before: MeanCi,
    pub inner_steps: usize,
    pub inner_lr: f64,
}

/// One tracked task's adapted result at one evaluation: the per-task panels' points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPoint {
    pub iteration: usize,
    /// Index of the tracked task (0..eval.tracked_tasks).
    pub task: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// A window of training iterations, averaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPoint {
    /// Last iteration of the window (1-based count of completed meta-iterations).
    pub iteration: usize,
    /// Mean query loss after inner adaptation over the window's tasks.
    pub loss: f64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EngineEvent {
    Started {
        arm: ArmIndex,
        name: String,
        run_dir: PathBuf,
        algorithm: String,
        total_iterations: usize,
        /// Iteration the arm starts from (non-zero when resuming).
        start_iteration: usize,
        params: usize,
        family: String,
        /// True when tasks are classification (accuracy panels), false for regression (MSE).
        classification: bool,
    },
    Train {
        arm: ArmIndex,
        point: TrainPoint,
        /// Meta-iterations per second over the last window.
        iters_per_sec: f64,
    },
    Eval {
        arm: ArmIndex,
        result: EvalResult,
    },
    Task {
        arm: ArmIndex,
        point: TaskPoint,
    },
    Checkpoint {
        arm: ArmIndex,
        iteration: usize,
        path: PathBuf,
    },
    Paused {
        arm: ArmIndex,
    },
    Resumed {
        arm: ArmIndex,
    },
    /// Training ended normally (or was stopped on request; `stopped` says which).
    Finished {
        arm: ArmIndex,
        iteration: usize,
        stopped: bool,
        final_eval: Option<EvalResult>,
        seconds: f64,
    },
    Failed {
        arm: ArmIndex,
        iteration: usize,
        reason: String,
    },
}

impl EngineEvent {
    pub fn arm(&self) -> ArmIndex {
        match self {
            EngineEvent::Started { arm, .. }
            | EngineEvent::Train { arm, .. }
            | EngineEvent::Eval { arm, .. }
            | EngineEvent::Task { arm, .. }
            | EngineEvent::Checkpoint { arm, .. }
            | EngineEvent::Paused { arm }
            | EngineEvent::Resumed { arm }
            | EngineEvent::Finished { arm, .. }
            | EngineEvent::Failed { arm, .. } => *arm,
        }
    }
}

/// What a front end asks of a running experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    /// Cooperative: takes effect at the end of the current meta-iteration, after a checkpoint.
    Stop,
}
