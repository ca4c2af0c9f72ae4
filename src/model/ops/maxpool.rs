//! 2×2 max pooling with stride 2 (floor: a trailing odd row or column is dropped), fused with the
//! per-channel affine map and ReLU in front of it, so the pre-pool activation is never stored.
//!
//! ReLU commutes with max, so `relu(max(w))` is computed as `max(w)` then ReLU, and each window
//! records only which of its four positions won.

use super::simd::multiversion;

/// The window's winner was clipped by the ReLU: no gradient flows back.
pub const INACTIVE: u8 = u8::MAX;

multiversion! {
/// Pools one `h×w` plane of `scale·v + shift` and applies ReLU. `code[p]` is the winning position
/// `2·dy + dx` of output `p`, or [`INACTIVE`].
///
/// Written with selects rather than branches so the compiler can vectorise it. A window of NaNs
/// pools to NaN (a diverged parameter makes whole channels NaN, so divergence still reaches the
/// loss); a lone NaN beside numbers may lose to them, as a NaN compares false.
pub fn forward_plane(
    plane: &[f32],
    h: usize,
    w: usize,
    scale: f32,
    shift: f32,
    out: &mut [f32],
    code: &mut [u8],
) {
    let (ho, wo) = (h / 2, w / 2);
    debug_assert_eq!(out.len(), ho * wo);
    for py in 0..ho {
        let r0 = &plane[2 * py * w..][..2 * wo];
        let r1 = &plane[(2 * py + 1) * w..][..2 * wo];
        let out = &mut out[py * wo..][..wo];
        let code = &mut code[py * wo..][..wo];
        for (((o, k), a), b) in out
            .iter_mut()
            .zip(code.iter_mut())
            .zip(r0.chunks_exact(2))
            .zip(r1.chunks_exact(2))
        {
            let (z00, z01) = (scale * a[0] + shift, scale * a[1] + shift);
            let (z10, z11) = (scale * b[0] + shift, scale * b[1] + shift);
            let (m0, k0) = if z01 > z00 { (z01, 1) } else { (z00, 0) };
            let (m1, k1) = if z11 > z10 { (z11, 3) } else { (z10, 2) };
            let (m, best) = if m1 > m0 { (m1, k1) } else { (m0, k0) };
            let active = m > 0.0 || m.is_nan();
            *o = if active { m } else { 0.0 };
            *k = if active { best } else { INACTIVE };
        }
    }
}
}

/// [`forward_plane`] with every window's branch given by `code` instead of chosen: the pooled
/// value is the recorded winner (or 0 where the ReLU clipped it), whatever the values are now.
/// With the branches fixed the block is smooth in its parameters, which is what the
/// finite-difference Hessian-vector products of second-order MAML need (see `model::Kinks`).
pub fn forward_plane_fixed(
    plane: &[f32],
    h: usize,
    w: usize,
    scale: f32,
    shift: f32,
    out: &mut [f32],
    code: &[u8],
) {
    debug_assert_eq!(out.len(), (h / 2) * (w / 2));
    out.fill(0.0);
    for_each_winner(h, w, code, |p, i| out[p] = scale * plane[i] + shift);
}

/// Calls `f(pooled index, plane index)` for every output of an `h×w` plane that passes gradient.
#[inline(always)]
pub fn for_each_winner(h: usize, w: usize, code: &[u8], mut f: impl FnMut(usize, usize)) {
    let wo = w / 2;
    for py in 0..h / 2 {
        for px in 0..wo {
            let p = py * wo + px;
            let c = code[p];
            if c != INACTIVE {
                let (dy, dx) = ((c >> 1) as usize, (c & 1) as usize);
                f(p, (2 * py + dy) * w + 2 * px + dx);
            }
        }
    }
}

multiversion! {
/// Over one channel's planes (`h×w` each, consecutive in `row`): Σ g and Σ g·v(winner), for
/// the outputs that pass gradient `g`.
pub fn winner_sums(row: &[f32], h: usize, w: usize, code: &[u8], g: &[f32]) -> (f64, f64) {
    let (plane, pooled) = (h * w, (h / 2) * (w / 2));
    let (mut sum_g, mut sum_gv) = (0.0f64, 0.0f64);
    for ((v, k), g) in row
        .chunks_exact(plane)
        .zip(code.chunks_exact(pooled))
        .zip(g.chunks_exact(pooled))
    {
        for_each_winner(h, w, k, |p, q| {
            sum_g += g[p] as f64;
            sum_gv += g[p] as f64 * v[q] as f64;
        });
    }
    (sum_g, sum_gv)
}
}

multiversion! {
/// The gradient of one channel's planes (`h×w` each, consecutive in `row`) in a single pass:
/// each value `v` becomes `offset + slope·v`, plus `scale·g` at the winner of each output that
/// passes gradient. Returns the total of the `scale·g` added.
///
/// Batch norm's backward pass spreads a term over every position (`offset`, `slope`); without
/// batch norm both are 0. Walking window by window, rather than scattering into a dense pass,
/// keeps it to one sweep that the compiler can vectorise.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    row: &mut [f32],
    h: usize,
    w: usize,
    code: &[u8],
    g: &[f32],
    offset: f32,
    slope: f32,
    scale: f32,
) -> f64 {
    let (ho, wo) = (h / 2, w / 2);
    let (plane, pooled) = (h * w, ho * wo);
    let mut total = 0.0f64;
    for ((v, k), g) in row
        .chunks_exact_mut(plane)
        .zip(code.chunks_exact(pooled))
        .zip(g.chunks_exact(pooled))
    {
        for py in 0..ho {
            let (r0, r1) = v[2 * py * w..(2 * py + 2) * w].split_at_mut(w);
            let k = &k[py * wo..][..wo];
            let g = &g[py * wo..][..wo];
            let mut row_total = 0.0f32;
            for (((a, b), &k), &g) in r0
                .chunks_exact_mut(2)
                .zip(r1.chunks_exact_mut(2))
                .zip(k)
                .zip(g)
            {
                let d = if k == INACTIVE { 0.0 } else { scale * g };
                row_total += d;
                a[0] = offset + slope * a[0] + if k == 0 { d } else { 0.0 };
                a[1] = offset + slope * a[1] + if k == 1 { d } else { 0.0 };
                b[0] = offset + slope * b[0] + if k == 2 { d } else { 0.0 };
                b[1] = offset + slope * b[1] + if k == 3 { d } else { 0.0 };
            }
            total += row_total as f64;
            // A trailing odd column lies in no window.
            if w % 2 == 1 {
                for r in [&mut r0[w - 1], &mut r1[w - 1]] {
                    *r = offset + slope * *r;
                }
            }
        }
        // Nor does a trailing odd row.
        for r in &mut v[2 * ho * w..] {
            *r = offset + slope * *r;
        }
    }
    total
}
}
