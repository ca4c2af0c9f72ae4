//! The evaluation protocol: adapt to each new task on its support set, score on its query set.

use std::sync::Arc;

use super::inner::sgd_adapt;
use super::{anil, metasgd, metric, AdaptMode};
use crate::engine::messages::EvalResult;
use crate::engine::pool::WorkerPool;
use crate::stats::MeanCi;
use crate::tasks::Episode;

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
) -> Result<Vec<TaskEval>, String> {
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
    split: &str,
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
        split: split.into(),
        loss: MeanCi::of(&col(|r| r.loss)),
        accuracy,
        loss_before: MeanCi::of(&col(|r| r.loss_before)),
        inner_steps: steps,
        inner_lr: lr,
    }
}
