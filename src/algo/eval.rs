//! The evaluation protocol: adapt to each new task on its support set, score on its query set.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::inner::sgd_adapt;
use super::{anil, metasgd, metric, AdaptMode};
use crate::experiment::EvalSpec;
use crate::metrics::EvalResult;
use crate::model::metric::MetricKind;
use crate::model::BatchNormMode;
use crate::pool::{PoolError, WorkerPool};
use crate::stats::MeanCi;
use crate::tasks::{split_name, Episode, Split};

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

impl AdaptMode {
    pub fn rule(self) -> AdaptationRule {
        match self {
            AdaptMode::All => AdaptationRule::Sgd,
            AdaptMode::HeadOnly { .. } => AdaptationRule::FreshHeadBacktracking,
            AdaptMode::HeadSgd { .. } => AdaptationRule::HeadSgd,
            AdaptMode::LearnedRates { .. } => AdaptationRule::LearnedRates,
            AdaptMode::Metric { kind, .. } => match kind {
                MetricKind::Prototypes => AdaptationRule::Prototypes,
                MetricKind::Matching => AdaptationRule::CosineAttention,
                MetricKind::Relation { .. } => AdaptationRule::RelationModule,
            },
        }
    }

    /// Batch norm as this rule runs it: metric arms embed support and query in one pass.
    pub fn batch_norm(self, model: BatchNormMode) -> BatchNormMode {
        match (self, model) {
            (AdaptMode::Metric { .. }, BatchNormMode::Transductive) => {
                BatchNormMode::TransductiveEpisode
            }
            (_, m) => m,
        }
    }
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
}

impl EvalProtocol {
    /// `inner_steps` and `inner_lr` are the ones the rule actually uses (0 for metric arms).
    pub fn new(eval: &EvalSpec, mode: AdaptMode, batch_norm: BatchNormMode) -> EvalProtocol {
        let (inner_steps, inner_lr) = mode.effective(eval.inner_steps, eval.inner_lr);
        EvalProtocol {
            test_tasks: eval.tasks,
            periodic_tasks: eval.periodic_tasks,
            inner_steps,
            inner_lr,
            final_split: Split::Test,
            periodic_split: Split::Validation,
            batch_norm: mode.batch_norm(batch_norm),
            adaptation: mode.rule(),
            description: mode.describe(inner_steps, inner_lr),
        }
    }
}

/// One task's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskEval {
    pub loss_before: f64,
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// Adapt from `start` on every episode's support set by the rule `mode` (SGD rules take
/// `steps` steps of `lr`), then score on its query set.
pub fn evaluate_tasks(
    pool: &WorkerPool,
    start: Vec<f32>,
    mode: AdaptMode,
    episodes: Vec<Episode>,
    steps: usize,
    lr: f64,
) -> Result<Vec<TaskEval>, PoolError> {
    let start = Arc::new(start);
    pool.map(episodes, move |ev, ep: Episode| match mode {
        AdaptMode::All | AdaptMode::HeadOnly { .. } => {
            let before = ev.evaluate(&start, &ep.query, None);
            let adapted = sgd_adapt(ev, &start, &ep.support, steps, lr, mode);
            let after = ev.evaluate(&adapted, &ep.query, None);
            TaskEval {
                loss_before: before.loss as f64,
                loss: after.loss as f64,
                accuracy: after.correct.map(|c| c as f64 / ep.query.n as f64),
            }
        }
        AdaptMode::HeadSgd { head_start } => {
            anil::evaluate_task(ev, &start, head_start, &ep, steps, lr)
        }
        AdaptMode::LearnedRates { len } => {
            metasgd::evaluate_task(ev, &start[..len], &start[len..], &ep, steps)
        }
        AdaptMode::Metric { kind, body_len } => {
            metric::evaluate_task(ev, kind, &start, body_len, &ep)
        }
    })
}

pub fn summarize(
    iteration: usize,
    split: Split,
    results: &[TaskEval],
    steps: usize,
    lr: f64,
) -> EvalResult {
    let col = |f: fn(&TaskEval) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let accuracy = results
        .iter()
        .map(|r| r.accuracy)
        .collect::<Option<Vec<f64>>>()
        .map(|a| MeanCi::of(&a));
    EvalResult {
        iteration,
        split,
        loss: MeanCi::of(&col(|r| r.loss)),
        accuracy,
        loss_before: MeanCi::of(&col(|r| r.loss_before)),
        inner_steps: steps,
        inner_lr: lr,
    }
}
