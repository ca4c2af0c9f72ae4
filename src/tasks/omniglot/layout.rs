//! The folder tree (`<set>/<Alphabet>/<character>/*.png`), listed but not decoded.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::io_err;
use crate::tasks::FamilyError;

/// The two halves of the official release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Set {
    Background,
    Evaluation,
}

impl Set {
    pub(super) const ALL: [Set; 2] = [Set::Background, Set::Evaluation];

    pub(super) fn folder(self) -> &'static str {
        match self {
            Set::Background => "images_background",
            Set::Evaluation => "images_evaluation",
        }
    }
}

pub(super) struct Alphabet {
    pub(super) set: Set,
    pub(super) name: String,
    /// Indices into `Layout::chars`.
    pub(super) chars: Range<usize>,
}

impl Alphabet {
    /// `images_background/Latin`: unique even if both sets had an alphabet of the same name.
    pub(super) fn qualified(&self) -> String {
        format!("{}/{}", self.set.folder(), self.name)
    }
}

pub(super) struct Character {
    pub(super) alphabet: usize,
    pub(super) name: String,
    pub(super) dir: PathBuf,
    /// PNG files, sorted by name.
    pub(super) files: Vec<PathBuf>,
}

/// The folder tree, listed but not decoded. Everything is sorted by name so that class numbering
/// (and therefore every seeded split and episode) does not depend on directory iteration order.
pub(super) struct Layout {
    pub(super) present: [bool; 2],
    pub(super) alphabets: Vec<Alphabet>,
    pub(super) chars: Vec<Character>,
}

/// Sub-folders of `dir`, sorted by name. Stray files (READMEs, .DS_Store) are not classes.
fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, FamilyError> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if path.is_dir() {
            out.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    out.sort();
    Ok(out)
}

fn sorted_pngs(dir: &Path) -> Result<Vec<PathBuf>, FamilyError> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let is_png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

impl Layout {
    pub(super) fn list(root: &Path) -> Result<Layout, FamilyError> {
        if !root.is_dir() {
            return Err(FamilyError::MissingRoot {
                path: root.to_path_buf(),
            });
        }
        let mut layout = Layout {
            present: [false; 2],
            alphabets: vec![],
            chars: vec![],
        };
        for (i, set) in Set::ALL.into_iter().enumerate() {
            let dir = root.join(set.folder());
            if !dir.is_dir() {
                continue;
            }
            layout.present[i] = true;
            for (name, adir) in sorted_dirs(&dir)? {
                let start = layout.chars.len();
                let alphabet = layout.alphabets.len();
                for (cname, cdir) in sorted_dirs(&adir)? {
                    let files = sorted_pngs(&cdir)?;
                    layout.chars.push(Character {
                        alphabet,
                        name: cname,
                        dir: cdir,
                        files,
                    });
                }
                // An empty alphabet folder holds no classes; counting it would skew alphabet splits.
                if layout.chars.len() > start {
                    layout.alphabets.push(Alphabet {
                        set,
                        name,
                        chars: start..layout.chars.len(),
                    });
                }
            }
        }
        Ok(layout)
    }

    pub(super) fn has(&self, set: Set) -> bool {
        self.present[set as usize]
    }
}
