//! The conv net's body (conv4: `blocks` × [3×3 conv → batch norm or bias → ReLU → 2×2 max pool])
//! in the GPU engine, every task of a call at once: per block im2col, one per-task
//! strided-batched SGEMM, per-task transductive batch-norm statistics, and the fused
//! norm + ReLU + pool that records or replays kink codes in the CPU path's encoding; then the
//! backward pass through the same blocks. [`super::GpuTasks`] runs the linear head and the loss
//! on the features this gives, as it does for the MLP.
//!
//! Parameters are read where the CPU path's layout (`model::conv::layout`) puts them, found by
//! name, so a flat θ means the same on both paths; the features come out per image as
//! `[channels, h, w]` flattened, the order `model::conv` gives the head.

use super::grads::Grads;
use super::ops::{self, Affine, ConvGeom, Kinks, PoolGrads};
use super::replay::Replay;
use super::{Backend, GpuError, Kernels};
use crate::experiment::ConvSpec;
use crate::model::{Layout, ModelError};

/// One block's shapes and where its parameters sit in θ.
#[derive(Debug, Clone)]
struct BlockSpec {
    cin: usize,
    cout: usize,
    /// Height and width of the block's input (the conv keeps them; the pool halves them).
    h: usize,
    w: usize,
    weight: usize,
    bias: usize,
    /// Offsets of batch norm's γ and β.
    norm: Option<(usize, usize)>,
}

/// The conv net's body for the GPU engine. See the module documentation.
#[derive(Debug, Clone)]
pub(super) struct ConvBody {
    blocks: Vec<BlockSpec>,
    /// Channels and `h·w` of an input image.
    input: (usize, usize),
    /// Channels and `h·w` of the last block's output.
    out: (usize, usize),
}

/// A block's per-task affine parameters, stacked on the device.
enum Norm<B: Backend> {
    Bias(B::F32),
    BatchNorm { gamma: B::F32, beta: B::F32 },
}

impl<B: Backend> Norm<B> {
    fn affine(&self) -> Affine<'_, B> {
        match self {
            Norm::Bias(bias) => Affine::Bias(bias),
            Norm::BatchNorm { gamma, beta } => Affine::BatchNorm { gamma, beta },
        }
    }
}

/// What one block's forward pass leaves for its backward pass. Not the column matrix, a
/// block's largest buffer (nine times its input): the backward pass rebuilds it from `input`
/// with one im2col, which costs far less than keeping it costs memory (`gpu::memory`).
struct BlockPass<B: Backend> {
    g: ConvGeom,
    input: B::F32,
    w: B::F32,
    y: B::F32,
    norm: Norm<B>,
    mean: B::F32,
    invstd: B::F32,
}

/// The body's forward pass over every task of a call.
pub(super) struct BodyPass<B: Backend> {
    /// Empty unless the pass was asked to keep what its backward pass needs.
    blocks: Vec<BlockPass<B>>,
    /// Each block's kink codes, per task `[cout, n, h/2, w/2]` (the CPU path's order).
    pub codes: Vec<B::U8>,
    tasks: usize,
    n: usize,
}

/// The offset of the layout's tensor `name`.
fn offset(layout: &Layout, name: &str) -> Result<usize, ModelError> {
    layout
        .tensors
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.offset)
        .ok_or(ModelError::LayoutMismatch)
}

impl ConvBody {
    /// The body of `spec` on images `[c, h, w]`, its parameters where `layout` has them.
    pub fn new(spec: &ConvSpec, input: &[usize], layout: &Layout) -> Result<ConvBody, ModelError> {
        if let Some(m) = spec.misfit(input) {
            return Err(ModelError::Misfit(m));
        }
        let (c, mut h, mut w) = match input[..] {
            [c, h, w] => (c, h, w),
            // `misfit` refuses every other shape.
            _ => unreachable!("image shape {input:?}"),
        };
        let mut cin = c;
        let mut blocks = vec![];
        for i in 0..spec.blocks {
            let norm = if spec.batch_norm {
                Some((
                    offset(layout, &format!("bn{i}.gamma"))?,
                    offset(layout, &format!("bn{i}.beta"))?,
                ))
            } else {
                None
            };
            blocks.push(BlockSpec {
                cin,
                cout: spec.channels,
                h,
                w,
                weight: offset(layout, &format!("conv{i}.weight"))?,
                bias: offset(layout, &format!("conv{i}.bias"))?,
                norm,
            });
            (cin, h, w) = (spec.channels, h / 2, w / 2);
        }
        let body = ConvBody {
            blocks,
            input: (c, input[1] * input[2]),
            out: (cin, h * w),
        };
        if body.feature_dim() != layout.feature_dim() {
            return Err(ModelError::LayoutMismatch);
        }
        Ok(body)
    }

    /// Features per image: what the head reads.
    pub fn feature_dim(&self) -> usize {
        self.out.0 * self.out.1
    }

    /// Blocks (each records one list of kink codes).
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    fn geom(&self, i: usize, tasks: usize, n: usize) -> ConvGeom {
        let s = &self.blocks[i];
        ConvGeom {
            tasks,
            cin: s.cin,
            cout: s.cout,
            n,
            h: s.h,
            w: s.w,
        }
    }

    /// The blocks with every task's `params` on its `n` images (`x`: per task `[n, c, h, w]`,
    /// as batches hold them). `replay`: each block's codes of every task, stacked, to replay;
    /// where it has none, the block chooses (and records) them. With `keep`, what the backward
    /// pass needs is kept.
    /// Returns the pass and the features, per task `[n, features]`.
    pub fn forward<B: Kernels>(
        &self,
        b: &B,
        params: &[&B::F32],
        n: usize,
        x: &[f32],
        mut replay: Replay<'_, B>,
        keep: bool,
    ) -> Result<(BodyPass<B>, B::F32), GpuError> {
        let tasks = params.len();
        let (c, hw) = self.input;
        let x = b.upload_f32(x)?;
        let mut act = b.zeros_f32(B::len_f32(&x))?;
        ops::swap01(b, tasks, n, c, hw, &x, &mut act)?;
        drop(x);
        let mut pass = BodyPass {
            blocks: vec![],
            codes: vec![],
            tasks,
            n,
        };
        for (i, s) in self.blocks.iter().enumerate() {
            let g = self.geom(i, tasks, n);
            let w = ops::gather(b, params, s.weight, g.cout * g.kdim())?;
            let norm = match s.norm {
                Some((gamma, beta)) => Norm::BatchNorm {
                    gamma: ops::gather(b, params, gamma, g.cout)?,
                    beta: ops::gather(b, params, beta, g.cout)?,
                },
                None => Norm::Bias(ops::gather(b, params, s.bias, g.cout)?),
            };
            let (mut col, mut y) = (b.zeros_f32(g.col_len())?, b.zeros_f32(g.conv_len())?);
            ops::conv_forward(b, &g, &act, &w, &mut col, &mut y)?;
            drop(col);
            let mut mean = b.zeros_f32(g.channel_len())?;
            let mut invstd = b.zeros_f32(g.channel_len())?;
            let mut out = b.zeros_f32(g.pooled_len())?;
            let (mut code, kinks) = match replay.take(b, i)? {
                Some(codes) => (codes, Kinks::Replay),
                None => (b.zeros_u8(g.pooled_len())?, Kinks::Record),
            };
            let affine = norm.affine();
            ops::norm_relu_pool(
                b,
                &g,
                &y,
                &affine,
                &mut mean,
                &mut invstd,
                &mut out,
                &mut code,
                kinks,
            )?;
            let input = std::mem::replace(&mut act, out);
            if keep {
                pass.blocks.push(BlockPass {
                    g,
                    input,
                    w,
                    y,
                    norm,
                    mean,
                    invstd,
                });
            }
            pass.codes.push(code);
        }
        let (fc, fs) = self.out;
        let mut features = b.zeros_f32(B::len_f32(&act))?;
        ops::swap01(b, tasks, fc, n, fs, &act, &mut features)?;
        Ok((pass, features))
    }

    /// Backward through the blocks of `pass` (kept by [`ConvBody::forward`]) from
    /// `dfeat = ∂L/∂features` (per task `[n, features]`): each task's gradient of the blocks'
    /// parameters into task `t`'s gradient in `grads` at their layout offsets.
    pub fn backward<B: Kernels>(
        &self,
        b: &B,
        pass: &BodyPass<B>,
        dfeat: &B::F32,
        grads: &mut Grads<B>,
    ) -> Result<(), GpuError> {
        if self.blocks.is_empty() {
            return Ok(());
        }
        assert_eq!(pass.blocks.len(), self.blocks.len(), "a kept forward pass");
        let (tasks, n) = (pass.tasks, pass.n);
        let (fc, fs) = self.out;
        let mut first = b.zeros_f32(B::len_f32(dfeat))?;
        ops::swap01(b, tasks, n, fc, fs, dfeat, &mut first)?;
        // ∂L/∂(the block's output), freed once the block's pool backward has read it.
        let mut gout = Some(first);
        for (i, (s, p)) in self.blocks.iter().zip(&pass.blocks).enumerate().rev() {
            let g = p.g;
            let cl = g.channel_len();
            let (mut dgamma, mut dbeta) = (b.zeros_f32(cl)?, b.zeros_f32(cl)?);
            let (mut dbias, mut coef) = (b.zeros_f32(cl)?, b.zeros_f32(3 * cl)?);
            let mut dy = b.zeros_f32(g.conv_len())?;
            let affine = p.norm.affine();
            let code = &pass.codes[i];
            let gin = gout.take().expect("each block's output gradient");
            let pool_grads = PoolGrads {
                dgamma: &mut dgamma,
                dbeta: &mut dbeta,
                dbias: &mut dbias,
                coef: &mut coef,
                dy: &mut dy,
            };
            ops::norm_relu_pool_backward(
                b, &g, &p.y, &affine, &p.mean, &p.invstd, code, &gin, pool_grads,
            )?;
            drop(gin);
            let mut dw = b.zeros_f32(g.weight_len())?;
            let mut col = b.zeros_f32(g.col_len())?;
            // The first block's input is data: no gradient for it.
            let mut dx = if i > 0 {
                Some(b.zeros_f32(g.in_len())?)
            } else {
                None
            };
            ops::conv_backward_from_input(
                b,
                &g,
                &p.input,
                &p.w,
                &dy,
                &mut col,
                &mut dw,
                dx.as_mut(),
            )?;
            drop((col, dy));
            grads.put(b, &dw, s.weight)?;
            grads.put(b, &dbias, s.bias)?;
            if let Some((gamma, beta)) = s.norm {
                grads.put(b, &dgamma, gamma)?;
                grads.put(b, &dbeta, beta)?;
            }
            gout = dx;
        }
        Ok(())
    }
}
