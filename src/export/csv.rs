//! The CSV every export writes: long format, one row per point, the same columns from every
//! path (Runs pane, Monitor, `metalab export`). `run` is the run folder's id, so a rerun's rows
//! never merge with its original's even where their `label`s were to read alike.
//!
//! Accuracy values are fractions (0–1), as in `metrics.jsonl`; plots show them in percent.

use serde::{Deserialize, Serialize};

use super::curves::ArmCurves;
use crate::stats::MeanCi;
use crate::tasks::Split;

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    TrainLoss,
    TrainAccuracy,
    EvalLoss,
    EvalLossBefore,
    EvalAccuracy,
    /// Query loss after `step` adaptation steps (0 to the evaluation's `inner_steps`).
    EvalLossStep,
    EvalAccuracyStep,
    TaskLoss,
    TaskAccuracy,
}

/// One CSV row; the header is these field names, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub run: String,
    pub label: String,
    pub series: Series,
    /// `train`, `validation` or `test`.
    #[serde(with = "crate::tasks::split_name")]
    pub split: Split,
    /// The tracked task's index, for `task_*` rows.
    pub task: Option<usize>,
    /// Adaptation steps taken, for `eval_*_step` rows.
    pub step: Option<usize>,
    pub iteration: usize,
    pub value: f64,
    /// Half-width of the 95% confidence interval, for `eval_*` rows.
    pub ci95: Option<f64>,
    /// Tasks the evaluation averaged over, for `eval_*` rows.
    pub n: Option<usize>,
    /// Training seconds at `iteration` (wall clock, pauses excluded), interpolated between
    /// logged points; empty where the run logged no clock.
    pub seconds: Option<f64>,
}

/// Training seconds at iteration `x`, linear between logged points and flat past the ends.
fn seconds_at(clock: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = clock.partition_point(|p| p.0 <= x);
    match (i.checked_sub(1).map(|j| clock[j]), clock.get(i)) {
        (Some(a), Some(b)) if b.0 > a.0 => Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)),
        (Some(a), _) => Some(a.1),
        (None, Some(b)) => Some(b.1),
        (None, None) => None,
    }
}

/// Every point of every arm as rows, arm by arm.
pub fn rows(arms: &[ArmCurves]) -> Vec<Row> {
    let mut out = Vec::new();
    for a in arms {
        let clock: Vec<(f64, f64)> = a.clock.iter().map(|&(i, t)| (i as f64, t)).collect();
        let seconds = |it: usize| seconds_at(&clock, it as f64);
        let row = |series, split, iteration, value| Row {
            run: a.run.clone(),
            label: a.label.clone(),
            series,
            split,
            task: None,
            step: None,
            iteration,
            value,
            ci95: None,
            n: None,
            seconds: seconds(iteration),
        };
        let eval = |series, e: &crate::metrics::EvalResult, m: &MeanCi| Row {
            ci95: Some(m.ci95).filter(|c| c.is_finite()),
            n: Some(m.n),
            ..row(series, e.split, e.iteration, m.mean)
        };
        for p in &a.train {
            out.push(row(Series::TrainLoss, Split::Train, p.iteration, p.loss));
            if let Some(acc) = p.accuracy {
                out.push(row(Series::TrainAccuracy, Split::Train, p.iteration, acc));
            }
        }
        for e in &a.evals {
            out.push(eval(Series::EvalLoss, e, &e.loss));
            out.push(eval(Series::EvalLossBefore, e, &e.loss_before));
            if let Some(acc) = &e.accuracy {
                out.push(eval(Series::EvalAccuracy, e, acc));
            }
            for p in &e.per_step {
                let at = |series, m| Row {
                    step: Some(p.step),
                    ..eval(series, e, m)
                };
                out.push(at(Series::EvalLossStep, &p.loss));
                if let Some(acc) = &p.accuracy {
                    out.push(at(Series::EvalAccuracyStep, acc));
                }
            }
        }
        for t in &a.tasks {
            let task = |series, value| Row {
                task: Some(t.task),
                ..row(series, Split::Validation, t.iteration, value)
            };
            out.push(task(Series::TaskLoss, t.loss));
            if let Some(acc) = t.accuracy {
                out.push(task(Series::TaskAccuracy, acc));
            }
        }
    }
    out
}

/// The CSV text of [`rows`], header first (also when there are no rows).
pub fn to_csv(arms: &[ArmCurves]) -> Result<String, ::csv::Error> {
    let mut w = ::csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(HEADER)?;
    for r in rows(arms) {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("the csv crate writes the UTF-8 it is given"))
}

/// The column names, written even for an export without rows so the file still loads.
pub const HEADER: [&str; 11] = [
    "run",
    "label",
    "series",
    "split",
    "task",
    "step",
    "iteration",
    "value",
    "ci95",
    "n",
    "seconds",
];

/// Rows back from CSV text: what a test, or a script in Rust, reads the file with.
pub fn parse(text: &str) -> Result<Vec<Row>, ::csv::Error> {
    ::csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect()
}
