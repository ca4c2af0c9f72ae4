//! Meta-SGD (Li, Zhou, Chen & Li 2017): the inner step is `θ' = θ − α ⊙ ∇L_s(θ)` with a learned
//! per-parameter learning-rate vector α, meta-trained jointly with the initialisation θ.
//!
//! The meta-gradient is exact second order, as MAML's: walking back through the steps,
//! `∂L/∂α += −v ⊙ ∇L_s(θ_k)` and `v ← v − H(θ_k)·(α ⊙ v)`, with the Hessian-vector products by
//! central differences of gradients and the kink pattern frozen (`maml::hvp`). α starts at the
//! arm's `inner_lr` everywhere (the paper draws it at random in [0.005, 0.1]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;

use super::adam::Adam;
use super::inner::grad;
use super::maml::hvp;
use super::{
    mean_gradient, mean_stats, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats,
};
use crate::model::{Evaluator, LossOut};
use crate::pool::WorkerPool;
use crate::tasks::{Batch, Episode, Rng};

pub struct MetaSgd {
    /// `θ ++ α`.
    params: Vec<f32>,
    len: usize,
    adam: Adam,
    hvp_eps: f64,
    inner_steps: usize,
}

impl MetaSgd {
    pub fn new(ctx: AlgoContext, hvp_eps: f64) -> MetaSgd {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let mut params = ctx.net.init(&mut rng);
        let len = params.len();
        params.extend(std::iter::repeat_n(ctx.settings.inner_lr as f32, len));
        MetaSgd {
            adam: Adam::meta(params.len(), &ctx.settings),
            params,
            len,
            hvp_eps,
            inner_steps: ctx.settings.inner_steps,
        }
    }
}

/// θ₀ … θ_K under `θ ← θ − α ⊙ ∇L(θ)`, and the gradient at each of θ₀ … θ_{K−1}.
pub fn trajectory(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    alpha: &[f32],
    batch: &Batch,
    steps: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut traj = vec![theta.to_vec()];
    let mut grads = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = traj.last().expect("non-empty");
        let (_, g) = grad(ev, t, batch);
        let next = t
            .iter()
            .zip(&g)
            .zip(alpha)
            .map(|((t, g), a)| t - a * g)
            .collect();
        grads.push(g);
        traj.push(next);
    }
    (traj, grads)
}

/// One task's meta-gradient with respect to θ and α (f64), and its query result.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    alpha: &[f32],
    ep: &Episode,
    steps: usize,
    hvp_eps: f64,
) -> (Vec<f64>, Vec<f64>, LossOut) {
    let (traj, grads) = trajectory(ev, theta, alpha, &ep.support, steps);
    let (q, gq) = grad(ev, &traj[steps], &ep.query);
    let mut v: Vec<f64> = gq.iter().map(|&g| g as f64).collect();
    let mut d_alpha = vec![0.0f64; alpha.len()];
    for k in (0..steps).rev() {
        for ((da, vi), g) in d_alpha.iter_mut().zip(&v).zip(&grads[k]) {
            *da -= vi * *g as f64;
        }
        let av: Vec<f64> = v.iter().zip(alpha).map(|(v, &a)| v * a as f64).collect();
        let hv = hvp(ev, &traj[k], &ep.support, &av, hvp_eps);
        for (vi, h) in v.iter_mut().zip(&hv) {
            *vi -= h;
        }
    }
    (v, d_alpha, q)
}

impl MetaAlgorithm for MetaSgd {
    fn step(
        &mut self,
        _iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let params = Arc::new(self.params.clone());
        let (len, steps, eps) = (self.len, self.inner_steps, self.hvp_eps);
        let results = pool.map(episodes, move |ev, ep: Episode| {
            let (theta, alpha) = params.split_at(len);
            let (gt, ga, q) = task_meta_grad(ev, theta, alpha, &ep, steps, eps);
            (gt, ga, q, ep.query.n)
        })?;
        let grad = mean_gradient(
            results
                .iter()
                .map(|(gt, ga, _, _)| gt.iter().chain(ga).copied()),
            self.params.len(),
            "Meta-SGD meta-gradient",
        )?;
        self.adam.step(&mut self.params, &grad);
        Ok(mean_stats(
            results.iter().map(|(_, _, q, n)| (q.loss, q.correct, *n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        (
            self.params.clone(),
            AdaptMode::LearnedRates { len: self.len },
        )
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        self.adam.state_with(&self.params)
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.adam.load_with(&mut self.params, state)
    }
}
