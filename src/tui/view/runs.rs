//! Every saved run under `runs/`, newest first.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::runs::RunStatus;
use crate::tui::app::App;

use super::{layout, theme};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let [table, detail] = layout::runs(area);
    let height = table.height.saturating_sub(3) as usize;
    let off = layout::scroll_offset(app.run_sel, app.runs.len(), height);
    let rows: Vec<Row> = app
        .runs
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, r)| {
            let mark = if app.marked.contains(&r.id) {
                "■"
            } else {
                " "
            };
            let status_style = match r.status {
                RunStatus::Failed(_) => theme::error(),
                RunStatus::Running => theme::ok(),
                _ => Default::default(),
            };
            let row = Row::new(vec![
                Line::raw(mark),
                Line::styled(r.status.label(), status_style),
                Line::raw(theme::date(r.started_unix)),
                // A sweep's runs show as one group: the sweep and the variant's index.
                Line::raw(
                    match r.variant.as_deref().and_then(crate::tui::backend::sweep_of) {
                        Some((sweep, i)) => format!("{sweep}#{i}"),
                        None => r.experiment.clone(),
                    },
                ),
                Line::raw(r.arm.clone()),
                Line::raw(r.algorithm.clone()),
                Line::raw(format!("{}/{}", r.iteration, r.total_iterations)),
                Line::raw(match (&r.headline, &r.group) {
                    (Some(h), Some(g)) => format!("{h} │ {g}"),
                    (h, _) => h.clone().unwrap_or_else(|| "–".into()),
                }),
            ]);
            if i == app.run_sel {
                row.style(theme::selected())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Length(11),
        Constraint::Length(16),
        Constraint::Length(18),
        Constraint::Length(12),
        Constraint::Length(16),
        Constraint::Length(13),
        Constraint::Min(10),
    ];
    let header = Row::new([
        "",
        "status",
        "started (UTC)",
        "experiment",
        "arm",
        "algorithm",
        "progress",
        "result",
    ])
    .style(theme::title());
    let title = format!(" runs/ ({}, {} marked) ", app.runs.len(), app.marked.len());
    let t = Table::new(rows, widths).header(header).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme::title())),
    );
    f.render_widget(t, table);

    let block = Block::default().borders(Borders::ALL).title(" run ");
    let text = match app.runs.get(app.run_sel) {
        None => vec![Line::raw(
            "No saved runs yet: launch an experiment from the Experiments pane.",
        )],
        Some(r) => {
            let mut v = vec![Line::from(vec![
                Span::styled("dir  ", theme::dim()),
                Span::raw(r.dir.display().to_string()),
            ])];
            if let Some(variant) = &r.variant {
                v.push(Line::from(vec![
                    Span::styled("sweep  ", theme::dim()),
                    Span::raw(format!(
                        "variant {variant} of {}{}",
                        r.experiment,
                        r.group
                            .as_ref()
                            .map(|g| format!(" · over seeds of this config: {g} (95% t-interval)"))
                            .unwrap_or_default()
                    )),
                ]));
            }
            if let RunStatus::Failed(reason) = &r.status {
                v.push(Line::styled(format!("failed: {reason}"), theme::error()));
            }
            v.push(Line::styled(
                "Enter open · Space mark · c compare · r rerun · R resume · x export CSV+SVG · d delete",
                theme::dim(),
            ));
            v
        }
    };
    f.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
        detail,
    );
}
