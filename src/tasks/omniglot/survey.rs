//! `scan` and `survey`: the folder layout and the seeded split, with every check that does not
//! need pixels, so `metalab check` can report classes per split before anything is decoded.

use std::path::PathBuf;

use super::layout::{Layout, Set};
use super::split::{assign_characters, narrow_alphabets, too_few, uses_validation};
use super::{rotations, split_index};
use crate::experiment::{ClassDraw, OmniglotSpec};
use crate::tasks::{FamilyError, Split};

/// Classes per split, as `metalab check` reports them before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitCount {
    pub alphabets: usize,
    pub characters: usize,
    /// Characters × rotations: the classes tasks are drawn from.
    pub classes: usize,
}

/// What `scan` found: folder layout and the seeded split, without decoding any image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub root: PathBuf,
    pub background_present: bool,
    pub evaluation_present: bool,
    pub alphabets: usize,
    pub characters: usize,
    pub images: usize,
    pub train: SplitCount,
    pub validation: SplitCount,
    pub test: SplitCount,
}

impl ScanSummary {
    pub fn count(&self, split: Split) -> SplitCount {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }
}

impl std::fmt::Display for ScanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |p: bool| if p { "present" } else { "missing" };
        write!(
            f,
            "Omniglot at {}: images_background {}, images_evaluation {}; {} alphabets, {} characters, {} images; \
             classes train {} / val {} / test {} (alphabets {} / {} / {})",
            self.root.display(),
            present(self.background_present),
            present(self.evaluation_present),
            self.alphabets,
            self.characters,
            self.images,
            self.train.classes,
            self.validation.classes,
            self.test.classes,
            self.train.alphabets,
            self.validation.alphabets,
            self.test.alphabets,
        )
    }
}

/// Layout, split and every check that does not need pixels.
pub(super) fn survey(
    spec: &OmniglotSpec,
    seed: u64,
) -> Result<(Layout, Vec<Split>, ScanSummary), FamilyError> {
    if spec.image_size == 0 || spec.ways == 0 {
        return Err(FamilyError::Other(format!(
            "Omniglot needs image_size > 0 and ways > 0 (got image_size {}, ways {})\n  fix: use image_size: 28, ways: 5",
            spec.image_size, spec.ways
        )));
    }
    let layout = Layout::list(&spec.root)?;
    let char_split = assign_characters(&layout, spec, seed)?;
    let rot = rotations(spec);
    let mut counts = [SplitCount::default(); 3];
    // Characters of the widest alphabet in each split: what a within-alphabet task can draw from.
    let mut widest = [0usize; 3];
    for (a, alphabet) in layout.alphabets.iter().enumerate() {
        let mut here = [0usize; 3];
        for c in alphabet.chars.clone() {
            debug_assert_eq!(layout.chars[c].alphabet, a);
            let s = split_index(char_split[c]);
            counts[s].characters += 1;
            counts[s].classes += rot;
            // A within-alphabet task takes its characters from one rotation of the alphabet.
            here[s] += 1;
        }
        for s in 0..3 {
            counts[s].alphabets += (here[s] > 0) as usize;
            widest[s] = widest[s].max(here[s]);
        }
    }
    // Report the smallest split, so that "lower ways to N" is a fix for every split at once.
    let smallest = [Split::Train, Split::Validation, Split::Test]
        .into_iter()
        .filter(|&s| s != Split::Validation || uses_validation(&spec.protocol))
        .min_by_key(|&s| counts[split_index(s)].classes)
        .expect("train and test are always used");
    let available = counts[split_index(smallest)].classes;
    if available < spec.ways {
        return Err(too_few(spec, smallest, available));
    }
    if spec.classes == ClassDraw::WithinAlphabet {
        let narrowest = [Split::Train, Split::Validation, Split::Test]
            .into_iter()
            .filter(|&s| s != Split::Validation || uses_validation(&spec.protocol))
            .min_by_key(|&s| widest[split_index(s)])
            .expect("train and test are always used");
        let widest = widest[split_index(narrowest)];
        if widest < spec.ways {
            return Err(narrow_alphabets(spec, narrowest, widest));
        }
    }
    let need = spec.shots + spec.queries;
    if let Some(c) = layout.chars.iter().find(|c| c.files.len() < need) {
        return Err(FamilyError::Other(format!(
            "{}: {} PNG drawings, but shots + queries = {need} distinct drawings are needed per class\n  fix: lower shots or queries (the release has 20 drawings per character), or remove this folder",
            c.dir.display(),
            c.files.len()
        )));
    }
    let summary = ScanSummary {
        root: spec.root.clone(),
        background_present: layout.has(Set::Background),
        evaluation_present: layout.has(Set::Evaluation),
        alphabets: layout.alphabets.len(),
        characters: layout.chars.len(),
        images: layout.chars.iter().map(|c| c.files.len()).sum(),
        train: counts[0],
        validation: counts[1],
        test: counts[2],
    };
    Ok((layout, char_split, summary))
}

/// Check the folder layout, the seeded split and the class counts without decoding any image.
pub fn scan(spec: &OmniglotSpec, seed: u64) -> Result<ScanSummary, FamilyError> {
    survey(spec, seed).map(|(_, _, summary)| summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::OmniglotProtocol;
    use crate::tasks::omniglot::fixtures::*;
    use crate::tasks::omniglot::Omniglot;
    use std::fs;

    #[test]
    fn scan_counts_layout_per_split_and_ignores_stray_files() {
        let dir = background_only();
        let s = scan(&spec(dir.path(), THIRDS), 1).unwrap();
        assert!(s.background_present && !s.evaluation_present);
        assert_eq!((s.alphabets, s.characters, s.images), (3, 12, 240));
        for split in [Split::Train, Split::Validation, Split::Test] {
            let n = s.count(split);
            assert_eq!(
                (n.alphabets, n.characters, n.classes),
                (1, 4, 4),
                "{split:?}"
            );
        }
        let mut rot = spec(
            dir.path(),
            OmniglotProtocol::CharacterSplit {
                train: 0.5,
                validation: 0.25,
            },
        );
        rot.rotations = true;
        let s = scan(&rot, 1).unwrap();
        assert_eq!(
            (
                s.train.characters,
                s.validation.characters,
                s.test.characters
            ),
            (6, 3, 3)
        );
        assert_eq!(
            (s.train.classes, s.validation.classes, s.test.classes),
            (24, 12, 12)
        );
        assert!(s.to_string().contains("images_evaluation missing"), "{s}");
    }

    #[test]
    fn missing_root_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nope");
        let err = scan(&spec(&root, THIRDS), 1).unwrap_err();
        assert!(
            matches!(&err, FamilyError::MissingRoot { path } if path == &root),
            "{err}"
        );
        assert!(err.to_string().contains(&root.display().to_string()));
        assert!(Omniglot::load(&spec(&root, THIRDS), 1).is_err());
    }

    #[test]
    fn too_few_drawings_and_bad_images_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 4, 4, 0);
        let err = scan(&spec(dir.path(), THIRDS), 1).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("character01")
                && msg.contains("4 PNG drawings")
                && msg.contains("shots + queries = 5"),
            "{msg}"
        );

        let dir = background_only();
        let bad = dir
            .path()
            .join("images_background/Alphabet1/character02/0006_07.png");
        fs::write(&bad, b"definitely not a png").unwrap();
        // Scanning does not decode, so only loading notices.
        scan(&spec(dir.path(), THIRDS), 1).unwrap();
        let err = Omniglot::load(&spec(dir.path(), THIRDS), 1).err().unwrap();
        assert!(
            matches!(&err, FamilyError::BadImage { path, .. } if path == &bad),
            "{err}"
        );
    }
}
