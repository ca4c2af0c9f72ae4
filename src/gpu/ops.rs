//! The engine's per-task ops on device-resident buffers, written once for every backend: each
//! checks its buffers' sizes, then launches kernels and per-task SGEMMs. Everything stays on the
//! device; only what a caller downloads comes back.
//!
//! Layouts are the kernels' (`kernels/common.cuh`): `tasks` equal per-task tensors, task-major;
//! conv activations CNHW per task, matrices row-major per task.

use super::gemm::{Gemm, RowMajor};
use super::{Backend, GpuError, Kernels, Launch};

/// `kernels/common.cuh`'s code for a window whose ReLU clipped its winner (as the CPU path's
/// `maxpool::INACTIVE`).
pub const INACTIVE: u8 = 255;

fn need(op: &'static str, what: &str, have: usize, want: usize) -> Result<(), GpuError> {
    if have < want {
        return Err(GpuError::Size {
            op,
            detail: format!("{what} holds {have} values; needs {want}"),
        });
    }
    Ok(())
}

fn int(op: &'static str, v: usize) -> Result<i32, GpuError> {
    i32::try_from(v).map_err(|_| GpuError::Size {
        op,
        detail: format!("{v} is past a kernel's 32-bit sizes"),
    })
}

/// `c_t ← a_t·b_t` for each task, row-major operands as `am`, `bm` describe (cuBLAS's call
/// takes them swapped: see [`Gemm::row_major`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul<B: Backend>(
    b: &B,
    tasks: usize,
    a: &B::F32,
    am: RowMajor,
    bb: &B::F32,
    bm: RowMajor,
    c: &mut B::F32,
) -> Result<(), GpuError> {
    b.sgemm(&Gemm::row_major(tasks, am, bm, 1.0, 0.0), bb, a, c)
}

/// One conv block's geometry for all tasks: a 3×3 "same" convolution (stride 1, one zero of
/// padding) of `cin → cout` channels over `n` images of `h×w` per task, then a 2×2 pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub tasks: usize,
    pub cin: usize,
    pub cout: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

impl ConvGeom {
    pub const K: usize = 3;
    pub const PAD: usize = 1;
    pub fn kdim(&self) -> usize {
        self.cin * Self::K * Self::K
    }
    /// Conv output positions per task and channel: `n·h·w`.
    pub fn cols(&self) -> usize {
        self.n * self.h * self.w
    }
    pub fn in_len(&self) -> usize {
        self.tasks * self.cin * self.n * self.h * self.w
    }
    pub fn weight_len(&self) -> usize {
        self.tasks * self.cout * self.kdim()
    }
    pub fn col_len(&self) -> usize {
        self.tasks * self.kdim() * self.cols()
    }
    pub fn conv_len(&self) -> usize {
        self.tasks * self.cout * self.cols()
    }
    pub fn pooled_len(&self) -> usize {
        self.tasks * self.cout * self.n * (self.h / 2) * (self.w / 2)
    }
    /// Per-task, per-channel vectors (bias, γ, β, statistics).
    pub fn channel_len(&self) -> usize {
        self.tasks * self.cout
    }
    fn ints(&self) -> Result<[i32; 6], GpuError> {
        let op = "conv block";
        Ok([
            int(op, self.tasks)?,
            int(op, self.cin)?,
            int(op, self.cout)?,
            int(op, self.n)?,
            int(op, self.h)?,
            int(op, self.w)?,
        ])
    }
}

/// `col ← im2col(x)`, then `y_t ← w_t · col_t` per task (`w` per task `[cout, cin·3·3]`).
pub fn conv_forward<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    x: &B::F32,
    w: &B::F32,
    col: &mut B::F32,
    y: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "conv forward";
    need(op, "input", B::len_f32(x), g.in_len())?;
    need(op, "weights", B::len_f32(w), g.weight_len())?;
    need(op, "column matrix", B::len_f32(col), g.col_len())?;
    need(op, "output", B::len_f32(y), g.conv_len())?;
    let [t, cin, _, n, h, wd] = g.ints()?;
    let (k, pad) = (ConvGeom::K as i32, ConvGeom::PAD as i32);
    let cfg = Launch::elementwise(g.col_len(), b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_im2col(cfg, x, col, t, cin, n, h, wd, k, pad, h, wd)? };
    let (w_m, col_m) = (
        RowMajor::new(g.cout, g.kdim()),
        RowMajor::new(g.kdim(), g.cols()),
    );
    matmul(b, g.tasks, w, w_m, col, col_m, y)
}

/// Given `dy = ∂L/∂y` and the forward pass's column matrix: `dw_t ← dy_t · col_tᵀ`, and with
/// `dx`, `dcol_t ← w_tᵀ · dy_t` and `dx ← col2im(dcol)`.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    col: &B::F32,
    w: &B::F32,
    dy: &B::F32,
    dw: &mut B::F32,
    dx: Option<(&mut B::F32, &mut B::F32)>,
) -> Result<(), GpuError> {
    let op = "conv backward";
    need(op, "column matrix", B::len_f32(col), g.col_len())?;
    need(op, "weights", B::len_f32(w), g.weight_len())?;
    need(op, "∂output", B::len_f32(dy), g.conv_len())?;
    need(op, "∂weights", B::len_f32(dw), g.weight_len())?;
    let dy_m = RowMajor::new(g.cout, g.cols());
    let col_m = RowMajor::new(g.kdim(), g.cols());
    let w_m = RowMajor::new(g.cout, g.kdim());
    matmul(b, g.tasks, dy, dy_m, col, col_m.t(), dw)?;
    if let Some((dcol, dx)) = dx {
        need(op, "∂column matrix", B::len_f32(dcol), g.col_len())?;
        need(op, "∂input", B::len_f32(dx), g.in_len())?;
        matmul(b, g.tasks, w, w_m.t(), dy, dy_m, dcol)?;
        let [t, cin, _, n, h, wd] = g.ints()?;
        let (k, pad) = (ConvGeom::K as i32, ConvGeom::PAD as i32);
        let cfg = Launch::elementwise(g.in_len(), b.max_grid());
        // SAFETY: sizes checked above.
        unsafe { b.ml_col2im(cfg, dcol, dx, t, cin, n, h, wd, k, pad, h, wd)? };
    }
    Ok(())
}

/// [`conv_backward`] from the block's input `x` instead of a kept column matrix, so a forward
/// pass need not keep the largest buffer of a block: `col ← im2col(x)`, `dw_t ← dy_t · col_tᵀ`,
/// and with `dx` the same `col` buffer (its values spent) takes `dcol_t ← w_tᵀ · dy_t`, then
/// `dx ← col2im(dcol)`. The same products in the same order as [`conv_backward`]: the same bits.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_from_input<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    x: &B::F32,
    w: &B::F32,
    dy: &B::F32,
    col: &mut B::F32,
    dw: &mut B::F32,
    dx: Option<&mut B::F32>,
) -> Result<(), GpuError> {
    let op = "conv backward from the input";
    need(op, "input", B::len_f32(x), g.in_len())?;
    need(op, "weights", B::len_f32(w), g.weight_len())?;
    need(op, "column matrix", B::len_f32(col), g.col_len())?;
    need(op, "∂output", B::len_f32(dy), g.conv_len())?;
    need(op, "∂weights", B::len_f32(dw), g.weight_len())?;
    let [t, cin, _, n, h, wd] = g.ints()?;
    let (k, pad) = (ConvGeom::K as i32, ConvGeom::PAD as i32);
    let cfg = Launch::elementwise(g.col_len(), b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_im2col(cfg, x, col, t, cin, n, h, wd, k, pad, h, wd)? };
    let dy_m = RowMajor::new(g.cout, g.cols());
    let col_m = RowMajor::new(g.kdim(), g.cols());
    let w_m = RowMajor::new(g.cout, g.kdim());
    matmul(b, g.tasks, dy, dy_m, col, col_m.t(), dw)?;
    if let Some(dx) = dx {
        need(op, "∂input", B::len_f32(dx), g.in_len())?;
        matmul(b, g.tasks, w, w_m.t(), dy, dy_m, col)?;
        let cfg = Launch::elementwise(g.in_len(), b.max_grid());
        // SAFETY: sizes checked above.
        unsafe { b.ml_col2im(cfg, col, dx, t, cin, n, h, wd, k, pad, h, wd)? };
    }
    Ok(())
}

/// A block's per-task parameters after the conv: bias `[cout]`, or batch norm's `(γ, β)`.
pub enum Affine<'a, B: Backend> {
    Bias(&'a B::F32),
    BatchNorm { gamma: &'a B::F32, beta: &'a B::F32 },
}

/// Batch-norm statistics per task and channel (`mean`, `invstd`, each `tasks·cout`).
pub fn bn_stats<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    y: &B::F32,
    mean: &mut B::F32,
    invstd: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "batch-norm statistics";
    need(op, "conv output", B::len_f32(y), g.conv_len())?;
    need(op, "mean", B::len_f32(mean), g.channel_len())?;
    need(op, "invstd", B::len_f32(invstd), g.channel_len())?;
    let [t, _, c, ..] = g.ints()?;
    let cfg = Launch::reduce(g.cout, g.tasks);
    // SAFETY: sizes checked above.
    unsafe { b.ml_bn_stats(cfg, y, mean, invstd, t, c, int(op, g.cols())?) }
}

/// What the fused pool does with its kink codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinks {
    /// Choose each window's branch and record it.
    Record,
    /// Take each window's branch from the codes given.
    Replay,
}

/// Statistics (with batch norm) and the fused affine + ReLU + 2×2 max pool: `out` and `code`
/// are `pooled_len()` long. `mean`/`invstd` are written with batch norm, unused without.
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    y: &B::F32,
    affine: &Affine<B>,
    mean: &mut B::F32,
    invstd: &mut B::F32,
    out: &mut B::F32,
    code: &mut B::U8,
    kinks: Kinks,
) -> Result<(), GpuError> {
    let op = "norm + ReLU + max pool";
    need(op, "output", B::len_f32(out), g.pooled_len())?;
    need(op, "kink codes", B::len_u8(code), g.pooled_len())?;
    let (gamma, beta, bias, bn) = match affine {
        Affine::Bias(bias) => (*bias, *bias, *bias, 0),
        Affine::BatchNorm { gamma, beta } => {
            bn_stats(b, g, y, mean, invstd)?;
            (*gamma, *beta, *gamma, 1)
        }
    };
    for (name, v) in [("γ / bias", gamma), ("β / bias", beta)] {
        need(op, name, B::len_f32(v), g.channel_len())?;
    }
    need(op, "mean", B::len_f32(mean), g.channel_len())?;
    need(op, "invstd", B::len_f32(invstd), g.channel_len())?;
    let [t, _, c, n, h, w] = g.ints()?;
    let cfg = Launch::elementwise(g.pooled_len(), b.max_grid());
    let replay = (kinks == Kinks::Replay) as i32;
    // SAFETY: sizes checked above (and by bn_stats).
    unsafe {
        b.ml_bn_relu_pool_fwd(
            cfg, y, mean, invstd, gamma, beta, bias, out, code, t, c, n, h, w, bn, replay,
        )
    }
}

/// The gradients of [`norm_relu_pool`]'s parameters and its input, from `gout = ∂L/∂out`.
pub struct PoolGrads<'a, B: Backend> {
    /// ∂γ, ∂β (zero without batch norm), ∂bias (zero with it: the mean cancels the bias).
    pub dgamma: &'a mut B::F32,
    pub dbeta: &'a mut B::F32,
    pub dbias: &'a mut B::F32,
    /// Per task and channel (offset, slope, winner scale): 3·tasks·cout scratch.
    pub coef: &'a mut B::F32,
    /// ∂L/∂y, the conv output's gradient.
    pub dy: &'a mut B::F32,
}

/// Backward of [`norm_relu_pool`] (with `mean`, `invstd` and `code` from its forward pass).
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_backward<B: Kernels>(
    b: &B,
    g: &ConvGeom,
    y: &B::F32,
    affine: &Affine<B>,
    mean: &B::F32,
    invstd: &B::F32,
    code: &B::U8,
    gout: &B::F32,
    grads: PoolGrads<B>,
) -> Result<(), GpuError> {
    let op = "norm + ReLU + max pool backward";
    need(op, "conv output", B::len_f32(y), g.conv_len())?;
    need(op, "kink codes", B::len_u8(code), g.pooled_len())?;
    need(op, "∂output", B::len_f32(gout), g.pooled_len())?;
    need(op, "mean", B::len_f32(mean), g.channel_len())?;
    need(op, "invstd", B::len_f32(invstd), g.channel_len())?;
    for (name, v) in [
        ("∂γ", &*grads.dgamma),
        ("∂β", &*grads.dbeta),
        ("∂bias", &*grads.dbias),
    ] {
        need(op, name, B::len_f32(v), g.channel_len())?;
    }
    need(
        op,
        "coefficients",
        B::len_f32(grads.coef),
        3 * g.channel_len(),
    )?;
    need(op, "∂conv output", B::len_f32(grads.dy), g.conv_len())?;
    let (gamma, bn) = match affine {
        Affine::Bias(bias) => (*bias, 0),
        Affine::BatchNorm { gamma, .. } => (*gamma, 1),
    };
    need(op, "γ / bias", B::len_f32(gamma), g.channel_len())?;
    let [t, _, c, n, h, w] = g.ints()?;
    // SAFETY: sizes checked above.
    unsafe {
        b.ml_bn_pool_bwd_sums(
            Launch::reduce(g.cout, g.tasks),
            y,
            code,
            gout,
            mean,
            invstd,
            gamma,
            grads.dgamma,
            grads.dbeta,
            grads.dbias,
            grads.coef,
            t,
            c,
            n,
            h,
            w,
            bn,
        )?;
        let cfg = Launch::elementwise(g.conv_len(), b.max_grid());
        b.ml_bn_pool_bwd(cfg, y, code, gout, grads.coef, grads.dy, t, c, n, h, w)
    }
}

/// `y_t ← x_t` with its first two axes swapped, for every task: `x` per task `[a, bdim, s]`,
/// `y` per task `[bdim, a, s]`. Swapping `(bdim, a, s)` undoes it.
#[allow(clippy::too_many_arguments)]
pub fn swap01<B: Kernels>(
    b: &B,
    tasks: usize,
    a: usize,
    bdim: usize,
    s: usize,
    x: &B::F32,
    y: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "axis swap";
    let len = tasks * a * bdim * s;
    need(op, "input", B::len_f32(x), len)?;
    need(op, "output", B::len_f32(y), len)?;
    let cfg = Launch::elementwise(len, b.max_grid());
    let [t, a, bd, s] = [int(op, tasks)?, int(op, a)?, int(op, bdim)?, int(op, s)?];
    // SAFETY: sizes checked above.
    unsafe { b.ml_swap01(cfg, x, y, t, a, bd, s) }
}

/// `len` values at `at` of every handle, stacked task-major on the device: one tensor of every
/// task's parameters, as a batched launch reads it.
pub fn gather<B: Backend>(
    b: &B,
    params: &[&B::F32],
    at: usize,
    len: usize,
) -> Result<B::F32, GpuError> {
    let mut out = b.zeros_f32(params.len() * len)?;
    for (t, p) in params.iter().enumerate() {
        b.copy_f32(p, at, &mut out, t * len, len)?;
    }
    Ok(out)
}

/// [`gather`]'s adjoint on the host: task `t`'s share of the stacked `v` into `grads[t]` at `at`.
pub fn scatter<B: Backend>(
    b: &B,
    v: &B::F32,
    at: usize,
    grads: &mut [Vec<f32>],
) -> Result<(), GpuError> {
    let v = b.download_f32(v)?;
    let len = v.len() / grads.len().max(1);
    for (t, g) in grads.iter_mut().enumerate() {
        need("gradient scatter", "a task's gradient", g.len(), at + len)?;
        g[at..at + len].copy_from_slice(&v[t * len..(t + 1) * len]);
    }
    Ok(())
}

/// Activation of an MLP layer (`kernels/mlp.cu`'s `ML_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Relu = 0,
    Tanh = 1,
    /// None: the head's `h = z + bias`.
    Identity = 2,
}

/// What a ReLU does with its codes (`kernels/mlp.cu`'s `ML_KINKS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReluKinks {
    Free = 0,
    Record = 1,
    Replay = 2,
}

/// One dense layer's shape for all tasks: `rows` inputs of `inputs` features to `outputs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseGeom {
    pub tasks: usize,
    pub rows: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl DenseGeom {
    pub fn in_len(&self) -> usize {
        self.tasks * self.rows * self.inputs
    }
    pub fn out_len(&self) -> usize {
        self.tasks * self.rows * self.outputs
    }
    pub fn weight_len(&self) -> usize {
        self.tasks * self.inputs * self.outputs
    }
    pub fn bias_len(&self) -> usize {
        self.tasks * self.outputs
    }
}

/// `z_t ← x_t · w_t` (w per task `[inputs, outputs]`, as the CPU path's layout), then
/// `h ← act(z + bias)`. `code` is read or written only by a ReLU with kinks not `Free`.
#[allow(clippy::too_many_arguments)]
pub fn dense_forward<B: Kernels>(
    b: &B,
    g: &DenseGeom,
    x: &B::F32,
    w: &B::F32,
    bias: &B::F32,
    z: &mut B::F32,
    h: &mut B::F32,
    code: &mut B::U8,
    act: (Act, ReluKinks),
) -> Result<(), GpuError> {
    let op = "dense forward";
    need(op, "input", B::len_f32(x), g.in_len())?;
    need(op, "weights", B::len_f32(w), g.weight_len())?;
    need(op, "bias", B::len_f32(bias), g.bias_len())?;
    need(op, "pre-activation", B::len_f32(z), g.out_len())?;
    need(op, "output", B::len_f32(h), g.out_len())?;
    let (act, kinks) = act;
    if act == Act::Relu && kinks != ReluKinks::Free {
        need(op, "kink codes", B::len_u8(code), g.out_len())?;
    }
    let (x_m, w_m) = (
        RowMajor::new(g.rows, g.inputs),
        RowMajor::new(g.inputs, g.outputs),
    );
    matmul(b, g.tasks, x, x_m, w, w_m, z)?;
    let (t, r, c) = (int(op, g.tasks)?, int(op, g.rows)?, int(op, g.outputs)?);
    let cfg = Launch::elementwise(g.out_len(), b.max_grid());
    // SAFETY: sizes checked above; `code` is read or written only with kinks not Free.
    unsafe { b.ml_bias_act_fwd(cfg, z, bias, h, code, t, r, c, act as i32, kinks as i32) }
}

/// Backward of [`dense_forward`] from `dh` and its output `h`: `dz` (scratch), ∂w, ∂bias, and
/// ∂x when asked for.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<B: Kernels>(
    b: &B,
    g: &DenseGeom,
    x: &B::F32,
    w: &B::F32,
    h: &B::F32,
    code: &B::U8,
    dh: &B::F32,
    act: (Act, ReluKinks),
    dz: &mut B::F32,
    dw: &mut B::F32,
    dbias: &mut B::F32,
    dx: Option<&mut B::F32>,
) -> Result<(), GpuError> {
    let op = "dense backward";
    need(op, "output", B::len_f32(h), g.out_len())?;
    need(op, "∂output", B::len_f32(dh), g.out_len())?;
    need(op, "∂pre-activation", B::len_f32(dz), g.out_len())?;
    need(op, "∂bias", B::len_f32(dbias), g.bias_len())?;
    if act.0 == Act::Relu && act.1 != ReluKinks::Free {
        need(op, "kink codes", B::len_u8(code), g.out_len())?;
    }
    let (t, r, c) = (int(op, g.tasks)?, int(op, g.rows)?, int(op, g.outputs)?);
    // SAFETY: sizes checked above.
    unsafe {
        b.ml_bias_act_bwd(
            Launch::reduce(g.outputs, g.tasks),
            h,
            dh,
            code,
            dz,
            dbias,
            t,
            r,
            c,
            act.0 as i32,
            act.1 as i32,
        )?
    };
    linear_backward(b, g, x, w, dz, dw, dx)
}

/// Backward of the products of a dense layer from `dz = ∂L/∂z`: `dw_t ← x_tᵀ·dz_t`, and with
/// `dx`, `dx_t ← dz_t·w_tᵀ`.
pub fn linear_backward<B: Kernels>(
    b: &B,
    g: &DenseGeom,
    x: &B::F32,
    w: &B::F32,
    dz: &B::F32,
    dw: &mut B::F32,
    dx: Option<&mut B::F32>,
) -> Result<(), GpuError> {
    let op = "dense backward";
    need(op, "input", B::len_f32(x), g.in_len())?;
    need(op, "weights", B::len_f32(w), g.weight_len())?;
    need(op, "∂pre-activation", B::len_f32(dz), g.out_len())?;
    need(op, "∂weights", B::len_f32(dw), g.weight_len())?;
    let x_m = RowMajor::new(g.rows, g.inputs);
    let w_m = RowMajor::new(g.inputs, g.outputs);
    let dz_m = RowMajor::new(g.rows, g.outputs);
    matmul(b, g.tasks, x, x_m.t(), dz, dz_m, dw)?;
    if let Some(dx) = dx {
        need(op, "∂input", B::len_f32(dx), g.in_len())?;
        matmul(b, g.tasks, dz, dz_m, w, w_m.t(), dx)?;
    }
    Ok(())
}

/// Softmax cross-entropy per task over `rows` logits of `classes`: ∂loss/∂logits into
/// `dlogits`; per task the mean loss and the count of correct rows into `loss`, `correct`.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent<B: Kernels>(
    b: &B,
    tasks: usize,
    rows: usize,
    classes: usize,
    logits: &B::F32,
    labels: &B::I32,
    dlogits: &mut B::F32,
    loss: &mut B::F32,
    correct: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "softmax cross-entropy";
    let len = tasks * rows * classes;
    need(op, "logits", B::len_f32(logits), len)?;
    need(op, "labels", B::len_i32(labels), tasks * rows)?;
    need(op, "∂logits", B::len_f32(dlogits), len)?;
    need(op, "loss", B::len_f32(loss), tasks)?;
    need(op, "correct", B::len_f32(correct), tasks)?;
    if classes == 0 || rows == 0 {
        return Err(GpuError::Size {
            op,
            detail: "no rows or no classes".into(),
        });
    }
    let (t, r, c) = (int(op, tasks)?, int(op, rows)?, int(op, classes)?);
    // SAFETY: sizes checked above; labels are the caller's, each below `classes`.
    unsafe {
        b.ml_softmax_xent(
            Launch::reduce(tasks, 1),
            logits,
            labels,
            dlogits,
            loss,
            correct,
            t,
            r,
            c,
        )
    }
}

/// Mean squared error per task over `len` values each, and its gradient.
pub fn mse<B: Kernels>(
    b: &B,
    tasks: usize,
    len: usize,
    out: &B::F32,
    target: &B::F32,
    dout: &mut B::F32,
    loss: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "mean squared error";
    need(op, "outputs", B::len_f32(out), tasks * len)?;
    need(op, "targets", B::len_f32(target), tasks * len)?;
    need(op, "∂outputs", B::len_f32(dout), tasks * len)?;
    need(op, "loss", B::len_f32(loss), tasks)?;
    let (t, l) = (int(op, tasks)?, int(op, len)?);
    // SAFETY: sizes checked above.
    unsafe { b.ml_mse(Launch::reduce(tasks, 1), out, target, dout, loss, t, l) }
}

/// `y ← x − lr·g` on the device, rounding as the CPU path's f32 SGD step does.
pub fn sgd_step<B: Kernels>(
    b: &B,
    x: &B::F32,
    g: &B::F32,
    y: &mut B::F32,
    lr: f32,
) -> Result<(), GpuError> {
    let op = "SGD step";
    let len = B::len_f32(x);
    need(op, "gradient", B::len_f32(g), len)?;
    need(op, "output", B::len_f32(y), len)?;
    let cfg = Launch::elementwise(len, b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_sgd_step(cfg, x, g, y, lr, int(op, len)?) }
}

/// `y ← x` widened to f64: a query gradient as second-order MAML's backward vector.
pub fn widen<B: Kernels>(b: &B, x: &B::F32, y: &mut B::F64) -> Result<(), GpuError> {
    let op = "widen";
    let len = B::len_f32(x);
    need(op, "output", B::len_f64(y), len)?;
    let cfg = Launch::elementwise(len, b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_widen(cfg, x, y, int(op, len)?) }
}

/// The sums of squares of `v`'s consecutive blocks of `block` values, each in index order,
/// into `partial` (one per block): `model::hvp::sum_sq` before it adds them.
pub fn sumsq_blocks<B: Kernels>(
    b: &B,
    v: &B::F64,
    block: usize,
    partial: &mut B::F64,
) -> Result<(), GpuError> {
    let op = "sum of squares";
    let len = B::len_f64(v);
    let blocks = len.div_ceil(block.max(1));
    need(op, "partial sums", B::len_f64(partial), blocks)?;
    let cfg = Launch::elementwise(blocks, b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_sumsq_blocks(cfg, v, partial, int(op, block.max(1))?, int(op, len)?) }
}

/// `y ← (x + s·v) as f32`, in f64: a shifted point θ ± r·v of the finite-difference HVP.
pub fn shift<B: Kernels>(
    b: &B,
    x: &B::F32,
    v: &B::F64,
    s: f64,
    y: &mut B::F32,
) -> Result<(), GpuError> {
    let op = "HVP shift";
    let len = B::len_f32(x);
    need(op, "vector", B::len_f64(v), len)?;
    need(op, "output", B::len_f32(y), len)?;
    let cfg = Launch::elementwise(len, b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_shift(cfg, x, v, y, s, int(op, len)?) }
}

/// `v ← v − lr·(gp − gm)/two_r`: one step back through an inner SGD step, the HVP by central
/// differences of the gradients `gp`, `gm` at θ ± r·v.
pub fn step_back<B: Kernels>(
    b: &B,
    v: &mut B::F64,
    gp: &B::F32,
    gm: &B::F32,
    two_r: f64,
    lr: f64,
) -> Result<(), GpuError> {
    let op = "HVP step back";
    let len = B::len_f64(v);
    need(op, "gradient at θ + r·v", B::len_f32(gp), len)?;
    need(op, "gradient at θ − r·v", B::len_f32(gm), len)?;
    let cfg = Launch::elementwise(len, b.max_grid());
    // SAFETY: sizes checked above.
    unsafe { b.ml_step_back(cfg, v, gp, gm, two_r, lr, int(op, len)?) }
}
