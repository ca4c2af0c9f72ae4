//! Multi-task learning with a shared trunk: one trunk, one head per training task, trained
//! jointly on a fixed task set. A new task gets a fresh head, fine-tuned on its support set
//! with the trunk frozen.

use std::sync::Arc;

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext, AlgoError};
use super::learner::{Learner, MetaOptimizer, TaskOut, TaskRule, TaskSource};
use crate::model::{Evaluator, LockStepModel, Network};
use crate::tasks::{Batch, Episode, Rng, Targets, TaskFamily};

/// The multi-task rule, on meta-parameters `trunk ++ head₀ ++ head₁ ++ …`, one head per task of
/// the fixed set ([`TaskSource::Fixed`]; a task's slot is its index there).
pub struct MultiTask {
    net: Arc<Network>,
}

/// Salt for the fixed task set's RNG, so it differs from the training stream but not across arms.
const TASK_SET_SALT: u64 = 0x6d75_6c74_6974_6173;

impl MultiTask {
    /// A learner with one trunk and `tasks` heads, each from its own draw of the standard
    /// initialisation, over a fixed set of `tasks` training tasks, trained with Adam.
    pub fn learner(ctx: AlgoContext, tasks: usize, family: &dyn TaskFamily) -> Learner<MultiTask> {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let one = ctx.net.init(&mut rng);
        let head_start = ctx.net.layout.head_start;
        let mut params = one[..head_start].to_vec();
        for _ in 0..tasks {
            // Every head starts from its own draw of the standard initialisation.
            params.extend_from_slice(&ctx.net.init(&mut rng)[head_start..]);
        }
        let mut task_rng = Rng::seed_from_u64(ctx.seed ^ TASK_SET_SALT);
        let source = TaskSource::fixed(family, tasks, &mut task_rng);
        let optimizer = MetaOptimizer::adam(params.len(), &ctx.settings);
        Learner::new(MultiTask { net: ctx.net }, params, optimizer, source)
    }

    fn head_range(&self, task: usize) -> std::ops::Range<usize> {
        let (start, len) = (self.net.layout.head_start, self.net.layout.head_len());
        start + task * len..start + (task + 1) * len
    }

    /// The trunk with task `task`'s head: a full parameter vector for the network.
    fn task_params(&self, params: &[f32], task: usize) -> Vec<f32> {
        let mut p = params[..self.net.layout.head_start].to_vec();
        p.extend_from_slice(&params[self.head_range(task)]);
        p
    }
}

/// Support and query together: in multi-task training every example of a task is training data.
pub fn join(a: &Batch, b: &Batch) -> Batch {
    let y = match (&a.y, &b.y) {
        (Targets::Values(x), Targets::Values(y)) => Targets::Values([x.as_slice(), y].concat()),
        (Targets::Classes(x), Targets::Classes(y)) => Targets::Classes([x.as_slice(), y].concat()),
        _ => panic!("joining batches of different target kinds"),
    };
    Batch {
        n: a.n + b.n,
        x: [a.x.as_slice(), &b.x].concat(),
        y,
    }
}

impl TaskRule for MultiTask {
    const UPDATE: &'static str = "multi-task gradient";

    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        params: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        let ps: Vec<M::Params> = tasks
            .iter()
            .map(|&(slot, _)| m.load(self.task_params(params, slot)))
            .collect();
        let batches: Vec<Batch> = tasks
            .iter()
            .map(|(_, ep)| join(&ep.support, &ep.query))
            .collect();
        let refs: Vec<&M::Params> = ps.iter().collect();
        let on: Vec<&Batch> = batches.iter().collect();
        m.gradients(&refs, &on)
            .into_iter()
            .zip(&batches)
            .map(|((query, g), batch)| TaskOut {
                update: g.iter().map(|&x| x as f64).collect(),
                query,
                n: batch.n,
            })
            .collect()
    }

    /// The gradient of the mean loss over the batch's tasks: each task's trunk gradient on the
    /// trunk, its head gradient on its own head; summed in f32, as the gradients are.
    fn combine(
        &self,
        _iteration: usize,
        params: &[f32],
        slots: &[usize],
        outs: &[TaskOut],
    ) -> Result<Vec<f32>, AlgoError> {
        let scale = 1.0 / outs.len() as f32;
        let head_start = self.net.layout.head_start;
        let mut g = vec![0.0f32; params.len()];
        for (&task, out) in slots.iter().zip(outs) {
            // The f64 values were f32 to begin with: the round trip is exact.
            let tg = &out.update;
            for (acc, x) in g[..head_start].iter_mut().zip(&tg[..head_start]) {
                *acc += scale * *x as f32;
            }
            for (acc, x) in g[self.head_range(task)].iter_mut().zip(&tg[head_start..]) {
                *acc += scale * *x as f32;
            }
        }
        if g.iter().any(|x| !x.is_finite()) {
            return Err(AlgoError::NotFinite { what: Self::UPDATE });
        }
        Ok(g)
    }

    fn adapt_mode(&self) -> AdaptMode {
        AdaptMode::HeadOnly {
            head_start: self.net.layout.head_start,
        }
    }

    /// The trunk is shared; each task's head is its own.
    fn shared_len(&self, _update_len: usize) -> usize {
        self.net.layout.head_start
    }

    fn own_params(&self, params: &[f32], slot: usize) -> Vec<f32> {
        self.task_params(params, slot)
    }

    /// Every example of a training task is training data, as in [`TaskRule::tasks`].
    fn own_loss(&self, ev: &mut dyn Evaluator, p: &[f32], ep: &Episode) -> f64 {
        ev.evaluate(p, &join(&ep.support, &ep.query), None).loss as f64
    }

    /// The trunk with a fresh zero head.
    fn adapt_start(&self, params: &[f32]) -> Vec<f32> {
        let mut p = params[..self.net.layout.head_start].to_vec();
        p.extend(self.net.fresh_head());
        p
    }
}
