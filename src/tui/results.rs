//! Which arm is better: arms ranked by their latest (or final) evaluation, the best one marked,
//! and those whose 95% interval overlaps the best one's flagged as not distinguishable from it.
//! One ranking for the Compare table and the Monitor's arms table, so they agree.

use crate::metrics::EvalResult;
use crate::stats::MeanCi;
use crate::tasks::Split;

use super::session::{ArmView, Session};

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
    /// The 95% intervals overlap the best arm's: the data do not separate them.
    NotDistinguishable,
    Worse,
    /// No evaluation yet, or the only arm with one.
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

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Index into the session's arms.
    pub arm: usize,
    pub value: Option<MeanCi>,
    /// The iteration the evaluation was made at (not the arm's current one).
    pub iteration: usize,
    pub split: Split,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub metric: Metric,
    /// Best first; arms without an evaluation last, in session order.
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

pub fn rank(s: &Session, prefer_accuracy: bool) -> Ranking {
    let metric = metric(s, prefer_accuracy);
    let mut rows: Vec<Ranked> = s
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| ranked(i, a, metric))
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
    let evaluated = rows.iter().filter(|r| r.value.is_some()).count();
    if evaluated >= 2 {
        let best = rows[0].value.expect("sorted first");
        for (k, r) in rows.iter_mut().enumerate() {
            let Some(v) = &r.value else { continue };
            r.verdict = if k == 0 {
                Verdict::Best
            } else if overlaps(v, &best) {
                Verdict::NotDistinguishable
            } else {
                Verdict::Worse
            };
        }
    }
    Ranking { metric, rows }
}

fn ranked(arm: usize, a: &ArmView, metric: Metric) -> Ranked {
    let e = a.headline_eval();
    Ranked {
        arm,
        value: e.and_then(|e| metric.of(e)),
        iteration: e.map_or(0, |e| e.iteration),
        split: e.map_or(Split::Validation, |e| e.split),
        verdict: Verdict::Unranked,
    }
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
}

/// The results table's title: it says "final" only once every arm has its final evaluation.
pub fn title(s: &Session) -> &'static str {
    if s.any_active() {
        "latest evaluation (training)"
    } else if !s.arms.is_empty() && s.arms.iter().all(|a| a.final_eval.is_some()) {
        "final evaluation (test tasks)"
    } else {
        "latest evaluation"
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

    fn arm(name: &str, mean: f64, ci: f64, iteration: usize) -> ArmView {
        let mut a = ArmView::new(name, "MAML");
        a.last_eval = Some(EvalResult {
            iteration,
            split: Split::Validation,
            loss: MeanCi {
                mean,
                ci95: ci,
                n: 100,
            },
            accuracy: None,
            loss_before: MeanCi {
                mean: 1.0,
                ci95: 0.1,
                n: 100,
            },
            inner_steps: 1,
            inner_lr: 0.01,
            per_step: Vec::new(),
        });
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
        // The example: MAML 0.3481 ± 0.0422 and FOMAML 0.4097 ± 0.0500 overlap.
        let s = session(vec![
            arm("fomaml", 0.4097, 0.0500, 300),
            arm("multitask", 0.9, 0.05, 300),
            ArmView::new("waiting", "MAML"),
            arm("maml", 0.3481, 0.0422, 200),
        ]);
        let r = rank(&s, true);
        let order: Vec<usize> = r.rows.iter().map(|r| r.arm).collect();
        assert_eq!(order, vec![3, 0, 1, 2]);
        assert_eq!(r.rows[0].verdict, Verdict::Best);
        assert_eq!(r.rows[0].iteration, 200);
        assert_eq!(r.rows[1].verdict, Verdict::NotDistinguishable);
        assert_eq!(r.rows[2].verdict, Verdict::Worse);
        assert_eq!(r.rows[3].verdict, Verdict::Unranked);
        assert_eq!(title(&s), "latest evaluation");
    }

    #[test]
    fn accuracy_ranks_higher_first() {
        let mut a = arm("a", 1.0, 0.1, 10);
        let mut b = arm("b", 0.5, 0.1, 10);
        for (x, acc) in [(&mut a, 0.6), (&mut b, 0.9)] {
            x.classification = true;
            x.last_eval.as_mut().unwrap().accuracy = Some(MeanCi {
                mean: acc,
                ci95: 0.01,
                n: 100,
            });
        }
        let r = rank(&session(vec![a, b]), true);
        assert_eq!(r.metric, Metric::Accuracy);
        assert_eq!(r.rows[0].arm, 1);
        assert_eq!(r.rows[1].verdict, Verdict::Worse);
    }
}
