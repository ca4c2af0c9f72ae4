//! The task-embedding screen: the selected arm's validation tasks' adapted embeddings (CAVIA's
//! context) at its latest evaluation, on their first two principal components, coloured by a
//! task property (`p` cycles) with its key beside, and the variance the two components explain.
//! The projection and colours are `export::task_figures::Scatter`'s, as in the exported PNG.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use crate::export::task_figures::{short, ColourKey, Scatter};
use crate::tui::app::App;
use crate::tui::session::{ArmView, Session};

use super::{task_pane, theme};

/// Colour classes a continuous parameter is cut into on a terminal (one style each).
const BINS: usize = 6;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let hint = "Nothing to show yet: launch an experiment or open a run (in Runs, T opens a run's task embedding).";
    let Some((s, arm, colour, inner)) = task_pane::arm_pane(app, f, area, " Task embedding ", hint)
    else {
        return;
    };
    let Some(r) = arm.embeddings.as_ref().filter(|r| !r.tasks.is_empty()) else {
        return f.render_widget(
            Paragraph::new(empty_state(s, arm, colour)).wrap(Wrap { trim: true }),
            inner,
        );
    };
    let kinds = r.colourings();
    let scatter = match kinds.get(app.task_views.colour % kinds.len().max(1)) {
        Some(&c) => Scatter::build(r, c),
        // Nothing known of the tasks: one colour.
        None => Scatter::build(r, crate::runs::embeddings::Colouring::Property(0)),
    };
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(4)]).areas(inner);
    f.render_widget(
        Paragraph::new(header(arm, colour, &scatter, kinds.len(), head.width)),
        head,
    );
    let key_width = if body.width >= 70 { 20 } else { 16 };
    let [plot, key] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(key_width)]).areas(body);
    let classes = scatter.classes(BINS);
    chart(f, plot, &scatter, &classes);
    f.render_widget(Paragraph::new(key_lines(&scatter, &classes)), key);
}

/// Why there is nothing to draw for `arm`, and where there is.
fn empty_state(s: &Session, arm: &ArmView, colour: Color) -> Vec<Line<'static>> {
    let why = if arm.seeds.len() > 1 {
        format!(
            " stands for {} seeds, and embeddings are not averaged over seeds: open one seed's run (in Runs, → lists them, T opens one).",
            arm.seeds.len()
        )
    } else if arm.algorithm.starts_with("CAVIA") {
        ": no evaluation yet. The validation tasks' adapted contexts are recorded at each evaluation.".to_string()
    } else {
        format!(
            " ({}) records no task embedding: only arms that adapt one (CAVIA's context) do, at each evaluation.",
            arm.algorithm
        )
    };
    task_pane::empty_state(s, arm, colour, why, |a| a.embeddings.is_some())
}

/// Two lines: the arm, the evaluation and the tasks; the variance explained and the colouring.
/// Parts are left out from the end as the width shrinks, never cut.
fn header(
    arm: &ArmView,
    colour: Color,
    sc: &Scatter,
    colourings: usize,
    width: u16,
) -> Vec<Line<'static>> {
    let w = width as usize;
    let name = format!("● {}", arm.name);
    let parts = [
        format!(" · @{}", sc.iteration),
        format!(" · {} validation tasks", sc.tasks),
        format!(
            " · {}-value embedding after {} step{}",
            sc.width,
            sc.steps,
            if sc.steps == 1 { "" } else { "s" }
        ),
    ];
    let mut first = vec![Span::styled(
        name.clone(),
        Style::default().fg(colour).add_modifier(Modifier::BOLD),
    )];
    let mut used = name.chars().count();
    for p in parts {
        let n = p.chars().count();
        if used + n > w {
            break;
        }
        used += n;
        first.push(Span::raw(p));
    }
    let pcs = format!(
        "PC1 {:.1} % · PC2 {:.1} % of the variance",
        100.0 * sc.explained[0],
        100.0 * sc.explained[1]
    );
    let col = if colourings > 1 {
        format!(" · colour: {} (p: next)", sc.colour_name)
    } else {
        format!(" · colour: {}", sc.colour_name)
    };
    let mut second = vec![Span::styled(pcs.clone(), theme::title())];
    if pcs.chars().count() + col.chars().count() <= w {
        second.push(Span::raw(col));
    }
    vec![Line::from(first), Line::from(second)]
}

fn bounds(v: impl Iterator<Item = f64>) -> [f64; 2] {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return [-1.0, 1.0];
    }
    let pad = ((hi - lo) * 0.06).max(1e-6);
    [lo - pad, hi + pad]
}

fn chart(
    f: &mut Frame,
    area: Rect,
    sc: &Scatter,
    classes: &[crate::export::task_figures::PointClass],
) {
    let xb = bounds(sc.points.iter().map(|p| p.0));
    let yb = bounds(sc.points.iter().map(|p| p.1));
    let datasets: Vec<Dataset> = classes
        .iter()
        .map(|(_, c, pts)| {
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::default().fg(Color::Rgb(c.0, c.1, c.2)))
                .data(pts)
        })
        .collect();
    let labels = |b: [f64; 2]| vec![short(b[0]), short((b[0] + b[1]) / 2.0), short(b[1])];
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(Span::styled("PC1", theme::dim()))
                .bounds(xb)
                .labels(labels(xb))
                .style(theme::dim()),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled("PC2", theme::dim()))
                .bounds(yb)
                .labels(labels(yb))
                .style(theme::dim()),
        );
    f.render_widget(chart, area);
}

/// The colour key: the property's name, then each class with its range (or group) and count.
fn key_lines(
    sc: &Scatter,
    classes: &[crate::export::task_figures::PointClass],
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(sc.colour_name.to_string(), theme::title())];
    if let ColourKey::Scale { lo, hi } = sc.key {
        let spread = hi > lo;
        if !spread && lo.is_finite() {
            lines.push(Line::styled(format!("all {}", short(lo)), theme::dim()));
        }
    }
    // Highest values on top, as on the exported colour bar.
    let ordered: Vec<_> = match sc.key {
        ColourKey::Scale { .. } => classes.iter().rev().collect(),
        ColourKey::Groups(_) => classes.iter().collect(),
    };
    for (label, c, pts) in ordered {
        lines.push(Line::from(vec![
            Span::styled("● ", Style::default().fg(Color::Rgb(c.0, c.1, c.2))),
            Span::raw(format!("{label} ({})", pts.len())),
        ]));
    }
    lines
}
