//! Live (or saved) training of one experiment: the arms table and the selected arm's curves.
//! Narrow terminals drop decorations (algorithm, bar, rate, status) before any number: an arm's
//! metric and its ± are always shown whole.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tasks::Split;
use crate::tui::app::App;
use crate::tui::chart_opts::ChartOpts;
use crate::tui::results::{self, Metric, Ranking, Verdict};
use crate::tui::session::{ArmStatus, ArmView, Session};

use super::chart::{self, Curve, Panel, Title};
use super::{layout, theme};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(s) = app.session() else {
        let p = Paragraph::new(
            "Nothing to show yet: launch an experiment (r in Experiments) or open a run (Runs).",
        )
        .block(Block::default().borders(Borders::ALL).title("Monitor"));
        return f.render_widget(p, area);
    };
    let [head, body] = layout::monitor(area, s.arms.len());
    let ranking = results::rank(s, app.task_accuracy);
    arms_table(app, s, &ranking, f, head);
    let Some(arm) = s.arms.get(app.arm_sel).or(s.arms.first()) else {
        return;
    };
    let sel = app.arm_sel.min(s.arms.len().saturating_sub(1));
    arm_panels(app, arm, theme::arm_colors(s)[sel], ranking.metric, f, body);
}

/// The arm's headline evaluation in the ranking's metric: `val MSE 0.4798 ± 0.0422`,
/// `test acc 97.6% ± 0.3`.
pub fn metric_text(a: &ArmView, metric: Metric) -> String {
    let Some(e) = a.headline_eval() else {
        return "no eval yet".into();
    };
    let what = if e.split == Split::Test {
        "test"
    } else {
        "val"
    };
    match (metric, &e.accuracy) {
        (Metric::Accuracy, Some(acc)) => format!("{what} acc {}", theme::pct_ci(acc)),
        (Metric::Loss { mse: true }, _) => format!("{what} MSE {}", theme::mean_ci(&e.loss)),
        _ => format!("{what} loss {}", theme::mean_ci(&e.loss)),
    }
}

/// The iteration the headline evaluation was made at.
fn eval_at(a: &ArmView) -> String {
    a.headline_eval()
        .map_or(String::new(), |e| format!("@{}", e.iteration))
}

/// Which optional columns of the arms table fit: decided once for all rows, so they align.
struct Cols {
    name: usize,
    metric: usize,
    at: usize,
    verdict: bool,
    status: bool,
    /// Digits of the iteration counts; 0 = column left out.
    counts: usize,
    bar: usize,
    algorithm: bool,
    rate: bool,
    /// No room for the rate column: a running arm's status reads its rate and ETA instead
    /// (`25/s 8s`), in a status column two wider.
    rate_in_status: bool,
}

const STATUS_W: usize = 10;
const ALGO_W: usize = 11;
const RATE_W: usize = 21;
const VERDICT_W: usize = 7;
const NAME_MIN: usize = 6;

/// Columns left on a line as optional parts are added in priority order.
pub struct Budget {
    pub used: usize,
    pub width: usize,
}

impl Budget {
    /// Take `w` columns if they are free.
    pub fn take(&mut self, w: usize) -> bool {
        let ok = self.used + w <= self.width;
        if ok {
            self.used += w;
        }
        ok
    }
}

fn columns(s: &Session, metric: Metric, width: usize) -> Cols {
    let name_full = s
        .arms
        .iter()
        .map(|a| a.name.chars().count())
        .max()
        .unwrap_or(4);
    let metric_w = s
        .arms
        .iter()
        .map(|a| metric_text(a, metric).chars().count())
        .max()
        .unwrap_or(0);
    let at_w = s
        .arms
        .iter()
        .map(|a| eval_at(a).chars().count())
        .max()
        .unwrap_or(0);
    // Marker, dot, the shortest name and the metric: what every width shows.
    let mut b = Budget {
        used: 2 + 2 + name_full.min(NAME_MIN) + 1 + metric_w,
        width,
    };
    let at = if at_w > 0 && b.take(at_w + 1) {
        at_w
    } else {
        0
    };
    let verdict = s.arms.len() > 1 && b.take(VERDICT_W);
    let status = b.take(STATUS_W);
    let extra_name = name_full.saturating_sub(NAME_MIN);
    let name = if b.take(extra_name) {
        name_full
    } else {
        let room = b.width.saturating_sub(b.used).min(extra_name);
        b.used += room;
        name_full.min(NAME_MIN) + room
    };
    let digits = s
        .arms
        .iter()
        .map(|a| a.total.to_string().len())
        .max()
        .unwrap_or(1);
    let counts = if b.take(2 * digits + 7) { digits } else { 0 };
    // The rate and ETA say whether a live arm is healthy; the bar and the algorithm's name
    // repeat what the counts and the panels already say, so they go first.
    let rate = b.take(RATE_W);
    let mut bar = if b.take(11) { 10 } else { 0 };
    let algorithm = b.take(ALGO_W);
    if bar == 10 && b.take(10) {
        bar = 20;
    }
    let rate_in_status = !rate && status && b.take(2);
    Cols {
        rate_in_status,
        name,
        metric: metric_w,
        at,
        verdict,
        status,
        counts,
        bar,
        algorithm,
        rate,
    }
}

fn arm_line(
    a: &ArmView,
    color: Color,
    selected: bool,
    verdict: Verdict,
    c: &Cols,
    metric: Metric,
) -> Line<'static> {
    let marker = if selected { "▶ " } else { "  " };
    let mut spans = vec![
        Span::raw(marker),
        Span::styled(
            format!("● {:<w$}", layout::fit_label(&a.name, c.name), w = c.name),
            Style::default().fg(color),
        ),
    ];
    if c.algorithm {
        spans.push(Span::raw(format!(" {:<10}", truncate(&a.algorithm, 10))));
    }
    if c.bar > 0 {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            theme::bar(a.progress(), c.bar),
            Style::default().fg(color),
        ));
    }
    if c.counts > 0 {
        spans.push(Span::raw(format!(
            " {:>w$}/{:<w$} {:>3.0}%",
            a.iteration,
            a.total,
            100.0 * a.progress(),
            w = c.counts
        )));
    }
    if c.rate {
        // A paused or finished arm has no rate: its last one would read as if it still ran.
        let rate = match a.iters_per_sec {
            // The last rate of a paused arm is not its rate now.
            _ if matches!(a.status, ArmStatus::Paused | ArmStatus::Pausing) => "paused".into(),
            _ if a.status != ArmStatus::Running => "– it/s".to_string(),
            r if r >= 100.0 => format!("{r:.0} it/s"),
            r if r > 0.0 => format!("{r:.1} it/s"),
            _ => "– it/s".into(),
        };
        let eta = a
            .eta_secs()
            .map_or(String::new(), |s| format!("ETA {}", theme::duration(s)));
        spans.push(Span::raw(format!(" {rate:>9} {eta:<10}")));
    }
    if c.status {
        let status_style = match &a.status {
            ArmStatus::Failed(_) => theme::error(),
            st if st.is_active() => theme::ok(),
            _ => Style::default(),
        };
        let label = match (a.status == ArmStatus::Running, a.iters_per_sec) {
            (true, r) if c.rate_in_status && r > 0.0 => {
                let rate = if r >= 10.0 {
                    format!("{r:.0}/s")
                } else {
                    format!("{r:.1}/s")
                };
                let eta = a.eta_secs().map_or(String::new(), theme::duration);
                format!("{rate} {eta}")
            }
            _ => a.status.label(),
        };
        let w = if c.rate_in_status { 11 } else { 9 };
        spans.push(Span::styled(
            format!(" {:<w$}", truncate(&label, w)),
            status_style,
        ));
    }
    // Until training starts, the metric's place says how loading the data goes.
    let metric_text = match a.status {
        ArmStatus::Loading { done, total } => format!("loading images {done}/{total}"),
        _ => metric_text(a, metric),
    };
    spans.push(Span::raw(format!(" {:<w$}", metric_text, w = c.metric)));
    if c.at > 0 {
        spans.push(Span::styled(
            format!(" {:<w$}", eval_at(a), w = c.at),
            theme::dim(),
        ));
    }
    if c.verdict && !verdict.mark().is_empty() {
        spans.push(Span::styled(
            format!(" {}", verdict.mark()),
            verdict_style(verdict),
        ));
    }
    let line = Line::from(spans);
    if selected {
        line.style(theme::selected())
    } else {
        line
    }
}

pub fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Best => theme::ok(),
        Verdict::NotDistinguishable => Style::default().fg(Color::Yellow),
        _ => Style::default(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars()
            .take(n.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}

fn arms_table(app: &App, s: &Session, ranking: &Ranking, f: &mut Frame, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let off = layout::scroll_offset(app.arm_sel, s.arms.len(), height);
    let n = s.arms.len();
    let more = if n > height {
        format!(" · {}–{} of {n}", off + 1, (off + height).min(n))
    } else {
        String::new()
    };
    // Distorted training images make training losses read higher than evaluation's: say so.
    let augmented = if s.arms.iter().any(|a| a.augment.is_some()) && area.width > 50 {
        " · training images distorted"
    } else {
        ""
    };
    let title = format!(
        " {} — {}{augmented}{more} ",
        s.title,
        if s.live { "live" } else { "saved run" }
    );
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme::title()));
    let opts = app.chart.describe();
    if !opts.is_empty() && area.width > 60 {
        block = block.title(Line::styled(format!(" {opts} "), theme::dim()).right_aligned());
    }
    let cols = columns(s, ranking.metric, area.width.saturating_sub(2) as usize);
    let colors = theme::arm_colors(s);
    let lines: Vec<Line> = s
        .arms
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, a)| {
            arm_line(
                a,
                colors[i],
                i == app.arm_sel,
                ranking.verdict_of(i),
                &cols,
                ranking.metric,
            )
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn arm_panels(app: &App, a: &ArmView, color: Color, metric: Metric, f: &mut Frame, area: Rect) {
    if let (ArmStatus::Failed(reason), true) = (&a.status, a.train_loss.is_empty()) {
        // Nothing to plot: the whole reason (with its fix) is what the user needs.
        let p = Paragraph::new(reason.clone())
            .style(theme::error())
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" {} failed ", a.name)),
            );
        return f.render_widget(p, area);
    }
    let o = &app.chart;
    let show_tasks = area.height >= 14 && area.width >= 70 && !a.tasks.is_empty();
    let [top, bottom] = if show_tasks {
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let eval = eval_panel(a, color, metric, o);
    // Narrow: the evaluation (the number that matters) gets the room; train goes below it when
    // there is height, else is left out.
    if top.width < 70 {
        if top.height >= 16 {
            let [e, t] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(top);
            chart::render(f, e, eval, o);
            train_panels(a, color, o, f, t);
        } else {
            chart::render(f, top, eval, o);
        }
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    train_panels(a, color, o, f, left);
    chart::render(f, right, eval, o);
    if show_tasks {
        task_panels(app, a, color, f, bottom);
    }
}

fn train_panels(a: &ArmView, color: Color, o: &ChartOpts, f: &mut Frame, area: Rect) {
    let metric = if a.classification { "loss" } else { "MSE" };
    let time = chart::x_is_time(o, std::iter::once(a));
    let last = a
        .train_loss
        .last()
        .map_or(String::new(), |(_, v)| format!(" {}", theme::num(v)));
    let mut train = Panel::new(
        Title::default()
            .opt(a.name.clone())
            .keep(format!("meta-train {metric}{last}")),
    );
    train.x_time = time;
    train
        .curves
        .push(Curve::train("", a, &a.train_loss, color, time));
    if a.classification && !a.train_acc.is_empty() {
        // Loss and accuracy have different scales: split the panel rather than share an axis.
        let [l1, l2] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        chart::render(f, l1, train, o);
        let last = a
            .train_acc
            .last()
            .map_or(String::new(), |(_, v)| format!(" {:.1}%", 100.0 * v));
        let mut acc = Panel::new(Title::default().keep(format!("meta-train accuracy{last}")));
        acc.percent = true;
        acc.x_time = time;
        acc.curves
            .push(Curve::train("", a, &a.train_acc, color, time));
        chart::render(f, l2, acc, o);
    } else {
        chart::render(f, area, train, o);
    }
}

fn eval_panel(a: &ArmView, color: Color, metric: Metric, o: &ChartOpts) -> Panel<'static> {
    let use_acc = metric == Metric::Accuracy && !a.eval_acc.mean.is_empty();
    let series = if use_acc { &a.eval_acc } else { &a.eval_loss };
    let time = chart::x_is_time(o, std::iter::once(a));
    let mut p = Panel::new(
        Title::default()
            .keep(metric_text(a, metric))
            .opt(eval_at(a))
            .opt("band: 95% CI"),
    );
    p.percent = use_acc;
    p.x_time = time;
    p.empty_text = "no evaluation yet";
    p.curves.push(Curve::eval("", a, series, color, true, time));
    p
}

/// Whether the tracked-task panels show accuracy, and the metric's short name.
fn task_metric(app: &App, a: &ArmView) -> (bool, &'static str) {
    let use_acc = a.classification && app.task_accuracy;
    let what = match (use_acc, a.classification) {
        (true, _) => "acc",
        (false, true) => "loss",
        (false, false) => "MSE",
    };
    (use_acc, what)
}

/// Too narrow for a panel per tracked task: every task in one panel, in shades of the arm's
/// colour, named `t0 t1 …` in the cursor readout, so none is silently left out.
fn tasks_overlaid(app: &App, a: &ArmView, color: Color, f: &mut Frame, area: Rect) {
    let (use_acc, what) = task_metric(app, a);
    let time = chart::x_is_time(&app.chart, std::iter::once(a));
    let n = a.tasks.len();
    let mut p = Panel::new(
        Title::default()
            .keep(format!("tracked tasks 0–{} {what}", n - 1))
            .opt("one shade each"),
    );
    p.percent = use_acc;
    p.x_time = time;
    p.empty_text = "no evaluation yet";
    for (t, ts) in a.tasks.iter().enumerate() {
        let series = if use_acc { &ts.acc } else { &ts.loss };
        let shade = chart::fade(color, 1.0 - 0.5 * t as f64 / n.max(2) as f64);
        p.curves.push(Curve {
            points: chart::on_x(a, series.points(), time),
            reached: chart::reached(a, time),
            ..Curve::of(format!("t{t}"), series, shade)
        });
    }
    chart::render(f, area, p, &app.chart);
}

fn task_panels(app: &App, a: &ArmView, color: Color, f: &mut Frame, area: Rect) {
    let fit = (area.width / 28).max(1) as usize;
    if a.tasks.len() > fit {
        return tasks_overlaid(app, a, color, f, area);
    }
    let n = a.tasks.len().min(fit);
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(area);
    let (use_acc, what) = task_metric(app, a);
    let time = chart::x_is_time(&app.chart, std::iter::once(a));
    for (t, (ts, r)) in a.tasks.iter().zip(areas.iter()).enumerate() {
        let series = if use_acc { &ts.acc } else { &ts.loss };
        let last = series.last().map_or(String::new(), |(_, v)| {
            if use_acc {
                format!(" {:.1}%", 100.0 * v)
            } else {
                format!(" {}", theme::num(v))
            }
        });
        let mut p = Panel::new(Title::default().keep(format!("task {t} {what}{last}")));
        p.percent = use_acc;
        p.x_time = time;
        p.empty_text = "no evaluation yet";
        p.curves.push(Curve {
            points: chart::on_x(a, series.points(), time),
            ..Curve::of("", series, color)
        });
        chart::render(f, *r, p, &app.chart);
    }
}
