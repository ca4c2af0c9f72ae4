//! Meta-SGD (Li, Zhou, Chen & Li 2017): the inner step is `θ' = θ − α ⊙ ∇L_s(θ)` with a learned
//! per-parameter learning-rate vector α, meta-trained jointly with the initialisation θ.
//!
//! The meta-gradient is exact second order, as MAML's: walking back through the steps,
//! `∂L/∂α += −v ⊙ ∇L_s(θ_k)` and `v ← v − H(θ_k)·(α ⊙ v)`, with the Hessian-vector products by
//! central differences of gradients and the kink pattern frozen (`model::hvps`). α starts at the
//! arm's `inner_lr` everywhere (the paper draws it at random in [0.005, 0.1]).

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::hvps;
use crate::model::{Evaluator, LockStepModel, LossOut, SerialTasks};
use crate::tasks::{Batch, Episode, Rng};

/// Meta-SGD's rule, on meta-parameters `θ ++ α` (each `len` long).
pub struct MetaSgd {
    len: usize,
    hvp_eps: f64,
    inner_steps: usize,
}

impl MetaSgd {
    /// A learner from the standard initialisation with α = `inner_lr` everywhere, trained with
    /// Adam.
    pub fn learner(ctx: AlgoContext, hvp_eps: f64) -> Learner<MetaSgd> {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let mut params = ctx.net.init(&mut rng);
        let len = params.len();
        params.extend(std::iter::repeat_n(ctx.settings.inner_lr as f32, len));
        let rule = MetaSgd {
            len,
            hvp_eps,
            inner_steps: ctx.settings.inner_steps,
        };
        let optimizer = MetaOptimizer::adam(params.len(), &ctx.settings);
        Learner::new(rule, params, optimizer, TaskSource::Fresh)
    }
}

/// For each task, θ₀ … θ_K under `θ ← θ − α ⊙ ∇L(θ)` on `batches[i]` from `starts[i]`, all
/// tasks a step at a time, and the gradient at each of θ₀ … θ_{K−1}.
#[allow(clippy::type_complexity)]
pub fn trajectories<M: LockStepModel + ?Sized>(
    m: &mut M,
    starts: Vec<M::Params>,
    alpha: &[f32],
    batches: &[&Batch],
    steps: usize,
) -> (Vec<Vec<M::Params>>, Vec<Vec<Vec<f32>>>) {
    let mut trajs: Vec<Vec<M::Params>> = starts.into_iter().map(|s| vec![s]).collect();
    let mut grads: Vec<Vec<Vec<f32>>> = trajs.iter().map(|_| Vec::with_capacity(steps)).collect();
    for k in 0..steps {
        let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
        let gs = m.gradients(&at, batches);
        let next: Vec<Vec<f32>> = at
            .iter()
            .zip(&gs)
            .map(|(t, (_, g))| {
                m.read(t)
                    .iter()
                    .zip(g)
                    .zip(alpha)
                    .map(|((t, g), a)| t - a * g)
                    .collect()
            })
            .collect();
        for ((t, n), (g, (_, gk))) in trajs.iter_mut().zip(next).zip(grads.iter_mut().zip(gs)) {
            t.push(m.load(n));
            g.push(gk);
        }
    }
    (trajs, grads)
}

/// θ₀ … θ_K under `θ ← θ − α ⊙ ∇L(θ)` on one evaluator, and the gradient at each of θ₀ … θ_{K−1}.
pub fn trajectory(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    alpha: &[f32],
    batch: &Batch,
    steps: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut m = SerialTasks::new(ev);
    let (mut t, mut g) = trajectories(&mut m, vec![theta.to_vec()], alpha, &[batch], steps);
    (t.pop().expect("one task"), g.pop().expect("one task"))
}

/// Every task's meta-gradient with respect to θ and α (f64), and its query result, the tasks in
/// lock-step.
pub fn meta_grads<M: LockStepModel + ?Sized>(
    m: &mut M,
    theta: &[f32],
    alpha: &[f32],
    episodes: &[&Episode],
    steps: usize,
    hvp_eps: f64,
) -> Vec<(Vec<f64>, Vec<f64>, LossOut)> {
    let starts = m.replicate(theta.to_vec(), episodes.len());
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let (trajs, grads) = trajectories(m, starts, alpha, &supports, steps);
    let adapted: Vec<&M::Params> = trajs.iter().map(|t| &t[steps]).collect();
    let query = m.gradients(&adapted, &queries);
    let mut vs: Vec<Vec<f64>> = query
        .iter()
        .map(|(_, g)| g.iter().map(|&g| g as f64).collect())
        .collect();
    let mut d_alphas = vec![vec![0.0f64; alpha.len()]; episodes.len()];
    for k in (0..steps).rev() {
        for ((da, v), g) in d_alphas.iter_mut().zip(&vs).zip(&grads) {
            for ((da, vi), g) in da.iter_mut().zip(v).zip(&g[k]) {
                *da -= vi * *g as f64;
            }
        }
        let avs: Vec<Vec<f64>> = vs
            .iter()
            .map(|v| v.iter().zip(alpha).map(|(v, &a)| v * a as f64).collect())
            .collect();
        let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
        let hvs = hvps(m, &at, &supports, &avs, hvp_eps);
        for (v, hv) in vs.iter_mut().zip(&hvs) {
            for (vi, h) in v.iter_mut().zip(hv) {
                *vi -= h;
            }
        }
    }
    vs.into_iter()
        .zip(d_alphas)
        .zip(query)
        .map(|((v, da), (q, _))| (v, da, q))
        .collect()
}

/// One task's meta-gradient with respect to θ and α (f64), and its query result, on one
/// evaluator.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    alpha: &[f32],
    ep: &Episode,
    steps: usize,
    hvp_eps: f64,
) -> (Vec<f64>, Vec<f64>, LossOut) {
    meta_grads(
        &mut SerialTasks::new(ev),
        theta,
        alpha,
        &[ep],
        steps,
        hvp_eps,
    )
    .pop()
    .expect("one task")
}

impl TaskRule for MetaSgd {
    const UPDATE: &'static str = "Meta-SGD meta-gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        params: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let (theta, alpha) = params.split_at(self.len);
        let episodes: Vec<&Episode> = tasks.iter().map(|(_, ep)| ep).collect();
        meta_grads(m, theta, alpha, &episodes, self.inner_steps, self.hvp_eps)
            .into_iter()
            .zip(&episodes)
            .map(|((mut update, d_alpha, query), ep)| {
                update.extend(d_alpha);
                TaskOut {
                    update,
                    query,
                    n: ep.query.n,
                }
            })
            .collect()
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::LearnedRates { len: self.len }
    }
}
