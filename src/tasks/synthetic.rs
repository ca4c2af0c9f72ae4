//! Procedurally generated image classes: Omniglot-shaped tasks with no files, for fast tests
//! and demos.
//!
//! Each class is a prototype of a few random 1-pixel strokes (1.0 on 0.0). A drawing is the
//! prototype shifted by up to one pixel in each direction plus Gaussian pixel noise, so a model
//! has to tolerate small translations and noise rather than match pixels exactly.

use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::json;

use super::episode::{choose_classes, class_major_episode, image_classes_shape};
use super::*;
use crate::experiment::SyntheticSpec;

/// Strokes per prototype: enough that two classes rarely look alike, few enough that shifted,
/// noisy drawings of different classes still overlap.
const STROKES: usize = 3;

pub struct Synthetic {
    spec: SyntheticSpec,
    seed: u64,
    /// `classes × size × size`.
    prototypes: Vec<f32>,
    /// Class ids per split (train, validation, test), ascending.
    splits: [Vec<usize>; 3],
}

fn split_index(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Validation => 1,
        Split::Test => 2,
    }
}

/// Draw a line between two points with a 2×2 brush, stepping along its longer axis. A 1-pixel
/// line would share almost no ink with itself shifted by one pixel, which makes classes hard
/// to tell apart by anything short of a shift-invariant model; 2 pixels keep half the overlap.
fn stroke(img: &mut [f32], size: usize, (r0, c0): (f32, f32), (r1, c1): (f32, f32)) {
    let steps = (r1 - r0).abs().max((c1 - c0).abs()).ceil().max(1.0) as usize;
    for k in 0..=steps {
        let t = k as f32 / steps as f32;
        let r = (r0 + t * (r1 - r0)).round() as usize;
        let c = (c0 + t * (c1 - c0)).round() as usize;
        for (dr, dc) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            if r + dr < size && c + dc < size {
                img[(r + dr) * size + c + dc] = 1.0;
            }
        }
    }
}

fn prototype(size: usize, rng: &mut Rng) -> Vec<f32> {
    let mut img = vec![0f32; size * size];
    // Keep strokes (and the brush's extra row and column) off the border, so that a
    // one-pixel shift does not push ink out of the frame.
    let (lo, hi) = if size >= 5 {
        (1.0, (size - 3) as f32)
    } else {
        (0.0, (size - 1) as f32)
    };
    let point = |rng: &mut Rng| (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
    for _ in 0..STROKES {
        let a = point(rng);
        // A stroke shorter than a third of the image is a dot; redraw its end a few times.
        let mut b = point(rng);
        for _ in 0..8 {
            if (a.0 - b.0).abs().max((a.1 - b.1).abs()) >= size as f32 / 3.0 {
                break;
            }
            b = point(rng);
        }
        stroke(&mut img, size, a, b);
    }
    img
}

impl Synthetic {
    pub fn new(spec: SyntheticSpec, seed: u64) -> Result<Synthetic, FamilyError> {
        if spec.image_size < 2 {
            return Err(FamilyError::Other(format!(
                "synthetic image_size {} is too small to draw strokes on\n  fix: use image_size: 12",
                spec.image_size
            )));
        }
        if !(spec.noise.is_finite() && spec.noise >= 0.0) {
            return Err(FamilyError::Other(format!(
                "synthetic noise {} must be a non-negative number\n  fix: use noise: 0.3",
                spec.noise
            )));
        }
        let mut rng = Rng::seed_from_u64(seed);
        let prototypes: Vec<f32> = (0..spec.classes)
            .flat_map(|_| prototype(spec.image_size, &mut rng))
            .collect();
        let mut order: Vec<usize> = (0..spec.classes).collect();
        order.shuffle(&mut rng);
        // The split sizes `experiment::validate` assumes (test = classes / 5), so the two agree.
        let held = spec.classes / 5;
        let n_train = spec.classes - 2 * held;
        let mut splits = [
            order[..n_train].to_vec(),
            order[n_train..n_train + held].to_vec(),
            order[n_train + held..].to_vec(),
        ];
        for s in &mut splits {
            s.sort_unstable();
        }
        for split in [Split::Train, Split::Validation, Split::Test] {
            let available = splits[split_index(split)].len();
            if available < spec.ways {
                return Err(FamilyError::TooFewClasses {
                    split,
                    available,
                    ways: spec.ways,
                    fix: format!(
                        "raise classes to at least {} (validation and test get a fifth each), or lower ways",
                        spec.ways * 5
                    ),
                });
            }
        }
        Ok(Synthetic {
            spec,
            seed,
            prototypes,
            splits,
        })
    }

    pub fn classes(&self, split: Split) -> &[usize] {
        &self.splits[split_index(split)]
    }

    /// The clean prototype of a class, `size × size`.
    pub fn prototype(&self, class: usize) -> &[f32] {
        let n = self.spec.image_size * self.spec.image_size;
        &self.prototypes[class * n..(class + 1) * n]
    }

    fn draw_into(&self, class: usize, rng: &mut Rng, noise: &Normal<f32>, dst: &mut [f32]) {
        let s = self.spec.image_size as isize;
        let proto = self.prototype(class);
        let (dr, dc) = (rng.gen_range(-1isize..=1), rng.gen_range(-1isize..=1));
        for r in 0..s {
            for c in 0..s {
                let (sr, sc) = (r - dr, c - dc);
                let v = if (0..s).contains(&sr) && (0..s).contains(&sc) {
                    proto[(sr * s + sc) as usize]
                } else {
                    0.0
                };
                dst[(r * s + c) as usize] = v + noise.sample(rng);
            }
        }
    }
}

impl TaskFamily for Synthetic {
    fn shape(&self) -> FamilyShape {
        image_classes_shape(self.spec.image_size, self.spec.ways)
    }

    fn sample_task(&self, split: Split, rng: &mut Rng) -> Task {
        Task::Classes {
            split,
            classes: choose_classes(self.classes(split), self.spec.ways, rng),
        }
    }

    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let Task::Classes { classes, .. } = task else {
            panic!("synthetic family given a {task:?}")
        };
        let n = self.spec.image_size * self.spec.image_size;
        let noise = Normal::new(0.0, self.spec.noise).expect("noise checked in Synthetic::new");
        let (shots, queries) = (self.spec.shots, self.spec.queries);
        class_major_episode(classes.len(), shots, queries, n, rng, |i, rng, buf| {
            for dst in buf.chunks_exact_mut(n) {
                self.draw_into(classes[i], rng, &noise, dst);
            }
        })
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "Synthetic {}-way {}-shot ({} query), {}×{}, noise {}, train {} / val {} / test {} classes",
            s.ways,
            s.shots,
            s.queries,
            s.image_size,
            s.image_size,
            s.noise,
            self.splits[0].len(),
            self.splits[1].len(),
            self.splits[2].len()
        )
    }

    fn split_record(&self) -> serde_json::Value {
        json!({
            "family": "Synthetic",
            "seed": self.seed,
            "classes": self.spec.classes,
            "train": self.splits[0],
            "validation": self.splits[1],
            "test": self.splits[2],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(b: &Batch) -> &[usize] {
        let Targets::Classes(y) = &b.y else {
            panic!("classification batch expected")
        };
        y
    }

    /// Fraction of query drawings whose nearest clean prototype (among the task's classes) is
    /// their own class.
    fn nearest_prototype_accuracy(fam: &Synthetic, split: Split, tasks: usize, seed: u64) -> f64 {
        let mut rng = Rng::seed_from_u64(seed);
        let n = fam.spec.image_size * fam.spec.image_size;
        let (mut right, mut total) = (0, 0);
        for _ in 0..tasks {
            let task = fam.sample_task(split, &mut rng);
            let Task::Classes { classes, .. } = &task else {
                unreachable!()
            };
            let ep = fam.sample_episode(&task, &mut rng);
            for (img, &y) in ep.query.x.chunks(n).zip(labels(&ep.query)) {
                let dist = |c: usize| -> f32 {
                    img.iter()
                        .zip(fam.prototype(c))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                };
                let guess = (0..classes.len())
                    .min_by(|&i, &j| dist(classes[i]).total_cmp(&dist(classes[j])))
                    .unwrap();
                right += (guess == y) as usize;
                total += 1;
            }
        }
        right as f64 / total as f64
    }

    #[test]
    fn splits_are_disjoint_seeded_and_sized_60_20_20() {
        let fam = Synthetic::new(SyntheticSpec::default(), 4).unwrap();
        let sizes: Vec<usize> = [Split::Train, Split::Validation, Split::Test]
            .iter()
            .map(|&s| fam.classes(s).len())
            .collect();
        assert_eq!(sizes, [60, 20, 20]);
        let mut all: Vec<usize> = fam.splits.concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let again = Synthetic::new(SyntheticSpec::default(), 4).unwrap();
        assert_eq!(fam.splits, again.splits);
        assert_eq!(fam.prototypes, again.prototypes);
        assert_eq!(fam.split_record(), again.split_record());
        let other = Synthetic::new(SyntheticSpec::default(), 5).unwrap();
        assert_ne!(fam.splits[2], other.splits[2]);
        assert_ne!(fam.prototypes, other.prototypes);
        // No two prototypes coincide, so every class is tellable apart from every other.
        let n = 12 * 12;
        let protos: Vec<&[f32]> = fam.prototypes.chunks(n).collect();
        for i in 0..protos.len() {
            assert!(protos[i].contains(&1.0));
            for j in 0..i {
                assert_ne!(protos[i], protos[j], "classes {i} and {j}");
            }
        }
    }

    #[test]
    fn too_few_classes_is_reported_with_a_fix() {
        let spec = SyntheticSpec {
            classes: 20,
            ..SyntheticSpec::default()
        };
        let err = Synthetic::new(spec, 1).err().unwrap();
        assert!(
            matches!(
                err,
                FamilyError::TooFewClasses {
                    split: Split::Validation,
                    available: 4,
                    ways: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("raise classes to at least 25"));
        let bad_noise = SyntheticSpec {
            noise: -1.0,
            ..SyntheticSpec::default()
        };
        assert!(Synthetic::new(bad_noise, 1).is_err());
    }

    #[test]
    fn episodes_have_the_contract_shape_and_are_deterministic() {
        let spec = SyntheticSpec {
            ways: 4,
            shots: 2,
            queries: 3,
            ..SyntheticSpec::default()
        };
        let fam = Synthetic::new(spec, 1).unwrap();
        assert_eq!(
            fam.shape(),
            FamilyShape {
                input: vec![1, 12, 12],
                outputs: 4,
                kind: TaskKind::Classification
            }
        );
        let mut rng = Rng::seed_from_u64(2);
        for split in [Split::Train, Split::Validation, Split::Test] {
            let task = fam.sample_task(split, &mut rng);
            let Task::Classes { split: s, classes } = &task else {
                unreachable!()
            };
            assert_eq!(*s, split);
            let mut uniq = classes.clone();
            uniq.sort_unstable();
            uniq.dedup();
            assert_eq!(uniq.len(), 4);
            assert!(classes.iter().all(|c| fam.classes(split).contains(c)));
            let ep = fam.sample_episode(&task, &mut rng);
            assert_eq!((ep.support.n, ep.query.n), (8, 12));
            assert_eq!(ep.support.x.len(), 8 * 144);
            assert_eq!(ep.query.x.len(), 12 * 144);
            assert_eq!(labels(&ep.support), &[0, 0, 1, 1, 2, 2, 3, 3]);
            assert_eq!(labels(&ep.query), &[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
        }
        let draw = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let t = fam.sample_task(Split::Train, &mut rng);
            let e = fam.sample_episode(&t, &mut rng);
            (t, e)
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }

    #[test]
    fn noiseless_drawings_are_shifted_prototypes_in_class_order() {
        let spec = SyntheticSpec {
            noise: 0.0,
            ..SyntheticSpec::default()
        };
        let fam = Synthetic::new(spec, 3).unwrap();
        let mut rng = Rng::seed_from_u64(1);
        let task = fam.sample_task(Split::Test, &mut rng);
        let Task::Classes { classes, .. } = &task else {
            unreachable!()
        };
        let ep = fam.sample_episode(&task, &mut rng);
        let s = 12isize;
        let shifted = |c: usize, dr: isize, dc: isize| -> Vec<f32> {
            let p = fam.prototype(c);
            (0..s * s)
                .map(|i| {
                    let (r, col) = (i / s - dr, i % s - dc);
                    if (0..s).contains(&r) && (0..s).contains(&col) {
                        p[(r * s + col) as usize]
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mut shifts = std::collections::HashSet::new();
        for (img, &y) in ep.query.x.chunks(144).zip(labels(&ep.query)) {
            let found = (-1..=1)
                .flat_map(|dr| (-1..=1).map(move |dc| (dr, dc)))
                .find(|&(dr, dc)| shifted(classes[y], dr, dc) == img);
            shifts.insert(found.expect("a drawing is its class prototype shifted by at most 1"));
        }
        assert!(shifts.len() > 1, "drawings are not all shifted alike");
    }

    #[test]
    fn nearest_prototype_beats_chance_but_noise_makes_it_harder() {
        for seed in 1..=3 {
            let fam = Synthetic::new(SyntheticSpec::default(), seed).unwrap();
            let acc = nearest_prototype_accuracy(&fam, Split::Test, 200, 7);
            eprintln!("seed {seed}: nearest-prototype accuracy, noise 0.3: {acc:.3} (chance 0.2)");
            // Learnable, yet shifts and noise keep pixel matching from being perfect.
            assert!(acc > 0.6 && acc < 0.98, "{acc}");
            let noisy = Synthetic::new(
                SyntheticSpec {
                    noise: 1.5,
                    ..SyntheticSpec::default()
                },
                seed,
            )
            .unwrap();
            let hard = nearest_prototype_accuracy(&noisy, Split::Test, 200, 7);
            eprintln!("seed {seed}: nearest-prototype accuracy, noise 1.5: {hard:.3}");
            assert!(hard < acc - 0.1, "{hard} vs {acc}");
        }
    }

    #[test]
    fn build_family_makes_a_seeded_synthetic_family() {
        let spec = crate::experiment::FamilySpec::Synthetic(SyntheticSpec::default());
        let a = build_family(&spec, 3).unwrap();
        let b = build_family(&spec, 3).unwrap();
        assert_eq!(a.split_record(), b.split_record());
        assert_eq!(a.shape().input_len(), 144);
        assert!(
            a.describe()
                .contains("5-way 1-shot (5 query), 12×12, noise 0.3, train 60 / val 20 / test 20"),
            "{}",
            a.describe()
        );
        let mut r1 = Rng::seed_from_u64(1);
        let mut r2 = Rng::seed_from_u64(1);
        let t = a.sample_task(Split::Validation, &mut r1);
        assert_eq!(t, b.sample_task(Split::Validation, &mut r2));
        assert_eq!(a.sample_episode(&t, &mut r1), b.sample_episode(&t, &mut r2));
    }

    #[test]
    fn every_allowed_image_size_draws() {
        for image_size in [4, 5, 28, 64] {
            let fam = Synthetic::new(
                SyntheticSpec {
                    image_size,
                    ..SyntheticSpec::default()
                },
                1,
            )
            .unwrap();
            let mut rng = Rng::seed_from_u64(0);
            let t = fam.sample_task(Split::Train, &mut rng);
            let ep = fam.sample_episode(&t, &mut rng);
            assert_eq!(ep.query.x.len(), 25 * image_size * image_size);
            assert!((0..100).all(|c| fam.prototype(c).contains(&1.0)));
        }
    }
}
