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
//! runs/<id>/class_fits.json          classification only: the tracked tasks' classes, support
//!                                    labels and query loss/accuracy per adaptation step
//! runs/<id>/notes.json               the researcher's note and tags (optional, atomic rewrite)
//! runs/<id>/affinity.json            the training tasks' affinities (`train.affinity`), at the
//!                                    latest evaluation (atomic rewrite; `affinity.csv` beside it)
//! runs/<id>/embeddings.json          a task-embedding arm's (CAVIA) validation tasks' embeddings
//!                                    and parameters at the latest evaluation (atomic rewrite)
//! ```
//! `metrics.jsonl` is appended a line at a time; a killed run can leave a partial last line,
//! which readers skip. Any other line that is not a record is damage: [`read_metrics`] reports
//! it, `resume` refuses it and `export` names it, rather than drop it silently.
//!
//! Nothing here reads or writes through a symbolic link, or opens a FIFO or device, in a run
//! folder ([`files`]).

mod affinity;
pub mod atomic;
pub mod checkpoint;
pub mod embeddings;
mod error;
pub mod files;
pub mod label;
mod list;
mod lock;
mod meta;
mod names;
mod notes;
mod text;

pub use affinity::load_affinity;
pub use embeddings::{load_embeddings, EmbeddingRecord};
pub use error::{MetricsDamage, RunError};
pub use list::*;
pub use lock::{holder, try_claim};
pub use meta::*;
pub use names::*;
pub use notes::*;
pub use text::printable;

use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::algo::eval::EvalProtocol;
use crate::experiment::{self, Experiment};
use crate::metrics::{ClassFit, EvalResult, TaskFit, TaskPoint, TrainPoint};

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
    /// The final test line is already written (see [`RunDir::reopen`]).
    final_recorded: bool,
    /// Held while this process writes the run; the kernel releases it when the process dies.
    _lock: File,
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
                files::create_new(&metrics_path).map_err(|e| RunError::io(&metrics_path, e))?;
            let meta = RunMeta { id, ..meta };
            let _lock = lock::lock(dir)?;
            let mut run = RunDir {
                dir: dir.to_path_buf(),
                meta,
                metrics,
                final_recorded: false,
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
    /// checkpoint's), so lines written after the checkpoint are not duplicated. A folder with a
    /// link among its files, damaged lines or a history that does not match the checkpoint is
    /// refused: resuming would write through the link, or rewrite the damage away for good.
    pub fn reopen(dir: &Path, iteration: usize) -> Result<RunDir, RunError> {
        refuse_links(dir)?;
        let meta = load_meta(dir)?;
        let _lock = lock::lock(dir)?;
        let path = dir.join(METRICS);
        let file = match read_metrics(&path) {
            Err(RunError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                MetricsFile::default()
            }
            other => other?,
        };
        // A partial last line is what a process killed in the middle of an append leaves; it
        // was written after the last checkpoint (a checkpoint follows every line of its
        // iteration), so training again writes it again. Any other damage is someone's.
        let damage: Vec<MetricsDamage> = file.damage.into_iter().filter(|d| !d.partial).collect();
        if !damage.is_empty() {
            return Err(RunError::MetricsDamaged {
                path,
                damage,
                id: run_id(dir),
            });
        }
        let kept: Vec<(String, MetricLine)> = file
            .lines
            .into_iter()
            .filter(|(_, l)| l.record.iteration() <= iteration)
            .collect();
        if let Ok(exp) = load_config(dir) {
            check_history(&kept, iteration, &exp).map_err(|h| match h {
                History::Gap { have, want } => RunError::MetricsGap {
                    path: path.clone(),
                    have,
                    want,
                    iteration,
                    id: run_id(dir),
                },
                History::Mismatch(why) => RunError::MetricsHistory {
                    path: path.clone(),
                    why,
                    id: run_id(dir),
                },
            })?;
        }
        // Killed between the final test line and run.json's rename: the test is not recorded
        // a second time when the resumed run finishes.
        let final_recorded = kept.iter().any(|(_, l)| is_test(&l.record));
        let kept: Vec<String> = kept.into_iter().map(|(raw, _)| raw).collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))?;
        let metrics = files::open_append(&path, false).map_err(|e| RunError::io(&path, e))?;
        Ok(RunDir {
            dir: dir.to_path_buf(),
            meta,
            metrics,
            final_recorded,
            _lock,
        })
    }

    /// Is the final test already in `metrics.jsonl` (a resume of a run killed just after
    /// writing it)?
    pub fn final_recorded(&self) -> bool {
        self.final_recorded
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

    /// The task embeddings of the latest evaluation, replacing the last ones.
    pub fn write_embeddings(&self, record: &EmbeddingRecord) -> Result<(), RunError> {
        let path = self.dir.join(EMBEDDINGS_RECORD);
        let text = serde_json::to_string(record).expect("embeddings serialize");
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))
    }

    /// [`write_fits`](Self::write_fits) for classification's tracked tasks.
    pub fn write_class_fits(&self, fits: &[ClassFit]) -> Result<(), RunError> {
        let path = self.dir.join(CLASS_FITS);
        let text = serde_json::to_string(fits).expect("class fits serialize");
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))
    }
}

/// The class fits `write_class_fits` left, as [`load_fits`] reads its file.
pub fn load_class_fits(dir: &Path) -> Vec<ClassFit> {
    files::read_text(&dir.join(CLASS_FITS))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The fits `write_fits` left; none for classification runs, runs recorded before metalab
/// wrote them, or an unreadable file (a figure, never a number anything is computed from).
pub fn load_fits(dir: &Path) -> Vec<TaskFit> {
    files::read_text(&dir.join(FITS))
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

/// Resolve a run named by id or by a path to its directory, refusing anything outside `root`
/// and a run folder that is a link (even to a folder inside: every command, `metalab sweep`
/// and the listings included, takes only the real folders of a runs folder as runs).
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, RunError> {
    let p = Path::new(name);
    let named = if p.components().count() > 1 || p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    };
    if files::is_link(&named) {
        return Err(RunError::Link(named));
    }
    locate(root, name)
}

/// The link a plain run name stands for in `root`, if that entry is a link.
fn entry_link(root: &Path, name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let plain =
        p.components().count() == 1 && matches!(p.components().next(), Some(Component::Normal(_)));
    let path = root.join(p);
    (plain && files::is_link(&path)).then_some(path)
}

/// [`resolve`] without refusing links: only to delete.
fn locate(root: &Path, name: &str) -> Result<PathBuf, RunError> {
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
    let there = |f: &str| std::fs::symlink_metadata(cand_c.join(f)).is_ok();
    if !there(META) && !there(CONFIG) {
        return Err(RunError::NotFound(name.into(), root.to_path_buf()));
    }
    Ok(cand_c)
}

pub fn load_meta(dir: &Path) -> Result<RunMeta, RunError> {
    let path = dir.join(META);
    let text = files::read_text(&path).map_err(|e| RunError::io(&path, e))?;
    let mut meta: RunMeta =
        serde_json::from_str(&text).map_err(|e| RunError::Corrupt(path, e.to_string()))?;
    meta.id = run_id(dir);
    Ok(meta)
}

pub fn load_config(dir: &Path) -> Result<Experiment, RunError> {
    let path = dir.join(CONFIG);
    if files::is_link(&path) {
        return Err(RunError::Link(path));
    }
    Ok(experiment::load_file(&path)?)
}

/// The files metalab writes in a run folder (and `metalab eval`'s record, and the lock).
const RUN_FILES: [&str; 11] = [
    META,
    CONFIG,
    METRICS,
    CHECKPOINT,
    FITS,
    AFFINITY,
    AFFINITY_CSV,
    TASK_LOSSES,
    NOTES,
    EVALS,
    LOCK,
];

/// Refuse a run folder where any of the files metalab writes is a symbolic link.
pub fn refuse_links(dir: &Path) -> Result<(), RunError> {
    match RUN_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| files::is_link(p))
    {
        Some(p) => Err(RunError::Link(p)),
        None => Ok(()),
    }
}

/// `metrics.jsonl` as written: its records with their raw text, and its damaged lines.
#[derive(Debug, Clone, Default)]
pub struct MetricsFile {
    pub lines: Vec<(String, MetricLine)>,
    pub damage: Vec<MetricsDamage>,
}

/// Read `metrics.jsonl`, reporting every line that is not a record (a missing file is an
/// error here: a run always has one).
pub fn read_metrics(path: &Path) -> Result<MetricsFile, RunError> {
    use std::io::{BufRead, Read};
    let f = files::open_regular(path).map_err(|e| RunError::io(path, e))?;
    let mut reader = std::io::BufReader::new(f);
    let mut out = MetricsFile::default();
    let mut raw = vec![];
    for line in 1.. {
        raw.clear();
        // A line longer than any record is damage, not a reason to hold gigabytes: read the
        // rest of it without keeping it.
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)
            .map_err(|e| RunError::io(path, e))?;
        if n == 0 {
            break;
        }
        let ended = raw.last() == Some(&b'\n');
        let mut too_long = false;
        if !ended && n as u64 == MAX_LINE {
            too_long = true;
            let mut skip = vec![];
            loop {
                skip.clear();
                let m = (&mut reader)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut skip)
                    .map_err(|e| RunError::io(path, e))?;
                if m == 0 || skip.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        let body = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let parsed = (!too_long)
            .then(|| std::str::from_utf8(body).ok())
            .flatten()
            .and_then(|t| Some((t, serde_json::from_str::<MetricLine>(t).ok()?)));
        match parsed {
            Some((t, m)) => out.lines.push((t.to_string(), m)),
            None => {
                let text: String = printable(&String::from_utf8_lossy(body))
                    .replace('\n', " ")
                    .chars()
                    .take(80)
                    .collect();
                // Cut short: the file ends inside it (what a kill mid-append leaves).
                let partial = !ended && !too_long && reader.fill_buf().is_ok_and(|b| b.is_empty());
                out.damage.push(MetricsDamage {
                    line,
                    text,
                    partial,
                });
            }
        }
    }
    Ok(out)
}

/// The longest `metrics.jsonl` line read as a record: an evaluation with its per-step results
/// is a few kilobytes.
const MAX_LINE: u64 = 1 << 20;

fn read_lines(path: &Path) -> Result<Vec<(String, MetricLine)>, RunError> {
    match read_metrics(path) {
        Ok(f) => Ok(f.lines),
        Err(RunError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(vec![])
        }
        Err(e) => Err(e),
    }
}

fn is_test(r: &MetricRecord) -> bool {
    matches!(r, MetricRecord::Eval(e) if e.split == crate::tasks::Split::Test)
}

enum History {
    Gap { have: usize, want: usize },
    Mismatch(String),
}

/// The lines up to a checkpoint at `iteration` are exactly what training writes up to there:
/// a train line every `log_every` iterations, an evaluation (with its tracked tasks) every
/// `eval.every`, and the last of each at the final iteration.
fn check_history(
    kept: &[(String, MetricLine)],
    iteration: usize,
    exp: &Experiment,
) -> Result<(), History> {
    let total = exp.train.iterations;
    let expected = |every: usize| -> Vec<usize> {
        let mut v: Vec<usize> = (1..=iteration.checked_div(every).unwrap_or(0))
            .map(|k| k * every)
            .collect();
        if iteration == total && v.last() != Some(&total) && total > 0 {
            v.push(total);
        }
        v
    };
    let train: Vec<usize> = kept
        .iter()
        .filter_map(|(_, l)| match &l.record {
            MetricRecord::Train(p) => Some(p.iteration),
            _ => None,
        })
        .collect();
    let want_train = expected(exp.train.log_every.max(1));
    if train.len() < want_train.len() {
        return Err(History::Gap {
            have: train.len(),
            want: want_train.len(),
        });
    }
    if train != want_train {
        return Err(History::Mismatch(format!(
            "its training lines are at iterations {} where training writes them at {}",
            brief(&train),
            brief(&want_train)
        )));
    }
    let evals: Vec<usize> = kept
        .iter()
        .filter_map(|(_, l)| match &l.record {
            MetricRecord::Eval(e) if !is_test(&l.record) => Some(e.iteration),
            _ => None,
        })
        .collect();
    let want_evals = expected(exp.eval.every);
    if evals != want_evals {
        return Err(History::Mismatch(format!(
            "its evaluations are at iterations {} where training writes them at {}",
            brief(&evals),
            brief(&want_evals)
        )));
    }
    let tasks = kept
        .iter()
        .filter(|(_, l)| matches!(l.record, MetricRecord::Task(_)))
        .count();
    let want_tasks = want_evals.len() * exp.eval.tracked_tasks;
    if tasks != want_tasks {
        return Err(History::Mismatch(format!(
            "it has {tasks} tracked-task lines where training writes {want_tasks}"
        )));
    }
    let tests = kept.iter().filter(|(_, l)| is_test(&l.record)).count();
    if tests > usize::from(iteration == total) {
        return Err(History::Mismatch(format!(
            "it has {tests} final test lines up to iteration {iteration}"
        )));
    }
    Ok(())
}

/// `5, 10, 15, … 95, 100 (20 in all)` for a long list.
fn brief(v: &[usize]) -> String {
    let s = |x: &[usize]| {
        x.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if v.is_empty() {
        "none".into()
    } else if v.len() <= 8 {
        s(v)
    } else {
        format!(
            "{}, … {} ({} in all)",
            s(&v[..4]),
            s(&v[v.len() - 2..]),
            v.len()
        )
    }
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
    /// The tracked tasks' class fits at the latest evaluation (classification;
    /// `class_fits.json`).
    pub class_fits: Vec<ClassFit>,
    /// The validation tasks' embeddings at the latest evaluation (`embeddings.json`).
    pub embeddings: Option<EmbeddingRecord>,
    /// The training tasks' affinities at the latest evaluation (`affinity.json`).
    pub affinity: Option<crate::algo::affinity::AffinityRecord>,
    /// Lines of `metrics.jsonl` that are no record, left out of the above: whoever shows the
    /// metrics says so (a cut last line is what a run being written or killed leaves).
    pub damage: Vec<MetricsDamage>,
}

impl RunMetrics {
    /// The records of `metrics.jsonl` (as [`read_metrics`] gives them), split by kind in file
    /// order; nothing else (fits, damage) is filled in.
    pub fn from_lines(lines: Vec<(String, MetricLine)>) -> RunMetrics {
        let mut m = RunMetrics::default();
        for (_, line) in lines {
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
        m
    }
}

pub fn load_metrics(dir: &Path) -> Result<RunMetrics, RunError> {
    let path = dir.join(METRICS);
    let file = match read_metrics(&path) {
        Ok(f) => f,
        Err(RunError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            MetricsFile::default()
        }
        Err(e) => return Err(e),
    };
    let mut m = RunMetrics::from_lines(file.lines);
    m.damage = file.damage;
    m.fits = load_fits(dir);
    m.class_fits = load_class_fits(dir);
    m.embeddings = load_embeddings(dir);
    // Read here, not by `affinity::load_affinity`: that file writes through `RunDir`, which
    // lives here, and a call back would make the two files import each other.
    m.affinity = files::read_text(&dir.join(AFFINITY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
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
    fn a_link_in_place_of_any_file_metalab_writes_is_refused() {
        for name in RUN_FILES {
            let dir = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            let target = outside.path().join("precious");
            std::fs::write(&target, "precious").unwrap();
            std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
            assert!(
                matches!(refuse_links(dir.path()), Err(RunError::Link(p)) if p.ends_with(name)),
                "{name}"
            );
        }
        assert!(RUN_FILES.contains(&TASK_LOSSES));
        assert!(refuse_links(tempfile::tempdir().unwrap().path()).is_ok());
    }

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

    #[test]
    fn read_metrics_reports_garbled_long_and_cut_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS);
        let good = r#"{"kind":"train","iteration":5,"loss":1.0,"accuracy":null,"t":0.1}"#;
        let long = "x".repeat(MAX_LINE as usize + 10);
        let text = format!("{good}\n{{garbled\n{long}\n{good}\n{}", &good[..20]);
        std::fs::write(&path, text).unwrap();
        let f = read_metrics(&path).unwrap();
        assert_eq!(f.lines.len(), 2);
        let d: Vec<(usize, bool)> = f.damage.iter().map(|d| (d.line, d.partial)).collect();
        assert_eq!(d, [(2, false), (3, false), (5, true)]);
        assert!(f.damage[1].text.len() <= 80);
        assert!(matches!(
            read_metrics(&dir.path().join("none")),
            Err(RunError::Io { .. })
        ));
    }
}
