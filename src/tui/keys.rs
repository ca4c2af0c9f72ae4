//! What keys do: look the key up in the table (`keymap`) and carry out its action.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::engine::messages::Command;

use super::app::{App, Effect, InputFor, Io, Modal, Pending, Screen, Source};
use super::catalog::EntryKind;
use super::keymap::{self, Action};
use super::session::ArmStatus;
use super::{actions, update};

pub fn on_key(app: &mut App, k: KeyEvent) {
    // Windows reports releases too; acting on them would double every key.
    if k.kind == KeyEventKind::Release {
        return;
    }
    if let Some(m) = app.modal.take() {
        return on_modal_key(app, m, k);
    }
    if app.screen == Screen::Runs && app.run_filter.editing {
        return filter_input(app, k);
    }
    match keymap::lookup(app.screen, &k) {
        Some(Action::EditorWidget) | None if app.screen == Screen::Editor => editor_input(app, k),
        Some(action) => {
            // The status line answers the last action: a new one (other than moving about)
            // replaces it, so "done" or an error fixed since is not left standing.
            if !matches!(action, Action::Move(_) | Action::Help) {
                app.status = None;
            }
            perform(app, action)
        }
        None => {}
    }
}

/// Carry out one action of the key table.
fn perform(app: &mut App, action: Action) {
    let live = app.session().is_some_and(|s| s.live);
    match action {
        Action::Help => {
            app.help_scroll = 0;
            app.modal = Some(Modal::Help)
        }
        Action::AskQuit => ask_quit(app),
        Action::Back => app.screen = app.back,
        Action::NextPane => cycle(app, 1),
        Action::PrevPane => cycle(app, -1),
        Action::Pane(s) => goto(app, s),
        Action::Move(by) => move_selection(app, by),
        Action::EditExperiment => match app.experiments.get(app.exp_sel) {
            Some(e) => app.io(Io::OpenEditor(e.path.clone())),
            None => app.info("no experiments yet: n creates one from a template"),
        },
        Action::NewExperiment => app.io(Io::NewExperiment { duplicate: false }),
        Action::DuplicateExperiment => app.io(Io::NewExperiment { duplicate: true }),
        Action::LaunchExperiment => match app.experiments.get(app.exp_sel) {
            Some(e) if e.kind == EntryKind::Sweep && e.is_valid() => {
                let path = e.path.clone();
                update::start_sweep(app, &path)
            }
            Some(e) => app.io(Io::LaunchFile(e.path.clone())),
            None => app.info("no experiment selected"),
        },
        Action::OpenRun => {
            let rows: Vec<_> = app.runs.get(app.run_sel).cloned().into_iter().collect();
            app.io(Io::OpenRuns {
                rows,
                screen: Screen::Monitor,
            })
        }
        Action::MarkRun => {
            if let Some(r) = app.runs.get(app.run_sel) {
                let id = r.id.clone();
                if !app.marked.remove(&id) {
                    app.marked.insert(id);
                }
                move_selection(app, 1);
            }
        }
        Action::MarkGroup => {
            let Some(r) = app.runs.get(app.run_sel) else {
                return;
            };
            // A sweep's runs, else the experiment's: every arm and every seed of it.
            let sweep = |r: &crate::tui::backend::RunRow| {
                r.variant
                    .as_deref()
                    .and_then(crate::tui::backend::sweep_of)
                    .map(|(s, _)| s.to_string())
            };
            let (key, exp) = (sweep(r), r.experiment.clone());
            let ids: Vec<String> = app
                .runs
                .iter()
                .filter(|x| match &key {
                    Some(k) => sweep(x).as_ref() == Some(k),
                    None => sweep(x).is_none() && x.experiment == exp,
                })
                .map(|x| x.id.clone())
                .collect();
            let what = key.map_or(format!("experiment {exp}"), |k| format!("sweep {k}"));
            app.info(format!(
                "marked {} of {what}: c compares them (seeds as one arm each), u clears",
                update::plural(ids.len(), "run")
            ));
            app.marked.extend(ids);
        }
        Action::ClearMarks => {
            let n = app.marked.len();
            app.marked.clear();
            app.info(format!("cleared {}", update::plural(n, "mark")));
        }
        Action::CompareMarked => {
            let rows = actions::chosen_runs(app);
            // Used: a mark left behind would make the next d or x act on runs not in view.
            app.marked.clear();
            app.io(Io::OpenRuns {
                rows,
                screen: Screen::Compare,
            })
        }
        Action::Rerun => app.io(Io::Rerun),
        Action::Resume => app.io(Io::Resume),
        Action::ExportRuns => app.io(Io::ExportChosen),
        // The marked runs when the cursor is on one of them; else the run under the cursor,
        // whatever is marked elsewhere. The dialog names every run it will delete.
        Action::DeleteRun
            if app
                .runs
                .get(app.run_sel)
                .is_some_and(|r| app.marked.contains(&r.id)) =>
        {
            let ids: Vec<String> = app.marked_visible().iter().map(|r| r.id.clone()).collect();
            let shown = 6;
            let mut names: Vec<String> = ids.iter().take(shown).cloned().collect();
            if ids.len() > shown {
                names.push(format!("… and {} more", ids.len() - shown));
            }
            app.modal = Some(Modal::Confirm {
                prompt: format!(
                    "Delete these {} and all their files? Runs still training are kept.\n{}",
                    update::plural(ids.len(), "marked run"),
                    names.join("\n")
                ),
                then: Pending::DeleteRuns(ids),
            });
        }
        Action::DeleteRun => {
            if let Some(r) = app.runs.get(app.run_sel) {
                let others = app.marked.len();
                let note = if others > 0 {
                    format!(
                        "\n(only this one: the {} elsewhere stay)",
                        update::plural(others, "marked run")
                    )
                } else {
                    String::new()
                };
                app.modal = Some(Modal::Confirm {
                    prompt: format!("Delete run {} and all its files?{note}", r.id),
                    then: Pending::DeleteRun(r.id.clone()),
                });
            }
        }
        Action::ShowCompare => app.screen = Screen::Compare,
        Action::ShowMonitor => app.screen = Screen::Monitor,
        Action::ToggleAccuracy => match app.session() {
            Some(s) if !s.classification() => {
                app.info("a: accuracy is for classification; this is regression, shown as MSE")
            }
            _ => {
                app.task_accuracy = !app.task_accuracy;
                app.info(if app.task_accuracy {
                    "task panels: accuracy"
                } else {
                    "task panels: loss"
                });
            }
        },
        Action::ToggleSource => {
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
        Action::ExportSession => app.io(Io::ExportSession),
        Action::PauseArm | Action::PauseAll | Action::StopArm | Action::StopAll if !live => {
            app.info("this is a saved run: r in the Runs pane reruns it")
        }
        Action::PauseArm => toggle_pause(app, Some(app.arm_sel)),
        Action::PauseAll => toggle_pause(app, None),
        Action::StopArm => ask_stop(app, Some(app.arm_sel)),
        Action::StopAll => ask_stop(app, None),
        Action::Save => app.io(Io::SaveEditor { then_launch: false }),
        Action::JumpToError => {
            if let Some(ed) = app.editor.as_mut() {
                ed.validate();
                if !ed.jump_to_error() {
                    app.info("no error to jump to");
                }
            }
        }
        Action::SaveAndLaunch => app.io(Io::SaveEditor { then_launch: true }),
        Action::LeaveEditor => leave_editor(app),
        Action::Escape => {
            if app.screen == Screen::Runs && app.run_filter.active() {
                clear_filter(app);
            } else {
                app.info("Esc does not quit: q quits");
            }
        }
        Action::FilterRuns => {
            app.run_filter.editing = true;
            app.info("filter: type words (#tag for a tag) · Enter keeps it · Esc clears it");
        }
        Action::SortRuns => {
            app.run_sort = app.run_sort.next();
            app.apply_run_view();
            app.info(format!("runs sorted by {}", app.run_sort.label()));
        }
        Action::EditNotes => match app.runs.get(app.run_sel) {
            Some(r) => {
                app.modal = Some(Modal::Input {
                    prompt: format!("Note for {} (#word makes a tag; empty clears)", r.id),
                    text: r.extra.notes.to_input(),
                    then: InputFor::Notes {
                        id: r.id.clone(),
                        dir: r.dir.clone(),
                    },
                })
            }
            None => app.info("no run selected"),
        },
        Action::ViewConfig => app.io(Io::ViewConfig),
        Action::ShowAdaptation => {
            app.adaptation.from = app.screen;
            app.screen = Screen::Adaptation;
        }
        Action::LeaveAdaptation => app.screen = app.adaptation.from,
        Action::SelectTask(by) => {
            let n = app
                .session()
                .and_then(|s| s.arms.get(app.arm_sel))
                .map_or(0, |a| a.fits.len());
            if n == 0 {
                app.info("no tracked-task fits: they are drawn for regression, at each evaluation");
            }
            app.adaptation.task = step(app.adaptation.task, n, by);
        }
        Action::EditorWidget => {}
        Action::Smooth(_)
        | Action::ToggleLogY
        | Action::ToggleXAxis
        | Action::ToggleHistory
        | Action::Cursor(_)
        | Action::HideCursor
        | Action::ToggleDiff => super::chart_keys::perform(app, action),
    }
}

fn ask_quit(app: &mut App) {
    if app.sweeping() && !app.training() {
        app.modal = Some(Modal::Confirm {
            prompt: "A sweep is running. Stop its variants at a checkpoint and quit?".into(),
            then: Pending::Quit,
        });
    } else if app.training() {
        app.modal = Some(Modal::Confirm {
            prompt: if app.queue.is_empty() {
                "Training is running. Stop all arms and quit?".into()
            } else {
                format!(
                    "Training is running. Stop all arms, drop the {} and quit?",
                    update::plural(app.queue.len(), "queued launch")
                )
            },
            then: Pending::Quit,
        });
    } else {
        app.quit = true;
    }
}

fn on_modal_key(app: &mut App, m: Modal, k: KeyEvent) {
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
                InputFor::Notes { dir, .. } => app.io(Io::SaveNotes { dir, text }),
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
            KeyCode::Char('y') | KeyCode::Char('Y') => update::confirm(app, then),
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

pub fn goto(app: &mut App, s: Screen) {
    if matches!(s, Screen::Monitor | Screen::Compare) && app.session().is_none() {
        return app.info("nothing to show yet: launch an experiment (r) or open a run");
    }
    if s == Screen::Runs {
        app.io(Io::RefreshRuns);
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
        Screen::Compare => super::chart_keys::move_in_ranking(app, by),
        Screen::Monitor | Screen::Adaptation => {
            let n = app.session().map_or(0, |s| s.arms.len());
            app.arm_sel = step(app.arm_sel, n, by);
        }
        Screen::Editor => {}
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
    let who = match arm {
        Some(i) => format!("arm {}", s.arms.get(i).map_or("?", |a| a.name.as_str())),
        None => "all arms".into(),
    };
    let cmd = if pause {
        app.info(format!("pausing {who}: p resumes"));
        Command::Pause
    } else {
        app.info(format!("resuming {who}"));
        Command::Resume
    };
    app.effects.push(Effect::Engine { arm, cmd });
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

/// Keys while the `/` filter is being typed: the list narrows with every key.
fn filter_input(app: &mut App, k: KeyEvent) {
    match k.code {
        KeyCode::Esc => return clear_filter(app),
        KeyCode::Enter => {
            app.run_filter.editing = false;
            let n = app.runs.len();
            return app.info(if app.run_filter.text.is_empty() {
                "no filter".to_string()
            } else {
                format!(
                    "filter `{}`: {n} of {} · Esc clears",
                    app.run_filter.text,
                    update::plural(app.all_runs.len(), "run")
                )
            });
        }
        KeyCode::Backspace => {
            app.run_filter.text.pop();
        }
        KeyCode::Up | KeyCode::Down => {
            return move_selection(app, if k.code == KeyCode::Up { -1 } else { 1 })
        }
        KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
            app.run_filter.text.push(c)
        }
        KeyCode::Char('c') => return perform(app, Action::AskQuit),
        _ => return,
    }
    app.apply_run_view();
}

fn clear_filter(app: &mut App) {
    app.run_filter = Default::default();
    app.apply_run_view();
    app.info("filter cleared");
}

/// Ask before stopping an arm (or all with `None`); nothing running is said so.
fn ask_stop(app: &mut App, arm: Option<usize>) {
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

fn leave_editor(app: &mut App) {
    let Some(ed) = app.editor.as_ref() else {
        app.screen = Screen::Experiments;
        return;
    };
    if ed.modified() {
        let prompt = if ed.created {
            format!("Discard the new {}? It was never saved.", ed.file_name())
        } else {
            "Discard unsaved edits?".to_string()
        };
        app.modal = Some(Modal::Confirm {
            prompt,
            then: Pending::DiscardEdits,
        });
    } else {
        update::discard_editor(app);
    }
}

/// Keys the table leaves to the editor widget: typing, moving, undo.
fn editor_input(app: &mut App, k: KeyEvent) {
    if let Some(ed) = app.editor.as_mut() {
        if ed.area.input(k) {
            ed.edited_at = Some(std::time::Instant::now());
        }
    }
}
