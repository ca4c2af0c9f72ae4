//! The terminal workbench: browse and edit experiments, launch them, watch arms train live,
//! compare arms and saved runs.
//!
//! Elm architecture: `App` is plain state, `update::update(&mut App, Msg)` is the only
//! mutation and touches no files (it asks for disk work as effects, which `actions` carries
//! out right after each message), `view::render(&App, &mut Frame)` is pure. The loop
//! below renders on a timer and drains engine events and file events between frames, so a
//! flood of metrics never floods redraws.

pub mod actions;
pub mod app;
pub mod backend;
pub mod bench;
pub mod catalog;
pub mod chart_keys;
pub mod chart_opts;
pub mod diff;
pub mod editor;
pub mod fixtures;
pub mod keymap;
pub mod keys;
pub mod results;
pub mod runs_view;
pub mod seeds;
pub mod series;
pub mod session;
pub mod terminal;
pub mod update;
pub mod view;
pub mod watch;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{self, Event};

pub use app::{App, Msg};

/// `update`, then the disk work it asked for: what the runtime does with every message, short
/// of the engine (whose effects stay in `app.effects`). Tests drive the app through this.
pub fn dispatch(app: &mut App, msg: Msg) {
    update::update(app, msg);
    actions::perform_all(app);
}

const FRAME: Duration = Duration::from_millis(50);
/// Engine events handled per frame at most, so a producer faster than us cannot starve input.
const MAX_EVENTS_PER_FRAME: usize = 50_000;

/// Open the workbench on `project_root/experiments` and `project_root/runs`.
pub fn run(project_root: &Path) -> anyhow::Result<()> {
    run_with(project_root, &crate::engine::LaunchOptions::default())
}

/// [`run`], with launch settings from the command line (threads, Omniglot folder) applied to
/// every experiment launched from the workbench.
pub fn run_with(
    project_root: &Path,
    defaults: &crate::engine::LaunchOptions,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the workbench needs an interactive terminal (stdout is not a TTY); \
             to train without it, run `metalab run FILE.ron`"
        );
    }
    let exp_dir = project_root.join("experiments");
    std::fs::create_dir_all(&exp_dir).with_context(|| format!("creating {}", exp_dir.display()))?;
    let mut app = App::new(project_root);
    if defaults.data.is_some() {
        app.data = defaults.data.clone();
        app.refresh_experiments();
    }
    let (file_tx, file_rx) = mpsc::channel();
    // Without a watcher the UI still works; it just will not notice outside edits.
    let _watcher = match watch::watch_dir(&exp_dir, file_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            app.error(format!("not watching {}: {e}", exp_dir.display()));
            None
        }
    };
    // SIGTERM, SIGHUP (the terminal closed) or SIGINT: stop the arms with a checkpoint and leave
    // through the normal path, which restores the terminal; a second one restores it and exits.
    let terminate = Arc::new(AtomicUsize::new(0));
    {
        let terminate = Arc::clone(&terminate);
        let _ = crate::signals::on_termination(move || {
            if terminate.fetch_add(1, Ordering::SeqCst) >= 1 {
                terminal::restore();
                std::process::exit(143);
            }
        });
    }
    let mut guard = terminal::TerminalGuard::enter().context("setting up the terminal")?;
    let size = guard.terminal.size()?;
    dispatch(&mut app, Msg::Resize(size.width, size.height));
    let mut engine: Option<backend::Engine> = None;
    let mut next_frame = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_frame {
            guard.terminal.draw(|f| view::render(&app, f))?;
            next_frame = now + FRAME;
        }
        if event::poll(next_frame.saturating_duration_since(Instant::now()))? {
            // Take every pending input before the next frame.
            loop {
                let msg = match event::read()? {
                    Event::Key(k) => Some(Msg::Key(k)),
                    Event::Mouse(m) => Some(Msg::Mouse(m)),
                    Event::Resize(w, h) => Some(Msg::Resize(w, h)),
                    _ => None,
                };
                if let Some(m) = msg {
                    dispatch(&mut app, m);
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        while let Ok(paths) = file_rx.try_recv() {
            dispatch(&mut app, Msg::FilesChanged(paths));
        }
        if let Some(e) = engine.as_ref() {
            for ev in e.events().try_iter().take(MAX_EVENTS_PER_FRAME) {
                dispatch(&mut app, Msg::Engine(ev));
            }
        }
        dispatch(&mut app, Msg::Tick(Instant::now()));
        if terminate.load(Ordering::SeqCst) > 0 && !app.quit {
            update::confirm(&mut app, app::Pending::Quit);
        }
        run_effects(&mut app, &mut engine, project_root, defaults);
        if app.quit {
            break;
        }
    }
    // Killed from outside with edits in the buffer: keep them next to the file (a dot-file, so
    // the experiments list ignores it) rather than lose what the user typed.
    let kept = (terminate.load(Ordering::SeqCst) > 0)
        .then(|| app.editor.as_ref().filter(|ed| ed.modified()))
        .flatten()
        .and_then(|ed| {
            let path = ed
                .path
                .with_file_name(format!(".{}.unsaved", ed.file_name()));
            std::fs::write(&path, format!("{}\n", ed.text())).ok()?;
            Some(path)
        });
    shutdown(&mut app, engine);
    drop(guard);
    if let Some(path) = kept {
        eprintln!(
            "metalab: stopped by a signal; the unsaved edits are in {}",
            path.display()
        );
    }
    Ok(())
}

fn run_effects(
    app: &mut App,
    engine: &mut Option<backend::Engine>,
    project_root: &Path,
    defaults: &crate::engine::LaunchOptions,
) {
    // Disk work first: it can ask for a launch in turn.
    actions::perform_all(app);
    for eff in std::mem::take(&mut app.effects) {
        match eff {
            app::Effect::Io(io) => actions::perform(app, io),
            app::Effect::Launch {
                exp,
                source,
                rerun_of,
            } => {
                match backend::launch(*exp, &project_root.join("runs"), source, rerun_of, defaults)
                {
                    Ok(e) => *engine = Some(e),
                    Err(reason) => dispatch(app, Msg::LaunchFailed(reason)),
                }
            }
            app::Effect::Resume { dir } => {
                match backend::resume(&dir, &project_root.join("runs"), defaults) {
                    Ok(e) => *engine = Some(e),
                    Err(reason) => dispatch(app, Msg::LaunchFailed(reason)),
                }
            }
            app::Effect::Engine { arm, cmd } => {
                if let Some(e) = engine.as_ref() {
                    e.send(arm, cmd);
                }
            }
        }
    }
}

/// Stops were sent by `update` on quit; give arms a moment to checkpoint and record their
/// status, so runs end as "stopped" rather than "interrupted".
fn shutdown(app: &mut App, engine: Option<backend::Engine>) {
    let Some(e) = engine else { return };
    for eff in std::mem::take(&mut app.effects) {
        if let app::Effect::Engine { arm, cmd } = eff {
            e.send(arm, cmd);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !e.is_done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        e.events().try_iter().for_each(drop);
    }
}
