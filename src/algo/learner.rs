//! The meta-learner skeleton, written once: it owns the meta-parameters, the meta-optimizer (Adam
//! on the arm's meta-lr schedule, or none), which training tasks a meta-iteration sees, the
//! checkpoint state, and the execution strategy (the meta-batch's tasks on the worker pool, their
//! results combined in task order, one optimizer step, the mean query statistics).
//!
//! An algorithm is a [`TaskRule`]: what one task computes on a worker (how it adapts, what it
//! contributes to the update) and how a new task adapts at test time. This is burn's split of
//! `TrainStep` from the `Learner` that owns the loop; adding an algorithm never re-types it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::adam::Adam;
use super::contract::{
    mean_gradient, mean_stats, take_state, AdaptMode, AlgoError, MetaAlgorithm, StepStats,
};
use crate::experiment::ArmSettings;
use crate::model::{Evaluator, LossOut};
use crate::pool::WorkerPool;
use crate::tasks::{Episode, Rng, Split, Task, TaskFamily};

/// One task's share of a meta-iteration, computed on a worker.
pub struct TaskOut {
    /// What the task contributes to the update, in the layout the rule's
    /// [`TaskRule::combine`] reads (by default the parameters'): a meta-gradient, or for Reptile
    /// the move `θ'ᵢ − θ`. f64, so the sum over tasks does not lose the small terms.
    pub update: Vec<f64>,
    /// The query result after adaptation.
    pub query: LossOut,
    /// Examples behind `query`, weighting its accuracy in the step's mean.
    pub n: usize,
}

/// An algorithm's per-task rule. Shared read-only with the workers, so it holds settings, not
/// state: the [`Learner`] owns everything that changes.
pub trait TaskRule: Send + Sync + 'static {
    /// Names the combined update in a not-finite error: "meta-gradient", "Reptile update", …
    const UPDATE: &'static str;

    /// Task `ep` at the meta-parameters `params`. `slot` is the task's index in a fixed task
    /// set ([`TaskSource::Fixed`]), else its position in the meta-batch.
    fn task(&self, ev: &mut dyn Evaluator, params: &[f32], slot: usize, ep: &Episode) -> TaskOut;

    /// The meta-batch's results, in task order, as the vector the meta-optimizer takes (a
    /// gradient to descend, or with [`MetaOptimizer::Direct`] the step itself). By default the
    /// mean of the tasks' updates, summed in f64 in task order so it does not depend on which
    /// worker ran which task.
    fn combine(
        &self,
        iteration: usize,
        params: &[f32],
        slots: &[usize],
        outs: &[TaskOut],
    ) -> Result<Vec<f32>, AlgoError> {
        let _ = (iteration, slots);
        mean_gradient(
            outs.iter().map(|o| o.update.iter().copied()),
            params.len(),
            Self::UPDATE,
        )
    }

    /// How a new task adapts at test time.
    fn adapt_mode(&self) -> AdaptMode;

    /// What a new task starts from: by default the meta-parameters themselves.
    fn adapt_start(&self, params: &[f32]) -> Vec<f32> {
        params.to_vec()
    }
}

/// What moves the meta-parameters once the tasks are combined.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaOptimizer {
    /// Adam on the arm's `meta_lr` and schedule, descending the combined gradient.
    Adam(Adam),
    /// The combined vector is the step, subtracted as it is (Reptile's interpolation).
    Direct,
}

impl MetaOptimizer {
    /// Adam with the arm's meta learning rate and schedule, for `len` parameters.
    pub fn adam(len: usize, settings: &ArmSettings) -> MetaOptimizer {
        MetaOptimizer::Adam(Adam::meta(len, settings))
    }

    fn step(&mut self, params: &mut [f32], update: &[f32]) {
        match self {
            MetaOptimizer::Adam(adam) => adam.step(params, update),
            MetaOptimizer::Direct => {
                for (p, u) in params.iter_mut().zip(update) {
                    *p -= u;
                }
            }
        }
    }
}

/// Which training tasks a meta-iteration sees.
pub enum TaskSource {
    /// `meta_batch` fresh tasks each time, so arms of one experiment that share a seed see the
    /// same task stream.
    Fresh,
    /// A fixed task set visited round-robin (multi-task learning's); the position is
    /// checkpointed as `cursor`.
    Fixed { tasks: Vec<Task>, cursor: usize },
}

impl TaskSource {
    /// `count` tasks of a fixed set drawn once from the training split with `rng`, or the
    /// family's own fixed tasks in order (cycled to `count`) when it names them.
    pub fn fixed(family: &dyn TaskFamily, count: usize, rng: &mut Rng) -> TaskSource {
        let tasks = match family.fixed_tasks() {
            Some(named) => named.iter().cycle().take(count).cloned().collect(),
            None => (0..count)
                .map(|_| family.sample_task(Split::Train, rng))
                .collect(),
        };
        TaskSource::Fixed { tasks, cursor: 0 }
    }
}

/// The one implementation of [`MetaAlgorithm`]: a rule, and what every rule needs around it.
pub struct Learner<R: TaskRule> {
    rule: Arc<R>,
    params: Vec<f32>,
    optimizer: MetaOptimizer,
    source: TaskSource,
    /// Slots of the batch last sampled, in order (see [`TaskRule::task`]).
    slots: Vec<usize>,
}

impl<R: TaskRule> Learner<R> {
    pub fn new(
        rule: R,
        params: Vec<f32>,
        optimizer: MetaOptimizer,
        source: TaskSource,
    ) -> Learner<R> {
        Learner {
            rule: Arc::new(rule),
            params,
            optimizer,
            source,
            slots: vec![],
        }
    }
}

impl<R: TaskRule> MetaAlgorithm for Learner<R> {
    fn sample_batch(
        &mut self,
        family: &dyn TaskFamily,
        rng: &mut Rng,
        meta_batch: usize,
    ) -> Vec<Episode> {
        match &mut self.source {
            TaskSource::Fresh => {
                self.slots = (0..meta_batch).collect();
                (0..meta_batch)
                    .map(|_| {
                        let task = family.sample_task(Split::Train, rng);
                        family.sample_episode(&task, rng)
                    })
                    .collect()
            }
            TaskSource::Fixed { tasks, cursor } => {
                let m = tasks.len();
                self.slots = (0..meta_batch.min(m)).map(|i| (*cursor + i) % m).collect();
                *cursor = (*cursor + self.slots.len()) % m;
                self.slots
                    .iter()
                    .map(|&t| family.sample_episode(&tasks[t], rng))
                    .collect()
            }
        }
    }

    fn step(
        &mut self,
        iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError> {
        let params = Arc::new(self.params.clone());
        let rule = Arc::clone(&self.rule);
        // Episodes handed in without a sample_batch (tests) take their batch positions.
        let slots: Vec<usize> = match self.source {
            TaskSource::Fixed { .. } => self.slots.clone(),
            TaskSource::Fresh => (0..episodes.len()).collect(),
        };
        let jobs: Vec<(usize, Episode)> = slots.iter().copied().zip(episodes).collect();
        let outs = pool.map(jobs, move |ev, (slot, ep): (usize, Episode)| {
            rule.task(ev, &params, slot, &ep)
        })?;
        let update = self.rule.combine(iteration, &self.params, &slots, &outs)?;
        self.optimizer.step(&mut self.params, &update);
        Ok(mean_stats(
            outs.iter().map(|o| (o.query.loss, o.query.correct, o.n)),
        ))
    }

    fn adapt_start(&self) -> (Vec<f32>, AdaptMode) {
        (self.rule.adapt_start(&self.params), self.rule.adapt_mode())
    }

    /// `params`, then the task set's `cursor` when there is one, then Adam's moments.
    fn state(&self) -> Vec<(String, Vec<f32>)> {
        let mut s = vec![("params".into(), self.params.clone())];
        if let TaskSource::Fixed { cursor, .. } = self.source {
            s.push(("cursor".into(), vec![cursor as f32]));
        }
        if let MetaOptimizer::Adam(adam) = &self.optimizer {
            s.extend(adam.state());
        }
        s
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.params = take_state(state, "params", self.params.len())?;
        if let MetaOptimizer::Adam(adam) = &mut self.optimizer {
            adam.load_state(state)?;
        }
        if let TaskSource::Fixed { cursor, .. } = &mut self.source {
            *cursor = take_state(state, "cursor", 1)?[0] as usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule with no work: the state tests never step.
    struct Idle;

    impl TaskRule for Idle {
        const UPDATE: &'static str = "nothing";

        fn task(&self, _: &mut dyn Evaluator, _: &[f32], _: usize, _: &Episode) -> TaskOut {
            unreachable!("the state tests never step")
        }

        fn adapt_mode(&self) -> AdaptMode {
            AdaptMode::All
        }
    }

    fn names(state: &[(String, Vec<f32>)]) -> Vec<&str> {
        state.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn checkpoint_state_keeps_the_names_and_order_older_checkpoints_have() {
        let mut adam = Adam::new(2, 0.1);
        adam.step(&mut [0.0, 0.0], &[1.0, -1.0]);
        let fixed = Learner::new(
            Idle,
            vec![1.0, 2.0],
            MetaOptimizer::Adam(adam),
            TaskSource::Fixed {
                tasks: vec![],
                cursor: 3,
            },
        );
        let s = fixed.state();
        assert_eq!(
            names(&s),
            ["params", "cursor", "adam.m", "adam.v", "adam.t"]
        );
        let direct = Learner::new(Idle, vec![1.0], MetaOptimizer::Direct, TaskSource::Fresh);
        assert_eq!(names(&direct.state()), ["params"]);

        let mut fresh = Learner::new(
            Idle,
            vec![0.0, 0.0],
            MetaOptimizer::Adam(Adam::new(2, 0.1)),
            TaskSource::Fixed {
                tasks: vec![],
                cursor: 0,
            },
        );
        fresh.load_state(&s.iter().cloned().collect()).unwrap();
        assert_eq!(fresh.state(), s);
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let mut l = Learner::new(
            Idle,
            vec![0.0],
            MetaOptimizer::Adam(Adam::new(1, 0.1)),
            TaskSource::Fresh,
        );
        let only_params = [("params".to_string(), vec![1.0])].into_iter().collect();
        assert_eq!(
            l.load_state(&only_params),
            Err(AlgoError::MissingState("adam.m".into()))
        );
    }
}
