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
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut arms: Vec<ArmView> = exp
        .arms
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
        .collect();
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
    {
        let stop = handle.stopper();
        let mut first: Option<Instant> = None;
        // Ctrl-C, SIGTERM (a scheduler's notice) and SIGHUP (a closed terminal) alike: the first
        // lets every arm checkpoint and stop, a second leaves at once.
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
    let mut last_plain = Instant::now();
    loop {
        match handle.events.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => {
                let a = &mut arms[ev.arm()];
                match ev {
                    EngineEvent::Started {
                        run_dir,
                        start_iteration,
                        params,
                        ..
                    } => {
                        a.run_dir = run_dir.display().to_string();
                        a.bar.set_position(start_iteration as u64);
                        if !quiet && !fancy {
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
                        if !quiet && !fancy && last_plain.elapsed() > Duration::from_secs(10) {
                            last_plain = Instant::now();
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
                        if !quiet && !fancy {
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
                        a.outcome = Some(match (&final_eval, stopped) {
                            (Some(e), _) => format!(
                                "{} (test, {} tasks, {} step{}) in {seconds:.1}s",
                                runs::headline(e),
                                e.loss.n,
                                e.inner_steps,
                                if e.inner_steps == 1 { "" } else { "s" }
                            ),
                            (None, true) => format!(
                                "stopped at iteration {iteration}; resume with `metalab resume {}`",
                                a.run_dir
                            ),
                            (None, false) => "finished".into(),
                        });
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
                        if arm == 0 && done == total && !quiet && !fancy {
                            say!("loaded {total} images");
                        }
                    }
                    _ => {}
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    handle.join();
    let _ = multi.clear();
    out!("{}:", exp.name);
    for a in &arms {
        out!(
            "  {:<14} {}",
            a.name,
            a.outcome.as_deref().unwrap_or("did not report")
        );
        if !a.run_dir.is_empty() {
            out!("  {:<14} {}", "", a.run_dir);
        }
    }
    Ok(if arms.iter().any(|a| a.failed || a.outcome.is_none()) {
        ExitCode::from(1)
    } else if arms.iter().any(|a| a.stopped) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
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
