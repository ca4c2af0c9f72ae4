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

use super::omniglot::{choose_classes, class_major_episode};
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

/// Draw a line between two points by uniform stepping along its longer axis.
fn stroke(img: &mut [f32], size: usize, (r0, c0): (f32, f32), (r1, c1): (f32, f32)) {
    let steps = (r1 - r0).abs().max((c1 - c0).abs()).ceil().max(1.0) as usize;
    for k in 0..=steps {
        let t = k as f32 / steps as f32;
        let r = (r0 + t * (r1 - r0)).round() as usize;
        let c = (c0 + t * (c1 - c0)).round() as usize;
        img[r * size + c] = 1.0;
    }
}

fn prototype(size: usize, rng: &mut Rng) -> Vec<f32> {
    let mut img = vec![0f32; size * size];
    // Keep strokes off the border so a one-pixel shift does not push ink out of the frame.
    let (lo, hi) = if size >= 4 {
        (1.0, (size - 2) as f32)
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
        // Same arithmetic as `metalab check` uses (test = classes / 5), so the two agree.
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
        FamilyShape {
            input: vec![1, self.spec.image_size, self.spec.image_size],
            outputs: self.spec.ways,
            kind: TaskKind::Classification,
        }
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
