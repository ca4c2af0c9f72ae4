//! Classification's per-task adaptation panel: for one tracked task, the query loss and
//! accuracy after each adaptation step, and which classes its support images show — the
//! counterpart of regression's fit figure on the adaptation screen.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::metrics::ClassFit;

use super::theme;

/// The panel for `fit`, task `fit.task` of `tasks`.
pub fn render(f: &mut Frame, area: Rect, fit: &ClassFit, tasks: usize, color: Color) {
    let title = format!(
        " tracked task {} of {tasks} · @{} ",
        fit.task + 1,
        fit.iteration
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::dim())
        .title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines = lines(fit, inner.width as usize, inner.height as usize, color);
    f.render_widget(Paragraph::new(lines), inner);
}

/// The step table first (what adaptation bought), then the support classes as room allows,
/// each with its number of support images before the name, so a cut name never hides it.
pub fn lines(fit: &ClassFit, width: usize, height: usize, color: Color) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(
        format!("{:>5} {:>11} {:>9}", "step", "query loss", "accuracy"),
        theme::dim(),
    )];
    let bar_w = width.saturating_sub(28).min(20);
    // Rows kept for the classes below: a header and at least one class.
    let step_rows = height.saturating_sub(3).max(2);
    for s in shown(fit.steps.len(), step_rows) {
        let q = fit.steps[s];
        let acc = q
            .accuracy
            .map_or("–".to_string(), |a| format!("{:.1}%", 100.0 * a));
        let mut spans = vec![Span::raw(format!(
            "{s:>5} {:>11} {acc:>9}",
            theme::num(q.loss)
        ))];
        if let (Some(a), true) = (q.accuracy, bar_w >= 4) {
            spans.push(Span::styled(
                format!(" {}", theme::bar(a, bar_w)),
                Style::default().fg(color),
            ));
        }
        out.push(Line::from(spans));
    }
    let shots = fit.shots();
    let chance = 100.0 / fit.classes.len().max(1) as f64;
    out.push(Line::styled(
        format!(
            "support: {} images, {} classes (chance {chance:.0}%)",
            fit.support_labels.len(),
            fit.classes.len()
        ),
        theme::dim(),
    ));
    let room = height.saturating_sub(out.len());
    let head = |label: usize| {
        let n = shots.get(label).copied().unwrap_or(0);
        format!("{label:>3} ×{n} ")
    };
    // One rule for every row: when any name must be shortened, all lose the shared folders.
    let cramped = fit
        .classes
        .iter()
        .enumerate()
        .any(|(label, name)| head(label).chars().count() + name.chars().count() > width);
    let common = if cramped {
        common_folders(&fit.classes)
    } else {
        0
    };
    for (label, name) in fit.classes.iter().enumerate().take(room) {
        let head = head(label);
        let name = short_name(name, common, width.saturating_sub(head.chars().count()));
        out.push(Line::raw(format!("{head}{name}")));
    }
    if fit.classes.len() > room && room > 0 {
        let last = out.len() - 1;
        out[last] = Line::styled(
            format!("… {} classes more", fit.classes.len() - room + 1),
            theme::dim(),
        );
    }
    out
}

/// Steps 0 and k always, evenly between as `rows` allow.
fn shown(len: usize, rows: usize) -> Vec<usize> {
    if len <= rows {
        return (0..len).collect();
    }
    let k = len - 1;
    let mut v: Vec<usize> = (0..rows)
        .map(|i| ((i * k) as f64 / (rows - 1).max(1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

/// How many leading folders (`images_background/`) every class name shares, keeping the last
/// two parts (alphabet and character) of each.
fn common_folders(classes: &[String]) -> usize {
    let parts: Vec<Vec<&str>> = classes.iter().map(|c| c.split('/').collect()).collect();
    let most = parts
        .iter()
        .map(|p| p.len().saturating_sub(2))
        .min()
        .unwrap_or(0);
    (0..most)
        .take_while(|&i| parts.iter().all(|p| p[i] == parts[0][i]))
        .count()
}

/// A class name without its first `common` folders in `width` characters, readable however
/// narrow: whole if it fits; else its alphabet cut with `…` and its character kept whole (what
/// tells two classes of one alphabet apart); the end cut only as a last resort.
fn short_name(name: &str, common: usize, width: usize) -> String {
    let parts: Vec<&str> = name.split('/').skip(common).collect();
    let shorter = parts.join("/");
    if shorter.chars().count() <= width || parts.len() < 2 {
        return cut(&shorter, width);
    }
    let character = parts[parts.len() - 1];
    let alphabet = parts[..parts.len() - 1].join("/");
    // The alphabet keeps at least a few letters and its `…`; the character stays whole.
    let room = width.saturating_sub(character.chars().count() + 1);
    if room < 4 {
        return cut(&shorter, width);
    }
    format!("{}/{character}", cut(&alphabet, room))
}

/// `s` in at most `width` characters, with `…` where it was cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::{common_folders, short_name, shown};

    #[test]
    fn class_names_keep_their_character_and_abbreviate_the_alphabet() {
        let long = "images_background/Ojibwe_(Canadian_Aboriginal_Syllabics)/character05";
        let classes = vec![
            long.to_string(),
            "images_background/Bengali/character35".into(),
        ];
        let common = common_folders(&classes);
        assert_eq!(common, 1);
        assert_eq!(short_name(long, 0, 80), long);
        assert_eq!(
            short_name(long, common, 50),
            "Ojibwe_(Canadian_Aboriginal_Syllabics)/character05"
        );
        assert_eq!(
            short_name(long, common, 39),
            "Ojibwe_(Canadian_Aborigina…/character05"
        );
        assert_eq!(short_name(&classes[1], common, 39), "Bengali/character35");
        assert_eq!(short_name(long, common, 12), "Ojibwe_(Can…");
        assert_eq!(short_name("class 3", 0, 4), "cla…");
    }

    #[test]
    fn shown_steps_keep_both_ends() {
        assert_eq!(shown(3, 5), vec![0, 1, 2]);
        assert_eq!(shown(11, 3), vec![0, 5, 10]);
        assert_eq!(shown(6, 2), vec![0, 5]);
    }
}
