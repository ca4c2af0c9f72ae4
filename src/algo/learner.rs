//! The meta-learner skeleton, written once: it owns the meta-parameters, the meta-optimizer (Adam
//! on the arm's meta-lr schedule, or none), which training tasks a meta-iteration sees, the
//! checkpoint state, and the execution strategy (the meta-batch cut into one chunk per worker,
//! each chunk run in lock-step through `model::lockstep`, the results combined in task order,
//! one optimizer step, the mean query statistics).
//!
//! An algorithm is a [`TaskRule`]: what the tasks of a meta-batch compute, a step at a time for
//! all of them (how they adapt, what each contributes to the update), and how a new task adapts
//! at test time. This is burn's split of
//! `TrainStep` from the `Learner` that owns the loop; adding an algorithm never re-types it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rand::SeedableRng;

use super::adam::Adam;
use super::affinity::{AffinityRecord, AffinityTracker};
use super::aggregate;
use super::contract::{
    mean_gradient, mean_stats, take_state, AdaptMode, AlgoError, LearnerOptions, MetaAlgorithm,
    StepStats, TaskScores,
};
use crate::experiment::Aggregate;
use crate::experiment::ArmSettings;
use crate::model::{Evaluator, LockStepModel, LossOut};
use crate::pool::{LockStepWork, WorkerPool};
use crate::tasks::{Episode, Rng, Split, Task, TaskFamily};

/// One task's share of a meta-iteration.
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

impl TaskOut {
    /// One per episode, in order, from each task's `(update, query result)`.
    pub fn per_episode(
        results: Vec<(Vec<f64>, LossOut)>,
        episodes: &[(usize, Episode)],
    ) -> Vec<TaskOut> {
        results
            .into_iter()
            .zip(episodes)
            .map(|((update, query), (_, ep))| TaskOut {
                update,
                query,
                n: ep.query.n,
            })
            .collect()
    }
}

/// Parameter ranges to copy when a rule regroups: each `(from, to)` copies `from` to the
/// range of the same length starting at `to`.
pub type ParamMoves = Vec<(Range<usize>, usize)>;

/// An algorithm's per-task rule. Shared read-only with the workers, so it holds settings, not
/// state: the [`Learner`] owns everything that changes.
pub trait TaskRule: Send + Sync + 'static {
    /// Names the combined update in a not-finite error: "meta-gradient", "Reptile update", …
    const UPDATE: &'static str;

    /// Every task of `tasks` at the meta-parameters `params`, in lock-step on `m` (one batched
    /// call per inner step; see `model::lockstep`), one result per task in order. A task's
    /// slot is its index in a fixed task set ([`TaskSource::Fixed`]), else its position in the
    /// meta-batch. `tasks` may be the whole meta-batch or one worker's chunk of it: a task's
    /// result must not depend on the other tasks.
    fn tasks<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        params: &[f32],
        tasks: &[(usize, Episode)],
    ) -> Vec<TaskOut>;

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

    /// How many leading entries of a task's update all tasks share (PCGrad and the task
    /// affinities act on these): by default all.
    fn shared_len(&self, update_len: usize) -> usize {
        update_len
    }

    /// +1 when a task's update is a gradient to descend, −1 when it is the move itself
    /// (Reptile): the lookahead affinity steps along `−sign·update`.
    const DESCENT_SIGN: f64 = 1.0;

    /// Task `slot`'s own parameters within the meta-parameters, laid out as its update is.
    fn own_params(&self, params: &[f32], _slot: usize) -> Vec<f32> {
        params.to_vec()
    }

    /// Task `ep`'s own loss at its parameters `p` (the lookahead affinity's `L_j`, and the
    /// per-task losses of [`MetaAlgorithm::task_losses`]): by default on the query set, before
    /// any adaptation.
    fn own_loss(&self, ev: &mut dyn Evaluator, p: &[f32], ep: &Episode) -> f64 {
        ev.evaluate(p, &ep.query, None).loss as f64
    }

    /// For a rule whose settings change once during training (the multi-task arm's task
    /// groups found from the affinities): called before iteration `iteration`'s step with the
    /// affinities measured so far; the rule to go on with, and the parameter ranges to copy
    /// (`from`, to the index `to`), applied to the parameters and the optimizer's moments
    /// alike. By default nothing changes.
    fn regroup(
        &self,
        _iteration: usize,
        _affinity: Option<&AffinityRecord>,
    ) -> Option<(Self, ParamMoves)>
    where
        Self: Sized,
    {
        None
    }

    /// What such a change decided, for the checkpoint (by default nothing).
    fn rule_state(&self) -> Vec<(String, Vec<f32>)> {
        vec![]
    }

    /// The rule as a checkpoint's [`TaskRule::rule_state`] left it; `None` when it keeps none.
    fn with_state(&self, _state: &BTreeMap<String, Vec<f32>>) -> Result<Option<Self>, AlgoError>
    where
        Self: Sized,
    {
        Ok(None)
    }
}

/// Copy `from` to the index `to` in `v`, for each pair.
fn copy_ranges(v: &mut [f32], copies: &[(Range<usize>, usize)]) {
    for (from, to) in copies {
        v.copy_within(from.clone(), *to);
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

    /// [`copy_ranges`] on the optimizer's per-parameter state.
    fn copy_ranges(&mut self, copies: &[(Range<usize>, usize)]) {
        if let MetaOptimizer::Adam(adam) = self {
            copy_ranges(&mut adam.m, copies);
            copy_ranges(&mut adam.v, copies);
        }
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

/// A meta-iteration's work on one chunk of tasks, for whichever backend the pool runs.
struct RuleTasks<R> {
    rule: Arc<R>,
    params: Arc<Vec<f32>>,
}

impl<R: TaskRule> LockStepWork for RuleTasks<R> {
    type Item = (usize, Episode);
    type Out = TaskOut;
    fn run<M: LockStepModel + ?Sized>(
        &self,
        m: &mut M,
        chunk: Vec<(usize, Episode)>,
    ) -> Vec<TaskOut> {
        self.rule.tasks(m, &self.params, &chunk)
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
    options: LearnerOptions,
    /// Task ids of the batch last sampled, for the affinities: the slot of a fixed task set,
    /// or the family's fixed-task index.
    ids: Vec<Option<usize>>,
    tracker: Option<AffinityTracker>,
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
            options: LearnerOptions::default(),
            ids: vec![],
            tracker: None,
        }
    }

    /// The affinity tracker over the task ids `family` and the task source define, made once.
    fn start_tracking(&mut self, family: &dyn TaskFamily) {
        let Some(spec) = self.options.affinity else {
            return;
        };
        if self.tracker.is_some() {
            return;
        }
        let groups: Option<Vec<Option<usize>>> = match &self.source {
            TaskSource::Fixed { tasks, .. } => Some(tasks.iter().map(Task::group).collect()),
            TaskSource::Fresh => family
                .fixed_tasks()
                .map(|t| t.iter().map(Task::group).collect()),
        };
        self.tracker = groups.map(|g| AffinityTracker::new(g, spec.every, spec.lookahead_lr));
    }

    /// The affinities of one meta-iteration, before any aggregation changes the updates.
    fn measure(
        &mut self,
        outs: &[TaskOut],
        episodes: Option<Vec<Episode>>,
        pool: &WorkerPool,
    ) -> Result<(), AlgoError> {
        let Some(lr) = self.tracker.as_ref().map(|t| t.lookahead_lr) else {
            return Ok(());
        };
        let Some(ids) = self.ids.iter().copied().collect::<Option<Vec<usize>>>() else {
            return Ok(());
        };
        if ids.len() != outs.len() || outs.is_empty() {
            return Ok(());
        }
        let shared = self.rule.shared_len(outs[0].update.len());
        let parts: Vec<&[f64]> = outs.iter().map(|o| &o.update[..shared]).collect();
        let tracker = self.tracker.as_mut().expect("tracking");
        tracker.add_cosines(&ids, &parts);
        let Some(episodes) = episodes else {
            return Ok(());
        };
        let eta = lr * R::DESCENT_SIGN;
        let own: Vec<Vec<f32>> = self
            .slots_for(outs.len())
            .iter()
            .map(|&s| self.rule.own_params(&self.params, s))
            .collect();
        let (own, episodes) = (Arc::new(own), Arc::new(episodes));
        let rule = Arc::clone(&self.rule);
        let before = {
            let (own, episodes, rule) = (own.clone(), episodes.clone(), rule.clone());
            pool.map((0..own.len()).collect(), move |ev, j: usize| {
                rule.own_loss(ev, &own[j], &episodes[j])
            })?
        };
        let dirs: Vec<Vec<f64>> = parts.iter().map(|p| p.to_vec()).collect();
        let after = pool.map(dirs, move |ev, d: Vec<f64>| {
            (0..own.len())
                .map(|j| {
                    let mut p = own[j].clone();
                    for (x, g) in p.iter_mut().zip(&d) {
                        *x = (*x as f64 - eta * g) as f32;
                    }
                    rule.own_loss(ev, &p, &episodes[j])
                })
                .collect::<Vec<f64>>()
        })?;
        let tracker = self.tracker.as_mut().expect("tracking");
        tracker.add_lookahead(&ids, &before, &after);
        Ok(())
    }

    /// The rule's one change during training, when it makes it now.
    fn regroup(&mut self, iteration: usize) {
        let record = self.tracker.as_ref().map(|t| t.record(iteration));
        if let Some((rule, copies)) = self.rule.regroup(iteration, record.as_ref()) {
            copy_ranges(&mut self.params, &copies);
            self.optimizer.copy_ranges(&copies);
            self.rule = Arc::new(rule);
        }
    }

    fn slots_for(&self, n: usize) -> Vec<usize> {
        match self.source {
            TaskSource::Fixed { .. } => self.slots.clone(),
            TaskSource::Fresh => (0..n).collect(),
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
        self.start_tracking(family);
        let ids = &mut self.ids;
        ids.clear();
        match &mut self.source {
            TaskSource::Fresh => {
                self.slots = (0..meta_batch).collect();
                (0..meta_batch)
                    .map(|_| {
                        let task = family.sample_task(Split::Train, rng);
                        ids.push(task.fixed_index());
                        family.sample_episode(&task, rng)
                    })
                    .collect()
            }
            TaskSource::Fixed { tasks, cursor } => {
                let m = tasks.len();
                self.slots = (0..meta_batch.min(m)).map(|i| (*cursor + i) % m).collect();
                *cursor = (*cursor + self.slots.len()) % m;
                ids.extend(self.slots.iter().map(|&s| Some(s)));
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
        self.regroup(iteration);
        let params = Arc::new(self.params.clone());
        let rule = Arc::clone(&self.rule);
        // Episodes handed in without a sample_batch (tests) take their batch positions.
        let slots: Vec<usize> = match self.source {
            TaskSource::Fixed { .. } => self.slots.clone(),
            TaskSource::Fresh => (0..episodes.len()).collect(),
        };
        let lookahead = self
            .tracker
            .as_ref()
            .is_some_and(|t| iteration.is_multiple_of(t.every))
            .then(|| episodes.clone());
        let jobs: Vec<(usize, Episode)> = slots.iter().copied().zip(episodes).collect();
        let mut outs = pool.lockstep(jobs, RuleTasks { rule, params })?;
        self.measure(&outs, lookahead, pool)?;
        if self.options.aggregate == Aggregate::PcGrad && !outs.is_empty() {
            let shared = self.rule.shared_len(outs[0].update.len());
            let mut updates: Vec<&mut Vec<f64>> = outs.iter_mut().map(|o| &mut o.update).collect();
            let mut order = aggregate::order_rng(self.options.seed, iteration);
            aggregate::pcgrad(&mut updates, shared, &mut order);
        }
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
        s.extend(self.rule.rule_state());
        if let Some(t) = &self.tracker {
            s.extend(t.state());
        }
        s
    }

    fn configure(&mut self, options: LearnerOptions) {
        self.options = options;
    }

    fn affinity(&self, iteration: usize) -> Option<AffinityRecord> {
        self.tracker.as_ref().map(|t| t.record(iteration))
    }

    fn task_losses(
        &self,
        family: &dyn TaskFamily,
        pool: &WorkerPool,
        episodes: usize,
        seed: u64,
    ) -> Result<Option<Vec<TaskScores>>, AlgoError> {
        let TaskSource::Fixed { tasks, .. } = &self.source else {
            return Ok(None);
        };
        let items: Vec<(Vec<f32>, Vec<Episode>)> = tasks
            .iter()
            .enumerate()
            .map(|(slot, task)| {
                let eps = family.held_out_partition(task).unwrap_or_else(|| {
                    let mut rng = Rng::seed_from_u64(seed);
                    rng.set_stream(slot as u64);
                    (0..episodes)
                        .map(|_| family.held_out_episode(task, &mut rng))
                        .collect()
                });
                (self.rule.own_params(&self.params, slot), eps)
            })
            .collect();
        let rule = Arc::clone(&self.rule);
        let losses = pool.map(items, move |ev, (p, eps): (Vec<f32>, Vec<Episode>)| {
            eps.iter()
                .map(|ep| rule.own_loss(ev, &p, ep))
                .collect::<Vec<f64>>()
        })?;
        Ok(Some(
            tasks
                .iter()
                .zip(losses)
                .map(|(t, losses)| TaskScores {
                    group: t.group(),
                    losses,
                })
                .collect(),
        ))
    }

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError> {
        self.params = take_state(state, "params", self.params.len())?;
        if let MetaOptimizer::Adam(adam) = &mut self.optimizer {
            adam.load_state(state)?;
        }
        if let TaskSource::Fixed { cursor, .. } = &mut self.source {
            *cursor = take_state(state, "cursor", 1)?[0] as usize;
        }
        if let Some(rule) = self.rule.with_state(state)? {
            self.rule = Arc::new(rule);
        }
        if let Some(spec) = self.options.affinity {
            self.tracker = AffinityTracker::from_state(state, spec.every, spec.lookahead_lr)?;
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

        fn tasks<M: LockStepModel + ?Sized>(
            &self,
            _: &mut M,
            _: &[f32],
            _: &[(usize, Episode)],
        ) -> Vec<TaskOut> {
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
