//! The tab bar: the four panes, the current one highlighted.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::tui::app::{App, Screen};

use super::theme;

fn label(i: usize, s: Screen) -> String {
    format!(" {} {} ", i + 1, s.title())
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(
        " metalab ",
        theme::title().add_modifier(Modifier::REVERSED),
    )];
    for (i, s) in Screen::TABS.iter().enumerate() {
        let current = app.screen == *s
            || (app.screen == Screen::Editor && *s == Screen::Experiments)
            || (app.screen == Screen::Adaptation && *s == app.adaptation.from)
            || (matches!(app.screen, Screen::Embedding | Screen::Affinity)
                && *s == app.task_views.from);
        let style = if current {
            theme::selected()
        } else {
            Style::default()
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(label(i, *s), style));
    }
    if app.training() {
        spans.push(Span::styled("  ● training", theme::ok()));
    }
    if let Some(sw) = app.sweep.as_ref().filter(|s| s.running()) {
        let (ended, all) = sw.progress();
        spans.push(Span::styled(
            format!("  ● sweep {ended}/{all}"),
            theme::ok(),
        ));
    }
    if !app.queue.is_empty() {
        spans.push(Span::styled(
            format!(" +{} queued", app.queue.len()),
            theme::title(),
        ));
    }
    f.render_widget(Line::from(spans), area);
}

/// The tab under column `x` of the tab bar.
pub fn tab_at(x: u16) -> Option<Screen> {
    let mut at = " metalab ".len() as u16;
    for (i, s) in Screen::TABS.iter().enumerate() {
        at += 1;
        let w = label(i, *s).chars().count() as u16;
        if x >= at && x < at + w {
            return Some(*s);
        }
        at += w;
    }
    None
}
