//! Overlays: the key map, confirmations, and the reload conflict question.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::Modal;
use crate::tui::keymap;

use super::theme;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

fn help_lines(entries: &[(String, String)], key_width: usize) -> Vec<Line<'static>> {
    entries
        .iter()
        .map(|(k, d)| {
            if d.is_empty() {
                Line::styled(k.to_string(), theme::title())
            } else {
                Line::from(vec![
                    Span::styled(format!("{k:>key_width$}  "), theme::ok()),
                    Span::raw(d.to_string()),
                ])
            }
        })
        .collect()
}

fn render_box(f: &mut Frame, r: Rect, title: &str, lines: Vec<Line<'static>>) {
    f.render_widget(Clear, r);
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title.to_string(), theme::title())),
    );
    f.render_widget(p, r);
}

/// The key map in one column, or in two (split at a section) when the terminal is short.
fn render_help(f: &mut Frame, area: Rect) {
    let title = " keys — any key closes ";
    let help = keymap::help_rows();
    if help.len() as u16 + 2 <= area.height {
        let r = centered(area, 74, help.len() as u16 + 2);
        return render_box(f, r, title, help_lines(&help, 20));
    }
    let mid = help.len() / 2;
    let split = (mid..help.len())
        .find(|&i| help[i].0.is_empty())
        .unwrap_or(mid);
    let (a, b) = help.split_at(split);
    let b = &b[1..]; // drop the blank separator at the top of the second column
    let h = a.len().max(b.len()) as u16 + 2;
    let r = centered(area, area.width, h);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme::title()));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let [l, rr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    // No wrapping here: a wrapped line would push the last entries out of the box.
    f.render_widget(Paragraph::new(help_lines(a, 10)), l);
    f.render_widget(Paragraph::new(help_lines(b, 10)), rr);
}

pub fn render(m: &Modal, f: &mut Frame, area: Rect) {
    let (title, lines, w) = match m {
        Modal::Help => return render_help(f, area),
        Modal::Confirm { prompt, .. } => (
            " confirm ",
            vec![
                Line::raw(prompt.clone()),
                Line::raw(""),
                Line::styled("y / Enter: yes     n / Esc: no", theme::title()),
            ],
            60,
        ),
        Modal::Conflict { .. } => (
            " file changed on disk ",
            vec![
                Line::raw("The file changed on disk while you have unsaved edits."),
                Line::raw(""),
                Line::styled(
                    "r: reload the disk version (discard your edits)",
                    theme::title(),
                ),
                Line::styled(
                    "k / Esc: keep your edits (Ctrl-S then overwrites the disk)",
                    theme::title(),
                ),
            ],
            66,
        ),
    };
    let r = centered(area, w, lines.len() as u16 + 2 + 1);
    render_box(f, r, title, lines);
}
