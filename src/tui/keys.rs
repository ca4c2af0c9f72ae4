//! The key map: which key does what on which screen. `?` shows the same table (see `HELP`).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::engine::messages::Command;

use super::app::{App, Effect, Modal, Pending, Screen, Source};
use super::session::ArmStatus;
use super::{actions, update};

/// (keys, what they do) — shown by `?`.
pub const HELP: &[(&str, &str)] = &[
    ("?  F1", "this help"),
    ("q  Esc", "back / quit"),
    ("Tab  1-4", "switch pane (S-Tab back)"),
    ("↑↓  j k", "move (PgUp PgDn g G)"),
    ("Enter", "open (edit / view run)"),
    ("", ""),
    ("Experiments", ""),
    ("r", "launch all arms"),
    ("n  d", "new / duplicate"),
    ("", ""),
    ("Editor", ""),
    ("Ctrl-S", "save (jumps to an error)"),
    ("F4", "jump to the error"),
    ("F5", "save and launch"),
    ("Esc", "back (asks if modified)"),
    ("", ""),
    ("Monitor / Compare", ""),
    ("← →  h l", "select arm"),
    ("p  P", "pause/resume arm / all"),
    ("s  S", "stop arm / all (asks)"),
    ("c  m", "compare / monitor"),
    ("a", "accuracy ↔ loss panels"),
    ("v", "live ↔ opened saved run"),
    ("x", "export CSV + SVG"),
    ("", ""),
    ("Runs", ""),
    ("Space", "mark for comparison"),
    ("c", "compare marked runs"),
    ("r  d  x", "rerun, delete, export"),
    ("R", "resume a stopped run"),
    ("", ""),
    ("Mouse", "click tabs/rows; wheel"),
];

pub fn on_key(app: &mut App, k: KeyEvent) {
    // Windows reports releases too; acting on them would double every key.
    if k.kind == KeyEventKind::Release {
        return;
    }
    if let Some(m) = app.modal.take() {
        return on_modal_key(app, m, k);
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if app.screen == Screen::Editor {
        return on_editor_key(app, k, ctrl);
    }
    if ctrl && k.code == KeyCode::Char('c') {
        return ask_quit(app);
    }
    match k.code {
        KeyCode::Char('?') | KeyCode::F(1) => return app.modal = Some(Modal::Help),
        KeyCode::Tab => return cycle(app, 1),
        KeyCode::BackTab => return cycle(app, -1),
        KeyCode::Char(c @ '1'..='4') => return goto(app, Screen::TABS[c as usize - '1' as usize]),
        KeyCode::Up | KeyCode::Char('k') => return move_selection(app, -1),
        KeyCode::Down | KeyCode::Char('j') => return move_selection(app, 1),
        KeyCode::PageUp => return move_selection(app, -10),
        KeyCode::PageDown => return move_selection(app, 10),
        KeyCode::Home | KeyCode::Char('g') => return move_selection(app, -1_000_000),
        KeyCode::End | KeyCode::Char('G') => return move_selection(app, 1_000_000),
        _ => {}
    }
    match app.screen {
        Screen::Experiments => experiments_key(app, k),
        Screen::Runs => runs_key(app, k),
        Screen::Monitor | Screen::Compare => monitor_key(app, k),
        Screen::Editor => {}
    }
}

fn ask_quit(app: &mut App) {
    if app.training() {
        app.modal = Some(Modal::Confirm {
            prompt: "Training is running. Stop all arms and quit?".into(),
            then: Pending::Quit,
        });
    } else {
        app.quit = true;
    }
}

fn on_modal_key(app: &mut App, m: Modal, k: KeyEvent) {
    match m {
        Modal::Help => {} // any key closes it
        Modal::Confirm { prompt, then } => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => update::confirm(app, then),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {}
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

pub fn goto(app: &mut App, s: Screen) {
    if matches!(s, Screen::Monitor | Screen::Compare) && app.session().is_none() {
        return app.info("nothing to show yet: launch an experiment (r) or open a run");
    }
    if s == Screen::Runs {
        app.refresh_runs();
    }
    if matches!(app.screen, Screen::Experiments | Screen::Runs) {
        app.back = app.screen;
    }
    app.screen = s;
}

fn cycle(app: &mut App, step: isize) {
    let tabs = Screen::TABS;
    let mut i = tabs.iter().position(|s| *s == app.screen).unwrap_or(0) as isize;
    for _ in 0..tabs.len() {
        i = (i + step).rem_euclid(tabs.len() as isize);
        let s = tabs[i as usize];
        // Skip empty panes rather than stopping on them.
        if !matches!(s, Screen::Monitor | Screen::Compare) || app.session().is_some() {
            return goto(app, s);
        }
    }
}

fn step(sel: usize, len: usize, by: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (sel as isize + by).clamp(0, len as isize - 1) as usize
}

pub fn move_selection(app: &mut App, by: isize) {
    match app.screen {
        Screen::Experiments => app.exp_sel = step(app.exp_sel, app.experiments.len(), by),
        Screen::Runs => app.run_sel = step(app.run_sel, app.runs.len(), by),
        Screen::Monitor | Screen::Compare => {
            let n = app.session().map_or(0, |s| s.arms.len());
            app.arm_sel = step(app.arm_sel, n, by);
        }
        Screen::Editor => {}
    }
}

fn experiments_key(app: &mut App, k: KeyEvent) {
    let selected = app.experiments.get(app.exp_sel).map(|e| e.path.clone());
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => ask_quit(app),
        KeyCode::Enter | KeyCode::Char('e') => match selected {
            Some(p) => update::open_editor(app, p),
            None => app.info("no experiments yet: n creates one from a template"),
        },
        KeyCode::Char('n') => update::new_experiment(app, false),
        KeyCode::Char('d') => update::new_experiment(app, true),
        KeyCode::Char('r') | KeyCode::Char('l') => match selected {
            Some(p) => match std::fs::read_to_string(&p) {
                Ok(text) => update::launch(app, &text, &p),
                Err(e) => app.error(format!("{}: {e}", p.display())),
            },
            None => app.info("no experiment selected"),
        },
        _ => {}
    }
}

fn runs_key(app: &mut App, k: KeyEvent) {
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => ask_quit(app),
        KeyCode::Enter => {
            let rows: Vec<_> = app.runs.get(app.run_sel).cloned().into_iter().collect();
            actions::open_runs(app, &rows, Screen::Monitor)
        }
        KeyCode::Char(' ') => {
            if let Some(r) = app.runs.get(app.run_sel) {
                let id = r.id.clone();
                if !app.marked.remove(&id) {
                    app.marked.insert(id);
                }
                move_selection(app, 1);
            }
        }
        KeyCode::Char('c') => {
            let rows = actions::chosen_runs(app);
            actions::open_runs(app, &rows, Screen::Compare)
        }
        KeyCode::Char('r') => actions::rerun(app),
        KeyCode::Char('R') => actions::resume(app),
        KeyCode::Char('x') => actions::export_chosen(app),
        KeyCode::Char('d') | KeyCode::Delete => {
            if let Some(r) = app.runs.get(app.run_sel) {
                app.modal = Some(Modal::Confirm {
                    prompt: format!("Delete run {} and all its files?", r.id),
                    then: Pending::DeleteRun(r.id.clone()),
                });
            }
        }
        _ => {}
    }
}

fn monitor_key(app: &mut App, k: KeyEvent) {
    let live = app.session().is_some_and(|s| s.live);
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => app.screen = app.back,
        KeyCode::Left | KeyCode::Char('h') => move_selection(app, -1),
        KeyCode::Right | KeyCode::Char('l') => move_selection(app, 1),
        KeyCode::Char('c') => app.screen = Screen::Compare,
        KeyCode::Char('m') => app.screen = Screen::Monitor,
        KeyCode::Char('a') => app.task_accuracy = !app.task_accuracy,
        KeyCode::Char('v') => {
            // Opening a saved run must not lose the live one: v flips between them.
            if app.live.is_some() && app.saved.is_some() {
                app.source = match app.source {
                    Source::Live => Source::Saved,
                    Source::Saved => Source::Live,
                };
                app.arm_sel = 0;
            } else {
                app.info("only one session to show");
            }
        }
        KeyCode::Char('x') => actions::export_session(app),
        KeyCode::Char('p') if live => toggle_pause(app, Some(app.arm_sel)),
        KeyCode::Char('P') if live => toggle_pause(app, None),
        KeyCode::Char('s') | KeyCode::Char('S') if live => {
            let arm = (k.code == KeyCode::Char('s')).then_some(app.arm_sel);
            let Some(s) = app.live.as_ref() else { return };
            let active = s
                .arms
                .iter()
                .enumerate()
                .any(|(i, a)| arm.is_none_or(|x| x == i) && a.status.is_active());
            if !active {
                return app.info("nothing running to stop");
            }
            let who = match arm {
                Some(i) => format!("arm {}", s.arms.get(i).map_or("?", |a| a.name.as_str())),
                None => "all arms".into(),
            };
            app.modal = Some(Modal::Confirm {
                prompt: format!("Stop {who}? It checkpoints and ends; the run is kept as stopped."),
                then: Pending::StopArm(arm),
            });
        }
        KeyCode::Char('p' | 'P' | 's' | 'S') => {
            app.info("this is a saved run: r in the Runs pane reruns it")
        }
        _ => {}
    }
}

/// Pause if the target is running, else resume; the engine confirms with Paused/Resumed.
fn toggle_pause(app: &mut App, arm: Option<usize>) {
    let Some(s) = app.live.as_mut() else { return };
    let first = arm.unwrap_or(0);
    let pause = match s.arms.get(first).map(|a| &a.status) {
        Some(ArmStatus::Paused | ArmStatus::Pausing) => false,
        Some(st) if st.is_active() => true,
        _ => return app.info("that arm is not running"),
    };
    for (i, a) in s.arms.iter_mut().enumerate() {
        if arm.is_none_or(|x| x == i) && a.status.is_active() && a.status != ArmStatus::Stopping {
            a.status = if pause {
                ArmStatus::Pausing
            } else {
                ArmStatus::Running
            };
        }
    }
    let cmd = if pause {
        Command::Pause
    } else {
        Command::Resume
    };
    app.effects.push(Effect::Engine { arm, cmd });
}

fn on_editor_key(app: &mut App, k: KeyEvent, ctrl: bool) {
    match k.code {
        KeyCode::Char('s') if ctrl => update::save_editor(app),
        KeyCode::F(1) => app.modal = Some(Modal::Help),
        KeyCode::F(4) => {
            if let Some(ed) = app.editor.as_mut() {
                ed.validate();
                if !ed.jump_to_error() {
                    app.info("no error to jump to");
                }
            }
        }
        KeyCode::F(5) => {
            update::save_editor(app);
            if let Some(ed) = app.editor.as_ref() {
                let (text, path) = (ed.text(), ed.path.clone());
                if ed.error_position().is_none()
                    && !matches!(
                        ed.validation,
                        Some(super::editor::Validation::Invalid { .. })
                    )
                {
                    update::launch(app, &text, &path);
                }
            }
        }
        KeyCode::Esc => {
            if app.editor.as_ref().is_some_and(|e| e.modified()) {
                app.modal = Some(Modal::Confirm {
                    prompt: "Discard unsaved edits?".into(),
                    then: Pending::DiscardEdits,
                });
            } else {
                app.editor = None;
                app.screen = Screen::Experiments;
            }
        }
        _ => {
            if let Some(ed) = app.editor.as_mut() {
                if ed.area.input(k) {
                    ed.edited_at = Some(std::time::Instant::now());
                }
            }
        }
    }
}
