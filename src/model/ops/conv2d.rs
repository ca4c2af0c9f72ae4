//! 2-D convolution (stride 1, zero padding) by im2col + GEMM, on channels-major activations.
//!
//! Activations are `[channels, images, h, w]` ("CNHW"): one GEMM then covers many images at once
//! and its result lands directly in the same layout, so no transposes are needed between layers.
//! The column matrix is built a few images at a time so it stays in cache instead of costing a
//! trip to memory that is larger than the activations themselves.

use super::buffer::at_least;
use super::gemm::{matmul, Strided};
use super::simd::multiversion;

/// Floats of column matrix per chunk: a few hundred KB, well inside one core's L2.
const CHUNK_FLOATS: usize = 96 * 1024;

/// Geometry of one convolution with a `k×k` kernel, stride 1 and `pad` zeros on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub pad: usize,
}

impl ConvShape {
    /// The usual "same" 3×3 convolution.
    pub fn same3(cin: usize, cout: usize, h: usize, w: usize) -> ConvShape {
        ConvShape {
            cin,
            cout,
            h,
            w,
            k: 3,
            pad: 1,
        }
    }
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }
    /// Rows of the column matrix: one per (input channel, ky, kx), the order of a
    /// `[out, in, k, k]` weight's rows.
    pub fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }
    pub fn weight_len(&self) -> usize {
        self.cout * self.kdim()
    }
    pub fn in_len(&self, n: usize) -> usize {
        self.cin * n * self.h * self.w
    }
    pub fn out_len(&self, n: usize) -> usize {
        self.cout * n * self.ho() * self.wo()
    }

    /// Output as large as the input ("same" padding): each kernel offset is then a single flat
    /// shift of a whole chunk of images, plus zeros where it reads padding.
    fn is_same(&self) -> bool {
        self.ho() == self.h && self.wo() == self.w
    }

    fn images_per_chunk(&self, n: usize) -> usize {
        let per_image = (self.kdim() * self.ho() * self.wo()).max(1);
        (CHUNK_FLOATS / per_image).clamp(1, n.max(1))
    }

    /// For kernel offset `kx`, the output columns whose input column `ox + kx - pad` exists.
    fn valid(&self, kx: usize, out: usize, inp: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(kx).min(out);
        let hi = (inp + self.pad).saturating_sub(kx).clamp(lo, out);
        (lo, hi)
    }
}

multiversion! {
/// Column matrix `[kdim, (n1-n0)·ho·wo]` of images `n0..n1` of the CNHW input `x` (`n` images).
fn im2col(s: &ConvShape, n: usize, x: &[f32], n0: usize, n1: usize, col: &mut [f32]) {
    if s.is_same() {
        return im2col_same(s, n, x, n0, n1, col);
    }
    let (ho, wo) = (s.ho(), s.wo());
    let cols = (n1 - n0) * ho * wo;
    for ci in 0..s.cin {
        for ky in 0..s.k {
            let (ylo, yhi) = s.valid(ky, ho, s.h);
            for kx in 0..s.k {
                let (xlo, xhi) = s.valid(kx, wo, s.w);
                let r = (ci * s.k + ky) * s.k + kx;
                let row = &mut col[r * cols..(r + 1) * cols];
                for (i, img) in (n0..n1).enumerate() {
                    let plane = &x[(ci * n + img) * s.h * s.w..][..s.h * s.w];
                    let dst = &mut row[i * ho * wo..(i + 1) * ho * wo];
                    dst[..ylo * wo].fill(0.0);
                    dst[yhi * wo..].fill(0.0);
                    for oy in ylo..yhi {
                        let src = &plane[(oy + ky - s.pad) * s.w..][..s.w];
                        let d = &mut dst[oy * wo..(oy + 1) * wo];
                        d[..xlo].fill(0.0);
                        d[xhi..].fill(0.0);
                        if xlo < xhi {
                            d[xlo..xhi].copy_from_slice(&src[xlo + kx - s.pad..xhi + kx - s.pad]);
                        }
                    }
                }
            }
        }
    }
}
}

multiversion! {
/// Adds the column matrix of images `n0..n1` back onto the CNHW gradient `dx` (im2col's adjoint).
/// May overwrite `col`.
fn col2im(s: &ConvShape, n: usize, col: &mut [f32], n0: usize, n1: usize, dx: &mut [f32]) {
    if s.is_same() {
        return col2im_same(s, n, col, n0, n1, dx);
    }
    let (ho, wo) = (s.ho(), s.wo());
    let cols = (n1 - n0) * ho * wo;
    for ci in 0..s.cin {
        for ky in 0..s.k {
            let (ylo, yhi) = s.valid(ky, ho, s.h);
            for kx in 0..s.k {
                let (xlo, xhi) = s.valid(kx, wo, s.w);
                let r = (ci * s.k + ky) * s.k + kx;
                let row = &col[r * cols..(r + 1) * cols];
                for (i, img) in (n0..n1).enumerate() {
                    let plane = &mut dx[(ci * n + img) * s.h * s.w..][..s.h * s.w];
                    let src = &row[i * ho * wo..(i + 1) * ho * wo];
                    if xlo == xhi {
                        continue;
                    }
                    for oy in ylo..yhi {
                        let d = &mut plane[(oy + ky - s.pad) * s.w..][..s.w];
                        let d = &mut d[xlo + kx - s.pad..xhi + kx - s.pad];
                        for (a, b) in d.iter_mut().zip(&src[oy * wo + xlo..oy * wo + xhi]) {
                            *a += *b;
                        }
                    }
                }
            }
        }
    }
}
}

/// Flat offset of kernel position `(ky, kx)` in a "same" convolution, and the range of outputs
/// `q` of a `len`-long chunk whose `q + offset` stays inside the chunk.
#[inline(always)]
fn flat_shift(s: &ConvShape, ky: usize, kx: usize, len: usize) -> (isize, usize, usize) {
    let off = (ky as isize - s.pad as isize) * s.w as isize + kx as isize - s.pad as isize;
    let lo = (-off).clamp(0, len as isize) as usize;
    let hi = (len as isize - off).clamp(lo as isize, len as isize) as usize;
    (off, lo, hi)
}

/// Zeroes the outputs in one column-matrix row (kernel position `ky, kx`) of a "same"
/// convolution that read padding: whole rows at the top or bottom, a few columns at the sides.
/// The flat shift put pixels of the neighbouring row or image there.
#[inline(always)]
fn zero_padding(s: &ConvShape, ky: usize, kx: usize, row: &mut [f32]) {
    let (h, w) = (s.h, s.w);
    let top = s.pad.saturating_sub(ky).min(h);
    let bottom = ky.saturating_sub(s.pad).min(h);
    let left = s.pad.saturating_sub(kx).min(w);
    let right = kx.saturating_sub(s.pad).min(w);
    for img in row.chunks_exact_mut(h * w) {
        img[..top * w].fill(0.0);
        img[(h - bottom) * w..].fill(0.0);
        // Column by column: a strided loop, not thousands of one-element memsets.
        for c in (0..left).chain(w - right..w) {
            for y in 0..h {
                img[y * w + c] = 0.0;
            }
        }
    }
}

#[inline(always)]
fn im2col_same(s: &ConvShape, n: usize, x: &[f32], n0: usize, n1: usize, col: &mut [f32]) {
    let len = (n1 - n0) * s.h * s.w;
    for ci in 0..s.cin {
        let src = &x[(ci * n + n0) * s.h * s.w..][..len];
        for ky in 0..s.k {
            for kx in 0..s.k {
                let r = (ci * s.k + ky) * s.k + kx;
                let dst = &mut col[r * len..][..len];
                let (off, lo, hi) = flat_shift(s, ky, kx, len);
                dst[..lo].fill(0.0);
                dst[hi..].fill(0.0);
                let from = (lo as isize + off) as usize;
                dst[lo..hi].copy_from_slice(&src[from..from + hi - lo]);
                zero_padding(s, ky, kx, dst);
            }
        }
    }
}

#[inline(always)]
fn col2im_same(s: &ConvShape, n: usize, col: &mut [f32], n0: usize, n1: usize, dx: &mut [f32]) {
    let len = (n1 - n0) * s.h * s.w;
    for ci in 0..s.cin {
        let dst = &mut dx[(ci * n + n0) * s.h * s.w..][..len];
        for ky in 0..s.k {
            for kx in 0..s.k {
                let r = (ci * s.k + ky) * s.k + kx;
                let row = &mut col[r * len..][..len];
                // Padding positions would land on neighbouring pixels after the flat shift.
                zero_padding(s, ky, kx, row);
                let (off, lo, hi) = flat_shift(s, ky, kx, len);
                let from = (lo as isize + off) as usize;
                for (d, v) in dst[from..from + hi - lo].iter_mut().zip(&row[lo..hi]) {
                    *d += *v;
                }
            }
        }
    }
}

multiversion! {
/// `dst` (`cols×rows`, row-major) = the transpose of `rows×cols` at row stride `rs` in `src`.
fn transpose(src: &[f32], rows: usize, cols: usize, rs: usize, dst: &mut [f32]) {
    // 64-column strips keep the strip of `dst` being written in L1.
    for j0 in (0..cols).step_by(64) {
        let j1 = (j0 + 64).min(cols);
        for r in 0..rows {
            let from = &src[r * rs + j0..r * rs + j1];
            for (j, &v) in (j0..j1).zip(from) {
                dst[j * rows + r] = v;
            }
        }
    }
}
}

/// Reusable column buffers, so a long-lived caller allocates them once.
#[derive(Debug, Default)]
pub struct ConvScratch {
    col: Vec<f32>,
    dcol: Vec<f32>,
    dy_t: Vec<f32>,
    dy_c: Vec<f32>,
    dw_t: Vec<f32>,
}

/// `y = conv(x, w) (+ bias)` for `n` CNHW images; `w` is `[cout, cin, k, k]`.
pub fn forward(
    s: &ConvShape,
    n: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut ConvScratch,
) {
    assert_eq!(x.len(), s.in_len(n));
    assert_eq!(w.len(), s.weight_len());
    assert_eq!(y.len(), s.out_len(n));
    let hw = s.ho() * s.wo();
    let per = s.images_per_chunk(n);
    let kdim = s.kdim();
    let col = at_least(&mut scratch.col, kdim * per * hw);
    for n0 in (0..n).step_by(per) {
        let n1 = (n0 + per).min(n);
        let cols = (n1 - n0) * hw;
        im2col(s, n, x, n0, n1, &mut col[..kdim * cols]);
        let d = Strided {
            rows: s.cout,
            cols,
            rs: n * hw,
            cs: 1,
        };
        let w_mat = Strided::row_major(s.cout, kdim);
        matmul(
            &mut y[n0 * hw..],
            d,
            false,
            w,
            w_mat,
            col,
            Strided::row_major(kdim, cols),
        );
    }
    if let Some(b) = bias {
        for (row, &bc) in y.chunks_exact_mut(n * hw).zip(b) {
            row.iter_mut().for_each(|v| *v += bc);
        }
    }
}

/// Given `dy = ∂L/∂y`, adds `∂L/∂w` to `dw`, `∂L/∂bias` to `db` and `∂L/∂x` to `dx`, each when
/// asked for (the first layer's input is data, and its gradient would cost a full col2im).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    s: &ConvShape,
    n: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
    scratch: &mut ConvScratch,
) {
    assert_eq!(x.len(), s.in_len(n));
    assert_eq!(w.len(), s.weight_len());
    assert_eq!(dy.len(), s.out_len(n));
    assert_eq!(dw.len(), s.weight_len());
    let hw = s.ho() * s.wo();
    if let Some(db) = db {
        for (g, row) in db.iter_mut().zip(dy.chunks_exact(n * hw)) {
            *g += super::reduce::sum(row) as f32;
        }
    }
    let per = s.images_per_chunk(n);
    let kdim = s.kdim();
    let ConvScratch {
        col,
        dcol,
        dy_t,
        dy_c,
        dw_t,
    } = scratch;
    let col = at_least(col, kdim * per * hw);
    if dx.is_some() {
        at_least(dcol, kdim * per * hw);
        at_least(dy_c, s.cout * per * hw);
    }
    let dw_mat = Strided::row_major(s.cout, kdim);
    // With many rows in the column matrix, ∂L/∂wᵀ = col·dyᵀ keeps both GEMM operands contiguous
    // along their rows (the fast kernel's case) for the price of transposing dy, which is
    // `kdim` times smaller than the product. With few rows (a first layer), it does not pay.
    let transposed = kdim > s.cout;
    if transposed {
        at_least(dy_t, per * hw * s.cout);
        dw_t.clear();
        dw_t.resize(kdim * s.cout, 0.0);
    }
    for n0 in (0..n).step_by(per) {
        let n1 = (n0 + per).min(n);
        let cols = (n1 - n0) * hw;
        let dy_chunk = &dy[n0 * hw..];
        let dy_mat = Strided {
            rows: s.cout,
            cols,
            rs: n * hw,
            cs: 1,
        };
        let col_mat = Strided::row_major(kdim, cols);
        im2col(s, n, x, n0, n1, &mut col[..kdim * cols]);
        if transposed {
            transpose(dy_chunk, s.cout, cols, n * hw, &mut dy_t[..cols * s.cout]);
            let dy_t_mat = Strided::row_major(cols, s.cout);
            matmul(
                dw_t,
                Strided::row_major(kdim, s.cout),
                true,
                col,
                col_mat,
                dy_t,
                dy_t_mat,
            );
        } else {
            matmul(dw, dw_mat, true, dy_chunk, dy_mat, col, col_mat.t());
        }
        if let Some(dx) = dx.as_deref_mut() {
            // A packed copy of dy's chunk: its rows lie a whole layer apart in `dy`, and
            // streaming from that many pages at once costs the product ~15%.
            let dy_c = &mut dy_c[..s.cout * cols];
            for (co, out) in dy_c.chunks_exact_mut(cols).enumerate() {
                out.copy_from_slice(&dy_chunk[co * n * hw..][..cols]);
            }
            let dy_c_mat = Strided::row_major(s.cout, cols);
            matmul(dcol, col_mat, false, w, dw_mat.t(), dy_c, dy_c_mat);
            col2im(s, n, &mut dcol[..kdim * cols], n0, n1, dx);
        }
    }
    if transposed {
        for (co, row) in dw.chunks_exact_mut(kdim).enumerate() {
            for (r, g) in row.iter_mut().enumerate() {
                *g += dw_t[r * s.cout + co];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::testing::{assert_close, lcg_values};

    /// The definition, straight from the formula.
    fn direct(s: &ConvShape, n: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
        let (ho, wo) = (s.ho(), s.wo());
        let mut y = vec![0.0f64; s.out_len(n)];
        for co in 0..s.cout {
            for img in 0..n {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = b[co] as f64;
                        for ci in 0..s.cin {
                            for ky in 0..s.k {
                                for kx in 0..s.k {
                                    let iy = (oy + ky) as isize - s.pad as isize;
                                    let ix = (ox + kx) as isize - s.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((ci * n + img) * s.h + iy as usize) * s.w + ix as usize];
                                    let wv = w[((co * s.cin + ci) * s.k + ky) * s.k + kx];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((co * n + img) * ho + oy) * wo + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn shapes() -> Vec<(ConvShape, usize)> {
        vec![
            (ConvShape::same3(2, 3, 5, 4), 3),
            (ConvShape::same3(1, 4, 7, 7), 2),
            (ConvShape::same3(3, 2, 1, 1), 2),
            // More output channels than column rows: the untransposed weight-gradient product.
            (ConvShape::same3(1, 12, 4, 3), 2),
        ]
        .into_iter()
        .chain(
            // A smaller output (the general im2col path), then two other "same" geometries.
            [(5, 1, 6, 5), (5, 2, 4, 6), (1, 0, 3, 4)].map(|(k, pad, h, w)| {
                let shape = ConvShape {
                    cin: 2,
                    cout: 2,
                    h,
                    w,
                    k,
                    pad,
                };
                (shape, 2)
            }),
        )
        .collect()
    }

    #[test]
    fn forward_matches_direct_convolution_portable() {
        crate::model::ops::simd::portable_only(forward_matches_direct_convolution_check);
    }

    #[test]
    fn forward_matches_direct_convolution() {
        forward_matches_direct_convolution_check();
    }

    fn forward_matches_direct_convolution_check() {
        // Include a batch big enough to be split into several column chunks.
        let mut cases = shapes();
        cases.push((ConvShape::same3(8, 5, 14, 14), 70));
        for (s, n) in cases {
            let x = lcg_values(s.in_len(n), 1);
            let w = lcg_values(s.weight_len(), 2);
            let b = lcg_values(s.cout, 3);
            let mut y = vec![f32::NAN; s.out_len(n)];
            forward(&s, n, &x, &w, Some(&b), &mut y, &mut ConvScratch::default());
            let want = direct(&s, n, &x, &w, &b);
            for (i, (&g, &e)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{s:?} n={n} y[{i}] = {g}, want {e}"
                );
            }
        }
    }

    /// L = Σ r·conv(x, w, b) for a fixed random r, so ∂L/∂y = r. The convolution is linear in
    /// each argument, so central differences are exact up to rounding even with a large step.
    #[test]
    fn gradients_match_finite_differences_portable() {
        crate::model::ops::simd::portable_only(gradients_match_finite_differences_check);
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradients_match_finite_differences_check();
    }

    fn gradients_match_finite_differences_check() {
        for (s, n) in shapes() {
            let x = lcg_values(s.in_len(n), 4);
            let w = lcg_values(s.weight_len(), 5);
            let b = lcg_values(s.cout, 6);
            let r = lcg_values(s.out_len(n), 7);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                direct(&s, n, x, w, b)
                    .iter()
                    .zip(&r)
                    .map(|(y, r)| y * *r as f64)
                    .sum()
            };
            let (mut dx, mut dw, mut db) =
                (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.cout]);
            let mut scratch = ConvScratch::default();
            backward(
                &s,
                n,
                &x,
                &w,
                &r,
                &mut dw,
                Some(&mut db),
                Some(&mut dx),
                &mut scratch,
            );
            let h = 0.5f32;
            let fd = |v: &[f32], i: usize, f: &dyn Fn(&[f32]) -> f64| {
                let (mut p, mut m) = (v.to_vec(), v.to_vec());
                p[i] += h;
                m[i] -= h;
                (f(&p) - f(&m)) / (2.0 * h as f64)
            };
            for (i, &g) in dx.iter().enumerate() {
                assert_close(
                    g,
                    fd(&x, i, &|x| loss(x, &w, &b)),
                    &format!("{s:?} dx[{i}]"),
                );
            }
            for (i, &g) in dw.iter().enumerate() {
                assert_close(
                    g,
                    fd(&w, i, &|w| loss(&x, w, &b)),
                    &format!("{s:?} dw[{i}]"),
                );
            }
            for (i, &g) in db.iter().enumerate() {
                assert_close(
                    g,
                    fd(&b, i, &|b| loss(&x, &w, b)),
                    &format!("{s:?} db[{i}]"),
                );
            }
        }
    }
}
