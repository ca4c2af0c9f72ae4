//! `render(&App, &mut Frame)`: a pure function of the state, one file per panel.

pub mod adaptation;
pub mod affinity;
pub mod chart;
pub mod class_fit;
pub mod compare;
pub mod editor;
pub mod embedding;
pub mod experiments;
pub mod layout;
pub mod modal;
pub mod monitor;
pub mod runs;
pub mod tabs;
mod task_pane;
pub mod theme;
pub mod ticks;

use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::app::{App, Level, Screen};
use super::keymap;

pub fn render(app: &App, f: &mut Frame) {
    let status = app
        .status
        .as_ref()
        .map(|(msg, level)| (layout::status_rows(msg, f.area().width as usize), *level));
    let fr = layout::frame(
        f.area(),
        status.as_ref().map_or(1, |(rows, _)| rows.len() as u16),
    );
    tabs::render(app, f, fr.tabs);
    match app.screen {
        Screen::Experiments => experiments::render(app, f, fr.body),
        Screen::Runs => runs::render(app, f, fr.body),
        Screen::Monitor => monitor::render(app, f, fr.body),
        Screen::Compare => compare::render(app, f, fr.body),
        Screen::Editor => editor::render(app, f, fr.body),
        Screen::Adaptation => adaptation::render(app, f, fr.body),
        Screen::Embedding => embedding::render(app, f, fr.body),
        Screen::Affinity => affinity::render(app, f, fr.body),
    }
    if let Some((rows, level)) = status {
        let style = if level == Level::Error {
            theme::error()
        } else {
            theme::ok()
        };
        // Wrapped, not cut: an error's `fix:` line is what the user acts on.
        let lines: Vec<Line> = rows.into_iter().map(|r| Line::styled(r, style)).collect();
        f.render_widget(ratatui::widgets::Paragraph::new(lines), fr.status);
    }
    f.render_widget(
        Line::from(Span::styled(
            keymap::footer_fit(app.screen, fr.footer.width as usize),
            theme::dim(),
        )),
        fr.footer,
    );
    if let Some(m) = &app.modal {
        modal::render(m, f, f.area(), app.help_scroll);
    }
}
