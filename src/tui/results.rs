//! Which arm is better: arms ranked by their latest (or final) evaluation, the best one marked,
//! and those whose 95% interval overlaps the best one's flagged as not distinguishable from it.
//! One ranking for the Compare table and the Monitor's arms table, so they agree.

use crate::metrics::EvalResult;
use crate::stats::MeanCi;
use crate::tasks::Split;

use super::session::{ArmView, SeedRun, Session};

/// The number arms are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Classification accuracy (a fraction; higher is better).
    Accuracy,
    /// Cross-entropy (classification) or MSE (regression); lower is better.
    Loss { mse: bool },
}

impl Metric {
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Accuracy)
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "acc",
            Metric::Loss { mse: true } => "MSE",
            Metric::Loss { mse: false } => "loss",
        }
    }

    /// The value and interval of `e` this metric reads.
    pub fn of(self, e: &EvalResult) -> Option<MeanCi> {
        match self {
            Metric::Accuracy => e.accuracy,
            Metric::Loss { .. } => Some(e.loss),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Best,
    /// The data do not separate it from the best arm: the 95% intervals overlap, or, across
    /// seeds, the paired difference's interval holds zero.
    NotDistinguishable,
    Worse,
    /// Not ranked: no evaluation at the point the arms are compared at, or the only arm.
    Unranked,
}

impl Verdict {
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Best => "★ best",
            Verdict::NotDistinguishable => "≈ best",
            Verdict::Worse | Verdict::Unranked => "",
        }
    }

    /// One column's worth, for narrow tables.
    pub fn short_mark(self) -> &'static str {
        match self {
            Verdict::Best => "★",
            Verdict::NotDistinguishable => "≈",
            Verdict::Worse | Verdict::Unranked => "",
        }
    }
}

/// An evaluation every compared arm made: the same split at the same iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub split: Split,
    pub iteration: usize,
}

impl Point {
    pub fn split_name(self) -> &'static str {
        match self.split {
            Split::Test => "test",
            _ => "validation",
        }
    }
}

/// What the ranking compares, for the table's title.
#[derive(Debug, Clone, PartialEq)]
pub enum Basis {
    /// Every arm that has (or will have) an evaluation is ranked at `point`, on `tasks`
    /// tasks (the fewest and most any arm used), over `seeds` seeds where arms stand for
    /// several runs.
    At {
        point: Point,
        tasks: (usize, usize),
        seeds: Option<usize>,
    },
    /// Some arm has no evaluation at an iteration all the others evaluated at (it runs slower,
    /// or was paused): a ranking now would reward speed, not quality.
    NotYet,
    /// One arm (or none) has evaluations: there is nothing to rank it against.
    Single,
}

impl Basis {
    /// `validation @1500, 100 tasks`, `test @5000, 600 tasks, 3 seeds`, `not comparable yet`.
    pub fn describe(&self) -> String {
        match self {
            Basis::At {
                point,
                tasks,
                seeds,
            } => {
                let t = if tasks.0 == tasks.1 {
                    format!("{} tasks", tasks.0)
                } else {
                    format!("{}–{} tasks", tasks.0, tasks.1)
                };
                let s = seeds.map_or(String::new(), |n| format!(", {n} seeds"));
                format!("{} @{}, {t}{s}", point.split_name(), point.iteration)
            }
            Basis::NotYet => "not comparable yet: no evaluation every arm has made".into(),
            Basis::Single => "latest evaluation".into(),
        }
    }

    pub fn point(&self) -> Option<Point> {
        match self {
            Basis::At { point, .. } => Some(*point),
            _ => None,
        }
    }
}

/// The difference to the best arm, paired by seed (the same seed samples the same tasks), as a
/// mean with its 95% t-interval over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// This arm minus the best arm, over the seeds both ran.
    pub diff: MeanCi,
    /// The interval excludes zero.
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Index into the session's arms.
    pub arm: usize,
    /// At the ranking's point when there is one, else the arm's own latest evaluation.
    pub value: Option<MeanCi>,
    /// The iteration the value was evaluated at (not the arm's current one).
    pub iteration: usize,
    pub split: Split,
    pub verdict: Verdict,
    /// Arms of several seeds, against the best arm: the paired test.
    pub paired: Option<Paired>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub metric: Metric,
    pub basis: Basis,
    /// Best first when ranked, arms without a value at the point last (in session order);
    /// in session order when not comparable.
    pub rows: Vec<Ranked>,
}

/// The metric a session is compared by: accuracy for classification (unless the user switched
/// the panels to loss with `a`), else loss or MSE.
pub fn metric(s: &Session, prefer_accuracy: bool) -> Metric {
    let has_acc = s
        .arms
        .iter()
        .any(|a| a.headline_eval().is_some_and(|e| e.accuracy.is_some()));
    if s.classification() && prefer_accuracy && has_acc {
        Metric::Accuracy
    } else {
        Metric::Loss {
            mse: !s.classification(),
        }
    }
}

/// Arms whose evaluations decide where the comparison is made: those with an evaluation and
/// those still training (they will have one). A run that ended without any never will, and
/// must not hold the others back.
fn contenders(s: &Session) -> Vec<usize> {
    s.arms
        .iter()
        .enumerate()
        .filter(|(_, a)| a.headline_eval().is_some() || (s.live && a.status.is_active()))
        .map(|(i, _)| i)
        .collect()
}

/// Where to compare `arms`: every one's final test when they were all tested at the same
/// iteration, else the latest validation iteration every one of them evaluated at.
pub fn common_point(s: &Session, arms: &[usize]) -> Option<Point> {
    let finals: Vec<Option<usize>> = arms
        .iter()
        .map(|&i| s.arms[i].final_eval.as_ref().map(|e| e.iteration))
        .collect();
    if let Some(Some(it)) = finals.first() {
        if finals.iter().all(|f| *f == Some(*it)) {
            return Some(Point {
                split: Split::Test,
                iteration: *it,
            });
        }
    }
    let (first, rest) = arms.split_first()?;
    s.arms[*first]
        .evals
        .iter()
        .rev()
        .map(|e| e.iteration)
        .find(|&it| {
            rest.iter()
                .all(|&i| s.arms[i].eval_at(Split::Validation, it).is_some())
        })
        .map(|iteration| Point {
            split: Split::Validation,
            iteration,
        })
}

/// Tasks one evaluation of `a` at `p` used (for a seed group, one seed's).
fn tasks_at(a: &ArmView, p: Point) -> Option<usize> {
    match a.seeds.first() {
        Some(seed) => seed.eval_at(p.split, p.iteration).map(|e| e.loss.n),
        None => a.eval_at(p.split, p.iteration).map(|e| e.loss.n),
    }
}

pub fn rank(s: &Session, prefer_accuracy: bool) -> Ranking {
    let metric = metric(s, prefer_accuracy);
    let arms = contenders(s);
    let point = if arms.len() >= 2 {
        common_point(s, &arms)
    } else {
        None
    };
    let Some(p) = point else {
        return unranked(s, metric, arms.len());
    };
    let mut rows: Vec<Ranked> = s
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| Ranked {
            arm: i,
            value: a.eval_at(p.split, p.iteration).and_then(|e| metric.of(e)),
            iteration: p.iteration,
            split: p.split,
            verdict: Verdict::Unranked,
            paired: None,
        })
        .collect();
    let key = |r: &Ranked| {
        r.value.as_ref().map(|v| {
            if metric.higher_is_better() {
                -v.mean
            } else {
                v.mean
            }
        })
    };
    // Stable: ties and unevaluated arms keep the session's order.
    rows.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    judge(s, &mut rows, p, metric);
    Ranking {
        metric,
        basis: basis_at(s, p),
        rows,
    }
}

/// Nothing to rank (one contender, or no common point yet): each arm's own latest, in session
/// order, unmarked.
fn unranked(s: &Session, metric: Metric, contenders: usize) -> Ranking {
    let rows = s
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let e = a.headline_eval();
            Ranked {
                arm: i,
                value: e.and_then(|e| metric.of(e)),
                iteration: e.map_or(0, |e| e.iteration),
                split: e.map_or(Split::Validation, |e| e.split),
                verdict: Verdict::Unranked,
                paired: None,
            }
        })
        .collect();
    let basis = if contenders >= 2 {
        Basis::NotYet
    } else {
        Basis::Single
    };
    Ranking {
        metric,
        basis,
        rows,
    }
}

/// The verdict of each ranked row against the first (the best): the paired test by seed where
/// there are seeds, else whether the intervals overlap.
fn judge(s: &Session, rows: &mut [Ranked], p: Point, metric: Metric) {
    let best_arm = &s.arms[rows[0].arm];
    let best = rows[0].value;
    for (k, r) in rows.iter_mut().enumerate() {
        let (Some(v), Some(best)) = (&r.value, &best) else {
            continue;
        };
        r.paired = (k > 0)
            .then(|| paired(&s.arms[r.arm], best_arm, p, metric))
            .flatten();
        r.verdict = if k == 0 {
            Verdict::Best
        } else if match r.paired {
            Some(pd) => !pd.significant,
            None => overlaps(v, best),
        } {
            Verdict::NotDistinguishable
        } else {
            Verdict::Worse
        };
    }
}

/// What the ranking compares at `p`: the task counts and the seeds per arm.
fn basis_at(s: &Session, p: Point) -> Basis {
    let tasks: Vec<usize> = s.arms.iter().filter_map(|a| tasks_at(a, p)).collect();
    let seeds = s
        .arms
        .iter()
        .map(|a| a.seeds.len())
        .filter(|n| *n > 1)
        .max();
    Basis::At {
        point: p,
        tasks: (
            tasks.iter().copied().min().unwrap_or(0),
            tasks.iter().copied().max().unwrap_or(0),
        ),
        seeds,
    }
}

/// `a` minus `best` at `p`, seed by seed, over the seeds both ran (at least two).
pub fn paired(a: &ArmView, best: &ArmView, p: Point, metric: Metric) -> Option<Paired> {
    let value = |r: &SeedRun| {
        r.eval_at(p.split, p.iteration)
            .and_then(|e| metric.of(e))
            .map(|m| m.mean)
    };
    let diffs: Vec<f64> = a
        .seeds
        .iter()
        .filter_map(|x| {
            let y = best.seeds.iter().find(|y| y.seed == x.seed)?;
            Some(value(x)? - value(y)?)
        })
        .collect();
    if diffs.len() < 2 {
        return None;
    }
    let diff = MeanCi::of_t(&diffs);
    Some(Paired {
        diff,
        significant: diff.ci95.is_finite() && diff.mean.abs() > diff.ci95,
    })
}

/// Do the two 95% intervals overlap? (An unknown interval counts as zero width.)
pub fn overlaps(a: &MeanCi, b: &MeanCi) -> bool {
    let w = |m: &MeanCi| if m.ci95.is_finite() { m.ci95 } else { 0.0 };
    (a.mean - b.mean).abs() <= w(a) + w(b)
}

impl Ranking {
    pub fn verdict_of(&self, arm: usize) -> Verdict {
        self.rows
            .iter()
            .find(|r| r.arm == arm)
            .map_or(Verdict::Unranked, |r| r.verdict)
    }

    /// Position of `arm` in the ranking.
    pub fn position(&self, arm: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.arm == arm)
    }

    /// The results table's title: what is compared, and whether training goes on.
    pub fn title(&self, s: &Session) -> String {
        let what = self.basis.describe();
        if s.any_active() {
            format!("{what} (training)")
        } else {
            what
        }
    }
}

/// Meta-train losses of different algorithms are not on one scale (multi-task's is on its fixed
/// training tasks, Reptile's after more inner steps): the overlay says so when it mixes them.
pub fn train_caveat(s: &Session) -> Option<&'static str> {
    let first = s.arms.first()?.algorithm.as_str();
    if s.arms.iter().all(|a| a.algorithm == first) {
        return None;
    }
    let multitask = s
        .arms
        .iter()
        .any(|a| a.algorithm.to_lowercase().contains("multi"));
    Some(if multitask {
        "⚠ train losses differ by algorithm (multi-task's is on its fixed tasks): compare eval"
    } else {
        "⚠ train losses differ by algorithm: compare the eval curves"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::session::ArmStatus;

    fn eval(iteration: usize, split: Split, mean: f64, ci: f64) -> EvalResult {
        let m = |mean, ci95| MeanCi { mean, ci95, n: 100 };
        EvalResult {
            iteration,
            split,
            loss: m(mean, ci),
            accuracy: None,
            loss_before: m(1.0, 0.1),
            inner_steps: 1,
            inner_lr: 0.01,
            per_step: Vec::new(),
        }
    }

    /// An arm with validation evaluations `(iteration, mean, ci)`.
    fn arm(name: &str, evals: &[(usize, f64, f64)]) -> ArmView {
        let mut a = ArmView::new(name, "MAML");
        a.status = ArmStatus::Finished;
        for &(it, mean, ci) in evals {
            let e = eval(it, Split::Validation, mean, ci);
            a.evals.push(e.clone());
            a.last_eval = Some(e);
            a.iteration = it;
        }
        a
    }

    fn session(arms: Vec<ArmView>) -> Session {
        Session {
            title: "t".into(),
            live: false,
            arms,
            diff: vec![],
        }
    }

    #[test]
    fn sorted_by_loss_with_best_and_overlap_flags() {
        // MAML 0.3481 ± 0.0422 and FOMAML 0.4097 ± 0.0500 overlap.
        let s = session(vec![
            arm("fomaml", &[(200, 0.5, 0.05), (300, 0.4097, 0.0500)]),
            arm("multitask", &[(200, 0.95, 0.05), (300, 0.9, 0.05)]),
            // Ended without an evaluation: it never will have one, so it does not block.
            arm("failed", &[]),
            arm("maml", &[(200, 0.4, 0.04), (300, 0.3481, 0.0422)]),
        ]);
        let r = rank(&s, true);
        let order: Vec<usize> = r.rows.iter().map(|r| r.arm).collect();
        assert_eq!(order, vec![3, 0, 1, 2]);
        assert_eq!(r.rows[0].verdict, Verdict::Best);
        assert_eq!(r.rows[0].iteration, 300);
        assert_eq!(r.rows[1].verdict, Verdict::NotDistinguishable);
        assert_eq!(r.rows[2].verdict, Verdict::Worse);
        assert_eq!(r.rows[3].verdict, Verdict::Unranked);
        assert_eq!(r.basis.describe(), "validation @300, 100 tasks");
    }

    /// The paused-arms case: multi-task runs 3× faster, so its latest evaluation is
    /// at 1500 while FOMAML's is at 500 and MAML has none. Ranking latest against latest
    /// made multi-task "best"; the arms must be compared where all of them evaluated.
    #[test]
    fn a_faster_arm_is_not_best_for_being_further_along() {
        let mut maml = arm("maml", &[]);
        maml.status = ArmStatus::Paused;
        let mut fomaml = arm("fomaml", &[(500, 0.9, 0.05)]);
        fomaml.status = ArmStatus::Paused;
        let mut multi = arm(
            "multitask",
            &[(500, 1.5, 0.05), (1000, 0.7, 0.05), (1500, 0.5, 0.05)],
        );
        multi.status = ArmStatus::Paused;
        let mut s = session(vec![maml, fomaml, multi]);
        s.live = true;
        let r = rank(&s, true);
        assert_eq!(r.basis, Basis::NotYet);
        assert!(r.rows.iter().all(|r| r.verdict == Verdict::Unranked));
        assert_eq!(r.rows.iter().map(|r| r.arm).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(
            r.title(&s).starts_with("not comparable yet"),
            "{}",
            r.title(&s)
        );

        // MAML reaches its first evaluation: all three are compared at 500, where multi-task
        // is the worst, though its own latest value (0.5 @1500) is the lowest on screen.
        let e = eval(500, Split::Validation, 0.8, 0.05);
        s.arms[0].evals.push(e.clone());
        s.arms[0].last_eval = Some(e);
        let r = rank(&s, true);
        assert_eq!(
            r.basis.point(),
            Some(Point {
                split: Split::Validation,
                iteration: 500
            })
        );
        assert_eq!(r.rows.iter().map(|r| r.arm).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(r.rows[0].verdict, Verdict::Best);
        assert_eq!(r.rows[2].verdict, Verdict::Worse);
        assert_eq!(r.rows[2].value.unwrap().mean, 1.5);
        assert_eq!(r.title(&s), "validation @500, 100 tasks (training)");
    }

    /// One arm tested at 5000 and another stopped and tested at 2500 are not compared on
    /// those tests: the latest validation both made is used.
    #[test]
    fn final_tests_at_different_iterations_fall_back_to_validation() {
        let mut maml = arm("maml", &[(2500, 0.4, 0.05), (5000, 0.2, 0.05)]);
        maml.final_eval = Some(eval(5000, Split::Test, 0.21, 0.02));
        let mut fomaml = arm("fomaml", &[(2500, 0.3, 0.05)]);
        fomaml.final_eval = Some(eval(2500, Split::Test, 0.31, 0.02));
        let s = session(vec![maml, fomaml]);
        let r = rank(&s, true);
        assert_eq!(r.basis.describe(), "validation @2500, 100 tasks");
        assert_eq!(r.rows[0].arm, 1);

        let mut s = s;
        s.arms[1].final_eval = Some(eval(5000, Split::Test, 0.25, 0.02));
        let r = rank(&s, true);
        assert_eq!(r.basis.describe(), "test @5000, 100 tasks");
        assert_eq!(r.rows[0].arm, 0);
        assert_eq!(r.rows[1].verdict, Verdict::Worse);
    }

    #[test]
    fn accuracy_ranks_higher_first() {
        let mut a = arm("a", &[(10, 1.0, 0.1)]);
        let mut b = arm("b", &[(10, 0.5, 0.1)]);
        for (x, acc) in [(&mut a, 0.6), (&mut b, 0.9)] {
            x.classification = true;
            let m = Some(MeanCi {
                mean: acc,
                ci95: 0.01,
                n: 100,
            });
            x.last_eval.as_mut().unwrap().accuracy = m;
            x.evals[0].accuracy = m;
        }
        let r = rank(&session(vec![a, b]), true);
        assert_eq!(r.metric, Metric::Accuracy);
        assert_eq!(r.rows[0].arm, 1);
        assert_eq!(r.rows[1].verdict, Verdict::Worse);
    }

    /// Across seeds the verdict is the paired test: intervals over seeds that overlap can
    /// still be separated when one arm is better on every seed.
    #[test]
    fn seeds_are_compared_by_a_paired_test() {
        let seeds = |vals: &[f64]| -> Vec<SeedRun> {
            vals.iter()
                .enumerate()
                .map(|(k, v)| SeedRun {
                    seed: k as u64,
                    evals: vec![],
                    final_eval: Some(eval(100, Split::Test, *v, 0.01)),
                })
                .collect()
        };
        let group = |name: &str, vals: &[f64]| {
            let mut a = arm(name, &[]);
            let m = MeanCi::of_t(vals);
            a.final_eval = Some(EvalResult {
                loss: m,
                ..eval(100, Split::Test, 0.0, 0.0)
            });
            a.seeds = seeds(vals);
            a
        };
        // Seeds differ a lot from each other, the arms little but consistently.
        let s = session(vec![
            group("maml", &[0.20, 0.50, 0.80]),
            group("fomaml", &[0.25, 0.56, 0.84]),
            group("reptile", &[0.10, 0.90, 0.60]),
        ]);
        let r = rank(&s, true);
        assert_eq!(r.basis.describe(), "test @100, 100 tasks, 3 seeds");
        assert_eq!(r.rows[0].arm, 0);
        let fomaml = r.rows.iter().find(|x| x.arm == 1).unwrap();
        assert!(fomaml.paired.unwrap().significant, "{:?}", fomaml.paired);
        assert_eq!(fomaml.verdict, Verdict::Worse);
        let reptile = r.rows.iter().find(|x| x.arm == 2).unwrap();
        assert!(!reptile.paired.unwrap().significant);
        assert_eq!(reptile.verdict, Verdict::NotDistinguishable);
        // Unpaired, fomaml's interval over seeds overlaps maml's.
        assert!(overlaps(&fomaml.value.unwrap(), &r.rows[0].value.unwrap()));
    }
}
