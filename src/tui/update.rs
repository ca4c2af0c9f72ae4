//! `update(&mut App, Msg)`: the only place UI state changes in answer to input and engine
//! events. It touches no files: disk work goes out as `Effect::Io` (see `actions`).

use std::time::Duration;

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use crate::engine::messages::{Command, EngineEvent};
use crate::experiment::parse_str;

use super::app::{App, Effect, Io, Modal, Msg, Pending, Queued, Screen, Source};
use super::catalog;
use super::editor::VALIDATE_AFTER;
use super::scanner::Scanned;
use super::session::{ArmStatus, Session};
use super::sweep_view::{SweepMsg, SweepView};
use super::{keys, view};

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

/// Run a sweep file on the local queue, unless one runs already.
pub fn start_sweep(app: &mut App, path: &std::path::Path) {
    if let Some(sw) = app.sweep.as_ref().filter(|s| s.running()) {
        return app.error(format!(
            "sweep {} is running; one sweep at a time (q stops it)",
            sw.name
        ));
    }
    let mut sw = SweepView::new(path.to_path_buf());
    // What the list read of it, until the sweep's thread has loaded it again.
    if let Some(e) = app.experiments.iter().find(|e| e.path == path) {
        sw.apply(SweepMsg::Loaded {
            name: e.name.clone(),
            labels: e.arms.clone(),
        });
    }
    app.info(format!(
        "sweep {}: starting its variants on the local queue, one at a time (progress in details)",
        sw.name
    ));
    app.sweep = Some(sw);
    app.effects.push(Effect::StartSweep(path.to_path_buf()));
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
                    Screen::Editor | Screen::Adaptation => {}
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
            let who = match arm {
                Some(i) => app
                    .live
                    .as_ref()
                    .and_then(|s| s.arms.get(i))
                    .map_or("the arm".to_string(), |a| format!("arm {}", a.name)),
                None => "all arms".to_string(),
            };
            let next = if app.queue.is_empty() {
                String::new()
            } else {
                "; the next queued experiment starts when all have ended".to_string()
            };
            app.info(format!(
                "stopping {who}: it checkpoints, then ends as stopped (R in Runs resumes){next}"
            ));
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
        Pending::DeleteRun(id) => app.io(Io::DeleteRun(id)),
        Pending::DeleteRuns(ids) => app.io(Io::DeleteRuns(ids)),
        Pending::DiscardEdits => discard_editor(app),
        Pending::Quit => {
            app.queue.clear();
            if app.sweeping() {
                app.effects.push(Effect::StopSweep);
            }
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

/// Leave the editor without saving; a file the workbench created for it and the user never
/// saved goes too, so "discard" leaves nothing behind.
pub fn discard_editor(app: &mut App) {
    if let Some(ed) = app.editor.take() {
        if ed.created {
            app.io(Io::DiscardNew(ed.path.clone()));
        }
    }
    app.screen = Screen::Experiments;
}

/// `n arm` / `n arms`, and so on: one place for plurals.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// 1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Start training `exp` in the background and switch to the monitor, or queue it behind the
/// experiment that is training.
pub fn launch(app: &mut App, text: &str, path: &std::path::Path) {
    match parse_str(text, &catalog::display_path(path)) {
        Err(e) => app.error(format!("cannot launch: {}", first_line(&e.to_string()))),
        Ok(exp) => {
            let what = format!("{} ({})", exp.name, plural(exp.arms.len(), "arm"));
            let q = Queued {
                label: exp.name.clone(),
                session: Session::for_experiment(&exp),
                effect: Effect::Launch {
                    exp: Box::new(exp),
                    source: Some(path.to_path_buf()),
                    rerun_of: None,
                },
            };
            start_or_queue(app, q, format!("launched {what}"));
        }
    }
}

/// The first line of a (multi-line) error: what the status line has room for.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Start `q` now and show it in the monitor, or, while an experiment trains, put it in the
/// queue and say where it stands.
pub fn start_or_queue(app: &mut App, q: Queued, started: String) {
    if app.training() {
        let label = q.label.clone();
        app.queue.push_back(q);
        // The one training is 1st.
        let place = ordinal(app.queue.len() + 1);
        return app.info(format!(
            "queued ({place}): {label} starts when the current experiment finishes"
        ));
    }
    app.back = match app.screen {
        Screen::Editor => Screen::Experiments,
        Screen::Runs => Screen::Runs,
        _ => Screen::Experiments,
    };
    app.screen = Screen::Monitor;
    start(app, q);
    app.info(started);
}

fn start(app: &mut App, q: Queued) {
    app.live = Some(q.session);
    app.source = Source::Live;
    app.arm_sel = 0;
    app.effects.push(q.effect);
}

/// A failure ended the experiment: the queue goes on, and the status line keeps the failure.
fn after_failure(app: &mut App) {
    let Some(failure) = app.status.clone() else {
        return start_next(app);
    };
    if app.training() || app.queue.is_empty() {
        return;
    }
    start_next(app);
    let started = app.status.take().map(|(m, _)| m).unwrap_or_default();
    app.error(format!("{} · {started}", failure.0));
}

/// The experiment training ended: start the next queued one, if any.
fn start_next(app: &mut App) {
    let Some(q) = app.queue.pop_front() else {
        return;
    };
    let label = q.label.clone();
    // Someone reading a saved run keeps it on screen; v shows the new live one.
    let keep_saved = app.source == Source::Saved && app.saved.is_some();
    start(app, q);
    if keep_saved {
        app.source = Source::Saved;
    }
    let left = match app.queue.len() {
        0 => String::new(),
        n => format!(" ({} still queued)", n),
    };
    app.info(format!("started queued {label}{left}"));
}
