//! Multi-task learning with shared trunks: one head per training task, trained jointly on a
//! fixed task set, the tasks' trunks shared as [`Trunks`] says (one for all, one per task,
//! groups given or found from the task affinities). A new task gets a fresh head, fine-tuned
//! on its support set with the (first) trunk frozen.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rand::SeedableRng;

use super::affinity::{clusters, AffinityRecord};
use super::contract::{AdaptMode, AlgoContext, AlgoError};
use super::learner::{Learner, MetaOptimizer, ParamMoves, TaskOut, TaskRule, TaskSource};
use crate::experiment::Trunks;
use crate::model::{Evaluator, LockStepModel, Network};
use crate::tasks::{Batch, Episode, Rng, Targets, TaskFamily};

/// The multi-task rule, on meta-parameters `trunk₀ ++ … ++ trunk_{G−1} ++ head₀ ++ head₁ ++ …`,
/// one head per task of the fixed set ([`TaskSource::Fixed`]; a task's slot is its index
/// there) and `G` trunks (one unless the arm's [`Trunks`] says otherwise).
pub struct MultiTask {
    net: Arc<Network>,
    trunks: Trunks,
    /// Each task's trunk.
    trunk_of: Vec<usize>,
}

/// Salt for the fixed task set's RNG, so it differs from the training stream but not across arms.
const TASK_SET_SALT: u64 = 0x6d75_6c74_6974_6173;

/// The checkpoint tensor holding the task groups found from the affinities.
const TRUNK_OF: &str = "trunk_of";

impl MultiTask {
    /// A learner with `trunks.count(tasks)` trunks, all starting from one draw of the standard
    /// initialisation, and `tasks` heads, each from its own draw, over a fixed set of `tasks`
    /// training tasks, trained with Adam. The draws do not depend on `trunks`: every sharing
    /// starts from the same values.
    pub fn learner(
        ctx: AlgoContext,
        tasks: usize,
        trunks: &Trunks,
        family: &dyn TaskFamily,
    ) -> Learner<MultiTask> {
        let mut rng = Rng::seed_from_u64(ctx.seed);
        let one = ctx.net.init(&mut rng);
        let head_start = ctx.net.layout.head_start;
        let mut params = one[..head_start].repeat(trunks.count(tasks));
        for _ in 0..tasks {
            // Every head starts from its own draw of the standard initialisation.
            params.extend_from_slice(&ctx.net.init(&mut rng)[head_start..]);
        }
        let mut task_rng = Rng::seed_from_u64(ctx.seed ^ TASK_SET_SALT);
        let source = TaskSource::fixed(family, tasks, &mut task_rng);
        let optimizer = MetaOptimizer::adam(params.len(), &ctx.settings);
        let rule = MultiTask {
            net: ctx.net,
            trunk_of: trunks.trunk_of(tasks),
            trunks: trunks.clone(),
        };
        Learner::new(rule, params, optimizer, source)
    }

    fn trunk_count(&self) -> usize {
        self.trunks.count(self.trunk_of.len())
    }

    fn trunk_range(&self, trunk: usize) -> Range<usize> {
        let len = self.net.layout.head_start;
        trunk * len..(trunk + 1) * len
    }

    fn head_range(&self, task: usize) -> Range<usize> {
        let start = self.trunk_count() * self.net.layout.head_start;
        let len = self.net.layout.head_len();
        start + task * len..start + (task + 1) * len
    }

    /// Task `task`'s trunk with its head: a full parameter vector for the network.
    fn task_params(&self, params: &[f32], task: usize) -> Vec<f32> {
        let mut p = params[self.trunk_range(self.trunk_of[task])].to_vec();
        p.extend_from_slice(&params[self.head_range(task)]);
        p
    }

    /// Affinity grouping not yet done: every task still on trunk 0.
    fn awaiting_groups(&self) -> bool {
        matches!(self.trunks, Trunks::Affinity { .. }) && self.trunk_of.iter().all(|&t| t == 0)
    }

    /// The same rule with each task on the trunk `trunk_of` gives.
    fn regrouped(&self, trunk_of: Vec<usize>) -> MultiTask {
        MultiTask {
            net: self.net.clone(),
            trunks: self.trunks.clone(),
            trunk_of,
        }
    }

    /// The task groups of an affinity record: Fifty et al.'s lookahead affinity where it was
    /// measured, else the gradient cosine.
    pub fn groups_from(record: &AffinityRecord, groups: usize) -> Vec<usize> {
        let measured = |m: &[Vec<Option<f64>>]| m.iter().flatten().any(Option::is_some);
        let m = if measured(&record.lookahead) {
            &record.lookahead
        } else {
            &record.cosine
        };
        clusters(m, groups)
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

    /// The gradient of each trunk's mean loss over its tasks in the batch: each task's trunk
    /// gradient on its trunk, its head gradient on its own head, scaled by one over the number
    /// of the batch's tasks on that trunk (with one trunk, the mean over the batch); summed in
    /// f32, as the gradients are.
    fn combine(
        &self,
        _iteration: usize,
        params: &[f32],
        slots: &[usize],
        outs: &[TaskOut],
    ) -> Result<Vec<f32>, AlgoError> {
        let mut on_trunk = vec![0usize; self.trunk_count()];
        for &task in slots {
            on_trunk[self.trunk_of[task]] += 1;
        }
        let head_start = self.net.layout.head_start;
        let mut g = vec![0.0f32; params.len()];
        for (&task, out) in slots.iter().zip(outs) {
            let trunk = self.trunk_of[task];
            let scale = 1.0 / on_trunk[trunk] as f32;
            // The f64 values were f32 to begin with: the round trip is exact.
            let tg = &out.update;
            for (acc, x) in g[self.trunk_range(trunk)].iter_mut().zip(&tg[..head_start]) {
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

    /// The first trunk with a fresh zero head (a new task's group is not known).
    fn adapt_start(&self, params: &[f32]) -> Vec<f32> {
        let mut p = params[self.trunk_range(0)].to_vec();
        p.extend(self.net.fresh_head());
        p
    }

    /// With [`Trunks::Affinity`], at iteration `after`: the tasks clustered into groups by
    /// the affinities measured so far, every group's trunk a copy of the joint one.
    fn regroup(
        &self,
        iteration: usize,
        affinity: Option<&AffinityRecord>,
    ) -> Option<(Self, ParamMoves)> {
        let Trunks::Affinity { groups, after } = self.trunks else {
            return None;
        };
        if iteration < after || !self.awaiting_groups() {
            return None;
        }
        let trunk_of = MultiTask::groups_from(affinity?, groups);
        let from = self.trunk_range(0);
        let copies = (1..groups)
            .map(|g| (from.clone(), self.trunk_range(g).start))
            .collect();
        Some((self.regrouped(trunk_of), copies))
    }

    /// The groups found from the affinities, once found.
    fn rule_state(&self) -> Vec<(String, Vec<f32>)> {
        match self.trunks {
            Trunks::Affinity { .. } => {
                vec![(
                    TRUNK_OF.into(),
                    self.trunk_of.iter().map(|&t| t as f32).collect(),
                )]
            }
            _ => vec![],
        }
    }

    fn with_state(&self, state: &BTreeMap<String, Vec<f32>>) -> Result<Option<Self>, AlgoError> {
        if !matches!(self.trunks, Trunks::Affinity { .. }) {
            return Ok(None);
        }
        let of = super::contract::take_state(state, TRUNK_OF, self.trunk_of.len())?;
        let trunks = self.trunk_count();
        let trunk_of: Vec<usize> = of.iter().map(|&t| t as usize).collect();
        if trunk_of.iter().any(|&t| t >= trunks) {
            return Err(AlgoError::StateLength {
                name: TRUNK_OF.into(),
                found: trunk_of.iter().max().map_or(0, |m| m + 1),
                expected: trunks,
            });
        }
        Ok(Some(self.regrouped(trunk_of)))
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;
    use crate::experiment::{Activation, MixedSpec, MlpSpec, ModelSpec};
    use crate::model::LossOut;
    use crate::tasks::mixed::Mixed;

    fn net() -> Arc<Network> {
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: vec![3, 2],
            activation: Activation::Tanh,
        });
        let fam = Mixed::new(MixedSpec::default(), 1);
        Arc::new(Network::new(&spec, &fam.shape()).unwrap())
    }

    fn rule(trunks: Trunks, tasks: usize) -> MultiTask {
        MultiTask {
            net: net(),
            trunk_of: trunks.trunk_of(tasks),
            trunks,
        }
    }

    fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
        // Multiples of 1/8: the f32 sums below are exact, so the checks can be too.
        (0..n)
            .map(|_| rng.gen_range(-16..16) as f64 / 8.0)
            .collect()
    }

    /// Each trunk's gradient is the mean of its own tasks' trunk gradients, each head's its
    /// task's, scaled by the same count: with trunks `of`, `outs` given in the slot order
    /// `slots`.
    fn expected(r: &MultiTask, slots: &[usize], updates: &[Vec<f64>], len: usize) -> Vec<f32> {
        let hs = r.net.layout.head_start;
        let mut g = vec![0.0f32; len];
        for trunk in 0..r.trunk_count() {
            let mine: Vec<usize> = (0..slots.len())
                .filter(|&k| r.trunk_of[slots[k]] == trunk)
                .collect();
            for &k in &mine {
                let n = mine.len() as f32;
                for (i, x) in updates[k][..hs].iter().enumerate() {
                    g[r.trunk_range(trunk).start + i] += *x as f32 / n;
                }
                for (i, x) in updates[k][hs..].iter().enumerate() {
                    g[r.head_range(slots[k]).start + i] += *x as f32 / n;
                }
            }
        }
        g
    }

    #[test]
    fn each_trunk_descends_the_mean_loss_of_its_own_tasks_and_each_head_its_task_s() {
        let mut rng = Rng::seed_from_u64(3);
        for trunks in [
            Trunks::Shared,
            Trunks::PerTask,
            Trunks::Groups(vec![vec![0, 2], vec![1, 3]]),
        ] {
            let r = rule(trunks.clone(), 4);
            let (hs, hl) = (r.net.layout.head_start, r.net.layout.head_len());
            let len = r.trunk_count() * hs + 4 * hl;
            let params = vec![0.0f32; len];
            let slots = [2, 0, 3, 1];
            let updates: Vec<Vec<f64>> = slots.iter().map(|_| random(hs + hl, &mut rng)).collect();
            let outs: Vec<TaskOut> = updates
                .iter()
                .map(|u| TaskOut {
                    update: u.clone(),
                    query: LossOut {
                        loss: 0.0,
                        correct: None,
                    },
                    n: 1,
                })
                .collect();
            let g = r.combine(0, &params, &slots, &outs).unwrap();
            assert_eq!(g, expected(&r, &slots, &updates, len), "{trunks:?}");
        }
        // Trained alone: a per-task trunk takes its one task's gradient unscaled.
        let r = rule(Trunks::PerTask, 2);
        assert_eq!(r.trunk_count(), 2);
        assert_eq!(r.trunk_of, [0, 1]);
    }

    #[test]
    fn a_task_runs_on_its_group_s_trunk_with_its_own_head() {
        let r = rule(Trunks::Groups(vec![vec![1], vec![0, 2]]), 3);
        let (hs, hl) = (r.net.layout.head_start, r.net.layout.head_len());
        let params: Vec<f32> = (0..2 * hs + 3 * hl).map(|i| i as f32).collect();
        let p = r.task_params(&params, 2);
        assert_eq!(&p[..hs], &params[hs..2 * hs]);
        assert_eq!(&p[hs..], &params[2 * hs + 2 * hl..2 * hs + 3 * hl]);
        let p = r.task_params(&params, 1);
        assert_eq!(&p[..hs], &params[..hs]);
        assert_eq!(&p[hs..], &params[2 * hs + hl..2 * hs + 2 * hl]);
        // A new task gets the first trunk and a zero head.
        let start = r.adapt_start(&params);
        assert_eq!(&start[..hs], &params[..hs]);
        assert!(start[hs..].iter().all(|&v| v == 0.0));
    }

    fn record(blocks: &[usize]) -> AffinityRecord {
        let n = blocks.len();
        let m: Vec<Vec<Option<f64>>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (i != j).then_some(if blocks[i] == blocks[j] { 0.5 } else { -0.2 }))
                    .collect()
            })
            .collect();
        AffinityRecord {
            iteration: 0,
            groups: vec![None; n],
            cosine: vec![vec![None; n]; n],
            lookahead: m,
            lookahead_lr: 0.01,
        }
    }

    #[test]
    fn affinity_groups_are_found_once_at_their_iteration_and_kept_in_the_checkpoint() {
        let r = rule(
            Trunks::Affinity {
                groups: 2,
                after: 3,
            },
            4,
        );
        let rec = record(&[0, 1, 1, 0]);
        assert!(r.regroup(2, Some(&rec)).is_none());
        assert!(r.regroup(3, None).is_none(), "no affinities, no groups");
        let (next, copies) = r.regroup(3, Some(&rec)).unwrap();
        assert_eq!(next.trunk_of, [0, 1, 1, 0]);
        let hs = r.net.layout.head_start;
        assert_eq!(copies, [(0..hs, hs)]);
        assert!(next.regroup(4, Some(&record(&[0, 0, 1, 1]))).is_none());
        // The checkpoint round trip.
        let state: BTreeMap<String, Vec<f32>> = next.rule_state().into_iter().collect();
        let back = r.with_state(&state).unwrap().unwrap();
        assert_eq!(back.trunk_of, next.trunk_of);
        // Other sharings keep nothing, and their checkpoints have nothing to give.
        assert!(rule(Trunks::PerTask, 4).rule_state().is_empty());
        assert!(rule(Trunks::Shared, 4)
            .with_state(&state)
            .unwrap()
            .is_none());
        let wrong: BTreeMap<String, Vec<f32>> = [(TRUNK_OF.to_string(), vec![0.0, 2.0, 0.0, 1.0])]
            .into_iter()
            .collect();
        assert!(r.with_state(&wrong).is_err());
    }
}
