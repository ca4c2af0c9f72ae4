//! Reptile (Nichol, Achiam & Schulman 2018): adapt to each task, then move the meta-parameters
//! toward the adapted ones, `θ ← θ + ε·mean(θ'ᵢ − θ)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::adam::Adam;
use super::inner::{grad, sgd_trajectory};
use super::{mean_stats, take_state, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats};
use crate::experiment::InnerOptimizer;
use crate::model::Evaluator;
use crate::pool::WorkerPool;
use crate::tasks::{Batch, Episode};

pub struct Reptile {
    theta: Vec<f32>,
    epsilon: f64,
    anneal: bool,
    optimizer: InnerOptimizer,
    inner_steps: usize,
    inner_lr: f64,
    total_iterations: usize,
}

impl Reptile {
    pub fn new(ctx: AlgoContext, epsilon: f64, anneal: bool, optimizer: InnerOptimizer) -> Reptile {
        let mut rng = <crate::tasks::Rng as rand::SeedableRng>::seed_from_u64(ctx.seed);
        Reptile {
            theta: ctx.net.init(&mut rng),
            epsilon,
            anneal,
            optimizer,
            inner_steps: ctx.settings.inner_steps,
            inner_lr: ctx.settings.inner_lr,
            total_iterations: ctx.total_iterations,
        }
    }

    /// The outer step size at `iteration`: linearly annealed to 0 at the end when asked.
    pub fn epsilon_at(&self, iteration: usize) -> f64 {
        if self.anneal {
            self.epsilon * (1.0 - iteration as f64 / self.total_iterations.max(1) as f64)
        } else {
            self.epsilon
        }
    }
}

/// Inner adaptation with Adam (β₁ = 0, as in the Reptile paper), fresh per task.
fn adam_adapt(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    batch: &Batch,
    steps: usize,
    lr: f64,
) -> Vec<f32> {
    let mut p = theta.to_vec();
    let mut opt = Adam::with_betas(p.len(), lr, 0.0, 0.999);
    for _ in 0..steps {
        let (_, g) = grad(ev, &p, batch);
        opt.step(&mut p, &g);
    }
    p
}

impl MetaAlgorithm for Reptile {
    fn step(
        &mut self,
        iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let theta = Arc::new(self.theta.clone());
        let (steps, lr, opt) = (self.inner_steps, self.inner_lr, self.optimizer);
        let results = pool.map(episodes, move |ev, ep: Episode| {
            let adapted = match opt {
                InnerOptimizer::Sgd => sgd_trajectory(ev, &theta, &ep.support, steps, lr)
                    .pop()
                    .expect("θ_K"),
                InnerOptimizer::Adam => adam_adapt(ev, &theta, &ep.support, steps, lr),
            };
            let q = ev.evaluate(&adapted, &ep.query, None);
            (adapted, q, ep.query.n)
        })?;
        let eps = self.epsilon_at(iteration);
        let tasks = results.len() as f64;
        let mut delta = vec![0.0f64; self.theta.len()];
        for (adapted, _, _) in &results {
            for ((d, &a), &t) in delta.iter_mut().zip(adapted).zip(&self.theta) {
                *d += (a - t) as f64;
            }
        }
        if delta.iter().any(|d| !d.is_finite()) {
            return Err(AlgoError::NotFinite {
                what: "Reptile update",
            });
        }
        for (t, d) in self.theta.iter_mut().zip(&delta) {
            *t += (eps * d / tasks) as f32;
        }
        Ok(mean_stats(
            results.iter().map(|(_, q, n)| (q.loss, q.correct, *n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        (self.theta.clone(), AdaptMode::All)
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        vec![("params".into(), self.theta.clone())]
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.theta = take_state(state, "params", self.theta.len())?;
        Ok(())
    }
}
