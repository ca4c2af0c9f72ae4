//! The names of the files in a run folder, and of the run itself.

use std::path::Path;

pub const CONFIG: &str = "config.ron";
pub const META: &str = "run.json";
pub const METRICS: &str = "metrics.jsonl";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const FITS: &str = "fits.json";
/// The tracked classification tasks' per-step query results at the latest evaluation.
pub const CLASS_FITS: &str = "class_fits.json";

/// The run's note and tags, written by the researcher.
pub const NOTES: &str = "notes.json";
/// `metalab eval`'s records of a saved run evaluated again.
pub const EVALS: &str = "evals.jsonl";
/// A run's task-affinity record (issue 21), as JSON and as long-format CSV.
pub const AFFINITY: &str = "affinity.json";
pub const AFFINITY_CSV: &str = "affinity.csv";
/// A multi-task run's per-task losses at its end (`crate::transfer::TaskLosses`, issue 21).
pub const TASK_LOSSES: &str = "task-losses.json";
/// A task-embedding arm's embeddings of the validation tasks at its latest evaluation.
pub const EMBEDDINGS_RECORD: &str = "embeddings.json";
/// The lock file in a run folder: two processes never write one run (two `resume`s at once).
pub const LOCK: &str = ".lock";

/// A run's identity is its folder's name, whatever `run.json` says: a copied folder
/// (`runs/victim-backup/`) carries the original's `id`, and acting on that id would touch the
/// original. Every reader goes through here, so `id` always names the folder it was read from.
pub fn run_id(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
