//! The evaluation protocol: adapt to each new task on its support set, score on its query set.

use std::sync::Arc;

use super::contract::AdaptMode;
use super::inner::sgd_adapt;
use super::{anil, metasgd, metric};
use crate::experiment::EvalSpec;
pub use crate::metrics::{AdaptationRule, EvalProtocol};
use crate::metrics::{EvalResult, StepResult};
use crate::model::metric::{ways, MetricKind};
use crate::model::{head, BatchNormMode, Evaluator};
use crate::pool::{PoolError, WorkerPool};
use crate::stats::MeanCi;
use crate::tasks::{Batch, Episode, Split, Targets};

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

// The record lives with the metric records; building one from an adaptation mode is the
// algorithms' knowledge.
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
            eval_family: None,
        }
    }
}

/// Which adaptation steps a task's query set is scored after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    /// After every step 0..=k: the per-step curves of the adaptation view.
    #[default]
    EveryStep,
    /// Before and after adaptation only: the same result for 2 of the k + 1 query passes.
    Ends,
}

/// One task's query result after some number of adaptation steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepEval {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// One task's result.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEval {
    pub loss_before: f64,
    pub loss: f64,
    pub accuracy: Option<f64>,
    /// The query result after each step 0..=k: `loss_before` first and `loss` last for the
    /// rules that take steps, the one result for rules without (metric arms).
    pub per_step: Vec<StepEval>,
}

impl TaskEval {
    /// From the scores at the steps `scoring` picked: the first is before adaptation, the last
    /// after it. Only every-step scoring keeps them as `per_step`.
    fn of_steps(scores: Vec<StepEval>, scoring: Scoring) -> TaskEval {
        let (first, last) = (scores[0], scores[scores.len() - 1]);
        TaskEval {
            loss_before: first.loss,
            loss: last.loss,
            accuracy: last.accuracy,
            per_step: match scoring {
                Scoring::EveryStep => scores,
                Scoring::Ends => vec![],
            },
        }
    }
}

/// A model's outputs on a grid of inputs after each adaptation step: `[step][point]`.
pub type StepPredictions = Vec<Vec<f32>>;

/// Where one task's adaptation went: the adapted state after each step 0..=k.
enum Trajectory {
    /// Every parameter θ₀ … θ_k (plain SGD, fresh head, learned rates).
    Params(Vec<Vec<f32>>),
    /// The frozen body and the head after each step (ANIL).
    Head {
        body: Vec<f32>,
        heads: Vec<Vec<f64>>,
    },
}

/// Adapt from `start` on `support` by an inner-loop rule (not a metric one).
fn adapt(
    ev: &mut dyn Evaluator,
    start: &[f32],
    mode: AdaptMode,
    support: &Batch,
    steps: usize,
    lr: f64,
) -> Trajectory {
    match mode {
        AdaptMode::All | AdaptMode::HeadOnly { .. } => {
            Trajectory::Params(sgd_adapt(ev, start, support, steps, lr, mode))
        }
        AdaptMode::HeadSgd { head_start } => {
            let body = &start[..head_start];
            let head0: Vec<f64> = start[head_start..].iter().map(|&v| v as f64).collect();
            let (fs, d) = anil::body_features(ev, body, support);
            Trajectory::Head {
                heads: anil::head_trajectory(&fs, d, support, &head0, steps, lr),
                body: body.to_vec(),
            }
        }
        AdaptMode::LearnedRates { len } => {
            let (theta, alpha) = start.split_at(len);
            Trajectory::Params(metasgd::trajectory(ev, theta, alpha, support, steps).0)
        }
        AdaptMode::Metric { .. } => unreachable!("metric rules take no steps"),
    }
}

impl Trajectory {
    fn len(&self) -> usize {
        match self {
            Trajectory::Params(thetas) => thetas.len(),
            Trajectory::Head { heads, .. } => heads.len(),
        }
    }

    /// The query result at the steps `scoring` picks, in step order.
    fn score(&self, ev: &mut dyn Evaluator, query: &Batch, scoring: Scoring) -> Vec<StepEval> {
        let acc = |c: Option<usize>| c.map(|c| c as f64 / query.n as f64);
        let last = self.len() - 1;
        let steps: Vec<usize> = match scoring {
            Scoring::EveryStep => (0..=last).collect(),
            Scoring::Ends if last == 0 => vec![0],
            Scoring::Ends => vec![0, last],
        };
        match self {
            Trajectory::Params(thetas) => steps
                .iter()
                .map(|&s| &thetas[s])
                .map(|t| {
                    let out = ev.evaluate(t, query, None);
                    StepEval {
                        loss: out.loss as f64,
                        accuracy: acc(out.correct),
                    }
                })
                .collect(),
            Trajectory::Head { body, heads } => {
                let (fq, d) = anil::body_features(ev, body, query);
                let o = anil::outputs(heads[0].len(), d);
                steps
                    .iter()
                    .map(|&s| &heads[s])
                    .map(|h| {
                        let out = head::loss(&fq, query.n, d, h, o, &query.y);
                        StepEval {
                            loss: out.value,
                            accuracy: acc(out.out.correct),
                        }
                    })
                    .collect()
            }
        }
    }

    /// The first output at each of `x` (one input value each) after every step; the body is
    /// `head_start` values long.
    fn predict(&self, ev: &mut dyn Evaluator, x: &[f32], head_start: usize) -> StepPredictions {
        let grid = Batch {
            n: x.len(),
            x: x.to_vec(),
            y: Targets::Values(vec![0.0; x.len()]),
        };
        let first = |f: &[f64], d: usize, h: &[f64]| {
            let o = anil::outputs(h.len(), d);
            let z = head::outputs(f, grid.n, d, h, o);
            z.iter().step_by(o.max(1)).map(|&v| v as f32).collect()
        };
        match self {
            Trajectory::Params(thetas) => thetas
                .iter()
                .map(|t| {
                    let (f, d) = anil::body_features(ev, &t[..head_start], &grid);
                    let h: Vec<f64> = t[head_start..].iter().map(|&v| v as f64).collect();
                    first(&f, d, &h)
                })
                .collect(),
            Trajectory::Head { body, heads } => {
                let (f, d) = anil::body_features(ev, body, &grid);
                heads.iter().map(|h| first(&f, d, h)).collect()
            }
        }
    }
}

/// One test task: embed, classify the queries. Before the support set is seen the prediction is
/// uniform, so `loss_before` is ln(ways).
fn metric_task(
    ev: &mut dyn Evaluator,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    ep: &Episode,
) -> TaskEval {
    let out = metric::episode_loss(ev, kind, params, body_len, ep, None);
    let (loss, accuracy) = (
        out.loss as f64,
        out.correct.map(|c| c as f64 / ep.query.n as f64),
    );
    TaskEval {
        loss_before: (ways(metric::classes(&ep.support)) as f64).ln(),
        loss,
        accuracy,
        // No steps: the one point is the result itself.
        per_step: vec![StepEval { loss, accuracy }],
    }
}

/// One task: adapt, score the steps `scoring` picks, and predict on `grid` (inputs, body
/// length) when given.
#[allow(clippy::too_many_arguments)]
fn evaluate_one(
    ev: &mut dyn Evaluator,
    start: &[f32],
    mode: AdaptMode,
    ep: &Episode,
    steps: usize,
    lr: f64,
    scoring: Scoring,
    grid: Option<(&[f32], usize)>,
) -> (TaskEval, Option<StepPredictions>) {
    if let AdaptMode::Metric { kind, body_len } = mode {
        return (metric_task(ev, kind, start, body_len, ep), None);
    }
    let traj = adapt(ev, start, mode, &ep.support, steps, lr);
    let r = TaskEval::of_steps(traj.score(ev, &ep.query, scoring), scoring);
    let fit = grid.map(|(x, head_start)| traj.predict(ev, x, head_start));
    (r, fit)
}

/// Adapt from `start` on every episode's support set by the rule `mode` (SGD rules take
/// `steps` steps of `lr`), then score on its query set after the steps `scoring` picks.
pub fn evaluate_tasks(
    pool: &WorkerPool,
    start: Vec<f32>,
    mode: AdaptMode,
    episodes: Vec<Episode>,
    steps: usize,
    lr: f64,
    scoring: Scoring,
) -> Result<Vec<TaskEval>, PoolError> {
    let start = Arc::new(start);
    pool.map(episodes, move |ev, ep: Episode| {
        evaluate_one(ev, &start, mode, &ep, steps, lr, scoring, None).0
    })
}

/// [`evaluate_tasks`], and for each episode given a grid of inputs, the model's prediction on
/// it after every adaptation step (regression figures). `head_start` is the network's body
/// length. The scores are those `evaluate_tasks` gives: the same adaptation, the same numbers.
pub fn evaluate_and_fit(
    pool: &WorkerPool,
    start: Vec<f32>,
    mode: AdaptMode,
    head_start: usize,
    tasks: Vec<(Episode, Option<Vec<f32>>)>,
    steps: usize,
    lr: f64,
) -> Result<Vec<(TaskEval, Option<StepPredictions>)>, PoolError> {
    let start = Arc::new(start);
    pool.map(tasks, move |ev, (ep, grid): (Episode, Option<Vec<f32>>)| {
        let grid = grid.as_deref().map(|x| (x, head_start));
        evaluate_one(ev, &start, mode, &ep, steps, lr, Scoring::EveryStep, grid)
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
        per_step: per_step(results),
    }
}

/// Mean and CI over tasks after each step; as many steps as every task has.
fn per_step(results: &[TaskEval]) -> Vec<StepResult> {
    let steps = results.iter().map(|r| r.per_step.len()).min().unwrap_or(0);
    (0..steps)
        .map(|s| {
            let loss: Vec<f64> = results.iter().map(|r| r.per_step[s].loss).collect();
            let accuracy = results
                .iter()
                .map(|r| r.per_step[s].accuracy)
                .collect::<Option<Vec<f64>>>()
                .map(|a| MeanCi::of(&a));
            StepResult {
                step: s,
                loss: MeanCi::of(&loss),
                accuracy,
            }
        })
        .collect()
}
