//! The experiments folder as the browser lists it: every `.ron` file, valid or not.

use std::path::{Path, PathBuf};

use crate::experiment::{parse_str, FamilySpec};

#[derive(Debug, Clone, PartialEq)]
pub struct ExpEntry {
    pub path: PathBuf,
    pub file_name: String,
    pub name: String,
    pub family: String,
    pub arms: Vec<String>,
    pub description: String,
    /// The parse/validation error, displayed instead of crashing on a broken file.
    pub error: Option<String>,
}

impl ExpEntry {
    pub fn is_valid(&self) -> bool {
        self.error.is_none()
    }
}

pub fn family_label(f: &FamilySpec) -> String {
    match f {
        FamilySpec::Sinusoid(s) => format!("sinusoid {}-shot", s.shots),
        FamilySpec::Omniglot(o) => format!("omniglot {}-way {}-shot", o.ways, o.shots),
        FamilySpec::Synthetic(s) => format!("synthetic {}-way {}-shot", s.ways, s.shots),
    }
}

pub fn read_entry(path: &Path) -> ExpEntry {
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut e = ExpEntry {
        path: path.to_path_buf(),
        name: file_name.trim_end_matches(".ron").to_string(),
        file_name,
        family: "?".into(),
        arms: vec![],
        description: String::new(),
        error: None,
    };
    match std::fs::read_to_string(path) {
        Err(err) => e.error = Some(format!("{}: cannot read: {err}", path.display())),
        Ok(text) => match parse_str(&text, &display_path(path)) {
            Ok(x) => {
                e.name = x.name.clone();
                e.family = family_label(&x.family);
                e.arms = x
                    .arms
                    .iter()
                    .map(|a| format!("{} ({})", a.name, a.algorithm.label()))
                    .collect();
                e.description = x.description.clone();
            }
            Err(err) => e.error = Some(err.to_string()),
        },
    }
    e
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
    p.extension().is_some_and(|x| x == "ron")
        && !p.to_string_lossy().ends_with(".sweep.ron")
        && !p
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'))
}

pub fn scan(dir: &Path) -> Vec<ExpEntry> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_experiment_file(p))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.iter().map(|p| read_entry(p)).collect()
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
