//! The run store: one directory per arm under `runs/`, holding everything needed to browse,
//! compare, rerun and resume it.
//!
//! ```text
//! runs/<id>/config.ron               the experiment reduced to this arm, exactly as it ran
//! runs/<id>/run.json                 status, protocol, class split, final result (atomic rewrite)
//! runs/<id>/metrics.jsonl            one JSON object a line: train windows, evals, tracked tasks
//! runs/<id>/checkpoint.safetensors   parameters + optimizer + RNG state (atomic rewrite)
//! ```
//! `metrics.jsonl` is appended a line at a time; a killed run can leave a partial last line,
//! which readers skip.

pub mod atomic;
pub mod checkpoint;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::algo::eval::EvalProtocol;
use crate::experiment::{self, DeviceSpec, Experiment};
use crate::metrics::{EvalResult, TaskPoint, TrainPoint};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Finished,
    /// Stopped on request (Ctrl-C, the UI's stop): resumable from its last checkpoint.
    Stopped,
    Failed(String),
    /// The process died without saying so (killed, power loss): resumable from its last checkpoint.
    Interrupted,
}

impl RunStatus {
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed(_) => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub experiment: String,
    pub arm: String,
    pub algorithm: String,
    pub status: RunStatus,
    pub started_unix: u64,
    pub updated_unix: u64,
    pub iteration: usize,
    pub total_iterations: usize,
    pub seed: u64,
    pub threads: usize,
    #[serde(with = "device_name")]
    pub device: DeviceSpec,
    pub params: usize,
    pub family: String,
    pub class_split: serde_json::Value,
    pub protocol: EvalProtocol,
    pub final_eval: Option<EvalResult>,
    pub headline: Option<String>,
    pub seconds: f64,
    pub pid: u32,
    pub metalab_version: String,
    /// The experiment file it was launched from, if any.
    pub source: Option<PathBuf>,
    /// The run this one reproduces, for `metalab rerun`.
    pub rerun_of: Option<String>,
    /// The machine it ran on (hostname), so runs merged from many machines say where they came
    /// from, and a `running` run on another host is not mistaken for a dead local one.
    #[serde(default)]
    pub host: String,
    /// The CPU model (or GPU) it ran on: kernels differ (AVX-512 or portable), and so may the
    /// last digits of the metrics.
    #[serde(default)]
    pub device_detail: String,
    /// The sweep variant this run belongs to (`metalab sweep`), if any.
    #[serde(default)]
    pub variant: Option<String>,
}

/// What the engine knows of a new run beyond its one-arm experiment.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub threads: usize,
    pub params: usize,
    /// The family's one-line description.
    pub family: String,
    /// The family's seeded class split.
    pub class_split: serde_json::Value,
    pub protocol: EvalProtocol,
    pub source: Option<PathBuf>,
    pub rerun_of: Option<String>,
    /// The sweep variant the run belongs to, if any.
    pub variant: Option<String>,
}

impl RunMeta {
    /// The record of a run about to start: `exp` holds exactly one arm. The id is given when
    /// the directory is made.
    pub fn new(exp: &Experiment, facts: RunFacts) -> RunMeta {
        let arm = &exp.arms[0];
        RunMeta {
            id: String::new(),
            experiment: exp.name.clone(),
            arm: arm.name.clone(),
            algorithm: arm.algorithm.label().into(),
            status: RunStatus::Running,
            started_unix: now_unix(),
            updated_unix: 0,
            iteration: 0,
            total_iterations: exp.train.iterations,
            seed: exp.seed,
            threads: facts.threads,
            device: exp.device,
            params: facts.params,
            family: facts.family,
            class_split: facts.class_split,
            protocol: facts.protocol,
            final_eval: None,
            headline: None,
            seconds: 0.0,
            pid: std::process::id(),
            metalab_version: env!("CARGO_PKG_VERSION").into(),
            source: facts.source,
            rerun_of: facts.rerun_of,
            host: local_host(),
            device_detail: match exp.device {
                DeviceSpec::Cpu => cpu_model(),
                DeviceSpec::Cuda(i) => format!("CUDA device {i}"),
            },
            variant: facts.variant,
        }
    }
}

/// `run.json` names the device as the experiment file does ("Cpu", "Cuda(0)").
mod device_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::experiment::DeviceSpec;

    pub fn serialize<S: Serializer>(d: &DeviceSpec, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{d:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceSpec, D::Error> {
        let name = String::deserialize(d)?;
        let cuda = name
            .strip_prefix("Cuda(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse().ok());
        match (name.as_str(), cuda) {
            ("Cpu", _) => Ok(DeviceSpec::Cpu),
            (_, Some(n)) => Ok(DeviceSpec::Cuda(n)),
            _ => Err(D::Error::custom(format!(
                "unknown device `{name}` (expected Cpu or Cuda(N))"
            ))),
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
}

pub const CONFIG: &str = "config.ron";
pub const META: &str = "run.json";
pub const METRICS: &str = "metrics.jsonl";
pub const CHECKPOINT: &str = "checkpoint.safetensors";

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
        let config = dir.join(CONFIG);
        atomic::write(&config, exp.to_ron().as_bytes()).map_err(|e| RunError::io(&config, e))?;
        let metrics_path = dir.join(METRICS);
        let metrics = File::create(&metrics_path).map_err(|e| RunError::io(&metrics_path, e))?;
        let mut run = RunDir {
            dir,
            meta: RunMeta { id, ..meta },
            metrics,
        };
        run.write_meta()?;
        Ok(run)
    }

    /// Reopen an existing run to continue it, keeping only metrics up to `iteration` (the
    /// checkpoint's), so lines written after the checkpoint are not duplicated.
    pub fn reopen(dir: &Path, iteration: usize) -> Result<RunDir, RunError> {
        let meta = load_meta(dir)?;
        let path = dir.join(METRICS);
        let kept: Vec<String> = read_lines(&path)?
            .into_iter()
            .filter(|(_, l)| l.record.iteration() <= iteration)
            .map(|(raw, _)| raw)
            .collect();
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
}

/// `<host, up to 8 characters>-<4 hex digits>`: short, readable, and distinct across machines.
fn id_tag(host: &str) -> String {
    let host: String = sanitize(host.split('.').next().unwrap_or(host))
        .chars()
        .take(8)
        .collect();
    format!("{host}{:04x}", rand::random::<u16>())
}

/// This machine's name (the kernel's hostname), or "unknown".
pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model name, for `RunMeta::device_detail`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
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
    if !cand_c.join(META).is_file() {
        return Err(RunError::NotFound(name.into(), root.to_path_buf()));
    }
    Ok(cand_c)
}

pub fn load_meta(dir: &Path) -> Result<RunMeta, RunError> {
    let path = dir.join(META);
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| RunError::Corrupt(path, e.to_string()))
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
}

pub fn load_metrics(dir: &Path) -> Result<RunMetrics, RunError> {
    let mut m = RunMetrics::default();
    for (_, line) in read_lines(&dir.join(METRICS))? {
        match line.record {
            MetricRecord::Train(p) => {
                m.classification |= p.accuracy.is_some();
                m.train.push(p)
            }
            MetricRecord::Eval(e) => {
                m.classification |= e.accuracy.is_some();
                m.evals.push(e)
            }
            MetricRecord::Task(p) => m.tasks.push(p),
        }
    }
    Ok(m)
}

/// The metrics lines without their wall-clock field: what a rerun must reproduce exactly.
pub fn deterministic_metrics(dir: &Path) -> Result<Vec<MetricRecord>, RunError> {
    Ok(read_lines(&dir.join(METRICS))?
        .into_iter()
        .map(|(_, l)| l.record)
        .collect())
}

/// A listed run, for the browser and `metalab runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: String,
    pub dir: PathBuf,
    pub experiment: String,
    pub arm: String,
    pub algorithm: String,
    pub status: RunStatus,
    pub started_unix: u64,
    pub iteration: usize,
    pub total_iterations: usize,
    pub headline: Option<String>,
    pub host: String,
    pub variant: Option<String>,
}

/// Every run under `root`, newest first. Unreadable directories are skipped.
pub fn list_runs(root: &Path) -> Vec<RunInfo> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return vec![];
    };
    let mut runs: Vec<RunInfo> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let meta = load_meta(&dir).ok()?;
            Some(RunInfo {
                id: meta.id.clone(),
                status: effective_status(&meta),
                dir,
                experiment: meta.experiment,
                arm: meta.arm,
                algorithm: meta.algorithm,
                started_unix: meta.started_unix,
                iteration: meta.iteration,
                total_iterations: meta.total_iterations,
                headline: meta.headline,
                host: meta.host,
                variant: meta.variant,
            })
        })
        .collect();
    runs.sort_by(|a, b| b.started_unix.cmp(&a.started_unix).then(b.id.cmp(&a.id)));
    runs
}

/// A run marked running whose process is gone was interrupted. Only a run of this host can be
/// probed; one made elsewhere (a copied run, a shared folder) keeps the status it recorded.
pub fn effective_status(meta: &RunMeta) -> RunStatus {
    let here = meta.host.is_empty() || meta.host == local_host();
    if meta.status == RunStatus::Running && here && !process_alive(meta.pid) {
        RunStatus::Interrupted
    } else {
        meta.status.clone()
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        // A killed process whose parent died too can linger as a zombie (state Z) until
        // someone reaps it: it is dead all the same.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    } else {
        true
    }
}

/// Delete a run directory (only one inside `root`).
pub fn delete_run(root: &Path, id: &str) -> Result<(), RunError> {
    let dir = resolve(root, id)?;
    std::fs::remove_dir_all(&dir).map_err(|e| RunError::io(&dir, e))
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
