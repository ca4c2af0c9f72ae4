//! Random affine distortions of training images (Koch et al. 2015; Lake et al. 2019 train
//! ProtoNets with them): a family wrapper that distorts every image of the episodes it hands
//! out. Only the training stream is wrapped; evaluations sample the family underneath.
//!
//! The distortion is drawn from the episode's own random stream, a fixed number of draws per
//! image, so a rerun or a resumed run (which restores the stream's position) sees the same
//! images.

use std::sync::Arc;

use rand::Rng as _;

use super::{Episode, FamilyShape, Rng, Targets, Task, TaskFamily};
use crate::experiment::{AffineRanges, Augment};

/// The training family for `augment`: `family` itself when augmentation is off.
pub fn wrap(family: Arc<dyn TaskFamily>, augment: Augment) -> Arc<dyn TaskFamily> {
    match augment {
        Augment::Off => family,
        Augment::Affine(ranges) => Arc::new(Augmented { family, ranges }),
    }
}

/// A family whose episodes' images are distorted at random.
pub struct Augmented {
    family: Arc<dyn TaskFamily>,
    ranges: AffineRanges,
}

impl TaskFamily for Augmented {
    fn shape(&self) -> FamilyShape {
        self.family.shape()
    }

    fn sample_task(&self, split: super::Split, rng: &mut Rng) -> Task {
        self.family.sample_task(split, rng)
    }

    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let mut episode = self.family.sample_episode(task, rng);
        let input = self.family.shape().input;
        let (h, w) = (input[input.len() - 2], input[input.len() - 1]);
        let channels: usize = input[..input.len() - 2].iter().product();
        let mut scratch = vec![0f32; h * w];
        for batch in [&mut episode.support, &mut episode.query] {
            for image in batch.x.chunks_exact_mut(channels * h * w) {
                // One distortion per image, the same for each of its channels.
                let map = Affine::draw(&self.ranges, h.max(w), rng);
                for plane in image.chunks_exact_mut(h * w) {
                    scratch.copy_from_slice(plane);
                    map.warp(&scratch, h, w, plane);
                }
            }
        }
        episode
    }

    // What is not about the images is the family's own: its class names (the workbench's
    // class view), fixed tasks and curves; and held-out episodes are never distorted.
    fn class_label(&self, class: usize) -> Option<String> {
        self.family.class_label(class)
    }

    fn fixed_tasks(&self) -> Option<&[Task]> {
        self.family.fixed_tasks()
    }

    fn fixed_task_name(&self, t: usize) -> Option<String> {
        self.family.fixed_task_name(t)
    }

    fn curve(&self, task: &Task, n: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        self.family.curve(task, n)
    }

    fn held_out_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        self.family.held_out_episode(task, rng)
    }

    fn held_out_partition(&self, task: &Task) -> Option<Vec<Episode>> {
        self.family.held_out_partition(task)
    }

    fn describe(&self) -> String {
        format!(
            "{}; training images distorted: {}",
            self.family.describe(),
            describe(&self.ranges)
        )
    }

    fn split_record(&self) -> serde_json::Value {
        self.family.split_record()
    }
}

/// Test-time support augmentation: `copies` distorted versions of every support image of
/// `episode` (images of shape `input`, `[.., h, w]`), each with its original's label, after the
/// originals. A K-shot class then has K·(1 + copies) support examples: a prototype averages
/// them, a gradient-based arm adapts on them. The query set is untouched.
pub fn add_support_copies(
    episode: &mut Episode,
    input: &[usize],
    copies: usize,
    ranges: &AffineRanges,
    rng: &mut Rng,
) {
    let (h, w) = (input[input.len() - 2], input[input.len() - 1]);
    let len: usize = input.iter().product();
    let support = &mut episode.support;
    let n = support.n;
    let originals = support.x.clone();
    support.x.reserve(copies * n * len);
    for _ in 0..copies {
        for image in originals.chunks_exact(len) {
            let map = Affine::draw(ranges, h.max(w), rng);
            for plane in image.chunks_exact(h * w) {
                let at = support.x.len();
                support.x.resize(at + h * w, 0.0);
                map.warp(plane, h, w, &mut support.x[at..]);
            }
        }
        match &mut support.y {
            Targets::Classes(c) => c.extend_from_within(..n),
            Targets::Values(v) => {
                let per = v.len() / n.max(1);
                v.extend_from_within(..n * per)
            }
        }
    }
    support.n = n * (1 + copies);
}

/// What `augment` does to training images, in words; `None` when it leaves them alone.
pub fn in_words(augment: Augment) -> Option<String> {
    match augment {
        Augment::Off => None,
        Augment::Affine(r) => Some(describe(&r)),
    }
}

/// The ranges in a few words, for the Monitor's header and `run.json`.
pub fn describe(r: &AffineRanges) -> String {
    format!(
        "rotation ±{}°, shear ±{}, scale {}–{}, shift ±{:.3} of the side, each with chance {}",
        r.rotation, r.shear, r.scale.0, r.scale.1, r.shift, r.chance
    )
}

/// A map from output pixels to the input points they sample, about the image centre:
/// `input = m · (output − centre − t) + centre`, where `m` inverts the distortion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// The inverse of rotation · shear · scale, row-major (x then y).
    pub m: [[f64; 2]; 2],
    /// The shift in pixels (x, y).
    pub t: [f64; 2],
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        m: [[1.0, 0.0], [0.0, 1.0]],
        t: [0.0, 0.0],
    };

    /// The distortion `rotation(θ) · shear(ρx, ρy) · scale(sx, sy)` then a shift, for an image
    /// `side` pixels wide.
    pub fn new(theta_deg: f64, shear: [f64; 2], scale: [f64; 2], shift: [f64; 2]) -> Affine {
        let (s, c) = theta_deg.to_radians().sin_cos();
        let rot = [[c, -s], [s, c]];
        let sh = [[1.0, shear[0]], [shear[1], 1.0]];
        let sc = [[scale[0], 0.0], [0.0, scale[1]]];
        let a = mul(mul(rot, sh), sc);
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        Affine {
            m: [
                [a[1][1] / det, -a[0][1] / det],
                [-a[1][0] / det, a[0][0] / det],
            ],
            t: shift,
        }
    }

    /// One random distortion within `r`: eleven draws, always, whichever parts apply, so the
    /// stream's position after an episode does not depend on the draws.
    pub fn draw(r: &AffineRanges, side: usize, rng: &mut Rng) -> Affine {
        let part = |rng: &mut Rng| rng.gen::<f64>() < r.chance;
        let sym = |rng: &mut Rng, half: f64| (2.0 * rng.gen::<f64>() - 1.0) * half;
        let rotate = part(rng);
        let theta = sym(rng, r.rotation);
        let shear = part(rng);
        let rho = [sym(rng, r.shear), sym(rng, r.shear)];
        let scale = part(rng);
        let (lo, hi) = r.scale;
        let s = [
            lo + (hi - lo) * rng.gen::<f64>(),
            lo + (hi - lo) * rng.gen::<f64>(),
        ];
        let shift = part(rng);
        let px = r.shift * side as f64;
        let t = [sym(rng, px), sym(rng, px)];
        Affine::new(
            if rotate { theta } else { 0.0 },
            if shear { rho } else { [0.0, 0.0] },
            if scale { s } else { [1.0, 1.0] },
            if shift { t } else { [0.0, 0.0] },
        )
    }

    /// `dst` (h × w) sampled bilinearly from `src` through the map; outside `src` is paper (0).
    ///
    /// Each product of the map is computed once per row or column and the sums are taken in
    /// the order [`Affine::warp_reference`] takes them, so the images are the same bits: a
    /// rerun of a run trained before this was written sees the same images.
    pub fn warp(&self, src: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let (mut ux, mut vx) = (Vec::with_capacity(w), Vec::with_capacity(w));
        for c in 0..w {
            let x = c as f64 + 0.5 - cx - self.t[0];
            ux.push(self.m[0][0] * x);
            vx.push(self.m[1][0] * x);
        }
        for (r, row) in dst.chunks_exact_mut(w).take(h).enumerate() {
            let y = r as f64 + 0.5 - cy - self.t[1];
            let (uy, vy) = (self.m[0][1] * y, self.m[1][1] * y);
            for ((out, &ux), &vx) in row.iter_mut().zip(&ux).zip(&vx) {
                *out = bilinear(src, h, w, ux + uy + cx - 0.5, vx + vy + cy - 0.5);
            }
        }
    }

    /// [`Affine::warp`] as first written, every product per pixel: what the fast one is
    /// checked against.
    #[cfg(test)]
    fn warp_reference(&self, src: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        for r in 0..h {
            let y = r as f64 + 0.5 - cy - self.t[1];
            for c in 0..w {
                let x = c as f64 + 0.5 - cx - self.t[0];
                let u = self.m[0][0] * x + self.m[0][1] * y + cx - 0.5;
                let v = self.m[1][0] * x + self.m[1][1] * y + cy - 0.5;
                dst[r * w + c] = bilinear(src, h, w, u, v);
            }
        }
    }
}

fn mul(a: [[f64; 2]; 2], b: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}

/// `src` at column `u`, row `v` (pixel centres at integers), 0 outside the image.
///
/// On the hot path of every augmented episode (a meta-batch of 32 5-way episodes warps 2,560
/// images), so the floor and the bounds are integer work: `f64::floor` is a libm call on the
/// baseline x86-64 target. The arithmetic on the samples is unchanged, and so are the images.
fn bilinear(src: &[f32], h: usize, w: usize, u: f64, v: f64) -> f32 {
    // Every tap is outside: paper. (Also keeps the casts below in range.)
    if !(u > -1.0 && v > -1.0 && u < w as f64 && v < h as f64) {
        return 0.0;
    }
    let (c0, r0) = (floor(u), floor(v));
    let (fu, fv) = ((u - c0 as f64) as f32, (v - r0 as f64) as f32);
    let (wi, hi) = (w as i64, h as i64);
    // Most of an image's pixels sample its inside: no tap needs a bounds check there.
    let (a, b, c, d) = if c0 >= 0 && r0 >= 0 && c0 + 1 < wi && r0 + 1 < hi {
        let i = r0 as usize * w + c0 as usize;
        (src[i], src[i + 1], src[i + w], src[i + w + 1])
    } else {
        let at = |c: i64, r: i64| -> f32 {
            if c < 0 || r < 0 || c >= wi || r >= hi {
                0.0
            } else {
                src[(r * wi + c) as usize]
            }
        };
        (
            at(c0, r0),
            at(c0 + 1, r0),
            at(c0, r0 + 1),
            at(c0 + 1, r0 + 1),
        )
    };
    let top = a * (1.0 - fu) + b * fu;
    let bottom = c * (1.0 - fu) + d * fu;
    top * (1.0 - fv) + bottom * fv
}

/// `x.floor()` for `|x| < 2⁶³`, exactly, without the libm call.
fn floor(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t - 1
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::experiment::SyntheticSpec;
    use crate::tasks::omniglot::rotate_into;
    use crate::tasks::synthetic::Synthetic;
    use crate::tasks::Split;

    fn image(side: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::seed_from_u64(seed);
        (0..side * side).map(|_| rng.gen::<f32>()).collect()
    }

    /// The sampling as first written (libm floor, float bounds): the fast one must give the
    /// same bits, or reruns of earlier augmented runs would train on other images.
    fn bilinear_reference(src: &[f32], h: usize, w: usize, u: f64, v: f64) -> f32 {
        let (u0, v0) = (u.floor(), v.floor());
        let (fu, fv) = ((u - u0) as f32, (v - v0) as f32);
        let at = |c: f64, r: f64| -> f32 {
            if c < 0.0 || r < 0.0 || c >= w as f64 || r >= h as f64 {
                0.0
            } else {
                src[r as usize * w + c as usize]
            }
        };
        let top = at(u0, v0) * (1.0 - fu) + at(u0 + 1.0, v0) * fu;
        let bottom = at(u0, v0 + 1.0) * (1.0 - fu) + at(u0 + 1.0, v0 + 1.0) * fu;
        top * (1.0 - fv) + bottom * fv
    }

    #[test]
    fn fast_sampling_gives_the_same_bits_as_the_reference() {
        let (h, w) = (9, 7);
        let src = image(9 * 7, 3)[..h * w].to_vec();
        let mut rng = Rng::seed_from_u64(11);
        let edges = [-2.0, -1.0, -0.5, 0.0, 6.0, 6.5, 7.0, 8.0, 9.0, -1e-300];
        for i in 0..20_000 {
            let (u, v) = if i < edges.len() * edges.len() {
                (edges[i % edges.len()], edges[i / edges.len()])
            } else {
                (rng.gen_range(-3.0..11.0), rng.gen_range(-3.0..12.0))
            };
            let (fast, slow) = (
                bilinear(&src, h, w, u, v),
                bilinear_reference(&src, h, w, u, v),
            );
            assert_eq!(fast.to_bits(), slow.to_bits(), "at ({u}, {v})");
        }
        for x in [-3.5, -1.0, -0.25, 0.0, 0.75, 2.0, 1e15 + 0.5, -1e15 - 0.5] {
            assert_eq!(floor(x) as f64, x.floor(), "{x}");
        }
    }

    #[test]
    fn the_fast_warp_gives_the_same_bits_as_the_reference() {
        let r = AffineRanges {
            chance: 0.7,
            rotation: 30.0,
            shift: 0.1,
            ..AffineRanges::default()
        };
        let mut rng = Rng::seed_from_u64(21);
        for (i, (h, w)) in [(28, 28), (7, 9), (105, 105), (1, 5)]
            .into_iter()
            .enumerate()
        {
            let src: Vec<f32> = (0..h * w).map(|_| rng.gen::<f32>()).collect();
            for _ in 0..50 {
                let map = Affine::draw(&r, h.max(w), &mut rng);
                let (mut fast, mut slow) = (vec![f32::NAN; h * w], vec![f32::NAN; h * w]);
                map.warp(&src, h, w, &mut fast);
                map.warp_reference(&src, h, w, &mut slow);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow), "shape {i} ({h}×{w}), {map:?}");
            }
        }
    }

    #[test]
    fn support_copies_follow_the_originals_with_their_labels() {
        let spec = SyntheticSpec::default();
        let family = Synthetic::new(spec, 3).unwrap();
        let mut rng = Rng::seed_from_u64(4);
        let task = family.sample_task(Split::Test, &mut rng);
        let plain = family.sample_episode(&task, &mut rng);
        let input = family.shape().input;
        let len: usize = input.iter().product();
        let copied = |seed| {
            let mut e = plain.clone();
            add_support_copies(
                &mut e,
                &input,
                2,
                &AffineRanges::default(),
                &mut Rng::seed_from_u64(seed),
            );
            e
        };
        let e = copied(9);
        let n = plain.support.n;
        assert_eq!(e.support.n, 3 * n);
        assert_eq!(e.support.x.len(), 3 * n * len);
        assert_eq!(
            &e.support.x[..n * len],
            &plain.support.x[..],
            "the originals come first"
        );
        assert_eq!(e.query, plain.query, "queries are untouched");
        let (Targets::Classes(a), Targets::Classes(b)) = (&e.support.y, &plain.support.y) else {
            panic!("class targets")
        };
        assert_eq!(a, &[b.clone(), b.clone(), b.clone()].concat());
        assert_ne!(
            &e.support.x[n * len..2 * n * len],
            &plain.support.x[..],
            "copies are distorted"
        );
        assert_eq!(copied(9), e, "the same stream gives the same copies");
        assert_ne!(copied(10).support.x, e.support.x);
    }

    #[test]
    fn the_identity_copies_the_image_exactly() {
        let src = image(9, 1);
        let mut dst = vec![0.0; 81];
        Affine::IDENTITY.warp(&src, 9, 9, &mut dst);
        assert_eq!(src, dst);
        Affine::new(0.0, [0.0; 2], [1.0; 2], [0.0; 2]).warp(&src, 9, 9, &mut dst);
        assert_eq!(src, dst);
    }

    #[test]
    fn whole_pixel_shifts_move_the_image_and_bring_in_paper() {
        let (h, w) = (6, 7);
        let src = image(7, 2)[..h * w].to_vec();
        let mut dst = vec![0.0; h * w];
        Affine::new(0.0, [0.0; 2], [1.0; 2], [2.0, -1.0]).warp(&src, h, w, &mut dst);
        for r in 0..h {
            for c in 0..w {
                let (sr, sc) = (r as isize + 1, c as isize - 2);
                let want = if sr < h as isize && sc >= 0 {
                    src[sr as usize * w + sc as usize]
                } else {
                    0.0
                };
                assert_eq!(dst[r * w + c], want, "pixel ({r}, {c})");
            }
        }
    }

    #[test]
    fn a_quarter_turn_matches_the_exact_rotation() {
        for side in [6, 7, 28] {
            let src = image(side, side as u64);
            let mut warped = vec![0.0; side * side];
            let mut exact = vec![0.0; side * side];
            // Image rows grow downwards, so a positive angle turns the picture clockwise.
            Affine::new(90.0, [0.0; 2], [1.0; 2], [0.0; 2]).warp(&src, side, side, &mut warped);
            rotate_into(&src, side, 3, &mut exact);
            let worst = warped
                .iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "side {side}: worst difference {worst}");
        }
    }

    #[test]
    fn scaling_up_spreads_a_centred_dot_and_keeps_it_centred() {
        let side = 8;
        let mut src = vec![0.0; side * side];
        for (r, c) in [(3, 3), (3, 4), (4, 3), (4, 4)] {
            src[r * side + c] = 1.0;
        }
        let mut dst = vec![0.0; side * side];
        Affine::new(0.0, [0.0; 2], [2.0, 2.0], [0.0; 2]).warp(&src, side, side, &mut dst);
        let ink: f32 = dst.iter().sum();
        // A 2×2 dot scaled twice in each direction covers about four times the area.
        assert!((ink - 16.0).abs() < 4.5, "ink {ink}");
        for (a, b) in dst.iter().zip(dst.iter().rev()) {
            assert!(
                (a - b).abs() < 1e-6,
                "the dot stays centred: {a} against {b}"
            );
        }
    }

    #[test]
    fn draws_are_reproducible_and_stay_within_the_ranges() {
        let r = AffineRanges {
            chance: 1.0,
            ..AffineRanges::default()
        };
        let mut a = Rng::seed_from_u64(5);
        let mut b = Rng::seed_from_u64(5);
        for _ in 0..200 {
            let m = Affine::draw(&r, 105, &mut a);
            assert_eq!(m, Affine::draw(&r, 105, &mut b));
            assert!(m.t.iter().all(|t| t.abs() <= 2.0 + 1e-12), "{m:?}");
            // |det m| = 1 / (sx · sy · (1 − ρx ρy)): inside what the ranges allow.
            let det = (m.m[0][0] * m.m[1][1] - m.m[0][1] * m.m[1][0]).abs();
            assert!((1.0 / (1.2 * 1.2 * 1.09)..=1.0 / (0.8 * 0.8 * 0.91)).contains(&det));
        }
        let off = AffineRanges {
            chance: 0.0,
            ..AffineRanges::default()
        };
        assert_eq!(Affine::draw(&off, 28, &mut a), Affine::IDENTITY);
    }

    #[test]
    fn the_wrapper_distorts_episodes_reproducibly_and_leaves_the_family_alone() {
        let spec = SyntheticSpec::default();
        let base: Arc<dyn TaskFamily> = Arc::new(Synthetic::new(spec, 3).unwrap());
        let aug = wrap(base.clone(), Augment::Affine(AffineRanges::default()));
        assert!(
            aug.describe().contains("rotation ±10°"),
            "{}",
            aug.describe()
        );
        let sample = |f: &dyn TaskFamily| {
            let mut rng = Rng::seed_from_u64(11);
            let t = f.sample_task(Split::Train, &mut rng);
            (f.sample_episode(&t, &mut rng), rng.gen::<u64>())
        };
        let (plain, after_plain) = sample(base.as_ref());
        let (one, after_one) = sample(aug.as_ref());
        let (two, after_two) = sample(aug.as_ref());
        assert_eq!(one.support.x, two.support.x);
        assert_eq!(one.query.x, two.query.x);
        assert_eq!(after_one, after_two);
        assert_eq!(one.support.y, plain.support.y, "labels are untouched");
        assert_ne!(one.support.x, plain.support.x, "images are distorted");
        assert_ne!(
            after_one, after_plain,
            "the distortions come from the stream"
        );
        assert!(matches!(wrap(base.clone(), Augment::Off).describe(), d if d == base.describe()));
        // Held-out episodes (scoring a multi-task arm's tasks) and class names are the family's.
        let held = |f: &dyn TaskFamily| {
            let mut rng = Rng::seed_from_u64(12);
            let t = f.sample_task(Split::Train, &mut rng);
            f.held_out_episode(&t, &mut rng).support.x
        };
        assert_eq!(held(aug.as_ref()), held(base.as_ref()));
        for class in 0..5 {
            assert_eq!(aug.class_label(class), base.class_label(class));
        }
    }
}
