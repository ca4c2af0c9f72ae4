//! What keys do: look the key up in the table (`keymap`) and carry out its action.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{step, App, Io, Modal, Pending, Screen};
use super::catalog::EntryKind;
use super::keymap::{self, Action};
use super::text::plural;
use super::{chart_keys, launch, modal_keys, monitor_keys, runs_keys, task_keys};

pub fn on_key(app: &mut App, k: KeyEvent) {
    // Windows reports releases too; acting on them would double every key.
    if k.kind == KeyEventKind::Release {
        return;
    }
    if let Some(m) = app.modal.take() {
        return modal_keys::on_key(app, m, k);
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
                launch::start_sweep(app, &path)
            }
            Some(e) => app.io(Io::LaunchFile(e.path.clone())),
            None => app.info("no experiment selected"),
        },
        Action::OpenRun
        | Action::ExpandGroup
        | Action::CollapseGroup
        | Action::MarkRun
        | Action::MarkGroup
        | Action::ClearMarks
        | Action::CompareMarked
        | Action::Rerun
        | Action::Resume
        | Action::ExportRuns
        | Action::DeleteRun
        | Action::FilterRuns
        | Action::SortRuns
        | Action::EditNotes
        | Action::ViewConfig => runs_keys::perform(app, action),
        Action::ToggleAccuracy
        | Action::ToggleSource
        | Action::ExportSession
        | Action::PauseArm
        | Action::PauseAll
        | Action::StopArm
        | Action::StopAll
        | Action::ShowAdaptation
        | Action::LeaveAdaptation
        | Action::SelectTask(_) => monitor_keys::perform(app, action),
        Action::ShowEmbedding
        | Action::ShowAffinity
        | Action::LeaveTaskView
        | Action::CycleColouring
        | Action::SwitchMeasure => task_keys::perform(app, action),
        Action::ShowCompare => app.screen = Screen::Compare,
        Action::ShowMonitor => app.screen = Screen::Monitor,
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
                runs_keys::clear_filter(app);
            } else {
                app.info("Esc does not quit: q quits");
            }
        }
        Action::EditorWidget => {}
        Action::Smooth(_)
        | Action::ToggleLogY
        | Action::ToggleXAxis
        | Action::ToggleHistory
        | Action::Cursor(_)
        | Action::HideCursor
        | Action::ToggleDiff => chart_keys::perform(app, action),
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
                    plural(app.queue.len(), "queued launch")
                )
            },
            then: Pending::Quit,
        });
    } else {
        app.quit = true;
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

pub fn move_selection(app: &mut App, by: isize) {
    match app.screen {
        Screen::Experiments => app.exp_sel = step(app.exp_sel, app.experiments.len(), by),
        Screen::Runs => app.run_sel = step(app.run_sel, app.run_items.len(), by),
        Screen::Compare => chart_keys::move_in_ranking(app, by),
        Screen::Monitor | Screen::Adaptation | Screen::Embedding | Screen::Affinity => {
            let n = app.session().map_or(0, |s| s.arms.len());
            app.arm_sel = step(app.arm_sel, n, by);
        }
        Screen::Editor => {}
    }
}

/// Keys while the `/` filter is being typed: the list narrows with every key.
fn filter_input(app: &mut App, k: KeyEvent) {
    match k.code {
        KeyCode::Esc => return runs_keys::clear_filter(app),
        KeyCode::Enter => {
            app.run_filter.editing = false;
            let n = app.runs.len();
            return app.info(if app.run_filter.text.is_empty() {
                "no filter".to_string()
            } else {
                format!(
                    "filter `{}`: {n} of {} · Esc clears",
                    app.run_filter.text,
                    plural(app.all_runs.len(), "run")
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
        launch::discard_editor(app);
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
