//! Runs of one configuration that differ only in seed, shown as one arm: its curves the mean
//! over seeds, its bands a 95% t-interval across seeds (what "is the difference real?" asks),
//! its seeds kept for the paired test (`results::paired`).

use crate::metrics::{EvalResult, StepResult};
use crate::runs::RunStatus;
use crate::stats::MeanCi;
use crate::tasks::Split;

use super::series::interpolate;
use super::session::{ArmStatus, ArmView, SeedRun};

/// Mean over seeds with Student's t interval; `n` is the number of seeds.
fn over_seeds(v: &[MeanCi]) -> MeanCi {
    MeanCi::of_t(&v.iter().map(|m| m.mean).collect::<Vec<_>>())
}

/// One evaluation averaged over the seeds' evaluations at the same point.
fn mean_eval(es: &[&EvalResult]) -> EvalResult {
    let first = es[0];
    let acc: Option<Vec<MeanCi>> = es.iter().map(|e| e.accuracy).collect();
    let steps = es.iter().map(|e| e.per_step.len()).min().unwrap_or(0);
    let per_step = (0..steps)
        .map(|k| {
            let acc: Option<Vec<MeanCi>> = es.iter().map(|e| e.per_step[k].accuracy).collect();
            StepResult {
                step: first.per_step[k].step,
                loss: over_seeds(&es.iter().map(|e| e.per_step[k].loss).collect::<Vec<_>>()),
                accuracy: acc.map(|a| over_seeds(&a)),
            }
        })
        .collect();
    EvalResult {
        iteration: first.iteration,
        split: first.split,
        loss: over_seeds(&es.iter().map(|e| e.loss).collect::<Vec<_>>()),
        accuracy: acc.map(|a| over_seeds(&a)),
        loss_before: over_seeds(&es.iter().map(|e| e.loss_before).collect::<Vec<_>>()),
        inner_steps: first.inner_steps,
        inner_lr: first.inner_lr,
        per_step,
    }
}

/// `members` (seed, the run as one arm) as one arm named `name`.
pub fn aggregate(name: &str, members: Vec<(u64, ArmView)>) -> ArmView {
    let (_, first) = &members[0];
    let mut a = ArmView::new(name, first.algorithm.clone());
    a.identity = first.identity.clone();
    a.family = first.family.clone();
    a.classification = members.iter().any(|(_, m)| m.classification);
    a.iteration = members.iter().map(|(_, m)| m.iteration).min().unwrap_or(0);
    a.total = members.iter().map(|(_, m)| m.total).max().unwrap_or(0);
    a.status = if members
        .iter()
        .all(|(_, m)| m.status.run_status() == RunStatus::Finished)
    {
        ArmStatus::Saved(RunStatus::Finished)
    } else {
        members
            .iter()
            .map(|(_, m)| m.status.clone())
            .find(|s| s.run_status() != RunStatus::Finished)
            .unwrap_or(ArmStatus::Saved(RunStatus::Finished))
    };
    // Training curves: the mean over seeds at the first seed's iterations, up to where all
    // of them got.
    let curves: Vec<Vec<(f64, f64)>> = members.iter().map(|(_, m)| m.train_loss.points()).collect();
    let reached = a.iteration as f64;
    for &(x, _) in curves[0].iter().filter(|p| p.0 <= reached) {
        let ys: Option<Vec<f64>> = curves.iter().map(|c| interpolate(c, x)).collect();
        if let Some(ys) = ys {
            a.train_loss
                .push(x, ys.iter().sum::<f64>() / ys.len() as f64);
        }
    }
    for (x, t) in first.clock.points() {
        a.clock.push(x, t);
    }
    // Evaluations every seed made, averaged; the band is across seeds.
    for e in &first.evals {
        let es: Option<Vec<&EvalResult>> = members
            .iter()
            .map(|(_, m)| m.eval_at(Split::Validation, e.iteration))
            .collect();
        if let Some(es) = es {
            a.add_eval(&mean_eval(&es));
        }
    }
    let finals: Option<Vec<&EvalResult>> =
        members.iter().map(|(_, m)| m.final_eval.as_ref()).collect();
    if let Some(fs) = finals.filter(|fs| fs.iter().all(|f| f.iteration == fs[0].iteration)) {
        a.final_eval = Some(mean_eval(&fs));
    }
    a.seeds = members
        .into_iter()
        .map(|(seed, m)| SeedRun {
            seed,
            evals: m.evals,
            final_eval: m.final_eval,
        })
        .collect();
    a.seeds.sort_by_key(|s| s.seed);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::session::ArmView;

    fn run(seed: u64, val: f64) -> (u64, ArmView) {
        let mut a = ArmView::new("maml", "MAML");
        a.status = ArmStatus::Saved(RunStatus::Finished);
        for i in 1..=10 {
            a.train_loss.push(i as f64 * 10.0, val * 2.0);
        }
        a.iteration = 100;
        let e = |it, split, v| EvalResult {
            iteration: it,
            split,
            loss: MeanCi {
                mean: v,
                ci95: 0.01,
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
            per_step: vec![],
        };
        a.add_eval(&e(50, Split::Validation, val + 0.1));
        a.add_eval(&e(100, Split::Validation, val));
        a.final_eval = Some(e(100, Split::Test, val));
        (seed, a)
    }

    #[test]
    fn the_mean_over_seeds_with_a_band_across_them() {
        let a = aggregate("maml", vec![run(2, 0.3), run(1, 0.1), run(3, 0.2)]);
        let f = a.final_eval.unwrap();
        assert!((f.loss.mean - 0.2).abs() < 1e-12);
        assert_eq!(f.loss.n, 3);
        // t(2) = 4.303, sd = 0.1: 4.303 · 0.1 / √3.
        assert!(
            (f.loss.ci95 - 4.303 * 0.1 / 3f64.sqrt()).abs() < 1e-9,
            "{f:?}"
        );
        assert_eq!(a.evals.len(), 2);
        let pts = a.eval_loss.mean.points();
        assert_eq!(pts.iter().map(|p| p.0).collect::<Vec<_>>(), [50.0, 100.0]);
        assert!((pts[0].1 - 0.3).abs() < 1e-12 && (pts[1].1 - 0.2).abs() < 1e-12);
        assert!((a.train_loss.last().unwrap().1 - 0.4).abs() < 1e-12);
        assert_eq!(
            a.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }
}
