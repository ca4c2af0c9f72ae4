//! CAVIA (Zintgraf, Shiarlis, Kurin, Hofmann & Whiteson 2019): fast context adaptation.
//!
//! The parameters split in two. A task context φ (`width` values concatenated to an MLP's
//! input, or driving FiLM after a conv block: see `model::context`) starts at zero for every
//! task and alone takes the inner SGD steps `φ ← φ − α·∇_φ L_s`; the network's own parameters
//! θ (with the context's rows: the first weight's, or the FiLM layer's) are shared across tasks
//! and meta-trained by the learner's Adam.
//!
//! The meta-gradient is exact second order, as the paper's: from `v = ∂L_q/∂φ_K` and
//! `g = ∂L_q/∂θ` at the adapted context, walking back through the steps,
//! `g ← g − α·H_θφ(φ_k)·v` and `v ← v − α·H_φφ(φ_k)·v`. Both blocks are one Hessian-vector
//! product: the plain network's along the direction the context moves it
//! (`TaskContext::push`), by central differences of gradients with the kink pattern frozen
//! (`model::hvps`), pulled back through the context's fold (`TaskContext::pull_hvp`): one
//! product, two gradients, per task and step, however wide the context.

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use super::maml::Order;
use crate::model::context::TaskContext;
use crate::model::hvps;
use crate::model::{Evaluator, LockStepModel, LossOut, SerialTasks};
use crate::pool::{LockStepWork, PoolError, WorkerPool};
use crate::tasks::{Batch, Episode, Rng};

/// CAVIA's rule, on the shared parameters (the plain network's, then the context rows).
pub struct Cavia {
    context: TaskContext,
    /// The context's inner learning rate, in training and at test time.
    lr: f64,
    inner_steps: usize,
    order: Order,
}

impl Cavia {
    /// A learner from the standard initialisation (the plain network's parameters are drawn
    /// first, as every arm's with the seed, then the context rows), trained with Adam.
    pub fn learner(
        ctx: AlgoContext,
        width: usize,
        film_block: Option<usize>,
        lr: f64,
        order: Order,
    ) -> Learner<Cavia> {
        let context = TaskContext::new(&ctx.net, width, film_block)
            .expect("validation refuses a Cavia arm whose context the model cannot take");
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let mut params = ctx.net.init(&mut rng);
        params.extend(context.init_rows(&mut rng));
        let rule = Cavia {
            context,
            lr,
            inner_steps: ctx.settings.inner_steps,
            order,
        };
        let optimizer = MetaOptimizer::adam(params.len(), &ctx.settings);
        Learner::new(rule, params, optimizer, TaskSource::Fresh)
    }
}

/// One task's adaptation: the context and the plain network's parameters after each step
/// 0..=K, and the plain network's support gradient (f64) at each step before the last.
pub struct ContextPath<P> {
    pub contexts: Vec<Vec<f32>>,
    pub bases: Vec<P>,
    pub grads: Vec<Vec<f64>>,
}

/// For each task, `steps` SGD steps of rate `lr` on its context from zero on `supports[i]`,
/// the shared parameters fixed; the tasks a step at a time, one batched call per step.
pub fn adapt<M: LockStepModel + ?Sized>(
    m: &mut M,
    shared: &[f32],
    context: TaskContext,
    supports: &[&Batch],
    steps: usize,
    lr: f64,
) -> Vec<ContextPath<M::Params>> {
    let zero = vec![0.0f32; context.width()];
    let mut paths: Vec<ContextPath<M::Params>> = supports
        .iter()
        .map(|_| ContextPath {
            contexts: vec![zero.clone()],
            bases: vec![m.load(context.fold(shared, &zero))],
            grads: Vec::with_capacity(steps),
        })
        .collect();
    for k in 0..steps {
        let at: Vec<&M::Params> = paths.iter().map(|p| &p.bases[k]).collect();
        let gs = m.gradients(&at, supports);
        for (p, (_, g)) in paths.iter_mut().zip(gs) {
            let g: Vec<f64> = g.iter().map(|&v| v as f64).collect();
            let next: Vec<f32> = p.contexts[k]
                .iter()
                .zip(context.context_grad(shared, &g))
                .map(|(&c, d)| (c as f64 - lr * d) as f32)
                .collect();
            p.bases.push(m.load(context.fold(shared, &next)));
            p.contexts.push(next);
            p.grads.push(g);
        }
    }
    paths
}

/// Every task's meta-gradient with respect to the shared parameters (f64) and its query
/// result after adaptation, the tasks in lock-step.
pub fn meta_grads<M: LockStepModel + ?Sized>(
    m: &mut M,
    shared: &[f32],
    context: TaskContext,
    episodes: &[&Episode],
    steps: usize,
    lr: f64,
    order: Order,
) -> Vec<(Vec<f64>, LossOut)> {
    let supports: Vec<&Batch> = episodes.iter().map(|e| &e.support).collect();
    let queries: Vec<&Batch> = episodes.iter().map(|e| &e.query).collect();
    let paths = adapt(m, shared, context, &supports, steps, lr);
    let adapted: Vec<&M::Params> = paths.iter().map(|p| &p.bases[steps]).collect();
    let query = m.gradients(&adapted, &queries);
    // Per task: ∂/∂shared so far, and v, the query loss's gradient in the context at step k.
    let mut back: Vec<(Vec<f64>, Vec<f64>)> = query
        .iter()
        .zip(&paths)
        .map(|((_, g), p)| {
            let g: Vec<f64> = g.iter().map(|&v| v as f64).collect();
            context.unfold(shared, &p.contexts[steps], &g)
        })
        .collect();
    if let Order::Second { hvp_eps } = order {
        for k in (0..steps).rev() {
            let at: Vec<&M::Params> = paths.iter().map(|p| &p.bases[k]).collect();
            let dirs: Vec<Vec<f64>> = back.iter().map(|(_, v)| context.push(shared, v)).collect();
            let hvs = hvps(m, &at, &supports, &dirs, hvp_eps);
            for (((d_shared, v), hv), p) in back.iter_mut().zip(&hvs).zip(&paths) {
                let (h_shared, h_context) =
                    context.pull_hvp(shared, &p.contexts[k], v, &p.grads[k], hv);
                for (d, h) in d_shared.iter_mut().zip(&h_shared) {
                    *d -= lr * h;
                }
                for (v, h) in v.iter_mut().zip(&h_context) {
                    *v -= lr * h;
                }
            }
        }
    }
    back.into_iter()
        .zip(query)
        .map(|((d_shared, _), (q, _))| (d_shared, q))
        .collect()
}

/// One task's meta-gradient (f64) and its query result after adaptation, on one evaluator.
pub fn task_meta_grad(
    ev: &mut dyn Evaluator,
    shared: &[f32],
    context: TaskContext,
    ep: &Episode,
    steps: usize,
    lr: f64,
    order: Order,
) -> (Vec<f64>, LossOut) {
    meta_grads(
        &mut SerialTasks::new(ev),
        shared,
        context,
        &[ep],
        steps,
        lr,
        order,
    )
    .pop()
    .expect("one task")
}

/// One task's contexts φ₀ … φ_K on its support set, on one evaluator.
pub fn contexts(
    ev: &mut dyn Evaluator,
    shared: &[f32],
    context: TaskContext,
    support: &Batch,
    steps: usize,
    lr: f64,
) -> Vec<Vec<f32>> {
    let mut m = SerialTasks::new(ev);
    adapt(&mut m, shared, context, &[support], steps, lr)
        .pop()
        .expect("one task")
        .contexts
}

/// Every episode's adapted context (its task embedding) after `steps` steps on its support
/// set, the episodes in lock-step on the pool's workers, in order.
pub fn embeddings(
    pool: &WorkerPool,
    shared: Vec<f32>,
    context: TaskContext,
    lr: f64,
    episodes: Vec<Episode>,
    steps: usize,
) -> Result<Vec<Vec<f32>>, PoolError> {
    let work = Embed {
        shared,
        context,
        lr,
        steps,
    };
    pool.lockstep(episodes, work)
}

/// [`embeddings`]' work on one chunk of the episodes.
struct Embed {
    shared: Vec<f32>,
    context: TaskContext,
    lr: f64,
    steps: usize,
}

impl LockStepWork for Embed {
    type Item = Episode;
    type Out = Vec<f32>;
    fn run<M: LockStepModel + ?Sized>(&self, m: &mut M, chunk: Vec<Episode>) -> Vec<Vec<f32>> {
        let supports: Vec<&Batch> = chunk.iter().map(|e| &e.support).collect();
        adapt(
            m,
            &self.shared,
            self.context,
            &supports,
            self.steps,
            self.lr,
        )
        .into_iter()
        .map(|mut p| p.contexts.pop().expect("the start at least"))
        .collect()
    }
}

impl TaskRule for Cavia {
    const UPDATE: &'static str = "CAVIA meta-gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        shared: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let episodes: Vec<&Episode> = tasks.iter().map(|(_, ep)| ep).collect();
        TaskOut::per_episode(
            meta_grads(
                m,
                shared,
                self.context,
                &episodes,
                self.inner_steps,
                self.lr,
                self.order,
            ),
            tasks,
        )
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::Context {
            context: self.context,
            lr: self.lr,
        }
    }

    /// The query loss before adaptation: the plain network with a zero context.
    fn own_loss(&self, ev: &mut dyn Evaluator, p: &[f32], ep: &Episode) -> f64 {
        let zero = vec![0.0f32; self.context.width()];
        ev.evaluate(&self.context.fold(p, &zero), &ep.query, None)
            .loss as f64
    }
}
