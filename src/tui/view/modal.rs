//! Overlays: the key map (scrolling), confirmations, the reload conflict question, a one-line
//! input, and a read-only text view.

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

/// The help overlay's columns at this terminal width: one section list, or two (split at the
/// section boundary that balances them) when there is room for both side by side.
fn help_columns(width: u16) -> Vec<Vec<(String, String)>> {
    let help = keymap::help_rows();
    if width < 76 {
        return vec![help];
    }
    // The section boundary (a blank row) that makes the taller column shortest.
    let split = (0..help.len())
        .filter(|&i| help[i].0.is_empty() && help[i].1.is_empty())
        .min_by_key(|&i| i.max(help.len() - i - 1))
        .unwrap_or(help.len() / 2);
    let (a, b) = help.split_at(split);
    // Drop the blank separator at the top of the second column.
    vec![a.to_vec(), b.get(1..).unwrap_or_default().to_vec()]
}

/// (rows shown, the largest scroll) of the help overlay in a `width`×`height` terminal: the
/// box keeps a row free above and below, and scrolls when the key map is taller.
pub fn help_layout(width: u16, height: u16) -> (u16, u16) {
    let tallest = help_columns(width)
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(0) as u16;
    let shown = height.saturating_sub(4).max(1).min(tallest);
    (shown, tallest - shown)
}

/// Text rows visible in the read-only text view.
pub fn text_height(height: u16) -> u16 {
    height.saturating_sub(4).max(1)
}

/// The key map, scrolled to `scroll` when the terminal is too short for it. Lines are cut,
/// never wrapped, so a scroll step is one row at any width.
fn render_help(f: &mut Frame, area: Rect, scroll: u16) {
    let columns = help_columns(area.width);
    let (shown, max) = help_layout(area.width, area.height);
    let scroll = scroll.min(max);
    let title = if max > 0 {
        let close = if area.width >= 70 {
            " · other keys close"
        } else {
            ""
        };
        format!(" keys — ↑↓ PgUp PgDn scroll {scroll}/{max}{close} ")
    } else {
        " keys — any key closes ".to_string()
    };
    let key_width = |rows: &[(String, String)]| {
        rows.iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0)
    };
    let width = if columns.len() == 1 { 64 } else { area.width };
    let r = centered(area, width, shown + 2);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme::title()));
    let inner = block.inner(r);
    f.render_widget(block, r);
    let areas = Layout::horizontal(vec![
        Constraint::Ratio(1, columns.len() as u32);
        columns.len()
    ])
    .split(inner);
    for (rows, a) in columns.iter().zip(areas.iter()) {
        let p = Paragraph::new(help_lines(rows, key_width(rows))).scroll((scroll, 0));
        f.render_widget(p, *a);
    }
}

/// A read-only text (a frozen config) in a box as large as the terminal allows, scrolled.
fn render_text(f: &mut Frame, area: Rect, title: &str, text: &str, scroll: u16) {
    let lines: Vec<Line<'static>> = text.lines().map(|l| Line::raw(l.to_string())).collect();
    let total = lines.len() as u16;
    let shown = text_height(area.height).min(total.max(1));
    let scroll = scroll.min(total.saturating_sub(shown));
    let width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 2;
    let r = centered(
        area,
        width.max(title.chars().count() as u16 + 2).min(110),
        shown + 2,
    );
    f.render_widget(Clear, r);
    let footer = format!(
        " lines {}-{} of {total} · read-only · ↑↓ PgUp PgDn · Esc closes ",
        scroll + 1,
        (scroll + shown).min(total)
    );
    let p = Paragraph::new(lines).scroll((scroll, 0)).block(
        Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title.to_string(), theme::title()))
            .title_bottom(Span::styled(footer, theme::dim())),
    );
    f.render_widget(p, r);
}

pub fn render(m: &Modal, f: &mut Frame, area: Rect, help_scroll: u16) {
    let (title, lines, w) = match m {
        Modal::Help => return render_help(f, area, help_scroll),
        Modal::Text {
            title,
            text,
            scroll,
        } => return render_text(f, area, title, text, *scroll),
        Modal::Input { prompt, text, .. } => (
            " edit ",
            vec![
                Line::raw(prompt.clone()),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("> ", theme::ok()),
                    Span::raw(text.clone()),
                    Span::styled("█", theme::ok()),
                ]),
                Line::raw(""),
                Line::styled("Enter: save     Esc: leave unchanged", theme::title()),
            ],
            70,
        ),
        Modal::Confirm { prompt, .. } => (
            " confirm ",
            prompt
                .lines()
                .map(|l| Line::raw(l.to_string()))
                .chain([
                    Line::raw(""),
                    Line::styled("y: yes     n / Esc: no", theme::title()),
                ])
                .collect(),
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
