//! What an exported figure shows, worked out before anything is drawn: two panels (meta-train
//! loss; held-out evaluation with its 95% CI) over one meta-iteration axis, their axes, and the
//! legend's labels. Kept apart from the drawing so the numbers (ticks, ranges, percent) are
//! tested without decoding an image.

use super::axis::{self, Axis, Domain};
use super::curves::ArmCurves;
use crate::tasks::Split;

/// A vertical interval at one x: a lone evaluation, or the final test result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Whisker {
    pub x: f64,
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

/// One arm's marks in one panel; its index in [`Panel::curves`] is its colour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    /// Every logged point, drawn faintly under the smoothed line.
    pub raw: Vec<(f64, f64)>,
    pub line: Vec<(f64, f64)>,
    /// (x, lo, hi) at the line's points: the filled 95% CI band.
    pub band: Vec<(f64, f64, f64)>,
    /// Points marked with a dot and their CI whisker.
    pub whiskers: Vec<Whisker>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub y_title: String,
    /// `None` when no arm has a point here.
    pub axes: Option<(Axis, Axis)>,
    pub curves: Vec<Curve>,
    /// A horizontal reference in the panel's y units: chance accuracy, 100/ways %.
    pub chance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub train: Panel,
    pub eval: Panel,
    /// One per arm, elided to fit a legend column.
    pub legend: Vec<String>,
    /// One per arm, from its identity: the colours the workbench shows it in.
    pub colours: Vec<crate::palette::Rgb>,
}

pub const X_TITLE: &str = "meta-iteration";
/// Longest legend label, in characters: ten of these fit a 1200-pixel figure in three columns.
pub const LABEL_CHARS: usize = 40;

/// The figure for `arms`.
pub fn build(arms: &[ArmCurves], classification: bool) -> Figure {
    let x_max = x_extent(arms);
    // Final test results stand in a column just right of the curves' ends (a slot's gap, then
    // one slot per arm), so their whiskers neither hide each other nor the last validation point.
    let slot = x_max.map_or(1.0, |m| (m as f64 * 0.015).max(1.0));
    let train_curves: Vec<Curve> = arms.iter().map(train_curve).collect();
    let eval_curves: Vec<Curve> = arms
        .iter()
        .enumerate()
        .map(|(i, a)| eval_curve(a, classification, x_max, slot * (i + 2) as f64))
        .collect();
    let train_y = train_y_axis(&train_curves);
    let chance = chance(arms, classification);
    let eval_y = eval_y_axis(&eval_curves, chance, classification);
    // The raw train loss is clipped to the axis: one spike must not flatten every curve.
    let train_curves = match &train_y {
        Some(y) => train_curves.into_iter().map(|c| clip_raw(c, y)).collect(),
        None => train_curves,
    };
    let eval_curves = match &eval_y {
        Some(y) => eval_curves.into_iter().map(|c| clip_ci(c, y)).collect(),
        None => eval_curves,
    };
    let train_x = x_axis(x_max, slot, &train_curves);
    let eval_x = x_axis(x_max, slot, &eval_curves);
    let metric = if classification {
        "accuracy (%)"
    } else {
        "MSE"
    };
    Figure {
        train: Panel {
            title: train_title(arms, &train_curves),
            y_title: if classification {
                "meta-train loss (cross-entropy)".into()
            } else {
                "meta-train loss (MSE)".into()
            },
            axes: train_x.zip(train_y),
            curves: train_curves,
            chance: None,
        },
        eval: Panel {
            title: eval_title(arms, chance),
            y_title: format!("validation / test {metric}"),
            axes: eval_x.zip(eval_y),
            curves: eval_curves,
            chance,
        },
        legend: legend(arms),
        colours: colours(arms),
    }
}

/// The last meta-iteration any arm logged (training or evaluation).
fn x_extent(arms: &[ArmCurves]) -> Option<usize> {
    arms.iter()
        .flat_map(|a| {
            a.train
                .iter()
                .map(|p| p.iteration)
                .chain(a.evals.iter().map(|e| e.iteration))
        })
        .max()
}

/// The meta-iteration axis, with room for the test column (or a lone dot) right of the curves
/// without ticks past the last iteration.
fn x_axis(x_max: Option<usize>, slot: f64, curves: &[Curve]) -> Option<Axis> {
    let mut a = axis::fit(x_max.map(|m| m as f64), Domain::Iterations, 6)?;
    let right = curves
        .iter()
        .flat_map(|c| c.whiskers.iter().map(|w| w.x))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    if let Some(r) = right.filter(|r| *r >= a.hi - 1e-9) {
        a.hi = r + 2.0 * slot;
    }
    Some(a)
}

/// The training panel's loss axis: the smoothed lines and the raw points short of their spikes.
fn train_y_axis(curves: &[Curve]) -> Option<Axis> {
    axis::fit(
        curves
            .iter()
            .flat_map(|c| c.line.iter().map(|p| p.1))
            .chain(curves.iter().flat_map(|c| robust_top(&c.raw).into_iter())),
        Domain::NonNegative,
        6,
    )
}

/// Chance accuracy in percent, when every arm had the same number of classes per episode.
fn chance(arms: &[ArmCurves], classification: bool) -> Option<f64> {
    let mut ways = arms.iter().map(|a| a.ways);
    match ways.next().flatten() {
        Some(w) if classification && w > 0 && ways.all(|x| x == Some(w)) => Some(100.0 / w as f64),
        _ => None,
    }
}

/// The evaluation panel's axis: lines, CI bands, whiskers and chance.
fn eval_y_axis(curves: &[Curve], chance: Option<f64>, classification: bool) -> Option<Axis> {
    let domain = if classification {
        Domain::Percent
    } else {
        Domain::NonNegative
    };
    axis::fit(
        curves
            .iter()
            .flat_map(|c| {
                c.line
                    .iter()
                    .map(|p| p.1)
                    .chain(c.band.iter().flat_map(|b| [b.1, b.2]))
                    .chain(c.whiskers.iter().flat_map(|w| [w.lo, w.hi]))
            })
            // The axis reaches chance, so the line is drawn, not just named.
            .chain(chance),
        domain,
        6,
    )
}

fn clip_raw(mut c: Curve, y: &Axis) -> Curve {
    for p in &mut c.raw {
        p.1 = p.1.clamp(y.lo, y.hi);
    }
    c
}

fn clip_ci(mut c: Curve, y: &Axis) -> Curve {
    for b in &mut c.band {
        (b.1, b.2) = (b.1.clamp(y.lo, y.hi), b.2.clamp(y.lo, y.hi));
    }
    for w in &mut c.whiskers {
        (w.lo, w.hi) = (w.lo.clamp(y.lo, y.hi), w.hi.clamp(y.lo, y.hi));
    }
    c
}

/// The training panel's title: the EMA's span (raw points per time constant, as each curve used
/// it), and a warning when the arms' losses come from different algorithms.
fn train_title(arms: &[ArmCurves], curves: &[Curve]) -> String {
    let taus: Vec<usize> = arms.iter().map(|a| tau(a.train.len()) as usize).collect();
    let (lo, hi) = (
        taus.iter().copied().min().unwrap_or(1),
        taus.iter().copied().max().unwrap_or(1),
    );
    let span = if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}–{hi}")
    };
    let mut t = if curves.iter().any(|c| !c.raw.is_empty()) && hi > 1 {
        format!("meta-train loss (EMA over ~{span} points; raw faint)")
    } else {
        "meta-train loss".to_string()
    };
    let mut algos: Vec<&str> = arms
        .iter()
        .map(|a| a.algorithm.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    algos.sort_unstable();
    algos.dedup();
    if algos.len() > 1 {
        t.push_str(": not comparable across algorithms");
    }
    t
}

/// The evaluation panel's title; the step count only when every evaluation used the same one.
fn eval_title(arms: &[ArmCurves], chance: Option<f64>) -> String {
    let mut all_steps = arms
        .iter()
        .flat_map(|a| a.evals.iter().map(|e| e.inner_steps));
    let first = all_steps.next();
    let steps = first.filter(|k| all_steps.all(|s| s == *k));
    let t = match steps {
        Some(k) => format!(
            "held-out tasks after {k} step{}: validation, ● test",
            plural(k)
        ),
        None => "held-out tasks after adaptation: validation, ● test".into(),
    };
    match chance {
        Some(c) => format!("{t}; chance {c:.0}% (grey)"),
        None => t,
    }
}

/// Each arm's label, printable and elided, with where it stopped if it did not finish.
fn legend(arms: &[ArmCurves]) -> Vec<String> {
    arms.iter()
        .map(|a| {
            let label = elide(&printable(&a.label), LABEL_CHARS);
            match a.stopped_at {
                Some(it) => format!("{label} (stopped @{it})"),
                None => label,
            }
        })
        .collect()
}

/// Each arm's colour from its identity (else its label), as the workbench shows it.
fn colours(arms: &[ArmCurves]) -> Vec<crate::palette::Rgb> {
    crate::palette::assign(
        &arms
            .iter()
            .map(|a| {
                if a.identity.is_empty() {
                    a.label.as_str()
                } else {
                    a.identity.as_str()
                }
            })
            .collect::<Vec<_>>(),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The EMA's time constant in points for a curve of `n` points: about a twentieth of it.
fn tau(n: usize) -> f64 {
    (n as f64 / 20.0).clamp(1.0, 100.0)
}

/// The meta-train loss, raw and as an exponential moving average whose time constant is about
/// a twentieth of the run, so a 50-point run and a 5000-point run look equally smooth.
fn train_curve(a: &ArmCurves) -> Curve {
    let raw: Vec<(f64, f64)> = a
        .train
        .iter()
        .filter(|p| p.loss.is_finite())
        .map(|p| (p.iteration as f64, p.loss))
        .collect();
    let tau = tau(raw.len());
    let w = 1.0 - 1.0 / tau;
    let mut ema = None;
    let line = raw
        .iter()
        .map(|&(x, y)| {
            let v = ema.map_or(y, |e: f64| w * e + (1.0 - w) * y);
            ema = Some(v);
            (x, v)
        })
        .collect();
    let whiskers = match raw.as_slice() {
        // A single logged point: a dot, not an invisible one-point line.
        [(x, y)] => vec![Whisker {
            x: *x,
            lo: *y,
            mid: *y,
            hi: *y,
        }],
        _ => vec![],
    };
    Curve {
        // Unsmoothed (a short run), the line is the raw curve: no faint copy under it.
        raw: if raw.len() > 1 && tau > 1.0 {
            raw
        } else {
            vec![]
        },
        line,
        band: vec![],
        whiskers,
    }
}

/// The 99th percentile of the raw values: the top of the axis, above which spikes are clipped.
fn robust_top(raw: &[(f64, f64)]) -> Option<f64> {
    let mut v: Vec<f64> = raw.iter().map(|p| p.1).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * 0.99).round() as usize])
}

/// Validation means with their band (a whisker when there is one evaluation), and the final
/// test result as a whisker `dx` right of the last iteration.
fn eval_curve(a: &ArmCurves, classification: bool, x_max: Option<usize>, dx: f64) -> Curve {
    let scale = if classification { 100.0 } else { 1.0 };
    let value = |e: &crate::metrics::EvalResult| {
        let m = if classification {
            e.accuracy.as_ref()?
        } else {
            &e.loss
        };
        let ci = if m.ci95.is_finite() { m.ci95 } else { 0.0 };
        m.mean.is_finite().then_some((m.mean * scale, ci * scale))
    };
    let periodic: Vec<(f64, f64, f64)> = a
        .evals
        .iter()
        .filter(|e| e.split != Split::Test)
        .filter_map(|e| value(e).map(|(m, c)| (e.iteration as f64, m, c)))
        .collect();
    let mut whiskers = Vec::new();
    if let [(x, m, c)] = periodic.as_slice() {
        whiskers.push(Whisker {
            x: *x,
            lo: m - c,
            mid: *m,
            hi: m + c,
        });
    }
    if let Some((m, c)) = a
        .evals
        .iter()
        .rev()
        .find(|e| e.split == Split::Test)
        .and_then(value)
    {
        let at = x_max.map_or(0.0, |x| x as f64) + dx;
        whiskers.push(Whisker {
            x: at,
            lo: m - c,
            mid: m,
            hi: m + c,
        });
    }
    Curve {
        raw: vec![],
        line: periodic.iter().map(|&(x, m, _)| (x, m)).collect(),
        band: if periodic.len() > 1 {
            periodic
                .iter()
                .map(|&(x, m, c)| (x, m - c, m + c))
                .collect()
        } else {
            vec![]
        },
        whiskers,
    }
}

/// Control characters shown as `?`: a label from an old run's name must not garble the files.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `label` in at most `max` characters: the middle elided with `…`, keeping the start and the
/// trailing short run id (` #3fa2`) that tells a rerun from its original.
pub fn elide(label: &str, max: usize) -> String {
    let n = label.chars().count();
    if n <= max {
        return label.to_string();
    }
    let (body, id) = match label.rsplit_once(" #") {
        Some((b, id)) if id.chars().count() + 2 < max / 2 => (b, format!(" #{id}")),
        _ => (label, String::new()),
    };
    let room = max.saturating_sub(id.chars().count() + 1);
    let head = room.div_ceil(2);
    let tail = room - head;
    let chars: Vec<char> = body.chars().collect();
    let start: String = chars[..head.min(chars.len())].iter().collect();
    let end: String = chars[chars.len().saturating_sub(tail)..].iter().collect();
    format!("{start}…{end}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_keep_their_ends_and_run_id() {
        assert_eq!(elide("maml", 10), "maml");
        let l = "omniglot-metric-vs-gradient-20way/protonet-long-name #3fa2";
        let e = elide(l, 30);
        assert_eq!(e.chars().count(), 30);
        assert!(
            e.starts_with("omniglot") && e.ends_with("-name #3fa2") && e.contains('…'),
            "{e}"
        );
        let plain = elide(&"x".repeat(50), 20);
        assert_eq!(plain.chars().count(), 20);
        assert_eq!(printable("a\u{1b}b"), "a?b");
    }
}
