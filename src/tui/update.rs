//! `update(&mut App, Msg)`: the only place UI state changes.

use std::time::Duration;

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use crate::engine::messages::{Command, EngineEvent};
use crate::experiment::parse_str;

use super::app::{App, Effect, Level, Modal, Msg, Pending, Screen, Source};
use super::catalog;
use super::editor::{normalize, Editor, VALIDATE_AFTER};
use super::session::{ArmStatus, Session};
use super::{actions, keys, view};

/// Re-list runs this often while the runs browser is visible: other processes add runs too.
const RUNS_RESCAN: Duration = Duration::from_secs(2);

pub fn update(app: &mut App, msg: Msg) {
    match msg {
        Msg::Key(k) => keys::on_key(app, k),
        Msg::Mouse(m) => on_mouse(app, m),
        Msg::Resize(w, h) => app.size = (w, h),
        Msg::Engine(ev) => on_engine(app, ev),
        Msg::LaunchFailed(reason) => {
            if let Some(s) = app.live.as_mut() {
                for a in s.arms.iter_mut().filter(|a| a.status.is_active()) {
                    a.status = ArmStatus::Failed(reason.clone());
                }
            }
            app.error(format!("launch failed: {reason}"));
        }
        Msg::FilesChanged(_) => on_files_changed(app),
        Msg::Tick(now) => {
            if let Some(ed) = app.editor.as_mut() {
                if ed
                    .edited_at
                    .is_some_and(|t| now.duration_since(t) >= VALIDATE_AFTER)
                {
                    ed.validate();
                }
            }
            if app.screen == Screen::Runs
                && app
                    .last_runs_scan
                    .is_none_or(|t| now.duration_since(t) >= RUNS_RESCAN)
            {
                app.last_runs_scan = Some(now);
                app.refresh_runs();
            }
        }
    }
}

fn on_engine(app: &mut App, ev: EngineEvent) {
    // Events can outlive their session (a stop after quit-to-browser): drop them quietly.
    let Some(s) = app.live.as_mut() else {
        return;
    };
    let ends = matches!(
        ev,
        EngineEvent::Finished { .. } | EngineEvent::Failed { .. }
    );
    s.apply(&ev);
    if let EngineEvent::Started {
        arm,
        run_dir,
        start_iteration,
        ..
    } = &ev
    {
        // A resumed arm: show the curve so far, not just what comes after the checkpoint.
        if *start_iteration > 0 {
            if let (Ok(m), Some(a)) = (super::backend::load_metrics(run_dir), s.arms.get_mut(*arm))
            {
                a.load(&m, *start_iteration);
                a.iteration = *start_iteration;
            }
        }
    }
    // The arms table truncates; the status line has room for the whole reason.
    if let EngineEvent::Failed { arm, reason, .. } = &ev {
        let name = s.arms.get(*arm).map_or("?".to_string(), |a| a.name.clone());
        app.error(format!("arm {name} failed: {reason}"));
        app.last_runs_scan = None;
        return;
    }
    if ends {
        // The run store has a new final status to show.
        app.last_runs_scan = None;
        if !s.any_active() {
            let msg = format!("{}: all arms done", s.title);
            app.info(msg);
        }
    }
}

/// Watched folder changed: refresh the list and reconcile the open buffer with the disk.
fn on_files_changed(app: &mut App) {
    app.refresh_experiments();
    let Some(ed) = app.editor.as_mut() else {
        return;
    };
    let disk = match std::fs::read_to_string(&ed.path) {
        Ok(t) => t,
        Err(_) => {
            let msg = format!(
                "{} was removed on disk; Ctrl-S writes it back",
                ed.file_name()
            );
            app.error(msg);
            return;
        }
    };
    if normalize(&disk) == ed.disk_text {
        return; // our own save, or a touch
    }
    if !ed.modified() {
        ed.reload(&disk);
        let name = ed.file_name();
        app.info(format!("{name} changed on disk: reloaded"));
    } else if !matches!(app.modal, Some(Modal::Conflict { .. })) {
        app.modal = Some(Modal::Conflict { disk });
    }
}

fn on_mouse(app: &mut App, m: MouseEvent) {
    if app.modal.is_some() {
        if matches!(m.kind, MouseEventKind::Down(_)) && app.modal == Some(Modal::Help) {
            app.modal = None;
        }
        return;
    }
    if app.screen == Screen::Editor {
        if let Some(ed) = app.editor.as_mut() {
            if matches!(
                m.kind,
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
            ) {
                ed.area.input(m);
            }
        }
        return;
    }
    let (w, h) = app.size;
    let frame = view::layout::frame(ratatui::layout::Rect::new(0, 0, w, h));
    match m.kind {
        MouseEventKind::ScrollUp => keys::move_selection(app, -1),
        MouseEventKind::ScrollDown => keys::move_selection(app, 1),
        MouseEventKind::Down(MouseButton::Left) => {
            if m.row == frame.tabs.y {
                if let Some(s) = view::tabs::tab_at(m.column) {
                    keys::goto(app, s);
                }
                return;
            }
            if let Some(i) = view::layout::row_hit(app, m.column, m.row) {
                match app.screen {
                    Screen::Experiments => app.exp_sel = i,
                    Screen::Runs => app.run_sel = i,
                    Screen::Monitor | Screen::Compare => app.arm_sel = i,
                    Screen::Editor => {}
                }
            }
        }
        _ => {}
    }
}

/// Resolve a confirmed question.
pub fn confirm(app: &mut App, what: Pending) {
    match what {
        Pending::StopArm(arm) => {
            if let Some(s) = app.live.as_mut() {
                for (i, a) in s.arms.iter_mut().enumerate() {
                    if arm.is_none_or(|x| x == i) && a.status.is_active() {
                        a.status = ArmStatus::Stopping;
                    }
                }
            }
            app.effects.push(Effect::Engine {
                arm,
                cmd: Command::Stop,
            });
        }
        Pending::DeleteRun(id) => actions::delete_run(app, &id),
        Pending::DiscardEdits => {
            app.editor = None;
            app.screen = Screen::Experiments;
        }
        Pending::Quit => {
            if app.training() {
                app.effects.push(Effect::Engine {
                    arm: None,
                    cmd: Command::Stop,
                });
            }
            app.quit = true;
        }
    }
}

/// Start training `exp` in the background and switch to the monitor.
pub fn launch(app: &mut App, text: &str, path: &std::path::Path) {
    if app.training() {
        app.error("an experiment is already training: stop it (s) before launching another");
        return;
    }
    match parse_str(text, &catalog::display_path(path)) {
        Err(e) => app.error(format!("cannot launch: {e}")),
        Ok(exp) => {
            app.live = Some(Session::for_experiment(&exp));
            app.source = Source::Live;
            app.arm_sel = 0;
            app.back = if app.screen == Screen::Editor {
                Screen::Experiments
            } else {
                app.screen
            };
            app.screen = Screen::Monitor;
            app.info(format!("launched {} ({} arms)", exp.name, exp.arms.len()));
            app.effects.push(Effect::Launch {
                exp: Box::new(exp),
                source: Some(path.to_path_buf()),
            });
        }
    }
}

pub fn open_editor(app: &mut App, path: std::path::PathBuf) {
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut ed = Editor::open(path, &text);
            // A broken file is opened to be fixed: start where the problem is.
            ed.jump_to_error();
            app.editor = Some(ed);
            app.screen = Screen::Editor;
            app.status = None;
        }
        Err(e) => app.error(format!("{}: {e}", path.display())),
    }
}

pub fn new_experiment(app: &mut App, duplicate: bool) {
    let (stem, text) = if duplicate {
        let Some(e) = app.experiments.get(app.exp_sel) else {
            return app.error("nothing to duplicate");
        };
        let Ok(text) = std::fs::read_to_string(&e.path) else {
            return app.error(format!("cannot read {}", e.path.display()));
        };
        let stem = format!("{}-copy", e.file_name.trim_end_matches(".ron"));
        let new_name = format!("{}-copy", e.name);
        (stem, catalog::duplicate_text(&text, &new_name))
    } else {
        ("new-experiment".to_string(), String::new())
    };
    if let Err(e) = std::fs::create_dir_all(&app.experiments_dir) {
        return app.error(format!("{}: {e}", app.experiments_dir.display()));
    }
    let path = catalog::free_path(&app.experiments_dir, &stem);
    let text = if duplicate {
        text
    } else {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        catalog::template(&name)
    };
    if let Err(e) = catalog::save_atomic(&path, &text) {
        return app.error(format!("{}: {e}", path.display()));
    }
    app.refresh_experiments();
    app.select_experiment(Some(&path));
    open_editor(app, path);
}

pub fn save_editor(app: &mut App) {
    let Some(ed) = app.editor.as_mut() else {
        return;
    };
    ed.validate();
    if let Err(e) = ed.save() {
        let msg = format!("cannot save {}: {e}", ed.path.display());
        return app.error(msg);
    }
    let msg = match ed.error_position() {
        Some((l, c)) => {
            ed.jump_to_error();
            (
                format!("saved {}, but it has an error at {l}:{c}", ed.file_name()),
                Level::Error,
            )
        }
        None if ed
            .validation
            .as_ref()
            .is_some_and(|v| matches!(v, super::editor::Validation::Invalid { .. })) =>
        {
            (
                format!("saved {}, but it does not validate", ed.file_name()),
                Level::Error,
            )
        }
        None => (format!("saved {}", ed.file_name()), Level::Info),
    };
    app.status = Some(msg);
    app.refresh_experiments();
}
