//! Starting, queueing and confirming: what a launch, a confirmed question and the end of an
//! experiment lead to. Called by the key handlers, the disk actions and `update` alike, and
//! calling none of them.

use crate::engine::messages::Command;
use crate::experiment::parse_str;

use super::app::{App, Effect, Io, Pending, Queued, Screen, Source};
use super::catalog;
use super::session::{ArmStatus, Session};
use super::sweep_view::{SweepMsg, SweepView};
use super::text::{first_line, ordinal, plural};

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
pub fn after_failure(app: &mut App) {
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
pub fn start_next(app: &mut App) {
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
