//! The metric-based arms — Prototypical, Matching and Relation networks — as one arm: they
//! differ only in the loss on the body's embeddings (`model::metric`). The encoder is the model
//! spec without its head; a Relation arm adds its relation module's parameters after the body,
//! a Matching arm its cosine scale.
//! Each episode's support and query examples are embedded in one pass (batch norm sees them as
//! one batch, as in the reference ProtoNets code), and the loss is taken on the query set. The
//! meta-parameters are trained with Adam on the same task stream as every other arm; there is no
//! inner loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;

use super::adam::Adam;
use super::eval::{StepEval, TaskEval};
use super::{
    mean_gradient, mean_stats, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats,
};
use crate::model::metric::{ways, MetricKind};
use crate::model::{Evaluator, LossOut};
use crate::pool::WorkerPool;
use crate::tasks::{Batch, Episode, Rng, Targets};

/// Salt for the relation module's initialisation, so the body's draw matches the other arms'.
const MODULE_SALT: u64 = 0x7265_6c61_7469_6f6e;

pub struct MetricArm {
    kind: MetricKind,
    /// `body ++ module`.
    params: Vec<f32>,
    body_len: usize,
    adam: Adam,
}

impl MetricArm {
    pub fn new(ctx: AlgoContext, kind: MetricKind) -> MetricArm {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let body_len = ctx.net.layout.head_start;
        // The same draw as the other arms, so every arm's body starts from the same weights.
        let mut params = ctx.net.init(&mut rng)[..body_len].to_vec();
        let d = ctx.net.layout.feature_dim();
        params.extend(kind.init_module(d, &mut Rng::seed_from_u64(ctx.seed ^ MODULE_SALT)));
        MetricArm {
            kind,
            adam: Adam::meta(params.len(), &ctx.settings),
            params,
            body_len,
        }
    }
}

fn classes(b: &Batch) -> &[usize] {
    match &b.y {
        Targets::Classes(c) => c,
        // `metalab check` refuses metric arms on regression families.
        Targets::Values(_) => panic!("metric-based arms need classification tasks"),
    }
}

/// The episode's query loss under `kind`, from `params = body ++ module`; when `grad` is given
/// (same length as `params`), the gradient of that loss is written into it.
pub fn episode_loss(
    ev: &mut dyn Evaluator,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    ep: &Episode,
    grad: Option<&mut [f32]>,
) -> LossOut {
    let (support, query) = (classes(&ep.support), classes(&ep.query));
    let x = [ep.support.x.as_slice(), &ep.query.x].concat();
    let module: Vec<f64> = params[body_len..].iter().map(|&v| v as f64).collect();
    let mut g_module = vec![];
    let (g_body, g_out) = match grad {
        Some(g) => {
            let (b, m) = g.split_at_mut(body_len);
            (Some(b), Some(m))
        }
        None => (None, None),
    };
    let out = ev.features(
        &params[..body_len],
        ep.support.n + ep.query.n,
        &x,
        g_body,
        &mut |f, d| {
            let f: Vec<f64> = f.iter().map(|&v| v as f64).collect();
            let m = kind.loss(&f, d, support, query, &module);
            g_module = m.module;
            let out = LossOut {
                loss: m.value as f32,
                correct: Some(m.correct),
            };
            (out, m.features.iter().map(|&g| g as f32).collect())
        },
    );
    if let Some(g) = g_out {
        for (o, v) in g.iter_mut().zip(&g_module) {
            *o = *v as f32;
        }
    }
    out
}

/// One test task: embed, classify the queries. Before the support set is seen the prediction is
/// uniform, so `loss_before` is ln(ways).
pub fn evaluate_task(
    ev: &mut dyn Evaluator,
    kind: MetricKind,
    params: &[f32],
    body_len: usize,
    ep: &Episode,
) -> TaskEval {
    let out = episode_loss(ev, kind, params, body_len, ep, None);
    let (loss, accuracy) = (
        out.loss as f64,
        out.correct.map(|c| c as f64 / ep.query.n as f64),
    );
    TaskEval {
        loss_before: (ways(classes(&ep.support)) as f64).ln(),
        loss,
        accuracy,
        // No steps: the one point is the result itself.
        per_step: vec![StepEval { loss, accuracy }],
    }
}

impl MetaAlgorithm for MetricArm {
    fn step(
        &mut self,
        _iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let params = Arc::new(self.params.clone());
        let (kind, body_len) = (self.kind, self.body_len);
        let results = pool.map(episodes, move |ev, ep: Episode| {
            let mut g = vec![0.0f32; params.len()];
            let out = episode_loss(ev, kind, &params, body_len, &ep, Some(&mut g));
            (g, out, ep.query.n)
        })?;
        let grad = mean_gradient(
            results.iter().map(|(g, _, _)| g.iter().map(|&x| x as f64)),
            self.params.len(),
            "metric loss's gradient",
        )?;
        self.adam.step(&mut self.params, &grad);
        Ok(mean_stats(
            results.iter().map(|(_, q, n)| (q.loss, q.correct, *n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        (
            self.params.clone(),
            AdaptMode::Metric {
                kind: self.kind,
                body_len: self.body_len,
            },
        )
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        self.adam.state_with(&self.params)
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.adam.load_with(&mut self.params, state)
    }
}
