//! Task families: where episodes (support + query sets) come from.
//!
//! Every draw takes the caller's RNG, so the run that owns the RNG owns reproducibility.

pub mod augment;
mod build;
pub mod episode;
pub mod lake;
pub mod mixed;
pub mod omniglot;
pub mod sinusoid;
pub mod streams;
pub mod synthetic;

use std::path::PathBuf;

use rand_chacha::ChaCha8Rng;
use thiserror::Error;

pub type Rng = ChaCha8Rng;

// Splits are recorded with every evaluation, so they live with the metric records.
pub use crate::metrics::{split_name, Split};
pub use build::{build_family, build_family_reporting, check_family, check_folders};

/// What a model sees: per-example input shape and what it must predict.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyShape {
    /// Per-example input shape: `[d]` for vectors, `[c, h, w]` for images.
    pub input: Vec<usize>,
    /// Regression outputs or number of classes (ways).
    pub outputs: usize,
    pub kind: TaskKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Regression,
    Classification,
}

impl FamilyShape {
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }
}

/// Targets of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// `n × outputs` values, row-major.
    Values(Vec<f32>),
    /// One class index per example.
    Classes(Vec<usize>),
}

/// `n` examples: inputs row-major (`n × input_len`) and their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub n: usize,
    pub x: Vec<f32>,
    pub y: Targets,
}

/// One task's data for one adaptation: adapt on `support`, score on `query`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub support: Batch,
    pub query: Batch,
}

/// A task drawn from a family; episodes are drawn from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Task {
    Sinusoid {
        amplitude: f32,
        phase: f32,
    },
    /// Class ids (family-specific numbering) in label order: label `i` is `classes[i]`.
    Classes {
        split: Split,
        classes: Vec<usize>,
    },
    /// A mixed family's function (`tasks::mixed`): its kind, group, index in the family's fixed
    /// task set (`None` for a fresh evaluation task) and coefficients.
    Function {
        kind: crate::experiment::FunctionKind,
        group: usize,
        fixed: Option<usize>,
        coefficients: [f32; 3],
    },
}

impl Task {
    /// The task's group in a family of named task groups.
    pub fn group(&self) -> Option<usize> {
        match self {
            Task::Function { group, .. } => Some(*group),
            _ => None,
        }
    }

    /// The task's index in its family's fixed task set ([`TaskFamily::fixed_tasks`]).
    pub fn fixed_index(&self) -> Option<usize> {
        match self {
            Task::Function { fixed, .. } => *fixed,
            _ => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum FamilyError {
    #[error("Omniglot folder {path} does not exist\n  fix: set `family.root` to the folder that holds images_background/ (and images_evaluation/), pass --data DIR, or set METALAB_OMNIGLOT")]
    MissingRoot { path: PathBuf },
    #[error(
        "Omniglot split folder {path} is missing, and protocol {protocol} needs it\n  fix: {fix}"
    )]
    MissingSplit {
        path: PathBuf,
        protocol: String,
        fix: String,
    },
    #[error("{split:?} split has {available} classes but tasks are {ways}-way\n  fix: {fix}")]
    TooFewClasses {
        split: Split,
        available: usize,
        ways: usize,
        fix: String,
    },
    #[error("{split:?} split: tasks draw all {ways} classes from one alphabet (classes: WithinAlphabet), but its widest alphabet has {widest} characters (a rotated alphabet counts as another alphabet)\n  fix: {fix}")]
    NarrowAlphabets {
        split: Split,
        widest: usize,
        ways: usize,
        fix: String,
    },
    #[error("{path}: {message}\n  fix: replace or remove this file (the release's drawings are 105×105 PNGs)")]
    BadImage { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A source of tasks. Implementations hold their data in memory; sampling never touches disk.
pub trait TaskFamily: Send + Sync {
    fn shape(&self) -> FamilyShape;
    fn sample_task(&self, split: Split, rng: &mut Rng) -> Task;
    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode;
    /// A one-line description for logs and the UI, e.g. "Omniglot 5-way 1-shot, 3856 train classes".
    fn describe(&self) -> String;
    /// What a run should record about how classes were split (seeded), as JSON.
    fn split_record(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// `task`'s true function at `n` evenly spaced inputs over the family's input range, as
    /// (inputs, targets), for regression families with one input (the MAML paper's figure);
    /// `None` for the others.
    fn curve(&self, _task: &Task, _n: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        None
    }
    /// A class id's name for people (an Omniglot character's folder), where the family has one.
    fn class_label(&self, _class: usize) -> Option<String> {
        None
    }
    /// The family's named, fixed training tasks, when it has them (the mixed family): a
    /// multi-task arm trains on these, in order, instead of drawing its own.
    fn fixed_tasks(&self) -> Option<&[Task]> {
        None
    }
    /// Fixed task `t`'s name for people (an Omniglot alphabet task's alphabet), where the
    /// family names its fixed tasks one by one.
    fn fixed_task_name(&self, _t: usize) -> Option<String> {
        None
    }
    /// An episode of `task` on data training never sees, where the family keeps a task's
    /// training data apart (a mixed family with a finite `pool` of points per fixed task); by
    /// default simply an episode.
    fn held_out_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        self.sample_episode(task, rng)
    }
    /// `task`'s held-out data cut into disjoint episodes (queries only) that hold each held-out
    /// example exactly once, where the family keeps a small, finite held-out set per fixed task
    /// (an Omniglot alphabet task: episode i is the i-th held-out drawing of each of its
    /// characters). Fresh episodes drawn from such a set would reuse its examples, and losses
    /// over them are not independent; `None` where held-out episodes are drawn afresh.
    fn held_out_partition(&self, _task: &Task) -> Option<Vec<Episode>> {
        None
    }
}

/// Told `(done, total)` as a family loads its data (images decoded), from any thread.
pub type Progress<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// `file:line:col: ` of the family's data folder (or the family) in `file`, the prefix every
/// data error carries, in `check` and in `run` alike.
pub fn data_position(file: &std::path::Path) -> String {
    let text = crate::experiment::read_text(file).unwrap_or_default();
    match crate::experiment::locate(&text, "family.root") {
        Some((l, c)) => format!("{}:{l}:{c}: ", file.display()),
        None => format!("{}: ", file.display()),
    }
}
