//! The experiments folder: one row per file, details (or the file's error) on the right.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::sweep::queue::Outcome;
use crate::tui::app::App;
use crate::tui::catalog::{EntryKind, ExpEntry};
use crate::tui::sweep_view::VariantState;

use super::{layout, theme};

/// Column widths of the list: the count at the right is never cut, the family goes first on a
/// narrow pane, and a name or family that does not fit ends in `…`.
struct Cols {
    name: usize,
    family: usize,
    count: usize,
}

fn count_text(e: &ExpEntry) -> String {
    let (n, one) = match e.kind {
        _ if !e.is_valid() => return "invalid".into(),
        EntryKind::Sweep => (e.arms.len(), "variant"),
        EntryKind::Experiment => (e.arms.len(), "arm"),
    };
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

fn cols(entries: &[ExpEntry], inner: usize) -> Cols {
    let longest = |f: &dyn Fn(&ExpEntry) -> usize| entries.iter().map(f).max().unwrap_or(0);
    let count = longest(&|e| count_text(e).chars().count()).max(6);
    // Mark (3 columns), the name, a space, the family, a space, the count.
    let room = inner.saturating_sub(3 + 1 + count);
    let name_want = longest(&|e| e.name.chars().count()).max(4);
    let family_want = longest(&|e| e.family.chars().count());
    if room >= name_want + 1 + family_want {
        return Cols {
            name: name_want,
            family: family_want,
            count,
        };
    }
    if room >= 30 {
        let name = name_want
            .min(room * 11 / 20)
            .max(room.saturating_sub(family_want + 1));
        return Cols {
            name,
            family: room - name - 1,
            count,
        };
    }
    Cols {
        name: room,
        family: 0,
        count,
    }
}

/// `s` in exactly `w` columns: padded, or cut in the middle with `…` (names that share a
/// start, like `omniglot-metric-vs-gradient-5shot` and `-20way`, differ at their end).
fn fit(s: &str, w: usize) -> String {
    let s = super::runs::elide_middle(s, w);
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let [list, detail] = layout::experiments(area);
    let height = list.height.saturating_sub(2) as usize;
    let off = layout::scroll_offset(app.exp_sel, app.experiments.len(), height);
    let c = cols(&app.experiments, list.width.saturating_sub(2) as usize);
    let rows: Vec<Line> = app
        .experiments
        .iter()
        .enumerate()
        .skip(off)
        .take(height)
        .map(|(i, e)| {
            // The mark is the one column never cut: it says "not known yet" while data is checked.
            let (mark, style) = if !e.is_valid() {
                ("✗", theme::error())
            } else if e.checking_data {
                ("…", theme::dim())
            } else {
                ("✓", theme::ok())
            };
            let mut spans = vec![
                Span::styled(format!(" {mark} "), style),
                Span::raw(format!("{} ", fit(&e.name, c.name))),
            ];
            if c.family > 0 {
                // A family reads from its start ("omniglot 20-way …"); the details have it whole.
                let family = super::runs::elide_end(&e.family, c.family);
                spans.push(Span::styled(
                    format!("{family:<w$} ", w = c.family),
                    theme::dim(),
                ));
            }
            spans.push(Span::raw(format!("{:>w$}", count_text(e), w = c.count)));
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
            if e.kind == EntryKind::Sweep {
                sweep_lines(app, e, &mut lines);
            } else {
                lines.push(Line::from(Span::styled("arms", theme::dim())));
                // Coloured as they will be in the Monitor and Compare: by the arm's name.
                let names: Vec<&str> = e
                    .arms
                    .iter()
                    .map(|a| a.split_once(" (").map_or(a.as_str(), |(n, _)| n))
                    .collect();
                for (a, color) in e.arms.iter().zip(theme::colors_for(&names)) {
                    lines.push(Line::from(Span::styled(
                        format!("  ● {a}"),
                        Style::default().fg(color),
                    )));
                }
                lines.push(Line::raw(""));
                lines.push(Line::from(Span::styled(
                    "r launch · Enter edit · d duplicate · n new",
                    theme::dim(),
                )));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// A sweep's variants, with how each stands when this sweep is the one running (or last run).
fn sweep_lines(app: &App, e: &ExpEntry, lines: &mut Vec<Line<'static>>) {
    let view = app.sweep.as_ref().filter(|s| s.path == e.path);
    let title = match view {
        Some(v) if v.running() => {
            let (ended, all) = v.progress();
            format!("variants — running on the local queue, {ended}/{all} done")
        }
        Some(_) => "variants — last run from here:".to_string(),
        None => "variants".to_string(),
    };
    lines.push(Line::from(Span::styled(title, theme::dim())));
    for (i, label) in e.arms.iter().enumerate() {
        let state = view.and_then(|v| v.variants.get(i));
        let (mark, style, detail) = match state.map(|v| &v.state) {
            None | Some(VariantState::Waiting) => ("·", theme::dim(), String::new()),
            Some(VariantState::AlreadyFinished) => ("✓", theme::ok(), "finished before".into()),
            Some(VariantState::Running) => {
                let arms: Vec<String> = state
                    .map(|v| &v.arms)
                    .into_iter()
                    .flatten()
                    .map(|(a, it, total)| format!("{a} {it}/{total}"))
                    .collect();
                ("▶", theme::ok(), arms.join("  "))
            }
            Some(VariantState::Ended(o)) => match o {
                Outcome::Finished => ("✓", theme::ok(), "finished".into()),
                Outcome::Stopped | Outcome::Interrupted => {
                    ("■", Style::default(), "stopped (r resumes)".into())
                }
                Outcome::Busy => ("…", theme::dim(), "running in another process".into()),
                Outcome::Failed(why) => ("✗", theme::error(), format!("failed: {why}")),
            },
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {mark} "), style),
            Span::raw(format!("{label:<12} ")),
            Span::styled(detail, theme::dim()),
        ]));
    }
    if let Some(done) = view.and_then(|v| v.done.as_ref()) {
        lines.push(Line::from(Span::styled(done.clone(), theme::dim())));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(
        "r run the variants (finished ones are kept, stopped ones resume) · Enter edit · 2 Runs shows them by seed",
        theme::dim(),
    )));
}
