//! MAML (Finn et al. 2017) with the exact second-order meta-gradient.
//!
//! dfdx has no gradient of a gradient, so the backward pass through the inner SGD steps uses
//! Hessian-vector products by central differences of gradients:
//! `v ← v − α·H(θ_k)·v` for k = K−1 … 0, with `H·v ≈ (g(θ + r·v) − g(θ − r·v)) / 2r`,
//! `r = ε/‖v‖`, accumulated in f64. A test checks the result against brute-force finite
//! differences of the whole meta-objective.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::adam::Adam;
use super::inner::{grad, sgd_trajectory};
use super::{
    mean_gradient, mean_stats, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats,
};
use crate::model::{Evaluator, KinkPattern, Kinks, LossOut};
use crate::pool::WorkerPool;
use crate::tasks::{Batch, Episode};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    /// Exact meta-gradient; `hvp_eps` is the finite-difference radius.
    Second { hvp_eps: f64 },
    /// First-order MAML: drop the second-order terms (the Hessians of the inner steps); the
    /// meta-gradient is the query gradient at the adapted parameters.
    First,
}

pub struct Maml {
    theta: Vec<f32>,
    adam: Adam,
    order: Order,
    inner_steps: usize,
    inner_lr: f64,
}

impl Maml {
    pub fn new(ctx: AlgoContext, hvp_eps: f64) -> Maml {
        Maml::with_order(ctx, Order::Second { hvp_eps })
    }

    pub fn with_order(ctx: AlgoContext, order: Order) -> Maml {
        let mut rng = <crate::tasks::Rng as rand::SeedableRng>::seed_from_u64(ctx.seed);
        let theta = ctx.net.init(&mut rng);
        Maml {
            adam: Adam::meta(theta.len(), &ctx.settings),
            theta,
            order,
            inner_steps: ctx.settings.inner_steps,
            inner_lr: ctx.settings.inner_lr,
        }
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

impl MetaAlgorithm for Maml {
    fn step(
        &mut self,
        _iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let theta = Arc::new(self.theta.clone());
        let (steps, lr, order) = (self.inner_steps, self.inner_lr, self.order);
        let results = pool.map(episodes, move |ev, ep: Episode| {
            let (g, q) = task_meta_grad(ev, &theta, &ep, steps, lr, order);
            (g, q, ep.query.n)
        })?;
        let meta_grad = mean_gradient(
            results.iter().map(|(g, _, _)| g.iter().copied()),
            self.theta.len(),
            "meta-gradient",
        )?;
        self.adam.step(&mut self.theta, &meta_grad);
        Ok(mean_stats(
            results.iter().map(|(_, q, n)| (q.loss, q.correct, *n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        (self.theta.clone(), AdaptMode::All)
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        self.adam.state_with(&self.theta)
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.adam.load_with(&mut self.theta, state)
    }
}
