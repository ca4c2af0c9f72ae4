//! Runs-browser actions: open, compare, rerun, delete, export. File work only; no drawing.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::export::{self, ArmCurves};

use super::app::{App, Effect, Screen, Source};
use super::backend::{self, RunRow};
use super::session::{ArmView, Session};
use crate::runs::RunStatus;

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

/// Open saved runs in the monitor (one) or the compare screen (several).
pub fn open_runs(app: &mut App, rows: &[RunRow], screen: Screen) {
    if rows.is_empty() {
        return app.error("no run selected");
    }
    let mut arms = Vec::new();
    let mut configs = Vec::new();
    for r in rows {
        match backend::load_metrics(&r.dir) {
            Ok(m) => {
                let mut a =
                    ArmView::from_metrics(&label(r, rows.len()), &r.algorithm, &r.status, &m);
                a.run_dir = Some(r.dir.clone());
                a.total = a.total.max(r.total_iterations);
                arms.push(a);
            }
            Err(e) => return app.error(e),
        }
        if let Ok(c) = backend::load_config(&r.dir) {
            configs.push(c);
        }
    }
    let title = if rows.len() == 1 {
        rows[0].id.clone()
    } else {
        format!("{} runs", rows.len())
    };
    let diff = if configs.len() == rows.len() {
        super::diff::differing_fields(&configs)
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
}

/// Runs from different experiments can share arm names: qualify them when comparing.
fn label(r: &RunRow, n: usize) -> String {
    if n == 1 {
        r.arm.clone()
    } else {
        format!("{}/{}", r.experiment, r.arm)
    }
}

pub fn rerun(app: &mut App) {
    let Some(r) = app.runs.get(app.run_sel).cloned() else {
        return app.error("no run selected");
    };
    if app.training() {
        return app.error("an experiment is already training: stop it before a rerun");
    }
    match backend::load_config(&r.dir) {
        Err(e) => app.error(e),
        Ok(exp) => {
            app.live = Some(Session::for_experiment(&exp));
            app.source = Source::Live;
            app.arm_sel = 0;
            app.back = Screen::Runs;
            app.screen = Screen::Monitor;
            app.info(format!("rerunning {}", r.id));
            app.effects.push(Effect::Launch {
                exp: Box::new(exp),
                source: None,
            });
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
    if app.training() {
        return app.error("an experiment is already training: stop it before resuming another");
    }
    match backend::load_config(&r.dir) {
        Err(e) => app.error(e),
        Ok(exp) => {
            let mut s = Session::for_experiment(&exp);
            s.title = format!("{} (resumed)", r.id);
            app.live = Some(s);
            app.source = Source::Live;
            app.arm_sel = 0;
            app.back = Screen::Runs;
            app.screen = Screen::Monitor;
            app.info(format!("resuming {} from its last checkpoint", r.id));
            app.effects.push(Effect::Resume { dir: r.dir.clone() });
        }
    }
}

pub fn delete_run(app: &mut App, id: &str) {
    match backend::delete_run(&app.runs_dir, id) {
        Ok(()) => {
            app.marked.remove(id);
            app.refresh_runs();
            app.info(format!("deleted {id}"));
        }
        Err(e) => app.error(e),
    }
}

/// Curves of the chosen runs to `exports/<stem>.csv` and `.svg`, read in full from disk.
pub fn export_runs(app: &mut App, rows: &[RunRow], stem: &str) {
    if rows.is_empty() {
        return app.error("nothing to export");
    }
    let mut curves = Vec::new();
    let mut classification = false;
    for r in rows {
        match backend::load_metrics(&r.dir) {
            Ok(m) => {
                classification |= m.classification;
                curves.push(ArmCurves {
                    label: label(r, rows.len()),
                    train: m.train,
                    evals: m.evals,
                    tasks: m.tasks,
                });
            }
            Err(e) => return app.error(e),
        }
    }
    match export::write(&app.exports_dir, stem, &curves, classification) {
        Ok((csv, svg)) => app.info(format!("exported {} and {}", csv.display(), svg.display())),
        Err(e) => app.error(format!("export failed: {e}")),
    }
}

pub fn export_chosen(app: &mut App) {
    let rows = chosen_runs(app);
    let stem = match rows.as_slice() {
        [one] => one.id.clone(),
        _ => format!("compare-{}", now_unix()),
    };
    export_runs(app, &rows, &stem);
}

/// Export what the monitor shows, from the run directories its arms write to.
pub fn export_session(app: &mut App) {
    let Some(s) = app.session() else {
        return app.error("nothing to export");
    };
    let rows: Vec<RunRow> = s
        .arms
        .iter()
        .filter_map(|a| {
            Some(RunRow {
                id: a.name.clone(),
                dir: a.run_dir.clone()?,
                experiment: s.title.clone(),
                arm: a.name.clone(),
                algorithm: a.algorithm.clone(),
                status: a.status.run_status(),
                started_unix: 0,
                iteration: a.iteration,
                total_iterations: a.total,
                headline: None,
            })
        })
        .collect();
    let stem = format!("{}-{}", sanitize(&s.title), now_unix());
    export_runs(app, &rows, &stem);
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
