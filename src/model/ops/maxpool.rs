//! 2×2 max pooling with stride 2 (floor: a trailing odd row or column is dropped), fused with the
//! per-channel affine map and ReLU in front of it, so the pre-pool activation is never stored.
//!
//! ReLU commutes with max, so `relu(max(w))` is computed as `max(w)` then ReLU, and each window
//! records only which of its four positions won.

/// The window's winner was clipped by the ReLU: no gradient flows back.
pub const INACTIVE: u8 = u8::MAX;

/// Pools one `h×w` plane of `scale·v + shift` and applies ReLU. `code[p]` is the winning position
/// `2·dy + dx` of output `p`, or [`INACTIVE`].
pub fn forward_plane(plane: &[f32], h: usize, w: usize, scale: f32, shift: f32, out: &mut [f32], code: &mut [u8]) {
    let (ho, wo) = (h / 2, w / 2);
    debug_assert_eq!(out.len(), ho * wo);
    for py in 0..ho {
        let r0 = &plane[2 * py * w..][..w];
        let r1 = &plane[(2 * py + 1) * w..][..w];
        let out = &mut out[py * wo..][..wo];
        let code = &mut code[py * wo..][..wo];
        for px in 0..wo {
            let c = [r0[2 * px], r0[2 * px + 1], r1[2 * px], r1[2 * px + 1]].map(|v| scale * v + shift);
            let mut best = 0;
            for i in 1..4 {
                // A NaN wins, so a diverged network shows up as a NaN loss rather than a silent 0.
                if c[i] > c[best] || c[i].is_nan() {
                    best = i;
                }
            }
            if c[best] > 0.0 || c[best].is_nan() {
                out[px] = c[best];
                code[px] = best as u8;
            } else {
                out[px] = 0.0;
                code[px] = INACTIVE;
            }
        }
    }
}

/// Calls `f(pooled index, plane index)` for every output of an `h×w` plane that passes gradient.
#[inline]
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
