//! What the engine says and what it obeys. The only interface between training and any front end.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::algo::affinity::AffinityRecord;
pub use crate::metrics::{ClassFit, EvalResult, TaskFit, TaskPoint, TrainPoint};
pub use crate::runs::EmbeddingRecord;

/// Index of an arm within the launched experiment (order of `Experiment::arms`).
pub type ArmIndex = usize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EngineEvent {
    /// The family's data is loading before training starts (Omniglot decodes every image):
    /// `done` of `total` images. Sent to every arm, since they share the data.
    Loading {
        arm: ArmIndex,
        done: usize,
        total: usize,
    },
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
        /// How training images are distorted, in words; `None` when they are not.
        augment: Option<String>,
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
    /// A tracked regression task's true function, support set and predictions before and
    /// after each adaptation step, at an evaluation (sent after its `Task` point).
    Fit {
        arm: ArmIndex,
        fit: TaskFit,
    },
    /// A tracked classification task's classes, support labels and query results after each
    /// adaptation step, at an evaluation (sent after its `Task` point).
    ClassFit {
        arm: ArmIndex,
        fit: ClassFit,
    },
    Checkpoint {
        arm: ArmIndex,
        iteration: usize,
        path: PathBuf,
    },
    /// The training tasks' affinities so far, at an evaluation (also in `affinity.json`).
    Affinity {
        arm: ArmIndex,
        record: Box<AffinityRecord>,
    },
    /// A task-embedding arm's validation tasks' embeddings at an evaluation (also in
    /// `embeddings.json`).
    Embeddings {
        arm: ArmIndex,
        record: Box<EmbeddingRecord>,
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
    /// The arm ended early. `reason` is the whole message for people (what failed, and the
    /// next step); `cause` is what a front end matches on.
    Failed {
        arm: ArmIndex,
        iteration: usize,
        cause: FailureCause,
        reason: String,
    },
}

/// What made an arm fail, typed so that a front end acts on it without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FailureCause {
    /// The experiment could not be prepared (data, model, device) or its workers started.
    #[error("the arm could not start")]
    Start,
    /// The run folder could not be created, or a run to resume (its folder, its checkpoint)
    /// could not be read back.
    #[error("the run folder could not be opened")]
    Open,
    /// A loss or an update was not finite, or the loss passed `train.max_loss`.
    #[error("training diverged")]
    Diverged,
    /// A worker panicked or went away.
    #[error("a worker failed")]
    Worker,
    /// The GPU ran out of memory; the run was checkpointed at its last complete meta-iteration
    /// and resumes from there.
    #[error("the GPU ran out of memory")]
    OutOfMemory,
    /// A write to the run folder failed; `disk_full` when for want of space (the next step
    /// depends on whether the run has a checkpoint).
    #[error("a write to the run folder failed")]
    Write { disk_full: bool },
}

impl EngineEvent {
    pub fn arm(&self) -> ArmIndex {
        match self {
            EngineEvent::Loading { arm, .. }
            | EngineEvent::Started { arm, .. }
            | EngineEvent::Train { arm, .. }
            | EngineEvent::Eval { arm, .. }
            | EngineEvent::Task { arm, .. }
            | EngineEvent::Fit { arm, .. }
            | EngineEvent::ClassFit { arm, .. }
            | EngineEvent::Checkpoint { arm, .. }
            | EngineEvent::Affinity { arm, .. }
            | EngineEvent::Embeddings { arm, .. }
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
