//! `metalab run`: drive the engine and print progress, for scripts and clusters.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use metalab::engine::{EngineEvent, Prepared};
use metalab::runs;

use metalab::signals::SAME_SIGNAL;

struct ArmView {
    name: String,
    bar: ProgressBar,
    last_loss: Option<f64>,
    last_eval: Option<String>,
    rate: f64,
    outcome: Option<String>,
    run_dir: String,
    failed: bool,
    stopped: bool,
}

pub fn run(p: Prepared, quiet: bool) -> Result<ExitCode> {
    let exp = p.experiment.clone();
    let fancy = !quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if fancy {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut arms = arm_views(&exp, &multi);
    if !quiet {
        say!(
            "metalab: {} — {} — {} arm{}, {} iterations, seed {}",
            exp.name,
            p.family.describe(),
            exp.arms.len(),
            if exp.arms.len() == 1 { "" } else { "s" },
            exp.train.iterations,
            exp.seed
        );
    }
    let handle = p.launch();
    stop_on_interrupt(handle.stopper());
    let mut log = Log {
        plain: !quiet && !fancy,
        last_plain: Instant::now(),
    };
    loop {
        match handle.events.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => {
                let a = &mut arms[ev.arm()];
                log.show(a, ev);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    handle.join();
    let _ = multi.clear();
    Ok(summary(&exp.name, &arms))
}

/// One progress bar per arm, in the experiment's order.
fn arm_views(exp: &metalab::experiment::Experiment, multi: &MultiProgress) -> Vec<ArmView> {
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    exp.arms
        .iter()
        .map(|a| {
            let bar = multi.add(ProgressBar::new(exp.train.iterations as u64));
            bar.set_style(style.clone());
            bar.set_prefix(a.name.clone());
            ArmView {
                name: a.name.clone(),
                bar,
                last_loss: None,
                last_eval: None,
                rate: 0.0,
                outcome: None,
                run_dir: String::new(),
                failed: false,
                stopped: false,
            }
        })
        .collect()
}

/// Ctrl-C, SIGTERM (a scheduler's notice) and SIGHUP (a closed terminal) alike: the first lets
/// every arm checkpoint and stop, a second leaves at once.
fn stop_on_interrupt(stop: impl Fn() + Send + 'static) {
    let mut first: Option<Instant> = None;
    let _ = metalab::signals::on_termination(move || match first {
        // GNU `timeout`, `kill -INT -PGID` and Slurm signal the process and its group, so
        // one notice arrives twice within microseconds; only a repeat a person makes quits.
        Some(t) if t.elapsed() < SAME_SIGNAL => {}
        Some(_) => {
            say!("\nmetalab: second interrupt, exiting without a final checkpoint");
            std::process::exit(130);
        }
        None => {
            first = Some(Instant::now());
            say!("\nmetalab: interrupted; stopping after the current meta-iteration with a checkpoint (interrupt again to quit at once)…");
            stop();
        }
    });
}

/// What the engine reports, onto the bars and (without a terminal) as plain lines.
struct Log {
    /// Plain lines on stderr: not quiet, and no terminal to draw bars on.
    plain: bool,
    /// Training lines are printed at most every 10 seconds.
    last_plain: Instant,
}

impl Log {
    fn show(&mut self, a: &mut ArmView, ev: EngineEvent) {
        match ev {
            EngineEvent::Started {
                run_dir,
                start_iteration,
                params,
                ..
            } => {
                a.run_dir = run_dir.display().to_string();
                a.bar.set_position(start_iteration as u64);
                if self.plain {
                    say!(
                        "[{}] started: {} parameters, run dir {}",
                        a.name,
                        params,
                        a.run_dir
                    );
                }
            }
            EngineEvent::Train {
                point,
                iters_per_sec,
                ..
            } => {
                a.bar.set_position(point.iteration as u64);
                a.last_loss = Some(point.loss);
                a.rate = iters_per_sec;
                a.bar.set_message(status(a));
                if self.plain && self.last_plain.elapsed() > Duration::from_secs(10) {
                    self.last_plain = Instant::now();
                    say!(
                        "[{}] iteration {}: train loss {:.4}, {:.1} it/s",
                        a.name,
                        point.iteration,
                        point.loss,
                        a.rate
                    );
                }
            }
            EngineEvent::Eval { result, .. } => {
                let h = format!("{} {}", result.split, runs::headline(&result));
                if self.plain {
                    say!("[{}] iteration {}: {h}", a.name, result.iteration);
                }
                a.last_eval = Some(h);
                a.bar.set_message(status(a));
            }
            EngineEvent::Finished {
                stopped,
                final_eval,
                seconds,
                iteration,
                ..
            } => {
                a.stopped = stopped;
                a.outcome = Some(outcome(
                    final_eval.as_ref(),
                    stopped,
                    seconds,
                    iteration,
                    &a.run_dir,
                ));
                a.bar
                    .finish_with_message(a.outcome.clone().unwrap_or_default());
            }
            EngineEvent::Failed {
                reason, iteration, ..
            } => {
                a.failed = true;
                a.outcome = Some(format!("FAILED at iteration {iteration}: {reason}"));
                a.bar.abandon_with_message("failed");
            }
            EngineEvent::Loading { arm, done, total } => {
                a.bar.set_message(format!("loading images {done}/{total}"));
                // Arms share the data: say it once.
                if arm == 0 && done == total && self.plain {
                    say!("loaded {total} images");
                }
            }
            _ => {}
        }
    }
}

/// How an arm that finished ended: its test result, or where it stopped and how to go on.
fn outcome(
    final_eval: Option<&metalab::metrics::EvalResult>,
    stopped: bool,
    seconds: f64,
    iteration: usize,
    run_dir: &str,
) -> String {
    match (final_eval, stopped) {
        (Some(e), _) => format!(
            "{} (test, {} tasks, {} step{}) in {seconds:.1}s",
            runs::headline(e),
            e.loss.n,
            e.inner_steps,
            if e.inner_steps == 1 { "" } else { "s" }
        ),
        (None, true) => {
            format!("stopped at iteration {iteration}; resume with `metalab resume {run_dir}`")
        }
        (None, false) => "finished".into(),
    }
}

/// Each arm's outcome and run folder on stdout; the exit status says whether all finished (0),
/// some stopped (130) or some failed or never reported (1).
fn summary(name: &str, arms: &[ArmView]) -> ExitCode {
    out!("{}:", name);
    for a in arms {
        out!(
            "  {:<14} {}",
            a.name,
            a.outcome.as_deref().unwrap_or("did not report")
        );
        if !a.run_dir.is_empty() {
            out!("  {:<14} {}", "", a.run_dir);
        }
    }
    transfer_summary(arms);
    if arms.iter().any(|a| a.failed || a.outcome.is_none()) {
        ExitCode::from(1)
    } else if arms.iter().any(|a| a.stopped) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}

/// Multi-task arms against the single-task baseline among them (issue 21), when there is one:
/// the tasks significantly worse than trained alone.
fn transfer_summary(arms: &[ArmView]) {
    use metalab::transfer::{against_baselines, summary, TaskLosses};
    let records: Vec<(String, TaskLosses)> = arms
        .iter()
        .filter(|a| !a.run_dir.is_empty())
        .filter_map(|a| {
            Some((
                a.name.clone(),
                TaskLosses::load(std::path::Path::new(&a.run_dir)).ok()??,
            ))
        })
        .collect();
    for (arm, baseline, rows) in against_baselines(&records) {
        out!(
            "  negative transfer, {arm} against {baseline}: {}",
            summary(&rows)
        );
    }
}

fn status(a: &ArmView) -> String {
    let mut s = String::new();
    if let Some(l) = a.last_loss {
        s += &format!("loss {l:.4} ");
    }
    if let Some(e) = &a.last_eval {
        s += &format!("| {e} ");
    }
    s += &format!("| {:.1} it/s", a.rate);
    s
}
