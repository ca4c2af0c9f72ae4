//! Curves out of metalab: CSV for analysis, SVG for papers and notes. Hand-written SVG keeps
//! the dependency tree small and the output diff-able.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::metrics::{EvalResult, TaskPoint, TrainPoint};
use crate::tasks::Split;

/// One arm's (or run's) full curves.
#[derive(Debug, Clone, Default)]
pub struct ArmCurves {
    pub label: String,
    pub train: Vec<TrainPoint>,
    pub evals: Vec<EvalResult>,
    pub tasks: Vec<TaskPoint>,
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Long format, one row per point: easy to load in pandas/R and to filter by `series`.
pub fn to_csv(arms: &[ArmCurves]) -> String {
    let mut out = String::from("arm,series,split,task,iteration,value,ci95,n\n");
    for a in arms {
        let arm = csv_field(&a.label);
        for p in &a.train {
            let _ = writeln!(out, "{arm},train_loss,train,,{},{},,", p.iteration, p.loss);
            if let Some(acc) = p.accuracy {
                let _ = writeln!(out, "{arm},train_accuracy,train,,{},{acc},,", p.iteration);
            }
        }
        for e in &a.evals {
            let split = csv_field(e.split.name());
            let (i, l, b) = (e.iteration, &e.loss, &e.loss_before);
            let _ = writeln!(
                out,
                "{arm},eval_loss,{split},,{i},{},{},{}",
                l.mean, l.ci95, l.n
            );
            let _ = writeln!(
                out,
                "{arm},eval_loss_before,{split},,{i},{},{},{}",
                b.mean, b.ci95, b.n
            );
            if let Some(acc) = &e.accuracy {
                let _ = writeln!(
                    out,
                    "{arm},eval_accuracy,{split},,{i},{},{},{}",
                    acc.mean, acc.ci95, acc.n
                );
            }
        }
        for t in &a.tasks {
            let _ = writeln!(
                out,
                "{arm},task_loss,validation,{},{},{},,",
                t.task, t.iteration, t.loss
            );
            if t.accuracy.is_some() {
                let _ = writeln!(
                    out,
                    "{arm},task_accuracy,validation,{},{},{},,",
                    t.task,
                    t.iteration,
                    opt(t.accuracy)
                );
            }
        }
    }
    out
}

/// One arm's curve, and an optional CI band as (x, lo, hi) at the same x values.
type Line = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

struct Plot<'a> {
    title: &'a str,
    lines: Vec<Line>,
}

/// Text for SVG: markup escaped, and control characters (which XML 1.0 forbids even escaped)
/// shown as `?`, so a label from an old run's name cannot break the file.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((a, b)) => Some((a.min(v), b.max(v))),
        })
}

fn plot(out: &mut String, p: &Plot, ox: f64, oy: f64, w: f64, h: f64) {
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
        ox + w / 2.0,
        oy - 8.0,
        escape(p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{ox}" y="{oy}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    let xs = range(p.lines.iter().flat_map(|(l, _)| l.iter().map(|q| q.0)));
    let ys = range(p.lines.iter().flat_map(|(l, b)| {
        l.iter()
            .map(|q| q.1)
            .chain(b.iter().flat_map(|q| [q.1, q.2]))
    }));
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">no data</text>"#,
            ox + w / 2.0,
            oy + h / 2.0
        );
        return;
    };
    let (x1, y1) = (
        if x1 > x0 { x1 } else { x0 + 1.0 },
        if y1 > y0 { y1 } else { y0 + 1.0 },
    );
    let sx = |x: f64| ox + (x - x0) / (x1 - x0) * w;
    let sy = |y: f64| oy + h - (y - y0) / (y1 - y0) * h;
    for (i, v) in [(0.0, y0), (0.5, (y0 + y1) / 2.0), (1.0, y1)] {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{v:.4}</text>"#,
            ox - 4.0,
            oy + h - i * h + 3.0
        );
    }
    for (i, v) in [(0.0, x0), (0.5, (x0 + x1) / 2.0), (1.0, x1)] {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{v:.0}</text>"#,
            ox + i * w,
            oy + h + 14.0
        );
    }
    for (k, (line, band)) in p.lines.iter().enumerate() {
        let c = crate::palette::arm(k).hex();
        if !band.is_empty() {
            let upper = band
                .iter()
                .map(|q| format!("{:.2},{:.2}", sx(q.0), sy(q.2)));
            let lower = band
                .iter()
                .rev()
                .map(|q| format!("{:.2},{:.2}", sx(q.0), sy(q.1)));
            let pts: Vec<String> = upper.chain(lower).collect();
            let _ = writeln!(
                out,
                r#"<polygon points="{}" fill="{c}" fill-opacity="0.15" stroke="none"/>"#,
                pts.join(" ")
            );
        }
        let pts: Vec<String> = line
            .iter()
            .filter(|q| q.1.is_finite())
            .map(|q| format!("{:.2},{:.2}", sx(q.0), sy(q.1)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"/>"#,
            pts.join(" ")
        );
    }
}

/// Two plots side by side — meta-train loss, and evaluation mean with its 95% CI band — with
/// one colour per arm and a legend.
pub fn to_svg(arms: &[ArmCurves], classification: bool) -> String {
    let (w, h) = (900.0, 420.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let train = Plot {
        title: if classification {
            "meta-train loss"
        } else {
            "meta-train MSE"
        },
        lines: arms
            .iter()
            .map(|a| {
                (
                    a.train
                        .iter()
                        .map(|p| (p.iteration as f64, p.loss))
                        .collect(),
                    vec![],
                )
            })
            .collect(),
    };
    let periodic = |a: &ArmCurves| {
        a.evals
            .iter()
            .filter(|e| e.split != Split::Test)
            .cloned()
            .collect::<Vec<_>>()
    };
    let eval = if classification {
        Plot {
            title: "eval accuracy (mean, 95% CI)",
            lines: arms
                .iter()
                .map(|a| {
                    let ev: Vec<_> = periodic(a)
                        .into_iter()
                        .filter_map(|e| e.accuracy.map(|m| (e.iteration as f64, m)))
                        .collect();
                    (
                        ev.iter().map(|(x, m)| (*x, m.mean)).collect(),
                        ev.iter()
                            .map(|(x, m)| (*x, m.mean - m.ci95, m.mean + m.ci95))
                            .collect(),
                    )
                })
                .collect(),
        }
    } else {
        Plot {
            title: "eval MSE (mean, 95% CI)",
            lines: arms
                .iter()
                .map(|a| {
                    let ev = periodic(a);
                    let ci = |c: f64| if c.is_finite() { c } else { 0.0 };
                    (
                        ev.iter()
                            .map(|e| (e.iteration as f64, e.loss.mean))
                            .collect(),
                        ev.iter()
                            .map(|e| {
                                (
                                    e.iteration as f64,
                                    e.loss.mean - ci(e.loss.ci95),
                                    e.loss.mean + ci(e.loss.ci95),
                                )
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    };
    plot(&mut out, &train, 70.0, 40.0, 340.0, 300.0);
    plot(&mut out, &eval, 520.0, 40.0, 340.0, 300.0);
    for (k, a) in arms.iter().enumerate() {
        let (x, y) = (70.0 + 160.0 * (k % 5) as f64, 375.0 + 18.0 * (k / 5) as f64);
        let c = crate::palette::arm(k).hex();
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{c}"/>"#,
            y - 10.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{y}" font-size="12">{}</text>"#,
            x + 16.0,
            escape(&a.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Write `<dir>/<stem>.csv` and `<dir>/<stem>.svg`; returns both paths.
pub fn write(
    dir: &Path,
    stem: &str,
    arms: &[ArmCurves],
    classification: bool,
) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let csv = dir.join(format!("{stem}.csv"));
    let svg = dir.join(format!("{stem}.svg"));
    std::fs::write(&csv, to_csv(arms))?;
    std::fs::write(&svg, to_svg(arms, classification))?;
    Ok((csv, svg))
}

#[cfg(test)]
mod tests {
    #[test]
    fn svg_text_has_no_control_characters_or_raw_markup() {
        assert_eq!(super::escape("a\u{1b}[31m<b>&\0"), "a?[31m&lt;b&gt;&amp;?");
    }
}
