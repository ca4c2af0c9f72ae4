//! ANIL, "almost no inner loop" (Raghu et al. 2020): the inner loop adapts only the head; the
//! body is meta-learned with the head's initialisation.
//!
//! The body's support features are computed once per task and the inner steps run on the head
//! alone (`model::head`, f64), so an inner step costs no pass through the body. Second order is
//! exact and cheap: walking back through `φ ← φ − α·∇_φ L_s`, the head part of the vector
//! recurses through the head's Hessian (a function of the fixed features only), and the body
//! receives `Σ_k −α·H_{Bφ}(θ_k)·v_k`, which is one backward pass through the body of the summed
//! change of the feature gradients `Σ_k −α·∂(∂L/∂F)/∂φ·v_k`. The head-level second derivatives are
//! central differences in f64 (the head loss is smooth; exact for MSE).

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::lockstep::embed_all;
use crate::model::{head, Evaluator, FeatureLoss, LockStepModel, LossOut, SerialTasks};
use crate::tasks::{Batch, Episode, Rng};

/// Relative radius of the head-level finite differences (f64).
const HEAD_FD: f64 = 1e-4;

/// ANIL's rule: SGD on the head from the body's support features; the meta-gradient reaches
/// the body through the query features (and, second order, through the support features).
pub struct Anil {
    second_order: bool,
    inner_steps: usize,
    inner_lr: f64,
    head_start: usize,
}

impl Anil {
    /// A learner from the standard initialisation, trained with Adam.
    pub fn learner(ctx: AlgoContext, second_order: bool) -> Learner<Anil> {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let theta = ctx.net.init(&mut rng);
        let rule = Anil {
            second_order,
            inner_steps: ctx.settings.inner_steps,
            inner_lr: ctx.settings.inner_lr,
            head_start: ctx.net.layout.head_start,
        };
        let optimizer = MetaOptimizer::adam(theta.len(), &ctx.settings);
        Learner::new(rule, theta, optimizer, TaskSource::Fresh)
    }
}

/// The features (f64) and their width of each `batches[i]` under the body `bodies[i]`, in one
/// batched call.
pub fn body_features<M: LockStepModel + ?Sized>(
    m: &mut M,
    bodies: &[&M::Params],
    batches: &[&Batch],
) -> Vec<(Vec<f64>, usize)> {
    let mut feats: Vec<(Vec<f64>, usize)> = vec![(vec![], 0); batches.len()];
    let mut keep: Vec<Box<FeatureLoss>> = feats
        .iter_mut()
        .map(|slot| {
            Box::new(move |f: &[f32], d: usize| {
                *slot = (f.iter().map(|&v| v as f64).collect(), d);
                (NO_LOSS, vec![])
            }) as Box<FeatureLoss>
        })
        .collect();
    let tasks = bodies
        .iter()
        .zip(batches)
        .map(|(body, b)| (*body, b.n, &b.x[..]));
    embed_all(m, tasks, &mut keep, false);
    drop(keep);
    feats
}

/// What a loss that only reads the features reports.
const NO_LOSS: LossOut = LossOut {
    loss: 0.0,
    correct: None,
};

/// Head outputs from the head's length and the feature width.
pub(crate) fn outputs(head_len: usize, d: usize) -> usize {
    head_len / (d + 1)
}

/// `steps` SGD steps of `lr` on the head from `head0` on fixed features; the trajectory φ₀ … φ_K.
pub fn head_trajectory(
    f: &[f64],
    d: usize,
    batch: &Batch,
    head0: &[f64],
    steps: usize,
    lr: f64,
) -> Vec<Vec<f64>> {
    let o = outputs(head0.len(), d);
    let mut traj = vec![head0.to_vec()];
    for _ in 0..steps {
        let phi = traj.last().expect("non-empty");
        let g = head::loss(f, batch.n, d, phi, o, &batch.y);
        traj.push(phi.iter().zip(&g.head).map(|(p, g)| p - lr * g).collect());
    }
    traj
}

/// Each task's query loss through its body with head `phis[i]`; the body's gradient and the
/// head's (f64), in one batched call.
fn query_losses<M: LockStepModel + ?Sized>(
    m: &mut M,
    bodies: &[&M::Params],
    phis: &[&Vec<f64>],
    batches: &[&Batch],
) -> Vec<(LossOut, Vec<f32>, Vec<f64>)> {
    let mut g_heads: Vec<Vec<f64>> = vec![vec![]; batches.len()];
    let mut losses: Vec<Box<FeatureLoss>> = g_heads
        .iter_mut()
        .zip(phis.iter().zip(batches))
        .map(|(g_head, (phi, batch))| {
            Box::new(move |f: &[f32], d: usize| {
                let f: Vec<f64> = f.iter().map(|&v| v as f64).collect();
                let g = head::loss(&f, batch.n, d, phi, outputs(phi.len(), d), &batch.y);
                *g_head = g.head;
                (g.out, g.features.iter().map(|&v| v as f32).collect())
            }) as Box<FeatureLoss>
        })
        .collect();
    let tasks = bodies
        .iter()
        .zip(batches)
        .map(|(body, b)| (*body, b.n, &b.x[..]));
    let outs = embed_all(m, tasks, &mut losses, true);
    drop(losses);
    outs.into_iter()
        .zip(g_heads)
        .map(|(o, gh)| {
            let (out, g) = o.into_grad();
            (out, g, gh)
        })
        .collect()
}

/// Walks back through the head's steps of one task (second order): the change of the head
/// vector `v` (in place) and the summed change of the support feature gradients.
fn head_backward(
    fs: &[f64],
    d: usize,
    support: &Batch,
    traj: &[Vec<f64>],
    v: &mut [f64],
    lr: f64,
) -> Vec<f64> {
    let steps = traj.len() - 1;
    let o = outputs(traj[0].len(), d);
    let mut d_feats = vec![0.0f64; fs.len()];
    for k in (0..steps).rev() {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            break;
        }
        let r = HEAD_FD / norm;
        let at = |sign: f64| {
            let phi: Vec<f64> = traj[k]
                .iter()
                .zip(&*v)
                .map(|(p, v)| p + sign * r * v)
                .collect();
            head::loss(fs, support.n, d, &phi, o, &support.y)
        };
        let (plus, minus) = (at(1.0), at(-1.0));
        for (acc, (a, b)) in d_feats
            .iter_mut()
            .zip(plus.features.iter().zip(&minus.features))
        {
            *acc -= lr * (a - b) / (2.0 * r);
        }
        for (vh, (a, b)) in v.iter_mut().zip(plus.head.iter().zip(&minus.head)) {
            *vh -= lr * (a - b) / (2.0 * r);
        }
    }
    d_feats
}

/// The body's gradient of `Σ ⟨features, dfs[i]⟩` for each task, in one batched call.
fn feature_pullback<M: LockStepModel + ?Sized>(
    m: &mut M,
    body: &M::Params,
    batches: &[&Batch],
    dfs: Vec<Vec<f32>>,
) -> Vec<Vec<f32>> {
    let mut losses: Vec<Box<FeatureLoss>> = dfs
        .into_iter()
        .map(|df| Box::new(move |_: &[f32], _: usize| (NO_LOSS, df.clone())) as Box<FeatureLoss>)
        .collect();
    let tasks = batches.iter().map(|b| (body, b.n, &b.x[..]));
    let outs = embed_all(m, tasks, &mut losses, true);
    outs.into_iter().map(|o| o.into_grad().1).collect()
}

/// Every task's meta-gradient (f64, `theta`'s layout) and its query result after adaptation,
/// the tasks in lock-step.
pub fn meta_grads<M: LockStepModel + ?Sized>(
    m: &mut M,
    theta: &[f32],
    head_start: usize,
    episodes: &[&Episode],
    steps: usize,
    lr: f64,
    second_order: bool,
) -> Vec<(Vec<f64>, LossOut)> {
    let body = m.load(theta[..head_start].to_vec());
    let head0: Vec<f64> = theta[head_start..].iter().map(|&v| v as f64).collect();
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let bodies = vec![&body; episodes.len()];
    let feats = body_features(m, &bodies, &supports);
    let trajs: Vec<Vec<Vec<f64>>> = feats
        .iter()
        .zip(&supports)
        .map(|((fs, d), s)| head_trajectory(fs, *d, s, &head0, steps, lr))
        .collect();
    let adapted: Vec<&Vec<f64>> = trajs.iter().map(|t| &t[steps]).collect();
    let query = query_losses(m, &bodies, &adapted, &queries);
    let mut out: Vec<(Vec<f64>, Vec<f64>, LossOut)> = query
        .into_iter()
        .map(|(q, g_body, v)| (g_body.iter().map(|&g| g as f64).collect(), v, q))
        .collect();
    if second_order && steps > 0 {
        let dfs: Vec<Vec<f32>> = out
            .iter_mut()
            .zip(&feats)
            .zip(&trajs)
            .zip(&supports)
            .map(|(((o, (fs, d)), traj), s)| {
                let d_feats = head_backward(fs, *d, s, traj, &mut o.1, lr);
                d_feats.iter().map(|&v| v as f32).collect()
            })
            .collect();
        // The body's share: one backward pass of the accumulated feature-gradient change.
        let g2s = feature_pullback(m, &body, &supports, dfs);
        for (o, g2) in out.iter_mut().zip(g2s) {
            for (m, g) in o.0.iter_mut().zip(&g2) {
                *m += *g as f64;
            }
        }
    }
    out.into_iter()
        .map(|(mut meta, v, q)| {
            meta.extend(v);
            (meta, q)
        })
        .collect()
}

/// One task's meta-gradient (f64, `theta`'s layout) and its query result after adaptation, on
/// one evaluator.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    head_start: usize,
    ep: &Episode,
    steps: usize,
    lr: f64,
    second_order: bool,
) -> (Vec<f64>, LossOut) {
    let mut m = SerialTasks::new(ev);
    meta_grads(&mut m, theta, head_start, &[ep], steps, lr, second_order)
        .pop()
        .expect("one task")
}

impl TaskRule for Anil {
    const UPDATE: &'static str = "ANIL meta-gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        theta: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let episodes: Vec<&Episode> = tasks.iter().map(|(_, ep)| ep).collect();
        let (steps, lr) = (self.inner_steps, self.inner_lr);
        TaskOut::per_episode(
            meta_grads(
                m,
                theta,
                self.head_start,
                &episodes,
                steps,
                lr,
                self.second_order,
            ),
            tasks,
        )
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::HeadSgd {
            head_start: self.head_start,
        }
    }
}
