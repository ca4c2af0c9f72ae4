//! Negative transfer (issue 21): per task, how the jointly trained model's loss compares with a
//! model trained on that task alone. The ratio of mean losses `joint / single` with a 95%
//! interval; a task is flagged where the whole interval lies above 1 (joint training is
//! significantly worse on it).
//!
//! The interval is the delta method on the log ratio. When both models are scored on the same
//! evaluation episodes (equal lengths, the i-th losses from the same episode) the pairing
//! enters through the covariance, which narrows the interval as the two losses move together.
//! The critical value is Student's t with one fewer degree of freedom than the shorter side has
//! losses: an alphabet task is scored on as few as ten parts of its held-out drawings, where
//! 1.96 would claim more than the data hold (2.262 at nine degrees of freedom).

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::algo::TaskScores;
use crate::experiment::{Algorithm, Experiment, FamilySpec, Trunks};
use crate::tasks::mixed::Mixed;
use crate::tasks::TaskFamily;

/// One task's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    /// Mean joint loss over mean single-task loss.
    pub ratio: f64,
    /// The 95% interval of the ratio.
    pub lo: f64,
    pub hi: f64,
    /// The whole interval lies above 1.
    pub negative: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample covariance (n − 1) of two equally long series.
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    s / (a.len() - 1) as f64
}

/// The comparison of one task's `joint` and `single` losses (paired when equally long);
/// `None` with fewer than two losses on either side or a mean that is not positive.
pub fn compare(joint: &[f64], single: &[f64]) -> Option<TransferRow> {
    if joint.len() < 2 || single.len() < 2 {
        return None;
    }
    let (mj, ms) = (mean(joint), mean(single));
    if mj <= 0.0 || ms <= 0.0 {
        return None;
    }
    let (nj, ns) = (joint.len() as f64, single.len() as f64);
    let mut var = cov(joint, joint) / (nj * mj * mj) + cov(single, single) / (ns * ms * ms);
    if joint.len() == single.len() {
        var -= 2.0 * cov(joint, single) / (nj * mj * ms);
    }
    let ratio = mj / ms;
    let df = joint.len().min(single.len()) - 1;
    let half = crate::stats::t975(df) * var.max(0.0).sqrt();
    let (lo, hi) = (ratio * (-half).exp(), ratio * half.exp());
    Some(TransferRow {
        ratio,
        lo,
        hi,
        negative: lo > 1.0,
    })
}

/// `task,ratio,lo,hi,negative` for every task with a comparison, in task order.
pub fn to_csv(rows: &[Option<TransferRow>]) -> String {
    let mut out = String::from("task,ratio,lo,hi,negative\n");
    for (t, r) in rows.iter().enumerate() {
        if let Some(r) = r {
            out += &format!("{t},{},{},{},{}\n", r.ratio, r.lo, r.hi, r.negative);
        }
    }
    out
}

/// Where a multi-task run records its per-task losses at its end (`task-losses.json`), one
/// of the run folder's files ([`crate::runs`] refuses a link in its place).
pub use crate::runs::TASK_LOSSES;

/// Evaluation episodes per training task.
pub const EPISODES: usize = 100;

/// Salt for the per-task evaluation episodes' stream: a function of the experiment seed
/// alone, the same for every arm (so the comparison pairs).
const EPISODE_SALT: u64 = 0x6e65_6774_7261_6e73;

/// The per-task evaluation episodes' seed under an experiment's seed.
pub fn episode_seed(experiment_seed: u64) -> u64 {
    experiment_seed ^ EPISODE_SALT
}

/// A multi-task run's per-task losses: each training task at its own trunk and head, on
/// [`EPISODES`] fresh episodes of that task (support and query together), the episodes drawn
/// from the experiment's seed alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLosses {
    /// The training family, in words: runs of another family do not pair.
    pub family: String,
    /// The experiment's seed (the fixed tasks and the episodes).
    pub seed: u64,
    /// The training iteration the losses are at.
    pub iteration: usize,
    /// How the run's tasks shared trunks.
    pub trunks: Trunks,
    /// The family's group names, when it names groups.
    #[serde(default)]
    pub group_names: Vec<String>,
    /// Each task's group.
    pub groups: Vec<Option<usize>>,
    /// Each task's own name, where the family names its tasks one by one (an Omniglot
    /// alphabet); empty otherwise, and in records written before names were kept.
    #[serde(default)]
    pub task_names: Vec<String>,
    /// What each loss is the mean over.
    #[serde(default)]
    pub scored_on: ScoredOn,
    /// `losses[task][episode]`.
    pub losses: Vec<Vec<f64>>,
}

/// What a task's losses are means over: fresh episodes, or the parts of its held-out set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ScoredOn {
    /// [`EPISODES`] episodes drawn afresh (records from before this field say nothing: these).
    #[default]
    FreshEpisodes,
    /// The held-out set cut into disjoint parts, each held-out example in exactly one (an
    /// Omniglot alphabet task: part i is the i-th held-out drawing of every character).
    HeldOutParts,
}

/// Why two runs' per-task losses cannot be compared.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TransferError {
    #[error("the two runs' per-task losses are not on the same tasks and episodes: their {what} differ ({joint} against {single})\n  fix: compare arms of one experiment (one family, seed and task set)")]
    NotPaired {
        what: &'static str,
        joint: String,
        single: String,
    },
    #[error("{path}: {reason}\n  fix: the run may come from another metalab version; rerun it")]
    Unreadable { path: String, reason: String },
}

impl TaskLosses {
    /// The record of arm `arm` of `exp` at `iteration`, from its tasks' scores
    /// ([`crate::algo::MetaAlgorithm::task_losses`] with [`EPISODES`] and [`episode_seed`]).
    pub fn new(
        exp: &Experiment,
        arm: usize,
        family: &dyn TaskFamily,
        iteration: usize,
        scores: Vec<TaskScores>,
    ) -> TaskLosses {
        let trunks = match &exp.arms[arm].algorithm {
            Algorithm::MultiTask { trunks, .. } => trunks.clone(),
            _ => Trunks::Shared,
        };
        let group_names = match &exp.family {
            FamilySpec::Mixed(m) => Mixed::group_names(&m.groups),
            _ => vec![],
        };
        let task_names = (0..scores.len())
            .map_while(|t| family.fixed_task_name(t))
            .collect::<Vec<_>>();
        // All or none: a partly named task set would misplace names.
        let task_names = if task_names.len() == scores.len() {
            task_names
        } else {
            vec![]
        };
        let scored_on = match family.fixed_tasks().and_then(|t| t.first()) {
            Some(t) if family.held_out_partition(t).is_some() => ScoredOn::HeldOutParts,
            _ => ScoredOn::FreshEpisodes,
        };
        let (groups, losses) = scores.into_iter().map(|s| (s.group, s.losses)).unzip();
        TaskLosses {
            scored_on,
            family: family.describe(),
            task_names,
            seed: exp.seed,
            iteration,
            trunks,
            group_names,
            groups,
            losses,
        }
    }

    /// The group name of task `t`, where there is one.
    pub fn group_name(&self, t: usize) -> Option<String> {
        let g = self.groups.get(t).copied().flatten()?;
        Some(
            self.group_names
                .get(g)
                .cloned()
                .unwrap_or_else(|| format!("group {g}")),
        )
    }

    /// Task `t`'s own name, where the family names its tasks.
    pub fn task_name(&self, t: usize) -> Option<String> {
        self.task_names.get(t).cloned()
    }

    /// Whether every task was trained alone (the baseline arm).
    pub fn single_task(&self) -> bool {
        self.trunks == Trunks::PerTask
    }

    fn pairs_with(&self, single: &TaskLosses) -> Result<(), TransferError> {
        let differ = |what, a: String, b: String| {
            Err(TransferError::NotPaired {
                what,
                joint: a,
                single: b,
            })
        };
        if self.family != single.family {
            return differ("families", self.family.clone(), single.family.clone());
        }
        if self.seed != single.seed {
            return differ("seeds", self.seed.to_string(), single.seed.to_string());
        }
        let shape = |l: &TaskLosses| {
            format!(
                "{} tasks × {} episodes",
                l.losses.len(),
                l.losses.first().map_or(0, Vec::len)
            )
        };
        if shape(self) != shape(single) || self.groups != single.groups {
            return differ("task sets", shape(self), shape(single));
        }
        Ok(())
    }

    /// Read `dir`'s record; `None` when the run has none (not a multi-task arm, or unfinished).
    pub fn load(dir: &Path) -> Result<Option<TaskLosses>, TransferError> {
        let path = dir.join(TASK_LOSSES);
        let unreadable = |reason: String| TransferError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        match crate::runs::files::read_text(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| unreadable(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unreadable(e.to_string())),
        }
    }
}

/// One task's comparison, named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTransfer {
    pub task: usize,
    pub group: Option<String>,
    /// The task's own name (an Omniglot alphabet), where the family names its tasks.
    #[serde(default)]
    pub name: Option<String>,
    /// `None` where the losses allow no interval (fewer than two, or a zero mean).
    pub row: Option<TransferRow>,
}

impl TaskTransfer {
    pub fn negative(&self) -> bool {
        self.row.is_some_and(|r| r.negative)
    }

    /// What to call the task in a summary: its group, else its own name, else its number.
    pub fn label(&self) -> String {
        self.group
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| format!("task {}", self.task))
    }
}

/// Every task of `joint` against the same task of `single` (paired by episode).
pub fn against(
    joint: &TaskLosses,
    single: &TaskLosses,
) -> Result<Vec<TaskTransfer>, TransferError> {
    joint.pairs_with(single)?;
    Ok(joint
        .losses
        .iter()
        .zip(&single.losses)
        .enumerate()
        .map(|(task, (j, s))| TaskTransfer {
            task,
            group: joint.group_name(task),
            name: joint.task_name(task),
            row: compare(j, s),
        })
        .collect())
}

/// `3 of 12 tasks (sine ×3)`, or `none of 12 tasks`: the flagged tasks in words.
pub fn summary(rows: &[TaskTransfer]) -> String {
    let flagged: Vec<&TaskTransfer> = rows.iter().filter(|r| r.negative()).collect();
    if flagged.is_empty() {
        return format!("none of {} tasks", rows.len());
    }
    let mut groups: Vec<(String, usize)> = vec![];
    for r in &flagged {
        let g = r.label();
        match groups.iter_mut().find(|(n, _)| *n == g) {
            Some((_, k)) => *k += 1,
            None => groups.push((g, 1)),
        }
    }
    let named: Vec<String> = groups
        .iter()
        .map(|(g, k)| {
            if *k == 1 {
                g.clone()
            } else {
                format!("{g} ×{k}")
            }
        })
        .collect();
    format!(
        "{} of {} tasks ({})",
        flagged.len(),
        rows.len(),
        named.join(", ")
    )
}

/// `arm,baseline,task,name,group,ratio,lo,hi,negative`, one row per task with a comparison,
/// for every `(arm, baseline, rows)`; a name with a comma is quoted.
pub fn transfers_csv(arms: &[(String, String, Vec<TaskTransfer>)]) -> String {
    let field = |s: Option<&str>| {
        let s = s.unwrap_or("");
        if s.contains([',', '"']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("arm,baseline,task,name,group,ratio,lo,hi,negative\n");
    for (arm, baseline, rows) in arms {
        for t in rows {
            if let Some(r) = t.row {
                out += &format!(
                    "{arm},{baseline},{},{},{},{},{},{},{}\n",
                    t.task,
                    field(t.name.as_deref()),
                    field(t.group.as_deref()),
                    r.ratio,
                    r.lo,
                    r.hi,
                    r.negative
                );
            }
        }
    }
    out
}

/// Among runs' records (by name), every run compared with the single-task baseline it pairs
/// with: `(run, baseline, rows)`. A run with no pairing baseline is left out.
pub fn against_baselines(
    records: &[(String, TaskLosses)],
) -> Vec<(String, String, Vec<TaskTransfer>)> {
    let mut out = vec![];
    for (name, r) in records.iter().filter(|(_, r)| !r.single_task()) {
        let pair = records
            .iter()
            .filter(|(_, b)| b.single_task())
            .find_map(|(b, base)| against(r, base).ok().map(|rows| (b.clone(), rows)));
        if let Some((b, rows)) = pair {
            out.push((name.clone(), b, rows));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};
    use rand_distr::Distribution;

    #[test]
    fn identical_losses_give_one_with_no_width_and_no_flag() {
        let l = [0.5, 1.0, 2.0, 0.25];
        let r = compare(&l, &l).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!((r.lo - 1.0).abs() < 1e-12 && (r.hi - 1.0).abs() < 1e-12);
        assert!(!r.negative);
    }

    #[test]
    fn a_joint_model_twice_as_bad_on_every_episode_is_flagged() {
        let s = [0.5, 1.0, 2.0, 0.25];
        let j: Vec<f64> = s.iter().map(|x| 2.0 * x).collect();
        let r = compare(&j, &s).unwrap();
        // Perfectly correlated: the delta-method variance is exactly zero.
        assert_eq!(r.ratio, 2.0);
        assert!((r.lo - 2.0).abs() < 1e-9 && (r.hi - 2.0).abs() < 1e-9);
        assert!(r.negative);
        assert!(compare(&s, &j).is_some_and(|r| !r.negative));
    }

    #[test]
    fn the_unpaired_interval_matches_the_delta_method_by_hand() {
        let j = [1.0, 2.0, 3.0];
        let s = [1.0, 1.0, 2.0, 2.0];
        let r = compare(&j, &s).unwrap();
        // mj = 2, var_j = 1; ms = 1.5, var_s = 1/3.
        let var: f64 = 1.0 / (3.0 * 4.0) + (1.0 / 3.0) / (4.0 * 2.25);
        // Two degrees of freedom (the shorter side has three losses): t = 4.303.
        let half = 4.303 * var.sqrt();
        assert!((r.ratio - 2.0 / 1.5).abs() < 1e-12);
        assert!((r.lo - 2.0 / 1.5 * (-half).exp()).abs() < 1e-12);
        assert!((r.hi - 2.0 / 1.5 * half.exp()).abs() < 1e-12);
        assert!(!r.negative);
    }

    /// Coverage against the truth: losses drawn with a known ratio of means, paired through a
    /// shared episode difficulty; the interval must hold the true ratio about 95% of the time.
    #[test]
    fn the_paired_interval_covers_the_true_ratio_about_95_percent_of_the_time() {
        // Many losses; and ten, each a mean over ten drawings (an alphabet task's parts: a
        // Gamma(10) difficulty), where 1.96 instead of t covered 0.916.
        for (n, shape, seed) in [(200, 1.0, 21), (10, 10.0, 23)] {
            let rate = paired_coverage(n, shape, seed);
            assert!(
                (0.93..=0.97).contains(&rate),
                "coverage {rate} with {n} losses"
            );
        }
        // The delta method's limit: ten single, exponentially skewed losses cover 0.88 with t
        // (0.83 with 1.96). Held here so a change that makes it worse is seen.
        let skewed = paired_coverage(10, 1.0, 22);
        assert!((0.86..=0.97).contains(&skewed), "coverage {skewed}");
    }

    /// How often the interval over `n` paired losses holds the true ratio, over 2,000 draws;
    /// each pair shares a Gamma(`shape`) difficulty of mean 1 (shape 1: exponential, skewed).
    fn paired_coverage(n: usize, shape: f64, seed: u64) -> f64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let exp = rand_distr::Gamma::new(shape, 1.0 / shape).unwrap();
        let truth = 1.3;
        let (trials, mut covered) = (2000, 0);
        for _ in 0..trials {
            let mut j = vec![];
            let mut s = vec![];
            for _ in 0..n {
                let difficulty: f64 = exp.sample(&mut rng);
                s.push(difficulty * rng.gen_range(0.5..1.5));
                j.push(truth * difficulty * rng.gen_range(0.5..1.5));
            }
            let r = compare(&j, &s).unwrap();
            covered += (r.lo <= truth && truth <= r.hi) as usize;
        }
        covered as f64 / trials as f64
    }

    #[test]
    fn too_few_losses_or_a_zero_mean_give_no_comparison() {
        assert_eq!(compare(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(compare(&[0.0, 0.0], &[1.0, 2.0]), None);
        let csv = to_csv(&[None, compare(&[2.0, 2.0], &[1.0, 1.0])]);
        assert_eq!(csv, "task,ratio,lo,hi,negative\n1,2,2,2,true\n");
    }
    fn record(trunks: Trunks, losses: Vec<Vec<f64>>) -> TaskLosses {
        TaskLosses {
            family: "mixed".into(),
            seed: 1,
            iteration: 10,
            trunks,
            group_names: vec!["sine".into(), "line".into()],
            groups: vec![Some(0), Some(0), Some(1)],
            task_names: vec![],
            scored_on: ScoredOn::FreshEpisodes,
            losses,
        }
    }

    /// Episode difficulties shared by both arms (the pairing), and per-arm noise.
    fn losses(scale: [f64; 3], seed: u64) -> Vec<Vec<f64>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut noise = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        scale
            .iter()
            .map(|&k| {
                (0..50)
                    .map(|_| {
                        let d: f64 = rng.gen_range(0.5..2.0);
                        k * d * noise.gen_range(0.9..1.1)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_task_three_times_worse_jointly_is_flagged_and_named_by_its_group() {
        let single = record(Trunks::PerTask, losses([1.0, 1.0, 1.0], 1));
        let joint = record(Trunks::Shared, losses([3.0, 1.0, 1.0], 2));
        let rows = against(&joint, &single).unwrap();
        assert!(rows[0].negative(), "{rows:?}");
        assert!(!rows[1].negative() && !rows[2].negative(), "{rows:?}");
        assert_eq!(rows[0].group.as_deref(), Some("sine"));
        assert_eq!(summary(&rows), "1 of 3 tasks (sine)");
        let all = against_baselines(&[
            ("joint".into(), joint.clone()),
            ("single".into(), single.clone()),
        ]);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].0.as_str(), all[0].1.as_str()), ("joint", "single"));
        let csv = transfers_csv(&all);
        assert_eq!(csv.lines().count(), 4);
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("joint,single,0,,sine,"));
        assert!(csv.lines().nth(1).unwrap().ends_with(",true"));
        assert!(csv.lines().nth(2).unwrap().ends_with(",false"));
    }

    /// Alphabet tasks have no group: a flagged one is called by its own name, and a name with
    /// a comma stays one CSV field.
    #[test]
    fn a_task_without_a_group_is_called_by_its_name() {
        let named = |mut r: TaskLosses| {
            r.groups = vec![None; 3];
            r.task_names = vec!["Hebrew".into(), "Malay, Jawi".into(), "Greek".into()];
            r
        };
        let single = named(record(Trunks::PerTask, losses([1.0, 1.0, 1.0], 1)));
        let joint = named(record(Trunks::Shared, losses([1.0, 3.0, 1.0], 2)));
        let rows = against(&joint, &single).unwrap();
        assert_eq!(summary(&rows), "1 of 3 tasks (Malay, Jawi)");
        assert_eq!(rows[0].label(), "Hebrew");
        let csv = transfers_csv(&[("j".into(), "s".into(), rows)]);
        assert!(csv.contains("\nj,s,1,\"Malay, Jawi\",,"), "{csv}");
        let mut unnamed = joint.clone();
        unnamed.task_names.clear();
        assert_eq!(against(&unnamed, &single).unwrap()[2].label(), "task 2");
    }

    #[test]
    fn equal_models_or_a_better_joint_one_raise_no_flag() {
        let single = record(Trunks::PerTask, losses([1.0, 1.0, 1.0], 1));
        let same = record(
            Trunks::Groups(vec![vec![0, 1], vec![2]]),
            losses([1.0, 1.0, 1.0], 3),
        );
        let better = record(Trunks::Shared, losses([0.5, 0.8, 1.0], 4));
        for joint in [same, better] {
            let rows = against(&joint, &single).unwrap();
            assert!(rows.iter().all(|r| !r.negative()), "{rows:?}");
            assert_eq!(summary(&rows), "none of 3 tasks");
        }
    }

    #[test]
    fn records_of_other_seeds_or_task_sets_do_not_pair() {
        let single = record(Trunks::PerTask, losses([1.0, 1.0, 1.0], 1));
        let mut other = record(Trunks::Shared, losses([3.0, 1.0, 1.0], 2));
        other.seed = 2;
        let err = against(&other, &single).unwrap_err();
        assert!(
            err.to_string().contains("seeds differ (2 against 1)"),
            "{err}"
        );
        other.seed = 1;
        other.losses.pop();
        let err = against(&other, &single).unwrap_err().to_string();
        assert!(
            err.contains("2 tasks × 50 episodes against 3 tasks × 50 episodes"),
            "{err}"
        );
        // A run with no pairing baseline is left out of the table.
        assert!(against_baselines(&[("x".into(), other), ("s".into(), single)]).is_empty());
    }
}
