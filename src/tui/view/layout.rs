//! Screen geometry shared by `render` and mouse hit-testing in `update`, so both agree.

use ratatui::layout::{Constraint, Layout, Rect};

use crate::tui::app::{App, Screen};

pub struct Frame {
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
    pub footer: Rect,
}

/// The screen's rows; `status_rows` (1–3) lets an error keep its `fix:` line.
pub fn frame(area: Rect, status_rows: u16) -> Frame {
    let [tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(status_rows.clamp(1, 3)),
        Constraint::Length(1),
    ])
    .areas(area);
    Frame {
        tabs,
        body,
        status,
        footer,
    }
}

/// The status line's text as rows of `width`: each of its lines wrapped at spaces, at most
/// three rows (an error and the `fix:` that says what to do).
pub fn status_rows(msg: &str, width: usize) -> Vec<String> {
    let mut rows = vec![];
    for line in msg.lines() {
        let mut cur = String::new();
        for word in line.split(' ') {
            let need = cur.chars().count() + usize::from(!cur.is_empty()) + word.chars().count();
            if need > width && !cur.is_empty() {
                rows.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        rows.push(cur);
    }
    rows.truncate(3);
    rows
}

/// Experiments pane: list on the left, details on the right.
pub fn experiments(body: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body)
}

/// Runs pane: table above, details of the selected run below (taller when there is room:
/// where it came from, its note).
pub fn runs(body: Rect) -> [Rect; 2] {
    let detail = if body.height >= 30 { 8 } else { 6 };
    Layout::vertical([Constraint::Min(3), Constraint::Length(detail)]).areas(body)
}

/// Monitor: the arms table (one row per arm) above the selected arm's panels.
pub fn monitor(body: Rect, arms: usize) -> [Rect; 2] {
    // Short terminals: at most half the height, so a chart remains (the table scrolls).
    let rows = (arms.clamp(1, 8) as u16 + 2).min((body.height / 2).max(3));
    Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(body)
}

/// A unique label in at most `n` columns without losing what makes it unique: the run's
/// ` #3fa2` and the arm are kept, the experiment part is shortened first (`sinusoid-lo…/maml
/// #3fa2`), then the arm.
pub fn fit_label(label: &str, n: usize) -> String {
    let len = label.chars().count();
    if len <= n {
        return label.to_string();
    }
    let (head, id) = match label.rsplit_once(" #") {
        Some((h, id)) => (h, format!(" #{id}")),
        None => (label, String::new()),
    };
    let (exp, arm) = match head.split_once('/') {
        Some((e, a)) => (e, format!("/{a}")),
        None => ("", head.to_string()),
    };
    let keep = arm.chars().count() + id.chars().count();
    if !exp.is_empty() && keep + 2 <= n {
        let room = n - keep - 1;
        let e: String = exp.chars().take(room).collect();
        return format!("{e}…{arm}{id}");
    }
    let tail = id.chars().count();
    // The arm is too long to keep whole: a short experiment prefix, the arm's start, the id.
    if !exp.is_empty() && tail + 8 <= n {
        let e_w = (n / 3).max(3);
        let e: String = exp.chars().take(e_w).collect();
        let a_w = n - e_w - 1 - tail - 1;
        let a: String = arm.chars().take(a_w).collect();
        return format!("{e}…{a}…{id}");
    }
    if tail + 2 <= n {
        let a: String = head.chars().take(n - tail - 1).collect();
        return format!("{a}…{id}");
    }
    label
        .chars()
        .take(n.saturating_sub(1))
        .chain(['…'])
        .collect()
}

/// First row shown in a list of `len` rows of height `height` so `sel` is visible.
/// A pure function of the selection, so a click maps to the same row that was drawn.
pub fn scroll_offset(sel: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    sel.saturating_sub(height - 1).min(len - height)
}

/// Which list row (or arm) a click at (x, y) lands on, if any.
pub fn row_hit(app: &App, x: u16, y: u16) -> Option<usize> {
    let rows = app.status.as_ref().map_or(1, |(msg, _)| {
        status_rows(msg, app.size.0 as usize).len() as u16
    });
    let f = frame(Rect::new(0, 0, app.size.0, app.size.1), rows);
    let inside = |r: Rect| x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
    // Bordered lists: content starts one row in; the runs table also has a header row.
    let (area, header, sel, len) = match app.screen {
        Screen::Experiments => (
            experiments(f.body)[0],
            0,
            app.exp_sel,
            app.experiments.len(),
        ),
        Screen::Runs => (runs(f.body)[0], 1, app.run_sel, app.run_items.len()),
        Screen::Monitor => {
            let n = app.session().map_or(0, |s| s.arms.len());
            (monitor(f.body, n)[0], 0, app.arm_sel, n)
        }
        _ => return None,
    };
    if !inside(area) {
        return None;
    }
    let height = area.height.saturating_sub(2 + header) as usize;
    let row = y.checked_sub(area.y + 1 + header)? as usize;
    let i = scroll_offset(sel, len, height) + row;
    (row < height && i < len).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::fit_label;

    #[test]
    fn labels_keep_their_run_id_when_shortened() {
        assert_eq!(fit_label("maml", 8), "maml");
        assert_eq!(
            fit_label("sinusoid-long/maml #3fa2", 18),
            "sinuso…/maml #3fa2"
        );
        assert_eq!(fit_label("a-very-long-arm-name #3fa2", 12), "a-ver… #3fa2");
        assert_eq!(
            fit_label("sinusoid-anil/metasgd-five-inner-steps", 20),
            "sinuso…/metasgd-fiv…"
        );
    }
}
