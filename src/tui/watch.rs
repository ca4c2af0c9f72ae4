//! Watching the experiments folder for real changes: creations, writes, removals and renames of
//! experiment files. The folder, not the files: editors that save by writing a temporary and
//! renaming it replace the inode a file watch would be bound to.
//!
//! Reads are not changes. On Linux, opening or reading a file is an inotify event too, and a
//! debouncer that forwards every kind of event turns the workbench's own rescans (which open
//! each file) into new rescans, forever. So the kind of each event is looked at before it is
//! debounced, and only the kinds that can change what a file holds pass.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::catalog::is_listed_file;

/// Quiet time after the last change before a batch is sent: an editor's save is several
/// events (truncate, write, close, rename), and they should cost one rescan.
const QUIET: Duration = Duration::from_millis(200);
/// A file written to without pause still gets reported this often.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// Keeps the folder watched until dropped; the debouncing thread ends with it.
pub struct Watcher {
    _inner: RecommendedWatcher,
}

/// Whether an event of this kind can change a file's content or existence.
pub fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        // A metadata change (chmod, atime) leaves the text as it was.
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // A writer closing the file is when its write is complete; opens and reads are not changes.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Calls `on_change` with the changed experiment and sweep files (never an empty batch, each
/// path once) until the returned watcher drops. Calls come from the watcher's own thread.
pub fn watch_dir(
    dir: &Path,
    mut on_change: impl FnMut(Vec<PathBuf>) + Send + 'static,
) -> notify::Result<Watcher> {
    let (tx, rx) = channel::<Vec<PathBuf>>();
    let mut inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if is_change(&ev.kind) {
                let paths: Vec<PathBuf> =
                    ev.paths.into_iter().filter(|p| is_listed_file(p)).collect();
                if !paths.is_empty() {
                    let _ = tx.send(paths);
                }
            }
        }
    })?;
    inner.watch(dir, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("metalab-watch".into())
        .spawn(move || {
            let mut pending = BTreeSet::new();
            let mut first: Option<Instant> = None;
            loop {
                let wait = match first {
                    None => Duration::from_secs(3600),
                    Some(t) => QUIET.min(MAX_DELAY.saturating_sub(t.elapsed())),
                };
                match rx.recv_timeout(wait) {
                    Ok(paths) => {
                        let since = *first.get_or_insert_with(Instant::now);
                        pending.extend(paths);
                        if since.elapsed() >= MAX_DELAY {
                            on_change(std::mem::take(&mut pending).into_iter().collect());
                            first = None;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if !pending.is_empty() {
                            on_change(std::mem::take(&mut pending).into_iter().collect());
                        }
                        first = None;
                    }
                    // The watcher was dropped.
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .map_err(notify::Error::io)?;
    Ok(Watcher { _inner: inner })
}
