//! What the Monitor's and the Adaptation screen's keys do: pause, stop, switch source and
//! panels, export the session, pick a tracked task.

use crate::engine::messages::Command;

use super::app::{step, App, Effect, Io, Modal, Pending, Screen, Source};
use super::keymap::Action;
use super::session::ArmStatus;

pub fn perform(app: &mut App, action: Action) {
    let live = app.session().is_some_and(|s| s.live);
    match action {
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
        Action::ShowAdaptation => {
            app.adaptation.from = app.screen;
            app.screen = Screen::Adaptation;
        }
        Action::LeaveAdaptation => app.screen = app.adaptation.from,
        Action::SelectTask(by) => {
            let n = app
                .session()
                .and_then(|s| s.arms.get(app.arm_sel))
                .map_or(0, |a| a.tracked_views());
            if n == 0 {
                app.info("no tracked-task results yet: each evaluation records them");
            }
            app.adaptation.task = step(app.adaptation.task, n, by);
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
