//! The effects that touch the disk — open, save, create and launch experiments; open,
//! compare, rerun, resume, delete and export runs; rescan folders — carried out by the runtime
//! for the `Effect::Io` that `update` asks for ([`perform`]), never by `update` itself.

use std::time::SystemTime;

use crate::export::{self, ArmCurves};

use super::app::{App, Effect, Io, Level, Modal, Queued, Screen, Source};
use super::catalog;
use super::editor::Editor;
use super::launch;
use super::session::{ArmView, Session};
use super::store::{self, RunRow};
use super::text::{first_line, plural};
use crate::runs::label::Subject;
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
        Io::OpenRuns { rows, screen } => open_runs(app, &rows, screen),
        Io::Rerun => rerun(app),
        Io::Resume => resume(app),
        Io::DeleteRun(id) => delete_run(app, &id),
        Io::DeleteRuns(ids) => delete_runs(app, &ids),
        Io::SaveNotes { dir, text } => save_notes(app, &dir, &text),
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

/// The runs the action applies to: the marked ones, else the selected one.
pub fn chosen_runs(app: &App) -> Vec<RunRow> {
    if app.marked.is_empty() {
        app.runs.get(app.run_sel).cloned().into_iter().collect()
    } else {
        app.runs
            .iter()
            .filter(|r| app.marked.contains(&r.id))
            .cloned()
            .collect()
    }
}

/// Open saved runs in the monitor (one) or the compare screen (several). Runs of one
/// configuration that differ only in seed become one arm: the mean over seeds, banded across
/// them, so a comparison of a seed sweep is one curve per arm.
pub fn open_runs(app: &mut App, rows: &[RunRow], screen: Screen) {
    if rows.is_empty() {
        return app.error("no run selected");
    }
    let names = labels(rows);
    let mut loaded = Vec::new();
    let mut damaged = Vec::new();
    for (r, name) in rows.iter().zip(&names) {
        match store::load_metrics(&r.dir) {
            Ok(m) => {
                // A cut last line is what a run still writing leaves; anything else is damage
                // the curves are drawn without, and the user is told so.
                let damage: Vec<_> = m
                    .damage
                    .iter()
                    .filter(|d| !d.partial || r.status != RunStatus::Running)
                    .collect();
                if let Some(first) = damage.first() {
                    damaged.push(format!(
                        "{}: metrics.jsonl {} ({} damaged line{} left out)",
                        r.id,
                        first,
                        damage.len(),
                        if damage.len() == 1 { "" } else { "s" }
                    ));
                }
                let mut a = ArmView::from_metrics(name, &r.algorithm, &r.status, &m);
                a.run_dir = Some(r.dir.clone());
                a.identity = r.arm.clone();
                a.total = a.total.max(r.total_iterations);
                loaded.push((a, store::load_config(&r.dir).ok()));
            }
            Err(e) => return app.error(e),
        }
    }
    let (arms, configs) = seed_groups(rows, loaded);
    let title = if rows.len() == 1 {
        rows[0].id.clone()
    } else if arms.len() < rows.len() {
        format!("{} runs as {} arms over seeds", rows.len(), arms.len())
    } else {
        format!("{} runs", rows.len())
    };
    let diff = if configs.len() == arms.len() {
        let mut d = super::diff::differing_fields(&configs);
        // An arm over seeds has no one seed: its config stands for all of them.
        if arms.iter().any(|a| a.seeds.len() > 1) {
            d.retain(|(k, _)| k != "seed");
        }
        d
    } else {
        Vec::new()
    };
    app.saved = Some(Session {
        title,
        live: false,
        arms,
        diff,
    });
    app.source = Source::Saved;
    app.arm_sel = 0;
    app.back = Screen::Runs;
    app.screen = screen;
    app.status = None;
    if let Some(first) = damaged.first() {
        let more = match damaged.len() {
            1 => String::new(),
            n => format!("; {} more runs damaged", n - 1),
        };
        app.error(format!("{first}{more}"));
    }
}

/// The loaded runs with each group of seeds (two or more runs whose frozen configs differ in
/// nothing but the seed) merged into one arm labelled by its arm, in the order the first of
/// each appears; and one config per arm (for the diff) when every run had one.
fn seed_groups(
    rows: &[RunRow],
    loaded: Vec<(ArmView, Option<crate::experiment::Experiment>)>,
) -> (Vec<ArmView>, Vec<crate::experiment::Experiment>) {
    let keys: Vec<Option<String>> = loaded
        .iter()
        .zip(rows)
        .map(|((_, c), r)| c.as_ref().map(|c| super::seeds::group_key(c, &r.arm)))
        .collect();
    let mut order: Vec<Vec<usize>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match order.iter_mut().find(|g| k.is_some() && keys[g[0]] == *k) {
            Some(g) => g.push(i),
            None => order.push(vec![i]),
        }
    }
    let mut slots: Vec<Option<(ArmView, Option<crate::experiment::Experiment>)>> =
        loaded.into_iter().map(Some).collect();
    let mut arms = Vec::new();
    let mut configs = Vec::new();
    let grouped: Vec<bool> = order.iter().map(|g| g.len() > 1).collect();
    // A group's label: its arm, with the experiment when the view mixes experiments.
    let group_labels = crate::runs::label::unique(
        &order
            .iter()
            .map(|g| {
                let r = &rows[g[0]];
                Subject::new(
                    &r.experiment,
                    &r.arm,
                    (g.len() == 1).then_some(r.id.as_str()),
                )
            })
            .collect::<Vec<_>>(),
    );
    for ((g, many), label) in order.iter().zip(grouped).zip(group_labels) {
        let mut members: Vec<(u64, ArmView)> = Vec::new();
        let mut config = None;
        for &i in g {
            let (a, c) = slots[i].take().expect("each run in one group");
            let seed = c.as_ref().map_or(0, |c| c.seed);
            config = config.or(c);
            members.push((seed, a));
        }
        if let Some(c) = config {
            configs.push(c);
        }
        if many {
            arms.push(super::seeds::aggregate(&label, members));
        } else {
            arms.push(members.pop().expect("one member").1);
        }
    }
    (arms, configs)
}

/// The runs' names in every view and export of them: one rule, so the Compare view, the Runs
/// pane's export and `metalab export` agree, and a rerun never shares its original's name.
fn labels(rows: &[RunRow]) -> Vec<String> {
    crate::runs::label::unique(&subjects(rows))
}

fn subjects(rows: &[RunRow]) -> Vec<Subject> {
    rows.iter()
        .map(|r| Subject::new(&r.experiment, &r.arm, Some(&r.id)).with_seed(r.seed))
        .collect()
}

pub fn rerun(app: &mut App) {
    let Some(r) = app.runs.get(app.run_sel).cloned() else {
        return app.error("no run selected");
    };
    match store::load_config(&r.dir) {
        Err(e) => app.error(e),
        Ok(exp) => {
            let q = Queued {
                label: format!("rerun of {}", r.id),
                session: Session::for_experiment(&exp),
                effect: Effect::Launch {
                    exp: Box::new(exp),
                    source: None,
                    rerun_of: Some(r.id.clone()),
                },
            };
            launch::start_or_queue(app, q, format!("rerunning {}", r.id));
        }
    }
}

/// Continue the selected run where it stopped (stopped and interrupted runs keep a checkpoint).
pub fn resume(app: &mut App) {
    let Some(r) = app.runs.get(app.run_sel).cloned() else {
        return app.error("no run selected");
    };
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

/// Delete the marked runs; those still training are kept, and the status line says which and
/// why.
pub fn delete_runs(app: &mut App, ids: &[String]) {
    let mut deleted = 0;
    let mut kept: Vec<(String, String)> = vec![];
    for id in ids {
        match store::delete_run(&app.runs_dir, id) {
            Ok(()) => {
                deleted += 1;
                app.marked.remove(id);
            }
            Err(e) => kept.push((id.clone(), first_line(&e).to_string())),
        }
    }
    app.refresh_runs();
    let done = format!("deleted {}", plural(deleted, "run"));
    match kept.as_slice() {
        [] => app.info(done),
        [(_, why)] => app.error(format!("{done}; kept 1: {why}")),
        [(_, why), ..] => app.error(format!(
            "{done}; kept {} (still marked): {why} …",
            kept.len()
        )),
    }
}

fn save_notes(app: &mut App, dir: &std::path::Path, text: &str) {
    let notes = crate::runs::RunNotes::parse(text);
    match store::save_notes(dir, &notes) {
        Ok(()) => {
            app.refresh_runs();
            let id = crate::runs::run_id(dir);
            app.info(if notes.is_empty() {
                format!("cleared the note of {id}")
            } else {
                format!("saved the note of {id}")
            });
        }
        Err(e) => app.error(format!("cannot save the note: {}", first_line(&e))),
    }
}

fn view_config(app: &mut App) {
    let Some(r) = app.runs.get(app.run_sel) else {
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

pub fn delete_run(app: &mut App, id: &str) {
    match store::delete_run(&app.runs_dir, id) {
        Ok(()) => {
            app.marked.remove(id);
            app.refresh_runs();
            app.info(format!("deleted {id}"));
        }
        Err(e) => app.error(e),
    }
}

/// Curves of `rows` to `exports/` as CSV, SVG and PNG, read in full from disk, under a name
/// made from what they are (one run's id, the experiment, or `compare-N-runs`) and the minute.
pub fn export_runs(app: &mut App, rows: &[RunRow]) {
    if rows.is_empty() {
        return app.error("nothing to export");
    }
    let mut curves = Vec::new();
    let mut classification = false;
    for (r, label) in rows.iter().zip(labels(rows)) {
        match store::load_metrics(&r.dir) {
            Ok(m) => {
                classification |= m.classification;
                curves.push(ArmCurves {
                    run: r.id.clone(),
                    label,
                    identity: r.arm.clone(),
                    train: m.train,
                    evals: m.evals,
                    tasks: m.tasks,
                    clock: m.clock,
                    algorithm: r.algorithm.clone(),
                    stopped_at: matches!(r.status, RunStatus::Stopped | RunStatus::Interrupted)
                        .then_some(r.iteration),
                    ways: store::load_config(&r.dir)
                        .ok()
                        .and_then(|c| c.family.episode_shape().0),
                });
            }
            Err(e) => return app.error(e),
        }
    }
    let stem = export::name::stem(&subjects(rows), SystemTime::now());
    match export::write(&app.exports_dir, &stem, &curves, classification) {
        Ok(done) => app.info(done.summary()),
        Err(e) => app.error(format!("export failed: {e}")),
    }
}

pub fn export_chosen(app: &mut App) {
    let rows = chosen_runs(app);
    // Used: marks left behind would make the next d or c act on runs chosen for this.
    app.marked.clear();
    export_runs(app, &rows);
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
                group: None,
                extra: Default::default(),
            })
        })
        .collect();
    if rows.is_empty() {
        return app.error("nothing to export yet: no arm has written its run folder");
    }
    export_runs(app, &rows);
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
