//! The experiments folder: one row per file, details (or the file's error) on the right.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;

use super::{layout, theme};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let [list, detail] = layout::experiments(area);
    let height = list.height.saturating_sub(2) as usize;
    let off = layout::scroll_offset(app.exp_sel, app.experiments.len(), height);
    let rows: Vec<Line> = app
        .experiments
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, e)| {
            let (mark, style) = if e.is_valid() {
                ("✓", theme::ok())
            } else {
                ("✗", theme::error())
            };
            let arms = if !e.is_valid() {
                "invalid".into()
            } else if e.checking_data {
                "checking data…".into()
            } else {
                format!(
                    "{} arm{}",
                    e.arms.len(),
                    if e.arms.len() == 1 { "" } else { "s" }
                )
            };
            let mut spans = vec![
                Span::styled(format!(" {mark} "), style),
                Span::raw(format!("{:<18} ", e.name)),
            ];
            // Narrow terminals drop the family column before the arms count.
            if list.width >= 54 {
                spans.push(Span::styled(format!("{:<20} ", e.family), theme::dim()));
            }
            spans.push(Span::raw(arms));
            let line = Line::from(spans);
            if i == app.exp_sel {
                line.style(theme::selected())
            } else {
                line
            }
        })
        .collect();
    let title = format!(" experiments/ ({}) ", app.experiments.len());
    let mut p = Paragraph::new(rows).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme::title())),
    );
    if app.experiments.is_empty() {
        let text = if app.catalog_loaded {
            "No experiment files yet.\nPress n to create one from a template."
        } else {
            "Reading experiments/…"
        };
        p = Paragraph::new(text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" experiments/ "),
        );
    }
    f.render_widget(p, list);
    render_detail(app, f, detail);
}

fn render_detail(app: &App, f: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" details ", theme::title()));
    let Some(e) = app.experiments.get(app.exp_sel) else {
        return f.render_widget(block, area);
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled("file    ", theme::dim()),
            Span::raw(e.file_name.clone()),
        ]),
        Line::from(vec![
            Span::styled("name    ", theme::dim()),
            Span::raw(e.name.clone()),
        ]),
    ];
    match &e.error {
        Some(err) => {
            lines.push(Line::from(Span::styled(
                "invalid — Enter opens it at the error:",
                theme::error(),
            )));
            lines.extend(
                err.lines()
                    .map(|l| Line::from(Span::styled(l.to_string(), theme::error()))),
            );
        }
        None => {
            lines.push(Line::from(vec![
                Span::styled("family  ", theme::dim()),
                Span::raw(e.family.clone()),
            ]));
            if e.checking_data {
                lines.push(Line::from(vec![
                    Span::styled("data    ", theme::dim()),
                    Span::raw("checking the data folder…"),
                ]));
            }
            if !e.description.is_empty() {
                lines.push(Line::from(vec![
                    Span::styled("about   ", theme::dim()),
                    Span::raw(e.description.clone()),
                ]));
            }
            lines.push(Line::from(Span::styled("arms", theme::dim())));
            for (i, a) in e.arms.iter().enumerate() {
                lines.push(Line::from(Span::styled(
                    format!("  ● {a}"),
                    Style::default().fg(theme::arm_color(i)),
                )));
            }
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(
                "r launch · Enter edit · d duplicate · n new",
                theme::dim(),
            )));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
