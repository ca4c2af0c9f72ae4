//! What the Runs pane's keys do: open, mark, compare, rerun, resume, export, delete, filter,
//! sort and annotate runs.

use super::actions;
use super::app::{App, InputFor, Io, Modal, Pending, Screen};
use super::keymap::Action;
use super::store::{sweep_of, RunRow};
use super::text::plural;

pub fn perform(app: &mut App, action: Action) {
    match action {
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
                app.run_sel = (app.run_sel + 1).min(app.runs.len().saturating_sub(1));
            }
        }
        Action::MarkGroup => mark_group(app),
        Action::ClearMarks => {
            let n = app.marked.len();
            app.marked.clear();
            app.info(format!("cleared {}", plural(n, "mark")));
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
        Action::DeleteRun => ask_delete(app),
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
        _ => {}
    }
}

pub fn clear_filter(app: &mut App) {
    app.run_filter = Default::default();
    app.apply_run_view();
    app.info("filter cleared");
}

/// Mark the selected run's sweep, else its experiment: every arm and every seed of it.
fn mark_group(app: &mut App) {
    let Some(r) = app.runs.get(app.run_sel) else {
        return;
    };
    // A sweep's runs, else the experiment's: every arm and every seed of it.
    let sweep = |r: &RunRow| {
        r.variant
            .as_deref()
            .and_then(sweep_of)
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
        plural(ids.len(), "run")
    ));
    app.marked.extend(ids);
}

/// Ask before deleting: the marked runs when the cursor is on one of them, else the run under
/// the cursor, whatever is marked elsewhere. The dialog names every run it will delete.
fn ask_delete(app: &mut App) {
    let on_marked = app
        .runs
        .get(app.run_sel)
        .is_some_and(|r| app.marked.contains(&r.id));
    if on_marked {
        let ids: Vec<String> = app.marked_visible().iter().map(|r| r.id.clone()).collect();
        let shown = 6;
        let mut names: Vec<String> = ids.iter().take(shown).cloned().collect();
        if ids.len() > shown {
            names.push(format!("… and {} more", ids.len() - shown));
        }
        app.modal = Some(Modal::Confirm {
            prompt: format!(
                "Delete these {} and all their files? Runs still training are kept.\n{}",
                plural(ids.len(), "marked run"),
                names.join("\n")
            ),
            then: Pending::DeleteRuns(ids),
        });
        return;
    }
    if let Some(r) = app.runs.get(app.run_sel) {
        let others = app.marked.len();
        let note = if others > 0 {
            format!(
                "\n(only this one: the {} elsewhere stay)",
                plural(others, "marked run")
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
