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
pub mod bench;
pub mod catalog;
pub mod chart_keys;
pub mod chart_opts;
pub mod diff;
pub mod dispatch;
pub mod editor;
pub mod fixtures;
pub mod jobs;
pub mod keymap;
pub mod keys;
pub mod launch;
pub mod modal_keys;
pub mod monitor_keys;
pub mod results;
pub mod run_groups;
pub mod runs_keys;
pub mod runs_view;
pub mod runtime;
pub mod scanner;
pub mod screen;
pub mod seeds;
pub mod series;
pub mod session;
pub mod store;
pub mod sweep_job;
pub mod sweep_view;
pub mod task_keys;
pub mod task_views;
pub mod terminal;
pub mod text;
pub mod update;
pub mod view;
pub mod watch;
pub mod worker;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

pub use app::{App, Msg};
pub use dispatch::dispatch;
pub use runtime::Ending;

/// Open the workbench on `project_root/experiments` and `project_root/runs`.
pub fn run(project_root: &Path) -> anyhow::Result<Ending> {
    run_with(project_root, &crate::engine::LaunchOptions::default())
}

/// [`run`], with launch settings from the command line (threads, Omniglot folder) applied to
/// every experiment launched from the workbench.
pub fn run_with(
    project_root: &Path,
    defaults: &crate::engine::LaunchOptions,
) -> anyhow::Result<Ending> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the workbench needs an interactive terminal (stdout is not a TTY); \
             to train without it, run `metalab run FILE.ron`"
        );
    }
    let exp_dir = project_root.join("experiments");
    std::fs::create_dir_all(&exp_dir).with_context(|| format!("creating {}", exp_dir.display()))?;
    let (guard, term) = terminal::TerminalGuard::enter().context("setting up the terminal")?;
    let mut rt = runtime::Runtime::new(project_root, defaults, term);
    // SIGTERM, SIGHUP (the terminal closed) or SIGINT: stop the arms with a checkpoint and leave
    // through the normal path, which restores the terminal; a second one restores it and exits.
    {
        let terminate = Arc::clone(&rt.terminate);
        let _ = crate::signals::on_termination(move || {
            if terminate.fetch_add(1, Ordering::SeqCst) >= 1 {
                terminal::restore();
                std::process::exit(130);
            }
        });
    }
    terminal::spawn_input(rt.waker());
    rt.set_probe(Box::new(terminal::hung_up));
    let size = rt.terminal().size()?;
    dispatch(&mut rt.app, Msg::Resize(size.width, size.height));
    let ending = rt.run();
    let kept = rt.keep_unsaved();
    drop(rt);
    drop(guard);
    if let Some(path) = kept {
        use std::io::Write as _;
        // Not eprintln!: the terminal may be gone, and a failed write must not panic.
        let _ = writeln!(
            std::io::stderr(),
            "metalab: stopped by a signal; the unsaved edits are in {}",
            path.display()
        );
    }
    Ok(ending)
}
