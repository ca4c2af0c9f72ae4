//! MAML (Finn et al. 2017) with the exact second-order meta-gradient.
//!
//! dfdx has no gradient of a gradient, so the backward pass through the inner SGD steps uses
//! Hessian-vector products by central differences of gradients:
//! `v ← v − α·H(θ_k)·v` for k = K−1 … 0, with `H·v ≈ (g(θ + r·v) − g(θ − r·v)) / 2r`,
//! `r = ε/‖v‖`, accumulated in f64. A test checks the result against brute-force finite
//! differences of the whole meta-objective.

use super::contract::{AdaptMode, AlgoContext};
use super::inner::{grad, sgd_trajectory};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::{Evaluator, KinkPattern, Kinks, LossOut};
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

/// One task's meta-gradient (in f64) and its query result after adaptation.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    ep: &Episode,
    steps: usize,
    lr: f64,
    order: Order,
) -> (Vec<f64>, LossOut) {
    let traj = sgd_trajectory(ev, theta, &ep.support, steps, lr);
    let (q, gq) = grad(ev, &traj[steps], &ep.query);
    let mut v: Vec<f64> = gq.iter().map(|&g| g as f64).collect();
    if let Order::Second { hvp_eps } = order {
        for k in (0..steps).rev() {
            let hv = hvp(ev, &traj[k], &ep.support, &v, hvp_eps);
            for (v, h) in v.iter_mut().zip(&hv) {
                *v -= lr * h;
            }
        }
    }
    (v, q)
}

/// Hessian of the loss on `batch` at `theta` times `v`, by central differences of gradients with
/// the kink pattern frozen at `theta` (see [`Kinks`]).
pub fn hvp(ev: &mut dyn Evaluator, theta: &[f32], batch: &Batch, v: &[f64], eps: f64) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vec![0.0; v.len()];
    }
    let r = eps / norm;
    let mut pattern = KinkPattern::default();
    ev.evaluate_with(theta, batch, None, Kinks::Record(&mut pattern));
    let shifted = |sign: f64| -> Vec<f32> {
        theta
            .iter()
            .zip(v)
            .map(|(&t, &v)| (t as f64 + sign * r * v) as f32)
            .collect()
    };
    let mut gp = vec![0.0f32; theta.len()];
    let mut gm = vec![0.0f32; theta.len()];
    ev.evaluate_with(&shifted(1.0), batch, Some(&mut gp), Kinks::Replay(&pattern));
    ev.evaluate_with(
        &shifted(-1.0),
        batch,
        Some(&mut gm),
        Kinks::Replay(&pattern),
    );
    gp.iter()
        .zip(&gm)
        .map(|(&a, &b)| (a as f64 - b as f64) / (2.0 * r))
        .collect()
}

impl TaskRule for Maml {
    const UPDATE: &'static str = "meta-gradient";

    fn task(&self, ev: &mut dyn Evaluator, theta: &[f32], _slot: usize, ep: &Episode) -> TaskOut {
        let (update, query) =
            task_meta_grad(ev, theta, ep, self.inner_steps, self.inner_lr, self.order);
        TaskOut {
            update,
            query,
            n: ep.query.n,
        }
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::All
    }
}
