//! The workbench's event loop, apart from the real terminal so tests can run it on ratatui's
//! `TestBackend`: render on a timer, and between frames take what woke the UI thread (input,
//! file changes, the scanner's and the worker's answers), the engine's events, and the effects they ask for.
//!
//! The UI thread never waits on anything but its own channel: input is read on a thread of its
//! own (a hung-up terminal can leave a read blocked or spinning forever — a known crossterm
//! behaviour), folders are read by the scanner thread, and training runs on the engine's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::Backend;
use ratatui::Terminal;

use super::app::{self, App, Msg};
use super::dispatch::dispatch;
use super::scanner::Scanner;
use super::sweep_job::{SweepJob, SweepLaunch};
use super::worker::Worker;
use super::{actions, launch, store, view, watch};
use crate::engine::LaunchOptions;

pub const FRAME: Duration = Duration::from_millis(50);
/// Engine events handled per frame at most, so a producer faster than us cannot starve input.
const MAX_EVENTS_PER_FRAME: usize = 50_000;
/// How long arms get to checkpoint and record their status when the workbench closes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What wakes the UI thread between frames.
#[derive(Debug)]
pub enum Wake {
    /// Input, stamped with when it was read, so the loop can tell how long it waited.
    Input(Msg, Instant),
    /// Anything else for `update`: file changes, scanner answers.
    Msg(Msg),
    /// The terminal is gone (hung up, or reading or writing it failed): leave as on SIGTERM.
    TerminalLost(String),
}

/// How the workbench ended: the exit status follows it (a signal or a lost terminal exits as
/// `metalab run` does when stopped, 130).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Quit,
    Signal,
    TerminalLost(String),
}

/// Figures of the loop's responsiveness, kept as it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopStats {
    pub frames: usize,
    pub inputs: usize,
    /// Longest time from reading an input to having handled it.
    pub max_input_latency: Duration,
    /// Longest stretch of work (everything but waiting) in one turn of the loop.
    pub max_busy: Duration,
}

/// Checks between frames whether the terminal is still there; `Some(reason)` when it is not.
pub type Probe = Box<dyn FnMut() -> Option<String>>;

pub struct Runtime<B: Backend> {
    pub app: App,
    terminal: Terminal<B>,
    wake_tx: Sender<Wake>,
    wake_rx: Receiver<Wake>,
    engine: Option<store::Engine>,
    sweep: Option<SweepJob>,
    /// The `metalab` binary a sweep's variants run in: this one.
    exe: PathBuf,
    project_root: PathBuf,
    defaults: LaunchOptions,
    /// Termination signals received (SIGINT, SIGTERM, SIGHUP).
    pub terminate: Arc<AtomicUsize>,
    probe: Option<Probe>,
    _watcher: Option<watch::Watcher>,
    next_frame: Instant,
    pub stats: LoopStats,
    pub ending: Option<Ending>,
}

impl<B: Backend> Runtime<B> {
    /// The app on `project_root`, its folders read by a scanner thread and watched; nothing
    /// touches the disk on this thread before the first frame.
    pub fn new(project_root: &Path, defaults: &LaunchOptions, terminal: Terminal<B>) -> Runtime<B> {
        let (wake_tx, wake_rx) = channel();
        let scanner = {
            let tx = wake_tx.clone();
            Scanner::spawn(move |s| {
                let _ = tx.send(Wake::Msg(Msg::Scanned(s)));
            })
        };
        let mut app = App::with_scanner(project_root, defaults.data.clone(), scanner);
        app.worker = Some({
            let tx = wake_tx.clone();
            Worker::spawn(move |d| {
                let _ = tx.send(Wake::Msg(Msg::Done(Box::new(d))));
            })
        });
        let exp_dir = project_root.join("experiments");
        // Without a watcher the UI still works; it just will not notice outside edits.
        let watcher = {
            let tx = wake_tx.clone();
            match watch::watch_dir(&exp_dir, move |paths| {
                let _ = tx.send(Wake::Msg(Msg::FilesChanged(paths)));
            }) {
                Ok(w) => Some(w),
                Err(e) => {
                    app.error(format!("not watching {}: {e}", exp_dir.display()));
                    None
                }
            }
        };
        Runtime {
            app,
            terminal,
            wake_tx,
            wake_rx,
            engine: None,
            sweep: None,
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("metalab")),
            project_root: project_root.to_path_buf(),
            defaults: defaults.clone(),
            terminate: Arc::new(AtomicUsize::new(0)),
            probe: None,
            _watcher: watcher,
            next_frame: Instant::now(),
            stats: LoopStats::default(),
            ending: None,
        }
    }

    /// Where input (and anything else that should wake the loop) is sent.
    pub fn waker(&self) -> Sender<Wake> {
        self.wake_tx.clone()
    }

    /// Run sweeps' variants with this binary (tests run the loop inside a test binary).
    pub fn set_exe(&mut self, exe: &Path) {
        self.exe = exe.to_path_buf();
    }

    pub fn set_probe(&mut self, probe: Probe) {
        self.probe = Some(probe);
    }

    pub fn terminal(&self) -> &Terminal<B> {
        &self.terminal
    }

    /// Run until the app quits, a signal or a lost terminal ends it; then stop the arms with a
    /// checkpoint.
    pub fn run(&mut self) -> Ending {
        while self.turn() {}
        self.shutdown();
        self.ending.clone().unwrap_or(Ending::Quit)
    }

    /// One turn of the loop: a frame when one is due, then whatever arrives before the next.
    /// False once the workbench should end.
    pub fn turn(&mut self) -> bool {
        let start = Instant::now();
        if start >= self.next_frame {
            if let Err(e) = self.terminal.draw(|f| view::render(&self.app, f)) {
                self.lose_terminal(format!("writing to the terminal failed: {e}"));
            }
            self.stats.frames += 1;
            self.next_frame = start + FRAME;
        }
        let mut busy = start.elapsed();
        let first = match self
            .wake_rx
            .recv_timeout(self.next_frame.saturating_duration_since(Instant::now()))
        {
            Ok(w) => Some(w),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => unreachable!("the runtime holds a sender"),
        };
        let woke = Instant::now();
        // Everything already waiting, before the next frame.
        let pending: Vec<Wake> = first.into_iter().chain(self.wake_rx.try_iter()).collect();
        for w in pending {
            self.wake(w);
        }
        if let Some(e) = self.engine.as_ref() {
            let events: Vec<_> = e.events().try_iter().take(MAX_EVENTS_PER_FRAME).collect();
            for ev in events {
                dispatch(&mut self.app, Msg::Engine(ev));
            }
        }
        if let Some(j) = self.sweep.as_ref() {
            let msgs: Vec<_> = j.events().collect();
            for m in msgs {
                dispatch(&mut self.app, Msg::Sweep(m));
            }
        }
        dispatch(&mut self.app, Msg::Tick(Instant::now()));
        if self.ending.is_none() {
            if let Some(reason) = self.probe.as_mut().and_then(|p| p()) {
                self.lose_terminal(reason);
            }
        }
        if self.terminate.load(Ordering::SeqCst) > 0 && self.ending.is_none() {
            self.ending = Some(Ending::Signal);
        }
        if self.ending.is_some() && !self.app.quit {
            launch::confirm(&mut self.app, app::Pending::Quit);
        }
        self.run_effects();
        busy += woke.elapsed();
        self.stats.max_busy = self.stats.max_busy.max(busy);
        !self.app.quit
    }

    fn wake(&mut self, w: Wake) {
        match w {
            Wake::Input(msg, read_at) => {
                dispatch(&mut self.app, msg);
                self.stats.inputs += 1;
                self.stats.max_input_latency = self.stats.max_input_latency.max(read_at.elapsed());
            }
            Wake::Msg(msg) => dispatch(&mut self.app, msg),
            Wake::TerminalLost(reason) => self.lose_terminal(reason),
        }
    }

    fn lose_terminal(&mut self, reason: String) {
        if self.ending.is_none() {
            self.ending = Some(Ending::TerminalLost(reason));
        }
    }

    fn run_effects(&mut self) {
        // Disk work first: it can ask for a launch in turn.
        actions::perform_all(&mut self.app);
        let runs = self.project_root.join("runs");
        for eff in std::mem::take(&mut self.app.effects) {
            match eff {
                app::Effect::Io(io) => actions::perform(&mut self.app, io),
                app::Effect::Launch {
                    exp,
                    source,
                    rerun_of,
                } => match store::launch(*exp, &runs, source, rerun_of, &self.defaults) {
                    Ok(e) => self.engine = Some(e),
                    Err(reason) => dispatch(&mut self.app, Msg::LaunchFailed(reason)),
                },
                app::Effect::Resume { dir } => match store::resume(&dir, &runs, &self.defaults) {
                    Ok(e) => self.engine = Some(e),
                    Err(reason) => dispatch(&mut self.app, Msg::LaunchFailed(reason)),
                },
                app::Effect::Engine { arm, cmd } => {
                    if let Some(e) = self.engine.as_ref() {
                        e.send(arm, cmd);
                    }
                }
                app::Effect::StartSweep(path) => {
                    let threads = self.defaults.threads.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, |n| n.get())
                    });
                    self.sweep = Some(SweepJob::start(
                        &path,
                        SweepLaunch {
                            exe: self.exe.clone(),
                            runs_root: runs.clone(),
                            threads,
                            data: self.defaults.data.clone(),
                        },
                    ));
                }
                app::Effect::StopSweep => {
                    if let Some(j) = self.sweep.as_ref() {
                        j.stop();
                    }
                }
            }
        }
    }

    /// Stops were sent by `update` on quit; give arms a moment to checkpoint and record their
    /// status, so runs end as "stopped" rather than "interrupted".
    fn shutdown(&mut self) {
        let (engine, sweep) = (self.engine.take(), self.sweep.take());
        for eff in std::mem::take(&mut self.app.effects) {
            match eff {
                app::Effect::Engine { arm, cmd } => {
                    if let Some(e) = engine.as_ref() {
                        e.send(arm, cmd)
                    }
                }
                app::Effect::StopSweep => {
                    if let Some(j) = sweep.as_ref() {
                        j.stop()
                    }
                }
                _ => {}
            }
        }
        let done = || {
            engine.as_ref().is_none_or(|e| e.is_done())
                && sweep.as_ref().is_none_or(|j| j.is_done())
        };
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            if let Some(e) = engine.as_ref() {
                e.events().try_iter().for_each(drop);
            }
            if let Some(j) = sweep.as_ref() {
                j.events().for_each(drop);
            }
        }
    }

    /// Ended from outside (a signal, a lost terminal) with edits in the buffer: keep them next
    /// to the file (a dot-file, so the experiments list ignores it) rather than lose them.
    pub fn keep_unsaved(&self) -> Option<PathBuf> {
        if matches!(self.ending, None | Some(Ending::Quit)) {
            return None;
        }
        let ed = self.app.editor.as_ref().filter(|ed| ed.modified())?;
        let path = ed
            .path
            .with_file_name(format!(".{}.unsaved", ed.file_name()));
        std::fs::write(&path, format!("{}\n", ed.text())).ok()?;
        Some(path)
    }
}
