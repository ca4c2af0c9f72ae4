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
use crate::model::{head, Evaluator, LossOut};
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

/// Features of `batch` under the body (f64) and their width.
pub fn body_features(ev: &mut dyn Evaluator, body: &[f32], batch: &Batch) -> (Vec<f64>, usize) {
    let mut feats = (vec![], 0);
    ev.features(body, batch.n, &batch.x, None, &mut |f, d| {
        feats = (f.iter().map(|&v| v as f64).collect(), d);
        (
            LossOut {
                loss: 0.0,
                correct: None,
            },
            vec![],
        )
    });
    feats
}

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

/// Query loss through the body at `body` with head `phi`; with `grad`, the body's gradient is
/// written into it and the head's returned.
fn query_loss(
    ev: &mut dyn Evaluator,
    body: &[f32],
    phi: &[f64],
    batch: &Batch,
    grad: Option<&mut [f32]>,
) -> (LossOut, Vec<f64>) {
    let mut g_head = vec![];
    let out = ev.features(body, batch.n, &batch.x, grad, &mut |f, d| {
        let f: Vec<f64> = f.iter().map(|&v| v as f64).collect();
        let g = head::loss(&f, batch.n, d, phi, outputs(phi.len(), d), &batch.y);
        g_head = g.head;
        (g.out, g.features.iter().map(|&v| v as f32).collect())
    });
    (out, g_head)
}

/// One task's meta-gradient (f64, `theta`'s layout) and its query result after adaptation.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    theta: &[f32],
    head_start: usize,
    ep: &Episode,
    steps: usize,
    lr: f64,
    second_order: bool,
) -> (Vec<f64>, LossOut) {
    let body = &theta[..head_start];
    let head0: Vec<f64> = theta[head_start..].iter().map(|&v| v as f64).collect();
    let (fs, d) = body_features(ev, body, &ep.support);
    let traj = head_trajectory(&fs, d, &ep.support, &head0, steps, lr);
    let mut g_body = vec![0.0f32; head_start];
    let (q, mut v) = query_loss(ev, body, &traj[steps], &ep.query, Some(&mut g_body));
    let mut meta: Vec<f64> = g_body.iter().map(|&g| g as f64).collect();
    if second_order && steps > 0 {
        let o = outputs(head0.len(), d);
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
                    .zip(&v)
                    .map(|(p, v)| p + sign * r * v)
                    .collect();
                head::loss(&fs, ep.support.n, d, &phi, o, &ep.support.y)
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
        // The body's share: one backward pass of the accumulated feature-gradient change.
        let mut g2 = vec![0.0f32; head_start];
        let df: Vec<f32> = d_feats.iter().map(|&v| v as f32).collect();
        ev.features(
            body,
            ep.support.n,
            &ep.support.x,
            Some(&mut g2),
            &mut |_, _| {
                (
                    LossOut {
                        loss: 0.0,
                        correct: None,
                    },
                    df.clone(),
                )
            },
        );
        for (m, g) in meta.iter_mut().zip(&g2) {
            *m += *g as f64;
        }
    }
    meta.extend(v);
    (meta, q)
}

impl TaskRule for Anil {
    const UPDATE: &'static str = "ANIL meta-gradient";

    fn task(&self, ev: &mut dyn Evaluator, theta: &[f32], _slot: usize, ep: &Episode) -> TaskOut {
        let (update, query) = task_meta_grad(
            ev,
            theta,
            self.head_start,
            ep,
            self.inner_steps,
            self.inner_lr,
            self.second_order,
        );
        TaskOut {
            update,
            query,
            n: ep.query.n,
        }
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::HeadSgd {
            head_start: self.head_start,
        }
    }
}
