//! The local queue: up to `jobs` variants at a time, each in its own `metalab sweep --task`
//! child process, so that killing the sweep (or one child) leaves exactly what a killed
//! `metalab run` leaves, and re-invoking resumes through the same path a Slurm task uses.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
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
    let logs = sweep.folder(&opts.runs_root).join("logs");
    std::fs::create_dir_all(&logs)?;
    let (report, queue) = triage(sweep, opts);
    let mut q = Queue::new(sweep, opts, logs, report, queue);
    loop {
        q.forward_interrupts();
        q.start_more()?;
        if q.running.is_empty() {
            break;
        }
        q.show_progress();
        q.reap()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    q.overall.finish_and_clear();
    let _ = q.multi.clear();
    Ok(q.report)
}

/// The variants already settled (finished, running elsewhere, failed before), in the report,
/// and those to run now, in sweep order.
fn triage(sweep: &Sweep, opts: &QueueOptions) -> (QueueReport, Vec<usize>) {
    let mut report = QueueReport::default();
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
    (report, queue)
}

/// The queue while it runs: what is left, what runs, and where progress goes.
struct Queue<'a> {
    sweep: &'a Sweep,
    opts: &'a QueueOptions,
    logs: PathBuf,
    report: QueueReport,
    /// Variants still to start, the next one last.
    queue: Vec<usize>,
    running: Vec<Running>,
    /// Interrupts already passed on to the children.
    signalled: usize,
    jobs: usize,
    threads_each: usize,
    multi: MultiProgress,
    overall: ProgressBar,
    line_style: ProgressStyle,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

impl<'a> Queue<'a> {
    fn new(
        sweep: &'a Sweep,
        opts: &'a QueueOptions,
        logs: PathBuf,
        report: QueueReport,
        mut queue: Vec<usize>,
    ) -> Queue<'a> {
        let planned = QueueEvent::Planned {
            finished: sweep
                .variants
                .iter()
                .filter(|v| report.skipped_finished.contains(&v.name))
                .map(|v| v.index)
                .collect(),
            queued: queue.clone(),
        };
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
        let q = Queue {
            sweep,
            opts,
            logs,
            report,
            queue,
            running: vec![],
            signalled: 0,
            jobs,
            threads_each,
            multi,
            overall,
            line_style,
            tx,
            rx,
        };
        q.event(planned);
        q.plain(format!(
            "metalab sweep {}: {total} variants, {} already finished, {} to run, {jobs} at a time with {threads_each} thread(s) each",
            sweep.spec.name,
            q.report.skipped_finished.len(),
            q.queue.len()
        ));
        q
    }

    fn event(&self, e: QueueEvent) {
        if let Output::Events(tx) = &self.opts.output {
            let _ = tx.send(e);
        }
    }

    fn plain(&self, s: String) {
        if matches!(self.opts.output, Output::Lines) {
            note(&s);
        }
    }

    /// First interrupt: ask every child to checkpoint and stop. Another: stop at once.
    fn forward_interrupts(&mut self) {
        let interrupts = self.opts.interrupts.load(Ordering::SeqCst);
        if interrupts > self.signalled {
            let sig = if interrupts == 1 {
                libc::SIGINT
            } else {
                libc::SIGKILL
            };
            for r in &self.running {
                send_signal(&r.child, sig);
            }
            self.signalled = interrupts;
            self.report.interrupted = true;
        }
    }

    /// Start variants until `jobs` run (none after an interrupt).
    fn start_more(&mut self) -> std::io::Result<()> {
        while !self.report.interrupted && self.running.len() < self.jobs {
            let Some(index) = self.queue.pop() else { break };
            let child = self.spawn(index)?;
            let v = &self.sweep.variants[index];
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(self.line_style.clone());
            bar.set_prefix(format!("#{index}"));
            bar.set_message(format!("{} starting", v.label()));
            self.plain(format!("[{}] started: {}", v.name, v.label()));
            self.event(QueueEvent::Started { index });
            self.running.push(Running {
                index,
                name: v.name.clone(),
                child,
                bar,
                arms: vec![],
            });
        }
        Ok(())
    }

    /// The variant's `metalab sweep --task` child, its stderr into the variant's log and its
    /// progress lines read by a thread.
    fn spawn(&self, index: usize) -> std::io::Result<Child> {
        let (sweep, opts) = (self.sweep, self.opts);
        let v = &sweep.variants[index];
        // Never through a link planted in a copied runs folder.
        let log =
            crate::runs::files::open_append(&self.logs.join(format!("{}.log", v.name)), true)?;
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
            .arg(self.threads_each.to_string())
            .arg("--progress-lines")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let out = child.stdout.take().expect("piped");
        spawn_reader(index, out, self.tx.clone());
        Ok(child)
    }

    /// The children's progress lines so far, onto their bars and to the front end.
    fn show_progress(&mut self) {
        while let Ok(Msg::Progress {
            index,
            arm,
            it,
            total,
        }) = self.rx.try_recv()
        {
            self.event(QueueEvent::Progress {
                index,
                arm: arm.clone(),
                it,
                total,
            });
            if let Some(r) = self.running.iter_mut().find(|r| r.index == index) {
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
                    self.sweep.variants[index].label(),
                    parts.join("  ")
                ));
            }
        }
    }

    /// Every child that has ended: its outcome into the report, a line and an event.
    fn reap(&mut self) -> std::io::Result<()> {
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].child.try_wait()? {
                None => i += 1,
                Some(status) => {
                    let r = self.running.remove(i);
                    r.bar.finish_and_clear();
                    self.multi.remove(&r.bar);
                    let outcome = self.outcome(&r, status.code());
                    let line = format!("[{}] {outcome}", r.name);
                    match &self.opts.output {
                        Output::Bars => {
                            let _ = self.multi.println(&line);
                        }
                        Output::Lines => note(&line),
                        Output::Events(_) => {}
                    }
                    self.event(QueueEvent::Ended {
                        index: r.index,
                        outcome,
                    });
                }
            }
        }
        Ok(())
    }

    /// What a child's exit code means for its variant, recorded in the report.
    fn outcome(&mut self, r: &Running, code: Option<i32>) -> Outcome {
        let report = &mut self.report;
        match code {
            Some(0) => {
                self.overall.inc(1);
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
            // Killed by a second interrupt (ours, or the user's to the group): what it left is
            // an interrupted run, resumed by the next invocation, as `--status` says; only a run
            // that recorded a failure failed.
            _ if report.interrupted
                && status_of(&plan(
                    &self.opts.runs_root,
                    &self.sweep.variants[r.index],
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
                let log = self.logs.join(format!("{}.log", r.name));
                report
                    .failed
                    .push((r.name.clone(), format!("{why}; see {}", log.display())));
                Outcome::Failed(why)
            }
        }
    }
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
