//! Meta-SGD (Li, Zhou, Chen & Li 2017): the inner step is `θ' = θ − α ⊙ ∇L_s(θ)` with a learned
//! per-parameter learning-rate vector α, meta-trained jointly with the initialisation θ.
//!
//! The meta-gradient is exact second order, as MAML's: walking back through the steps,
//! `∂L/∂α += −v ⊙ ∇L_s(θ_k)` and `v ← v − H(θ_k)·(α ⊙ v)`, with the Hessian-vector products by
//! central differences of gradients and the kink pattern frozen (`maml::hvp`). α starts at the
//! arm's `inner_lr` everywhere (the paper draws it at random in [0.005, 0.1]).

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext};
use super::inner::grad;
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use super::maml::hvp;
use crate::model::{Evaluator, LossOut};
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

impl TaskRule for MetaSgd {
    const UPDATE: &'static str = "Meta-SGD meta-gradient";

    fn task(&self, ev: &mut dyn Evaluator, params: &[f32], _slot: usize, ep: &Episode) -> TaskOut {
        let (theta, alpha) = params.split_at(self.len);
        let (mut update, d_alpha, query) =
            task_meta_grad(ev, theta, alpha, ep, self.inner_steps, self.hvp_eps);
        update.extend(d_alpha);
        TaskOut {
            update,
            query,
            n: ep.query.n,
        }
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::LearnedRates { len: self.len }
    }
}
