//! What the algorithms, their skeleton and the engine share: a meta-learner as the engine
//! drives it ([`MetaAlgorithm`]), what it is built from, its errors and statistics, and how a
//! new task adapts ([`AdaptMode`]). Apart from `algo/mod.rs` so that the algorithm files, which
//! `algo::build` imports, import this and not their parent.

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;

use crate::experiment::ArmSettings;
use crate::model::context::TaskContext;
use crate::model::metric::MetricKind;
use crate::model::Network;
use crate::pool::{PoolError, WorkerPool};
use crate::tasks::{Episode, Rng, TaskFamily};

/// Why a meta-iteration or a state load failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlgoError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// `what` names the quantity: "meta-gradient", "Reptile update", …
    #[error("the {what} is not finite (NaN or infinity)")]
    NotFinite { what: &'static str },
    #[error("checkpoint has no tensor `{0}`")]
    MissingState(String),
    #[error("checkpoint tensor `{name}` has {found} values, the model needs {expected}")]
    StateLength {
        name: String,
        found: usize,
        expected: usize,
    },
}

/// Mean query result of one meta-iteration's tasks, after inner adaptation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// How a new task adapts at test time: the rule the evaluation runs, recorded with every result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdaptMode {
    /// Every parameter takes SGD steps (MAML, FOMAML, Reptile).
    All,
    /// Only the head (parameters from `head_start` on) is fine-tuned (multi-task).
    HeadOnly { head_start: usize },
    /// Plain SGD on the head only, on the body's features of the support set, body frozen
    /// (ANIL): the rule ANIL trains with.
    HeadSgd { head_start: usize },
    /// SGD with learned per-parameter rates (Meta-SGD): the start vector is `θ ++ α` (each
    /// `len` long) and a step is `θ ← θ − α ⊙ ∇L`; the protocol's learning rate is unused.
    LearnedRates { len: usize },
    /// No gradient steps: the start vector is `body ++ module`, and the support set's
    /// embeddings classify the queries (prototypes, attention or relation scores).
    Metric { kind: MetricKind, body_len: usize },
    /// SGD at rate `lr` on a task context that starts at zero, the start vector being the
    /// shared parameters (CAVIA); the protocol's learning rate is unused.
    Context { context: TaskContext, lr: f64 },
}

impl AdaptMode {
    /// The steps and learning rate this rule actually uses, given the protocol's.
    pub fn effective(self, steps: usize, lr: f64) -> (usize, f64) {
        match self {
            AdaptMode::All | AdaptMode::HeadOnly { .. } | AdaptMode::HeadSgd { .. } => (steps, lr),
            AdaptMode::LearnedRates { .. } => (steps, 0.0),
            AdaptMode::Context { lr, .. } => (steps, lr),
            AdaptMode::Metric { .. } => (0, 0.0),
        }
    }

    /// What the evaluation does, in words, for `run.json`.
    pub fn describe(self, steps: usize, lr: f64) -> String {
        match self {
            AdaptMode::All => format!("{steps} SGD steps (lr {lr}) on the support set from the meta-parameters, every parameter; loss and accuracy on the query set"),
            AdaptMode::HeadOnly { .. } => format!("a fresh zero head fine-tuned with {steps} SGD steps (lr {lr}, halved until the support loss does not rise), trunk frozen; loss and accuracy on the query set"),
            AdaptMode::HeadSgd { .. } => format!("{steps} plain SGD steps (lr {lr}) on the meta-learned head only, on the body's support features, body frozen; loss and accuracy on the query set"),
            AdaptMode::LearnedRates { .. } => format!("{steps} SGD steps with the meta-learned per-parameter learning rates (eval.inner_lr unused) on the support set from the meta-parameters; loss and accuracy on the query set"),
            AdaptMode::Context { context, .. } => format!("{steps} SGD steps (lr {lr}, the arm's context_lr; eval.inner_lr unused) on {}, from zero, shared parameters fixed; loss and accuracy on the query set", context.describe()),
            AdaptMode::Metric { kind, .. } => format!("no gradient steps (eval.inner_steps and inner_lr unused): support and query embedded in one pass of the body, queries classified by {}; loss_before is the uniform prediction's ln(ways)", kind.describe()),
        }
    }
}

/// A meta-learner as the engine drives it; [`Learner`](super::learner::Learner) is the implementation, around
/// each algorithm's [`TaskRule`](super::learner::TaskRule).
pub trait MetaAlgorithm: Send {
    /// The tasks of one meta-iteration: `meta_batch` fresh training tasks, or the next of a fixed
    /// task set.
    fn sample_batch(
        &mut self,
        family: &dyn TaskFamily,
        rng: &mut Rng,
        meta_batch: usize,
    ) -> Vec<Episode>;

    /// One meta-iteration: update the meta-parameters from these episodes. `iteration` counts
    /// from 0.
    fn step(
        &mut self,
        iteration: usize,
        episodes: Vec<Episode>,
        pool: &WorkerPool,
    ) -> Result<StepStats, AlgoError>;

    /// What a new task starts from, and which parameters it may adapt.
    fn adapt_start(&self) -> (Vec<f32>, AdaptMode);

    /// Everything needed to continue training exactly: parameters and optimizer state.
    fn state(&self) -> Vec<(String, Vec<f32>)>;

    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<(), AlgoError>;

    /// Options beyond the algorithm's own rule (issue 21): how the tasks' updates are
    /// aggregated, and whether task affinities are measured. Algorithms without per-task
    /// updates ignore them (validation refuses them there).
    fn configure(&mut self, _options: LearnerOptions) {}

    /// The task affinities measured so far, when they are measured.
    fn affinity(&self, _iteration: usize) -> Option<super::affinity::AffinityRecord> {
        None
    }

    /// Each task of a fixed training task set (a multi-task arm's) at its own parameters, its
    /// trunk and head, on `episodes` held-out episodes of that task
    /// ([`TaskFamily::held_out_episode`]), or on its held-out set's partition where the family
    /// has one ([`TaskFamily::held_out_partition`]: each held-out example once): its family group and the
    /// losses, episode by episode, in task order. Task `t`'s episodes come from `seed` and `t`
    /// alone, so arms scored with one seed are scored on the same episodes (the pairing
    /// `transfer::compare` uses). `None` for arms without a fixed task set.
    fn task_losses(
        &self,
        _family: &dyn TaskFamily,
        _pool: &WorkerPool,
        _episodes: usize,
        _seed: u64,
    ) -> Result<Option<Vec<TaskScores>>, AlgoError> {
        Ok(None)
    }
}

/// One training task's losses on its evaluation episodes (see [`MetaAlgorithm::task_losses`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScores {
    /// The task's group, where the family names groups.
    pub group: Option<usize>,
    pub losses: Vec<f64>,
}

/// See [`MetaAlgorithm::configure`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LearnerOptions {
    pub aggregate: crate::experiment::Aggregate,
    pub affinity: Option<crate::experiment::AffinitySpec>,
    /// The experiment's seed: PCGrad's order stream.
    pub seed: u64,
}

/// What every algorithm is built from.
pub struct AlgoContext {
    pub net: Arc<Network>,
    pub settings: ArmSettings,
    pub total_iterations: usize,
    /// Seeds initial parameters (and the multi-task task set), identical across arms.
    pub seed: u64,
}

/// The affinity tracker's state errors are the learner's own (that module sits below this one).
impl From<super::affinity::StateError> for AlgoError {
    fn from(e: super::affinity::StateError) -> AlgoError {
        use super::affinity::StateError;
        match e {
            StateError::Missing(name) => AlgoError::MissingState(name),
            StateError::Length {
                name,
                found,
                expected,
            } => AlgoError::StateLength {
                name,
                found,
                expected,
            },
        }
    }
}

/// Look up a named state tensor of the expected length.
pub(crate) fn take_state(
    state: &BTreeMap<String, Vec<f32>>,
    name: &str,
    len: usize,
) -> Result<Vec<f32>, AlgoError> {
    let v = state
        .get(name)
        .ok_or_else(|| AlgoError::MissingState(name.into()))?;
    if v.len() != len {
        return Err(AlgoError::StateLength {
            name: name.into(),
            found: v.len(),
            expected: len,
        });
    }
    Ok(v.clone())
}

/// The mean over tasks of per-task gradients, summed in f64 in task order (so it does not depend
/// on which worker ran which task), or an error naming `what` when it is not finite.
pub(crate) fn mean_gradient<G: IntoIterator<Item = f64>>(
    per_task: impl IntoIterator<Item = G>,
    len: usize,
    what: &'static str,
) -> Result<Vec<f32>, AlgoError> {
    let mut sum = vec![0.0f64; len];
    let mut tasks = 0usize;
    for g in per_task {
        tasks += 1;
        for (m, x) in sum.iter_mut().zip(g) {
            *m += x;
        }
    }
    let grad: Vec<f32> = sum.iter().map(|&g| (g / tasks as f64) as f32).collect();
    if grad.iter().any(|g| !g.is_finite()) {
        return Err(AlgoError::NotFinite { what });
    }
    Ok(grad)
}

/// Mean of per-task (loss, correct, n) into step statistics.
pub(crate) fn mean_stats(results: impl Iterator<Item = (f32, Option<usize>, usize)>) -> StepStats {
    let (mut loss, mut correct, mut total, mut count, mut classification) =
        (0.0f64, 0usize, 0usize, 0usize, false);
    for (l, c, n) in results {
        loss += l as f64;
        count += 1;
        if let Some(c) = c {
            classification = true;
            correct += c;
            total += n;
        }
    }
    StepStats {
        loss: loss / count.max(1) as f64,
        accuracy: classification.then(|| correct as f64 / total.max(1) as f64),
    }
}
