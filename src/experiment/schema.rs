use std::path::PathBuf;

use crate::device::{CustomOp, DeviceKind};
use serde::{Deserialize, Serialize};

/// One experiment: a task family, a model, and one or more arms trained on identical task streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub device: DeviceSpec,
    /// Worker threads per experiment (0 = all cores). Results do not depend on it.
    #[serde(default)]
    pub threads: usize,
    pub family: FamilySpec,
    pub model: ModelSpec,
    pub arms: Vec<Arm>,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub eval: EvalSpec,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// CUDA device ordinal (the driver, NVRTC and cuBLAS are loaded at run time).
    Cuda(usize),
}

impl DeviceSpec {
    pub fn kind(self) -> DeviceKind {
        match self {
            DeviceSpec::Cpu => DeviceKind::Cpu,
            DeviceSpec::Cuda(_) => DeviceKind::Cuda,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FamilySpec {
    /// Sine regression (Finn et al. 2017): amplitude U[0.1, 5], phase U[0, π], x U[-5, 5].
    Sinusoid(SinusoidSpec),
    /// N-way K-shot classification over the Omniglot folder layout.
    Omniglot(OmniglotSpec),
    /// Procedurally generated image classes: no files needed.
    Synthetic(SyntheticSpec),
    /// Regression over named, fixed tasks in groups of one function kind each (sines, lines,
    /// …): task relatedness known by construction (`tasks::mixed`).
    Mixed(MixedSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Mixed")]
pub struct MixedSpec {
    pub shots: usize,
    pub queries: usize,
    /// One group per entry, named by its kind and position (`sine`, `line`, `sine#2`, …).
    pub groups: Vec<FunctionKind>,
    /// Fixed training tasks drawn (seeded) in each group.
    pub tasks_per_group: usize,
    /// Training points per fixed task: each training episode draws its support and query
    /// points from a pool of this many inputs, drawn once per task from the seed (the data a
    /// task has); 0, the default: fresh inputs for every episode. Held-out episodes (the
    /// per-task comparison of `transfer`) always draw fresh inputs.
    #[serde(skip_serializing_if = "is_zero")]
    pub pool: usize,
    /// Observation noise: every target, training and held-out alike, is the function's value
    /// plus Gaussian noise of this standard deviation, drawn from the episode's seeded stream
    /// (so every arm scores the same noisy targets). 0, the default: exact values. A model
    /// can do no better than a mean squared error of `noise²` on held-out points.
    #[serde(skip_serializing_if = "is_zero_f32")]
    pub noise: f32,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f32(x: &f32) -> bool {
    *x == 0.0
}

impl Default for MixedSpec {
    fn default() -> Self {
        MixedSpec {
            shots: 10,
            queries: 10,
            groups: vec![
                FunctionKind::Sine,
                FunctionKind::NegSine,
                FunctionKind::Line,
                FunctionKind::Quadratic,
            ],
            tasks_per_group: 3,
            pool: 0,
            noise: 0.0,
        }
    }
}

/// A mixed family's function kinds, on x ∈ [−5, 5].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionKind {
    /// `a·sin(x − φ)`, a ∈ [1.5, 2], φ ∈ [0, 0.3].
    Sine,
    /// `−a·sin(x − φ)`, the same ranges: the sines' targets negated, so they conflict.
    NegSine,
    /// `a·x + b`, a ∈ [0.3, 0.5], b ∈ [−0.3, 0.3].
    Line,
    /// `a·(x² − 25/3) + b·x + c`, a ∈ [0.15, 0.25], b ∈ [−0.2, 0.2], c ∈ [−0.3, 0.3].
    Quadratic,
}

impl FunctionKind {
    pub fn name(self) -> &'static str {
        match self {
            FunctionKind::Sine => "sine",
            FunctionKind::NegSine => "negsine",
            FunctionKind::Line => "line",
            FunctionKind::Quadratic => "quadratic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Sinusoid")]
pub struct SinusoidSpec {
    /// Support points per task (K).
    pub shots: usize,
    /// Query points per task.
    pub queries: usize,
}

impl Default for SinusoidSpec {
    fn default() -> Self {
        SinusoidSpec {
            shots: 10,
            queries: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Omniglot")]
pub struct OmniglotSpec {
    /// Folder holding `images_background/` and/or `images_evaluation/`.
    /// Overridden by `--data DIR` or the `METALAB_OMNIGLOT` environment variable.
    pub root: PathBuf,
    #[serde(default = "omniglot_ways")]
    pub ways: usize,
    #[serde(default = "omniglot_shots")]
    pub shots: usize,
    #[serde(default = "omniglot_queries")]
    pub queries: usize,
    #[serde(default = "omniglot_image_size")]
    pub image_size: usize,
    /// Add 90°, 180°, 270° rotations of every character as new classes.
    #[serde(default)]
    pub rotations: bool,
    #[serde(default)]
    pub protocol: OmniglotProtocol,
    /// Which classes a task draws: from any alphabets of its split, or all from one (Lake's
    /// within-alphabet runs, the harder test).
    #[serde(default, skip_serializing_if = "ClassDraw::is_default")]
    pub classes: ClassDraw,
    /// Alphabets as named, fixed tasks for multi-task training (issue 21), a standard
    /// multi-task benchmark; absent, the default: no fixed tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabet_tasks: Option<AlphabetTasks>,
}

/// Each training-split alphabet with at least `ways` characters is one fixed task over `ways`
/// of its characters (chosen once from the seed, in a fixed label order), so a multi-task arm
/// gives every alphabet its own head. The last `held_out` drawings of each of those
/// characters never enter a training episode: the per-task comparison of `transfer` scores
/// every alphabet on them. Its interval treats the held-out episodes as independent, and they
/// share drawings: with `held_out` = shots + queries every one holds the same drawings and the
/// interval has zero width (docs/results.md, "Omniglot alphabets as tasks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Alphabets")]
pub struct AlphabetTasks {
    pub held_out: usize,
}

/// How a classification task chooses its classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum ClassDraw {
    /// Any `ways` classes of the split.
    #[default]
    AnyAlphabet,
    /// One alphabet of the split (among those with at least `ways` classes), then `ways` of its
    /// classes: Lake et al.'s one-shot runs are drawn this way.
    WithinAlphabet,
}

impl ClassDraw {
    pub fn is_default(&self) -> bool {
        *self == ClassDraw::AnyAlphabet
    }
}

// Omniglot has a required `root`, so no `Default`: its defaults live here alone.
fn omniglot_ways() -> usize {
    5
}
fn omniglot_shots() -> usize {
    1
}
fn omniglot_queries() -> usize {
    15
}
fn omniglot_image_size() -> usize {
    28
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum OmniglotProtocol {
    /// Meta-train on `images_background`, evaluate on `images_evaluation` (the published protocol).
    #[default]
    BackgroundEvaluation,
    /// Split whole alphabets of every split present, seeded by the experiment seed.
    /// Fractions are of alphabets: train, validation; the rest is test.
    AlphabetSplit { train: f64, validation: f64 },
    /// Split characters of every split present (the 1200/423 style split), seeded.
    CharacterSplit { train: f64, validation: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Synthetic")]
pub struct SyntheticSpec {
    pub ways: usize,
    pub shots: usize,
    pub queries: usize,
    /// Classes in the whole family; split 60/20/20 into train/validation/test.
    pub classes: usize,
    /// Image side (images are 1×size×size).
    pub image_size: usize,
    /// Per-pixel noise standard deviation added to each drawing of a class prototype.
    pub noise: f32,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            ways: 5,
            shots: 1,
            queries: 5,
            classes: 100,
            image_size: 12,
            noise: 0.3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelSpec {
    /// Fully connected network; image inputs are flattened.
    Mlp(MlpSpec),
    /// `blocks` × (3×3 conv, optional batch norm, ReLU, 2×2 max pool), then a linear head.
    Conv(ConvSpec),
}

impl FamilySpec {
    /// Whether tasks have classes (accuracy, ways) rather than real-valued targets.
    pub fn is_classification(&self) -> bool {
        match self {
            FamilySpec::Sinusoid(_) | FamilySpec::Mixed(_) => false,
            FamilySpec::Omniglot(_) | FamilySpec::Synthetic(_) => true,
        }
    }

    /// The family in words, for messages: "sinusoid regression", …
    pub fn label(&self) -> &'static str {
        match self {
            FamilySpec::Sinusoid(_) => "sinusoid regression",
            FamilySpec::Omniglot(_) => "Omniglot classification",
            FamilySpec::Synthetic(_) => "synthetic classification",
            FamilySpec::Mixed(_) => "mixed regression",
        }
    }

    /// Per-example input shape: `[d]` for vectors, `[c, h, w]` for images (known from the
    /// spec alone, before any data is loaded).
    pub fn input_shape(&self) -> Vec<usize> {
        match self {
            FamilySpec::Sinusoid(_) | FamilySpec::Mixed(_) => vec![1],
            FamilySpec::Omniglot(o) => vec![1, o.image_size, o.image_size],
            FamilySpec::Synthetic(s) => vec![1, s.image_size, s.image_size],
        }
    }

    /// `(ways, shots, queries)` of an episode (ways `None` for regression).
    pub fn episode_shape(&self) -> (Option<usize>, usize, usize) {
        match self {
            FamilySpec::Omniglot(o) => (Some(o.ways), o.shots, o.queries),
            FamilySpec::Synthetic(s) => (Some(s.ways), s.shots, s.queries),
            FamilySpec::Sinusoid(s) => (None, s.shots, s.queries),
            FamilySpec::Mixed(m) => (None, m.shots, m.queries),
        }
    }

    /// The same family with episodes of another shape; `None` keeps a value. Regression has no
    /// ways, so `ways` is ignored there (callers refuse it first, each in its own words).
    pub fn reshaped(
        &self,
        ways: Option<usize>,
        shots: Option<usize>,
        queries: Option<usize>,
    ) -> FamilySpec {
        let mut f = self.clone();
        match &mut f {
            FamilySpec::Omniglot(o) => {
                o.ways = ways.unwrap_or(o.ways);
                o.shots = shots.unwrap_or(o.shots);
                o.queries = queries.unwrap_or(o.queries);
            }
            FamilySpec::Synthetic(s) => {
                s.ways = ways.unwrap_or(s.ways);
                s.shots = shots.unwrap_or(s.shots);
                s.queries = queries.unwrap_or(s.queries);
            }
            FamilySpec::Sinusoid(s) => {
                s.shots = shots.unwrap_or(s.shots);
                s.queries = queries.unwrap_or(s.queries);
            }
            FamilySpec::Mixed(m) => {
                m.shots = shots.unwrap_or(m.shots);
                m.queries = queries.unwrap_or(m.queries);
            }
        }
        f
    }
}

/// Why a conv net cannot run on a family's inputs: the field to blame, what is wrong, the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub field: &'static str,
    pub message: String,
    pub fix: String,
}

impl ConvSpec {
    /// Whether these blocks can run on inputs of `input` shape; the model (which builds the
    /// layout) and validation (which reports it with a position) both ask this one question.
    pub fn misfit(&self, input: &[usize]) -> Option<Misfit> {
        let [_, h, w] = match input[..] {
            [c, h, w] if c > 0 && h > 0 && w > 0 => [c, h, w],
            _ => {
                return Some(Misfit {
                    field: "model",
                    message: format!("a conv net needs image inputs [channels, height, width], but this family's inputs have shape {input:?}"),
                    fix: "use an image family (e.g. Omniglot) or model: Mlp((hidden: [40, 40]))".into(),
                })
            }
        };
        if self.channels == 0 {
            return Some(Misfit {
                field: "model.channels",
                message: "model.channels is 0".into(),
                fix: "use channels: 64 (or 32 for speed)".into(),
            });
        }
        let (mut fh, mut fw) = (h, w);
        for i in 0..self.blocks {
            if fh < 2 || fw < 2 {
                return Some(Misfit {
                    field: "model.blocks",
                    message: format!("model.blocks = {} is too many for {h}×{w} images: after {i} blocks the feature map is {fh}×{fw}, too small for another 2×2 max pool", self.blocks),
                    fix: format!("set model.blocks to {} or fewer", max_blocks(h, w)),
                });
            }
            (fh, fw) = (fh / 2, fw / 2);
        }
        None
    }
}

/// How many blocks an `h×w` image can take before the feature map is smaller than 1×1.
fn max_blocks(mut h: usize, mut w: usize) -> usize {
    let mut b = 0;
    while h >= 2 && w >= 2 {
        (h, w, b) = (h / 2, w / 2, b + 1);
    }
    b
}

impl ModelSpec {
    /// The ops of our own (beyond dfdx's) that this model needs from its device.
    pub fn custom_ops(&self) -> &'static [CustomOp] {
        match self {
            ModelSpec::Mlp(_) => &[],
            ModelSpec::Conv(_) => &[CustomOp::ConvBlock],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Mlp")]
pub struct MlpSpec {
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Conv")]
pub struct ConvSpec {
    #[serde(default = "four")]
    pub blocks: usize,
    #[serde(default = "sixty_four")]
    pub channels: usize,
    #[serde(default = "yes")]
    pub batch_norm: bool,
}

fn four() -> usize {
    4
}
fn sixty_four() -> usize {
    64
}
fn yes() -> bool {
    true
}

/// One algorithm to compare; optional overrides of the shared training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    pub name: String,
    pub algorithm: Algorithm,
    #[serde(default)]
    pub inner_steps: Option<usize>,
    #[serde(default)]
    pub inner_lr: Option<f64>,
    #[serde(default)]
    pub meta_lr: Option<f64>,
    /// How the meta-batch's per-task updates become one (MAML, FOMAML, Reptile, multi-task).
    #[serde(default, skip_serializing_if = "Aggregate::is_mean")]
    pub aggregate: Aggregate,
}

/// How the tasks' updates of a meta-iteration are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Aggregate {
    /// Their mean (the algorithm's own combination).
    #[default]
    Mean,
    /// PCGrad (Yu et al. 2020): each task's update, on the shared parameters, projected off
    /// every other task's where they conflict (negative dot product), others visited in a
    /// seeded random order; then combined as with `Mean`.
    PcGrad,
}

impl Aggregate {
    pub fn is_mean(&self) -> bool {
        *self == Aggregate::Mean
    }
}

/// The task-affinity measurements during training (issue 21): the running-mean cosine of the
/// tasks' updates, and Fifty et al.'s lookahead affinity every `every` iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Affinity")]
pub struct AffinitySpec {
    /// Iterations between lookahead measurements (each costs T gradients and T² losses).
    pub every: usize,
    /// The step size of the lookahead step on one task's gradient.
    pub lookahead_lr: f64,
}

impl Default for AffinitySpec {
    fn default() -> Self {
        AffinitySpec {
            every: 10,
            lookahead_lr: 0.01,
        }
    }
}

/// Which of a multi-task arm's tasks share a trunk; each trunk is trained on its own tasks
/// alone, every task keeps its own head. All arms of an experiment start every trunk from the
/// same initial values and see the same episodes, so they differ in the sharing alone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Trunks {
    /// One trunk for every task: joint multi-task training.
    #[default]
    Shared,
    /// One trunk per task: every task trained alone, on the same episodes and with as many
    /// updates as under `Shared` (the single-task baseline of the negative-transfer
    /// comparison, `transfer`).
    PerTask,
    /// Groups of task indices (`0 .. tasks`), each task in exactly one: a trunk per group.
    Groups(Vec<Vec<usize>>),
    /// `groups` groups found from the task affinities measured (`train.affinity`) while the
    /// tasks train jointly for the first `after` iterations: then every group's trunk starts
    /// from the joint one and trains on its tasks alone (Fifty et al. 2021's grouping, on the
    /// lookahead affinity, by average-linkage clustering).
    Affinity { groups: usize, after: usize },
}

impl Trunks {
    pub fn is_shared(&self) -> bool {
        *self == Trunks::Shared
    }

    /// Each of `tasks` tasks' trunk, as training starts (`Affinity` starts shared).
    pub fn trunk_of(&self, tasks: usize) -> Vec<usize> {
        match self {
            Trunks::Shared | Trunks::Affinity { .. } => vec![0; tasks],
            Trunks::PerTask => (0..tasks).collect(),
            Trunks::Groups(groups) => {
                let mut of = vec![0; tasks];
                for (g, members) in groups.iter().enumerate() {
                    for &t in members {
                        if t < tasks {
                            of[t] = g;
                        }
                    }
                }
                of
            }
        }
    }

    /// How many trunks the parameters hold.
    pub fn count(&self, tasks: usize) -> usize {
        match self {
            Trunks::Shared => 1,
            Trunks::PerTask => tasks,
            Trunks::Groups(groups) => groups.len(),
            Trunks::Affinity { groups, .. } => *groups,
        }
    }
}

/// `deny_unknown_fields` reaches the struct variants too: `Maml(order: 2)` is an error, not a
/// silently dropped field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Algorithm {
    /// MAML with the exact second-order meta-gradient (Hessian-vector products by central
    /// differences of gradients, accumulated in f64).
    Maml {
        #[serde(default = "hvp_eps")]
        hvp_eps: f64,
    },
    /// First-order MAML: the query gradient at the adapted parameters.
    Fomaml,
    /// Reptile (Nichol et al. 2018): θ ← θ + ε·mean(θ'ᵢ − θ).
    Reptile {
        #[serde(default = "one_f")]
        epsilon: f64,
        /// Linearly anneal ε to 0 over training.
        #[serde(default = "yes")]
        anneal: bool,
        #[serde(default)]
        inner_optimizer: InnerOptimizer,
    },
    /// One shared trunk, one head per training task, trained jointly on a fixed task set;
    /// new tasks get a fresh head fine-tuned on their support set.
    MultiTask {
        #[serde(default = "twenty")]
        tasks: usize,
        /// Which tasks share a trunk (issue 21): all of them (joint training), each its own
        /// (the single-task baseline), or groups.
        #[serde(default, skip_serializing_if = "Trunks::is_shared")]
        trunks: Trunks,
    },
    /// Prototypical Networks (Snell et al. 2017): the body embeds, class prototypes are mean
    /// support embeddings, logits are −squared Euclidean distances; no inner loop.
    ProtoNet,
    /// Matching Networks (Vinyals et al. 2016), without full-context embeddings: softmax
    /// attention over cosine similarities to the support embeddings.
    MatchingNet,
    /// Relation Networks (Sung et al. 2018): a relation module (an MLP with `hidden` ReLU units
    /// on [query, class mean, |query − class mean|], sigmoid score) trained with MSE to the
    /// one-hot label.
    RelationNet {
        #[serde(default = "eight")]
        hidden: usize,
    },
    /// ANIL (Raghu et al. 2020): the inner loop adapts only the head; second order by default.
    Anil {
        #[serde(default)]
        first_order: bool,
    },
    /// Meta-SGD (Li et al. 2017): a learned per-parameter inner learning rate, meta-trained with
    /// the initialisation (exact second order, as `Maml`).
    MetaSgd {
        #[serde(default = "hvp_eps")]
        hvp_eps: f64,
    },
    /// CAVIA (Zintgraf et al. 2019): `context` parameters, a task embedding concatenated to an
    /// MLP's input (or, on a conv net, driving a per-channel scale and shift, FiLM, in block
    /// `film_block`, counted from 1, after its batch norm and before its ReLU), start at zero
    /// for every task and alone take the inner SGD steps (rate `context_lr`, in training and at
    /// test time, in place of `inner_lr`: the paper's 1.0 suits the context, not the network's
    /// weights); the network's own parameters are shared, meta-trained through the inner loop
    /// (exact second order unless `first_order`).
    Cavia {
        #[serde(default = "five")]
        context: usize,
        #[serde(default = "one_f")]
        context_lr: f64,
        #[serde(default = "hvp_eps")]
        hvp_eps: f64,
        #[serde(default)]
        first_order: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        film_block: Option<usize>,
    },
}

fn five() -> usize {
    5
}

fn eight() -> usize {
    8
}

fn hvp_eps() -> f64 {
    1e-3
}
fn one_f() -> f64 {
    1.0
}
fn twenty() -> usize {
    20
}

impl Algorithm {
    pub fn label(&self) -> &'static str {
        match self {
            Algorithm::Maml { .. } => "MAML (2nd order)",
            Algorithm::Fomaml => "FOMAML",
            Algorithm::Reptile { .. } => "Reptile",
            Algorithm::MultiTask { trunks, .. } => match trunks {
                Trunks::Shared => "Multi-task",
                Trunks::PerTask => "Single-task (a trunk per task)",
                Trunks::Groups(_) => "Multi-task (task groups)",
                Trunks::Affinity { .. } => "Multi-task (affinity groups)",
            },
            Algorithm::ProtoNet => "ProtoNets",
            Algorithm::MatchingNet => "Matching nets",
            Algorithm::RelationNet { .. } => "Relation nets",
            Algorithm::Anil { first_order: false } => "ANIL (2nd order)",
            Algorithm::Anil { first_order: true } => "ANIL (1st order)",
            Algorithm::MetaSgd { .. } => "Meta-SGD",
            Algorithm::Cavia {
                first_order: false, ..
            } => "CAVIA (2nd order)",
            Algorithm::Cavia {
                first_order: true, ..
            } => "CAVIA (1st order)",
        }
    }

    /// What the algorithm keeps and computes per task beyond one gradient, for the memory and
    /// time estimates of `experiment::limits`.
    pub fn cost(&self) -> Cost {
        let plain = Cost {
            trajectory_vectors: 0.0,
            gradients_per_inner_step: 1.0,
            heads: 0,
            trunks: 0,
        };
        match self {
            // The inner trajectory is kept per task in flight for the second-order backward,
            // and each inner step's Hessian-vector product costs two more gradients.
            Algorithm::Maml { .. } => Cost {
                trajectory_vectors: 2.0,
                gradients_per_inner_step: 3.0,
                heads: 0,
                trunks: 0,
            },
            // As MAML, and the support gradient of every step is kept too (for ∂L/∂α).
            Algorithm::MetaSgd { .. } => Cost {
                trajectory_vectors: 3.0,
                gradients_per_inner_step: 3.0,
                heads: 0,
                trunks: 0,
            },
            Algorithm::MultiTask { tasks, trunks } => Cost {
                heads: *tasks,
                trunks: trunks.count(*tasks).saturating_sub(1),
                ..plain
            },
            // Each step back is one Hessian-vector product of the whole network (two more
            // gradients); the trajectory keeps each step's parameters and support gradient.
            Algorithm::Cavia {
                first_order: false, ..
            } => Cost {
                trajectory_vectors: 2.0,
                gradients_per_inner_step: 3.0,
                heads: 0,
                trunks: 0,
            },
            Algorithm::Cavia {
                first_order: true, ..
            } => Cost {
                trajectory_vectors: 1.0,
                ..plain
            },
            // ANIL's second order runs on the head alone, on features computed once.
            Algorithm::Fomaml
            | Algorithm::Reptile { .. }
            | Algorithm::ProtoNet
            | Algorithm::MatchingNet
            | Algorithm::RelationNet { .. }
            | Algorithm::Anil { .. } => plain,
        }
    }

    /// Metric-based: no inner loop, needs class labels.
    pub fn is_metric(&self) -> bool {
        matches!(
            self,
            Algorithm::ProtoNet | Algorithm::MatchingNet | Algorithm::RelationNet { .. }
        )
    }
}

/// An algorithm's costs beyond one gradient per task, from [`Algorithm::cost`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Parameter-sized vectors kept per inner step for each task in flight (0: none).
    pub trajectory_vectors: f64,
    /// Gradient evaluations per inner step on the support set.
    pub gradients_per_inner_step: f64,
    /// Heads trained besides the network's own, each with its Adam moments and gradient.
    pub heads: usize,
    /// Trunks (the network without its head) trained besides the network's own, likewise.
    pub trunks: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InnerOptimizer {
    #[default]
    Sgd,
    /// Adam with β = (0, 0.999) as in the Reptile paper.
    Adam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Train")]
pub struct TrainSpec {
    pub iterations: usize,
    pub meta_batch: usize,
    pub meta_lr: f64,
    pub inner_steps: usize,
    pub inner_lr: f64,
    /// Iterations per metrics line (losses are averaged over the window).
    pub log_every: usize,
    /// Stop the arm when a training loss exceeds this (or is not finite).
    pub max_loss: f64,
    /// How Adam's step size changes over training (Reptile's ε has its own `anneal`).
    pub meta_lr_schedule: MetaLrSchedule,
    /// Random distortions of training episodes' images (image families only); evaluations
    /// always see the images as they are.
    #[serde(skip_serializing_if = "Augment::is_off")]
    pub augment: Augment,
    /// Measure task affinities over the training tasks (a family with fixed tasks, or a
    /// multi-task arm's task set) and record them in the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<AffinitySpec>,
}

/// Data augmentation of training episodes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Augment {
    #[default]
    Off,
    /// A random affine distortion of every image, drawn from the training stream's seed (so
    /// reruns and resumes see the same distortions). `Affine()` takes Koch et al.'s ranges.
    Affine(AffineRanges),
}

impl Augment {
    pub fn is_off(&self) -> bool {
        *self == Augment::Off
    }
}

/// The ranges of the affine distortion of Koch et al. (2015), which Lake et al. (2019) also
/// train ProtoNets with. Each of the four parts is applied to an image with `chance`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Affine")]
pub struct AffineRanges {
    /// Largest rotation either way, in degrees.
    pub rotation: f64,
    /// Largest shear either way, along each axis.
    pub shear: f64,
    /// Smallest and largest scale, along each axis.
    pub scale: (f64, f64),
    /// Largest shift either way along each axis, as a fraction of the image side (Koch et al.'s
    /// ±2 pixels of 105).
    pub shift: f64,
    /// Chance that each part (rotation, shear, scale, shift) is applied to an image.
    pub chance: f64,
}

impl Default for AffineRanges {
    fn default() -> Self {
        AffineRanges {
            rotation: 10.0,
            shear: 0.3,
            scale: (0.8, 1.2),
            shift: 2.0 / 105.0,
            chance: 0.5,
        }
    }
}

/// The meta learning rate over training, as a function of Adam's step count (which checkpoints
/// keep, so a resumed run continues the same schedule).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum MetaLrSchedule {
    /// `meta_lr` throughout.
    #[default]
    Constant,
    /// `meta_lr · factor^⌊(step − 1) / every⌋`: Snell et al. halve it every 2,000 episodes.
    Step { every: usize, factor: f64 },
}

impl MetaLrSchedule {
    /// The rate for Adam's `step`-th update (1-based).
    pub fn lr_at(self, base: f64, step: u64) -> f64 {
        match self {
            MetaLrSchedule::Constant => base,
            MetaLrSchedule::Step { every, factor } => {
                let k = step.saturating_sub(1) / every.max(1) as u64;
                base * factor.powi(k.min(i32::MAX as u64) as i32)
            }
        }
    }
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            iterations: 5000,
            meta_batch: 25,
            meta_lr: 1e-3,
            inner_steps: 1,
            inner_lr: 0.01,
            log_every: 10,
            max_loss: 1e6,
            meta_lr_schedule: MetaLrSchedule::Constant,
            augment: Augment::Off,
            affinity: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Eval")]
pub struct EvalSpec {
    /// Evaluate (and checkpoint) every this many meta-iterations; 0 = only at the end.
    pub every: usize,
    /// Test tasks in the final evaluation.
    pub tasks: usize,
    /// Tasks in the periodic evaluations during training (from the validation split).
    pub periodic_tasks: usize,
    /// Inner steps at test time (may differ from training).
    pub inner_steps: usize,
    pub inner_lr: f64,
    /// Fixed tasks whose adapted loss/accuracy is reported at every evaluation (the per-task panels).
    pub tracked_tasks: usize,
    /// Evaluation episodes' shape where it differs from training's (Snell et al. train
    /// ProtoNets 60-way and test 20-way); unset keeps the family's. Other ways need
    /// metric-based arms, whose classes come from the support set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ways: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shots: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<usize>,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            every: 500,
            tasks: 600,
            periodic_tasks: 100,
            inner_steps: 10,
            inner_lr: 0.01,
            tracked_tasks: 4,
            ways: None,
            shots: None,
            queries: None,
        }
    }
}

/// The settings one arm actually trains with, after its overrides are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmSettings {
    pub inner_steps: usize,
    pub inner_lr: f64,
    pub meta_lr: f64,
    pub meta_lr_schedule: MetaLrSchedule,
    pub aggregate: Aggregate,
    pub affinity: Option<AffinitySpec>,
}

impl Experiment {
    /// Classes per evaluation episode (`eval.ways`, else the family's); `None` for regression.
    /// What chance level is for the validation and test curves.
    pub fn eval_ways(&self) -> Option<usize> {
        let (ways, _, _) = self.family.episode_shape();
        ways.map(|w| self.eval.ways.unwrap_or(w))
    }

    pub fn arm_settings(&self, arm: &Arm) -> ArmSettings {
        ArmSettings {
            inner_steps: arm.inner_steps.unwrap_or(self.train.inner_steps),
            inner_lr: arm.inner_lr.unwrap_or(self.train.inner_lr),
            meta_lr: arm.meta_lr.unwrap_or(self.train.meta_lr),
            meta_lr_schedule: self.train.meta_lr_schedule,
            aggregate: arm.aggregate,
            affinity: self.train.affinity,
        }
    }

    /// The family as evaluations sample it: the family with `eval`'s episode shape applied.
    /// Sinusoid has no ways to change (validation refuses `eval.ways` there).
    pub fn eval_family(&self) -> FamilySpec {
        let e = &self.eval;
        self.family.reshaped(e.ways, e.shots, e.queries)
    }

    /// The experiment reduced to one arm: what a run directory freezes, so a rerun needs nothing else.
    pub fn with_only_arm(&self, arm: &str) -> Option<Experiment> {
        let a = self.arms.iter().find(|a| a.name == arm)?.clone();
        let mut e = self.clone();
        e.arms = vec![a];
        Some(e)
    }

    /// Serialize back to RON in the same dialect `parse_str` accepts.
    pub fn to_ron(&self) -> String {
        let pretty = ron::ser::PrettyConfig::new()
            .depth_limit(6)
            .struct_names(true)
            .extensions(
                ron::extensions::Extensions::IMPLICIT_SOME
                    | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
            );
        ron::ser::to_string_pretty(self, pretty).expect("experiment serializes")
    }
}
