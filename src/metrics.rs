//! What training measures: the records that the engine emits, the run store writes to
//! `metrics.jsonl`, and the front ends and exports read. They sit below all of those so none
//! of them imports another to name a number. What a result is recorded with (its split, the
//! evaluation protocol: adaptation rule, batch-norm mode) is here too, for the same reason.

use serde::{Deserialize, Serialize};

use crate::stats::MeanCi;

/// Which classes (or which tasks) a draw comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    /// The lowercase name used in files and on screen.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    pub fn from_name(name: &str) -> Option<Split> {
        [Split::Train, Split::Validation, Split::Test]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Serde for a [`Split`] written by its lowercase name, as `run.json` and `metrics.jsonl` have
/// always stored evaluation splits (`Task::Classes` keeps the derived form).
pub mod split_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use super::Split;

    pub fn serialize<S: Serializer>(split: &Split, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(split.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Split, D::Error> {
        let name = String::deserialize(d)?;
        Split::from_name(&name).ok_or_else(|| D::Error::custom(format!("unknown split `{name}`")))
    }
}

/// What batch-norm layers normalise with, at training and at evaluation alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchNormMode {
    /// The model has no batch norm.
    None,
    /// Statistics of each support or query batch; no running averages (MAML's protocol).
    #[serde(
        alias = "transductive: batch statistics of each support/query batch, no running averages"
    )]
    Transductive,
    /// Statistics of each episode's support and query examples together, one batch (how the
    /// metric-based arms embed an episode).
    TransductiveEpisode,
}

/// How each new task is adapted on its support set before its query set is scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdaptationRule {
    /// `inner_steps` plain SGD steps of `inner_lr` on every parameter, from the
    /// meta-parameters (MAML, FOMAML, Reptile).
    Sgd,
    /// A fresh zero head on the frozen trunk; SGD steps on the head, each halved until the
    /// support loss does not rise (multi-task).
    FreshHeadBacktracking,
    /// Plain SGD steps on the meta-learned head over the body's support features, body frozen
    /// (ANIL).
    HeadSgd,
    /// SGD steps with the meta-learned per-parameter learning rates; `inner_lr` unused
    /// (Meta-SGD).
    LearnedRates,
    /// SGD steps on a task context (zero at the start, concatenated to the input), the shared
    /// parameters fixed (CAVIA); `inner_lr` is the arm's context rate.
    ContextSgd,
    /// No gradient steps: class prototypes (mean support embeddings), logits −‖q − c‖².
    Prototypes,
    /// No gradient steps: softmax attention over cosine similarities to the support embeddings.
    CosineAttention,
    /// No gradient steps: the learned relation module scores each query against each class's
    /// mean support embedding.
    RelationModule,
    /// Written by metalab before the rule was typed: the rule in words.
    #[serde(untagged)]
    Described(String),
}

/// How results were measured: recorded with every run so numbers are never quoted without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalProtocol {
    pub test_tasks: usize,
    pub periodic_tasks: usize,
    pub inner_steps: usize,
    pub inner_lr: f64,
    #[serde(with = "split_name")]
    pub final_split: Split,
    #[serde(with = "split_name")]
    pub periodic_split: Split,
    pub batch_norm: BatchNormMode,
    pub adaptation: AdaptationRule,
    /// The rule in words, with the steps and learning rate it used.
    #[serde(default)]
    pub description: String,
    /// The evaluation tasks' family where its episodes differ from training's (`eval.ways`,
    /// `shots`, `queries`); absent when evaluation samples training's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_family: Option<String>,
}

/// Result of evaluating on a set of tasks after adaptation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Meta-iteration the parameters come from.
    pub iteration: usize,
    /// `Validation` for periodic evaluations, `Test` for the final one (written "validation" and
    /// "test" on disk).
    #[serde(with = "split_name")]
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

/// A tracked classification task at an evaluation: which classes its labels stand for, the
/// support set's labels, and the query loss and accuracy after each adaptation step —
/// classification's counterpart of [`TaskFit`], computed by the same evaluation adaptation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFit {
    /// Meta-iteration the parameters come from.
    pub iteration: usize,
    /// Index of the tracked task (0..eval.tracked_tasks), as in [`TaskPoint`].
    pub task: usize,
    /// Label `i`'s class as the family names it (an Omniglot character's folder), in label
    /// order; the class id where the family has no names.
    pub classes: Vec<String>,
    /// One label per support image, in the episode's order.
    pub support_labels: Vec<usize>,
    /// The query set's result after `s` adaptation steps, s = 0..=k (one entry for rules that
    /// take no steps).
    pub steps: Vec<QueryScore>,
}

/// Query loss and accuracy at one adaptation step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueryScore {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

impl ClassFit {
    /// Support images per label, in label order.
    pub fn shots(&self) -> Vec<usize> {
        let mut n = vec![0; self.classes.len()];
        for &l in &self.support_labels {
            if let Some(c) = n.get_mut(l) {
                *c += 1;
            }
        }
        n
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
