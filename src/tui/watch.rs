//! Debounced watching of the experiments folder. The folder, not the files: editors that save
//! by writing a temporary and renaming it replace the inode a file watch would be bound to.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

use super::catalog::is_experiment_file;

pub type Watcher = Debouncer<notify::RecommendedWatcher>;

/// Sends the changed experiment files (never empty batches) until the returned watcher drops.
pub fn watch_dir(dir: &Path, tx: Sender<Vec<PathBuf>>) -> notify::Result<Watcher> {
    let mut debouncer = new_debouncer(
        Duration::from_millis(200),
        move |res: DebounceEventResult| {
            if let Ok(events) = res {
                let paths: Vec<PathBuf> = events
                    .into_iter()
                    .map(|e| e.path)
                    .filter(|p| is_experiment_file(p))
                    .collect();
                if !paths.is_empty() {
                    let _ = tx.send(paths);
                }
            }
        },
    )?;
    debouncer
        .watcher()
        .watch(dir, RecursiveMode::NonRecursive)?;
    Ok(debouncer)
}
