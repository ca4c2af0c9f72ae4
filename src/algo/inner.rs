//! Inner-loop adaptation shared by the algorithms and the evaluation, written in lock-step over
//! the tasks of a meta-batch (see `model::lockstep`): step k runs for every task in one call.

use super::contract::AdaptMode;
use crate::model::{Evaluator, LockStepModel, LossOut, SerialTasks};
use crate::tasks::Batch;

/// Loss and gradient at `params`, on one evaluator.
pub fn grad(ev: &mut dyn Evaluator, params: &[f32], batch: &Batch) -> (LossOut, Vec<f32>) {
    let mut g = vec![0.0f32; params.len()];
    let out = ev.evaluate(params, batch, Some(&mut g));
    (out, g)
}

/// For each task, `steps` SGD steps on `batches[i]` from `starts[i]`, all tasks a step at a
/// time; each task's trajectory θ₀ … θ_K (K + 1 entries).
pub fn sgd_trajectories<M: LockStepModel + ?Sized>(
    m: &mut M,
    starts: Vec<M::Params>,
    batches: &[&Batch],
    steps: usize,
    lr: f64,
) -> Vec<Vec<M::Params>> {
    let mut trajs: Vec<Vec<M::Params>> = starts
        .into_iter()
        .map(|s| {
            let mut t = Vec::with_capacity(steps + 1);
            t.push(s);
            t
        })
        .collect();
    for k in 0..steps {
        let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
        let next = m.descend(&at, batches, lr);
        for (t, (_, n)) in trajs.iter_mut().zip(next) {
            t.push(n);
        }
    }
    trajs
}

/// `steps` SGD steps on `batch` from `params` on one evaluator; the trajectory θ₀ … θ_K.
pub fn sgd_trajectory(
    ev: &mut dyn Evaluator,
    params: &[f32],
    batch: &Batch,
    steps: usize,
    lr: f64,
) -> Vec<Vec<f32>> {
    let mut m = SerialTasks::new(ev);
    sgd_trajectories(&mut m, vec![params.to_vec()], &[batch], steps, lr)
        .pop()
        .expect("one task")
}

/// `steps` SGD steps restricted by `mode`, for every task (start `starts[i]`, batch
/// `batches[i]`); each task's parameters after each step, θ₀ … θ_K (K + 1 entries), so an
/// evaluation can score every step and the last is the adapted model.
///
/// Head-only adaptation (a fresh head on a trained trunk) halves its step until the support
/// loss does not increase: the trunk's features can be large enough that a fixed learning rate
/// tuned for MAML diverges on a linear head. Its backtracking differs from task to task, so
/// each step's trial points go as one batched call per trial. Full adaptation keeps the plain
/// protocol that MAML-style results are reported with.
pub fn sgd_adapt<M: LockStepModel + ?Sized>(
    m: &mut M,
    starts: Vec<M::Params>,
    batches: &[&Batch],
    steps: usize,
    lr: f64,
    mode: AdaptMode,
) -> Vec<Vec<M::Params>> {
    match mode {
        AdaptMode::All => sgd_trajectories(m, starts, batches, steps, lr),
        AdaptMode::HeadOnly { head_start } => {
            head_backtracking(m, starts, batches, steps, lr as f32, head_start)
        }
        // The evaluation dispatches the other rules to their own code before getting here.
        other => unreachable!("sgd_adapt runs SGD rules only, not {other:?}"),
    }
}

/// Head-only SGD with per-task backtracking (see [`sgd_adapt`]): at most 30 halvings a step.
fn head_backtracking<M: LockStepModel + ?Sized>(
    m: &mut M,
    starts: Vec<M::Params>,
    batches: &[&Batch],
    steps: usize,
    lr: f32,
    head_start: usize,
) -> Vec<Vec<M::Params>> {
    let tasks = starts.len();
    let mut lrs = vec![lr; tasks];
    let mut trajs: Vec<Vec<M::Params>> = starts.into_iter().map(|s| vec![s]).collect();
    for k in 0..steps {
        let at: Vec<&M::Params> = trajs.iter().map(|t| &t[k]).collect();
        let now = m.gradients(&at, batches);
        let mut theta: Vec<Vec<f32>> = at.iter().map(|p| m.read(p).into_owned()).collect();
        let mut open: Vec<usize> = (0..tasks).collect();
        for _ in 0..30 {
            if open.is_empty() {
                break;
            }
            let trials: Vec<Vec<f32>> = open
                .iter()
                .map(|&i| {
                    let mut next = theta[i].clone();
                    for (p, g) in next[head_start..].iter_mut().zip(&now[i].1[head_start..]) {
                        *p -= lrs[i] * g;
                    }
                    next
                })
                .collect();
            let handles: Vec<M::Params> = trials.iter().map(|t| m.load(t.clone())).collect();
            let refs: Vec<&M::Params> = handles.iter().collect();
            let on: Vec<&Batch> = open.iter().map(|&i| batches[i]).collect();
            let losses = m.losses(&refs, &on);
            let mut still = vec![];
            for ((&i, trial), out) in open.iter().zip(trials).zip(losses) {
                if out.loss <= now[i].0.loss {
                    theta[i] = trial;
                } else {
                    lrs[i] *= 0.5;
                    still.push(i);
                }
            }
            open = still;
        }
        for (t, th) in trajs.iter_mut().zip(theta) {
            t.push(m.load(th));
        }
    }
    trajs
}
