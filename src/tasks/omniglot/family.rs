//! The loaded data set: every drawing decoded once, tasks and episodes drawn from it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand::{Rng as _, SeedableRng};
use serde_json::json;

use super::image::{decode_all, rotate_into};
use super::layout::{Layout, Set};
use super::split::BACKGROUND_VALIDATION;
use super::survey::survey;
use super::{rotations, split_index};
use crate::experiment::{ClassDraw, OmniglotProtocol, OmniglotSpec};
use crate::tasks::episode::{choose_classes, class_major_episode, image_classes_shape};
use crate::tasks::*;

pub struct Omniglot {
    spec: OmniglotSpec,
    seed: u64,
    layout: Layout,
    /// First drawing of each character in `images`.
    first: Vec<usize>,
    /// `size × size` f32 per drawing, characters in layout order, drawings in file order.
    images: Vec<f32>,
    /// Global class ids (`character × rotations + quarter_turns`) per split, ascending.
    classes: [Vec<usize>; 3],
    /// Per split, the classes of each alphabet with at least `ways` of them there: what
    /// within-alphabet tasks draw from (empty under `ClassDraw::AnyAlphabet`).
    alphabet_classes: [Vec<Vec<usize>>; 3],
    char_split: Vec<Split>,
    /// With `spec.alphabet_tasks`: the fixed tasks, one per alphabet.
    alphabets: AlphabetSet,
}

/// The alphabets as fixed tasks (`OmniglotSpec::alphabet_tasks`); empty without them.
#[derive(Default)]
struct AlphabetSet {
    tasks: Vec<Task>,
    /// Each task's alphabet (`images_background/Latin`, with its rotation).
    names: Vec<String>,
    /// A fixed task's index by its classes, to keep its held-out drawings out of its episodes.
    index: HashMap<Vec<usize>, usize>,
    held_out: usize,
}

/// Salt for the alphabet tasks' choice of characters: a function of the seed alone.
const ALPHABET_SALT: u64 = 0x616c_7068_6162_6574;

impl Omniglot {
    /// List, split, check, then decode every image once (on all cores).
    pub fn load(spec: &OmniglotSpec, seed: u64) -> Result<Omniglot, FamilyError> {
        Omniglot::load_reporting(spec, seed, &|_, _| {})
    }

    /// [`load`](Self::load), telling `progress` how many images are decoded out of how many.
    pub fn load_reporting(
        spec: &OmniglotSpec,
        seed: u64,
        progress: &Progress<'_>,
    ) -> Result<Omniglot, FamilyError> {
        let (layout, char_split, _) = survey(spec, seed)?;
        let files: Vec<&Path> = layout
            .chars
            .iter()
            .flat_map(|c| c.files.iter().map(|p| p.as_path()))
            .collect();
        let images = decode_all(&files, spec.image_size, progress)?;
        let mut first = Vec::with_capacity(layout.chars.len());
        let mut at = 0;
        for c in &layout.chars {
            first.push(at);
            at += c.files.len();
        }
        let rot = rotations(spec);
        let mut classes: [Vec<usize>; 3] = Default::default();
        for (c, &s) in char_split.iter().enumerate() {
            classes[split_index(s)].extend((0..rot).map(|r| c * rot + r));
        }
        let alphabet_classes = match spec.classes {
            ClassDraw::AnyAlphabet => Default::default(),
            ClassDraw::WithinAlphabet => by_alphabet(&layout, &char_split, rot, spec.ways)
                .map(|split| split.into_iter().map(|(_, classes)| classes).collect()),
        };
        let alphabets = match spec.alphabet_tasks {
            Some(a) => alphabet_tasks(spec, seed, &layout, &char_split, a.held_out)?,
            None => AlphabetSet::default(),
        };
        Ok(Omniglot {
            spec: spec.clone(),
            seed,
            layout,
            first,
            images,
            classes,
            alphabet_classes,
            char_split,
            alphabets,
        })
    }

    /// The alphabet of each fixed task, in task order (empty without `alphabet_tasks`).
    pub fn task_names(&self) -> &[String] {
        &self.alphabets.names
    }

    /// `shots + queries` drawings of each of `classes`, picked among the drawings
    /// `from..from + count` of every class, or all of a class's drawings when `count` is `None`.
    fn episode(&self, classes: &[usize], draws: Draws, rng: &mut Rng) -> Episode {
        let (shots, queries) = (self.spec.shots, self.spec.queries);
        let n = self.spec.image_size * self.spec.image_size;
        class_major_episode(classes.len(), shots, queries, n, rng, |i, rng, buf| {
            let class = classes[i];
            let all = self.drawings(class);
            let held = self.alphabets.held_out;
            let (from, count) = match draws {
                Draws::All => (0, all),
                Draws::Training => (0, all - held),
                Draws::HeldOut => (all - held, held),
            };
            let picks = rand::seq::index::sample(rng, count, shots + queries);
            for (dst, d) in buf.chunks_exact_mut(n).zip(picks) {
                self.image_into(class, from + d, dst);
            }
        })
    }

    /// Classes tasks of `split` are drawn from (global ids).
    pub fn classes(&self, split: Split) -> &[usize] {
        &self.classes[split_index(split)]
    }

    /// Number of drawings of a class.
    pub fn drawings(&self, class: usize) -> usize {
        self.layout.chars[class / rotations(&self.spec)].files.len()
    }

    /// Drawing `d` of `class`, rotated as the class says, `size × size`.
    pub fn image(&self, class: usize, d: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.spec.image_size * self.spec.image_size];
        self.image_into(class, d, &mut out);
        out
    }

    fn image_into(&self, class: usize, d: usize, dst: &mut [f32]) {
        let rot = rotations(&self.spec);
        let (c, turns) = (class / rot, class % rot);
        let n = self.spec.image_size * self.spec.image_size;
        let at = (self.first[c] + d) * n;
        rotate_into(&self.images[at..at + n], self.spec.image_size, turns, dst);
    }

    /// `images_background/Latin/character03` (plus the rotation) for a class id.
    pub fn class_name(&self, class: usize) -> String {
        let rot = rotations(&self.spec);
        let ch = &self.layout.chars[class / rot];
        let base = format!(
            "{}/{}",
            self.layout.alphabets[ch.alphabet].qualified(),
            ch.name
        );
        match class % rot {
            0 => base,
            t => format!("{base} rotated {}°", t * 90),
        }
    }
}

/// Which of a class's drawings an episode draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Draws {
    All,
    /// An alphabet task's training drawings: all but the last `held_out`.
    Training,
    /// The last `held_out`.
    HeldOut,
}

/// One fixed task per training-split alphabet with at least `ways` characters there: `ways`
/// of them, chosen with a stream of the seed alone. Every character of a task must have
/// drawings enough for a training episode besides its `held_out` ones.
fn alphabet_tasks(
    spec: &OmniglotSpec,
    seed: u64,
    layout: &Layout,
    char_split: &[Split],
    held_out: usize,
) -> Result<AlphabetSet, FamilyError> {
    let rot = rotations(spec);
    let mut rng = Rng::seed_from_u64(seed ^ ALPHABET_SALT);
    let need = spec.shots + spec.queries;
    let mut set = AlphabetSet {
        held_out,
        ..AlphabetSet::default()
    };
    let [train, _, _] = by_alphabet(layout, char_split, rot, spec.ways);
    for (name, pool) in train {
        let classes = choose_classes(&pool, spec.ways, &mut rng);
        for &c in &classes {
            let ch = &layout.chars[c / rot];
            if ch.files.len() < held_out + need {
                return Err(FamilyError::Other(format!(
                    "{}/{}: {} drawings, and an alphabet task needs {held_out} held out plus {need} (shots + queries) for a training episode\n  fix: lower alphabet_tasks.held_out, shots or queries",
                    layout.alphabets[ch.alphabet].qualified(),
                    ch.name,
                    ch.files.len()
                )));
            }
        }
        set.index.insert(classes.clone(), set.tasks.len());
        set.tasks.push(Task::Classes {
            split: Split::Train,
            classes,
        });
        set.names.push(name);
    }
    if set.tasks.is_empty() {
        return Err(FamilyError::Other(format!(
            "alphabet tasks: no alphabet has {} characters in the training split\n  fix: lower ways, or give the training split more alphabets",
            spec.ways
        )));
    }
    Ok(set)
}

/// Per split, each alphabet's name and classes there, keeping the alphabets with at least
/// `ways`.
fn by_alphabet(
    layout: &Layout,
    char_split: &[Split],
    rot: usize,
    ways: usize,
) -> [Vec<(String, Vec<usize>)>; 3] {
    let mut out: [Vec<(String, Vec<usize>)>; 3] = Default::default();
    // Each rotation of an alphabet is an alphabet of its own: a task never holds a character
    // beside its own rotated copy, and its characters all stand the same way up, as in Lake
    // et al.'s one-shot runs (where all are upright).
    for alphabet in &layout.alphabets {
        for r in 0..rot {
            let mut here: [Vec<usize>; 3] = Default::default();
            for c in alphabet.chars.clone() {
                here[split_index(char_split[c])].push(c * rot + r);
            }
            let name = match r {
                0 => alphabet.qualified(),
                r => format!("{} rotated {}°", alphabet.qualified(), r * 90),
            };
            for (groups, classes) in out.iter_mut().zip(here) {
                if classes.len() >= ways {
                    groups.push((name.clone(), classes));
                }
            }
        }
    }
    out
}

impl TaskFamily for Omniglot {
    fn class_label(&self, class: usize) -> Option<String> {
        Some(Omniglot::class_name(self, class))
    }

    fn shape(&self) -> FamilyShape {
        image_classes_shape(self.spec.image_size, self.spec.ways)
    }

    fn sample_task(&self, split: Split, rng: &mut Rng) -> Task {
        let pool = match self.spec.classes {
            ClassDraw::AnyAlphabet => self.classes(split),
            ClassDraw::WithinAlphabet => {
                // `survey` refused a split with no alphabet wide enough, so this is not empty.
                let alphabets = &self.alphabet_classes[split_index(split)];
                &alphabets[rng.gen_range(0..alphabets.len())]
            }
        };
        Task::Classes {
            split,
            classes: choose_classes(pool, self.spec.ways, rng),
        }
    }

    /// An alphabet task's episode leaves out its held-out drawings.
    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let Task::Classes { classes, .. } = task else {
            panic!("Omniglot family given a {task:?}")
        };
        let draws = match self.alphabets.index.contains_key(classes) {
            true => Draws::Training,
            false => Draws::All,
        };
        self.episode(classes, draws, rng)
    }

    fn fixed_tasks(&self) -> Option<&[Task]> {
        (!self.alphabets.tasks.is_empty()).then_some(&self.alphabets.tasks[..])
    }

    fn fixed_task_name(&self, t: usize) -> Option<String> {
        self.task_names().get(t).cloned()
    }

    /// An alphabet task's episode on its held-out drawings.
    fn held_out_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let Task::Classes { classes, .. } = task else {
            panic!("Omniglot family given a {task:?}")
        };
        let draws = match self.alphabets.index.contains_key(classes) {
            true => Draws::HeldOut,
            false => Draws::All,
        };
        self.episode(classes, draws, rng)
    }

    fn held_out_partition(&self, task: &Task) -> Option<Vec<Episode>> {
        let Task::Classes { classes, .. } = task else {
            return None;
        };
        if !self.alphabets.index.contains_key(classes) {
            return None;
        }
        let held = self.alphabets.held_out;
        let n = self.spec.image_size * self.spec.image_size;
        // The draw closure never uses the stream: the drawings are fixed.
        let mut unused = Rng::seed_from_u64(0);
        Some(
            (0..held)
                .map(|d| {
                    class_major_episode(classes.len(), 0, 1, n, &mut unused, |i, _, buf| {
                        let class = classes[i];
                        self.image_into(class, self.drawings(class) - held + d, buf);
                    })
                })
                .collect(),
        )
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "Omniglot {}-way {}-shot ({} query), {}×{}, train {} / val {} / test {} classes{}",
            s.ways,
            s.shots,
            s.queries,
            s.image_size,
            s.image_size,
            self.classes[0].len(),
            self.classes[1].len(),
            self.classes[2].len(),
            if s.rotations { ", rotations" } else { "" }
        ) + match s.classes {
            ClassDraw::AnyAlphabet => "",
            ClassDraw::WithinAlphabet => ", each task within one alphabet",
        } + &match self.alphabets.tasks.len() {
            0 => String::new(),
            n => format!(
                ", {n} alphabet tasks ({} drawings per character held out)",
                self.alphabets.held_out
            ),
        }
    }

    fn split_record(&self) -> serde_json::Value {
        let character_split = matches!(self.spec.protocol, OmniglotProtocol::CharacterSplit { .. });
        let mut splits = serde_json::Map::new();
        for (key, split) in [
            ("train", Split::Train),
            ("validation", Split::Validation),
            ("test", Split::Test),
        ] {
            let chars: Vec<usize> = (0..self.layout.chars.len())
                .filter(|&c| self.char_split[c] == split)
                .collect();
            let mut alphabets: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for &c in &chars {
                let ch = &self.layout.chars[c];
                alphabets
                    .entry(self.layout.alphabets[ch.alphabet].qualified())
                    .or_default()
                    .push(&ch.name);
            }
            let mut entry = json!({
                "characters": chars.len(),
                "classes": self.classes(split).len(),
                "alphabets": alphabets.keys().collect::<Vec<_>>(),
            });
            // Under a character split an alphabet straddles splits: record the characters themselves.
            if character_split {
                entry["characters_by_alphabet"] = json!(alphabets);
            }
            splits.insert(key.into(), entry);
        }
        let mut record = json!({
            "family": "Omniglot",
            "protocol": self.spec.protocol,
            "seed": self.seed,
            "root": self.spec.root,
            "sets": {
                "images_background": self.layout.has(Set::Background),
                "images_evaluation": self.layout.has(Set::Evaluation),
            },
            "rotations": self.spec.rotations,
            "image_size": self.spec.image_size,
            "splits": splits,
        });
        if self.spec.protocol == OmniglotProtocol::BackgroundEvaluation {
            record["background_validation_fraction"] = json!(BACKGROUND_VALIDATION);
        }
        if !self.alphabets.tasks.is_empty() {
            let tasks: Vec<_> = self
                .alphabets
                .tasks
                .iter()
                .zip(&self.alphabets.names)
                .map(|(t, name)| {
                    let Task::Classes { classes, .. } = t else {
                        unreachable!("alphabet tasks are class tasks")
                    };
                    let chars: Vec<String> = classes.iter().map(|&c| self.class_name(c)).collect();
                    json!({ "alphabet": name, "characters": chars })
                })
                .collect();
            record["alphabet_tasks"] = json!(tasks);
            record["held_out_drawings"] = json!(self.alphabets.held_out);
        }
        if self.spec.classes == ClassDraw::WithinAlphabet {
            record["classes"] = json!(self.spec.classes);
            for (key, groups) in ["train", "validation", "test"]
                .into_iter()
                .zip(&self.alphabet_classes)
            {
                record["splits"][key]["alphabets_wide_enough"] = json!(groups.len());
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::omniglot::fixtures::*;
    use crate::tasks::omniglot::scan;
    use rand::SeedableRng;
    use std::path::PathBuf;

    #[test]
    fn within_alphabet_tasks_take_every_class_from_one_alphabet() {
        let dir = tempfile::tempdir().unwrap();
        // Alphabets of 4, 8, 10 and 12 characters, their characters split in halves.
        std::fs::create_dir_all(dir.path().join("images_background")).unwrap();
        for (a, chars) in [4, 8, 10, 12].into_iter().enumerate() {
            let one = tempfile::tempdir().unwrap();
            fake_set(one.path(), "images_background", 1, chars, 4, 0);
            std::fs::rename(
                one.path().join("images_background/Alphabet0"),
                dir.path().join(format!("images_background/Alphabet{a}")),
            )
            .unwrap();
        }
        let s = OmniglotSpec {
            ways: 4,
            shots: 1,
            queries: 1,
            classes: ClassDraw::WithinAlphabet,
            ..spec(
                dir.path(),
                OmniglotProtocol::CharacterSplit {
                    train: 0.5,
                    validation: 0.0,
                },
            )
        };
        let fam = Omniglot::load(&s, 1).unwrap();
        assert!(
            fam.describe().contains("within one alphabet"),
            "{}",
            fam.describe()
        );
        let alphabet = |class: usize| fam.layout.chars[class].alphabet;
        for split in [Split::Train, Split::Test] {
            // The alphabets with at least 4 characters in this split, counted from the split itself.
            let wide: std::collections::BTreeSet<usize> = (0..4)
                .filter(|&a| {
                    let here = (0..fam.layout.chars.len())
                        .filter(|&c| alphabet(c) == a && fam.char_split[c] == split)
                        .count();
                    here >= 4
                })
                .collect();
            assert!(!wide.is_empty() && wide.len() < 4, "{split:?}: {wide:?}");
            let mut rng = Rng::seed_from_u64(4);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let Task::Classes { classes, .. } = fam.sample_task(split, &mut rng) else {
                    unreachable!()
                };
                assert_eq!(classes.len(), 4);
                assert!(classes.iter().all(|&c| fam.char_split[c] == split));
                let first = alphabet(classes[0]);
                assert!(classes.iter().all(|&c| alphabet(c) == first), "{classes:?}");
                seen.insert(first);
            }
            assert_eq!(
                seen, wide,
                "{split:?}: every wide enough alphabet, and only those"
            );
        }
        // No alphabet has eight characters in a split; the error says what would fix it.
        let err = scan(
            &OmniglotSpec {
                ways: 8,
                ..s.clone()
            },
            1,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, FamilyError::NarrowAlphabets { ways: 8, .. }),
            "{msg}"
        );
        // Rotations add rotated alphabets, not wider ones: they are no fix here.
        assert!(
            msg.contains("lower ways to") && !msg.contains("rotations: true"),
            "{msg}"
        );
        let rotated = OmniglotSpec {
            ways: 8,
            rotations: true,
            ..s.clone()
        };
        assert!(matches!(
            scan(&rotated, 1),
            Err(FamilyError::NarrowAlphabets { ways: 8, .. })
        ));
        // Any-alphabet tasks of the same width are fine: the split has enough classes.
        let any = OmniglotSpec {
            ways: 12,
            classes: ClassDraw::AnyAlphabet,
            ..s.clone()
        };
        assert!(scan(&any, 1).is_ok());

        // With rotations, a task's characters are distinct and all turned the same way: each
        // rotation of an alphabet is an alphabet of its own (Lake's runs are all upright).
        let fam = Omniglot::load(
            &OmniglotSpec {
                rotations: true,
                ..s
            },
            1,
        )
        .unwrap();
        let mut rng = Rng::seed_from_u64(9);
        let mut turns = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let Task::Classes { classes, .. } = fam.sample_task(Split::Train, &mut rng) else {
                unreachable!()
            };
            let chars: std::collections::BTreeSet<usize> = classes.iter().map(|&c| c / 4).collect();
            assert_eq!(chars.len(), classes.len(), "{classes:?}");
            assert!(
                classes.iter().all(|&c| c % 4 == classes[0] % 4),
                "{classes:?}"
            );
            assert!(chars
                .iter()
                .all(|&c| alphabet(c) == alphabet(classes[0] / 4)));
            turns.insert(classes[0] % 4);
        }
        assert_eq!(turns.len(), 4, "every rotation is drawn");
    }

    #[test]
    fn loaded_pixels_match_the_files_at_full_and_reduced_size() {
        let dir = background_only();
        let fam = Omniglot::load(&spec(dir.path(), THIRDS), 1).unwrap();
        for class in 0..12 {
            for d in 0..20 {
                assert_eq!(drawing_id(&fam.image(class, d)), class * 20 + d);
            }
        }
        let mut half = spec(dir.path(), THIRDS);
        half.image_size = 4;
        let fam = Omniglot::load(&half, 1).unwrap();
        // 8→4: each output pixel averages a 2×2 block; only the top source row has ink.
        let code = 5 * 20 + 7 + 1;
        let img = fam.image(5, 7);
        for (c, &v) in img[..4].iter().enumerate() {
            let want = (((code >> (2 * c)) & 1) + ((code >> (2 * c + 1)) & 1)) as f32 / 4.0;
            assert!((v - want).abs() < 1e-6, "pixel {c}: {v} vs {want}");
        }
        assert!(img[4..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rotations_add_three_rotated_classes_in_the_same_split() {
        let dir = background_only();
        let mut s = spec(dir.path(), THIRDS);
        s.rotations = true;
        let fam = Omniglot::load(&s, 1).unwrap();
        let all: usize = [Split::Train, Split::Validation, Split::Test]
            .iter()
            .map(|&sp| fam.classes(sp).len())
            .sum();
        assert_eq!(all, 48);
        for split in [Split::Train, Split::Validation, Split::Test] {
            for &c in fam.classes(split) {
                let base = c / 4 * 4;
                assert!((0..4).all(|r| fam.classes(split).contains(&(base + r))));
            }
        }
        // Character 0, drawing 0 has one ink pixel: top-left. Counter-clockwise turns move it
        // to bottom-left, bottom-right, top-right.
        let s1 = SIDE - 1;
        for (turns, (r, c)) in [(0, 0), (s1, 0), (s1, s1), (0, s1)].into_iter().enumerate() {
            let img = fam.image(turns, 0);
            let inked: Vec<usize> = (0..SIDE * SIDE).filter(|&i| img[i] > 0.5).collect();
            assert_eq!(inked, vec![r * SIDE + c], "{turns} quarter turns");
        }
        assert!(fam
            .class_name(5)
            .ends_with("Alphabet0/character02 rotated 90°"));
        assert!(
            fam.describe()
                .contains("train 16 / val 16 / test 16 classes, rotations"),
            "{}",
            fam.describe()
        );
    }

    #[test]
    fn episodes_are_class_major_distinct_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 8, 20, 0);
        let s = OmniglotSpec {
            ways: 4,
            shots: 3,
            queries: 5,
            ..spec(
                dir.path(),
                OmniglotProtocol::CharacterSplit {
                    train: 0.5,
                    validation: 0.25,
                },
            )
        };
        let fam = Omniglot::load(&s, 1).unwrap();
        assert_eq!(
            fam.shape(),
            FamilyShape {
                input: vec![1, SIDE, SIDE],
                outputs: 4,
                kind: TaskKind::Classification
            }
        );
        let mut rng = Rng::seed_from_u64(11);
        let mut seen_orders = std::collections::HashSet::new();
        for _ in 0..50 {
            let task = fam.sample_task(Split::Train, &mut rng);
            let Task::Classes { split, classes } = &task else {
                unreachable!()
            };
            assert_eq!(*split, Split::Train);
            assert_eq!(classes.len(), 4);
            assert!(classes
                .iter()
                .all(|c| fam.classes(Split::Train).contains(c)));
            let mut uniq = classes.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), 4);
            seen_orders.insert(classes.clone());

            let ep = fam.sample_episode(&task, &mut rng);
            assert_eq!((ep.support.n, ep.query.n), (12, 20));
            assert_eq!(ep.support.x.len(), 12 * SIDE * SIDE);
            assert_eq!(ep.query.x.len(), 20 * SIDE * SIDE);
            let Targets::Classes(sy) = &ep.support.y else {
                unreachable!()
            };
            let Targets::Classes(qy) = &ep.query.y else {
                unreachable!()
            };
            assert_eq!(sy, &[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
            assert_eq!(qy.len(), 20);
            assert!(qy
                .chunks(5)
                .enumerate()
                .all(|(i, ch)| ch.iter().all(|&y| y == i)));
            let mut ids: Vec<usize> = vec![];
            for (batch, labels) in [(&ep.support, sy), (&ep.query, qy)] {
                for (img, &y) in batch.x.chunks(SIDE * SIDE).zip(labels) {
                    let id = drawing_id(img);
                    assert_eq!(id / 20, classes[y], "image of drawing {id} labelled {y}");
                    ids.push(id);
                }
            }
            let n = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "a drawing was used twice in one episode");
        }
        // Tasks vary (there are C(6,4)·4! ordered 4-way tasks of 6 train classes).
        assert!(seen_orders.len() > 30, "{}", seen_orders.len());

        let draw = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let t = fam.sample_task(Split::Test, &mut Rng::seed_from_u64(seed));
            (t.clone(), fam.sample_episode(&t, &mut rng))
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5).1, draw(6).1);
    }

    #[test]
    fn alphabet_tasks_are_one_per_training_alphabet_and_keep_their_held_out_drawings_apart() {
        let dir = tempfile::tempdir().unwrap();
        // Six alphabets of four characters, 20 drawings each; a third of the alphabets train.
        fake_set(dir.path(), "images_background", 6, 4, 20, 0);
        let s = OmniglotSpec {
            alphabet_tasks: Some(crate::experiment::AlphabetTasks { held_out: 5 }),
            ..spec(dir.path(), THIRDS)
        };
        let fam = Omniglot::load(&s, 1).unwrap();
        let tasks = fam.fixed_tasks().unwrap().to_vec();
        let train_alphabets: std::collections::BTreeSet<usize> = fam
            .classes(Split::Train)
            .iter()
            .map(|&c| fam.layout.chars[c].alphabet)
            .collect();
        assert_eq!(tasks.len(), train_alphabets.len());
        assert_eq!(fam.task_names().len(), tasks.len());
        assert!(fam
            .describe()
            .contains("alphabet tasks (5 drawings per character held out)"));
        let mut rng = Rng::seed_from_u64(3);
        for (t, name) in tasks.iter().zip(fam.task_names()) {
            let Task::Classes { split, classes } = t else {
                unreachable!()
            };
            assert_eq!(*split, Split::Train);
            assert_eq!(classes.len(), s.ways);
            let a = fam.layout.chars[classes[0]].alphabet;
            assert!(classes.iter().all(|&c| fam.layout.chars[c].alphabet == a));
            assert!(classes
                .iter()
                .all(|c| fam.classes(Split::Train).contains(c)));
            assert_eq!(name, &fam.layout.alphabets[a].qualified());
            // Training episodes use the first 15 drawings of each character, held-out ones
            // the last 5; both keep the task's label order.
            for _ in 0..30 {
                for (ep, held) in [
                    (fam.sample_episode(t, &mut rng), false),
                    (fam.held_out_episode(t, &mut rng), true),
                ] {
                    let Targets::Classes(sy) = &ep.support.y else {
                        unreachable!()
                    };
                    for (img, &y) in ep.support.x.chunks(SIDE * SIDE).zip(sy) {
                        let id = drawing_id(img);
                        assert_eq!(id / 20, classes[y]);
                        assert_eq!(id % 20 >= 15, held, "drawing {id}");
                    }
                }
            }
        }
        // The held-out partition: part d is drawing 15 + d of every character, in the task's
        // label order, so each held-out drawing is scored exactly once.
        for t in &tasks {
            let Task::Classes { classes, .. } = t else {
                unreachable!()
            };
            let parts = fam.held_out_partition(t).expect("an alphabet task");
            assert_eq!(parts.len(), 5);
            let mut ids = vec![];
            for (d, part) in parts.iter().enumerate() {
                assert_eq!(part.support.n, 0);
                assert_eq!(part.query.n, s.ways);
                let Targets::Classes(qy) = &part.query.y else {
                    unreachable!()
                };
                for (img, &y) in part.query.x.chunks(SIDE * SIDE).zip(qy) {
                    assert_eq!(drawing_id(img), classes[y] * 20 + 15 + d);
                    ids.push(drawing_id(img));
                }
            }
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 5 * s.ways, "every held-out drawing, once");
        }
        let other = fam.sample_task(Split::Test, &mut rng);
        assert!(fam.held_out_partition(&other).is_none());
        // The tasks are a function of the seed: the same seed, the same characters.
        let again = Omniglot::load(&s, 1).unwrap();
        assert_eq!(again.fixed_tasks().unwrap(), &tasks[..]);
        // Other tasks draw from all 20 drawings, as without alphabet tasks.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let t = fam.sample_task(Split::Test, &mut rng);
            let ep = fam.sample_episode(&t, &mut rng);
            for img in ep.query.x.chunks(SIDE * SIDE) {
                seen.insert(drawing_id(img) % 20);
            }
        }
        assert_eq!(seen.len(), 20);
        assert!(Omniglot::load(&spec(dir.path(), THIRDS), 1)
            .unwrap()
            .fixed_tasks()
            .is_none());
        // Too few drawings for the held-out ones and a training episode: said, with the fix.
        let few = tempfile::tempdir().unwrap();
        fake_set(few.path(), "images_background", 3, 4, 9, 0);
        let err = Omniglot::load(
            &OmniglotSpec {
                root: few.path().into(),
                ..s
            },
            1,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("9 drawings") && err.contains("fix: lower"),
            "{err}"
        );
    }

    /// The real background set, when present: `cargo test --release -- --ignored real_background`.
    #[test]
    #[ignore]
    fn real_background_set_loads_with_rotations() {
        let root = std::env::var_os("METALAB_OMNIGLOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/data/omniglot"));
        if !root.join("images_background").is_dir() {
            eprintln!(
                "skipping: no Omniglot background set under {}",
                root.display()
            );
            return;
        }
        let s = OmniglotSpec {
            root,
            ways: 5,
            shots: 1,
            queries: 15,
            image_size: 28,
            rotations: true,
            protocol: OmniglotProtocol::AlphabetSplit {
                train: 0.7,
                validation: 0.1,
            },
            classes: ClassDraw::AnyAlphabet,
            alphabet_tasks: None,
        };
        let t = std::time::Instant::now();
        let summary = scan(&s, 1).unwrap();
        let scanned = t.elapsed();
        let t = std::time::Instant::now();
        let fam = Omniglot::load(&s, 1).unwrap();
        let loaded = t.elapsed();
        eprintln!("scan {scanned:?}, load {loaded:?}: {}", fam.describe());
        eprintln!("{summary}");
        assert_eq!(
            (summary.alphabets, summary.characters, summary.images),
            (30, 964, 19280)
        );
        assert_eq!(
            summary.train.classes + summary.validation.classes + summary.test.classes,
            3856
        );
        assert_eq!(fam.images.len(), 19280 * 28 * 28);
        // Strokes cover a small part of each drawing; background is exactly 0 away from them.
        let mean = fam.images.iter().sum::<f32>() / fam.images.len() as f32;
        assert!((0.03..0.3).contains(&mean), "mean ink {mean}");
        assert!(fam.images.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
        let mut rng = Rng::seed_from_u64(0);
        let task = fam.sample_task(Split::Test, &mut rng);
        let ep = fam.sample_episode(&task, &mut rng);
        assert_eq!((ep.support.n, ep.query.n), (5, 75));
    }
}
