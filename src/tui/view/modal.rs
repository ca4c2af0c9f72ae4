//! Overlays: the key map, confirmations, and the reload conflict question.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::Modal;
use crate::tui::keys::HELP;

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

pub fn render(m: &Modal, f: &mut Frame, area: Rect) {
    let (title, lines, w) = match m {
        Modal::Help => {
            let lines = HELP
                .iter()
                .map(|(k, d)| {
                    if d.is_empty() {
                        Line::styled(k.to_string(), theme::title())
                    } else {
                        Line::from(vec![
                            Span::styled(format!("{k:>20}  "), theme::ok()),
                            Span::raw(d.to_string()),
                        ])
                    }
                })
                .collect();
            (" keys — any key closes ", lines, 74)
        }
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
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme::title())),
    );
    f.render_widget(p, r);
}
