//! Conv4 (Finn et al., 2017): `blocks` × [3×3 conv → batch norm → ReLU → 2×2 max pool], then a
//! linear head, on the CPU.
//!
//! Batch norm always uses the statistics of the batch it is given (support or query), never
//! running averages: the transductive setting of the MAML paper and its reference code.
//! Each block is one fused op (`ops::block`) on dfdx's tape; the head and the loss are dfdx's own.

use dfdx::prelude::*;

use super::ops::block::{BlockParams, ConvBlock, Param};
use super::ops::conv2d::ConvShape;
use super::{Evaluator, Layout, LossOut, ModelError};
use crate::experiment::ConvSpec;
use crate::model::mlp::count_correct;
use crate::tasks::{Batch, FamilyShape, Targets};

/// `[channels, height, width]` of the family's images.
fn image_dims(shape: &FamilyShape) -> Result<(usize, usize, usize), ModelError> {
    match shape.input[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        _ => Err(ModelError::Shape(format!(
            "a conv net needs image inputs [channels, height, width], but this family's inputs have shape {:?}\n  fix: use an image family (e.g. Omniglot) or model: Mlp((hidden: [40, 40]))",
            shape.input
        ))),
    }
}

pub fn layout(spec: &ConvSpec, shape: &FamilyShape) -> Result<Layout, ModelError> {
    let (mut cin, mut h, mut w) = image_dims(shape)?;
    if spec.channels == 0 {
        return Err(ModelError::Shape(
            "model.channels is 0\n  fix: use channels: 64 (or 32 for speed)".into(),
        ));
    }
    let mut l = Layout {
        tensors: vec![],
        total: 0,
        head_start: 0,
    };
    for i in 0..spec.blocks {
        if h < 2 || w < 2 {
            return Err(ModelError::Shape(format!(
                "model.blocks = {} is too many for {}×{} images: after {i} blocks the feature map is {h}×{w}, too small for another 2×2 max pool\n  fix: set model.blocks to {} or fewer",
                spec.blocks,
                shape.input[1],
                shape.input[2],
                max_blocks(shape.input[1], shape.input[2]),
            )));
        }
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

/// How many blocks an `h×w` image can take before the feature map is smaller than 1×1.
fn max_blocks(mut h: usize, mut w: usize) -> usize {
    let mut b = 0;
    while h >= 2 && w >= 2 {
        (h, w, b) = (h / 2, w / 2, b + 1);
    }
    b
}

pub struct ConvEval {
    dev: Cpu,
    layout: Layout,
    blocks: Vec<ConvBlock>,
    batch_norm: bool,
    /// `(channels, height, width)` of an input image.
    input: (usize, usize, usize),
    /// `(channels, height·width)` of the last block's output.
    features: (usize, usize),
    outputs: usize,
}

impl ConvEval {
    pub fn new(spec: &ConvSpec, shape: &FamilyShape, layout: &Layout) -> Result<Self, ModelError> {
        let expected = self::layout(spec, shape)?;
        if &expected != layout {
            return Err(ModelError::Shape(
                "the parameter layout does not match the conv net's spec and input shape\n  fix: build the evaluator from the same Network that made the parameters".into(),
            ));
        }
        let (c, h, w) = image_dims(shape)?;
        let mut blocks = Vec::with_capacity(spec.blocks);
        let (mut cin, mut bh, mut bw) = (c, h, w);
        for i in 0..spec.blocks {
            let block = ConvBlock::new(ConvShape::same3(cin, spec.channels, bh, bw), spec.batch_norm, i > 0);
            (bh, bw) = block.out_hw();
            cin = spec.channels;
            blocks.push(block);
        }
        Ok(ConvEval {
            dev: Cpu::default(),
            layout: expected,
            blocks,
            batch_norm: spec.batch_norm,
            input: (c, h, w),
            features: (cin, bh * bw),
            outputs: shape.outputs,
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

impl Evaluator for ConvEval {
    fn evaluate(&mut self, params: &[f32], batch: &Batch, grad: Option<&mut [f32]>) -> LossOut {
        assert_eq!(params.len(), self.layout.total, "parameter vector length");
        let n = batch.n;
        let dev = &self.dev;
        let tensors: Vec<Param> = self
            .layout
            .tensors
            .iter()
            .map(|t| dev.tensor_from_vec(params[t.range()].to_vec(), (t.len(),)))
            .collect();
        let (c, h, w) = self.input;
        assert_eq!(batch.x.len(), n * c * h * w, "batch input length");
        let x = dev.tensor_from_vec(channels_major(&batch.x, n, c, h * w), (c, n, h, w));
        let mut act = x.leaky_trace();
        let per_block = if self.batch_norm { 4 } else { 2 };
        for (i, block) in self.blocks.iter().enumerate() {
            let t = &tensors[i * per_block..];
            let p = BlockParams {
                weight: &t[0],
                bias: &t[1],
                norm: self.batch_norm.then(|| (&t[2], &t[3])),
            };
            act = block.forward(act, &p);
        }
        // Flatten each image as [channels, h, w], the order PyTorch's `flatten` gives.
        let (fc, fhw) = self.features;
        let feats = act
            .reshape_like(&(fc, n, fhw))
            .permute::<(usize, usize, usize), Axes3<1, 0, 2>>()
            .reshape_like(&(n, fc * fhw));
        let head = tensors.len() - 2;
        let hw = tensors[head].clone().reshape_like(&(fc * fhw, self.outputs));
        let hb = tensors[head + 1]
            .clone()
            .broadcast_like::<(usize, usize), Axis<0>>(&(n, self.outputs));
        let out = feats.matmul(hw) + hb;
        let (loss, correct) = match &batch.y {
            Targets::Values(y) => {
                let y = dev.tensor_from_vec(y.clone(), (n, self.outputs));
                (mse_loss(out, y), None)
            }
            Targets::Classes(labels) => {
                let logits = out.as_vec();
                let correct = count_correct(&logits, labels, self.outputs);
                let mut onehot = vec![0.0f32; n * self.outputs];
                for (r, &k) in labels.iter().enumerate() {
                    onehot[r * self.outputs + k] = 1.0;
                }
                let y = dev.tensor_from_vec(onehot, (n, self.outputs));
                (cross_entropy_with_logits_loss(out, y), Some(correct))
            }
        };
        let value = loss.as_vec()[0];
        if let Some(out) = grad {
            let g = loss.backward();
            for (t, spec) in tensors.iter().zip(&self.layout.tensors) {
                out[spec.range()].copy_from_slice(&g.get(t).as_vec());
            }
        }
        LossOut {
            loss: value,
            correct,
        }
    }
}
