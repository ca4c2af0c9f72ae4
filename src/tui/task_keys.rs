//! What the task views' keys do: open the embedding scatter or the affinity heatmap (from the
//! Monitor or Compare for the selected arm, from Runs for the selected run), switch between
//! them, cycle the scatter's colouring and the heatmap's measure, and leave.

use super::app::{App, Io, Screen};
use super::keymap::Action;

pub fn perform(app: &mut App, action: Action) {
    match action {
        Action::ShowEmbedding => open(app, Screen::Embedding),
        Action::ShowAffinity => open(app, Screen::Affinity),
        Action::LeaveTaskView => app.screen = app.task_views.from,
        Action::CycleColouring => {
            let Some(r) = selected(app).and_then(|a| a.embeddings.as_ref()) else {
                return app.info(
                    "no task embeddings to colour: CAVIA arms record them at each evaluation",
                );
            };
            let kinds = r.colourings();
            if kinds.is_empty() {
                return app.info("these tasks have no known parameters or groups to colour by");
            }
            let next = (app.task_views.colour + 1) % kinds.len();
            let name = kinds[next].name(r);
            app.task_views.colour = next;
            app.info(format!("colour: {name}"));
        }
        Action::SwitchMeasure => {
            app.task_views.measure = app.task_views.measure.next();
            let name = app.task_views.measure.name();
            app.info(format!("heatmap: {name}"));
        }
        _ => {}
    }
}

/// Open a task view: from Runs the selected run is read first (on the worker), from the
/// charts the selected arm is shown at once; between the two views the origin is kept.
fn open(app: &mut App, screen: Screen) {
    match app.screen {
        Screen::Runs => {
            let Some(row) = app.selected_run().cloned() else {
                return app.info("select one run (a group's seeds: → lists them)");
            };
            app.task_views.from = Screen::Runs;
            app.io(Io::OpenRuns {
                rows: vec![row],
                screen,
            });
        }
        Screen::Embedding | Screen::Affinity => app.screen = screen,
        from => {
            if app.session().is_none() {
                return app.info("nothing to show yet: launch an experiment (r) or open a run");
            }
            app.task_views.from = from;
            app.screen = screen;
        }
    }
}

fn selected(app: &App) -> Option<&super::session::ArmView> {
    let s = app.session()?;
    s.arms.get(app.arm_sel.min(s.arms.len().saturating_sub(1)))
}
