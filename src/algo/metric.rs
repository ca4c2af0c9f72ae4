//! The metric-based arms — Prototypical, Matching and Relation networks — as one arm: they
//! differ only in the loss on the body's embeddings (`model::metric`). The encoder is the model
//! spec without its head; a Relation arm adds its relation module's parameters after the body,
//! a Matching arm its cosine scale.
//! Each episode's support and query examples are embedded in one pass (batch norm sees them as
//! one batch, as in the reference ProtoNets code), and the loss is taken on the query set. The
//! meta-parameters are trained with Adam on the same task stream as every other arm; there is no
//! inner loop.

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::lockstep::embed_all;
use crate::model::metric::MetricKind;
use crate::model::{Evaluator, FeatureLoss, LockStepModel, LossOut, SerialTasks};
use crate::tasks::{Batch, Episode, Rng, Targets};

/// Salt for the relation module's initialisation, so the body's draw matches the other arms'.
const MODULE_SALT: u64 = 0x7265_6c61_7469_6f6e;

/// A metric arm's rule, on meta-parameters `body ++ module`: the query loss of one episode.
pub struct MetricArm {
    kind: MetricKind,
    body_len: usize,
}

impl MetricArm {
    /// A learner from the standard initialisation's body (and a relation module drawn apart),
    /// trained with Adam.
    pub fn learner(ctx: AlgoContext, kind: MetricKind) -> Learner<MetricArm> {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let body_len = ctx.net.layout.head_start;
        // The same draw as the other arms, so every arm's body starts from the same weights.
        let mut params = ctx.net.init(&mut rng)[..body_len].to_vec();
        let d = ctx.net.layout.feature_dim();
        params.extend(kind.init_module(d, &mut Rng::seed_from_u64(ctx.seed ^ MODULE_SALT)));
        let optimizer = MetaOptimizer::adam(params.len(), &ctx.settings);
        Learner::new(
            MetricArm { kind, body_len },
            params,
            optimizer,
            TaskSource::Fresh,
        )
    }
}

/// The class labels of a batch.
pub(crate) fn classes(b: &Batch) -> &[usize] {
    match &b.y {
        Targets::Classes(c) => c,
        // `metalab check` refuses metric arms on regression families.
        Targets::Values(_) => panic!("metric-based arms need classification tasks"),
    }
}

/// Every episode's query loss under `kind`, from `params = body ++ module`, the episodes'
/// embeddings in one batched call; with `grad`, each loss's gradient (same length as
/// `params`) too.
pub fn episode_losses<M: LockStepModel + ?Sized>(
    m: &mut M,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    episodes: &[&Episode],
    grad: bool,
) -> Vec<(LossOut, Option<Vec<f32>>)> {
    let body = m.load(params[..body_len].to_vec());
    let module: Vec<f64> = params[body_len..].iter().map(|&v| v as f64).collect();
    let xs: Vec<Vec<f32>> = episodes
        .iter()
        .map(|ep| [ep.support.x.as_slice(), &ep.query.x].concat())
        .collect();
    let mut g_modules: Vec<Vec<f64>> = vec![vec![]; episodes.len()];
    let mut losses: Vec<Box<FeatureLoss>> = episodes
        .iter()
        .zip(g_modules.iter_mut())
        .map(|(ep, g_module)| {
            let (support, query) = (classes(&ep.support), classes(&ep.query));
            let module = &module;
            Box::new(move |f: &[f32], d: usize| {
                let f: Vec<f64> = f.iter().map(|&v| v as f64).collect();
                let m = kind.loss(&f, d, support, query, module);
                *g_module = m.module;
                let out = LossOut {
                    loss: m.value as f32,
                    correct: Some(m.correct),
                };
                (out, m.features.iter().map(|&g| g as f32).collect())
            }) as Box<FeatureLoss>
        })
        .collect();
    let tasks = episodes
        .iter()
        .zip(&xs)
        .map(|(ep, x)| (&body, ep.support.n + ep.query.n, &x[..]));
    let outs = embed_all(m, tasks, &mut losses, grad);
    drop(losses);
    outs.into_iter()
        .zip(g_modules)
        .map(|(o, g_module)| {
            let g = o.grad.map(|mut g| {
                g.extend(g_module.iter().map(|&v| v as f32));
                g
            });
            (o.out, g)
        })
        .collect()
}

/// The episode's query loss under `kind`, from `params = body ++ module`, on one evaluator;
/// when `grad` is given (same length as `params`), the gradient of that loss is written into it.
pub fn episode_loss(
    ev: &mut dyn Evaluator,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    ep: &Episode,
    grad: Option<&mut [f32]>,
) -> LossOut {
    let mut m = SerialTasks::new(ev);
    let (out, g) = episode_losses(&mut m, kind, params, body_len, &[ep], grad.is_some())
        .pop()
        .expect("one episode");
    if let (Some(dst), Some(g)) = (grad, g) {
        dst.copy_from_slice(&g);
    }
    out
}

impl TaskRule for MetricArm {
    const UPDATE: &'static str = "metric loss's gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        params: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let episodes: Vec<&Episode> = tasks.iter().map(|(_, ep)| ep).collect();
        episode_losses(m, self.kind, params, self.body_len, &episodes, true)
            .into_iter()
            .zip(&episodes)
            .map(|((query, g), ep)| TaskOut {
                update: g
                    .expect("asked for the gradient")
                    .iter()
                    .map(|&x| x as f64)
                    .collect(),
                query,
                n: ep.query.n,
            })
            .collect()
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::Metric {
            kind: self.kind,
            body_len: self.body_len,
        }
    }
}
