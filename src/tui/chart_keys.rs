//! What the chart keys do (smoothing, scales, cursor, diff) and selection in the Compare table,
//! which follows the ranking the table is sorted by. Each answers in the status line.

use super::app::App;
use super::chart_opts::{History, XAxis};
use super::keymap::Action;
use super::results;

pub fn perform(app: &mut App, action: Action) {
    let o = &mut app.chart;
    let msg = match action {
        Action::Smooth(by) => {
            o.smooth(by);
            match o.alpha() {
                a if a > 0.0 => format!("smoothing: EMA {a} (raw curve faint behind; e/E)"),
                _ => "smoothing off (e smooths)".into(),
            }
        }
        // The step chart here is linear with an outlying step 0 put above its axis; say so
        // rather than flip a setting this screen does not use.
        Action::ToggleLogY if app.screen == crate::tui::app::Screen::Adaptation => {
            "log y is for the Monitor and Compare charts; here a step-0 value far above the \
             rest is shown above the axis instead"
                .into()
        }
        Action::ToggleLogY => {
            o.log_y = !o.log_y;
            if o.log_y {
                "y axis: log (loss panels; accuracy stays linear)".into()
            } else {
                "y axis: linear".into()
            }
        }
        Action::ToggleXAxis => {
            o.x = match o.x {
                XAxis::Iteration => XAxis::WallTime,
                XAxis::WallTime => XAxis::Iteration,
            };
            match o.x {
                XAxis::Iteration => "x axis: iterations".into(),
                XAxis::WallTime => "x axis: training time".into(),
            }
        }
        Action::ToggleHistory => {
            o.history = match o.history {
                History::Full => History::Recent,
                History::Recent => History::Full,
            };
            match o.history {
                History::Full => "full history".into(),
                History::Recent => "recent history: the last 20% of the x range".into(),
            }
        }
        Action::Cursor(by) => {
            let was_hidden = o.cursor.is_none();
            o.move_cursor(by);
            if was_hidden {
                "cursor on: , . move it, < > faster, 0 hides".into()
            } else {
                return;
            }
        }
        Action::HideCursor => {
            o.cursor = None;
            "cursor hidden".into()
        }
        Action::ToggleDiff => {
            o.diff = !o.diff;
            if o.diff {
                "config diff (D: back to the charts)".into()
            } else {
                "charts (D: config diff)".into()
            }
        }
        _ => return,
    };
    app.info(msg);
}

/// ↑/↓ in Compare walk the table's sorted rows, not the arms' launch order.
pub fn move_in_ranking(app: &mut App, by: isize) {
    let Some(s) = app.session() else {
        return;
    };
    let r = results::rank(s, app.task_accuracy);
    if r.rows.is_empty() {
        return;
    }
    let pos = r.position(app.arm_sel).unwrap_or(0) as isize;
    let to = (pos + by).clamp(0, r.rows.len() as isize - 1) as usize;
    app.arm_sel = r.rows[to].arm;
}
