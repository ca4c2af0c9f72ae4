//! The adaptation screen: what k steps on a new task buy. For every family, each arm's query
//! loss (or accuracy) after 0..k adaptation steps at its latest evaluation, as a chart and a
//! table; for regression also the MAML paper's figure for one tracked task: the true function,
//! the support points, and the prediction before adaptation and after k steps; for
//! classification one tracked task's query loss and accuracy per step and its support classes
//! (`class_fit`).

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use crate::metrics::{StepResult, TaskFit};
use crate::stats::MeanCi;
use crate::tasks::Split;
use crate::tui::app::App;
use crate::tui::series::fold_range;
use crate::tui::session::{ArmView, Session};

use super::theme;

/// The true function's colour: neutral, so the arm's colour stays the model's.
const TRUTH: Color = Color::Gray;
const SUPPORT: Color = Color::White;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(s) = app.session().filter(|s| !s.arms.is_empty()) else {
        let p = Paragraph::new("Nothing to show yet: launch an experiment or open a run.")
            .block(Block::default().borders(Borders::ALL).title("Adaptation"));
        return f.render_widget(p, area);
    };
    let sel = app.arm_sel.min(s.arms.len() - 1);
    let arm = &s.arms[sel];
    let colors = theme::arm_colors(s);
    let regression = !s.classification();
    let metric = Metric::of(s, app.task_accuracy);
    let table_rows = s.arms.len().min(8) as u16 + 3;
    let [head, charts, table] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(table_rows),
    ])
    .areas(area);
    let fit = regression.then(|| {
        arm.fits
            .get(app.adaptation.task.min(arm.fits.len().max(1) - 1))
    });
    f.render_widget(
        header(arm, colors[sel], fit.flatten(), arm.fits.len(), head.width),
        head,
    );
    let n = arm.class_fits.len();
    let class_fit = arm.class_fits.get(app.adaptation.task.min(n.max(1) - 1));
    let split = || {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(charts)
    };
    match (fit, class_fit) {
        (Some(fit), _) => {
            let [left, right] = split();
            fit_panel(f, left, arm, colors[sel], fit, arm.fits.len());
            steps_chart(f, right, s, metric);
        }
        (None, Some(cf)) => {
            let [left, right] = split();
            super::class_fit::render(f, left, cf, n, colors[sel]);
            steps_chart(f, right, s, metric);
        }
        (None, None) => steps_chart(f, charts, s, metric),
    }
    steps_table(f, table, s, sel, metric);
}

/// What the step chart and table show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Mse,
    Loss,
    Accuracy,
}

impl Metric {
    fn of(s: &Session, accuracy: bool) -> Metric {
        match (s.classification(), accuracy) {
            (false, _) => Metric::Mse,
            (true, true) => Metric::Accuracy,
            (true, false) => Metric::Loss,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Mse => "MSE",
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
        }
    }

    fn value(self, p: &StepResult) -> Option<MeanCi> {
        match self {
            Metric::Accuracy => p.accuracy,
            _ => Some(p.loss),
        }
    }

    fn text(self, m: &MeanCi) -> String {
        match self {
            Metric::Accuracy => theme::pct_ci(m),
            _ => theme::mean_ci(m),
        }
    }

    fn tick(self, v: f64) -> String {
        match self {
            Metric::Accuracy => format!("{:.0}%", 100.0 * v),
            _ => theme::num(v),
        }
    }
}

/// The per-step results an arm's headline evaluation recorded.
fn curve(a: &ArmView) -> &[StepResult] {
    a.headline_eval().map_or(&[], |e| e.per_step.as_slice())
}

/// The selected arm and task, and what adaptation bought on it; parts are left out from the
/// end as the width shrinks, never cut.
fn header(
    arm: &ArmView,
    color: Color,
    fit: Option<&TaskFit>,
    tasks: usize,
    width: u16,
) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("● {}", arm.name),
        Style::default().fg(color).add_modifier(Modifier::BOLD),
    )];
    // Each part in its long form, and a short one for narrow screens.
    let mut parts: Vec<(String, String)> = vec![];
    if let Some(fit) = fit {
        let t = format!("task {} of {tasks}", fit.task + 1);
        parts.push((t.clone(), t));
        if let (Some(b), Some(a)) = (fit.grid_mse(0), fit.grid_mse(fit.steps())) {
            let (b, a, k) = (theme::num(b), theme::num(a), fit.steps());
            parts.push((
                format!("MSE to the true curve {b} before → {a} after {k} steps"),
                format!("MSE {b} → {a} ({k} steps)"),
            ));
        }
        let it = format!("iteration {}", fit.iteration);
        parts.push((it.clone(), it));
    }
    parts.push((arm.algorithm.clone(), arm.algorithm.clone()));
    let mut used = spans[0].content.chars().count();
    for (long, short) in parts {
        let Some(p) = [long, short]
            .into_iter()
            .find(|p| used + p.chars().count() + 3 <= width as usize)
        else {
            break;
        };
        used += p.chars().count() + 3;
        spans.push(Span::styled(" · ", theme::dim()));
        spans.push(Span::raw(p));
    }
    Line::from(spans)
}

fn points(xs: &[f32], ys: &[f32]) -> Vec<(f64, f64)> {
    xs.iter()
        .zip(ys)
        .map(|(&x, &y)| (x as f64, y as f64))
        .collect()
}

fn padded((lo, hi): (f64, f64)) -> [f64; 2] {
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1e-3)
    };
    [lo - pad, hi + pad]
}

fn empty(f: &mut Frame, area: Rect, block: Block, text: &str) {
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height > 0 {
        let msg = Paragraph::new(text.to_string())
            .style(theme::dim())
            .alignment(Alignment::Center)
            .wrap(ratatui::widgets::Wrap { trim: true });
        let y = inner.y + inner.height.saturating_sub(2) / 2;
        f.render_widget(
            msg,
            Rect {
                y,
                height: inner.bottom() - y,
                ..inner
            },
        );
    }
}

fn block(title: String) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme::dim())
        .title(Span::styled(title, theme::title()))
}

/// The tracked task's figure: true function, support points, prediction at step 0 (dim) and
/// at step k (the arm's colour).
fn fit_panel(
    f: &mut Frame,
    area: Rect,
    arm: &ArmView,
    color: Color,
    fit: Option<&TaskFit>,
    tasks: usize,
) {
    let Some(fit) = fit else {
        let text = if arm.headline_eval().is_some() && tasks == 0 {
            "no fit recorded: this run was saved before metalab drew them, or tracks no tasks (eval.tracked_tasks)"
        } else {
            "no fit yet: each evaluation draws the tracked tasks' fits"
        };
        return empty(f, area, block(" tracked task ".into()), text);
    };
    let k = fit.steps();
    let before = points(&fit.x, &fit.predictions[0]);
    let after = points(&fit.x, &fit.predictions[k]);
    let truth = points(&fit.x, &fit.truth);
    let support = points(&fit.support_x, &fit.support_y);
    let xs = fold_range(fit.x.iter().chain(&fit.support_x).map(|&v| v as f64));
    let ys = fold_range(
        [&truth, &before, &after, &support]
            .into_iter()
            .flatten()
            .map(|p| p.1),
    );
    let (Some(xs), Some(ys)) = (xs, ys) else {
        return empty(f, area, block(" tracked task ".into()), "empty fit");
    };
    let line = |data, color| {
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(color))
            .data(data)
    };
    let datasets = vec![
        line(&before, Color::DarkGray),
        line(&truth, TRUTH),
        line(&after, color),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::default().fg(SUPPORT).add_modifier(Modifier::BOLD))
            .data(&support),
    ];
    let legend = Line::from(vec![
        Span::styled("─ true ", Style::default().fg(TRUTH)),
        Span::styled("─ step 0 ", Style::default().fg(Color::DarkGray)),
        Span::styled(format!("─ step {k} "), Style::default().fg(color)),
        Span::styled(
            format!("• support ({})", fit.support_x.len()),
            Style::default().fg(SUPPORT),
        ),
    ]);
    let title = format!(" tracked task {} of {tasks} ", fit.task + 1);
    let [x0, x1] = [xs.0, xs.1];
    let [y0, y1] = padded(ys);
    let chart = Chart::new(datasets)
        .block(block(title).title_bottom(legend))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([theme::num(x0), "x".into(), theme::num(x1)])
                .style(theme::dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([theme::num(y0), theme::num((y0 + y1) / 2.0), theme::num(y1)])
                .style(theme::dim()),
        )
        .legend_position(None);
    f.render_widget(chart, area);
}

/// The most adaptation steps any arm's latest curve has: the x extent of the chart and table.
fn most_steps(s: &Session) -> usize {
    s.arms
        .iter()
        .map(|a| curve(a).len().saturating_sub(1))
        .max()
        .unwrap_or(0)
}

/// Every arm's query metric after 0..k steps; an arm without steps (metric-based) is a flat
/// line at its result, for reference.
fn steps_chart(f: &mut Frame, area: Rect, s: &Session, metric: Metric) {
    let colors = theme::arm_colors(s);
    let title = format!(" query {} vs adaptation steps ", metric.name());
    let kmax = most_steps(s);
    let data: Vec<(usize, Vec<(f64, f64)>)> = s
        .arms
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let pts: Vec<(f64, f64)> = curve(a)
                .iter()
                .filter_map(|p| metric.value(p).map(|m| (p.step as f64, m.mean)))
                .collect();
            match pts.len() {
                0 => None,
                1 => Some((i, vec![(0.0, pts[0].1), (kmax.max(1) as f64, pts[0].1)])),
                _ => Some((i, pts)),
            }
        })
        .collect();
    let ys = fold_range(data.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)));
    let Some(ys) = ys else {
        let text = if s.arms.iter().any(|a| a.headline_eval().is_some()) {
            "no per-step results: this run was saved before metalab recorded them"
        } else {
            "waiting for the first evaluation…"
        };
        return empty(f, area, block(title), text);
    };
    // A loss before adaptation can be orders of magnitude above the rest (234 against 0.5):
    // the axis is fitted to the adapted steps and step 0 is said to be above it.
    let adapted = fold_range(
        data.iter()
            .flat_map(|(_, p)| p.iter().filter(|q| q.0 > 0.0).map(|q| q.1)),
    );
    let off_scale = match adapted {
        Some((_, hi)) if metric != Metric::Accuracy && ys.1 > 5.0 * hi.max(1e-12) => Some(ys.1),
        _ => None,
    };
    let ys = match (off_scale, adapted) {
        (Some(_), Some(a)) => a,
        _ => ys,
    };
    let (y0, y1, yt) = y_ticks(metric, ys);
    let data: Vec<(usize, Vec<(f64, f64)>)> = data
        .into_iter()
        .map(|(i, p)| (i, p.into_iter().map(|(x, y)| (x, y.min(y1))).collect()))
        .collect();
    let title = match off_scale {
        Some(v) => format!(
            " query {} vs adaptation steps · step 0 above the axis (up to {}) ",
            metric.name(),
            theme::num(v)
        ),
        None => title,
    };
    let datasets = data
        .iter()
        .map(|(i, pts)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(colors[*i]))
                .data(pts)
        })
        .collect();
    let x1 = kmax.max(1) as f64;
    let chart = Chart::new(datasets)
        .block(block(title))
        .x_axis(
            Axis::default()
                .bounds([0.0, x1])
                .labels([
                    "0".to_string(),
                    "steps".to_string(),
                    format!("{}", kmax.max(1)),
                ])
                .style(theme::dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels({
                    let dec = super::ticks::decimals(&yt);
                    yt.iter()
                        .map(|v| match metric {
                            Metric::Accuracy => metric.tick(*v),
                            _ => format!("{v:.dec$}"),
                        })
                        .collect::<Vec<_>>()
                })
                .style(theme::dim()),
        )
        .legend_position(None);
    f.render_widget(chart, area);
}

/// Round ticks, evenly spaced (the chart spreads its labels evenly), 0 and 100% as bounds:
/// the y axis' (low, high, ticks) for values over `ys`.
fn y_ticks(metric: Metric, ys: (f64, f64)) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if metric == Metric::Accuracy {
        (ys.0.max(0.0), ys.1.min(1.0))
    } else {
        (ys.0.max(0.0), ys.1)
    };
    let (mut y0, mut y1, mut yt) = super::ticks::linear(lo, hi, 3);
    if metric == Metric::Accuracy {
        (y0, y1) = (y0.max(0.0), y1.min(1.0));
    } else {
        y0 = y0.max(0.0);
    }
    yt.retain(|v| *v >= y0 - 1e-12 && *v <= y1 + 1e-12);
    (y0, y1, yt)
}

/// The steps the table shows: 0 and k always, then evenly between as `columns` allow.
fn shown_steps(k: usize, columns: usize) -> Vec<usize> {
    if k == 0 || columns <= 1 {
        return vec![0];
    }
    let c = columns.min(k + 1);
    let mut v: Vec<usize> = (0..c)
        .map(|i| ((i * k) as f64 / (c - 1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

/// One row per arm, one column per shown step, every value whole with its ±; columns are
/// dropped, never numbers cut.
fn steps_table(f: &mut Frame, area: Rect, s: &Session, sel: usize, metric: Metric) {
    let colors = theme::arm_colors(s);
    // Arms are evaluated at their own pace (and saved runs on their own protocol): each row
    // says which evaluation its numbers come from, none speaks for the others.
    let title = format!(" query {} after each step ", metric.name());
    let b = block(title);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let kmax = most_steps(s);
    let cell = |a: &ArmView, step: usize| -> String {
        let c = curve(a);
        match c.get(step).and_then(|p| metric.value(p)) {
            Some(m) => metric.text(&m),
            None if c.len() == 1 && step > 0 => "no steps".into(),
            None => "–".into(),
        }
    };
    let all_cells = (0..=kmax).flat_map(|k| s.arms.iter().map(move |a| (a, k)));
    let cell_w = all_cells
        .map(|(a, k)| cell(a, k).chars().count())
        .max()
        .unwrap_or(1)
        .max(7)
        + 2;
    let name_w = s
        .arms
        .iter()
        .map(|a| a.name.chars().count() + 5)
        .max()
        .unwrap_or(6)
        .max(8);
    let source = |a: &ArmView, long: bool| -> String {
        let Some(e) = a.headline_eval() else {
            return "–".into();
        };
        let split = if e.split == Split::Test {
            "test"
        } else {
            "val"
        };
        if long {
            format!("{split} @{}, {} tasks", e.iteration, e.loss.n)
        } else {
            format!("{split}@{} n={}", e.iteration, e.loss.n)
        }
    };
    let source_w = |long: bool| {
        s.arms
            .iter()
            .map(|a| source(a, long).chars().count())
            .chain([9])
            .max()
            .unwrap_or(9)
            + 1
    };
    let free = (inner.width as usize).saturating_sub(name_w);
    let long = free.saturating_sub(source_w(true)) / cell_w >= 3;
    let src_w = source_w(long);
    let columns = free.saturating_sub(src_w) / cell_w;
    let steps = shown_steps(kmax, columns.max(1));
    let mut lines = vec![];
    let mut head = format!("{:<name_w$}{:<src_w$}", "steps", "evaluated");
    for st in &steps {
        head.push_str(&format!("{:>cell_w$}", st));
    }
    lines.push(Line::styled(head, theme::dim()));
    for (i, a) in s
        .arms
        .iter()
        .enumerate()
        .take((inner.height as usize).saturating_sub(1))
    {
        let marker = if i == sel { "▶ " } else { "  " };
        let mut spans = vec![
            Span::raw(marker),
            Span::styled(
                format!("● {:<w$}", a.name, w = name_w - 4),
                Style::default().fg(colors[i]),
            ),
            Span::styled(format!("{:<src_w$}", source(a, long)), theme::dim()),
        ];
        for st in &steps {
            spans.push(Span::raw(format!("{:>cell_w$}", cell(a, *st))));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::shown_steps;

    #[test]
    fn steps_keep_the_ends() {
        assert_eq!(shown_steps(10, 3), vec![0, 5, 10]);
        assert_eq!(shown_steps(10, 50), (0..=10).collect::<Vec<_>>());
        assert_eq!(shown_steps(1, 4), vec![0, 1]);
        assert_eq!(shown_steps(0, 4), vec![0]);
        assert_eq!(shown_steps(5, 1), vec![0]);
    }
}
