//! `metalab sweep`: run a sweep's variants as a local queue, submit them as a Slurm array job,
//! report their state, or (as a queue child or Slurm task) run one variant.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use metalab::engine::{EngineEvent, LaunchOptions, Prepared};
use metalab::sweep::{self, aggregate, queue, slurm, ArmPlan, Sweep};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The sweep file (RON: a base experiment and the axes to vary).
    file: PathBuf,
    /// Variants at once (local queue), or the most array tasks at once (Slurm).
    #[arg(long)]
    jobs: Option<usize>,
    /// Folder for run directories (shared by every machine of a Slurm job).
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Threads in all, split between the concurrent variants (default: all cores). For a Slurm
    /// task or queue child: its own threads (0 = all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Omniglot folder, overriding the experiments' `root`.
    #[arg(long, env = "METALAB_OMNIGLOT")]
    data: Option<PathBuf>,
    /// Print each variant's state (from the run directories and, where present, squeue/sacct)
    /// and the results aggregated over seeds; run nothing.
    #[arg(long)]
    status: bool,
    /// Write an sbatch array script (task i runs variant i) and submit it.
    #[arg(long)]
    slurm: bool,
    /// With --slurm: write the script but do not submit it.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// With --slurm: the time limit, e.g. 02:00:00.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<usize>,
    #[arg(long, requires = "slurm")]
    gpus: Option<usize>,
    /// With --slurm: seconds of warning before the time limit, to checkpoint and requeue.
    #[arg(long, requires = "slurm", default_value_t = 120)]
    grace: usize,
    /// Run only variant I (what each queue child and Slurm array task does).
    #[arg(long, hide = true)]
    task: Option<usize>,
    /// Print machine-readable progress lines on stdout (for the local queue).
    #[arg(long, hide = true)]
    progress_lines: bool,
}

impl SweepArgs {
    /// Does this invocation train (the queue, or one variant), rather than only print?
    pub fn trains(&self) -> bool {
        !self.status && !self.slurm
    }
}

pub fn sweep(a: SweepArgs) -> Result<ExitCode> {
    let sw = sweep::load(&a.file)?;
    let runs = std::path::absolute(&a.runs).unwrap_or(a.runs.clone());
    if let Some(i) = a.task {
        return task(&sw, i, &runs, a.threads, a.data.clone(), a.progress_lines);
    }
    if a.status {
        status(&sw, &runs);
        return Ok(ExitCode::SUCCESS);
    }
    sweep::write_manifest(&sw, &runs)
        .with_context(|| format!("writing the sweep's folder in {}", runs.display()))?;
    let exe = std::env::current_exe().context("finding the metalab binary")?;
    if a.slurm {
        return submit(&sw, &runs, &exe, &a);
    }
    let interrupts = Arc::new(AtomicUsize::new(0));
    {
        let interrupts = Arc::clone(&interrupts);
        let mut first: Option<Instant> = None;
        let _ = metalab::signals::on_termination(move || {
            // One notice delivered twice (to the sweep and its group) is not a second one,
            // which would kill the variants before their checkpoint.
            match first {
                Some(t) if t.elapsed() < metalab::signals::SAME_SIGNAL => return,
                None => first = Some(Instant::now()),
                Some(_) => {}
            }
            let n = interrupts.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                say!("\nmetalab sweep: stopping every running variant at a checkpoint (again to kill them)…");
            }
        });
    }
    let threads = a.threads.filter(|t| *t > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let report = queue::run(
        &sw,
        &queue::QueueOptions {
            exe,
            runs_root: runs.clone(),
            jobs: a.jobs.unwrap_or(1),
            threads,
            data: a.data.clone(),
            output: if std::io::stderr().is_terminal() {
                queue::Output::Bars
            } else {
                queue::Output::Lines
            },
            interrupts,
        },
    )?;
    out!(
        "sweep {}: {} finished now, {} already finished, {} stopped, {} failed{}",
        sw.spec.name,
        report.finished.len(),
        report.skipped_finished.len(),
        report.stopped.len(),
        report.failed.len(),
        if report.busy.is_empty() {
            String::new()
        } else {
            format!(", {} running elsewhere", report.busy.len())
        }
    );
    for (name, why) in &report.failed {
        out!("  FAILED {name}: {why}");
    }
    if !report.stopped.is_empty() {
        out!(
            "  re-run `metalab sweep {}` to resume the stopped variants",
            a.file.display()
        );
    }
    outp!(
        "{}",
        aggregate::table(&aggregate::group(&sweep_runs(&sw, &runs)))
    );
    Ok(if !report.failed.is_empty() {
        ExitCode::from(1)
    } else if report.interrupted || !report.stopped.is_empty() {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Finished runs of this sweep's variants.
pub fn sweep_runs(sw: &Sweep, runs: &Path) -> Vec<aggregate::LoadedRun> {
    let names: std::collections::BTreeSet<&str> =
        sw.variants.iter().map(|v| v.name.as_str()).collect();
    aggregate::load_finished(runs)
        .into_iter()
        .filter(|r| r.meta.variant.as_deref().is_some_and(|v| names.contains(v)))
        .collect()
}

fn status(sw: &Sweep, runs: &Path) {
    out!(
        "sweep {}: {} variants of {} (runs in {})",
        sw.spec.name,
        sw.variants.len(),
        sw.base_path.display(),
        runs.display()
    );
    let w = sw
        .variants
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    out!(
        "{:>4}  {:<w$}  {:<9}  {:<40}  OVERRIDES",
        "#",
        "VARIANT",
        "STATE",
        "ARMS"
    );
    let mut counts = std::collections::BTreeMap::new();
    for v in &sw.variants {
        let arms = sweep::plan(runs, v, false);
        let st = sweep::status_of(&arms);
        *counts.entry(st.label()).or_insert(0) += 1;
        let parts: Vec<String> = arms
            .iter()
            .map(|a| {
                let s = match &a.plan {
                    ArmPlan::Fresh => "pending".to_string(),
                    ArmPlan::Finished(_) => "done".into(),
                    ArmPlan::Resume(_) | ArmPlan::Restart(_) => {
                        format!("{}/{}", a.iteration, a.total)
                    }
                    ArmPlan::Running { host, .. } => {
                        format!("running@{host} {}/{}", a.iteration, a.total)
                    }
                    ArmPlan::Failed { .. } => "FAILED".into(),
                };
                format!("{} {s}", a.arm)
            })
            .collect();
        out!(
            "{:>4}  {:<w$}  {:<9}  {:<40}  {}",
            v.index,
            v.name,
            st.label(),
            parts.join(", "),
            v.label()
        );
        for a in &arms {
            if let ArmPlan::Failed { reason, dir } = &a.plan {
                // run.json's text, which may come from anywhere: no escape sequences.
                out!(
                    "{:>4}  {:<w$}  {} failed: {} ({})",
                    "",
                    "",
                    a.arm,
                    metalab::runs::printable(reason),
                    dir.display()
                );
            }
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out!("{}", summary.join(", "));
    for job in slurm::recorded_jobs(sw, runs) {
        match slurm::task_states(&job) {
            Some(st) => {
                let s: Vec<String> = st.tasks.iter().map(|(i, s)| format!("{i} {s}")).collect();
                let live = if s.is_empty() {
                    "no task in squeue (the job has ended)".to_string()
                } else {
                    s.join(", ")
                };
                let note = st
                    .sacct_note
                    .map(|n| format!("; sacct: {n}"))
                    .unwrap_or_default();
                out!("slurm job {job}: {live}{note}");
            }
            None => out!("slurm job {job}: squeue/sacct are not available here"),
        }
    }
    out!();
    outp!(
        "{}",
        aggregate::table(&aggregate::group(&sweep_runs(sw, runs)))
    );
}

fn submit(sw: &Sweep, runs: &Path, exe: &Path, a: &SweepArgs) -> Result<ExitCode> {
    let todo: Vec<usize> = sw
        .variants
        .iter()
        .filter(|v| {
            sweep::status_of(&sweep::plan(runs, v, false)) != sweep::VariantStatus::Finished
        })
        .map(|v| v.index)
        .collect();
    if todo.is_empty() {
        out!(
            "sweep {}: all {} variants already finished; nothing to submit",
            sw.spec.name,
            sw.variants.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let opts = slurm::SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        cpus_per_task: a.cpus_per_task,
        gpus: a.gpus,
        max_parallel: a.jobs,
        grace_seconds: a.grace,
    };
    let text = slurm::script(sw, &todo, exe, runs, a.data.as_deref(), &opts);
    let path = slurm::script_path(sw, runs);
    slurm::write_script(&path, &text)?;
    out!("{}", path.display());
    if a.dry_run {
        say!(
            "metalab sweep: wrote the array script for {} of {} variants (not submitted: --dry-run)\n  submit it with: sbatch {}",
            todo.len(),
            sw.variants.len(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let id = slurm::submit(&path)?;
    slurm::record_job(sw, runs, &id).with_context(|| format!("recording job {id}"))?;
    say!(
        "metalab sweep: submitted {} array tasks; follow them with `metalab sweep {} --status --runs {}`",
        todo.len(),
        a.file.display(),
        runs.display()
    );
    out!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// Run (or resume) one variant: what a queue child and a Slurm array task do.
fn task(
    sw: &Sweep,
    index: usize,
    runs: &Path,
    threads: Option<usize>,
    data: Option<PathBuf>,
    progress_lines: bool,
) -> Result<ExitCode> {
    let v = sw.variants.get(index).with_context(|| {
        format!(
            "the sweep has {} variants (0..{}), not variant {index}",
            sw.variants.len(),
            sw.variants.len()
        )
    })?;
    let claim_file = sweep::claim_path(sw, runs, v);
    let Some(_claim) = sweep::claim(&claim_file)
        .with_context(|| format!("claiming variant {index} ({})", claim_file.display()))?
    else {
        let who = metalab::runs::holder(&claim_file)
            .map(|p| format!("process {p}"))
            .unwrap_or_else(|| "it".into());
        say!(
            "metalab sweep: variant {index} {} is being run by another process ({who} holds {}); nothing to do here",
            v.name,
            claim_file.display()
        );
        return Ok(ExitCode::from(sweep::EXIT_CLAIMED));
    };
    let stop = stop_counter();
    say!(
        "metalab sweep: variant {index} {} ({}) on {}",
        v.name,
        v.label(),
        metalab::runs::local_host()
    );
    let lo = LaunchOptions {
        runs_root: runs.to_path_buf(),
        threads: threads.filter(|t| *t > 0),
        data,
        source: Some(sw.path.clone()),
        variant: Some(v.name.clone()),
        ..LaunchOptions::default()
    };
    let arms = sort_arms(runs, v)?;
    let mut outcome = Outcome::default();
    for d in arms.resumes {
        drive(
            Prepared::resume(&d, lo.clone())?,
            &stop,
            progress_lines,
            &mut outcome,
        );
    }
    if !arms.fresh.is_empty() && stop.load(Ordering::SeqCst) == 0 {
        let mut o = lo.clone();
        o.arms = Some(arms.fresh);
        drive(
            Prepared::new(v.experiment.clone(), o)?,
            &stop,
            progress_lines,
            &mut outcome,
        );
    }
    for b in &arms.blocked {
        say!("  {b}");
    }
    Ok(if outcome.failed || !arms.blocked.is_empty() {
        ExitCode::from(1)
    } else if outcome.stopped || stop.load(Ordering::SeqCst) > 0 {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Counts termination signals. Every signal only asks for a stop: a Slurm task or queue child
/// can be told twice (by its parent and by the terminal or scheduler) and must still checkpoint.
fn stop_counter() -> Arc<AtomicUsize> {
    let stop = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&stop);
    let _ = metalab::signals::on_termination(move || {
        count.fetch_add(1, Ordering::SeqCst);
    });
    stop
}

/// A variant's arms by what this task does with them.
struct TaskArms {
    /// Arms to train from the start, by name.
    fresh: Vec<String>,
    /// Run folders to resume.
    resumes: Vec<PathBuf>,
    /// Arms left alone, and why.
    blocked: Vec<String>,
}

/// Each arm's plan, said as it is sorted; a run that died before its first checkpoint is
/// removed here, to start over.
fn sort_arms(runs: &Path, v: &sweep::Variant) -> Result<TaskArms> {
    let mut arms = TaskArms {
        fresh: vec![],
        resumes: vec![],
        blocked: vec![],
    };
    for a in sweep::plan(runs, v, true) {
        match a.plan {
            ArmPlan::Finished(_) => say!("  {}: already finished", a.arm),
            ArmPlan::Fresh => arms.fresh.push(a.arm),
            ArmPlan::Resume(d) => {
                say!(
                    "  {}: resuming {} from iteration {}",
                    a.arm,
                    d.display(),
                    a.iteration
                );
                arms.resumes.push(d)
            }
            ArmPlan::Restart(d) => {
                say!(
                    "  {}: {} died before its first checkpoint; starting over",
                    a.arm,
                    d.display()
                );
                std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
                arms.fresh.push(a.arm)
            }
            ArmPlan::Running { dir, host } => arms.blocked.push(format!(
                "{} is running on {host} ({})",
                a.arm,
                dir.display()
            )),
            ArmPlan::Failed { dir, reason } => arms.blocked.push(format!(
                "{} failed: {reason} ({}); delete it to retry",
                a.arm,
                dir.display()
            )),
        }
    }
    Ok(arms)
}

#[derive(Default)]
struct Outcome {
    failed: bool,
    stopped: bool,
}

fn drive(p: Prepared, stop: &AtomicUsize, progress_lines: bool, outcome: &mut Outcome) {
    let names: Vec<String> = p.experiment.arms.iter().map(|a| a.name.clone()).collect();
    let total = p.experiment.train.iterations;
    let handle = p.launch();
    let mut lines = queue::ProgressLines::new(names.len());
    let mut last_plain = Instant::now();
    let mut asked = false;
    loop {
        if stop.load(Ordering::SeqCst) > 0 && !asked {
            handle.send(None, metalab::engine::Command::Stop);
            asked = true;
        }
        match handle.events.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => {
                let name = &names[ev.arm()];
                match ev {
                    EngineEvent::Started {
                        run_dir,
                        start_iteration,
                        ..
                    } => {
                        say!(
                            "  [{name}] run dir {} (from iteration {start_iteration})",
                            run_dir.display()
                        )
                    }
                    EngineEvent::Train { point, .. } => {
                        if progress_lines {
                            if let Some(l) =
                                lines.line(ev_index(&names, name), name, point.iteration, total)
                            {
                                out!("{l}");
                            }
                        } else if last_plain.elapsed() > Duration::from_secs(10) {
                            last_plain = Instant::now();
                            say!(
                                "  [{name}] iteration {}/{total}: train loss {:.4}",
                                point.iteration,
                                point.loss
                            );
                        }
                    }
                    EngineEvent::Finished {
                        stopped,
                        final_eval,
                        iteration,
                        ..
                    } => {
                        outcome.stopped |= stopped;
                        match final_eval {
                            Some(e) => {
                                say!("  [{name}] finished: {}", metalab::runs::headline(&e))
                            }
                            None => {
                                say!("  [{name}] stopped at iteration {iteration} (checkpointed)")
                            }
                        }
                    }
                    EngineEvent::Failed {
                        reason, iteration, ..
                    } => {
                        outcome.failed = true;
                        say!("  [{name}] FAILED at iteration {iteration}: {reason}");
                    }
                    _ => {}
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    handle.join();
}

fn ev_index(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or(0)
}
