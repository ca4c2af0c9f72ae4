//! The task-affinity screen: the selected arm's affinity matrix at its latest evaluation as a
//! heatmap, rows and columns in the leaf order of an average-linkage clustering on
//! `1 − affinity` (`export::task_figures::Heatmap`, as in the exported PNG), each row named by
//! its task and group, with the colour scale and whether the clustering's cut is the family's
//! groups. `m` switches between the gradient cosine and the lookahead affinity.
//!
//! Cells wide enough hold the value (scaled to one digit before the point, the factor in the
//! header) on its colour, so a plain-text capture reads the same as the colours; narrow ones
//! hold a shade whose density is the value's size.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::export::task_figures::{short, Heatmap};
use crate::palette::{self, Rgb};
use crate::tui::app::App;
use crate::tui::session::{ArmView, Session};

use super::{task_pane, theme};

/// Widest cell: a space and a four-character value.
const CELL: usize = 5;

fn color(c: Rgb) -> Color {
    Color::Rgb(c.0, c.1, c.2)
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let hint = "Nothing to show yet: launch an experiment or open a run (in Runs, H opens a run's task affinities).";
    let Some((s, arm, arm_colour, inner)) =
        task_pane::arm_pane(app, f, area, " Task affinity ", hint)
    else {
        return;
    };
    let Some(r) = arm.affinity.as_ref().filter(|r| !r.cosine.is_empty()) else {
        return f.render_widget(
            Paragraph::new(empty_state(s, arm, arm_colour)).wrap(Wrap { trim: true }),
            inner,
        );
    };
    let map = Heatmap::build(r, app.task_views.measure, &arm.group_names);
    let lines = lines(
        arm,
        arm_colour,
        &map,
        inner.width as usize,
        inner.height as usize,
    );
    f.render_widget(Paragraph::new(lines), inner);
}

fn empty_state(s: &Session, arm: &ArmView, colour: Color) -> Vec<Line<'static>> {
    let why = if arm.seeds.len() > 1 {
        " stands for several seeds, and affinities are not averaged over seeds: open one seed's run (in Runs, → lists them, H opens one)."
    } else {
        " has no task affinities yet: runs whose experiment sets `train.affinity` (on a family with named, fixed training tasks, or a multi-task arm) record them at each evaluation."
    };
    task_pane::empty_state(s, arm, colour, why.to_string(), |a| a.affinity.is_some())
}

/// The power of ten that brings the scale's end to one digit before the point.
fn exponent(scale: f64) -> i32 {
    if scale > 0.0 && scale.is_finite() {
        -(scale.log10().floor() as i32)
    } else {
        0
    }
}

/// Everything drawn, line by line, to fit `width` × `height`.
fn lines(
    arm: &ArmView,
    arm_colour: Color,
    m: &Heatmap,
    width: usize,
    height: usize,
) -> Vec<Line<'static>> {
    let n = m.order.len();
    let labels: Vec<String> = (0..n).map(|k| m.label(k)).collect();
    let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 1;
    let cell = (width.saturating_sub(label_w) / n.max(1)).clamp(1, CELL);
    let numbers = cell == CELL;
    let k = exponent(m.scale);
    let factor = 10f64.powi(k);
    let mut out = vec![head_line(
        arm,
        arm_colour,
        m,
        (numbers && k != 0).then_some(k),
        width,
    )];
    let about = format!(
        "cell (i, j): {} · ordered by average-linkage clustering on 1 − affinity",
        m.measure.describe()
    );
    out.push(Line::styled(fit(&about, width), theme::dim()));
    // Column ids, where there is room.
    let mut ids = vec![Span::raw(" ".repeat(label_w))];
    if cell >= 3 {
        for &t in &m.order {
            let id = format!("t{t}");
            ids.push(Span::styled(format!("{id:>cell$}"), theme::dim()));
        }
    }
    out.push(Line::from(ids));
    let groups = distinct(&m.groups);
    let rows_left = height.saturating_sub(out.len() + 2);
    let shown = if n > rows_left {
        rows_left.saturating_sub(1)
    } else {
        n
    };
    for (r, label) in labels.iter().enumerate().take(shown) {
        let g = m.groups[r]
            .as_ref()
            .and_then(|g| groups.iter().position(|x| x == g));
        let label_style = g.map_or(theme::dim(), |g| {
            Style::default().fg(color(palette::arm(g)))
        });
        let mut spans = vec![Span::styled(format!("{label:<label_w$}"), label_style)];
        for v in &m.values[r] {
            spans.push(cell_span(m, *v, cell, numbers, factor));
        }
        out.push(Line::from(spans));
    }
    if shown < n {
        out.push(Line::styled(
            format!("… {} more rows: a taller terminal shows them", n - shown),
            theme::dim(),
        ));
    }
    out.push(scale_line(m, width));
    let cut = match m.matches_groups {
        Some(true) => format!(
            "cut at {} clusters: exactly the {} task groups",
            m.cluster_count(),
            groups.len()
        ),
        Some(false) => format!(
            "cut at {} clusters: not the {} task groups",
            m.cluster_count(),
            groups.len()
        ),
        None => "the family names no task groups".to_string(),
    };
    out.push(Line::styled(fit(&cut, width), theme::dim()));
    out
}

/// The arm, the measure, the size, the evaluation, the values' factor (`10^k` where cells
/// print scaled values) and the other measure's key; parts left out whole as the width shrinks.
fn head_line(
    arm: &ArmView,
    arm_colour: Color,
    m: &Heatmap,
    scaled: Option<i32>,
    width: usize,
) -> Line<'static> {
    let mut head = vec![
        Span::styled(
            format!("● {}", arm.name),
            Style::default().fg(arm_colour).add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!(" · {}", m.measure.name()), theme::title()),
    ];
    let mut used: usize = head.iter().map(|s| s.content.chars().count()).sum();
    let mut extra = vec![format!(" · {} tasks · @{}", m.order.len(), m.iteration)];
    if let Some(k) = scaled {
        extra.push(format!(" · values ×{}", 10f64.powi(k)));
    }
    extra.push(format!(" · m: {}", m.measure.next().name()));
    for p in extra {
        let c = p.chars().count();
        if used + c <= width {
            used += c;
            head.push(Span::raw(p));
        }
    }
    Line::from(head)
}

fn distinct(groups: &[Option<String>]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for g in groups.iter().flatten() {
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    out
}

/// One cell: the value on its colour, or a shade of it; `·` where nothing was measured.
fn cell_span(
    m: &Heatmap,
    v: Option<f64>,
    cell: usize,
    numbers: bool,
    factor: f64,
) -> Span<'static> {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return Span::styled(format!("{:>cell$}", "·"), theme::dim());
    };
    let bg = m.colour(v);
    if numbers {
        let text = format!("{:+.1}", v * factor);
        let text: String = text.chars().take(cell - 1).collect();
        Span::styled(
            format!("{text:>cell$}"),
            Style::default()
                .bg(color(bg))
                .fg(color(palette::ink_on(bg))),
        )
    } else {
        let a = (v.abs() / m.scale).min(1.0);
        let glyph = match a {
            a if a < 0.25 => '░',
            a if a < 0.5 => '▒',
            a if a < 0.75 => '▓',
            _ => '█',
        };
        Span::styled(
            glyph.to_string().repeat(cell),
            Style::default().fg(color(bg)),
        )
    }
}

/// The colour scale from −scale to +scale in swatches.
fn scale_line(m: &Heatmap, width: usize) -> Line<'static> {
    let lo = short(-m.scale);
    let hi = format!("+{}", short(m.scale));
    let swatches = 21usize.min(width.saturating_sub(lo.len() + hi.len() + 22));
    let mut spans = vec![Span::raw(format!("{lo} "))];
    for i in 0..swatches {
        let t = -1.0 + 2.0 * i as f64 / (swatches.max(2) - 1) as f64;
        spans.push(Span::styled(
            "█",
            Style::default().fg(color(palette::diverging(t))),
        ));
    }
    spans.push(Span::raw(format!(" {hi}")));
    spans.push(Span::styled("  · not measured", theme::dim()));
    Line::from(spans)
}

/// `s` cut at a word to `width` columns, `…` marking the cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for w in s.split(' ') {
        if out.chars().count() + w.chars().count() + 2 > width {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out.push('…');
    out
}
