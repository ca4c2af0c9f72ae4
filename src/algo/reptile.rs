//! Reptile (Nichol, Achiam & Schulman 2018): adapt to each task, then move the meta-parameters
//! toward the adapted ones, `θ ← θ + ε·mean(θ'ᵢ − θ)`.

use super::adam::Adam;
use super::contract::{AdaptMode, AlgoContext, AlgoError};
use super::inner::sgd_trajectories;
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::experiment::InnerOptimizer;
use crate::model::LockStepModel;
use crate::tasks::{Batch, Episode};

/// Reptile's rule: each task reports its move `θ'ᵢ − θ`; the step is `ε·mean`, applied directly
/// (no meta-optimizer, so no state beyond θ).
#[derive(Debug, Clone, Copy)]
pub struct Reptile {
    epsilon: f64,
    anneal: bool,
    optimizer: InnerOptimizer,
    inner_steps: usize,
    inner_lr: f64,
    total_iterations: usize,
}

impl Reptile {
    pub fn learner(
        ctx: AlgoContext,
        epsilon: f64,
        anneal: bool,
        optimizer: InnerOptimizer,
    ) -> Learner<Reptile> {
        let mut rng = <crate::tasks::Rng as rand::SeedableRng>::seed_from_u64(ctx.seed);
        let rule = Reptile {
            epsilon,
            anneal,
            optimizer,
            inner_steps: ctx.settings.inner_steps,
            inner_lr: ctx.settings.inner_lr,
            total_iterations: ctx.total_iterations,
        };
        let theta = ctx.net.init(&mut rng);
        Learner::new(rule, theta, MetaOptimizer::Direct, TaskSource::Fresh)
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

/// Inner adaptation with Adam (β₁ = 0, as in the Reptile paper), fresh per task, all tasks a
/// step at a time; each task's adapted parameters.
fn adam_adapt<M: LockStepModel + ?Sized>(
    m: &mut M,
    theta: &[f32],
    batches: &[&Batch],
    steps: usize,
    lr: f64,
) -> Vec<M::Params> {
    let mut ps: Vec<Vec<f32>> = batches.iter().map(|_| theta.to_vec()).collect();
    let mut opts: Vec<Adam> = batches
        .iter()
        .map(|_| Adam::with_betas(theta.len(), lr, 0.0, 0.999))
        .collect();
    for _ in 0..steps {
        let handles: Vec<M::Params> = ps.iter().map(|p| m.load(p.clone())).collect();
        let refs: Vec<&M::Params> = handles.iter().collect();
        let grads = m.gradients(&refs, batches);
        for ((p, opt), (_, g)) in ps.iter_mut().zip(&mut opts).zip(grads) {
            opt.step(p, &g);
        }
    }
    ps.into_iter().map(|p| m.load(p)).collect()
}

impl TaskRule for Reptile {
    const UPDATE: &'static str = "Reptile update";
    const DESCENT_SIGN: f64 = -1.0;

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        theta: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let (steps, lr) = (self.inner_steps, self.inner_lr);
        let supports: Vec<&Batch> = tasks.iter().map(|(_, ep)| &ep.support).collect();
        let queries: Vec<&Batch> = tasks.iter().map(|(_, ep)| &ep.query).collect();
        let adapted: Vec<M::Params> = match self.optimizer {
            InnerOptimizer::Sgd => {
                let starts = m.replicate(theta.to_vec(), tasks.len());
                sgd_trajectories(m, starts, &supports, steps, lr)
                    .into_iter()
                    .map(|mut t| t.pop().expect("θ_K"))
                    .collect()
            }
            InnerOptimizer::Adam => adam_adapt(m, theta, &supports, steps, lr),
        };
        let refs: Vec<&M::Params> = adapted.iter().collect();
        let query = m.losses(&refs, &queries);
        adapted
            .iter()
            .zip(query)
            .zip(&queries)
            .map(|((a, query), q)| TaskOut {
                // The difference in f32, as θ and θ' are, then summed over tasks in f64.
                update: m
                    .read(a)
                    .iter()
                    .zip(theta)
                    .map(|(&a, &t)| (a - t) as f64)
                    .collect(),
                query,
                n: q.n,
            })
            .collect()
    }

    /// `−ε·mean(θ'ᵢ − θ)`, which [`MetaOptimizer::Direct`] subtracts: `θ − (−x)` is `θ + x`
    /// exactly in IEEE arithmetic.
    fn combine(
        &self,
        iteration: usize,
        theta: &[f32],
        _slots: &[usize],
        outs: &[TaskOut],
    ) -> Result<Vec<f32>, AlgoError> {
        let eps = self.epsilon_at(iteration);
        let tasks = outs.len() as f64;
        let mut delta = vec![0.0f64; theta.len()];
        for o in outs {
            for (d, x) in delta.iter_mut().zip(&o.update) {
                *d += x;
            }
        }
        if delta.iter().any(|d| !d.is_finite()) {
            return Err(AlgoError::NotFinite { what: Self::UPDATE });
        }
        Ok(delta.iter().map(|d| -((eps * d / tasks) as f32)).collect())
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::All
    }
}
