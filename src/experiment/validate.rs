//! Semantic checks: a file can be valid RON and still describe an impossible experiment.

use std::fmt;

use super::limits::{self, MAX_INNER_STEPS, MAX_ITERATIONS, MAX_TRACKED_TASKS};
use super::locate::{find_arm_field, locate};
use super::schema::*;

#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `family.ways`.
    pub field: String,
    pub message: String,
    pub fix: String,
    /// 1-based line and column of the field in the file, when it is written there.
    pub position: Option<(usize, usize)>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((l, c)) = self.position {
            write!(f, "{l}:{c}: ")?;
        } else {
            write!(f, " ")?;
        }
        write!(f, "`{}`: {}\n  fix: {}", self.field, self.message, self.fix)
    }
}

struct Checker<'a> {
    text: &'a str,
    errors: Vec<ValidationError>,
}

impl Checker<'_> {
    /// A failure in arm `arm`, positioned at that arm's `leaf:` field (arms are written in order).
    fn fail_arm(
        &mut self,
        arm: usize,
        leaf: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.errors.push(ValidationError {
            field: format!("arms[{arm}].{leaf}"),
            message: message.into(),
            fix: fix.into(),
            position: find_arm_field(self.text, arm, leaf),
        });
    }

    fn fail(&mut self, field: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(ValidationError {
            field: field.to_string(),
            message: message.into(),
            fix: fix.into(),
            position: locate(self.text, field),
        });
    }

    /// `value` at most `max`: sizes beyond it are typos, not experiments.
    fn at_most(&mut self, field: &str, value: usize, max: usize, what: &str) {
        if value > max {
            self.fail(
                field,
                format!("{value} {what} is more than the {max} metalab allows"),
                format!("use at most {max}"),
            );
        }
    }
}

/// Every semantic problem in the experiment; `text` is the file it came from, to locate fields.
pub fn validate(e: &Experiment, text: &str) -> Vec<ValidationError> {
    let mut c = Checker {
        text,
        errors: vec![],
    };
    check_names(&mut c, e);
    check_family(&mut c, &e.family);
    check_model(&mut c, &e.model);
    check_device(&mut c, e);
    check_train(&mut c, &e.train);
    check_augment(&mut c, e);
    check_eval(&mut c, &e.eval);
    check_eval_episodes(&mut c, e);
    if e.arms.is_empty() {
        c.fail(
            "arms",
            "no arms to train",
            "add at least one arm, e.g. arms: [Arm(name: \"maml\", algorithm: Maml())]",
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, arm) in e.arms.iter().enumerate() {
        let at = format!("arms[{i}]");
        if let Some(why) = unsafe_name(&arm.name) {
            c.fail(
                &format!("{at}.name"),
                format!("arm name {:?} cannot name a run directory: {why}", arm.name),
                "use 1 to 64 letters, digits, '-' and '_'",
            );
        } else if !seen.insert(arm.name.clone()) {
            c.fail(
                &format!("{at}.name"),
                format!("arm name {:?} is used twice", arm.name),
                "give every arm a different name",
            );
        }
        check_arm(&mut c, e, i, arm);
    }
    // Sizes are only worth estimating once each of them makes sense.
    if c.errors.is_empty() {
        check_model_shape(&mut c, e);
    }
    if c.errors.is_empty() {
        check_resources(&mut c, e);
    }
    c.errors
}

/// The experiment's name and description: printable, and a name short enough for file names.
fn check_names(c: &mut Checker, e: &Experiment) {
    if e.name.trim().is_empty() {
        c.fail(
            "name",
            "the experiment has no name",
            "give it a short name, e.g. name: \"sinusoid-maml\"",
        );
    } else if let Some(ch) = e.name.chars().find(|ch| ch.is_control()) {
        // Printed in terminals, file names and exported SVG: a control character would garble all three.
        c.fail(
            "name",
            format!(
                "the experiment name {:?} holds the control character {ch:?}",
                e.name
            ),
            "use printable characters only",
        );
    } else if e.name.chars().count() > 200 {
        c.fail(
            "name",
            format!(
                "the experiment name is {} characters long",
                e.name.chars().count()
            ),
            "use a name of at most 200 characters (put the rest in `description`)",
        );
    }
    if let Some(ch) = e
        .description
        .chars()
        .find(|&ch| ch.is_control() && ch != '\n' && ch != '\t')
    {
        c.fail(
            "description",
            format!("the description holds the control character {ch:?}"),
            "use printable characters, newlines and tabs only",
        );
    }
}

/// Arm `i`'s settings against its algorithm and the family (its name is checked by the caller,
/// which sees every arm's).
fn check_arm(c: &mut Checker, e: &Experiment, i: usize, arm: &Arm) {
    let at = format!("arms[{i}]");
    let s = e.arm_settings(arm);
    if arm.algorithm.is_metric() && !e.family.is_classification() {
        c.fail_arm(
            i,
            "algorithm",
            format!(
                "{} classifies queries by comparing them with the support set's classes, but {} has no classes to form prototypes or attend over",
                arm.algorithm.label(),
                e.family.label()
            ),
            "use a classification family (Omniglot or Synthetic) for this arm, or a gradient-based arm (Maml, Fomaml, Anil, MetaSgd) on sinusoid",
        );
    }
    if arm.algorithm.is_metric() {
        if let ModelSpec::Mlp(m) = &e.model {
            if m.hidden.is_empty() {
                c.fail_arm(
                    i,
                    "algorithm",
                    format!("{} embeds with the model without its head, but an MLP with hidden: [] has no body to learn", arm.algorithm.label()),
                    "give the MLP a hidden layer, e.g. hidden: [64]",
                );
            }
        }
    }
    if s.inner_steps == 0
        && !matches!(arm.algorithm, Algorithm::MultiTask { .. })
        && !arm.algorithm.is_metric()
    {
        c.fail(
            &format!("{at}.inner_steps"),
            "zero inner steps: the algorithm would never adapt",
            "use 1 or more inner steps",
        );
    }
    if arm.inner_steps.is_some() {
        c.at_most(
            &format!("{at}.inner_steps"),
            s.inner_steps,
            MAX_INNER_STEPS,
            "inner steps",
        );
    }
    positive(c, &format!("{at}.inner_lr"), s.inner_lr);
    positive(c, &format!("{at}.meta_lr"), s.meta_lr);
    check_algorithm_fields(c, i, &arm.algorithm);
    check_cavia(c, e, i, arm);
    check_aggregate(c, i, arm);
    check_trunks(c, e, i, arm);
}

/// A multi-task arm's trunk sharing: groups that cover every task once, affinity grouping
/// with the affinities measured before it is due, and no PCGrad across separate trunks.
fn check_trunks(c: &mut Checker, e: &Experiment, i: usize, arm: &Arm) {
    let Algorithm::MultiTask { tasks, trunks } = &arm.algorithm else {
        return;
    };
    let tasks = *tasks;
    match trunks {
        Trunks::Shared => return,
        Trunks::PerTask => {}
        Trunks::Groups(groups) => check_groups(c, i, tasks, groups),
        Trunks::Affinity { groups, after } => {
            if *groups < 2 || *groups > tasks {
                c.fail_arm(
                    i,
                    "trunks",
                    format!(
                        "Affinity(groups: {groups}) for {tasks} tasks: it must be 2 to {tasks}"
                    ),
                    format!(
                        "use trunks: Affinity(groups: 2, after: {})",
                        e.train.iterations / 5
                    ),
                );
            }
            if *after == 0 || *after >= e.train.iterations {
                c.fail_arm(
                    i,
                    "trunks",
                    format!(
                        "Affinity(after: {after}): the groups are found after the tasks train jointly for that many iterations, which must be 1 to {} (train.iterations − 1)",
                        e.train.iterations.saturating_sub(1)
                    ),
                    format!("use after: {} (a fifth of training)", (e.train.iterations / 5).max(1)),
                );
            }
            if e.train.affinity.is_none() {
                c.fail_arm(
                    i,
                    "trunks",
                    "Affinity grouping clusters the task affinities, and train.affinity is not set, so none are measured",
                    "add affinity: Affinity(every: 10, lookahead_lr: 0.01) to train",
                );
            }
        }
    }
    if arm.aggregate == Aggregate::PcGrad {
        c.fail_arm(
            i,
            "aggregate",
            "aggregate: PcGrad projects the tasks' gradients on one shared trunk, and this arm's tasks have separate trunks",
            "use PcGrad with trunks: Shared (the default), or remove aggregate: PcGrad",
        );
    }
}

/// Explicit groups: none empty, every task index in range and in exactly one group.
fn check_groups(c: &mut Checker, i: usize, tasks: usize, groups: &[Vec<usize>]) {
    let mut seen = vec![0usize; tasks];
    for (g, members) in groups.iter().enumerate() {
        if members.is_empty() {
            c.fail_arm(
                i,
                "trunks",
                format!("group {g} of trunks: Groups(...) is empty"),
                "remove the empty group",
            );
        }
        for &t in members {
            match seen.get_mut(t) {
                Some(k) => *k += 1,
                None => c.fail_arm(
                    i,
                    "trunks",
                    format!(
                        "group {g} names task {t}, and the arm has tasks 0 to {}",
                        tasks.saturating_sub(1)
                    ),
                    format!("use task indices below tasks: {tasks}"),
                ),
            }
        }
    }
    let missing: Vec<String> = (0..tasks)
        .filter(|&t| seen[t] == 0)
        .map(|t| t.to_string())
        .collect();
    let twice: Vec<String> = (0..tasks)
        .filter(|&t| seen[t] > 1)
        .map(|t| t.to_string())
        .collect();
    if !missing.is_empty() {
        c.fail_arm(
            i,
            "trunks",
            format!(
                "tasks {} are in no group: every task needs a trunk",
                missing.join(", ")
            ),
            "add them to a group (a group of one trains that task alone)",
        );
    }
    if !twice.is_empty() {
        c.fail_arm(
            i,
            "trunks",
            format!(
                "tasks {} are in more than one group: a task trains one trunk",
                twice.join(", ")
            ),
            "keep each task in one group",
        );
    }
}

/// Context sizes beyond this are typos: the paper's sine contexts have 2 to 50 values.
const MAX_CONTEXT: usize = 4096;

/// A Cavia arm: a place for the context (an MLP's input, or FiLM in a chosen block of a conv
/// net, on the CPU), a context size and rate in range, and no `inner_lr` that its rule would
/// ignore.
fn check_cavia(c: &mut Checker, e: &Experiment, i: usize, arm: &Arm) {
    let Algorithm::Cavia {
        context,
        context_lr,
        hvp_eps,
        film_block,
        ..
    } = arm.algorithm
    else {
        return;
    };
    match (&e.model, film_block) {
        (ModelSpec::Conv(conv), None) => c.fail_arm(
            i,
            "algorithm",
            "CAVIA conditions a conv net through FiLM (a per-channel scale and shift) in one block, and no film_block is chosen",
            format!(
                "write Cavia(context: {context}, film_block: {}) (blocks count from 1; the paper conditions the third of four), or use model: Mlp(hidden: [40, 40])",
                conv.blocks.saturating_sub(1).max(1)
            ),
        ),
        (ModelSpec::Conv(conv), Some(block)) if block == 0 || block > conv.blocks => c.fail_arm(
            i,
            "film_block",
            format!(
                "film_block: {block}, and the conv net has blocks 1 to {}",
                conv.blocks
            ),
            format!("use film_block: 1 to {} (counted from 1)", conv.blocks),
        ),
        (ModelSpec::Mlp(_), Some(block)) => c.fail_arm(
            i,
            "film_block",
            format!("film_block: {block} conditions a conv block, and this model is an MLP: its context is concatenated to the input"),
            "remove film_block (or use model: Conv(...))",
        ),
        _ => {}
    }
    if let (Some(_), DeviceSpec::Cuda(n)) = (film_block, e.device) {
        c.fail_arm(
            i,
            "film_block",
            format!("CAVIA's FiLM context runs on the CPU only in this version, and the experiment asks for device: Cuda({n})"),
            "use device: Cpu for this experiment",
        );
    }
    if context == 0 || context > MAX_CONTEXT {
        c.fail_arm(
            i,
            "context",
            format!("a context of {context} parameters: it must be 1 to {MAX_CONTEXT}"),
            "use context: 2 or 5 (the paper's sizes for sine regression)",
        );
    }
    if !(context_lr.is_finite() && context_lr > 0.0) {
        c.fail_arm(
            i,
            "context_lr",
            format!("the context's learning rate {context_lr} must be a positive number"),
            "use context_lr: 1.0 (the paper's)",
        );
    }
    if !(hvp_eps > 0.0 && hvp_eps <= 0.1) {
        c.fail_arm(
            i,
            "hvp_eps",
            format!("hvp_eps {hvp_eps} is outside (0, 0.1]"),
            "use 1e-3 (f32 rounding dominates below it, curvature above)",
        );
    }
    if let Some(lr) = arm.inner_lr {
        c.fail_arm(
            i,
            "inner_lr",
            format!("a Cavia arm adapts only its context, at context_lr; inner_lr: {lr} would be ignored"),
            format!("remove inner_lr and write Cavia(context: {context}, context_lr: {lr}) to set the context's rate"),
        );
    }
}

/// PCGrad needs per-task updates on shared parameters: MAML, FOMAML, Reptile, multi-task,
/// CAVIA.
fn check_aggregate(c: &mut Checker, i: usize, arm: &Arm) {
    let per_task = matches!(
        arm.algorithm,
        Algorithm::Maml { .. }
            | Algorithm::Fomaml
            | Algorithm::Reptile { .. }
            | Algorithm::MultiTask { .. }
            | Algorithm::Cavia { .. }
    );
    if arm.aggregate == Aggregate::PcGrad && !per_task {
        c.fail_arm(
            i,
            "aggregate",
            format!(
                "aggregate: PcGrad projects the tasks' meta-gradients on each other, which {} does not combine that way",
                arm.algorithm.label()
            ),
            "use aggregate: PcGrad with Maml, Fomaml, Reptile, MultiTask or Cavia, or remove it",
        );
    }
}

/// The fields of an algorithm variant, each in its range.
fn check_algorithm_fields(c: &mut Checker, i: usize, algorithm: &Algorithm) {
    let at = format!("arms[{i}]");
    match algorithm {
        Algorithm::Maml { hvp_eps } | Algorithm::MetaSgd { hvp_eps } => {
            if !(*hvp_eps > 0.0 && *hvp_eps <= 0.1) {
                c.fail(
                    &format!("{at}.hvp_eps"),
                    format!("hvp_eps {hvp_eps} is outside (0, 0.1]"),
                    "use 1e-3 (f32 rounding dominates below it, curvature above)",
                );
            }
        }
        Algorithm::Reptile { epsilon, .. } => {
            if !(*epsilon > 0.0 && *epsilon <= 1.0) {
                c.fail(
                    &format!("{at}.epsilon"),
                    format!("Reptile step size {epsilon} is outside (0, 1]"),
                    "use 1.0 (annealed) or 0.1",
                );
            }
        }
        Algorithm::MultiTask { tasks, .. } => {
            if *tasks == 0 {
                c.fail(
                    &format!("{at}.tasks"),
                    "a multi-task arm needs at least one training task",
                    "use e.g. tasks: 20",
                );
            }
        }
        Algorithm::RelationNet { hidden } => {
            if *hidden == 0 {
                c.fail_arm(
                    i,
                    "hidden",
                    "a relation module with 0 hidden units",
                    "use e.g. hidden: 8",
                );
            }
        }
        // Checked with the experiment around it (`check_cavia`).
        Algorithm::Cavia { .. } => {}
        Algorithm::Fomaml
        | Algorithm::ProtoNet
        | Algorithm::MatchingNet
        | Algorithm::Anil { .. } => {}
    }
}

/// Why `s` cannot be a run directory's name, if it cannot.
fn unsafe_name(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if s.chars().count() > 64 {
        return Some(format!("it is {} characters long", s.chars().count()));
    }
    s.chars()
        .find(|&ch| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
        .map(|ch| format!("{ch:?} is not allowed"))
}

/// What the model refuses when it lays out its parameters (too many conv blocks for the image
/// size): the same question (`ConvSpec::misfit`), so `check` refuses it with the same words.
fn check_model_shape(c: &mut Checker, e: &Experiment) {
    if let ModelSpec::Conv(conv) = &e.model {
        if let Some(m) = conv.misfit(&e.family.input_shape()) {
            c.fail(m.field, m.message, m.fix);
        }
    }
}

/// Memory and compute the experiment would need, against what this machine has.
fn check_resources(c: &mut Checker, e: &Experiment) {
    c.at_most(
        "train.iterations",
        e.train.iterations,
        MAX_ITERATIONS,
        "iterations",
    );
    c.at_most(
        "train.inner_steps",
        e.train.inner_steps,
        MAX_INNER_STEPS,
        "inner steps",
    );
    c.at_most(
        "eval.inner_steps",
        e.eval.inner_steps,
        MAX_INNER_STEPS,
        "inner steps",
    );
    c.at_most(
        "eval.tracked_tasks",
        e.eval.tracked_tasks,
        MAX_TRACKED_TASKS,
        "tracked tasks (one panel each)",
    );
    let needs = limits::needs(e);
    let total: f64 = needs.iter().map(|n| n.bytes).sum();
    let limit = limits::memory_limit();
    if total > limit {
        let top = &needs[0];
        let fix = match limits::fitting_value(top, total, limit) {
            Some(v) => format!("lower `{}` to {v} or less", top.field),
            None => format!("use smaller sizes, starting with `{}`", top.field),
        };
        c.fail(
            &top.field,
            format!(
                "this experiment needs about {} of memory ({} for {}), more than the {} this machine has",
                limits::gib(total),
                limits::gib(top.bytes),
                top.what,
                limits::gib(limit)
            ),
            format!("{fix} (METALAB_MEMORY_BYTES overrides the machine's limit)"),
        );
    }
    let (train, eval) = limits::seconds(e);
    if train + eval > limits::max_seconds() {
        let (field, what) = if eval > train {
            ("eval.inner_steps", "evaluation")
        } else {
            ("train.iterations", "training")
        };
        c.fail(
            field,
            format!(
                "this experiment would compute for about {:.0} years, mostly in {what}, even at 100 GFLOP/s",
                (train + eval) / (365.0 * 24.0 * 3600.0)
            ),
            format!("lower `{field}` (and the sizes it multiplies)"),
        );
    }
}

fn positive(c: &mut Checker, field: &str, v: f64) {
    if !(v.is_finite() && v > 0.0) {
        c.fail(
            field,
            format!("learning rate {v} must be a positive number"),
            "use a small positive value such as 0.01 or 1e-3",
        );
    }
}

fn check_family(c: &mut Checker, f: &FamilySpec) {
    match f {
        FamilySpec::Mixed(m) => check_mixed(c, m),
        FamilySpec::Sinusoid(s) => {
            if s.shots == 0 {
                c.fail(
                    "family.shots",
                    "zero support points per task",
                    "use shots: 10 (the standard K)",
                );
            }
            if s.queries == 0 {
                c.fail(
                    "family.queries",
                    "zero query points per task",
                    "use queries: 10",
                );
            }
        }
        FamilySpec::Omniglot(o) => {
            ways_shots(c, "family", Some(o.ways), Some(o.shots), Some(o.queries));
            // Each Omniglot character has 20 drawings.
            if o.shots + o.queries > 20 {
                c.fail(
                    "family.queries",
                    format!(
                        "shots + queries = {} but every Omniglot character has only 20 drawings",
                        o.shots + o.queries
                    ),
                    "make shots + queries at most 20, e.g. queries: 15 with shots: 1 or 5",
                );
            }
            if let Some(a) = o.alphabet_tasks {
                let need = o.shots + o.queries;
                if a.held_out < need || a.held_out + need > 20 {
                    c.fail(
                        "family.alphabet_tasks",
                        format!(
                            "held_out: {} drawings per character: the held-out episodes need shots + queries = {need} of them, and the training episodes {need} of the rest (every Omniglot character has 20 drawings)",
                            a.held_out
                        ),
                        format!(
                            "use held_out: {need}{}",
                            if 2 * need > 20 { ", with fewer shots or queries" } else { "" }
                        ),
                    );
                }
            }
            if !(8..=105).contains(&o.image_size) {
                c.fail(
                    "family.image_size",
                    format!("image_size {} is outside 8..=105", o.image_size),
                    "use 28 (the standard) ",
                );
            }
            match o.protocol {
                OmniglotProtocol::AlphabetSplit { train, validation }
                | OmniglotProtocol::CharacterSplit { train, validation } => {
                    if !(train > 0.0 && validation > 0.0 && train + validation < 1.0) {
                        c.fail(
                            "family.protocol",
                            format!("split fractions train {train}, validation {validation}: each must be positive and they must leave test classes (periodic evaluations use the validation split)"),
                            "use e.g. train: 0.7, validation: 0.1",
                        );
                    }
                }
                OmniglotProtocol::BackgroundEvaluation => {}
            }
        }
        FamilySpec::Synthetic(s) => {
            ways_shots(c, "family", Some(s.ways), Some(s.shots), Some(s.queries));
            let test_classes = s.classes / 5;
            if s.ways > test_classes {
                c.fail("family.ways", format!("{}-way tasks need {} classes in every split, but {} classes give the test split only {test_classes}", s.ways, s.ways, s.classes), format!("raise classes to at least {} or lower ways", s.ways * 5));
            }
            if !(4..=64).contains(&s.image_size) {
                c.fail(
                    "family.image_size",
                    format!("image_size {} is outside 4..=64", s.image_size),
                    "use 12",
                );
            }
            if !(s.noise.is_finite() && s.noise >= 0.0) {
                c.fail(
                    "family.noise",
                    "noise must be a non-negative number",
                    "use 0.3",
                );
            }
        }
    }
}

/// The classification episode's sizes under `at` (`family` or `eval`); `None` is not set there.
fn ways_shots(
    c: &mut Checker,
    at: &str,
    ways: Option<usize>,
    shots: Option<usize>,
    queries: Option<usize>,
) {
    if let Some(ways) = ways.filter(|&w| w < 2) {
        c.fail(
            &format!("{at}.ways"),
            format!("{ways}-way classification is not a classification task"),
            "use ways: 5 or 20",
        );
    }
    if shots == Some(0) {
        c.fail(
            &format!("{at}.shots"),
            "zero shots: tasks would have no support set",
            "use shots: 1 or 5",
        );
    }
    if queries == Some(0) {
        c.fail(
            &format!("{at}.queries"),
            "zero queries: tasks would have no query set",
            "use queries: 15",
        );
    }
}

fn check_model(c: &mut Checker, m: &ModelSpec) {
    match m {
        ModelSpec::Mlp(mlp) => {
            if mlp.hidden.contains(&0) {
                c.fail(
                    "model.hidden",
                    "a hidden layer of width 0",
                    "use widths of 1 or more, e.g. hidden: [40, 40]",
                );
            }
        }
        ModelSpec::Conv(conv) => {
            if conv.blocks == 0 || conv.blocks > 6 {
                c.fail(
                    "model.blocks",
                    format!(
                        "{} conv blocks; each halves the image, so use 1 to 6",
                        conv.blocks
                    ),
                    "use blocks: 4",
                );
            }
            // Zero channels is refused with the layout's own words (`check_model_shape`).
        }
    }
}

fn check_device(c: &mut Checker, e: &Experiment) {
    if let DeviceSpec::Cuda(_) = e.device {
        if let Some(op) = crate::device::missing(e.device.kind(), e.model.custom_ops()) {
            c.fail(
                "device",
                format!("{op} has no {} kernel in this version", e.device.kind()),
                "use device: Cpu for this model; MLPs run on CUDA",
            );
        }
    }
    if e.family.input_shape().len() == 1 && matches!(e.model, ModelSpec::Conv(_)) {
        c.fail(
            "model",
            format!(
                "a conv net needs image inputs, but {} has vector inputs",
                e.family.label()
            ),
            "use model: Mlp((hidden: [40, 40]))",
        );
    }
}

fn check_train(c: &mut Checker, t: &TrainSpec) {
    if t.iterations == 0 {
        c.fail(
            "train.iterations",
            "zero iterations",
            "use e.g. iterations: 5000",
        );
    }
    if t.meta_batch == 0 {
        c.fail(
            "train.meta_batch",
            "an empty meta-batch",
            "use e.g. meta_batch: 25",
        );
    }
    if t.log_every == 0 {
        c.fail(
            "train.log_every",
            "log_every must be at least 1",
            "use log_every: 10",
        );
    }
    positive(c, "train.inner_lr", t.inner_lr);
    positive(c, "train.meta_lr", t.meta_lr);
    if let MetaLrSchedule::Step { every, factor } = t.meta_lr_schedule {
        if every == 0 {
            c.fail(
                "train.meta_lr_schedule.every",
                "the schedule steps every 0 iterations",
                "use every: 2000 (or meta_lr_schedule: Constant)",
            );
        }
        if !(factor > 0.0 && factor <= 1.0) {
            c.fail(
                "train.meta_lr_schedule.factor",
                format!("factor {factor} would not shrink the rate: it must be in (0, 1]"),
                "use factor: 0.5 (halve the rate at each step)",
            );
        }
    }
    if t.max_loss.is_nan() || t.max_loss <= 0.0 {
        c.fail(
            "train.max_loss",
            "max_loss must be positive",
            "use max_loss: 1e6",
        );
    }
}

/// `train.augment`: distortions of images, within ranges that keep a drawing recognisable.
fn check_augment(c: &mut Checker, e: &Experiment) {
    let Augment::Affine(r) = e.train.augment else {
        return;
    };
    if !e.family.is_classification() {
        c.fail(
            "train.augment",
            format!("{} has no images to distort", e.family.label()),
            "remove augment (it applies to image families: Omniglot, Synthetic)",
        );
        return;
    }
    let ranges: [(&str, f64, f64, f64, &str); 4] = [
        (
            "rotation",
            r.rotation,
            0.0,
            180.0,
            "rotation: 10.0 (degrees either way)",
        ),
        ("shear", r.shear, 0.0, 1.0, "shear: 0.3"),
        (
            "shift",
            r.shift,
            0.0,
            0.5,
            "shift: 0.019 (a fraction of the side: ±2 of 105 pixels)",
        ),
        ("chance", r.chance, 0.0, 1.0, "chance: 0.5"),
    ];
    for (field, value, lo, hi, fix) in ranges {
        if !(lo..=hi).contains(&value) {
            c.fail(
                &format!("train.augment.{field}"),
                format!("{field} {value} is outside [{lo}, {hi}]"),
                format!("use {fix}"),
            );
        }
    }
    let (lo, hi) = r.scale;
    if !(lo > 0.0 && lo <= hi && hi <= 4.0) {
        c.fail(
            "train.augment.scale",
            format!(
                "scale ({lo}, {hi}) must be (smallest, largest) with 0 < smallest ≤ largest ≤ 4"
            ),
            "use scale: (0.8, 1.2)",
        );
    }
}

/// `eval.ways`/`shots`/`queries`: the evaluation episodes must be valid episodes of the family,
/// and other ways than training's need arms without a fixed-width head.
fn check_eval_episodes(c: &mut Checker, e: &Experiment) {
    let v = &e.eval;
    if v.ways.is_none() && v.shots.is_none() && v.queries.is_none() {
        return;
    }
    let trained_ways = e.family.episode_shape().0;
    if trained_ways.is_none() && v.ways.is_some() {
        c.fail(
            "eval.ways",
            format!(
                "{} has no classes to change the number of",
                e.family.label()
            ),
            "drop eval.ways (eval.shots and eval.queries apply)",
        );
    }
    ways_shots(c, "eval", v.ways, v.shots, v.queries);
    match e.eval_family() {
        FamilySpec::Omniglot(o) if o.shots + o.queries > 20 => {
            let field = if v.queries.is_some() {
                "eval.queries"
            } else {
                "eval.shots"
            };
            c.fail(
                field,
                format!("evaluation episodes take shots + queries = {} drawings of each character, but every Omniglot character has only 20", o.shots + o.queries),
                "make shots + queries at most 20, e.g. queries: 15 with shots: 1 or 5",
            );
        }
        FamilySpec::Synthetic(s) if v.ways.is_some() && s.ways > s.classes / 5 => {
            c.fail(
                "eval.ways",
                format!("{}-way evaluation tasks need {} classes in every split, but {} classes give the test split only {}", s.ways, s.ways, s.classes, s.classes / 5),
                format!("lower eval.ways or raise family.classes to at least {}", s.ways * 5),
            );
        }
        _ => {}
    }
    let (Some(ways), Some(trained_ways)) = (v.ways, trained_ways) else {
        return;
    };
    if ways == trained_ways {
        return;
    }
    if let Some(arm) = e.arms.iter().find(|a| !a.algorithm.is_metric()) {
        c.fail(
            "eval.ways",
            format!(
                "arm `{}` ({}) trains a {trained_ways}-way head, which has no rows for {ways}-way evaluation tasks; only metric-based arms (ProtoNet, MatchingNet, RelationNet) take their classes from the support set",
                arm.name,
                arm.algorithm.label()
            ),
            format!("set eval.ways to {trained_ways} or drop it, or move the metric-based arms to their own experiment (`metalab eval RUN --ways {ways} --fresh-head` fine-tunes a fresh head on a finished run)"),
        );
    }
}

fn check_eval(c: &mut Checker, v: &EvalSpec) {
    if v.tasks < 2 {
        c.fail(
            "eval.tasks",
            "a confidence interval needs at least 2 test tasks",
            "use tasks: 600 (the standard)",
        );
    }
    if v.periodic_tasks < 2 {
        c.fail(
            "eval.periodic_tasks",
            "a confidence interval needs at least 2 tasks",
            "use periodic_tasks: 100",
        );
    }
    positive(c, "eval.inner_lr", v.inner_lr);
}

fn check_mixed(c: &mut Checker, m: &MixedSpec) {
    if m.shots == 0 || m.queries == 0 {
        c.fail(
            if m.shots == 0 {
                "family.shots"
            } else {
                "family.queries"
            },
            "zero points per task",
            "use shots: 10, queries: 10",
        );
    }
    if m.groups.is_empty() {
        c.fail(
            "family.groups",
            "a mixed family needs at least one group",
            "use groups: [Sine, NegSine, Line, Quadratic]",
        );
    }
    c.at_most("family.pool", m.pool, 1_000_000, "training points per task");
    if !(m.noise.is_finite() && m.noise >= 0.0) {
        c.fail(
            "family.noise",
            format!(
                "noise {} is not a standard deviation (a finite number, 0 or more)",
                m.noise
            ),
            "use noise: 0.1, or leave it out for exact targets",
        );
    }
    if m.tasks_per_group == 0 {
        c.fail(
            "family.tasks_per_group",
            "zero tasks per group",
            "use tasks_per_group: 3",
        );
    }
}
