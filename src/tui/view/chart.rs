//! One helper for every curve panel: braille line charts with bounds fitted to the data.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition, Paragraph,
};
use ratatui::Frame;

use crate::tui::series::{fold_range, Series};

use super::theme;

pub struct Curve {
    /// Shown in the legend; empty for helper lines such as CI bounds.
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Color,
}

impl Curve {
    pub fn of(name: impl Into<String>, s: &Series, color: Color) -> Curve {
        Curve {
            name: name.into(),
            points: s.points(),
            color,
        }
    }
}

pub struct Panel<'a> {
    pub title: String,
    pub curves: Vec<Curve>,
    /// Y values are fractions shown as percentages (accuracy).
    pub percent: bool,
    pub legend: bool,
    pub highlight: bool,
    pub empty_text: &'a str,
}

impl<'a> Panel<'a> {
    pub fn new(title: impl Into<String>) -> Panel<'a> {
        Panel {
            title: title.into(),
            curves: Vec::new(),
            percent: false,
            legend: false,
            highlight: false,
            empty_text: "waiting for data…",
        }
    }
}

fn y_label(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.0}%", 100.0 * v)
    } else {
        theme::num(v)
    }
}

pub fn render(f: &mut Frame, area: Rect, p: Panel) {
    let border = if p.highlight {
        Style::default().fg(Color::White)
    } else {
        theme::dim()
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(p.title.clone(), theme::title()));
    let xs = fold_range(p.curves.iter().flat_map(|c| c.points.iter().map(|q| q.0)));
    let ys = fold_range(p.curves.iter().flat_map(|c| c.points.iter().map(|q| q.1)));
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        let inner = block.inner(area);
        f.render_widget(block, area);
        if inner.height > 0 {
            let msg = Paragraph::new(p.empty_text)
                .style(theme::dim())
                .alignment(Alignment::Center);
            f.render_widget(
                msg,
                Rect {
                    y: inner.y + inner.height / 2,
                    height: 1,
                    ..inner
                },
            );
        }
        return;
    };
    // A flat or single-point curve still needs a non-empty range to be drawn.
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let pad = if y1 > y0 {
        0.05 * (y1 - y0)
    } else {
        0.5 * y0.abs().max(1e-3)
    };
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (y0, y1) = if p.percent {
        (y0.max(0.0), y1.min(1.0))
    } else {
        (y0, y1)
    };
    let datasets: Vec<Dataset> = p
        .curves
        .iter()
        .map(|c| {
            let d = Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(c.color))
                .data(&c.points);
            if c.name.is_empty() {
                d
            } else {
                d.name(c.name.clone())
            }
        })
        .collect();
    let x_labels = vec![
        Span::raw(format!("{x0:.0}")),
        Span::raw(format!("{:.0}", (x0 + x1) / 2.0)),
        Span::raw(format!("{x1:.0}")),
    ];
    let y_labels = vec![
        Span::raw(y_label(y0, p.percent)),
        Span::raw(y_label((y0 + y1) / 2.0, p.percent)),
        Span::raw(y_label(y1, p.percent)),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(x_labels)
                .style(theme::dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(y_labels)
                .style(theme::dim()),
        )
        .legend_position(p.legend.then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Percentage(60),
            ratatui::layout::Constraint::Percentage(60),
        ));
    f.render_widget(chart, area);
}
