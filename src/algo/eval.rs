//! The evaluation protocol: adapt to each new task on its support set, score on its query set.

use std::sync::Arc;

use super::contract::AdaptMode;
use super::inner::sgd_adapt;
use super::{anil, cavia, metasgd, metric};
use crate::experiment::EvalSpec;
pub use crate::metrics::{AdaptationRule, EvalProtocol};
use crate::metrics::{EvalResult, StepResult};
use crate::model::metric::{ways, MetricKind};
use crate::model::{head, BatchNormMode, LockStepModel};
use crate::pool::{LockStepWork, PoolError, WorkerPool};
use crate::stats::MeanCi;
use crate::tasks::{Batch, Episode, Split, Targets};

impl AdaptMode {
    pub fn rule(self) -> AdaptationRule {
        match self {
            AdaptMode::All => AdaptationRule::Sgd,
            AdaptMode::HeadOnly { .. } => AdaptationRule::FreshHeadBacktracking,
            AdaptMode::HeadSgd { .. } => AdaptationRule::HeadSgd,
            AdaptMode::LearnedRates { .. } => AdaptationRule::LearnedRates,
            AdaptMode::Context { .. } => AdaptationRule::ContextSgd,
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
enum Trajectory<P> {
    /// Every parameter θ₀ … θ_k (plain SGD, fresh head, learned rates).
    Params(Vec<P>),
    /// The frozen body and the head after each step (ANIL).
    Head { body: P, heads: Vec<Vec<f64>> },
}

/// Adapt every task from `start` on its support set by an inner-loop rule (not a metric one),
/// the tasks in lock-step.
fn adapt<M: LockStepModel + ?Sized>(
    m: &mut M,
    start: &[f32],
    mode: AdaptMode,
    supports: &[&Batch],
    steps: usize,
    lr: f64,
) -> Vec<Trajectory<M::Params>> {
    let starts = |m: &mut M, v: &[f32]| m.replicate(v.to_vec(), supports.len());
    match mode {
        AdaptMode::All | AdaptMode::HeadOnly { .. } => {
            let s = starts(m, start);
            sgd_adapt(m, s, supports, steps, lr, mode)
                .into_iter()
                .map(Trajectory::Params)
                .collect()
        }
        AdaptMode::HeadSgd { head_start } => {
            let body = &start[..head_start];
            let head0: Vec<f64> = start[head_start..].iter().map(|&v| v as f64).collect();
            let bodies: Vec<M::Params> = starts(m, body);
            let refs: Vec<&M::Params> = bodies.iter().collect();
            let feats = anil::body_features(m, &refs, supports);
            bodies
                .into_iter()
                .zip(feats)
                .zip(supports)
                .map(|((body, (fs, d)), s)| Trajectory::Head {
                    heads: anil::head_trajectory(&fs, d, s, &head0, steps, lr),
                    body,
                })
                .collect()
        }
        AdaptMode::LearnedRates { len } => {
            let (theta, alpha) = start.split_at(len);
            let s = starts(m, theta);
            metasgd::trajectories(m, s, alpha, supports, steps)
                .0
                .into_iter()
                .map(Trajectory::Params)
                .collect()
        }
        // The context's own rate, not the protocol's (see `AdaptMode::effective`).
        AdaptMode::Context { context, lr } => cavia::adapt(m, start, context, supports, steps, lr)
            .into_iter()
            .map(|path| Trajectory::Params(path.bases))
            .collect(),
        AdaptMode::Metric { .. } => unreachable!("metric rules take no steps"),
    }
}

/// The steps `scoring` picks out of `0..=last`.
fn scored_steps(last: usize, scoring: Scoring) -> Vec<usize> {
    match scoring {
        Scoring::EveryStep => (0..=last).collect(),
        Scoring::Ends if last == 0 => vec![0],
        Scoring::Ends => vec![0, last],
    }
}

/// Every task's query result at the steps `scoring` picks, in step order: one batched call
/// over all tasks and steps.
fn score<M: LockStepModel + ?Sized>(
    m: &mut M,
    trajs: &[Trajectory<M::Params>],
    queries: &[&Batch],
    scoring: Scoring,
) -> Vec<Vec<StepEval>> {
    let acc = |c: Option<usize>, n: usize| c.map(|c| c as f64 / n as f64);
    let mut params: Vec<&M::Params> = vec![];
    let mut on: Vec<&Batch> = vec![];
    let mut bodies: Vec<(&M::Params, &Batch)> = vec![];
    for (t, &q) in trajs.iter().zip(queries) {
        match t {
            Trajectory::Params(thetas) => {
                for s in scored_steps(thetas.len() - 1, scoring) {
                    params.push(&thetas[s]);
                    on.push(q);
                }
            }
            Trajectory::Head { body, .. } => bodies.push((body, q)),
        }
    }
    let mut losses = m.losses(&params, &on).into_iter();
    let (b, qb): (Vec<&M::Params>, Vec<&Batch>) = bodies.into_iter().unzip();
    let mut feats = anil::body_features(m, &b, &qb).into_iter();
    trajs
        .iter()
        .zip(queries)
        .map(|(t, q)| match t {
            Trajectory::Params(thetas) => scored_steps(thetas.len() - 1, scoring)
                .iter()
                .map(|_| {
                    let out = losses.next().expect("one loss per scored step");
                    StepEval {
                        loss: out.loss as f64,
                        accuracy: acc(out.correct, q.n),
                    }
                })
                .collect(),
            Trajectory::Head { heads, .. } => {
                let (fq, d) = feats.next().expect("one feature set per head task");
                let o = anil::outputs(heads[0].len(), d);
                scored_steps(heads.len() - 1, scoring)
                    .iter()
                    .map(|&s| {
                        let out = head::loss(&fq, q.n, d, &heads[s], o, &q.y);
                        StepEval {
                            loss: out.value,
                            accuracy: acc(out.out.correct, q.n),
                        }
                    })
                    .collect()
            }
        })
        .collect()
}

/// The first output at each of `x` (one input value each) after every step; the body is
/// `head_start` values long.
fn predict<M: LockStepModel + ?Sized>(
    m: &mut M,
    traj: &Trajectory<M::Params>,
    x: &[f32],
    head_start: usize,
) -> StepPredictions {
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
    match traj {
        Trajectory::Params(thetas) => {
            let split: Vec<(Vec<f32>, Vec<f64>)> = thetas
                .iter()
                .map(|t| {
                    let t = m.read(t);
                    let h = t[head_start..].iter().map(|&v| v as f64).collect();
                    (t[..head_start].to_vec(), h)
                })
                .collect();
            let bodies: Vec<M::Params> = split.iter().map(|(b, _)| m.load(b.clone())).collect();
            let refs: Vec<&M::Params> = bodies.iter().collect();
            let feats = anil::body_features(m, &refs, &vec![&grid; refs.len()]);
            feats
                .iter()
                .zip(&split)
                .map(|((f, d), (_, h))| first(f, *d, h))
                .collect()
        }
        Trajectory::Head { body, heads } => {
            let (f, d) = anil::body_features(m, &[body], &[&grid]).remove(0);
            heads.iter().map(|h| first(&f, d, h)).collect()
        }
    }
}

/// Every test task of a metric rule: embed, classify the queries. Before the support set is
/// seen the prediction is uniform, so `loss_before` is ln(ways).
fn metric_tasks<M: LockStepModel + ?Sized>(
    m: &mut M,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    episodes: &[&Episode],
) -> Vec<TaskEval> {
    metric::episode_losses(m, kind, params, body_len, episodes, false)
        .into_iter()
        .zip(episodes)
        .map(|((out, _), ep)| {
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
        })
        .collect()
}

/// How the evaluation adapts and scores, the same for every task.
#[derive(Debug, Clone, Copy)]
struct Protocol {
    mode: AdaptMode,
    steps: usize,
    lr: f64,
    scoring: Scoring,
    /// The network's body length, for predictions on a grid.
    head_start: usize,
}

/// Tasks in lock-step: adapt, score the steps the protocol picks, and predict on the task's
/// grid of inputs when it has one.
fn evaluate_chunk<M: LockStepModel + ?Sized>(
    m: &mut M,
    start: &[f32],
    p: Protocol,
    tasks: &[(Episode, Option<Vec<f32>>)],
) -> Vec<(TaskEval, Option<StepPredictions>)> {
    let episodes: Vec<&Episode> = tasks.iter().map(|(ep, _)| ep).collect();
    if let AdaptMode::Metric { kind, body_len } = p.mode {
        let evals = metric_tasks(m, kind, start, body_len, &episodes);
        return evals.into_iter().map(|e| (e, None)).collect();
    }
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let trajs = adapt(m, start, p.mode, &supports, p.steps, p.lr);
    let scores = score(m, &trajs, &queries, p.scoring);
    scores
        .into_iter()
        .zip(&trajs)
        .zip(tasks)
        .map(|((s, traj), (_, grid))| {
            let fit = grid.as_deref().map(|x| predict(m, traj, x, p.head_start));
            (TaskEval::of_steps(s, p.scoring), fit)
        })
        .collect()
}

/// Adapt from `start` on every episode's support set by the rule `mode` (SGD rules take
/// `steps` steps of `lr`), then score on its query set after the steps `scoring` picks; the
/// episodes in lock-step, one chunk per worker.
pub fn adapt_and_score(
    pool: &WorkerPool,
    start: Vec<f32>,
    mode: AdaptMode,
    episodes: Vec<Episode>,
    steps: usize,
    lr: f64,
    scoring: Scoring,
) -> Result<Vec<TaskEval>, PoolError> {
    let p = Protocol {
        mode,
        steps,
        lr,
        scoring,
        head_start: 0,
    };
    let tasks = episodes.into_iter().map(|ep| (ep, None)).collect();
    let results = run(pool, start, p, tasks)?;
    Ok(results.into_iter().map(|(e, _)| e).collect())
}

/// [`adapt_and_score`], and for each episode given a grid of inputs, the model's prediction on
/// it after every adaptation step (regression figures). `head_start` is the network's body
/// length. The scores are those `adapt_and_score` gives: the same adaptation, the same numbers.
pub fn adapt_and_fit(
    pool: &WorkerPool,
    start: Vec<f32>,
    mode: AdaptMode,
    head_start: usize,
    tasks: Vec<(Episode, Option<Vec<f32>>)>,
    steps: usize,
    lr: f64,
) -> Result<Vec<(TaskEval, Option<StepPredictions>)>, PoolError> {
    let p = Protocol {
        mode,
        steps,
        lr,
        scoring: Scoring::EveryStep,
        head_start,
    };
    run(pool, start, p, tasks)
}

fn run(
    pool: &WorkerPool,
    start: Vec<f32>,
    p: Protocol,
    tasks: Vec<(Episode, Option<Vec<f32>>)>,
) -> Result<Vec<(TaskEval, Option<StepPredictions>)>, PoolError> {
    let start = Arc::new(start);
    pool.lockstep(tasks, EvalChunk { start, p })
}

/// The protocol's work on one chunk of episodes, for whichever backend the pool runs.
struct EvalChunk {
    start: Arc<Vec<f32>>,
    p: Protocol,
}

impl LockStepWork for EvalChunk {
    type Item = (Episode, Option<Vec<f32>>);
    type Out = (TaskEval, Option<StepPredictions>);
    fn run<M: LockStepModel + ?Sized>(&self, m: &mut M, chunk: Vec<Self::Item>) -> Vec<Self::Out> {
        evaluate_chunk(m, &self.start, self.p, &chunk)
    }
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
