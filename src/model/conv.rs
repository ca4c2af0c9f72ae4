//! Conv4 (Finn et al., 2017): `blocks` × [3×3 conv → batch norm → ReLU → 2×2 max pool], then a
//! linear head, on any device that has the conv block's kernel (see `ops::device`).
//!
//! Batch norm always uses the statistics of the batch it is given (support or query), never
//! running averages: the transductive setting of the MAML paper and its reference code.
//! Each block is one fused op (`ops::block`) on dfdx's tape; the head and the loss are dfdx's own.

use dfdx::prelude::*;

use super::ops::block::{BlockParams, ConvBlock, Param};
use super::ops::conv2d::ConvShape;
use super::ops::device::{self, ModelDevice};
use super::top::{finish, Top};
use super::{Evaluator, FeatureLoss, Kinks, Layout, LossOut, ModelError};
use crate::device::CustomOp;
use crate::experiment::ConvSpec;
use crate::tasks::{Batch, FamilyShape};

/// `[channels, height, width]` of the family's images.
fn image_dims(spec: &ConvSpec, shape: &FamilyShape) -> Result<(usize, usize, usize), ModelError> {
    if let Some(m) = spec.misfit(&shape.input) {
        return Err(ModelError::Misfit(m));
    }
    match shape.input[..] {
        [c, h, w] => Ok((c, h, w)),
        // `misfit` refuses every other shape.
        _ => unreachable!("image shape {:?}", shape.input),
    }
}

pub fn layout(spec: &ConvSpec, shape: &FamilyShape) -> Result<Layout, ModelError> {
    let (mut cin, mut h, mut w) = image_dims(spec, shape)?;
    let mut l = Layout {
        tensors: vec![],
        total: 0,
        head_start: 0,
    };
    for i in 0..spec.blocks {
        let c = spec.channels;
        l.push(format!("conv{i}.weight"), vec![c, cin, 3, 3]);
        l.push(format!("conv{i}.bias"), vec![c]);
        if spec.batch_norm {
            l.push(format!("bn{i}.gamma"), vec![c]);
            l.push(format!("bn{i}.beta"), vec![c]);
        }
        (cin, h, w) = (c, h / 2, w / 2);
    }
    l.mark_head();
    l.push("head.weight", vec![cin * h * w, shape.outputs]);
    l.push("head.bias", vec![shape.outputs]);
    Ok(l)
}

pub struct ConvEval<D: ModelDevice> {
    dev: D,
    layout: Layout,
    blocks: Vec<ConvBlock>,
    /// The device's state for each block (its kernel's buffers).
    states: Vec<D::BlockState>,
    batch_norm: bool,
    /// `(channels, height, width)` of an input image.
    input: (usize, usize, usize),
    /// `(channels, height·width)` of the last block's output.
    features: (usize, usize),
}

impl<D: ModelDevice> ConvEval<D> {
    /// Refuses a device without the conv block's kernel, before any work.
    pub fn new(
        dev: D,
        spec: &ConvSpec,
        shape: &FamilyShape,
        layout: &Layout,
    ) -> Result<Self, ModelError> {
        device::require::<D>(&[CustomOp::ConvBlock])?;
        let expected = self::layout(spec, shape)?;
        if &expected != layout {
            return Err(ModelError::LayoutMismatch);
        }
        let (c, h, w) = image_dims(spec, shape)?;
        let mut blocks = Vec::with_capacity(spec.blocks);
        let (mut cin, mut bh, mut bw) = (c, h, w);
        for i in 0..spec.blocks {
            let block = ConvBlock::new(
                ConvShape::same3(cin, spec.channels, bh, bw),
                spec.batch_norm,
                i > 0,
            );
            (bh, bw) = block.out_hw();
            cin = spec.channels;
            blocks.push(block);
        }
        Ok(ConvEval {
            dev,
            layout: expected,
            states: blocks.iter().map(|_| D::BlockState::default()).collect(),
            blocks,
            batch_norm: spec.batch_norm,
            input: (c, h, w),
            features: (cin, bh * bw),
        })
    }
}

/// `n` images stored image-major (`[n, c, h·w]`, as batches hold them) as `[c, n, h·w]`.
fn channels_major(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<f32> {
    if c == 1 {
        return x.to_vec();
    }
    let mut out = vec![0.0; x.len()];
    for img in 0..n {
        for ch in 0..c {
            out[(ch * n + img) * hw..][..hw].copy_from_slice(&x[(img * c + ch) * hw..][..hw]);
        }
    }
    out
}

/// A traced `[n, features]` activation.
type Traced<D> = Tensor<(usize, usize), f32, D, OwnedTape<f32, D>>;

impl<D: ModelDevice> ConvEval<D> {
    /// One 1-D tensor per layout tensor that `values` covers from the start: all of them for
    /// a whole parameter vector, the body's for a body.
    fn param_tensors(&self, values: &[f32]) -> Vec<Param<D>> {
        self.layout
            .tensors
            .iter()
            .take_while(|t| t.offset < values.len())
            .map(|t| {
                self.dev
                    .tensor_from_vec(values[t.range()].to_vec(), (t.len(),))
            })
            .collect()
    }

    /// The body's forward pass, written once for the loss and for `features`: the blocks, with
    /// parameters the first of `tensors` (in the layout's order), on `n` images `x`, their
    /// ReLU and max-pool branches as `kinks` says; each image's features flattened as
    /// `[channels, h, w]`, the order PyTorch's `flatten` gives.
    fn body(&self, tensors: &[Param<D>], x: &[f32], n: usize, kinks: &mut Kinks) -> Traced<D> {
        let (c, h, w) = self.input;
        assert_eq!(x.len(), n * c * h * w, "batch input length");
        let x = self
            .dev
            .tensor_from_vec(channels_major(x, n, c, h * w), (c, n, h, w));
        let mut act = x.leaky_trace();
        let per_block = if self.batch_norm { 4 } else { 2 };
        for (i, (&block, state)) in self.blocks.iter().zip(&self.states).enumerate() {
            let t = &tensors[i * per_block..];
            let p = BlockParams {
                weight: &t[0],
                bias: &t[1],
                norm: self.batch_norm.then(|| (&t[2], &t[3])),
            };
            let mut recorded = vec![];
            let block_kinks = match kinks {
                Kinks::Free => Kinks::Free,
                Kinks::Record(_) => Kinks::Record(&mut recorded),
                Kinks::Replay(pattern) => Kinks::Replay(&pattern.codes[i]),
            };
            act = D::conv_block(block, state, act, &p, block_kinks)
                .expect("the device's conv block kernel was checked when the evaluator was built");
            if let Kinks::Record(pattern) = kinks {
                pattern.codes.push(recorded);
            }
        }
        let (fc, fhw) = self.features;
        act.reshape_like(&(fc, n, fhw))
            .permute::<(usize, usize, usize), Axes3<1, 0, 2>>()
            .reshape_like(&(n, fc * fhw))
    }
}

impl<D: ModelDevice> Evaluator for ConvEval<D> {
    fn evaluate_with(
        &mut self,
        params: &[f32],
        batch: &Batch,
        grad: Option<&mut [f32]>,
        mut kinks: Kinks,
    ) -> LossOut {
        assert_eq!(params.len(), self.layout.total, "parameter vector length");
        let tensors = self.param_tensors(params);
        let feats = self.body(&tensors, &batch.x, batch.n, &mut kinks);
        finish(&self.dev, feats, &tensors, Top::Head(&batch.y), grad)
    }

    fn features(
        &mut self,
        body: &[f32],
        n: usize,
        x: &[f32],
        grad: Option<&mut [f32]>,
        head: &mut FeatureLoss,
    ) -> LossOut {
        assert_eq!(
            body.len(),
            self.layout.head_start,
            "body parameter vector length"
        );
        let tensors = self.param_tensors(body);
        let feats = self.body(&tensors, x, n, &mut Kinks::Free);
        finish(&self.dev, feats, &tensors, Top::Features(head), grad)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::model::init::init_params;
    use crate::tasks::{Rng, Targets, TaskKind};

    fn image_shape(input: Vec<usize>, outputs: usize) -> FamilyShape {
        FamilyShape {
            input,
            outputs,
            kind: TaskKind::Classification,
        }
    }

    fn spec(blocks: usize, channels: usize, batch_norm: bool) -> ConvSpec {
        ConvSpec {
            blocks,
            channels,
            batch_norm,
        }
    }

    #[test]
    fn conv4_layout_names_shapes_and_head_last() {
        let l = layout(&spec(4, 64, true), &image_shape(vec![1, 28, 28], 5)).unwrap();
        let names: Vec<&str> = l.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["conv0.weight", "conv0.bias", "bn0.gamma", "bn0.beta"]
        );
        assert_eq!(
            names[12..],
            [
                "conv3.weight",
                "conv3.bias",
                "bn3.gamma",
                "bn3.beta",
                "head.weight",
                "head.bias"
            ]
        );
        assert_eq!(l.tensors[0].shape, [64, 1, 3, 3]);
        assert_eq!(l.tensors[4].shape, [64, 64, 3, 3]);
        // 28 → 14 → 7 → 3 → 1: 64 features.
        assert_eq!(l.tensors[16].shape, [64, 5]);
        assert_eq!(l.head_start, l.tensors[16].offset);
        assert_eq!(l.head_len(), 64 * 5 + 5);
        let per_block = |cin: usize| 64 * cin * 9 + 64 + 2 * 64;
        assert_eq!(l.total, per_block(1) + 3 * per_block(64) + 64 * 5 + 5);

        let plain = layout(&spec(2, 8, false), &image_shape(vec![3, 10, 12], 4)).unwrap();
        let names: Vec<&str> = plain.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv0.weight",
                "conv0.bias",
                "conv1.weight",
                "conv1.bias",
                "head.weight",
                "head.bias"
            ]
        );
        assert_eq!(plain.tensors[0].shape, [8, 3, 3, 3]);
        assert_eq!(plain.tensors[4].shape, [8 * 2 * 3, 4]);
    }

    #[test]
    fn conv_weights_get_fan_in_of_in_channels_times_kernel() {
        let l = layout(&spec(2, 16, true), &image_shape(vec![1, 28, 28], 5)).unwrap();
        let p = init_params(&l, &mut Rng::seed_from_u64(1));
        let w1 = &p[l.tensors[4].range()];
        let bound = 1.0 / ((16 * 9) as f32).sqrt();
        assert!(w1.iter().all(|v| v.abs() <= bound));
        assert!(
            w1.iter().any(|v| v.abs() > 0.8 * bound),
            "the bound is 1/√(16·9), not smaller"
        );
    }

    #[test]
    fn too_many_blocks_is_a_shape_error_naming_the_setting() {
        let err = layout(&spec(5, 64, true), &image_shape(vec![1, 28, 28], 5)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, ModelError::Misfit(m) if m.field == "model.blocks"));
        assert!(msg.contains("model.blocks"), "{msg}");
        assert!(msg.contains("4 or fewer"), "{msg}");
        assert!(layout(&spec(4, 64, true), &image_shape(vec![1, 28, 28], 5)).is_ok());
        let flat = layout(&spec(4, 64, true), &image_shape(vec![1], 1)).unwrap_err();
        assert!(flat.to_string().contains("image inputs"), "{flat}");
    }

    fn batch(n: usize, input_len: usize, y: Targets, seed: u64) -> Batch {
        let x = crate::model::ops::testing::lcg_values(n * input_len, seed);
        Batch { n, x, y }
    }

    /// The gradient `evaluate` writes against central differences of `evaluate`'s own loss.
    fn check_evaluate_gradient(spec: &ConvSpec, shape: &FamilyShape, b: &Batch) {
        let l = layout(spec, shape).unwrap();
        let mut params = init_params(&l, &mut Rng::seed_from_u64(7));
        // Batch-norm scales and shifts away from 1 and 0, so their gradients are exercised.
        for t in &l.tensors {
            if t.name.starts_with("bn") {
                let noise = crate::model::ops::testing::lcg_values(t.len(), t.offset as u64);
                for (p, n) in params[t.range()].iter_mut().zip(noise) {
                    *p += 0.3 * n;
                }
            }
        }
        let mut eval = ConvEval::new(Cpu::default(), spec, shape, &l).unwrap();
        let mut grad = vec![0.0; l.total];
        let base = eval.evaluate(&params, b, Some(&mut grad));
        let again = eval.evaluate(&params, b, None);
        assert_eq!(base, again, "evaluating with and without gradients agrees");
        // ReLU and max pool make the loss piecewise smooth, and in a tiny net with hundreds of
        // pooling windows a kink often lies within 1e-3 of the point, where a central difference
        // is meaningless. A kink rarely lies within both steps, so each parameter must agree at
        // one of two step sizes; the smaller step is still large against f32 rounding.
        let mut needed_small_step = 0;
        for t in &l.tensors {
            for i in t.range() {
                let mut fd = |h: f32| {
                    let mut p = params.clone();
                    p[i] = params[i] + h;
                    let up = eval.evaluate(&p, b, None).loss as f64;
                    p[i] = params[i] - h;
                    let down = eval.evaluate(&p, b, None).loss as f64;
                    (up - down) / (2.0 * h as f64)
                };
                let what = format!("{} [{}]", t.name, i - t.offset);
                let coarse = fd(1e-3);
                if !close(grad[i], coarse) {
                    needed_small_step += 1;
                    crate::model::ops::testing::assert_close(grad[i], fd(2.5e-4), &what);
                }
            }
        }
        assert!(
            needed_small_step * 10 <= l.total,
            "{needed_small_step} of {} parameters needed the small step",
            l.total
        );
    }

    fn close(analytic: f32, numeric: f64) -> bool {
        (analytic as f64 - numeric).abs() <= 2e-3 + 1e-2 * numeric.abs()
    }

    #[test]
    fn evaluate_gradient_matches_finite_differences() {
        let shape = image_shape(vec![1, 8, 8], 3);
        let labels = Targets::Classes(vec![0, 1, 2, 1, 0, 2]);
        check_evaluate_gradient(&spec(2, 3, true), &shape, &batch(6, 64, labels.clone(), 21));
        check_evaluate_gradient(&spec(2, 3, false), &shape, &batch(6, 64, labels, 22));
    }

    #[test]
    fn evaluate_gradient_matches_finite_differences_multichannel_regression() {
        let shape = FamilyShape {
            input: vec![2, 6, 5],
            outputs: 2,
            kind: TaskKind::Regression,
        };
        let y = Targets::Values(crate::model::ops::testing::lcg_values(4 * 2, 23));
        check_evaluate_gradient(&spec(2, 3, true), &shape, &batch(4, 60, y, 24));
    }

    /// The AVX-512 kernels and the portable ones (what a machine without AVX-512 runs) agree
    /// on a full conv4 loss and gradient up to rounding.
    #[test]
    fn portable_and_avx512_paths_agree() {
        let shape = image_shape(vec![1, 28, 28], 5);
        let s = spec(4, 16, true);
        let l = layout(&s, &shape).unwrap();
        let params = init_params(&l, &mut Rng::seed_from_u64(5));
        let b = batch(
            10,
            784,
            Targets::Classes((0..10).map(|i| i % 5).collect()),
            26,
        );
        let run = || {
            let mut eval = ConvEval::new(Cpu::default(), &s, &shape, &l).unwrap();
            let mut grad = vec![0.0; l.total];
            let out = eval.evaluate(&params, &b, Some(&mut grad));
            (out, grad)
        };
        let (fast, g_fast) = run();
        let (slow, g_slow) = crate::model::ops::simd::portable_only(run);
        assert_eq!(fast.correct, slow.correct);
        assert!(
            (fast.loss - slow.loss).abs() < 1e-5,
            "{} vs {}",
            fast.loss,
            slow.loss
        );
        let scale = g_slow.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g_fast.iter().zip(&g_slow).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "grad[{i}]: {a} vs {b}");
        }
    }

    #[test]
    fn counts_correct_predictions() {
        let shape = image_shape(vec![1, 8, 8], 3);
        let s = spec(2, 3, true);
        let l = layout(&s, &shape).unwrap();
        let mut params = init_params(&l, &mut Rng::seed_from_u64(3));
        // A head that ignores the features and always says class 1.
        params[l.head_start..].fill(0.0);
        params[l.total - 2] = 1.0;
        let mut eval = ConvEval::new(Cpu::default(), &s, &shape, &l).unwrap();
        let b = batch(6, 64, Targets::Classes(vec![0, 1, 2, 1, 0, 2]), 25);
        let out = eval.evaluate(&params, &b, None);
        assert_eq!(out.correct, Some(2));
        let e = std::f32::consts::E;
        let want = -(e / (e + 2.0)).ln() * 2.0 / 6.0 - (1.0 / (e + 2.0)).ln() * 4.0 / 6.0;
        assert!((out.loss - want).abs() < 1e-5, "{} vs {want}", out.loss);
    }

    /// Nanoseconds this thread has run on a CPU (Linux), which other processes on a shared
    /// machine disturb far less than wall-clock time.
    fn thread_cpu_ns() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        s.split_whitespace().next()?.parse().ok()
    }

    /// `cargo test --release --lib conv_timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; run in release"]
    fn conv_timing() {
        let shape = image_shape(vec![1, 28, 28], 5);
        for (batch_norm, portable) in [(true, false), (false, false), (true, true)] {
            let s = spec(4, 64, batch_norm);
            let l = layout(&s, &shape).unwrap();
            let params = init_params(&l, &mut Rng::seed_from_u64(1));
            let mut eval = ConvEval::new(Cpu::default(), &s, &shape, &l).unwrap();
            let mut grad = vec![0.0; l.total];
            for n in [75, 5] {
                let labels = Targets::Classes((0..n).map(|i| i % 5).collect());
                let b = batch(n, 784, labels, 2);
                let mut time = |with_grad: bool| {
                    let reps = if n > 10 { 12 } else { 100 };
                    eval.evaluate(&params, &b, with_grad.then_some(&mut grad[..]));
                    let mut wall = Vec::new();
                    let cpu0 = thread_cpu_ns();
                    for _ in 0..reps {
                        let t = std::time::Instant::now();
                        eval.evaluate(&params, &b, with_grad.then_some(&mut grad[..]));
                        wall.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    let cpu = thread_cpu_ns()
                        .zip(cpu0)
                        .map(|(b, a)| (b - a) as f64 / 1e6 / reps as f64);
                    wall.sort_by(f64::total_cmp);
                    format!(
                        "wall median {:.2} ms, min {:.2}; thread CPU {:.2} ms",
                        wall[reps / 2],
                        wall[0],
                        cpu.unwrap_or(f64::NAN)
                    )
                };
                let (fwd, both) = if portable {
                    crate::model::ops::simd::portable_only(|| (time(false), time(true)))
                } else {
                    (time(false), time(true))
                };
                let path = if portable { " (portable kernels)" } else { "" };
                println!(
                    "conv4-64 bn={batch_norm} n={n}{path}: forward {fwd} | forward+backward {both}"
                );
            }
        }
    }
}
