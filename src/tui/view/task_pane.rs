//! What the per-arm task views (the embedding scatter, the affinity heatmap) share: their
//! bordered pane and the arm it shows, and the empty state that says why the arm has nothing
//! to draw and which arms of the session have something.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::session::{ArmView, Session};

use super::theme;

/// The shown session's selected arm, its colour and the inside of a bordered pane titled
/// `title`; `None` when no session has arms, with `hint` drawn in the pane instead.
pub(super) fn arm_pane<'a>(
    app: &'a App,
    f: &mut Frame,
    area: Rect,
    title: &str,
    hint: &str,
) -> Option<(&'a Session, &'a ArmView, Color, Rect)> {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title.to_string());
    let Some(s) = app.session().filter(|s| !s.arms.is_empty()) else {
        let p = Paragraph::new(hint.to_string())
            .wrap(Wrap { trim: true })
            .block(block);
        f.render_widget(p, area);
        return None;
    };
    let sel = app.arm_sel.min(s.arms.len() - 1);
    let inner = block.inner(area);
    f.render_widget(block, area);
    Some((s, &s.arms[sel], theme::arm_colors(s)[sel], inner))
}

/// `arm`'s name and `why` it has nothing to draw, then the arms of `s` that do (`has`), which
/// ←→ reaches.
pub(super) fn empty_state(
    s: &Session,
    arm: &ArmView,
    colour: Color,
    why: String,
    has: impl Fn(&ArmView) -> bool,
) -> Vec<Line<'static>> {
    let name = Span::styled(
        format!("● {}", arm.name),
        Style::default().fg(colour).add_modifier(Modifier::BOLD),
    );
    let mut lines = vec![Line::from(vec![name, Span::raw(why)])];
    let others: Vec<&str> = s
        .arms
        .iter()
        .filter(|a| has(a))
        .map(|a| a.name.as_str())
        .collect();
    if !others.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            format!("←→ selects an arm that has them: {}", others.join(", ")),
            theme::dim(),
        ));
    }
    lines
}
