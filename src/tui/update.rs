//! `update(&mut App, Msg)`: the only place UI state changes in answer to input and engine
//! events. It touches no files: disk work goes out as `Effect::Io` (see `actions`).

use std::time::Duration;

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use crate::engine::messages::EngineEvent;

use super::app::{App, Io, Modal, Msg, Screen};
use super::editor::VALIDATE_AFTER;
use super::launch::{after_failure, start_next};
use super::scanner::Scanned;
use super::session::ArmStatus;
use super::sweep_view::SweepMsg;
use super::{jobs, keys, view};

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
            after_failure(app);
        }
        Msg::FilesChanged(_) => app.io(Io::FilesChanged),
        Msg::Scanned(Scanned::Experiments {
            generation,
            entries,
        }) => app.apply_catalog(generation, entries),
        Msg::Scanned(Scanned::Runs(rows)) => app.set_runs(rows),
        Msg::Sweep(m) => on_sweep(app, m),
        Msg::Done(d) => jobs::done(app, *d),
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
                app.io(Io::RefreshRuns);
            }
        }
    }
}

fn on_sweep(app: &mut App, m: SweepMsg) {
    let Some(sw) = app.sweep.as_mut() else {
        return;
    };
    let ended = matches!(
        m,
        SweepMsg::Done(_) | SweepMsg::Queue(crate::sweep::queue::QueueEvent::Ended { .. })
    );
    let failed = matches!(&m, SweepMsg::Done(Err(_)));
    if let Some(line) = sw.apply(m) {
        if failed {
            app.error(line);
        } else {
            app.info(line);
        }
    }
    // A variant's runs are in runs/ now, finished or not.
    if ended {
        app.io(Io::RefreshRuns);
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
            app.io(Io::LoadCurveSoFar {
                arm: *arm,
                run_dir: run_dir.clone(),
                until: *start_iteration,
            });
        }
    }
    let Some(s) = app.live.as_mut() else {
        return;
    };
    // The arms table truncates; the status line has room for the whole reason.
    if let EngineEvent::Failed { arm, reason, .. } = &ev {
        let name = s.arms.get(*arm).map_or("?".to_string(), |a| a.name.clone());
        let over = !s.any_active();
        app.error(format!("arm {name} failed: {reason}"));
        app.last_runs_scan = None;
        if over {
            after_failure(app);
        }
        return;
    }
    if ends {
        // The run store has a new final status to show.
        app.last_runs_scan = None;
        if !s.any_active() {
            let msg = if s.arms.len() == 1 {
                format!("{}: done", s.title)
            } else {
                format!("{}: all arms done", s.title)
            };
            app.info(msg);
            start_next(app);
        }
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
    let rows = app.status.as_ref().map_or(1, |(msg, _)| {
        view::layout::status_rows(msg, w as usize).len() as u16
    });
    let frame = view::layout::frame(ratatui::layout::Rect::new(0, 0, w, h), rows);
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
                    Screen::Editor | Screen::Adaptation | Screen::Embedding | Screen::Affinity => {}
                }
            }
        }
        _ => {}
    }
}
