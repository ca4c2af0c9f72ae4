//! Lake et al.'s one-shot classification runs (the 20 within-alphabet runs of the Omniglot
//! paper): `runNN/training/classNN.png` (one drawing of each of 20 characters),
//! `runNN/test/itemNN.png` (20 new drawings), and `runNN/class_labels.txt`, one line per test
//! item naming its training class, e.g. `run01/test/item01.png run01/training/class17.png`.
//! Each run is one 20-way 1-shot episode; the benchmark reports the error rate per run and
//! their mean.

use std::fs;
use std::path::{Path, PathBuf};

use super::omniglot::load_image;
use super::{Batch, Episode, FamilyError, Targets};

/// One run as an episode, with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeRun {
    pub name: String,
    pub episode: Episode,
}

fn other(path: &Path, message: impl std::fmt::Display) -> FamilyError {
    FamilyError::Other(format!("{}: {message}", path.display()))
}

fn pngs(dir: &Path) -> Result<Vec<(String, PathBuf)>, FamilyError> {
    let mut out = vec![];
    let entries = fs::read_dir(dir).map_err(|e| FamilyError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
            let name = entry.file_name().to_string_lossy().to_string();
            out.push((name, p));
        }
    }
    out.sort();
    Ok(out)
}

/// Every `run*` folder under `root`, in name order, images resized to `size`.
pub fn load_runs(root: &Path, size: usize) -> Result<Vec<LakeRun>, FamilyError> {
    let entries = fs::read_dir(root).map_err(|e| FamilyError::Io {
        path: root.to_path_buf(),
        source: e,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("run"))
        })
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(other(
            root,
            "no run folders (runNN/training, runNN/test, runNN/class_labels.txt)\n  fix: point --lake at the folder that holds run01/ … run20/ (all_runs/ in Lake's release)",
        ));
    }
    dirs.iter().map(|d| load_run(d, size)).collect()
}

fn load_run(dir: &Path, size: usize) -> Result<LakeRun, FamilyError> {
    let training = pngs(&dir.join("training"))?;
    let test = pngs(&dir.join("test"))?;
    if training.len() < 2 || test.is_empty() {
        return Err(other(
            dir,
            format!(
                "{} training and {} test images; a run needs at least 2 classes and 1 test item\n  fix: each run holds training/classNN.png and test/itemNN.png",
                training.len(),
                test.len()
            ),
        ));
    }
    let labels_path = dir.join("class_labels.txt");
    let text = fs::read_to_string(&labels_path).map_err(|e| FamilyError::Io {
        path: labels_path.clone(),
        source: e,
    })?;
    // File names only: the release writes `run01/test/item01.png`, other copies drop the prefix.
    let base = |s: &str| s.rsplit(['/', '\\']).next().unwrap_or(s).to_string();
    let mut item_class = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts[..] {
            [] => continue,
            [item, class] => {
                item_class.insert(base(item), base(class));
            }
            _ => {
                return Err(other(
                    &labels_path,
                    format!(
                        "line {}: expected `test/itemNN.png training/classNN.png`, found {line:?}",
                        i + 1
                    ),
                ))
            }
        }
    }
    let class_index = |name: &str| training.iter().position(|(n, _)| n == name);
    let mut query_labels = vec![];
    for (item, _) in &test {
        let class = item_class.get(item).ok_or_else(|| {
            other(
                &labels_path,
                format!(
                    "no line for test item {item}\n  fix: add `test/{item} training/classNN.png`"
                ),
            )
        })?;
        let label = class_index(class).ok_or_else(|| {
            other(
                &labels_path,
                format!("test item {item} is labelled {class}, which is not in training/"),
            )
        })?;
        query_labels.push(label);
    }
    let load = |files: &[(String, PathBuf)]| -> Result<Vec<f32>, FamilyError> {
        let mut x = Vec::with_capacity(files.len() * size * size);
        for (_, p) in files {
            x.extend(load_image(p, size)?);
        }
        Ok(x)
    };
    Ok(LakeRun {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        episode: Episode {
            support: Batch {
                n: training.len(),
                x: load(&training)?,
                y: Targets::Classes((0..training.len()).collect()),
            },
            query: Batch {
                n: test.len(),
                x: load(&test)?,
                y: Targets::Classes(query_labels),
            },
        },
    })
}

/// Lake runs that are not all the same N-way task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{run} has {ways} training classes but {first} has {first_ways}; every run must be the same N-way task")]
pub struct MixedWays {
    pub run: String,
    pub ways: usize,
    pub first: String,
    pub first_ways: usize,
}

/// The number of classes every run has, or the first run that disagrees with the first.
pub fn ways_of(runs: &[LakeRun]) -> Result<usize, MixedWays> {
    let ways = runs.first().map_or(0, |r| r.episode.support.n);
    match runs.iter().find(|r| r.episode.support.n != ways) {
        Some(r) => Err(MixedWays {
            run: r.name.clone(),
            ways: r.episode.support.n,
            first: runs[0].name.clone(),
            first_ways: ways,
        }),
        None => Ok(ways),
    }
}
