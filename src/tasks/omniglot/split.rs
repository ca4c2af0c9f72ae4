//! The seeded assignment of characters (or whole alphabets) to train, validation and test.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::layout::{Layout, Set};
use crate::experiment::{OmniglotProtocol, OmniglotSpec};
use crate::tasks::{FamilyError, Rng, Split};

pub(super) fn protocol_name(p: &OmniglotProtocol) -> &'static str {
    match p {
        OmniglotProtocol::BackgroundEvaluation => "BackgroundEvaluation",
        OmniglotProtocol::AlphabetSplit { .. } => "AlphabetSplit",
        OmniglotProtocol::CharacterSplit { .. } => "CharacterSplit",
    }
}

/// The fraction-based split of `n` shuffled units: (train, validation) counts, rest test.
/// Train, and validation when asked for, get at least one unit each; if rounding overshoots `n`,
/// train gives way first so a requested validation split is never silently dropped.
pub(super) fn split_sizes(n: usize, train: f64, validation: f64) -> (usize, usize) {
    let mut n_train = ((train * n as f64).round() as usize).max(1);
    let mut n_val = (validation * n as f64).round() as usize;
    if validation > 0.0 {
        n_val = n_val.max(1);
    }
    n_val = n_val.min(n.saturating_sub(1));
    n_train = n_train.min(n - n_val);
    (n_train, n_val)
}

pub(super) fn assign(units: usize, train: f64, validation: f64, rng: &mut Rng) -> Vec<Split> {
    let mut order: Vec<usize> = (0..units).collect();
    order.shuffle(rng);
    let (n_train, n_val) = split_sizes(units, train, validation);
    let mut out = vec![Split::Test; units];
    for (rank, &u) in order.iter().enumerate() {
        if rank < n_train {
            out[u] = Split::Train;
        } else if rank < n_train + n_val {
            out[u] = Split::Validation;
        }
    }
    out
}

/// Fraction of background alphabets held out for validation under `BackgroundEvaluation`.
pub(super) const BACKGROUND_VALIDATION: f64 = 0.1;

/// Which split each character belongs to, per the protocol, or why the protocol cannot be met.
pub(super) fn assign_characters(
    layout: &Layout,
    spec: &OmniglotSpec,
    seed: u64,
) -> Result<Vec<Split>, FamilyError> {
    let mut rng = Rng::seed_from_u64(seed);
    let protocol = protocol_name(&spec.protocol).to_string();
    let missing = |set: Set, fix: String| FamilyError::MissingSplit {
        path: spec.root.join(set.folder()),
        protocol: protocol.clone(),
        fix,
    };
    let per_alphabet = |alpha_split: &[Split]| {
        layout
            .chars
            .iter()
            .map(|c| alpha_split[c.alphabet])
            .collect::<Vec<_>>()
    };
    match spec.protocol {
        OmniglotProtocol::BackgroundEvaluation => {
            let split_alone =
                "use protocol: AlphabetSplit(train: 0.7, validation: 0.1) to split the";
            if !layout.has(Set::Background) {
                let fix = if layout.has(Set::Evaluation) {
                    format!("{split_alone} evaluation set alone")
                } else {
                    format!(
                        "put images_background/ and images_evaluation/ of the Omniglot release under {}",
                        spec.root.display()
                    )
                };
                return Err(missing(Set::Background, fix));
            }
            if !layout.has(Set::Evaluation) {
                return Err(missing(
                    Set::Evaluation,
                    format!("{split_alone} background set alone, or add images_evaluation/ from the Omniglot release"),
                ));
            }
            let background: Vec<usize> = (0..layout.alphabets.len())
                .filter(|&a| layout.alphabets[a].set == Set::Background)
                .collect();
            let held = assign(
                background.len(),
                1.0 - BACKGROUND_VALIDATION,
                BACKGROUND_VALIDATION,
                &mut rng,
            );
            let mut alpha_split = vec![Split::Test; layout.alphabets.len()];
            for (&a, &s) in background.iter().zip(&held) {
                // Rounding can leave a background alphabet in "test"; it belongs to training.
                alpha_split[a] = if s == Split::Validation {
                    Split::Validation
                } else {
                    Split::Train
                };
            }
            Ok(per_alphabet(&alpha_split))
        }
        OmniglotProtocol::AlphabetSplit { train, validation }
        | OmniglotProtocol::CharacterSplit { train, validation } => {
            if !layout.has(Set::Background) && !layout.has(Set::Evaluation) {
                return Err(missing(
                    Set::Background,
                    format!(
                        "{} holds neither images_background/ nor images_evaluation/: point `family.root` at the folder that does",
                        spec.root.display()
                    ),
                ));
            }
            if matches!(spec.protocol, OmniglotProtocol::AlphabetSplit { .. }) {
                let alpha_split = assign(layout.alphabets.len(), train, validation, &mut rng);
                Ok(per_alphabet(&alpha_split))
            } else {
                Ok(assign(layout.chars.len(), train, validation, &mut rng))
            }
        }
    }
}

/// Does the protocol promise a validation split? (`validation: 0.0` opts out of one.)
pub(super) fn uses_validation(p: &OmniglotProtocol) -> bool {
    match p {
        OmniglotProtocol::BackgroundEvaluation => true,
        OmniglotProtocol::AlphabetSplit { validation, .. }
        | OmniglotProtocol::CharacterSplit { validation, .. } => *validation > 0.0,
    }
}

pub(super) fn too_few(spec: &OmniglotSpec, split: Split, available: usize) -> FamilyError {
    let mut fixes = vec![];
    if available >= 2 {
        fixes.push(format!("lower ways to {available}"));
    }
    if !spec.rotations && available * 4 >= spec.ways {
        fixes.push(format!("add rotations: true ({} classes)", available * 4));
    }
    fixes.push(match (&spec.protocol, split) {
        (OmniglotProtocol::BackgroundEvaluation, Split::Test) => {
            "check that images_evaluation/ holds the full release (20 alphabets, 659 characters)".into()
        }
        (OmniglotProtocol::BackgroundEvaluation, _) => {
            "use a larger split, e.g. protocol: AlphabetSplit(train: 0.7, validation: 0.1) or CharacterSplit(train: 0.7, validation: 0.1)".into()
        }
        (OmniglotProtocol::AlphabetSplit { .. }, _) => format!(
            "use a larger {split:?} split: change the fractions in AlphabetSplit, or use CharacterSplit(...) to split characters rather than whole alphabets"
        ),
        (OmniglotProtocol::CharacterSplit { .. }, _) => {
            format!("use a larger {split:?} split: change the fractions in CharacterSplit")
        }
    });
    FamilyError::TooFewClasses {
        split,
        available,
        ways: spec.ways,
        fix: fixes.join(", or "),
    }
}

/// Within-alphabet tasks of `ways` classes, but no alphabet of `split` has that many.
pub(super) fn narrow_alphabets(spec: &OmniglotSpec, split: Split, widest: usize) -> FamilyError {
    let mut fixes = vec![];
    if widest >= 2 {
        fixes.push(format!("lower ways to {widest}"));
    }
    fixes.push("use classes: AnyAlphabet to draw a task's classes from every alphabet".into());
    FamilyError::NarrowAlphabets {
        split,
        widest,
        ways: spec.ways,
        fix: fixes.join(", or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::omniglot::fixtures::*;
    use crate::tasks::omniglot::{scan, Omniglot};
    use crate::tasks::TaskFamily;
    use serde_json::json;

    #[test]
    fn missing_split_says_which_and_how_to_fix() {
        let dir = background_only();
        let err = Omniglot::load(&spec(dir.path(), OmniglotProtocol::BackgroundEvaluation), 1)
            .err()
            .unwrap();
        let FamilyError::MissingSplit { path, protocol, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(path, &dir.path().join("images_evaluation"));
        assert_eq!(protocol, "BackgroundEvaluation");
        let msg = err.to_string();
        assert!(msg.contains("images_evaluation"), "{msg}");
        assert!(
            msg.contains(
                "AlphabetSplit(train: 0.7, validation: 0.1) to split the background set alone"
            ),
            "{msg}"
        );

        let only_eval = tempfile::tempdir().unwrap();
        fake_set(only_eval.path(), "images_evaluation", 3, 4, 20, 0);
        let err = scan(
            &spec(only_eval.path(), OmniglotProtocol::BackgroundEvaluation),
            1,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("images_background") && msg.contains("evaluation set alone"),
            "{msg}"
        );
        // A split protocol works with the evaluation set alone.
        assert_eq!(
            scan(&spec(only_eval.path(), THIRDS), 1).unwrap().characters,
            12
        );

        let empty = tempfile::tempdir().unwrap();
        let err = scan(&spec(empty.path(), THIRDS), 1).unwrap_err();
        assert!(matches!(err, FamilyError::MissingSplit { .. }), "{err}");
    }

    #[test]
    fn too_few_classes_names_the_split_and_the_fixes() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 6, 20, 0);
        fake_set(dir.path(), "images_evaluation", 1, 3, 20, 360);
        let mut five = spec(dir.path(), OmniglotProtocol::BackgroundEvaluation);
        five.ways = 5;
        let err = scan(&five, 1).unwrap_err();
        let FamilyError::TooFewClasses {
            split,
            available,
            ways,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*split, *available, *ways), (Split::Test, 3, 5));
        let msg = err.to_string();
        assert!(
            msg.contains("Test split has 3 classes but tasks are 5-way"),
            "{msg}"
        );
        assert!(
            msg.contains("lower ways to 3") && msg.contains("rotations: true"),
            "{msg}"
        );
        // Rotations make 12 test classes out of 3 characters.
        five.rotations = true;
        let s = scan(&five, 1).unwrap();
        let fam = Omniglot::load(&five, 1).unwrap();
        let rec = fam.split_record();
        assert_eq!(rec["protocol"], "BackgroundEvaluation");
        assert_eq!(
            rec["splits"]["test"]["alphabets"],
            json!(["images_evaluation/Alphabet0"])
        );
        assert_eq!(
            rec["splits"]["validation"]["alphabets"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(rec["splits"]["train"]["classes"], 48);
        assert_eq!(s.test.classes, 12);
        // Background: 3 alphabets, one held out for validation (10%, at least one).
        assert_eq!(
            (s.train.alphabets, s.validation.alphabets, s.test.alphabets),
            (2, 1, 1)
        );

        let mut big = spec(dir.path(), THIRDS);
        big.ways = 7;
        std::fs::remove_dir_all(dir.path().join("images_evaluation")).unwrap();
        let err = scan(&big, 1).unwrap_err();
        assert!(
            matches!(
                err,
                FamilyError::TooFewClasses {
                    split: Split::Train,
                    available: 6,
                    ways: 7,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn seeded_splits_are_reproducible_and_depend_on_the_seed() {
        let dir = background_only();
        let s = spec(
            dir.path(),
            OmniglotProtocol::CharacterSplit {
                train: 0.5,
                validation: 0.25,
            },
        );
        let a = Omniglot::load(&s, 7).unwrap();
        let b = Omniglot::load(&s, 7).unwrap();
        let c = Omniglot::load(&s, 8).unwrap();
        assert_eq!(a.split_record(), b.split_record());
        assert_eq!(a.classes(Split::Test), b.classes(Split::Test));
        assert_ne!(a.classes(Split::Test), c.classes(Split::Test));
        let rec = a.split_record();
        assert_eq!(rec["seed"], 7);
        assert_eq!(rec["protocol"]["CharacterSplit"]["train"], 0.5);
        assert_eq!(rec["splits"]["validation"]["characters"], 3);
        let listed: usize = rec["splits"]["test"]["characters_by_alphabet"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .sum();
        assert_eq!(listed, 3);

        // Alphabet splits hold out whole alphabets, and the record names them.
        let alpha = Omniglot::load(&spec(dir.path(), THIRDS), 3).unwrap();
        let mut named = vec![];
        for key in ["train", "validation", "test"] {
            let names = alpha.split_record()["splits"][key]["alphabets"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(names.len(), 1, "{key}");
            named.push(names[0].as_str().unwrap().to_string());
        }
        named.sort();
        assert_eq!(
            named,
            [
                "images_background/Alphabet0",
                "images_background/Alphabet1",
                "images_background/Alphabet2"
            ]
        );
        for split in [Split::Train, Split::Validation, Split::Test] {
            let alphabets: Vec<usize> = alpha.classes(split).iter().map(|&c| c / 4).collect();
            assert!(
                alphabets.iter().all(|&a| a == alphabets[0]),
                "{split:?}: {alphabets:?}"
            );
        }
    }

    #[test]
    fn split_fractions_round_as_documented() {
        assert_eq!(split_sizes(30, 0.7, 0.1), (21, 3));
        assert_eq!(split_sizes(3, 0.7, 0.1), (2, 1));
        assert_eq!(split_sizes(3, 0.9, 0.1), (2, 1));
        assert_eq!(split_sizes(964, 0.7, 0.0), (675, 0));
        assert_eq!(split_sizes(1, 0.7, 0.1), (1, 0));
    }
}
