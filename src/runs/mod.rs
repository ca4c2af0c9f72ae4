//! The run store: one directory per arm under `runs/`, holding everything needed to browse,
//! compare, rerun and resume it.
//!
//! ```text
//! runs/<id>/config.ron               the experiment reduced to this arm, exactly as it ran
//! runs/<id>/run.json                 status, protocol, class split, final result (atomic rewrite)
//! runs/<id>/metrics.jsonl            one JSON object a line: train windows, evals, tracked tasks
//! runs/<id>/checkpoint.safetensors   parameters + optimizer + RNG state (atomic rewrite)
//! runs/<id>/fits.json                regression only: the tracked tasks' true function, support
//!                                    set and predictions per adaptation step, at the latest
//!                                    evaluation (atomic rewrite)
//! runs/<id>/notes.json               the researcher's note and tags (optional, atomic rewrite)
//! ```
//! `metrics.jsonl` is appended a line at a time; a killed run can leave a partial last line,
//! which readers skip.

pub mod atomic;
pub mod checkpoint;
pub mod label;
mod list;
mod meta;
mod notes;

pub use list::*;
pub use meta::*;
pub use notes::*;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::algo::eval::EvalProtocol;
use crate::experiment::{self, Experiment};
use crate::metrics::{EvalResult, TaskFit, TaskPoint, TrainPoint};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{path}: {source}{}", disk_hint(.source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: {1}\n  fix: the run directory is damaged; rerun it from its config.ron")]
    Corrupt(PathBuf, String),
    #[error("run `{0}` is not inside the runs folder {1}\n  fix: name a run by its id (as listed by `metalab runs`) or by runs/<id>")]
    Escapes(String, PathBuf),
    #[error("no run `{0}` in {1}\n  fix: `metalab runs` lists the runs")]
    NotFound(String, PathBuf),
    #[error("{0}")]
    Config(#[from] experiment::ExperimentError),
    #[error("run `{id}` is still training (pid {pid})\n  fix: stop it first (`s` in the workbench's monitor, Ctrl-C or `kill {pid}` for `metalab run`), then try again")]
    StillRunning { id: String, pid: u32 },
    #[error("run `{id}` is recorded as training on host {host}, which this machine cannot check\n  fix: stop it there first; if that job is gone, delete the folder by hand (`rm -r` it)")]
    RunningElsewhere { id: String, host: String },
    #[error("{dir}: the run could not be created: {reason}\n  fix: free disk space (or fix the folder's permissions) and run it again; the partial folder was removed")]
    NotCreated { dir: PathBuf, reason: String },
    #[error("{path}: {have} training lines up to the checkpoint's iteration {iteration}, where there should be {want}: the file was truncated or deleted, and resuming would leave a gap in the curves\n  fix: `metalab rerun {id}` trains the run again from its config, to the same numbers")]
    MetricsGap {
        path: PathBuf,
        have: usize,
        want: usize,
        iteration: usize,
        id: String,
    },
}

fn disk_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) => "\n  fix: the disk is full; free space (checkpoints written so far are intact), then `metalab resume` the run",
        Some(13) => "\n  fix: check the folder's permissions",
        _ => "",
    }
}

impl RunError {
    pub fn io(path: &Path, source: std::io::Error) -> RunError {
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One line of `metrics.jsonl`. `t` is wall-clock seconds since the run started: the only field
/// that differs between a run and its rerun.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricLine {
    #[serde(flatten)]
    pub record: MetricRecord,
    pub t: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricRecord {
    Train(TrainPoint),
    Eval(EvalResult),
    Task(TaskPoint),
}

impl MetricRecord {
    pub fn iteration(&self) -> usize {
        match self {
            MetricRecord::Train(p) => p.iteration,
            MetricRecord::Eval(e) => e.iteration,
            MetricRecord::Task(p) => p.iteration,
        }
    }
}

/// A run directory being written.
pub struct RunDir {
    pub dir: PathBuf,
    pub meta: RunMeta,
    metrics: File,
    /// Held while this process writes the run; the kernel releases it when the process dies.
    _lock: File,
}

pub const CONFIG: &str = "config.ron";
pub const META: &str = "run.json";
pub const METRICS: &str = "metrics.jsonl";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const FITS: &str = "fits.json";

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RunDir {
    /// Create `root/<date>-<experiment>-<arm>[-n]/` and freeze the one-arm config in it.
    pub fn create(root: &Path, exp: &Experiment, facts: RunFacts) -> Result<RunDir, RunError> {
        let meta = RunMeta::new(exp, facts);
        std::fs::create_dir_all(root).map_err(|e| RunError::io(root, e))?;
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace([':', 'Z'], "")
            .replace('T', "-");
        // The host and a random tag make ids unique across machines writing into one shared
        // runs folder, or whose runs are copied together later.
        let base = format!(
            "{stamp}-{}-{}-{}",
            sanitize(&exp.name),
            sanitize(&meta.arm),
            id_tag(&meta.host)
        );
        let mut id = base.clone();
        let mut n = 1;
        let dir = loop {
            let dir = root.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                Err(e) => return Err(RunError::io(&dir, e)),
            }
        };
        // Until run.json is written the folder is not a run: on failure (a full disk) remove it,
        // rather than leave an empty folder whose error suggests resuming it.
        let fill = |dir: &Path| -> Result<RunDir, RunError> {
            let config = dir.join(CONFIG);
            atomic::write(&config, exp.to_ron().as_bytes())
                .map_err(|e| RunError::io(&config, e))?;
            let metrics_path = dir.join(METRICS);
            let metrics =
                File::create(&metrics_path).map_err(|e| RunError::io(&metrics_path, e))?;
            let meta = RunMeta { id, ..meta };
            let _lock = lock(dir, &meta)?;
            let mut run = RunDir {
                dir: dir.to_path_buf(),
                meta,
                metrics,
                _lock,
            };
            run.write_meta()?;
            Ok(run)
        };
        fill(&dir).map_err(|err| {
            let _ = std::fs::remove_dir_all(&dir);
            let reason = match &err {
                RunError::Io { path, source } => format!("{}: {source}", path.display()),
                other => other.to_string(),
            };
            RunError::NotCreated { dir, reason }
        })
    }

    /// Reopen an existing run to continue it, keeping only metrics up to `iteration` (the
    /// checkpoint's), so lines written after the checkpoint are not duplicated.
    pub fn reopen(dir: &Path, iteration: usize) -> Result<RunDir, RunError> {
        let meta = load_meta(dir)?;
        let _lock = lock(dir, &meta)?;
        let path = dir.join(METRICS);
        let kept: Vec<(String, MetricLine)> = read_lines(&path)?
            .into_iter()
            .filter(|(_, l)| l.record.iteration() <= iteration)
            .collect();
        // Every `log_every` iterations up to the checkpoint wrote a train line; fewer means the
        // file was truncated or deleted, and carrying on would leave a permanent gap.
        if let Ok(exp) = load_config(dir) {
            let want = iteration / exp.train.log_every.max(1);
            let have = kept
                .iter()
                .filter(|(_, l)| matches!(l.record, MetricRecord::Train(_)))
                .count();
            if have < want {
                return Err(RunError::MetricsGap {
                    path,
                    have,
                    want,
                    iteration,
                    id: run_id(dir),
                });
            }
        }
        let kept: Vec<String> = kept.into_iter().map(|(raw, _)| raw).collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))?;
        let metrics = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| RunError::io(&path, e))?;
        Ok(RunDir {
            dir: dir.to_path_buf(),
            meta,
            metrics,
            _lock,
        })
    }

    pub fn write_meta(&mut self) -> Result<(), RunError> {
        self.meta.updated_unix = now_unix();
        let path = self.dir.join(META);
        let text = serde_json::to_string_pretty(&self.meta).expect("run meta serializes");
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))
    }

    pub fn append(&mut self, record: MetricRecord, t: f64) -> Result<(), RunError> {
        let mut line = serde_json::to_string(&MetricLine { record, t }).expect("metric serializes");
        line.push('\n');
        let path = self.dir.join(METRICS);
        self.metrics
            .write_all(line.as_bytes())
            .and_then(|_| self.metrics.flush())
            .map_err(|e| RunError::io(&path, e))
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT)
    }

    /// Replace the tracked tasks' fits with the latest evaluation's: a figure needs only the
    /// latest, and rewriting keeps the file a few kilobytes however long the run.
    pub fn write_fits(&self, fits: &[TaskFit]) -> Result<(), RunError> {
        let path = self.dir.join(FITS);
        let text = serde_json::to_string(fits).expect("fits serialize");
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))
    }
}

/// The fits `write_fits` left; none for classification runs, runs recorded before metalab
/// wrote them, or an unreadable file (a figure, never a number anything is computed from).
pub fn load_fits(dir: &Path) -> Vec<TaskFit> {
    std::fs::read_to_string(dir.join(FITS))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// `<host, up to 8 characters>-<4 hex digits>`: short, readable, and distinct across machines.
fn id_tag(host: &str) -> String {
    let host: String = sanitize(host.split('.').next().unwrap_or(host))
        .chars()
        .take(8)
        .collect();
    format!("{host}{:04x}", rand::random::<u16>())
}

fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

/// Resolve a run named by id or by a path to its directory, refusing anything outside `root`.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, RunError> {
    let p = Path::new(name);
    let candidate = if p.components().count() > 1 || p.is_absolute() {
        p.to_path_buf()
    } else {
        if p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(RunError::Escapes(name.into(), root.to_path_buf()));
        }
        root.join(p)
    };
    let root_c = root
        .canonicalize()
        .map_err(|_| RunError::NotFound(name.into(), root.to_path_buf()))?;
    let cand_c = candidate
        .canonicalize()
        .map_err(|_| RunError::NotFound(name.into(), root.to_path_buf()))?;
    if cand_c == root_c || !cand_c.starts_with(&root_c) {
        return Err(RunError::Escapes(name.into(), root.to_path_buf()));
    }
    // A damaged run (no run.json) can still be rerun from its config or deleted.
    if !cand_c.join(META).is_file() && !cand_c.join(CONFIG).is_file() {
        return Err(RunError::NotFound(name.into(), root.to_path_buf()));
    }
    Ok(cand_c)
}

/// A run's identity is its folder's name, whatever `run.json` says: a copied folder
/// (`runs/victim-backup/`) carries the original's `id`, and acting on that id would touch the
/// original. Every reader goes through here, so `id` always names the folder it was read from.
pub fn run_id(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn load_meta(dir: &Path) -> Result<RunMeta, RunError> {
    let path = dir.join(META);
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
    let mut meta: RunMeta =
        serde_json::from_str(&text).map_err(|e| RunError::Corrupt(path, e.to_string()))?;
    meta.id = run_id(dir);
    Ok(meta)
}

pub fn load_config(dir: &Path) -> Result<Experiment, RunError> {
    Ok(experiment::load_file(&dir.join(CONFIG))?)
}

fn read_lines(path: &Path) -> Result<Vec<(String, MetricLine)>, RunError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(RunError::io(path, e)),
    };
    let mut out = vec![];
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| RunError::io(path, e))?;
        // A partial last line from a killed process does not parse: skip it.
        if let Ok(m) = serde_json::from_str::<MetricLine>(&line) {
            out.push((line, m));
        }
    }
    Ok(out)
}

/// All metrics of a run, split by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    pub train: Vec<TrainPoint>,
    pub evals: Vec<EvalResult>,
    pub tasks: Vec<TaskPoint>,
    pub classification: bool,
    /// (iteration, training seconds) of each train point: charts can put wall time on x.
    pub clock: Vec<(usize, f64)>,
    /// The tracked tasks' fits at the latest evaluation (regression; `fits.json`).
    pub fits: Vec<TaskFit>,
}

pub fn load_metrics(dir: &Path) -> Result<RunMetrics, RunError> {
    let mut m = RunMetrics::default();
    for (_, line) in read_lines(&dir.join(METRICS))? {
        match line.record {
            MetricRecord::Train(p) => {
                m.classification |= p.accuracy.is_some();
                m.clock.push((p.iteration, line.t));
                m.train.push(p)
            }
            MetricRecord::Eval(e) => {
                m.classification |= e.accuracy.is_some();
                m.evals.push(e)
            }
            MetricRecord::Task(p) => m.tasks.push(p),
        }
    }
    m.fits = load_fits(dir);
    Ok(m)
}

/// The metrics lines without their wall-clock field: what a rerun must reproduce exactly.
pub fn deterministic_metrics(dir: &Path) -> Result<Vec<MetricRecord>, RunError> {
    Ok(read_lines(&dir.join(METRICS))?
        .into_iter()
        .map(|(_, l)| l.record)
        .collect())
}

/// "MSE 0.213 ± 0.018" or "acc 93.1% ± 0.6".
pub fn headline(e: &EvalResult) -> String {
    match e.accuracy {
        Some(a) => format!("acc {:.1}% ± {:.1}", 100.0 * a.mean, 100.0 * a.ci95),
        None => format!("MSE {:.3} ± {:.3}", e.loss.mean, e.loss.ci95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_escapes() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join(META), "{}").unwrap();
        let name = outside.path().to_string_lossy().to_string();
        assert!(matches!(
            resolve(root.path(), &name),
            Err(RunError::Escapes(..))
        ));
        assert!(matches!(
            resolve(root.path(), ".."),
            Err(RunError::Escapes(..))
        ));
        assert!(matches!(
            resolve(root.path(), "nope"),
            Err(RunError::NotFound(..))
        ));
        std::fs::create_dir(root.path().join("r1")).unwrap();
        std::fs::write(root.path().join("r1").join(META), "{}").unwrap();
        assert!(resolve(root.path(), "r1").is_ok());
        let via = format!("{}/r1/../r1", root.path().display());
        assert!(resolve(root.path(), &via).is_ok());
    }
}
