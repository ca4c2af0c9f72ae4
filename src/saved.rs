//! `metalab eval`: a saved run's checkpoint evaluated under another protocol (other ways, shots,
//! queries, split, steps), or on Lake et al.'s one-shot runs folder. Results are appended to
//! `runs/<id>/evals.jsonl` with their full protocol; the training result is never touched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::algo::embedding::{self, EmbeddingProbe, TaskProperty};
use crate::algo::eval::{adapt_and_score, summarize, Scoring, TaskEval};
use crate::algo::{self, cavia, AdaptMode, AlgoContext};
use crate::experiment::{AffineRanges, Augment, Experiment, FamilySpec, Trunks};
use crate::metrics::EvalResult;
use crate::model::{BatchNormMode, ModelError, Network};
use crate::pool::WorkerPool;
use crate::runs::checkpoint::Checkpoint;
use crate::runs::{self, RunError};
use crate::stats::MeanCi;
use crate::tasks::streams::{tasks_and_episodes, EvalStream};
use crate::tasks::{
    augment, build_family, lake, Episode, FamilyError, FamilyShape, Rng, Split, Task, TaskFamily,
};
use crate::transfer::{self, TaskLosses, TaskTransfer, TransferError};

/// Where `metalab eval` appends its results, one JSON object a line (named with the run's other
/// files, in `runs`).
pub use crate::runs::EVALS;

/// Where `metalab eval` of an arm with a task embedding writes each test task's adapted
/// embedding and parameters (rewritten by every such evaluation).
pub const EMBEDDINGS: &str = "embeddings.csv";

#[derive(Debug, Error)]
pub enum SavedEvalError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Family(#[from] FamilyError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("unknown split `{0}`\n  fix: use --split test, validation or train")]
    UnknownSplit(String),
    #[error("--ways: this run was trained on {family}, which has no classes\n  fix: drop --ways (--shots and --queries apply)")]
    WaysWithoutClasses { family: &'static str },
    #[error("--within-alphabet: this run was trained on {family}, which has no alphabets\n  fix: drop --within-alphabet (it applies to Omniglot runs)")]
    WithinAlphabetWithoutAlphabets { family: &'static str },
    #[error("the requested protocol is not valid: `{}`: {}\n  fix: {}", .0.field, .0.message, .0.fix)]
    InvalidProtocol(crate::experiment::ValidationError),
    #[error("this {algorithm} run's head has {trained} outputs (trained {trained}-way), and {wanted}-way tasks need {wanted}: a gradient-based arm's meta-learned head has no rows for the new classes\n  fix: evaluate with --ways {trained}, pass --fresh-head to replace the head by zeros and fine-tune it{}, or use a metric-based arm (ProtoNet, MatchingNet, RelationNet), whose classes come from the support set", .fresh_head.caveat())]
    HeadTooNarrow {
        algorithm: &'static str,
        trained: usize,
        wanted: usize,
        /// Whether `--fresh-head` would help this arm.
        fresh_head: FreshHead,
    },
    #[error("--support-copies: distorted copies of support images need an image family, and this run was trained on {family}\n  fix: drop --support-copies (it applies to Omniglot and synthetic image runs)")]
    SupportCopiesWithoutImages { family: &'static str },
    #[error("--lake: a Lake runs folder holds character images, and this run was trained on {family}\n  fix: evaluate an Omniglot or synthetic run")]
    LakeNeedsImages { family: &'static str },
    #[error("{}: {source}", .folder.display())]
    LakeWays {
        folder: PathBuf,
        source: lake::MixedWays,
    },
    #[error("{path}: the checkpoint does not fit this run's algorithm: {reason}\n  fix: the run directory may come from another metalab version; rerun it")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("evaluation failed: {0}")]
    Eval(#[from] crate::pool::PoolError),
    #[error("evaluation failed: {0}")]
    Algo(#[from] crate::algo::AlgoError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("--against: {} is a {algorithm} run, which trains no fixed task set to compare task by task\n  fix: compare two MultiTask arms of one experiment (e.g. the joint arm against trunks: PerTask)", .run.display())]
    NoTaskSet {
        run: PathBuf,
        algorithm: &'static str,
    },
}

/// Whether `--fresh-head` (a zero head fine-tuned at test time) can serve an arm whose head is
/// too narrow for the requested ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshHead {
    Helps,
    /// Meta-SGD: its learned rates have no entries for a new head.
    NoLearnedRates,
    /// CAVIA: it adapts only its context, so a zero head would stay zero.
    ContextOnly,
}

impl FreshHead {
    fn of(mode: &AdaptMode) -> Self {
        match mode {
            AdaptMode::LearnedRates { .. } => Self::NoLearnedRates,
            AdaptMode::Context { .. } => Self::ContextOnly,
            _ => Self::Helps,
        }
    }

    fn caveat(&self) -> &'static str {
        match self {
            Self::Helps => "",
            Self::NoLearnedRates => {
                " (not for Meta-SGD: its learned rates have no entries for a new head)"
            }
            Self::ContextOnly => {
                " (not for CAVIA: it adapts only its context, so a zero head would stay zero)"
            }
        }
    }
}

/// What to change from the run's own protocol; `None` keeps the run's value.
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    pub ways: Option<usize>,
    pub shots: Option<usize>,
    pub queries: Option<usize>,
    pub tasks: Option<usize>,
    pub split: Option<Split>,
    pub inner_steps: Option<usize>,
    pub inner_lr: Option<f64>,
    /// Omniglot folder, overriding the run's `root`.
    pub data: Option<PathBuf>,
    /// When the ways change, replace a gradient-based arm's head by zeros of the new width
    /// (fine-tuned by the arm's rule) instead of refusing.
    pub fresh_head: bool,
    /// Draw each task's classes from one alphabet (Lake's within-alphabet runs); Omniglot only.
    pub within_alphabet: bool,
    /// Test-time support augmentation: this many distorted copies of every support image
    /// (`tasks::augment::add_support_copies`); image families only.
    pub support_copies: usize,
    pub threads: Option<usize>,
    /// Score the query set after every step (the per-step curve) or only before and after.
    pub scoring: Scoring,
}

/// The protocol a saved evaluation ran, stored with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedProtocol {
    pub family: String,
    pub split: String,
    pub tasks: usize,
    pub ways: Option<usize>,
    pub shots: usize,
    pub queries: usize,
    pub inner_steps: usize,
    pub inner_lr: f64,
    pub adaptation: String,
    /// What the head was: the meta-learned one, a fresh zero head, or none (metric arms).
    pub head: String,
    pub batch_norm: BatchNormMode,
    /// How the test tasks were drawn.
    pub tasks_from: String,
    /// Distorted copies of each support image added at test time, and how they were drawn;
    /// absent when none were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_copies: Option<SupportCopies>,
}

/// Test-time support augmentation as a saved evaluation ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportCopies {
    pub copies: usize,
    /// The distortions' ranges, in words (the run's training ranges, else the defaults).
    pub distortions: String,
}

/// One Lake run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LakeRunResult {
    pub run: String,
    pub items: usize,
    pub errors: usize,
    pub error_rate: f64,
}

/// One line of `evals.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedEval {
    pub t_unix: u64,
    /// The training iteration the checkpoint holds.
    pub checkpoint_iteration: usize,
    pub protocol: SavedProtocol,
    pub result: EvalResult,
    /// Set for a Lake runs folder: the folder, each run's error rate.
    #[serde(default)]
    pub lake: Option<LakeReport>,
    /// Set for an arm with a task embedding (CAVIA's context) on tasks with known parameters:
    /// how linearly the adapted embeddings hold each parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingProbe>,
    /// Set with `--against`: each training task's loss against the other run's on the same
    /// episodes (issue 21's negative transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferReport>,
}

/// A multi-task run's training tasks, each against the same task in another run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferReport {
    /// The run compared against (its id).
    pub against: String,
    /// How that run's tasks shared trunks (`PerTask`: the single-task baseline).
    pub against_trunks: Trunks,
    /// The episodes (or held-out parts) each task was scored on.
    pub episodes: usize,
    #[serde(default)]
    pub scored_on: transfer::ScoredOn,
    /// Per task: this run's mean loss over the other's, its 95% interval, and the flag.
    pub tasks: Vec<TaskTransfer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LakeReport {
    pub folder: PathBuf,
    pub runs: Vec<LakeRunResult>,
    /// Mean error rate over runs, with its 95% CI.
    pub error_rate: MeanCi,
}

pub fn parse_split(s: &str) -> Result<Split, SavedEvalError> {
    Split::from_name(s).ok_or_else(|| SavedEvalError::UnknownSplit(s.to_string()))
}

fn split_name(s: Split) -> &'static str {
    s.name()
}

/// The run's experiment with the request's family changes applied.
fn modified(exp: &Experiment, req: &EvalRequest) -> Result<Experiment, SavedEvalError> {
    let mut e = exp.clone();
    // From the run's own evaluation episodes, which `eval` may shape unlike training's.
    e.family = exp.eval_family();
    (e.eval.ways, e.eval.shots, e.eval.queries) = (None, None, None);
    if req.ways.is_some() && !e.family.is_classification() {
        return Err(SavedEvalError::WaysWithoutClasses {
            family: e.family.label(),
        });
    }
    e.family = e.family.reshaped(req.ways, req.shots, req.queries);
    if let (Some(d), FamilySpec::Omniglot(o)) = (&req.data, &mut e.family) {
        o.root = d.clone();
    }
    if req.within_alphabet {
        let FamilySpec::Omniglot(o) = &mut e.family else {
            return Err(SavedEvalError::WithinAlphabetWithoutAlphabets {
                family: e.family.label(),
            });
        };
        o.classes = crate::experiment::ClassDraw::WithinAlphabet;
    }
    e.eval.tasks = req.tasks.unwrap_or(e.eval.tasks);
    e.eval.inner_steps = req.inner_steps.unwrap_or(e.eval.inner_steps);
    e.eval.inner_lr = req.inner_lr.unwrap_or(e.eval.inner_lr);
    if let Some(err) = crate::experiment::validate(&e, "").into_iter().next() {
        return Err(SavedEvalError::InvalidProtocol(err));
    }
    Ok(e)
}

/// A family that only knows its shape: what the algorithms are rebuilt from when evaluating on
/// a Lake folder, where no task family is loaded. The multi-task arm draws its (unused here)
/// training task set from it at construction; nothing samples episodes.
struct ShapeOnly(FamilyShape);

impl TaskFamily for ShapeOnly {
    fn shape(&self) -> FamilyShape {
        self.0.clone()
    }
    fn sample_task(&self, split: Split, _rng: &mut Rng) -> Task {
        Task::Classes {
            split,
            classes: vec![],
        }
    }
    fn sample_episode(&self, _task: &Task, _rng: &mut Rng) -> crate::tasks::Episode {
        unreachable!("a shape-only family has no episodes")
    }
    fn describe(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// The saved model, rebuilt and loaded, ready to adapt to tasks of `shape`.
struct Loaded {
    start: Vec<f32>,
    mode: AdaptMode,
    head: String,
    net: Network,
    iteration: usize,
}

fn load_model(
    dir: &Path,
    exp: &Experiment,
    trained_outputs: usize,
    family: &dyn TaskFamily,
    fresh_head: bool,
) -> Result<Loaded, SavedEvalError> {
    let shape = family.shape();
    let trained_shape = FamilyShape {
        outputs: trained_outputs,
        ..shape.clone()
    };
    let trained_net = Arc::new(Network::new(&exp.model, &trained_shape)?);
    let net = Network::new(&exp.model, &shape)?;
    let arm = &exp.arms[0];
    let ctx = AlgoContext {
        net: trained_net.clone(),
        settings: exp.arm_settings(arm),
        total_iterations: exp.train.iterations,
        seed: exp.seed,
    };
    let mut algo = algo::build(&arm.algorithm, ctx, family);
    let ck_path = dir.join(runs::CHECKPOINT);
    let ck = Checkpoint::load(&ck_path)?;
    let iteration = ck.resume.iteration;
    algo.load_state(&ck.tensors)
        .map_err(|reason| SavedEvalError::Checkpoint {
            path: ck_path.clone(),
            reason: reason.to_string(),
        })?;
    let (mut start, mode) = algo.adapt_start();
    let hs = trained_net.layout.head_start;
    let mut head = match mode {
        AdaptMode::Metric { .. } => {
            "none: metric-based, the classes come from the support set".to_string()
        }
        AdaptMode::HeadOnly { .. } => format!(
            "a fresh zero head ({} outputs), as the multi-task protocol always uses",
            shape.outputs
        ),
        _ => format!("the meta-learned head ({trained_outputs} outputs)"),
    };
    if shape.outputs != trained_outputs {
        match mode {
            AdaptMode::Metric { .. } => {}
            AdaptMode::HeadOnly { head_start } => {
                start.truncate(head_start);
                start.extend(net.fresh_head());
            }
            AdaptMode::All | AdaptMode::HeadSgd { .. } if fresh_head => {
                start.truncate(hs);
                start.extend(net.fresh_head());
                head = format!(
                    "a fresh zero head ({} outputs) replacing the meta-learned {trained_outputs}-way head (--fresh-head), adapted by the arm's rule",
                    shape.outputs
                );
            }
            _ => {
                return Err(SavedEvalError::HeadTooNarrow {
                    algorithm: arm.algorithm.label(),
                    trained: trained_outputs,
                    wanted: shape.outputs,
                    fresh_head: FreshHead::of(&mode),
                });
            }
        }
    }
    Ok(Loaded {
        start,
        mode,
        head,
        net,
        iteration,
    })
}

fn batch_norm(net: &Network, mode: AdaptMode) -> BatchNormMode {
    mode.batch_norm(net.batch_norm())
}

fn threads(req: &EvalRequest) -> usize {
    req.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn append(dir: &Path, record: &SavedEval) -> Result<(), SavedEvalError> {
    let path = dir.join(EVALS);
    let line = serde_json::to_string(record).expect("an evaluation record serializes");
    // Never through a link: a copied run folder could point evals.jsonl anywhere.
    let mut f = runs::files::open_append(&path, true).map_err(|e| RunError::io(&path, e))?;
    writeln!(f, "{line}").map_err(|e| RunError::io(&path, e))?;
    Ok(())
}

/// A run's per-task losses recomputed from its checkpoint, on the episodes its end recorded
/// them on ([`crate::transfer::TASK_LOSSES`]); `None` for an arm without a fixed task set.
pub fn task_losses(dir: &Path, threads: usize) -> Result<Option<TaskLosses>, SavedEvalError> {
    runs::refuse_links(dir)?;
    let exp = runs::load_config(dir)?;
    // The training family as training saw it (the fixed tasks live there).
    let family = crate::tasks::augment::wrap(
        Arc::from(build_family(&exp.family, exp.seed)?),
        exp.train.augment,
    );
    let net = Arc::new(Network::new(&exp.model, &family.shape())?);
    let arm = &exp.arms[0];
    let ctx = AlgoContext {
        net: net.clone(),
        settings: exp.arm_settings(arm),
        total_iterations: exp.train.iterations,
        seed: exp.seed,
    };
    let mut algo = algo::build(&arm.algorithm, ctx, family.as_ref());
    let ck_path = dir.join(runs::CHECKPOINT);
    let ck = Checkpoint::load(&ck_path)?;
    algo.load_state(&ck.tensors)
        .map_err(|reason| SavedEvalError::Checkpoint {
            path: ck_path.clone(),
            reason: reason.to_string(),
        })?;
    let pool = WorkerPool::new(&net, exp.device, exp.seed, threads)?;
    let seed = transfer::episode_seed(exp.seed);
    let scores = algo.task_losses(family.as_ref(), &pool, transfer::EPISODES, seed)?;
    let iteration = ck.resume.iteration;
    Ok(scores.map(|s| TaskLosses::new(&exp, 0, family.as_ref(), iteration, s)))
}

/// Run `dir`'s training tasks against run `other`'s, on the same episodes.
fn transfer_report(
    dir: &Path,
    other: &Path,
    threads: usize,
) -> Result<TransferReport, SavedEvalError> {
    let losses = |d: &Path| -> Result<TaskLosses, SavedEvalError> {
        task_losses(d, threads)?.ok_or_else(|| SavedEvalError::NoTaskSet {
            run: d.to_path_buf(),
            algorithm: runs::load_config(d)
                .map(|e| e.arms[0].algorithm.label())
                .unwrap_or("non-multi-task"),
        })
    };
    let (joint, single) = (losses(dir)?, losses(other)?);
    Ok(TransferReport {
        against: runs::run_id(other),
        against_trunks: single.trunks.clone(),
        episodes: joint.losses.first().map_or(0, Vec::len),
        scored_on: joint.scored_on,
        tasks: transfer::against(&joint, &single)?,
    })
}

/// The request's support copies added to `episodes` (from a stream of their own, so the tasks
/// and queries stay those of the run's own test), and what was done; `None` when none asked.
fn copy_supports(
    exp: &Experiment,
    req: &EvalRequest,
    input: &[usize],
    episodes: &mut [Episode],
) -> Result<Option<SupportCopies>, SavedEvalError> {
    if req.support_copies == 0 {
        return Ok(None);
    }
    if !matches!(
        exp.family,
        FamilySpec::Omniglot(_) | FamilySpec::Synthetic(_)
    ) || input.len() < 2
    {
        return Err(SavedEvalError::SupportCopiesWithoutImages {
            family: exp.family.label(),
        });
    }
    let ranges = match exp.train.augment {
        Augment::Affine(r) => r,
        Augment::Off => AffineRanges::default(),
    };
    let mut rng = Rng::seed_from_u64(EvalStream::Test.seed(exp.seed) ^ SUPPORT_COPIES_STREAM);
    for e in episodes {
        augment::add_support_copies(e, input, req.support_copies, &ranges, &mut rng);
    }
    Ok(Some(SupportCopies {
        copies: req.support_copies,
        distortions: augment::describe(&ranges),
    }))
}

/// Mixed into the test stream's seed for the support copies' distortions.
const SUPPORT_COPIES_STREAM: u64 = 0x7375_7070_6f72_7421;

/// Evaluate the run in `dir` under the request's protocol and append the result to
/// `evals.jsonl`. Test tasks come from the same seeded stream as the run's final evaluation, so
/// an unchanged protocol reproduces the run's own result.
pub fn evaluate_run(dir: &Path, req: &EvalRequest) -> Result<SavedEval, SavedEvalError> {
    evaluate_run_against(dir, req, None)
}

/// [`evaluate_run`], and with `against` (another run's folder) each training task compared
/// with the same task there ([`TransferReport`]).
pub fn evaluate_run_against(
    dir: &Path,
    req: &EvalRequest,
    against: Option<&Path>,
) -> Result<SavedEval, SavedEvalError> {
    // Before the work, not at the append: a link among the run's files is refused.
    runs::refuse_links(dir)?;
    let transfer = match against {
        Some(other) => Some(transfer_report(dir, other, threads(req))?),
        None => None,
    };
    let exp = runs::load_config(dir)?;
    let (trained_ways, _, _) = exp.family.episode_shape();
    let e = modified(&exp, req)?;
    let family = build_family(&e.family, e.seed)?;
    let trained_outputs = trained_ways.unwrap_or(family.shape().outputs);
    let m = load_model(dir, &exp, trained_outputs, family.as_ref(), req.fresh_head)?;
    let split = req.split.unwrap_or(Split::Test);
    let (tasks, test): (Vec<Task>, Vec<_>) = tasks_and_episodes(
        family.as_ref(),
        split,
        EvalStream::Test.seed(e.seed),
        e.eval.tasks,
    )
    .into_iter()
    .unzip();
    let mut test = test;
    let support_copies = copy_supports(&exp, req, &family.shape().input, &mut test)?;
    let pool = WorkerPool::new(&m.net, e.device, e.seed, threads(req))?;
    let (steps, lr) = m.mode.effective(e.eval.inner_steps, e.eval.inner_lr);
    let embedding = match m.mode {
        AdaptMode::Context { context, lr }
            if tasks.iter().any(|t| !TaskProperty::of(t).is_empty()) =>
        {
            let emb = cavia::embeddings(&pool, m.start.clone(), context, lr, test.clone(), steps)?;
            let path = dir.join(EMBEDDINGS);
            runs::atomic::write(&path, embedding::csv(&emb, &tasks).as_bytes())
                .map_err(|e| RunError::io(&path, e))?;
            embedding::probe(&emb, &tasks, steps).map(|p| EmbeddingProbe {
                csv: Some(EMBEDDINGS.into()),
                ..p
            })
        }
        _ => None,
    };
    let results = adapt_and_score(
        &pool,
        m.start,
        m.mode,
        test,
        e.eval.inner_steps,
        e.eval.inner_lr,
        req.scoring,
    )?;
    let result = summarize(m.iteration, split, &results, steps, lr);
    let (ways, shots, queries) = e.family.episode_shape();
    let record = SavedEval {
        t_unix: runs::now_unix(),
        checkpoint_iteration: m.iteration,
        protocol: SavedProtocol {
            family: family.describe(),
            split: split_name(split).into(),
            tasks: e.eval.tasks,
            ways,
            shots,
            queries,
            inner_steps: steps,
            inner_lr: lr,
            adaptation: m.mode.describe(steps, lr),
            head: m.head,
            batch_norm: batch_norm(&m.net, m.mode),
            tasks_from: format!("{} tasks of the {} split drawn from the run's seed ({}) on the final evaluation's stream: the same tasks as the run's own result when the protocol matches", e.eval.tasks, split_name(split), e.seed),
            support_copies,
        },
        result,
        lake: None,
        embedding,
        transfer,
    };
    append(dir, &record)?;
    Ok(record)
}

/// Evaluate the run in `dir` on a Lake-layout one-shot runs folder: each run is one episode;
/// the error rate per run and their mean are stored in `evals.jsonl`.
pub fn evaluate_lake(
    dir: &Path,
    folder: &Path,
    req: &EvalRequest,
) -> Result<SavedEval, SavedEvalError> {
    runs::refuse_links(dir)?;
    let exp = runs::load_config(dir)?;
    let (trained_ways, _, _) = exp.family.episode_shape();
    let size = match &exp.family {
        FamilySpec::Omniglot(o) => o.image_size,
        FamilySpec::Synthetic(s) => s.image_size,
        FamilySpec::Sinusoid(_) | FamilySpec::Mixed(_) => {
            return Err(SavedEvalError::LakeNeedsImages {
                family: exp.family.label(),
            })
        }
    };
    let lake_runs = lake::load_runs(folder, size)?;
    let ways = lake::ways_of(&lake_runs).map_err(|source| SavedEvalError::LakeWays {
        folder: folder.to_path_buf(),
        source,
    })?;
    let shape = crate::tasks::episode::image_classes_shape(size, ways);
    let m = load_model(
        dir,
        &exp,
        trained_ways.unwrap_or(ways),
        &ShapeOnly(shape.clone()),
        req.fresh_head,
    )?;
    let (steps, lr) = (
        req.inner_steps.unwrap_or(exp.eval.inner_steps),
        req.inner_lr.unwrap_or(exp.eval.inner_lr),
    );
    let pool = WorkerPool::new(&m.net, exp.device, exp.seed, threads(req))?;
    let names: Vec<String> = lake_runs.iter().map(|r| r.name.clone()).collect();
    let items: Vec<usize> = lake_runs.iter().map(|r| r.episode.query.n).collect();
    let mut episodes: Vec<Episode> = lake_runs.into_iter().map(|r| r.episode).collect();
    let support_copies = copy_supports(&exp, req, &shape.input, &mut episodes)?;
    let results: Vec<TaskEval> =
        adapt_and_score(&pool, m.start, m.mode, episodes, steps, lr, req.scoring)?;
    let per_run: Vec<LakeRunResult> = names
        .iter()
        .zip(&items)
        .zip(&results)
        .map(|((name, &n), r)| {
            let acc = r.accuracy.unwrap_or(0.0);
            let errors = ((1.0 - acc) * n as f64).round() as usize;
            LakeRunResult {
                run: name.clone(),
                items: n,
                errors,
                error_rate: errors as f64 / n as f64,
            }
        })
        .collect();
    let error_rate = MeanCi::of(&per_run.iter().map(|r| r.error_rate).collect::<Vec<_>>());
    let (esteps, elr) = m.mode.effective(steps, lr);
    // The split field names a task split; the protocol's `split` says "lake".
    let result = summarize(m.iteration, Split::Test, &results, esteps, elr);
    let record = SavedEval {
        t_unix: runs::now_unix(),
        checkpoint_iteration: m.iteration,
        protocol: SavedProtocol {
            family: format!(
                "Lake one-shot runs folder {} ({} runs, {ways}-way 1-shot), {size}×{size}",
                folder.display(),
                per_run.len()
            ),
            split: "lake".into(),
            tasks: per_run.len(),
            ways: Some(ways),
            shots: 1,
            queries: items.iter().sum::<usize>() / items.len().max(1),
            inner_steps: esteps,
            inner_lr: elr,
            adaptation: m.mode.describe(esteps, elr),
            head: m.head,
            batch_norm: batch_norm(&m.net, m.mode),
            tasks_from: "every run of the folder, in name order; training/ images are the support set (one per class), test/ items the queries, labelled by class_labels.txt".into(),
            support_copies,
        },
        result,
        lake: Some(LakeReport {
            folder: folder.to_path_buf(),
            runs: per_run,
            error_rate,
        }),
        embedding: None,
        transfer: None,
    };
    append(dir, &record)?;
    Ok(record)
}

/// Every saved evaluation of a run, oldest first (a partial last line is skipped).
pub fn load_evals(dir: &Path) -> Result<Vec<SavedEval>, SavedEvalError> {
    let path = dir.join(EVALS);
    let text = match runs::files::read_text(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(RunError::io(&path, e).into()),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
