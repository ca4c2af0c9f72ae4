//! One conv4 block as a single op on dfdx's tape:
//! 3×3 conv (+ bias) → batch norm (batch statistics, learned γ, β) → ReLU → 2×2 max pool.
//!
//! Fusing the block keeps its largest tensors (the conv output and its gradient, 4× the size of
//! the block's output) out of dfdx: they live in buffers owned by the block and reused on every
//! call, so a step allocates and zeroes only the small pooled tensors. The block's output and
//! every parameter gradient still go through dfdx's `Gradients`, so one `loss.backward()` gives
//! them all, exactly as for built-in ops.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::prelude::*;

use super::batchnorm::{self, GradSums};
use super::buffer::at_least;
use super::conv2d::{self, ConvScratch, ConvShape};
use super::maxpool;
use crate::model::kinks::Kinks;

/// Activations are `[channels, images, h, w]` (see `conv2d`).
pub type Shape4 = (usize, usize, usize, usize);
/// Parameters are flat 1-D tensors; the op knows their logical shapes.
pub type Param<D = Cpu> = Tensor<(usize,), f32, D>;

pub struct BlockParams<'a, D: Device<f32> = Cpu> {
    /// `[cout, cin, 3, 3]`.
    pub weight: &'a Param<D>,
    /// `[cout]`.
    pub bias: &'a Param<D>,
    /// Batch-norm `(γ, β)`, each `[cout]`, when the block has batch norm.
    pub norm: Option<(&'a Param<D>, &'a Param<D>)>,
}

/// What the forward pass leaves for the backward pass, reused from call to call.
#[derive(Default)]
struct Saved {
    /// Bumped by every forward pass; a backward pass checks it still owns the buffers.
    generation: u64,
    x: Vec<f32>,
    w: Vec<f32>,
    gamma: Vec<f32>,
    /// Conv output without the bias; the backward pass overwrites it with ∂L/∂(conv output).
    y: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    code: Vec<u8>,
    dw: Vec<f32>,
    conv: ConvScratch,
}

/// One block as every device sees it: its shapes and switches, no buffers and no device
/// types. `Copy`, so an evaluator hands it to its device's kernel by value; what a kernel keeps
/// between the forward and the backward pass is the device's own block state
/// (`ModelDevice::BlockState`; on the CPU a [`CpuBlockState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvBlock {
    pub shape: ConvShape,
    pub batch_norm: bool,
    /// Whether ∂L/∂input is computed: not for a first block, whose input is data.
    pub input_grad: bool,
}

impl ConvBlock {
    pub fn new(shape: ConvShape, batch_norm: bool, input_grad: bool) -> ConvBlock {
        ConvBlock {
            shape,
            batch_norm,
            input_grad,
        }
    }

    /// Height and width of the block's output.
    pub fn out_hw(&self) -> (usize, usize) {
        (self.shape.ho() / 2, self.shape.wo() / 2)
    }
}

/// The CPU kernel's state for one block: the buffers its forward pass leaves for its backward
/// pass, reused from call to call.
#[derive(Default)]
pub struct CpuBlockState {
    saved: Rc<RefCell<Saved>>,
}

/// What the forward pass of one image batch computes besides its output, on the host.
struct BlockInputs<'a> {
    bias: &'a [f32],
    beta: &'a [f32],
    n: usize,
    branches: Option<&'a [u8]>,
}

impl CpuBlockState {
    /// Runs `block` on `[cin, n, h, w]` and returns `[cout, n, h/2, w/2]`, its max-pool/ReLU
    /// branches as `kinks` says (a recording is one code per output value).
    ///
    /// The buffers belong to the latest forward pass: the backward pass of a graph must run (or
    /// the graph be dropped) before the same state runs forward again. That is how an evaluator
    /// uses it; the backward pass panics if it finds its buffers reused.
    pub fn forward<T: Tape<f32, Cpu>>(
        &self,
        block: ConvBlock,
        x: Tensor<Shape4, f32, Cpu, T>,
        p: &BlockParams,
        kinks: Kinks<'_, Vec<u8>>,
    ) -> Tensor<Shape4, f32, Cpu, T> {
        let s = block.shape;
        let &(cin, n, h, w) = x.shape();
        assert_eq!((cin, h, w), (s.cin, s.h, s.w), "conv block input shape");
        assert_eq!(p.norm.is_some(), block.batch_norm, "batch-norm parameters");
        let (ph, pw) = block.out_hw();
        let (x, mut tape) = x.split_tape();
        let dev = x.device().clone();

        let mut guard = self.saved.borrow_mut();
        let sv = &mut *guard;
        sv.generation += 1;
        fill_from(&mut sv.x, &x);
        fill_from(&mut sv.w, p.weight);
        let mut bias = Vec::new();
        fill_from(&mut bias, p.bias);
        let mut beta = Vec::new();
        if let Some((g, b)) = p.norm {
            fill_from(&mut sv.gamma, g);
            fill_from(&mut beta, b);
        }
        let y = at_least(&mut sv.y, s.out_len(n));
        conv2d::forward(&s, n, &sv.x[..s.in_len(n)], &sv.w, None, y, &mut sv.conv);
        let branches = match &kinks {
            Kinks::Replay(fixed) => Some(fixed.as_slice()),
            _ => None,
        };
        let inputs = BlockInputs {
            bias: &bias,
            beta: &beta,
            n,
            branches,
        };
        let out = norm_relu_pool(block, sv, &inputs);
        if let Kinks::Record(codes) = kinks {
            codes.clone_from(&sv.code);
        }
        drop(guard);
        let out = dev.tensor_from_vec(out, (s.cout, n, ph, pw));

        if T::OWNS_TAPE {
            let out_ghost = out.ghost();
            let x_ghost = x.ghost();
            let w_ghost = p.weight.ghost();
            let b_ghost = p.bias.ghost();
            let norm_ghosts = p.norm.map(|(g, b)| (g.ghost(), b.ghost()));
            let saved = self.saved.clone();
            let generation = saved.borrow().generation;
            tape.add_backward_op(move |grads| {
                let mut guard = saved.borrow_mut();
                let sv = &mut *guard;
                assert_eq!(
                    sv.generation, generation,
                    "a conv block ran forward again before the backward pass of its earlier call"
                );
                // Borrowed out of dfdx's map while the input gradients are written, then put back.
                let g_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
                let dx = if block.input_grad {
                    Some(grads.get_or_alloc_mut(&x_ghost)?.as_mut_slice())
                } else {
                    None
                };
                let [db, dgamma, dbeta] = backward(block, n, sv, &g_out, dx);
                add_into(grads.get_or_alloc_mut(&w_ghost)?, &sv.dw);
                add_into(grads.get_or_alloc_mut(&b_ghost)?, &db);
                if let Some((g_ghost, b_ghost)) = &norm_ghosts {
                    add_into(grads.get_or_alloc_mut(g_ghost)?, &dgamma);
                    add_into(grads.get_or_alloc_mut(b_ghost)?, &dbeta);
                }
                **grads.get_or_alloc_mut(&out_ghost)? = g_out;
                Ok(())
            });
        }
        out.put_tape(tape)
    }
}

/// Batch norm (or the bias), ReLU and max pool of the conv output in `sv.y`, recording each
/// window's branch in `sv.code` (or taking it from `inputs.branches`); the pooled output.
fn norm_relu_pool(block: ConvBlock, sv: &mut Saved, inputs: &BlockInputs) -> Vec<f32> {
    let s = block.shape;
    let n = inputs.n;
    let (ch, cw) = (s.ho(), s.wo());
    let (ph, pw) = block.out_hw();
    let (plane, pooled) = (ch * cw, ph * pw);
    let mut out = vec![0.0f32; s.cout * n * pooled];
    sv.code.resize(out.len(), 0);
    if let Some(fixed) = inputs.branches {
        assert_eq!(
            fixed.len(),
            out.len(),
            "replayed branches are for a different batch"
        );
    }
    sv.mean.resize(s.cout, 0.0);
    sv.invstd.resize(s.cout, 0.0);
    // Channel by channel, so a channel's row is still in cache for the pooling pass.
    for c in 0..s.cout {
        let row = &sv.y[c * n * plane..][..n * plane];
        let (scale, shift) = if block.batch_norm {
            // Batch norm subtracts the channel mean, which cancels the conv bias exactly,
            // so the bias is never added, and its gradient is exactly 0.
            let (mean, invstd) = batchnorm::stats(row);
            sv.mean[c] = mean;
            sv.invstd[c] = invstd;
            let scale = sv.gamma[c] * invstd;
            (scale, inputs.beta[c] - mean * scale)
        } else {
            (1.0, inputs.bias[c])
        };
        for img in 0..n {
            let i = c * n + img;
            let (src, out, code) = (
                &row[img * plane..][..plane],
                &mut out[i * pooled..][..pooled],
                &mut sv.code[i * pooled..][..pooled],
            );
            match inputs.branches {
                None => maxpool::forward_plane(src, ch, cw, scale, shift, out, code),
                Some(fixed) => {
                    code.copy_from_slice(&fixed[i * pooled..][..pooled]);
                    maxpool::forward_plane_fixed(src, ch, cw, scale, shift, out, code);
                }
            }
        }
    }
    out
}

/// The backward pass of the forward pass whose buffers `sv` holds, from ∂L/∂output `g_out`:
/// ∂L/∂weight into `sv.dw`, ∂L/∂input into `dx` when given; returns ∂L/∂(bias, γ, β).
fn backward(
    block: ConvBlock,
    n: usize,
    sv: &mut Saved,
    g_out: &[f32],
    dx: Option<&mut [f32]>,
) -> [Vec<f32>; 3] {
    let s = block.shape;
    let (ch, cw) = (s.ho(), s.wo());
    let (ph, pw) = block.out_hw();
    let (plane, pooled) = (ch * cw, ph * pw);
    let mut db = vec![0.0f32; s.cout];
    let mut dgamma = vec![0.0f32; s.cout];
    let mut dbeta = vec![0.0f32; s.cout];
    for c in 0..s.cout {
        let row = &mut sv.y[c * n * plane..][..n * plane];
        let g = &g_out[c * n * pooled..][..n * pooled];
        let code = &sv.code[c * n * pooled..][..n * pooled];
        if block.batch_norm {
            let (mean, invstd) = (sv.mean[c], sv.invstd[c]);
            let (sum_g, sum_gy) = maxpool::winner_sums(row, ch, cw, code, g);
            let sums = GradSums {
                dz: sum_g,
                dz_xhat: invstd as f64 * (sum_gy - mean as f64 * sum_g),
            };
            dgamma[c] = sums.dz_xhat as f32;
            dbeta[c] = sums.dz as f32;
            let (offset, slope) =
                batchnorm::spread_terms(row.len(), mean, invstd, sv.gamma[c], sums);
            let k1 = sv.gamma[c] * invstd;
            maxpool::backward(row, ch, cw, code, g, offset, slope, k1);
            // The loss does not depend on the bias at all (batch norm subtracts it with the
            // mean): its gradient is exactly 0, where Σ dy would be rounding.
            db[c] = 0.0;
        } else {
            db[c] = maxpool::backward(row, ch, cw, code, g, 0.0, 0.0, 1.0) as f32;
        }
    }
    sv.dw.clear();
    sv.dw.resize(s.weight_len(), 0.0);
    conv2d::backward(
        &s,
        n,
        &sv.x[..s.in_len(n)],
        &sv.w,
        &sv.y[..s.out_len(n)],
        &mut sv.dw,
        None,
        dx,
        &mut sv.conv,
    );
    [db, dgamma, dbeta]
}

/// The first values of `dst` set to `t`'s (`dst` may be longer: see [`at_least`]).
fn fill_from<S: dfdx::shapes::Shape, T>(dst: &mut Vec<f32>, t: &Tensor<S, f32, Cpu, T>) {
    t.copy_into(at_least(dst, t.shape().num_elements()));
}

fn add_into(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::testing::{assert_close, lcg_values};

    struct Case {
        shape: ConvShape,
        n: usize,
        batch_norm: bool,
    }

    /// Inputs, weight, bias, γ, β as flat vectors.
    fn inputs(c: &Case) -> Vec<Vec<f32>> {
        let s = c.shape;
        let gamma: Vec<f32> = lcg_values(s.cout, 14)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect();
        vec![
            lcg_values(s.in_len(c.n), 11),
            lcg_values(s.weight_len(), 12)
                .iter()
                .map(|v| v * 0.5)
                .collect(),
            lcg_values(s.cout, 13),
            gamma,
            lcg_values(s.cout, 15).iter().map(|v| v * 0.3).collect(),
        ]
    }

    /// Runs the block; with `weights` the loss Σ weights·out is traced and differentiated.
    fn run(c: &Case, v: &[Vec<f32>], weights: Option<&[f32]>) -> (Vec<f32>, Option<Vec<Vec<f32>>>) {
        let dev = Cpu::default();
        let s = c.shape;
        let block = ConvBlock::new(s, c.batch_norm, true);
        let state = CpuBlockState::default();
        let p: Vec<Param> = v[1..]
            .iter()
            .map(|t| dev.tensor_from_vec(t.clone(), (t.len(),)))
            .collect();
        let params = BlockParams {
            weight: &p[0],
            bias: &p[1],
            norm: c.batch_norm.then(|| (&p[2], &p[3])),
        };
        let x = dev.tensor_from_vec(v[0].clone(), (s.cin, c.n, s.h, s.w));
        match weights {
            None => (state.forward(block, x, &params, Kinks::Free).as_vec(), None),
            Some(r) => {
                let out = state.forward(block, x.leaky_trace(), &params, Kinks::Free);
                let shape = *out.shape();
                let r = dev.tensor_from_vec(r.to_vec(), shape);
                let loss: Tensor<(), f32, Cpu, _> = (out * r).sum();
                let g = loss.backward();
                let mut grads = vec![g.get(&x).as_vec()];
                let used = if c.batch_norm { 4 } else { 2 };
                grads.extend(p[..used].iter().map(|t| g.get(t).as_vec()));
                (vec![], Some(grads))
            }
        }
    }

    /// The block straight from its definition, in f64.
    fn reference(c: &Case, v: &[Vec<f32>]) -> Vec<f64> {
        let s = c.shape;
        let (n, hw) = (c.n, s.h * s.w);
        let mut y = vec![0.0f64; s.out_len(n)];
        for co in 0..s.cout {
            for img in 0..n {
                for oy in 0..s.h {
                    for ox in 0..s.w {
                        let mut acc = v[2][co] as f64;
                        for ci in 0..s.cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = ((oy + ky) as isize - 1, (ox + kx) as isize - 1);
                                    if iy >= 0 && ix >= 0 && iy < s.h as isize && ix < s.w as isize
                                    {
                                        let xv = v[0]
                                            [(ci * n + img) * hw + iy as usize * s.w + ix as usize];
                                        acc += xv as f64
                                            * v[1][(co * s.cin + ci) * 9 + ky * 3 + kx] as f64;
                                    }
                                }
                            }
                        }
                        y[(co * n + img) * hw + oy * s.w + ox] = acc;
                    }
                }
            }
        }
        if c.batch_norm {
            for co in 0..s.cout {
                let row = &mut y[co * n * hw..][..n * hw];
                let mean = row.iter().sum::<f64>() / row.len() as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / row.len() as f64;
                for v2 in row.iter_mut() {
                    *v2 = v[3][co] as f64 * (*v2 - mean) / (var + batchnorm::EPS as f64).sqrt()
                        + v[4][co] as f64;
                }
            }
        }
        let (ph, pw) = (s.h / 2, s.w / 2);
        let mut out = vec![0.0; s.cout * n * ph * pw];
        for ci in 0..s.cout * n {
            for py in 0..ph {
                for px in 0..pw {
                    let at = |dy: usize, dx: usize| y[ci * hw + (2 * py + dy) * s.w + 2 * px + dx];
                    let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    out[(ci * ph + py) * pw + px] = m.max(0.0);
                }
            }
        }
        out
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                shape: ConvShape::same3(2, 3, 5, 4),
                n: 3,
                batch_norm: true,
            },
            Case {
                shape: ConvShape::same3(1, 2, 7, 6),
                n: 2,
                batch_norm: true,
            },
            Case {
                shape: ConvShape::same3(2, 3, 4, 5),
                n: 3,
                batch_norm: false,
            },
        ]
    }

    #[test]
    fn forward_matches_reference_portable() {
        crate::model::ops::simd::portable_only(forward_matches_reference_check);
    }

    #[test]
    fn forward_matches_reference() {
        forward_matches_reference_check();
    }

    fn forward_matches_reference_check() {
        for c in cases() {
            let v = inputs(&c);
            let (got, _) = run(&c, &v, None);
            let want = reference(&c, &v);
            assert_eq!(got.len(), want.len());
            for (i, (&g, &e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "out[{i}] = {g}, want {e}"
                );
            }
        }
    }

    /// ∂(Σ r·block(x))/∂(x, w, b, γ, β) from one dfdx backward pass against central differences.
    /// Covers batch norm (x, γ, β), ReLU and max pool in the fused op.
    #[test]
    fn gradients_match_finite_differences_portable() {
        crate::model::ops::simd::portable_only(gradients_match_finite_differences_check);
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradients_match_finite_differences_check();
    }

    fn gradients_match_finite_differences_check() {
        let names = ["x", "weight", "bias", "gamma", "beta"];
        for c in cases() {
            let v = inputs(&c);
            let r = lcg_values(c.shape.cout * c.n * (c.shape.h / 2) * (c.shape.w / 2), 16);
            let loss = |v: &[Vec<f32>]| -> f64 {
                let (out, _) = run(&c, v, None);
                out.iter().zip(&r).map(|(o, r)| *o as f64 * *r as f64).sum()
            };
            let (_, grads) = run(&c, &v, Some(&r));
            let grads = grads.unwrap();
            let h = 1e-3f32;
            for (k, g) in grads.iter().enumerate() {
                assert_eq!(g.len(), v[k].len());
                for i in 0..g.len() {
                    let (mut p, mut m) = (v.to_vec(), v.to_vec());
                    p[k][i] += h;
                    m[k][i] -= h;
                    let fd = (loss(&p) - loss(&m)) / (2.0 * h as f64);
                    let what = format!("bn={} {}[{i}]", c.batch_norm, names[k]);
                    assert_close(g[i], fd, &what);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "ran forward again")]
    fn reusing_the_buffers_before_backward_is_caught() {
        let c = &cases()[0];
        let v = inputs(c);
        let dev = Cpu::default();
        let block = ConvBlock::new(c.shape, true, true);
        let state = CpuBlockState::default();
        let p: Vec<Param> = v[1..]
            .iter()
            .map(|t| dev.tensor_from_vec(t.clone(), (t.len(),)))
            .collect();
        let params = BlockParams {
            weight: &p[0],
            bias: &p[1],
            norm: Some((&p[2], &p[3])),
        };
        let x = dev.tensor_from_vec(v[0].clone(), (2, 3, 5, 4));
        let first = state.forward(block, x.leaky_trace(), &params, Kinks::Free);
        let _second = state.forward(block, x.clone(), &params, Kinks::Free);
        let _ = first.sum::<(), _>().backward();
    }
}
