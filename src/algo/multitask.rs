//! Multi-task learning with a shared trunk: one trunk, one head per training task, trained
//! jointly on a fixed task set. A new task gets a fresh head, fine-tuned on its support set
//! with the trunk frozen.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;

use super::adam::Adam;
use super::{mean_stats, take_state, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats};
use crate::model::LossOut;
use crate::model::Network;
use crate::pool::{TaskInput, WorkerPool};
use crate::tasks::{Batch, Episode, Rng, Split, Targets, Task, TaskFamily};

pub struct MultiTask {
    net: Arc<Network>,
    tasks: Vec<Task>,
    /// `trunk ++ head₀ ++ head₁ ++ …`
    params: Vec<f32>,
    adam: Adam,
    /// Tasks of the batch being stepped, in order, chosen round-robin.
    pending: Vec<usize>,
    cursor: usize,
}

/// Salt for the fixed task set's RNG, so it differs from the training stream but not across arms.
const TASK_SET_SALT: u64 = 0x6d75_6c74_6974_6173;

impl MultiTask {
    pub fn new(ctx: AlgoContext, tasks: usize, family: &dyn TaskFamily) -> MultiTask {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let one = ctx.net.init(&mut rng);
        let head_start = ctx.net.layout.head_start;
        let mut params = one[..head_start].to_vec();
        for _ in 0..tasks {
            // Every head starts from its own draw of the standard initialisation.
            params.extend_from_slice(&ctx.net.init(&mut rng)[head_start..]);
        }
        let mut task_rng = Rng::seed_from_u64(ctx.seed ^ TASK_SET_SALT);
        let tasks = (0..tasks)
            .map(|_| family.sample_task(Split::Train, &mut task_rng))
            .collect();
        MultiTask {
            adam: Adam::meta(params.len(), &ctx.settings),
            net: ctx.net,
            tasks,
            params,
            pending: vec![],
            cursor: 0,
        }
    }

    fn head_range(&self, task: usize) -> std::ops::Range<usize> {
        let (start, len) = (self.net.layout.head_start, self.net.layout.head_len());
        start + task * len..start + (task + 1) * len
    }

    /// The trunk with task `task`'s head: a full parameter vector for the network.
    fn task_params(&self, task: usize) -> Vec<f32> {
        let mut p = self.params[..self.net.layout.head_start].to_vec();
        p.extend_from_slice(&self.params[self.head_range(task)]);
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

impl MetaAlgorithm for MultiTask {
    fn sample_batch(
        &mut self,
        family: &dyn TaskFamily,
        rng: &mut Rng,
        meta_batch: usize,
    ) -> Vec<Episode> {
        let m = self.tasks.len();
        self.pending = (0..meta_batch.min(m))
            .map(|i| (self.cursor + i) % m)
            .collect();
        self.cursor = (self.cursor + self.pending.len()) % m;
        self.pending
            .iter()
            .map(|&t| family.sample_episode(&self.tasks[t], rng))
            .collect()
    }

    fn step(
        &mut self,
        _iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let items: Vec<TaskInput> = self
            .pending
            .iter()
            .zip(&episodes)
            .map(|(&t, ep)| TaskInput {
                params: self.task_params(t),
                batch: join(&ep.support, &ep.query),
                grad: true,
            })
            .collect();
        let sizes: Vec<usize> = items.iter().map(|t| t.batch.n).collect();
        let results: Vec<(Vec<f32>, LossOut, usize)> = pool
            .evaluate_tasks(items)?
            .into_iter()
            .zip(sizes)
            .map(|(r, n)| (r.grad.expect("gradient asked for"), r.out, n))
            .collect();
        // Gradient of the mean loss over the batch's tasks.
        let scale = 1.0 / results.len() as f32;
        let head_start = self.net.layout.head_start;
        let mut g = vec![0.0f32; self.params.len()];
        for (&task, (tg, _, _)) in self.pending.iter().zip(&results) {
            for (acc, x) in g[..head_start].iter_mut().zip(&tg[..head_start]) {
                *acc += scale * x;
            }
            let range = self.head_range(task);
            for (acc, x) in g[range].iter_mut().zip(&tg[head_start..]) {
                *acc += scale * x;
            }
        }
        if g.iter().any(|x| !x.is_finite()) {
            return Err(AlgoError::NotFinite {
                what: "multi-task gradient",
            });
        }
        self.adam.step(&mut self.params, &g);
        Ok(mean_stats(
            results.iter().map(|(_, q, n)| (q.loss, q.correct, *n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        let head_start = self.net.layout.head_start;
        let mut p = self.params[..head_start].to_vec();
        p.extend(self.net.fresh_head());
        (p, AdaptMode::HeadOnly { head_start })
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        let mut s = vec![
            ("params".into(), self.params.clone()),
            ("cursor".into(), vec![self.cursor as f32]),
        ];
        s.extend(self.adam.state());
        s
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        let n = self.params.len();
        self.params = take_state(state, "params", n)?;
        self.adam.load_state(state)?;
        self.cursor = take_state(state, "cursor", 1)?[0] as usize;
        Ok(())
    }
}
