//! The experiments folder as the browser lists it: every `.ron` file, valid or not.
//!
//! Reading an entry is two steps: the file itself (small, capped in size) and, for Omniglot
//! experiments, the data folder check, which lists thousands of files. The workbench does both
//! on its scanner thread ([`super::scanner`]) and marks the entry as being checked in between; [`scan`]
//! does both at once for callers that may block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::experiment::{parse_str, FamilySpec};

/// What a listed file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Experiment,
    /// A sweep file (`*.sweep.ron`): launching it runs its variants on the local queue.
    Sweep,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpEntry {
    pub kind: EntryKind,
    pub path: PathBuf,
    pub file_name: String,
    pub name: String,
    pub family: String,
    pub arms: Vec<String>,
    pub description: String,
    /// The parse/validation error, displayed instead of crashing on a broken file.
    pub error: Option<String>,
    /// The data folder check has not answered yet.
    pub checking_data: bool,
    /// The text as read, so an open editor is reconciled with the disk without reading again.
    pub text: Option<Arc<str>>,
}

impl ExpEntry {
    pub fn is_valid(&self) -> bool {
        self.error.is_none()
    }
}

/// The data folder check an entry still needs: the family as a launch would load it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataCheck {
    pub family: FamilySpec,
    pub seed: u64,
}

pub fn family_label(f: &FamilySpec) -> String {
    match f {
        FamilySpec::Sinusoid(s) => format!("sinusoid {}-shot", s.shots),
        FamilySpec::Omniglot(o) => format!("omniglot {}-way {}-shot", o.ways, o.shots),
        FamilySpec::Synthetic(s) => format!("synthetic {}-way {}-shot", s.ways, s.shots),
        FamilySpec::Mixed(m) => format!("mixed {} groups {}-shot", m.groups.len(), m.shots),
    }
}

/// [`read_file`] and the data check together. `data` is the command line's `--data`, which
/// overrides every Omniglot experiment's `root`.
pub fn read_entry(path: &Path, data: Option<&Path>) -> ExpEntry {
    let (mut e, check) = read_file(path, data);
    if let Some(check) = check {
        finish_data_check(&mut e, run_data_check(&check));
    }
    e
}

/// The entry as far as the file alone tells, and the data check it still needs (Omniglot), in
/// which case `checking_data` is set. Never blocks on a FIFO or a device: only regular files
/// are opened.
pub fn read_file(path: &Path, data: Option<&Path>) -> (ExpEntry, Option<DataCheck>) {
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = if is_sweep_file(path) {
        EntryKind::Sweep
    } else {
        EntryKind::Experiment
    };
    let mut e = ExpEntry {
        kind,
        path: path.to_path_buf(),
        name: file_name.trim_end_matches(".ron").to_string(),
        file_name,
        family: "?".into(),
        arms: vec![],
        description: String::new(),
        error: None,
        checking_data: false,
        text: None,
    };
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            e.error = Some(format!(
                "{}: not a regular file (a folder, FIFO or device); experiment files are RON text\n  fix: move it out of experiments/",
                display_path(path).display()
            ));
            return (e, None);
        }
        Err(err) => {
            e.error = Some(format!("{}: {err}", display_path(path).display()));
            return (e, None);
        }
        Ok(_) => {}
    }
    let text = match crate::experiment::read_text(path) {
        Ok(text) => text,
        Err(err) => {
            e.error = Some(err.to_string());
            return (e, None);
        }
    };
    e.text = Some(Arc::from(text.as_str()));
    if kind == EntryKind::Sweep {
        read_sweep(&mut e, &text);
        return (e, None);
    }
    let x = match parse_str(&text, &display_path(path)) {
        Ok(x) => x,
        Err(err) => {
            e.error = Some(err.to_string());
            return (e, None);
        }
    };
    e.name = x.name.clone();
    e.family = family_label(&x.family);
    e.arms = x
        .arms
        .iter()
        .map(|a| format!("{} ({})", a.name, a.algorithm.label()))
        .collect();
    e.description = x.description.clone();
    let mut family = x.family.clone();
    if let (Some(d), FamilySpec::Omniglot(o)) = (data, &mut family) {
        o.root = d.to_path_buf();
    }
    if !matches!(family, FamilySpec::Omniglot(_)) {
        return (e, None);
    }
    e.checking_data = true;
    let seed = x.seed;
    (e, Some(DataCheck { family, seed }))
}

/// A sweep's entry: its name, how many variants over which experiment, and each variant's
/// overrides where the arms of an experiment are listed. Expanding it reads the base
/// experiment next to it.
fn read_sweep(e: &mut ExpEntry, text: &str) {
    match crate::sweep::expand::expand_str(text, &e.path) {
        Ok(sw) => {
            e.name = sw.spec.name.clone();
            e.family = format!("sweep of {}", sw.spec.experiment.display());
            e.description = format!(
                "{} variants of {}; r runs them on the local queue, one at a time",
                sw.variants.len(),
                sw.spec.experiment.display()
            );
            e.arms = sw.variants.iter().map(|v| v.label()).collect();
        }
        Err(err) => {
            e.error = Some(err.to_string().replacen(
                &e.path.display().to_string(),
                &display_path(&e.path).display().to_string(),
                1,
            ))
        }
    }
}

/// A launch would fail at iteration 0 without its data: say so in the list, as `check` does.
/// Returns the error without its position (which [`finish_data_check`] adds).
pub fn run_data_check(check: &DataCheck) -> Result<(), String> {
    crate::tasks::check_folders(&check.family, check.seed).map_err(|e| e.to_string())
}

/// Put a data check's answer in the entry, the error located at the family's data folder.
pub fn finish_data_check(e: &mut ExpEntry, result: Result<(), String>) {
    e.checking_data = false;
    if let Err(err) = result {
        let at = match e
            .text
            .as_deref()
            .and_then(|t| crate::experiment::locate(t, "family.root"))
        {
            Some((l, c)) => format!("{}:{l}:{c}: ", display_path(&e.path).display()),
            None => format!("{}: ", display_path(&e.path).display()),
        };
        e.error = Some(format!("{at}`family`: {err}"));
    }
}

/// How errors name a file: `experiments/x.ron`, short enough for a panel, unambiguous in a project.
pub fn display_path(path: &Path) -> PathBuf {
    match path.file_name() {
        Some(f) => Path::new("experiments").join(f),
        None => path.to_path_buf(),
    }
}

/// Experiment files are `*.ron`; dot-files are editors' and our own temporaries, and
/// `*.sweep.ron` are sweep files (`metalab sweep`), which are not experiments.
pub fn is_experiment_file(p: &Path) -> bool {
    is_listed_file(p) && !is_sweep_file(p)
}

/// Sweep files, by name (the list never opens a file to decide what it is).
pub fn is_sweep_file(p: &Path) -> bool {
    p.to_string_lossy().ends_with(".sweep.ron")
}

/// What the experiments list shows: experiment and sweep files.
pub fn is_listed_file(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "ron")
        && !p
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'))
}

pub fn scan(dir: &Path, data: Option<&Path>) -> Vec<ExpEntry> {
    list(dir).iter().map(|p| read_entry(p, data)).collect()
}

/// The files the list shows, in name order (an unreadable folder lists nothing).
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_listed_file(p))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// Write via a temporary in the same folder and rename, so a crash or a watcher never sees half a file.
pub fn save_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `stem.ron`, or `stem-2.ron`, `stem-3.ron`… whichever does not exist yet.
pub fn free_path(dir: &Path, stem: &str) -> PathBuf {
    let first = dir.join(format!("{stem}.ron"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|i| dir.join(format!("{stem}-{i}.ron")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

pub const TEMPLATE: &str = r#"// A new experiment: sine regression, MAML against Reptile on identical task streams.
Experiment(
    name: "NAME",
    description: "What question does this experiment answer?",
    seed: 1,
    family: Sinusoid(shots: 10, queries: 10),
    model: Mlp(hidden: [40, 40]),
    arms: [
        Arm(name: "maml", algorithm: Maml()),
        Arm(name: "reptile", algorithm: Reptile(epsilon: 1.0), inner_steps: 5),
    ],
    train: Train(iterations: 2000, meta_batch: 10, meta_lr: 0.001, inner_steps: 1, inner_lr: 0.01),
    eval: Eval(every: 200, tasks: 100, periodic_tasks: 20, inner_steps: 10, tracked_tasks: 4),
)
"#;

/// The template with its name set; `name` must be a valid RON string body.
pub fn template(name: &str) -> String {
    TEMPLATE.replace("NAME", name)
}

/// A copy's text: same content, the experiment's name suffixed so runs are told apart.
pub fn duplicate_text(text: &str, new_name: &str) -> String {
    if let Some(at) = text.find("name:") {
        let rest = &text[at..];
        if let (Some(q1), Some(q2)) = (
            rest.find('"'),
            rest[rest.find('"').unwrap_or(0) + 1..].find('"'),
        ) {
            let start = at + q1 + 1;
            let end = start + q2;
            return format!("{}{}{}", &text[..start], new_name, &text[end..]);
        }
    }
    text.to_string()
}
