//! MAML (Finn et al. 2017) with the exact second-order meta-gradient.
//!
//! dfdx has no gradient of a gradient, so the backward pass through the inner SGD steps uses
//! Hessian-vector products by central differences of gradients:
//! `v ← v − α·H(θ_k)·v` for k = K−1 … 0, with `H·v ≈ (g(θ + r·v) − g(θ − r·v)) / 2r`,
//! `r = ε/‖v‖`, accumulated in f64 (`LockStepModel::step_back`, the arithmetic in `model::hvp`;
//! a device backend keeps v where θ lives). A test checks the result against brute-force finite
//! differences of the whole meta-objective.

use super::contract::{AdaptMode, AlgoContext};
use super::inner::sgd_trajectories;
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::{Evaluator, LockStepModel, LossOut, SerialTasks};
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
    let starts = m.replicate(theta.to_vec(), episodes.len());
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let trajs = sgd_trajectories(m, starts, &supports, steps, lr);
    let adapted: Vec<&M::Params> = trajs.iter().map(|t| &t[steps]).collect();
    match order {
        Order::First => m
            .gradients(&adapted, &queries)
            .into_iter()
            .map(|(q, g)| (g.iter().map(|&g| g as f64).collect(), q))
            .collect(),
        Order::Second { hvp_eps } => {
            let (outs, mut vs): (Vec<LossOut>, Vec<M::Vector>) =
                m.gradient_vectors(&adapted, &queries).into_iter().unzip();
            for k in (0..steps).rev() {
                let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
                vs = m.step_back(&at, &supports, vs, lr, hvp_eps);
            }
            vs.into_iter().map(|v| m.read_vector(v)).zip(outs).collect()
        }
    }
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
