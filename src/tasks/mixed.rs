//! Mixed regression (issue 21): named, fixed tasks in groups of one function kind each, so which
//! tasks are related is known by construction. Sines and negated sines share inputs and
//! parameter ranges with opposite targets (they conflict for one shared model); lines and
//! quadratics are smooth but of another shape and scale.
//!
//! The training split is the fixed task set (drawn once from the experiment seed): a
//! multi-task arm trains on exactly these tasks, a meta-learner samples among them. Validation
//! and test tasks are fresh draws from the groups' parameter ranges.

use rand::{Rng as _, SeedableRng};
use rand_distr::StandardNormal;

use super::*;
use crate::experiment::{FunctionKind, MixedSpec};

/// Salt for the fixed task set's stream: a function of the seed alone.
const FIXED_SALT: u64 = 0x6d69_7865_6474_736b;

pub struct Mixed {
    spec: MixedSpec,
    fixed: Vec<Task>,
    /// With `spec.pool`: each fixed task's training data.
    pools: Vec<Pool>,
}

/// A fixed task's training data: its points and their observed targets, noise included,
/// drawn once (a task's data set does not change from one episode to the next).
#[derive(Debug, Clone, Default, PartialEq)]
struct Pool {
    x: Vec<f32>,
    y: Vec<f32>,
}

/// Salt for the fixed tasks' input pools: a function of the seed alone.
const POOL_SALT: u64 = 0x706f_6f6c_706f_6f6c;

/// Salt for the noise on the pools' targets, a stream apart from the inputs' so that a pool's
/// inputs do not depend on the noise.
const POOL_NOISE_SALT: u64 = 0x6e6f_6973_6570_6f6c;

impl Mixed {
    pub fn new(spec: MixedSpec, seed: u64) -> Mixed {
        let mut rng = Rng::seed_from_u64(seed ^ FIXED_SALT);
        let mut fixed = vec![];
        for (group, &kind) in spec.groups.iter().enumerate() {
            for _ in 0..spec.tasks_per_group {
                let index = Some(fixed.len());
                fixed.push(draw(kind, group, index, &mut rng));
            }
        }
        let mut rng = Rng::seed_from_u64(seed ^ POOL_SALT);
        let mut noise_rng = Rng::seed_from_u64(seed ^ POOL_NOISE_SALT);
        let pools = fixed
            .iter()
            .map(|task| {
                let x: Vec<f32> = (0..spec.pool)
                    .map(|_| rng.gen_range(-5.0f32..5.0))
                    .collect();
                let (kind, c) = function(task);
                let y = observe(spec.noise, kind, c, &x, &mut noise_rng);
                Pool { x, y }
            })
            .collect();
        Mixed { spec, fixed, pools }
    }

    /// `n` points drawn from `pool` (with replacement), or fresh ones when it is empty.
    fn points_from(
        &self,
        kind: FunctionKind,
        c: [f32; 3],
        pool: Option<&Pool>,
        n: usize,
        rng: &mut Rng,
    ) -> Batch {
        let Some(pool) = pool.filter(|p| !p.x.is_empty()) else {
            return self.points(kind, c, n, rng);
        };
        let picks: Vec<usize> = (0..n).map(|_| rng.gen_range(0..pool.x.len())).collect();
        Batch {
            n,
            x: picks.iter().map(|&i| pool.x[i]).collect(),
            y: Targets::Values(picks.iter().map(|&i| pool.y[i]).collect()),
        }
    }

    /// The groups' names, in order: the kind, numbered when a kind repeats.
    pub fn group_names(groups: &[FunctionKind]) -> Vec<String> {
        groups
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let before = groups[..i].iter().filter(|g| *g == k).count();
                match before {
                    0 => k.name().to_string(),
                    n => format!("{}#{}", k.name(), n + 1),
                }
            })
            .collect()
    }

    /// `n` fresh points of the function, with the family's noise.
    fn points(&self, kind: FunctionKind, c: [f32; 3], n: usize, rng: &mut Rng) -> Batch {
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-5.0f32..5.0)).collect();
        let y = observe(self.spec.noise, kind, c, &x, rng);
        Batch {
            n,
            x,
            y: Targets::Values(y),
        }
    }
}

/// A function task's kind and coefficients.
fn function(task: &Task) -> (FunctionKind, [f32; 3]) {
    let Task::Function {
        kind, coefficients, ..
    } = *task
    else {
        panic!("mixed family given a {task:?}")
    };
    (kind, coefficients)
}

/// The function's values at `x`, each plus Gaussian noise of standard deviation `sigma` drawn
/// after the inputs (none drawn when `sigma` is 0, so exact families keep their streams).
fn observe(sigma: f32, kind: FunctionKind, c: [f32; 3], x: &[f32], rng: &mut Rng) -> Vec<f32> {
    x.iter()
        .map(|&x| {
            let v = value(kind, c, x);
            if sigma > 0.0 {
                v + sigma * rng.sample::<f32, _>(StandardNormal)
            } else {
                v
            }
        })
        .collect()
}

/// A task of `kind` in `group`, its coefficients drawn from the kind's ranges.
fn draw(kind: FunctionKind, group: usize, fixed: Option<usize>, rng: &mut Rng) -> Task {
    let coefficients = match kind {
        FunctionKind::Sine | FunctionKind::NegSine => {
            [rng.gen_range(1.5f32..2.0), rng.gen_range(0.0f32..0.3), 0.0]
        }
        FunctionKind::Line => [rng.gen_range(0.3f32..0.5), rng.gen_range(-0.3f32..0.3), 0.0],
        FunctionKind::Quadratic => [
            rng.gen_range(0.15f32..0.25),
            rng.gen_range(-0.2f32..0.2),
            rng.gen_range(-0.3f32..0.3),
        ],
    };
    Task::Function {
        kind,
        group,
        fixed,
        coefficients,
    }
}

/// The function of `kind` with coefficients `c` at `x`.
pub fn value(kind: FunctionKind, c: [f32; 3], x: f32) -> f32 {
    match kind {
        FunctionKind::Sine => c[0] * (x - c[1]).sin(),
        FunctionKind::NegSine => -c[0] * (x - c[1]).sin(),
        FunctionKind::Line => c[0] * x + c[1],
        // Centred on the input range (x² has mean 25/3 there), so no group is a mere offset.
        FunctionKind::Quadratic => c[0] * (x * x - 25.0 / 3.0) + c[1] * x + c[2],
    }
}

impl TaskFamily for Mixed {
    fn shape(&self) -> FamilyShape {
        FamilyShape {
            input: vec![1],
            outputs: 1,
            kind: TaskKind::Regression,
        }
    }

    /// Training: one of the fixed tasks, uniformly. Otherwise a fresh task of a uniformly
    /// chosen group.
    fn sample_task(&self, split: Split, rng: &mut Rng) -> Task {
        match split {
            Split::Train => self.fixed[rng.gen_range(0..self.fixed.len())].clone(),
            _ => {
                let group = rng.gen_range(0..self.spec.groups.len());
                draw(self.spec.groups[group], group, None, rng)
            }
        }
    }

    /// A fixed task's episode draws its points from the task's pool when there is one.
    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let (kind, coefficients) = function(task);
        let pool = task.fixed_index().and_then(|i| self.pools.get(i));
        Episode {
            support: self.points_from(kind, coefficients, pool, self.spec.shots, rng),
            query: self.points_from(kind, coefficients, pool, self.spec.queries, rng),
        }
    }

    /// Fresh inputs, never the pool's, and fresh noise.
    fn held_out_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let (kind, coefficients) = function(task);
        Episode {
            support: self.points(kind, coefficients, self.spec.shots, rng),
            query: self.points(kind, coefficients, self.spec.queries, rng),
        }
    }

    fn curve(&self, task: &Task, n: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        let Task::Function {
            kind, coefficients, ..
        } = *task
        else {
            return None;
        };
        let step = 10.0 / n.saturating_sub(1).max(1) as f32;
        let x: Vec<f32> = (0..n).map(|i| -5.0 + step * i as f32).collect();
        let y = x.iter().map(|&x| value(kind, coefficients, x)).collect();
        Some((x, y))
    }

    fn fixed_tasks(&self) -> Option<&[Task]> {
        Some(&self.fixed)
    }

    fn describe(&self) -> String {
        let pool = match self.spec.pool {
            0 => String::new(),
            n => format!(", {n} training points per fixed task"),
        };
        let noise = match self.spec.noise {
            0.0 => String::new(),
            s => format!(", noise σ = {s}"),
        };
        format!(
            "Mixed regression, {} groups ({}) × {} fixed tasks, K={} support / {} query{pool}{noise}",
            self.spec.groups.len(),
            Self::group_names(&self.spec.groups).join(", "),
            self.spec.tasks_per_group,
            self.spec.shots,
            self.spec.queries
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_tasks_are_seeded_grouped_and_numbered() {
        let spec = MixedSpec::default();
        let a = Mixed::new(spec.clone(), 5);
        let b = Mixed::new(spec.clone(), 5);
        let c = Mixed::new(spec.clone(), 6);
        assert_eq!(a.fixed, b.fixed);
        assert_ne!(a.fixed, c.fixed);
        assert_eq!(a.fixed.len(), 12);
        for (i, t) in a.fixed.iter().enumerate() {
            assert_eq!(t.group(), Some(i / 3));
            assert_eq!(t.fixed_index(), Some(i));
        }
        let mut rng = Rng::seed_from_u64(1);
        for _ in 0..50 {
            let t = a.sample_task(Split::Train, &mut rng);
            assert!(a.fixed.contains(&t));
            let v = a.sample_task(Split::Test, &mut rng);
            assert_eq!(v.fixed_index(), None);
        }
        assert_eq!(
            Mixed::group_names(&[FunctionKind::Sine, FunctionKind::Line, FunctionKind::Sine]),
            ["sine", "line", "sine#2"]
        );
    }

    #[test]
    fn episodes_follow_the_task_function_and_negated_sines_negate() {
        let spec = MixedSpec::default();
        let fam = Mixed::new(spec, 1);
        let mut rng = Rng::seed_from_u64(2);
        for t in &fam.fixed {
            let ep = fam.sample_episode(t, &mut rng);
            let Task::Function {
                kind, coefficients, ..
            } = *t
            else {
                unreachable!()
            };
            let Targets::Values(y) = &ep.query.y else {
                unreachable!()
            };
            for (x, y) in ep.query.x.iter().zip(y) {
                assert!((-5.0..5.0).contains(x));
                assert_eq!(*y, value(kind, coefficients, *x));
            }
        }
        let c = [1.5, 0.2, 0.0];
        assert_eq!(
            value(FunctionKind::NegSine, c, 0.7),
            -value(FunctionKind::Sine, c, 0.7)
        );
    }

    #[test]
    fn a_pool_bounds_a_fixed_task_s_training_inputs_and_held_out_episodes_leave_it() {
        let spec = MixedSpec {
            pool: 7,
            ..MixedSpec::default()
        };
        let fam = Mixed::new(spec, 1);
        let mut rng = Rng::seed_from_u64(2);
        for (i, t) in fam.fixed.iter().enumerate() {
            let ep = fam.sample_episode(t, &mut rng);
            for x in ep.support.x.iter().chain(&ep.query.x) {
                assert!(fam.pools[i].x.contains(x));
            }
            let held = fam.held_out_episode(t, &mut rng);
            assert!(held.query.x.iter().all(|x| !fam.pools[i].x.contains(x)));
        }
        // New tasks have no pool; without one, fixed tasks draw fresh inputs as before.
        let v = fam.sample_task(Split::Test, &mut rng);
        let ep = fam.sample_episode(&v, &mut rng);
        assert!(ep
            .query
            .x
            .iter()
            .all(|x| !fam.pools.iter().any(|p| p.x.contains(x))));
        assert!(Mixed::new(MixedSpec::default(), 1)
            .pools
            .iter()
            .all(|p| p.x.is_empty()));
    }

    /// The residuals of `batch` from `task`'s function.
    fn residuals(task: &Task, batch: &Batch) -> Vec<f64> {
        let (kind, c) = function(task);
        let Targets::Values(y) = &batch.y else {
            unreachable!()
        };
        batch
            .x
            .iter()
            .zip(y)
            .map(|(&x, &y)| (y - value(kind, c, x)) as f64)
            .collect()
    }

    #[test]
    fn noise_has_its_standard_deviation_is_fixed_in_a_pool_and_fresh_when_held_out() {
        let sigma = 0.3;
        let spec = MixedSpec {
            pool: 5,
            noise: sigma,
            ..MixedSpec::default()
        };
        let fam = Mixed::new(spec.clone(), 1);
        // The inputs a pool holds do not depend on the noise.
        let exact = Mixed::new(
            MixedSpec {
                noise: 0.0,
                ..spec.clone()
            },
            1,
        );
        for (p, q) in fam.pools.iter().zip(&exact.pools) {
            assert_eq!(p.x, q.x);
            assert_ne!(p.y, q.y);
        }
        let mut rng = Rng::seed_from_u64(2);
        let mut held = vec![];
        for (i, t) in fam.fixed.iter().enumerate() {
            // A pool point's target is the same in every episode: the task's data set.
            for _ in 0..3 {
                let ep = fam.sample_episode(t, &mut rng);
                let Targets::Values(y) = &ep.support.y else {
                    unreachable!()
                };
                for (x, y) in ep.support.x.iter().zip(y) {
                    let k = fam.pools[i].x.iter().position(|p| p == x).unwrap();
                    assert_eq!(fam.pools[i].y[k], *y);
                }
            }
            for _ in 0..200 {
                let ep = fam.held_out_episode(t, &mut rng);
                held.extend(residuals(t, &ep.support));
                held.extend(residuals(t, &ep.query));
            }
        }
        // 48,000 residuals: mean 0 and standard deviation σ, to well within sampling error.
        let n = held.len() as f64;
        let mean = held.iter().sum::<f64>() / n;
        let sd = (held.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((sd / sigma as f64 - 1.0).abs() < 0.02, "{sd}");
        // Held-out episodes are a function of the stream: the same seed, the same noise.
        let t = &fam.fixed[4];
        let a = fam.held_out_episode(t, &mut Rng::seed_from_u64(9));
        let b = Mixed::new(spec, 1).held_out_episode(t, &mut Rng::seed_from_u64(9));
        assert_eq!(a.query.y, b.query.y);
        // Noise-free, every target is the function's value (the other tests' families).
        let ep = exact.held_out_episode(t, &mut Rng::seed_from_u64(9));
        assert!(residuals(t, &ep.query).iter().all(|&r| r == 0.0));
    }
}
