//! Arms side by side: overlaid curves on shared axes, one small panel per arm, and a table of
//! final evaluations with the config fields that differ.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::tasks::Split;
use crate::tui::app::App;
use crate::tui::session::{ArmView, Session};

use super::chart::{self, Curve, Panel};
use super::theme;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(s) = app.session() else {
        let p = Paragraph::new("Nothing to compare: launch an experiment, or mark runs with Space in Runs and press c.")
            .block(Block::default().borders(Borders::ALL).title("Compare"));
        return f.render_widget(p, area);
    };
    let table_h = (s.arms.len() as u16 + 3).min(area.height / 3).max(4);
    let small = area.height >= 30;
    let [overlay, per_arm, table] = if small {
        Layout::vertical([
            Constraint::Min(8),
            Constraint::Length(8),
            Constraint::Length(table_h),
        ])
        .areas(area)
    } else {
        Layout::vertical([
            Constraint::Min(6),
            Constraint::Length(0),
            Constraint::Length(table_h),
        ])
        .areas(area)
    };
    overlays(app, s, f, overlay);
    if small {
        side_by_side(app, s, f, per_arm);
    }
    final_table(app, s, f, table);
}

fn use_accuracy(app: &App, s: &Session) -> bool {
    s.classification() && app.task_accuracy
}

fn overlays(app: &App, s: &Session, f: &mut Frame, area: Rect) {
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let metric = if s.classification() { "loss" } else { "MSE" };
    let mut train = Panel::new(format!(" meta-train {metric} · all arms "));
    train.legend = true;
    let acc = use_accuracy(app, s);
    let mut eval = Panel::new(format!(
        " eval {} mean · all arms ",
        if acc { "accuracy" } else { metric }
    ));
    eval.legend = true;
    eval.percent = acc;
    eval.empty_text = "no evaluation yet";
    for (i, a) in s.arms.iter().enumerate() {
        let c = theme::arm_color(i);
        train
            .curves
            .push(Curve::of(a.name.clone(), &a.train_loss, c));
        let series = if acc {
            &a.eval_acc.mean
        } else {
            &a.eval_loss.mean
        };
        eval.curves.push(Curve::of(a.name.clone(), series, c));
    }
    chart::render(f, l, train);
    chart::render(f, r, eval);
}

fn side_by_side(app: &App, s: &Session, f: &mut Frame, area: Rect) {
    let n = s.arms.len().clamp(1, (area.width / 20).max(1) as usize);
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(area);
    for (i, (a, r)) in s.arms.iter().zip(areas.iter()).enumerate() {
        let mut p = Panel::new(format!(" {} ", a.name));
        p.highlight = i == app.arm_sel;
        p.curves
            .push(Curve::of("", &a.train_loss, theme::arm_color(i)));
        chart::render(f, *r, p);
    }
}

fn eval_cells(a: &ArmView) -> (String, String) {
    match a.headline_eval() {
        None => ("–".into(), "–".into()),
        Some(e) => (
            format!(
                "{} ({})",
                theme::mean_ci(&e.loss),
                if e.split == Split::Test {
                    "test"
                } else {
                    "val"
                }
            ),
            e.accuracy.as_ref().map_or("–".into(), theme::pct_ci),
        ),
    }
}

fn final_table(app: &App, s: &Session, f: &mut Frame, area: Rect) {
    let metric = if s.classification() { "loss" } else { "MSE" };
    let metric_col = format!("{metric} ± 95% CI");
    let header = Row::new([
        "arm",
        "algorithm",
        "iter",
        metric_col.as_str(),
        "accuracy",
        "differs",
    ])
    .style(theme::title());
    let rows: Vec<Row> = s
        .arms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (loss, acc) = eval_cells(a);
            let differs = s
                .diff
                .iter()
                // The algorithm has its own column; a parameter another algorithm lacks is noise.
                .filter(|(k, v)| !k.ends_with("algorithm") && v.get(i).is_some_and(|x| x != "–"))
                .map(|(k, v)| format!("{}={}", short_key(k), v[i]))
                .collect::<Vec<_>>()
                .join(" ");
            let style = if i == app.arm_sel {
                theme::selected()
            } else {
                Style::default()
            };
            Row::new(vec![
                Cell::from(Span::styled(
                    format!("● {}", a.name),
                    Style::default().fg(theme::arm_color(i)),
                )),
                Cell::from(a.algorithm.clone()),
                Cell::from(a.iteration.to_string()),
                Cell::from(loss),
                Cell::from(acc),
                Cell::from(differs),
            ])
            .style(style)
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Length(17),
        Constraint::Length(7),
        Constraint::Length(24),
        Constraint::Length(14),
        Constraint::Min(10),
    ];
    let t = Table::new(rows, widths).header(header).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" final evaluation ", theme::title())),
    );
    f.render_widget(t, area);
}

/// `train.meta_lr` → `meta_lr`; `arm.algorithm.Reptile.epsilon` → `epsilon`.
fn short_key(k: &str) -> String {
    let parts: Vec<&str> = k.split('.').collect();
    match parts.as_slice() {
        [.., last] => last.to_string(),
        [] => k.to_string(),
    }
}
