//! The experiment editor: the buffer, its error line highlighted, and the validation result.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::editor::Validation;

use super::theme;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(ed) = app.editor.as_ref() else {
        return;
    };
    let [text_area, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(area);
    let modified = if ed.modified() { " [modified]" } else { "" };
    let title = format!(
        " {}{modified} — Ctrl-S save · F4 go to error · F5 save+launch · Esc back ",
        ed.file_name()
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme::title()));
    let inner = block.inner(text_area);
    f.render_widget(block, text_area);
    f.render_widget(&ed.area, inner);
    if let Some((line, _)) = ed.error_position() {
        highlight_line(f.buffer_mut(), inner, line, ed.area.lines().len());
    }

    let (style, text) = match &ed.validation {
        None => (theme::dim(), "not validated yet".to_string()),
        Some(Validation::Valid { summary }) => (theme::ok(), format!("✓ {summary}")),
        Some(Validation::Invalid { message, position }) => {
            let at = position.map_or(String::new(), |(l, c)| format!("✗ line {l}, column {c}\n"));
            (theme::error(), format!("{at}{message}"))
        }
    };
    let pending = if ed.edited_at.is_some() {
        " (checking…)"
    } else {
        ""
    };
    let lines: Vec<Line> = text
        .lines()
        .map(|l| Line::styled(l.to_string(), style))
        .collect();
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" validation{pending} ")),
    );
    f.render_widget(p, status);
}

/// The textarea scrolls itself and keeps its offset private, so find the error line by the
/// line number it drew in the gutter.
fn highlight_line(buf: &mut Buffer, area: Rect, line: usize, total: usize) {
    let gutter = total.max(1).to_string().len() as u16 + 2;
    for y in area.top()..area.bottom() {
        let digits: String = (area.x..(area.x + gutter).min(area.right()))
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if digits.trim().parse::<usize>().ok() == Some(line) {
            for x in area.x..area.right() {
                let cell = &mut buf[(x, y)];
                cell.set_bg(Color::Red);
            }
            let marker = &mut buf[(area.x, y)];
            marker
                .set_symbol("!")
                .set_style(Style::default().fg(Color::White).bg(Color::Red));
            return;
        }
    }
}
