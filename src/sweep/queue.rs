//! The local queue: up to `jobs` variants at a time, each in its own `metalab sweep --task`
//! child process, so that killing the sweep (or one child) leaves exactly what a killed
//! `metalab run` leaves, and re-invoking resumes through the same path a Slurm task uses.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{plan, status_of, Sweep, VariantStatus};

/// The prefix of the progress lines a `--task` child prints for its parent queue.
pub const PROGRESS_TAG: &str = "@metalab-progress";

pub struct QueueOptions {
    /// The `metalab` binary to run children with.
    pub exe: PathBuf,
    pub runs_root: PathBuf,
    /// Variants at once.
    pub jobs: usize,
    /// Threads in all, split evenly between the running variants.
    pub threads: usize,
    /// Omniglot folder for every variant (`--data`).
    pub data: Option<PathBuf>,
    /// Where progress goes.
    pub output: Output,
    /// Interrupt count, raised by the caller's Ctrl-C / SIGTERM handler.
    pub interrupts: Arc<AtomicUsize>,
}

/// Where the queue reports how it goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// Progress bars on stderr (a terminal).
    Bars,
    /// Plain lines on stderr (a log, a pipe).
    Lines,
    /// Typed events to a front end that draws its own (the workbench); nothing printed.
    Events(Sender<QueueEvent>),
}

/// What the queue says of its variants, for [`Output::Events`].
#[derive(Debug, Clone, PartialEq)]
pub enum QueueEvent {
    /// Before any variant starts: the variants already finished and those to run now.
    Planned {
        finished: Vec<usize>,
        queued: Vec<usize>,
    },
    Started {
        index: usize,
    },
    /// An arm of a running variant reached iteration `it` of `total`.
    Progress {
        index: usize,
        arm: String,
        it: usize,
        total: usize,
    },
    /// The variant's process ended; `outcome` as the line printed for it says.
    Ended {
        index: usize,
        outcome: Outcome,
    },
}

/// How a variant's process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished,
    /// Stopped at a checkpoint: the next invocation resumes it.
    Stopped,
    /// Killed by a second interrupt: the next invocation resumes it from its last checkpoint.
    Interrupted,
    /// Another process holds the variant.
    Busy,
    Failed(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Finished => write!(f, "finished"),
            Outcome::Stopped => write!(f, "stopped (resumable)"),
            Outcome::Interrupted => write!(f, "stopped by the interrupt (resumable)"),
            Outcome::Busy => write!(f, "running in another process"),
            Outcome::Failed(why) => write!(f, "FAILED ({why})"),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueueReport {
    pub skipped_finished: Vec<String>,
    pub finished: Vec<String>,
    pub stopped: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Variants another process is running; left alone.
    pub busy: Vec<String>,
    pub interrupted: bool,
}

struct Running {
    index: usize,
    name: String,
    child: Child,
    bar: ProgressBar,
    arms: Vec<(String, usize, usize)>,
}

enum Msg {
    Progress {
        index: usize,
        arm: String,
        it: usize,
        total: usize,
    },
}

fn send_signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

pub fn run(sweep: &Sweep, opts: &QueueOptions) -> std::io::Result<QueueReport> {
    let mut report = QueueReport::default();
    let logs = sweep.folder(&opts.runs_root).join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut queue = vec![];
    for v in &sweep.variants {
        match status_of(&plan(&opts.runs_root, v, false)) {
            VariantStatus::Finished => report.skipped_finished.push(v.name.clone()),
            VariantStatus::Running => report.busy.push(v.name.clone()),
            VariantStatus::Failed => report.failed.push((
                v.name.clone(),
                "failed in an earlier invocation; delete its run directory to retry".into(),
            )),
            VariantStatus::Pending | VariantStatus::Partial => queue.push(v.index),
        }
    }
    let event = |e: QueueEvent| {
        if let Output::Events(tx) = &opts.output {
            let _ = tx.send(e);
        }
    };
    event(QueueEvent::Planned {
        finished: sweep
            .variants
            .iter()
            .filter(|v| report.skipped_finished.contains(&v.name))
            .map(|v| v.index)
            .collect(),
        queued: queue.clone(),
    });
    queue.reverse(); // pop() from the front of the sweep
    let total = sweep.variants.len();
    let multi = MultiProgress::with_draw_target(if matches!(opts.output, Output::Bars) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = multi.add(ProgressBar::new(total as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} variants {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    overall.set_prefix("sweep");
    overall.set_position((report.skipped_finished.len()) as u64);
    let line_style = ProgressStyle::with_template("{prefix:>8} {msg}").expect("valid template");
    let jobs = opts.jobs.max(1).min(queue.len().max(1));
    let threads_each = (opts.threads / jobs).max(1);
    let (tx, rx) = channel::<Msg>();
    let mut running: Vec<Running> = vec![];
    let mut signalled = 0;
    let plain = |s: String| {
        if matches!(opts.output, Output::Lines) {
            note(&s);
        }
    };
    plain(format!(
        "metalab sweep {}: {total} variants, {} already finished, {} to run, {jobs} at a time with {threads_each} thread(s) each",
        sweep.spec.name,
        report.skipped_finished.len(),
        queue.len()
    ));
    loop {
        let interrupts = opts.interrupts.load(Ordering::SeqCst);
        if interrupts > signalled {
            // First interrupt: ask every child to checkpoint and stop. Another: stop at once.
            let sig = if interrupts == 1 {
                libc::SIGINT
            } else {
                libc::SIGKILL
            };
            for r in &running {
                send_signal(&r.child, sig);
            }
            signalled = interrupts;
            report.interrupted = true;
        }
        while !report.interrupted && running.len() < jobs {
            let Some(index) = queue.pop() else { break };
            let v = &sweep.variants[index];
            // Never through a link planted in a copied runs folder.
            let log = crate::runs::files::open_append(&logs.join(format!("{}.log", v.name)), true)?;
            let mut cmd = Command::new(&opts.exe);
            if let Some(d) = &opts.data {
                cmd.arg("--data").arg(d);
            }
            let mut child = cmd
                .arg("sweep")
                .arg(&sweep.path)
                .arg("--task")
                .arg(index.to_string())
                .arg("--runs")
                .arg(&opts.runs_root)
                .arg("--threads")
                .arg(threads_each.to_string())
                .arg("--progress-lines")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()?;
            let out = child.stdout.take().expect("piped");
            spawn_reader(index, out, tx.clone());
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(line_style.clone());
            bar.set_prefix(format!("#{index}"));
            bar.set_message(format!("{} starting", v.label()));
            plain(format!("[{}] started: {}", v.name, v.label()));
            event(QueueEvent::Started { index });
            running.push(Running {
                index,
                name: v.name.clone(),
                child,
                bar,
                arms: vec![],
            });
        }
        if running.is_empty() {
            break;
        }
        while let Ok(Msg::Progress {
            index,
            arm,
            it,
            total,
        }) = rx.try_recv()
        {
            event(QueueEvent::Progress {
                index,
                arm: arm.clone(),
                it,
                total,
            });
            if let Some(r) = running.iter_mut().find(|r| r.index == index) {
                match r.arms.iter_mut().find(|a| a.0 == arm) {
                    Some(a) => (a.1, a.2) = (it, total),
                    None => r.arms.push((arm, it, total)),
                }
                let parts: Vec<String> = r
                    .arms
                    .iter()
                    .map(|(a, i, t)| format!("{a} {i}/{t}"))
                    .collect();
                r.bar.set_message(format!(
                    "{}  {}",
                    sweep.variants[index].label(),
                    parts.join("  ")
                ));
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].child.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let r = running.remove(i);
                    r.bar.finish_and_clear();
                    multi.remove(&r.bar);
                    let outcome = match status.code() {
                        Some(0) => {
                            overall.inc(1);
                            report.finished.push(r.name.clone());
                            Outcome::Finished
                        }
                        Some(130) => {
                            report.stopped.push(r.name.clone());
                            Outcome::Stopped
                        }
                        Some(c) if c == i32::from(super::EXIT_CLAIMED) => {
                            report.busy.push(r.name.clone());
                            Outcome::Busy
                        }
                        // Killed by a second interrupt (ours, or the user's to the group): what
                        // it left is an interrupted run, resumed by the next invocation, as
                        // `--status` says; only a run that recorded a failure failed.
                        _ if report.interrupted
                            && status_of(&plan(
                                &opts.runs_root,
                                &sweep.variants[r.index],
                                false,
                            )) != VariantStatus::Failed =>
                        {
                            report.stopped.push(r.name.clone());
                            Outcome::Interrupted
                        }
                        code => {
                            let why = match code {
                                Some(c) => format!("exit code {c}"),
                                None => "killed by a signal".into(),
                            };
                            let log = logs.join(format!("{}.log", r.name));
                            report
                                .failed
                                .push((r.name.clone(), format!("{why}; see {}", log.display())));
                            Outcome::Failed(why)
                        }
                    };
                    let line = format!("[{}] {outcome}", r.name);
                    match &opts.output {
                        Output::Bars => {
                            let _ = multi.println(&line);
                        }
                        Output::Lines => note(&line),
                        Output::Events(_) => {}
                    }
                    event(QueueEvent::Ended {
                        index: r.index,
                        outcome,
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    overall.finish_and_clear();
    let _ = multi.clear();
    Ok(report)
}

/// A line on stderr; a closed stderr (the terminal went away) is no reason to stop the queue.
fn note(s: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{s}");
}

fn spawn_reader(index: usize, out: std::process::ChildStdout, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            if parts.next() != Some(PROGRESS_TAG) {
                continue;
            }
            let (Some(arm), Some(it), Some(total)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(it), Ok(total)) = (it.parse(), total.parse()) else {
                continue;
            };
            let _ = tx.send(Msg::Progress {
                index,
                arm: arm.to_string(),
                it,
                total,
            });
        }
    });
}

/// Throttles a task's progress lines to a few a second per arm.
pub struct ProgressLines {
    last: Vec<Option<Instant>>,
}

impl ProgressLines {
    pub fn new(arms: usize) -> ProgressLines {
        ProgressLines {
            last: vec![None; arms],
        }
    }

    pub fn line(&mut self, arm_index: usize, arm: &str, it: usize, total: usize) -> Option<String> {
        let due = self
            .last
            .get(arm_index)
            .copied()
            .flatten()
            .is_none_or(|t| t.elapsed() > Duration::from_millis(250))
            || it == total;
        if !due {
            return None;
        }
        if let Some(slot) = self.last.get_mut(arm_index) {
            *slot = Some(Instant::now());
        }
        Some(format!("{PROGRESS_TAG} {arm} {it} {total}"))
    }
}

/// Where a sweep's per-variant logs go.
pub fn log_path(sweep: &Sweep, runs_root: &Path, name: &str) -> PathBuf {
    sweep
        .folder(runs_root)
        .join("logs")
        .join(format!("{name}.log"))
}
