//! The evaluation task sets, each drawn from its own seeded stream: the same tasks at every
//! evaluation, for every arm and for a later `metalab eval` of the run, and never the training
//! stream's tasks.

use rand::SeedableRng;

use super::{Episode, Rng, Split, Task, TaskFamily};

/// Which evaluation task set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalStream {
    /// The periodic evaluations during training.
    Periodic,
    /// The few regression tasks whose fits are drawn.
    Tracked,
    /// The final test (and `metalab eval`).
    Test,
}

impl EvalStream {
    /// The stream's seed under an experiment's seed.
    pub fn seed(self, experiment_seed: u64) -> u64 {
        experiment_seed
            ^ match self {
                EvalStream::Periodic => 0x7661_6c69_6461_7465,
                EvalStream::Tracked => 0x7472_6163_6b65_6421,
                EvalStream::Test => 0x7465_7374_7365_7421,
            }
    }
}

/// `n` episodes of `split` from the stream seeded with `seed`.
pub fn episodes(family: &dyn TaskFamily, split: Split, seed: u64, n: usize) -> Vec<Episode> {
    tasks_and_episodes(family, split, seed, n)
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// [`episodes`] with the task each came from (the same draws).
pub fn tasks_and_episodes(
    family: &dyn TaskFamily,
    split: Split,
    seed: u64,
    n: usize,
) -> Vec<(Task, Episode)> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let t = family.sample_task(split, &mut rng);
            let e = family.sample_episode(&t, &mut rng);
            (t, e)
        })
        .collect()
}
