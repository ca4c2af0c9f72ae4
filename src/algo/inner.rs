//! Inner-loop adaptation shared by the algorithms and the evaluation.

use super::AdaptMode;
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

/// `steps` SGD steps restricted by `mode`; returns the adapted parameters.
pub fn sgd_adapt(
    ev: &mut dyn Evaluator,
    params: &[f32],
    batch: &Batch,
    steps: usize,
    lr: f64,
    mode: AdaptMode,
) -> Vec<f32> {
    let mut theta = params.to_vec();
    let from = match mode {
        AdaptMode::All => 0,
        AdaptMode::HeadOnly { head_start } => head_start,
    };
    for _ in 0..steps {
        let (_, g) = grad(ev, &theta, batch);
        for (p, g) in theta[from..].iter_mut().zip(&g[from..]) {
            *p -= (lr as f32) * g;
        }
    }
    theta
}
