//! MAML (Finn et al. 2017) with the exact second-order meta-gradient.
//!
//! dfdx has no gradient of a gradient, so the backward pass through the inner SGD steps uses
//! Hessian-vector products by central differences of gradients:
//! `v ← v − α·H(θ_k)·v` for k = K−1 … 0, with `H·v ≈ (g(θ + r·v) − g(θ − r·v)) / 2r`,
//! `r = ε/‖v‖`, accumulated in f64. A test checks the result against brute-force finite
//! differences of the whole meta-objective.

use super::contract::{AdaptMode, AlgoContext};
use super::inner::sgd_trajectories;
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::{Evaluator, KinkPattern, Kinks, LockStepModel, LossOut, SerialTasks, StepJob};
use crate::tasks::{Batch, Episode};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    /// Exact meta-gradient; `hvp_eps` is the finite-difference radius.
    Second { hvp_eps: f64 },
    /// First-order MAML: drop the second-order terms (the Hessians of the inner steps); the
    /// meta-gradient is the query gradient at the adapted parameters.
    First,
}

/// MAML's rule: SGD on the support set from θ, the query gradient carried back through the steps.
pub struct Maml {
    order: Order,
    inner_steps: usize,
    inner_lr: f64,
}

impl Maml {
    /// A learner from the standard initialisation, trained with Adam.
    pub fn learner(ctx: AlgoContext, order: Order) -> Learner<Maml> {
        let mut rng = <crate::tasks::Rng as rand::SeedableRng>::seed_from_u64(ctx.seed);
        let theta = ctx.net.init(&mut rng);
        let rule = Maml {
            order,
            inner_steps: ctx.settings.inner_steps,
            inner_lr: ctx.settings.inner_lr,
        };
        let optimizer = MetaOptimizer::adam(theta.len(), &ctx.settings);
        Learner::new(rule, theta, optimizer, TaskSource::Fresh)
    }
}

/// Every task's meta-gradient (in f64) and its query result after adaptation, the tasks in
/// lock-step: each inner step, the query pass and each step back is one batched call.
pub fn meta_grads<M: LockStepModel + ?Sized>(
    m: &mut M,
    theta: &[f32],
    episodes: &[&Episode],
    steps: usize,
    lr: f64,
    order: Order,
) -> Vec<(Vec<f64>, LossOut)> {
    let starts = episodes.iter().map(|_| m.load(theta.to_vec())).collect();
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let trajs = sgd_trajectories(m, starts, &supports, steps, lr);
    let adapted: Vec<&M::Params> = trajs.iter().map(|t| &t[steps]).collect();
    let query = m.gradients(&adapted, &queries);
    let mut vs: Vec<Vec<f64>> = query
        .iter()
        .map(|(_, g)| g.iter().map(|&g| g as f64).collect())
        .collect();
    if let Order::Second { hvp_eps } = order {
        for k in (0..steps).rev() {
            let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
            let hvs = hvps(m, &at, &supports, &vs, hvp_eps);
            for (v, hv) in vs.iter_mut().zip(&hvs) {
                for (v, h) in v.iter_mut().zip(hv) {
                    *v -= lr * h;
                }
            }
        }
    }
    vs.into_iter()
        .zip(query)
        .map(|(v, (q, _))| (v, q))
        .collect()
}

/// One task's meta-gradient (in f64) and its query result after adaptation, on one evaluator.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    ep: &Episode,
    steps: usize,
    lr: f64,
    order: Order,
) -> (Vec<f64>, LossOut) {
    meta_grads(&mut SerialTasks::new(ev), theta, &[ep], steps, lr, order)
        .pop()
        .expect("one task")
}

/// For every task, the Hessian of the loss on `batches[i]` at `thetas[i]` times `vs[i]`, by
/// central differences of gradients with the kink pattern frozen at `thetas[i]` (see
/// [`Kinks`]): one batched call records the patterns, one replays them at θ ± r·v. A task
/// whose `v` is zero (or not finite) gets zeros and no work.
pub fn hvps<M: LockStepModel + ?Sized>(
    m: &mut M,
    thetas: &[&M::Params],
    batches: &[&Batch],
    vs: &[Vec<f64>],
    eps: f64,
) -> Vec<Vec<f64>> {
    let radii: Vec<Option<f64>> = vs
        .iter()
        .map(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            (norm != 0.0 && norm.is_finite()).then(|| eps / norm)
        })
        .collect();
    let active: Vec<usize> = (0..vs.len()).filter(|&i| radii[i].is_some()).collect();
    let mut patterns = vec![KinkPattern::default(); active.len()];
    let mut record: Vec<StepJob<M::Params>> = active
        .iter()
        .zip(patterns.iter_mut())
        .map(|(&i, p)| StepJob {
            kinks: Kinks::Record(p),
            ..StepJob::loss(thetas[i], batches[i])
        })
        .collect();
    m.step(&mut record);
    drop(record);
    let shifted: Vec<Vec<f32>> = [1.0, -1.0]
        .iter()
        .flat_map(|&sign| active.iter().map(move |&i| (sign, i)))
        .map(|(sign, i)| {
            let r = radii[i].expect("active");
            m.read(thetas[i])
                .iter()
                .zip(&vs[i])
                .map(|(&t, &v)| (t as f64 + sign * r * v) as f32)
                .collect()
        })
        .collect();
    let shifted: Vec<M::Params> = shifted.into_iter().map(|s| m.load(s)).collect();
    let mut replay: Vec<StepJob<M::Params>> = shifted
        .iter()
        .zip(active.iter().chain(&active))
        .zip(patterns.iter().chain(&patterns))
        .map(|((p, &i), pattern)| StepJob {
            kinks: Kinks::Replay(pattern),
            ..StepJob::gradient(p, batches[i])
        })
        .collect();
    let grads: Vec<Vec<f32>> = m
        .step(&mut replay)
        .into_iter()
        .map(|o| o.into_grad().1)
        .collect();
    let (plus, minus) = grads.split_at(active.len());
    let mut out = vec![vec![]; vs.len()];
    for (j, &i) in active.iter().enumerate() {
        let r = radii[i].expect("active");
        out[i] = plus[j]
            .iter()
            .zip(&minus[j])
            .map(|(&a, &b)| (a as f64 - b as f64) / (2.0 * r))
            .collect();
    }
    for (o, v) in out.iter_mut().zip(vs) {
        if o.is_empty() {
            *o = vec![0.0; v.len()];
        }
    }
    out
}

/// [`hvps`] for one task on one evaluator.
pub fn hvp(ev: &mut dyn Evaluator, theta: &[f32], batch: &Batch, v: &[f64], eps: f64) -> Vec<f64> {
    let mut m = SerialTasks::new(ev);
    let theta = theta.to_vec();
    hvps(&mut m, &[&theta], &[batch], &[v.to_vec()], eps)
        .pop()
        .expect("one task")
}

impl TaskRule for Maml {
    const UPDATE: &'static str = "meta-gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        theta: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let episodes: Vec<&Episode> = tasks.iter().map(|(_, ep)| ep).collect();
        let results = meta_grads(
            m,
            theta,
            &episodes,
            self.inner_steps,
            self.inner_lr,
            self.order,
        );
        TaskOut::per_episode(results, tasks)
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::All
    }
}
