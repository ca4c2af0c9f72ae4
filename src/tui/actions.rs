//! The effects that touch the disk — open, save, create and launch experiments; open,
//! compare, rerun, resume, delete and export runs; rescan folders — carried out by the runtime
//! for the `Effect::Io` that `update` asks for ([`perform`]), never by `update` itself.

use super::app::{App, Effect, Io, Level, Modal, Queued, Screen};
use super::catalog;
use super::editor::Editor;
use super::jobs;
use super::launch;
use super::session::Session;
use super::store::{self, RunRow};
use super::text::first_line;
use super::worker::Job;
use crate::runs::RunStatus;

/// Carry out one piece of disk work and put its outcome in the state.
pub fn perform(app: &mut App, io: Io) {
    match io {
        Io::OpenEditor(path) => open_editor(app, path),
        Io::LaunchFile(path) => launch_file(app, &path),
        Io::NewExperiment { duplicate } => new_experiment(app, duplicate),
        Io::SaveEditor { then_launch } => {
            if save_editor(app) && then_launch {
                launch_editor(app);
            }
        }
        Io::OpenRuns { rows, screen } => {
            if rows.is_empty() {
                return app.error("no run selected");
            }
            jobs::submit(app, Job::Open { rows, screen })
        }
        Io::Rerun => {
            let rows = app.selected_rows();
            if rows.is_empty() {
                return app.error("no run selected");
            }
            // A group's seeds one job each: the first starts, the others queue behind it.
            for row in rows {
                jobs::submit(app, Job::Rerun { row: Box::new(row) });
            }
        }
        Io::Resume => resume_selected(app),
        Io::DeleteRun(id) => delete_runs(app, vec![id]),
        Io::DeleteRuns(ids) => delete_runs(app, ids),
        Io::SaveNotes { dirs, text } => save_notes(app, &dirs, &text),
        Io::ViewConfig => view_config(app),
        Io::DiscardNew(path) => discard_new(app, &path),
        Io::ExportChosen => export_chosen(app),
        Io::ExportSession => export_session(app),
        Io::RefreshRuns => app.refresh_runs(),
        Io::LoadCurveSoFar {
            arm,
            run_dir,
            until,
        } => {
            let m = store::load_metrics(&run_dir);
            if let (Ok(m), Some(a)) = (m, app.live.as_mut().and_then(|s| s.arms.get_mut(arm))) {
                a.load(&m, until);
                a.iteration = until;
            }
        }
        Io::FilesChanged => on_files_changed(app),
    }
}

/// Every disk effect pending, in order, including those they ask for in turn; the engine's
/// effects stay queued for the runtime.
pub fn perform_all(app: &mut App) {
    loop {
        let (io, rest): (Vec<Effect>, Vec<Effect>) = std::mem::take(&mut app.effects)
            .into_iter()
            .partition(|e| matches!(e, Effect::Io(_)));
        app.effects = rest;
        if io.is_empty() {
            return;
        }
        for e in io {
            if let Effect::Io(io) = e {
                perform(app, io);
            }
        }
    }
}

/// The runs the action applies to: the marked ones, else the selected run or group's seeds.
pub fn chosen_runs(app: &App) -> Vec<RunRow> {
    if app.marked.is_empty() {
        app.selected_rows()
    } else {
        app.runs
            .iter()
            .filter(|r| app.marked.contains(&r.id))
            .cloned()
            .collect()
    }
}

/// Delete runs on the worker; those still training are kept, and the status line will say
/// which and why.
fn delete_runs(app: &mut App, ids: Vec<String>) {
    let runs_dir = app.runs_dir.clone();
    jobs::submit(app, Job::Delete { runs_dir, ids });
}

/// Export `rows` on the worker.
fn export_runs(app: &mut App, rows: Vec<RunRow>) {
    if rows.is_empty() {
        return app.error("nothing to export");
    }
    let exports_dir = app.exports_dir.clone();
    jobs::submit(app, Job::Export { rows, exports_dir });
}

/// Continue the selected run, or every seed of the selected group that stopped, where it
/// stopped.
fn resume_selected(app: &mut App) {
    let rows = app.selected_rows();
    match rows.as_slice() {
        [] => app.error("no run selected"),
        [one] => resume(app, one.clone()),
        _ => {
            let (go, rest): (Vec<RunRow>, Vec<RunRow>) = rows
                .into_iter()
                .partition(|r| matches!(r.status, RunStatus::Stopped | RunStatus::Interrupted));
            if go.is_empty() {
                return app.info(format!(
                    "none of its {} stopped: only stopped or interrupted runs resume",
                    super::text::plural(rest.len(), "seed run")
                ));
            }
            for r in go {
                resume(app, r);
            }
        }
    }
}

/// Continue a run where it stopped (stopped and interrupted runs keep a checkpoint).
pub fn resume(app: &mut App, r: RunRow) {
    if !matches!(r.status, RunStatus::Stopped | RunStatus::Interrupted) {
        return app.info(format!(
            "{} is {}: only stopped or interrupted runs resume",
            r.id,
            r.status.label()
        ));
    }
    if app
        .queue
        .iter()
        .any(|q| matches!(&q.effect, Effect::Resume { dir } if *dir == r.dir))
    {
        return app.info(format!("{} is already queued to resume", r.id));
    }
    match store::load_config(&r.dir) {
        Err(e) => app.error(e),
        Ok(exp) => {
            let mut s = Session::for_experiment(&exp);
            s.title = format!("{} (resumed)", r.id);
            let q = Queued {
                label: format!("resume of {}", r.id),
                session: s,
                effect: Effect::Resume { dir: r.dir.clone() },
            };
            launch::start_or_queue(
                app,
                q,
                format!("resuming {} from its last checkpoint", r.id),
            );
        }
    }
}

/// Launch an experiment file; one the catalog found invalid is refused with the very text the
/// details pane shows for it.
fn launch_file(app: &mut App, path: &std::path::Path) {
    if let Some(err) = app
        .experiments
        .iter()
        .find(|e| e.path == path)
        .and_then(|e| e.error.clone())
    {
        return app.error(format!("cannot launch: {}", first_line(&err)));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => launch::launch(app, &text, path),
        Err(e) => app.error(format!("{}: {e}", path.display())),
    }
}

fn save_notes(app: &mut App, dirs: &[std::path::PathBuf], text: &str) {
    let notes = crate::runs::RunNotes::parse(text);
    for dir in dirs {
        if let Err(e) = store::save_notes(dir, &notes) {
            app.refresh_runs();
            return app.error(format!("cannot save the note: {}", first_line(&e)));
        }
    }
    app.refresh_runs();
    let of = match dirs {
        [dir] => crate::runs::run_id(dir),
        _ => super::text::plural(dirs.len(), "run"),
    };
    app.info(if notes.is_empty() {
        format!("cleared the note of {of}")
    } else {
        format!("saved the note of {of}")
    });
}

fn view_config(app: &mut App) {
    // A group's seeds share their config but for the seed: the first one's stands for all.
    let Some(r) = app.selected_rows().into_iter().next() else {
        return app.info("no run selected");
    };
    let id = r.id.clone();
    match store::config_text(&r.dir) {
        Ok(text) => {
            app.modal = Some(Modal::Text {
                title: format!(" frozen config.ron of {id} "),
                text: crate::runs::printable(&text),
                scroll: 0,
            })
        }
        Err(e) => app.error(format!("cannot show the config: {e}")),
    }
}

fn discard_new(app: &mut App, path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => app.info(format!(
            "discarded the new {}",
            catalog::display_path(path).display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => app.error(format!("{}: {e}", path.display())),
    }
    app.refresh_experiments();
}

pub fn export_chosen(app: &mut App) {
    let rows = chosen_runs(app);
    // Used: marks left behind would make the next d or c act on runs chosen for this.
    app.marked.clear();
    export_runs(app, rows);
}

/// Export what the monitor shows, from the run directories its arms write to; each arm is
/// named by its run's own record (experiment, arm, folder id), as the Runs pane would name it.
pub fn export_session(app: &mut App) {
    let Some(s) = app.session() else {
        return app.error("nothing to export");
    };
    let rows: Vec<RunRow> = s
        .arms
        .iter()
        .filter_map(|a| {
            let dir = a.run_dir.clone()?;
            let meta = crate::runs::load_meta(&dir).ok();
            Some(RunRow {
                id: crate::runs::run_id(&dir),
                experiment: meta
                    .as_ref()
                    .map_or(s.title.clone(), |m| m.experiment.clone()),
                arm: meta.as_ref().map_or(a.name.clone(), |m| m.arm.clone()),
                dir,
                algorithm: a.algorithm.clone(),
                status: a.status.run_status(),
                started_unix: 0,
                iteration: a.iteration,
                total_iterations: a.total,
                headline: None,
                seed: meta.as_ref().map(|m| m.seed),
                variant: None,
                seed_key: None,
                extra: Default::default(),
            })
        })
        .collect();
    if rows.is_empty() {
        return app.error("nothing to export yet: no arm has written its run folder");
    }
    export_runs(app, rows);
}

fn open_editor(app: &mut App, path: std::path::PathBuf) {
    // Only regular files: opening a FIFO would wait for a writer, forever.
    if let Ok(m) = std::fs::metadata(&path) {
        if !m.is_file() {
            return app.error(format!(
                "{}: not a regular file; experiment files are RON text",
                catalog::display_path(&path).display()
            ));
        }
    }
    match crate::experiment::read_text(&path) {
        Ok(text) => {
            let mut ed = Editor::open(path, &text);
            // A broken file is opened to be fixed: start where the problem is.
            ed.jump_to_error();
            app.editor = Some(ed);
            app.screen = Screen::Editor;
            app.status = None;
        }
        Err(e) => app.error(e.to_string()),
    }
}

fn new_experiment(app: &mut App, duplicate: bool) {
    let (stem, text) = if duplicate {
        let Some(e) = app.experiments.get(app.exp_sel) else {
            return app.error("nothing to duplicate");
        };
        let Some(text) = e.text.as_deref().map(str::to_string) else {
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
    app.refresh_experiments_selecting(&path);
    open_editor(app, path);
    if let Some(ed) = app.editor.as_mut() {
        // Until the user saves it, the file is ours: leaving without saving removes it.
        ed.created = true;
    }
}

/// Write the buffer and say how it went; false when nothing was written.
fn save_editor(app: &mut App) -> bool {
    let Some(ed) = app.editor.as_mut() else {
        return false;
    };
    ed.validate();
    if let Err(e) = ed.save() {
        let msg = format!("cannot save {}: {e}", ed.path.display());
        app.error(msg);
        return false;
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
    true
}

/// Launch the editor's buffer if it has no error; else say why not, in the words the
/// validation pane uses.
fn launch_editor(app: &mut App) {
    let Some(ed) = app.editor.as_ref() else {
        return;
    };
    let (text, path) = (ed.text(), ed.path.clone());
    if catalog::is_sweep_file(&path)
        && !matches!(
            &ed.validation,
            Some(super::editor::Validation::Invalid { .. })
        )
    {
        return launch::start_sweep(app, &path);
    }
    match &ed.validation {
        Some(super::editor::Validation::Invalid { message, .. }) => {
            let msg = format!(
                "saved {}, not launched: {}",
                ed.file_name(),
                first_line(message)
            );
            app.error(msg);
        }
        _ => launch::launch(app, &text, &path),
    }
}

/// Watched folder changed: list it again; the listing reconciles the open buffer with the disk
/// when it arrives ([`App::apply_catalog`]).
fn on_files_changed(app: &mut App) {
    app.refresh_experiments();
}
