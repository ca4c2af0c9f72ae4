//! Keys while a dialog is open: help and text scroll, a note is typed, a question is answered
//! (only `y` says yes), an edit conflict is resolved.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, InputFor, Io, Modal, Pending};
use super::launch;

pub fn on_key(app: &mut App, m: Modal, k: KeyEvent) {
    match m {
        Modal::Help => {
            // Scroll keys scroll; any other key closes it.
            let (shown, max) = super::view::modal::help_layout(app.size.0, app.size.1);
            if let Some(to) = scrolled(app.help_scroll, max, shown, k.code) {
                app.help_scroll = to;
                app.modal = Some(Modal::Help);
            }
        }
        Modal::Text {
            title,
            text,
            scroll,
        } => {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter | KeyCode::Char('v')
            ) {
                return;
            }
            let rows = text.lines().count() as u16;
            let shown = super::view::modal::text_height(app.size.1).min(rows);
            let max = rows.saturating_sub(shown);
            let scroll = scrolled(scroll, max, shown, k.code).unwrap_or(scroll);
            app.modal = Some(Modal::Text {
                title,
                text,
                scroll,
            });
        }
        Modal::Input {
            prompt,
            mut text,
            then,
        } => match k.code {
            KeyCode::Enter => match then {
                InputFor::Notes { dirs } => app.io(Io::SaveNotes { dirs, text }),
            },
            KeyCode::Esc => app.info("note unchanged"),
            KeyCode::Backspace => {
                text.pop();
                app.modal = Some(Modal::Input { prompt, text, then });
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                // A note is one line, and no longer than anyone reads.
                if text.chars().count() < 200 {
                    text.push(c);
                }
                app.modal = Some(Modal::Input { prompt, text, then });
            }
            _ => app.modal = Some(Modal::Input { prompt, text, then }),
        },
        // Only `y` says yes: Enter, pressed out of habit, must not delete or stop anything.
        Modal::Confirm { prompt, then } => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => launch::confirm(app, then),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => app
                .info(match then {
                    Pending::DeleteRun(_) | Pending::DeleteRuns(_) => "cancelled: nothing deleted",
                    Pending::StopArm(_) => "cancelled: training goes on",
                    Pending::DiscardEdits => "cancelled: your edits are kept",
                    Pending::Quit => "cancelled",
                }),
            KeyCode::Enter => {
                app.info("press y to confirm, n or Esc to cancel");
                app.modal = Some(Modal::Confirm { prompt, then });
            }
            _ => app.modal = Some(Modal::Confirm { prompt, then }),
        },
        Modal::Conflict { disk } => match k.code {
            KeyCode::Char('r') => {
                if let Some(ed) = app.editor.as_mut() {
                    ed.reload(&disk);
                }
                app.info("reloaded the version on disk; your edits were discarded");
            }
            KeyCode::Char('k') | KeyCode::Esc => {
                if let Some(ed) = app.editor.as_mut() {
                    // The disk version is now the baseline: Ctrl-S overwrites it knowingly.
                    ed.disk_text = super::editor::normalize(&disk);
                }
                app.info("kept your edits; Ctrl-S will overwrite the file on disk");
            }
            _ => app.modal = Some(Modal::Conflict { disk }),
        },
    }
}

/// Where a scrolling view goes for a scroll key (`None` for any other key): `shown` rows are
/// visible of a text whose last start row is `max`.
fn scrolled(at: u16, max: u16, shown: u16, code: KeyCode) -> Option<u16> {
    let page = shown.saturating_sub(1).max(1);
    let to = match code {
        KeyCode::Up | KeyCode::Char('k') => at.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => at.saturating_add(1),
        KeyCode::PageUp => at.saturating_sub(page),
        KeyCode::PageDown | KeyCode::Char(' ') => at.saturating_add(page),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => max,
        _ => return None,
    };
    Some(to.min(max))
}
