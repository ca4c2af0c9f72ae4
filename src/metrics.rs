//! What training measures: the records that the engine emits, the run store writes to
//! `metrics.jsonl`, and the front ends and exports read. They sit below all of those so none
//! of them imports another to name a number.

use serde::{Deserialize, Serialize};

use crate::stats::MeanCi;
use crate::tasks::Split;

/// Result of evaluating on a set of tasks after adaptation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Meta-iteration the parameters come from.
    pub iteration: usize,
    /// `Validation` for periodic evaluations, `Test` for the final one (written "validation" and
    /// "test" on disk).
    #[serde(with = "crate::tasks::split_name")]
    pub split: Split,
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

/// Training iterations not yet written as a [`TrainPoint`]: sums, so a checkpoint taken in the
/// middle of a window resumes it exactly.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TrainWindow {
    pub loss: f64,
    pub acc: f64,
    pub count: usize,
    pub has_acc: bool,
}

impl TrainWindow {
    pub fn add(&mut self, loss: f64, accuracy: Option<f64>) {
        self.loss += loss;
        self.count += 1;
        if let Some(a) = accuracy {
            self.acc += a;
            self.has_acc = true;
        }
    }

    /// The window's mean as the point for `iteration`, leaving the window empty.
    pub fn take_point(&mut self, iteration: usize) -> TrainPoint {
        let w = std::mem::take(self);
        TrainPoint {
            iteration,
            loss: w.loss / w.count as f64,
            accuracy: w.has_acc.then(|| w.acc / w.count as f64),
        }
    }
}
