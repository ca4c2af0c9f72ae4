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
    /// Query loss (and accuracy) after each number of adaptation steps, 0 to `inner_steps`:
    /// its first point is `loss_before` and its last `loss` for the rules that take steps; rules
    /// without steps (metric arms) have the one point `loss`. Empty in runs recorded before
    /// metalab measured it, so old `metrics.jsonl` and `run.json` files still read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_step: Vec<StepResult>,
}

/// The query result after `step` adaptation steps, over an evaluation's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: usize,
    pub loss: MeanCi,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<MeanCi>,
}

/// One tracked regression task at one evaluation, as the MAML paper draws it: the true function
/// on a grid, the support points adapted on, and the model's prediction on the grid after each
/// adaptation step. Computed by the evaluation's own adaptation, so it shows what the numbers
/// measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFit {
    /// Meta-iteration the parameters come from.
    pub iteration: usize,
    /// Index of the tracked task (0..eval.tracked_tasks), as in [`TaskPoint`].
    pub task: usize,
    /// Evenly spaced inputs over the family's input range.
    pub x: Vec<f32>,
    /// The task's true function at `x`.
    pub truth: Vec<f32>,
    pub support_x: Vec<f32>,
    pub support_y: Vec<f32>,
    /// `predictions[s]` is the prediction at `x` after `s` adaptation steps, s = 0..=k.
    pub predictions: Vec<Vec<f32>>,
}

impl TaskFit {
    /// Mean squared error against the true function on the grid after `step` steps.
    pub fn grid_mse(&self, step: usize) -> Option<f64> {
        let p = self.predictions.get(step)?;
        let n = p.len().min(self.truth.len());
        (n > 0).then(|| {
            p.iter()
                .zip(&self.truth)
                .map(|(p, t)| (*p as f64 - *t as f64).powi(2))
                .sum::<f64>()
                / n as f64
        })
    }

    /// Adaptation steps shown: the last row of `predictions`.
    pub fn steps(&self) -> usize {
        self.predictions.len().saturating_sub(1)
    }
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
