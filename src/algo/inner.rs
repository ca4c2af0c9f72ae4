//! Inner-loop adaptation shared by the algorithms and the evaluation.

use super::contract::AdaptMode;
use crate::model::{Evaluator, LossOut};
use crate::tasks::Batch;

/// Loss and gradient at `params`.
pub fn grad(ev: &mut dyn Evaluator, params: &[f32], batch: &Batch) -> (LossOut, Vec<f32>) {
    let mut g = vec![0.0f32; params.len()];
    let out = ev.evaluate(params, batch, Some(&mut g));
    (out, g)
}

/// `steps` SGD steps on `batch` from `params`; returns the trajectory θ₀ … θ_K (K + 1 entries).
pub fn sgd_trajectory(
    ev: &mut dyn Evaluator,
    params: &[f32],
    batch: &Batch,
    steps: usize,
    lr: f64,
) -> Vec<Vec<f32>> {
    let mut traj = Vec::with_capacity(steps + 1);
    traj.push(params.to_vec());
    for _ in 0..steps {
        let theta = traj.last().expect("non-empty");
        let (_, g) = grad(ev, theta, batch);
        let next = theta
            .iter()
            .zip(&g)
            .map(|(p, g)| p - (lr as f32) * g)
            .collect();
        traj.push(next);
    }
    traj
}

/// `steps` SGD steps restricted by `mode`; returns the parameters after each step, θ₀ … θ_K
/// (K + 1 entries), so an evaluation can score every step and the last is the adapted model.
///
/// Head-only adaptation (a fresh head on a trained trunk) halves its step until the support
/// loss does not increase: the trunk's features can be large enough that a fixed learning rate
/// tuned for MAML diverges on a linear head. Full adaptation keeps the plain protocol that
/// MAML-style results are reported with.
pub fn sgd_adapt(
    ev: &mut dyn Evaluator,
    params: &[f32],
    batch: &Batch,
    steps: usize,
    lr: f64,
    mode: AdaptMode,
) -> Vec<Vec<f32>> {
    match mode {
        AdaptMode::All => sgd_trajectory(ev, params, batch, steps, lr),
        AdaptMode::HeadOnly { head_start } => {
            let mut traj = Vec::with_capacity(steps + 1);
            traj.push(params.to_vec());
            let mut lr = lr as f32;
            for _ in 0..steps {
                let mut theta = traj.last().expect("non-empty").clone();
                let (now, g) = grad(ev, &theta, batch);
                for _ in 0..30 {
                    let mut next = theta.clone();
                    for (p, g) in next[head_start..].iter_mut().zip(&g[head_start..]) {
                        *p -= lr * g;
                    }
                    if ev.evaluate(&next, batch, None).loss <= now.loss {
                        theta = next;
                        break;
                    }
                    lr *= 0.5;
                }
                traj.push(theta);
            }
            traj
        }
        // The evaluation dispatches the other rules to their own code before getting here.
        other => unreachable!("sgd_adapt runs SGD rules only, not {other:?}"),
    }
}
