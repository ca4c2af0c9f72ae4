//! Live (or saved) training of one experiment: the arms table and the selected arm's curves.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::tasks::Split;
use crate::tui::app::App;
use crate::tui::session::{ArmStatus, ArmView, Session};

use super::chart::{self, Curve, Panel};
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
    arms_table(app, s, f, head);
    let Some(arm) = s.arms.get(app.arm_sel).or(s.arms.first()) else {
        return;
    };
    let sel = app.arm_sel.min(s.arms.len().saturating_sub(1));
    arm_panels(app, arm, sel, f, body);
}

/// The metric the eval panels and headlines show: accuracy for classification, MSE for regression.
pub fn eval_text(a: &ArmView) -> String {
    match a.headline_eval() {
        None => "no eval yet".into(),
        Some(e) => {
            let what = if e.split == Split::Test {
                "test"
            } else {
                "val"
            };
            match (&e.accuracy, a.classification) {
                (Some(acc), true) => format!("{what} acc {}", theme::pct_ci(acc)),
                _ if a.classification => format!("{what} loss {}", theme::mean_ci(&e.loss)),
                _ => format!("{what} MSE {}", theme::mean_ci(&e.loss)),
            }
        }
    }
}

fn arm_line(a: &ArmView, i: usize, selected: bool, width: u16) -> Line<'static> {
    let color = theme::arm_color(i);
    let marker = if selected { "▶ " } else { "  " };
    let rate = match a.iters_per_sec {
        // The last rate of a paused arm is not its rate now.
        _ if matches!(a.status, ArmStatus::Paused | ArmStatus::Pausing) => "paused".into(),
        r if r >= 100.0 => format!("{r:.0} it/s"),
        r if r > 0.0 => format!("{r:.1} it/s"),
        _ => "– it/s".into(),
    };
    let eta = a
        .eta_secs()
        .map_or(String::new(), |s| format!("ETA {}", theme::duration(s)));
    let bar_w = if width >= 110 { 20 } else { 10 };
    let mut spans = vec![
        Span::raw(marker),
        Span::styled(
            format!("● {:<12}", truncate(&a.name, 12)),
            Style::default().fg(color),
        ),
        Span::raw(format!(" {:<10} ", truncate(&a.algorithm, 10))),
        Span::styled(theme::bar(a.progress(), bar_w), Style::default().fg(color)),
        Span::raw(format!(
            " {:>6}/{:<6} {:>3.0}% ",
            a.iteration,
            a.total,
            100.0 * a.progress()
        )),
    ];
    if width >= 100 {
        spans.push(Span::raw(format!("{rate:>10} {eta:<10} ")));
    }
    let status_style = match &a.status {
        ArmStatus::Failed(_) => theme::error(),
        st if st.is_active() => theme::ok(),
        _ => Style::default(),
    };
    spans.push(Span::styled(
        format!("{:<9} ", truncate(&a.status.label(), 30)),
        status_style,
    ));
    spans.push(Span::raw(eval_text(a)));
    let line = Line::from(spans);
    if selected {
        line.style(theme::selected())
    } else {
        line
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

fn arms_table(app: &App, s: &Session, f: &mut Frame, area: Rect) {
    let title = format!(
        " {} — {} ",
        s.title,
        if s.live { "live" } else { "saved run" }
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme::title()));
    let height = area.height.saturating_sub(2) as usize;
    let off = layout::scroll_offset(app.arm_sel, s.arms.len(), height);
    let lines: Vec<Line> = s
        .arms
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, a)| arm_line(a, i, i == app.arm_sel, area.width))
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn arm_panels(app: &App, a: &ArmView, i: usize, f: &mut Frame, area: Rect) {
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
    let show_tasks = area.height >= 14 && !a.tasks.is_empty();
    let [top, bottom] = if show_tasks {
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    } else {
        [area, Rect::default()]
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let color = theme::arm_color(i);
    let metric = if a.classification { "loss" } else { "MSE" };
    let mut train = Panel::new(format!(" {} · meta-train {metric} ", a.name));
    train.curves.push(Curve::of("", &a.train_loss, color));
    if let Some((_, v)) = a.train_loss.last() {
        train.title = format!(" {} · meta-train {metric} {} ", a.name, theme::num(v));
    }
    if a.classification && !a.train_acc.is_empty() {
        // Loss and accuracy have different scales: split the panel rather than share an axis.
        let [l1, l2] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
        chart::render(f, l1, train);
        let mut acc = Panel::new(" meta-train accuracy ");
        acc.percent = true;
        acc.curves.push(Curve::of("", &a.train_acc, color));
        chart::render(f, l2, acc);
    } else {
        chart::render(f, left, train);
    }
    chart::render(f, right, eval_panel(a, color, app.task_accuracy));
    if show_tasks {
        task_panels(app, a, color, f, bottom);
    }
}

fn eval_panel(a: &ArmView, color: ratatui::style::Color, prefer_acc: bool) -> Panel<'static> {
    let use_acc = a.classification && prefer_acc && !a.eval_acc.mean.is_empty();
    let (series, what) = if use_acc {
        (&a.eval_acc, "accuracy")
    } else {
        (&a.eval_loss, if a.classification { "loss" } else { "MSE" })
    };
    let mut p = Panel::new(format!(" eval {what}: mean ± 95% CI · {} ", eval_text(a)));
    p.percent = use_acc;
    p.empty_text = "no evaluation yet";
    p.curves.push(Curve::of("", &series.lo, CI_BOUND));
    p.curves.push(Curve::of("", &series.hi, CI_BOUND));
    p.curves.push(Curve::of("", &series.mean, color));
    p
}

/// The 95% band's edges: grey, so the arm-coloured mean stays the line you read.
const CI_BOUND: ratatui::style::Color = ratatui::style::Color::DarkGray;

fn task_panels(app: &App, a: &ArmView, color: ratatui::style::Color, f: &mut Frame, area: Rect) {
    let fit = (area.width / 28).max(1) as usize;
    let n = a.tasks.len().min(fit);
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(area);
    let use_acc = a.classification && app.task_accuracy;
    for (t, (ts, r)) in a.tasks.iter().zip(areas.iter()).enumerate() {
        let series = if use_acc { &ts.acc } else { &ts.loss };
        let what = if use_acc {
            "acc"
        } else if a.classification {
            "loss"
        } else {
            "MSE"
        };
        let last = series.last().map_or(String::new(), |(_, v)| {
            if use_acc {
                format!("{:.1}%", 100.0 * v)
            } else {
                theme::num(v)
            }
        });
        let mut p = Panel::new(format!(" task {t} {what} {last} "));
        p.percent = use_acc;
        p.empty_text = "no evaluation yet";
        p.curves.push(Curve::of("", series, color));
        chart::render(f, *r, p);
    }
}
