//! What the Runs pane's keys do: open, mark, compare, rerun, resume, export, delete, filter,
//! sort and annotate runs; open and close groups of seeds. On a group's row every action acts
//! on all its seeds.

use super::actions;
use super::app::{App, InputFor, Io, Modal, Pending, Screen};
use super::keymap::Action;
use super::run_groups::RunItem;
use super::store::{sweep_of, RunRow};
use super::text::plural;

pub fn perform(app: &mut App, action: Action) {
    match action {
        Action::OpenRun => match app.selected_item() {
            Some(RunItem::Group(g)) => {
                let (key, open) = (g.key.clone(), g.expanded);
                set_open(app, key, !open)
            }
            _ => {
                let rows: Vec<_> = app.selected_run().cloned().into_iter().collect();
                app.io(Io::OpenRuns {
                    rows,
                    screen: Screen::Monitor,
                })
            }
        },
        Action::ExpandGroup => {
            if let Some(RunItem::Group(g)) = app.selected_item() {
                let key = g.key.clone();
                set_open(app, key, true)
            }
        }
        Action::CollapseGroup => collapse(app),
        Action::MarkRun => {
            let ids: Vec<String> = app.selected_rows().into_iter().map(|r| r.id).collect();
            if ids.iter().all(|id| app.marked.contains(id)) {
                for id in &ids {
                    app.marked.remove(id);
                }
            } else {
                app.marked.extend(ids);
            }
            app.run_sel = (app.run_sel + 1).min(app.run_items.len().saturating_sub(1));
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
        Action::EditNotes => edit_notes(app),
        Action::ViewConfig => app.io(Io::ViewConfig),
        _ => {}
    }
}

/// Open or close the group of seeds `key`; its row stays selected.
fn set_open(app: &mut App, key: String, open: bool) {
    if open {
        app.expanded.insert(key);
    } else {
        app.expanded.remove(&key);
    }
    app.apply_run_view();
}

/// ←: close the selected group, or the group the selected seed belongs to.
fn collapse(app: &mut App) {
    let key = match app.selected_item() {
        Some(RunItem::Group(g)) if g.expanded => g.key.clone(),
        Some(RunItem::Run {
            member: Some(_),
            row,
        }) => match app.runs[*row].seed_key.clone() {
            Some(k) => k,
            None => return,
        },
        _ => return,
    };
    app.expanded.remove(&key);
    // Select the group's row, not the seed that disappears.
    let at = app.run_items.iter().position(|it| match it {
        RunItem::Group(g) => g.key == key,
        RunItem::Run { .. } => false,
    });
    if let Some(i) = at {
        app.run_sel = i;
    }
    app.apply_run_view();
}

/// `t`: the note and tags of the selected run, or of every seed of the selected group.
fn edit_notes(app: &mut App) {
    let rows = app.selected_rows();
    let Some(first) = rows.first() else {
        return app.info("no run selected");
    };
    let same = rows.iter().all(|r| r.extra.notes == first.extra.notes);
    let prompt = if rows.len() == 1 {
        format!("Note for {} (#word makes a tag; empty clears)", first.id)
    } else {
        format!(
            "Note for all {} of {} (#word makes a tag; empty clears)",
            plural(rows.len(), "seed run"),
            first.arm
        )
    };
    app.modal = Some(Modal::Input {
        prompt,
        // Different notes are not merged: the field starts empty and replaces them all.
        text: if same {
            first.extra.notes.to_input()
        } else {
            String::new()
        },
        then: InputFor::Notes {
            dirs: rows.iter().map(|r| r.dir.clone()).collect(),
        },
    });
}

pub fn clear_filter(app: &mut App) {
    app.run_filter = Default::default();
    app.apply_run_view();
    app.info("filter cleared");
}

/// Mark the selected run's sweep, else its experiment: every arm and every seed of it.
fn mark_group(app: &mut App) {
    let Some(r) = app.selected_rows().into_iter().next() else {
        return;
    };
    // A sweep's runs, else the experiment's: every arm and every seed of it.
    let sweep = |r: &RunRow| {
        r.variant
            .as_deref()
            .and_then(sweep_of)
            .map(|(s, _)| s.to_string())
    };
    let (key, exp) = (sweep(&r), r.experiment.clone());
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

/// Ask before deleting: a group's seeds on its row; the marked runs when the cursor is on one
/// of them; else the run under the cursor, whatever is marked elsewhere. The dialog names
/// every run it will delete, and only `y` confirms.
fn ask_delete(app: &mut App) {
    let others = |app: &App, ids: &[String]| {
        let n = app.marked.iter().filter(|m| !ids.contains(m)).count();
        if n > 0 {
            format!(
                "\n(only these: the {} elsewhere stay)",
                plural(n, "marked run")
            )
        } else {
            String::new()
        }
    };
    if let Some(RunItem::Group(_)) = app.selected_item() {
        let rows = app.selected_rows();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        // Every seed by name: the dialog is what `y` deletes, nothing more.
        let names: Vec<String> = rows
            .iter()
            .map(|r| {
                let seed = r.seed.map_or("s?".into(), |s| format!("s{s}"));
                format!("{seed:<4} {}", r.id)
            })
            .collect();
        app.modal = Some(Modal::Confirm {
            prompt: format!(
                "Delete all {} of {} and all their files? Runs still training are kept.{}\n{}",
                plural(ids.len(), "seed run"),
                rows[0].arm,
                others(app, &ids),
                names.join("\n")
            ),
            then: Pending::DeleteRuns(ids),
        });
        return;
    }
    let on_marked = app
        .selected_run()
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
    if let Some(r) = app.selected_run() {
        let id = r.id.clone();
        let note = others(app, std::slice::from_ref(&id)).replace("these", "this one");
        app.modal = Some(Modal::Confirm {
            prompt: format!("Delete run {id} and all its files?{note}"),
            then: Pending::DeleteRun(id),
        });
    }
}
