//! Actions on runs handed to the worker ([`super::worker`]) and what their outcome does to
//! the state: the session opened, the status line's report, the rerun launched.

use crate::runs::label::Subject;
use crate::runs::RunStatus;

use super::app::{App, Effect, Queued, Screen, Source};
use super::launch;
use super::session::{ArmView, Session};
use super::store::RunRow;
use super::text::plural;
use super::worker::{self, labels, Done, Job, Loaded};

/// Hand `job` to the worker and say so in the status line; without a worker, do it here.
pub fn submit(app: &mut App, job: Job) {
    match app.worker.as_ref() {
        Some(w) => {
            let doing = job.doing();
            w.send(job);
            app.jobs += 1;
            app.info(doing);
        }
        None => finish(app, worker::run(job)),
    }
}

/// A job's outcome arrived from the worker.
pub fn done(app: &mut App, d: Done) {
    app.jobs = app.jobs.saturating_sub(1);
    finish(app, d);
}

fn finish(app: &mut App, d: Done) {
    match d {
        Done::Opened {
            rows,
            screen,
            loaded,
        } => show_runs(app, &rows, screen, loaded),
        Done::Exported(Ok(summary)) => app.info(summary),
        Done::Exported(Err(e)) => app.error(e),
        Done::Deleted { deleted, kept } => deleted_runs(app, &deleted, &kept),
        Done::Rerun { row, config } => rerun(app, &row, *config),
    }
}

/// Say what was deleted and what kept (still marked), and list the folder again.
fn deleted_runs(app: &mut App, deleted: &[String], kept: &[(String, String)]) {
    for id in deleted {
        app.marked.remove(id);
    }
    app.refresh_runs();
    let done = format!("deleted {}", plural(deleted.len(), "run"));
    match kept {
        [] if deleted.len() == 1 => app.info(format!("deleted {}", deleted[0])),
        [] => app.info(done),
        [(_, why)] => app.error(format!("{done}; kept 1: {why}")),
        [(_, why), ..] => app.error(format!(
            "{done}; kept {} (still marked): {why} …",
            kept.len()
        )),
    }
}

fn rerun(app: &mut App, r: &RunRow, config: Result<crate::experiment::Experiment, String>) {
    match config {
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

/// Open saved runs in the monitor (one) or the compare screen (several). Runs of one
/// configuration that differ only in seed become one arm: the mean over seeds, banded across
/// them, so a comparison of a seed sweep is one curve per arm.
fn show_runs(app: &mut App, rows: &[RunRow], screen: Screen, loaded: Vec<Loaded>) {
    let names = labels(rows);
    let mut arms_loaded = Vec::new();
    let mut damaged = Vec::new();
    for ((r, name), l) in rows.iter().zip(&names).zip(loaded) {
        match l.metrics {
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
                if let Some(c) = &l.config {
                    a.group_names = crate::runs::embeddings::group_names(&c.family);
                }
                a.identity = r.arm.clone();
                a.total = a.total.max(r.total_iterations);
                arms_loaded.push((a, l.config));
            }
            Err(e) => return app.error(e),
        }
    }
    let (arms, configs) = seed_groups(rows, arms_loaded);
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
        .map(|((_, c), r)| c.as_ref().map(|c| super::store::seed_group_key(c, &r.arm)))
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
