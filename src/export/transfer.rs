//! The negative-transfer table next to an export's curves: every exported multi-task run
//! against the single-task baseline among them, task by task (`transfer::against_baselines`).

use std::path::{Path, PathBuf};

use super::ExportError;
use crate::transfer::{self, TaskLosses};

/// Write `<dir>/<stem>-transfer.csv` when some run of `runs` (id, folder) pairs with a
/// single-task baseline among them; `None` when none does. Runs without a per-task record
/// (not multi-task, unfinished) are skipped.
pub fn write(
    dir: &Path,
    stem: &str,
    runs: &[(String, PathBuf)],
) -> Result<Option<PathBuf>, ExportError> {
    let records: Vec<(String, TaskLosses)> = runs
        .iter()
        .filter_map(|(id, d)| Some((id.clone(), TaskLosses::load(d).ok()??)))
        .collect();
    let rows = transfer::against_baselines(&records);
    if rows.is_empty() {
        return Ok(None);
    }
    let stem = super::name::free_stem(dir, &format!("{stem}-transfer"), &["csv"]);
    let path = dir.join(format!("{stem}.csv"));
    crate::runs::atomic::write(&path, transfer::transfers_csv(&rows).as_bytes()).map_err(
        |source| ExportError::Io {
            path: path.clone(),
            source,
        },
    )?;
    Ok(Some(path))
}
