//! An AVX-512 matrix product for the conv layers' shapes.
//!
//! The `gemm` crate only uses AVX-512 with its nightly feature, so on stable it runs 8-wide FMA
//! kernels and peaks near 80 GFLOP/s on one core here. This kernel covers the case the conv
//! layers need most, `D = A·B` with `B` and `D` contiguous along their rows (`A` any strides),
//! with 16-wide FMAs: an 8×48 tile of `D` lives in 24 registers while `k` runs.
//!
//! Only `gemm::matmul` calls it, after checking the CPU and the strides.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of `A` per tile.
const MR: usize = 8;
/// Columns of `B` per tile: three 16-float vectors. (8×48 measured ~10% faster than 6×64.)
const NR: usize = 48;
/// Depth per pass, so a `KC×NR` panel of `B` (72 KB) stays in L2 while `A`'s rows go by.
const KC: usize = 384;

/// Whether this CPU can run the kernel (and tests have not switched it off).
pub fn available() -> bool {
    super::simd::available()
}

/// Matrix arguments as raw parts: `(pointer, row stride, column stride)`.
pub struct Operands {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const f32,
    pub a_rs: usize,
    pub a_cs: usize,
    /// Row stride of `B`; its column stride is 1.
    pub b: *const f32,
    pub b_rs: usize,
    /// Row stride of `D`; its column stride is 1.
    pub d: *mut f32,
    pub d_rs: usize,
}

/// `D = A·B`, or `D += A·B` when `accumulate`.
///
/// # Safety
/// [`available`] must be true, and every element the strides describe must be in bounds, with
/// `D` overlapping neither `A` nor `B`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn matmul(o: &Operands, accumulate: bool) {
    // SAFETY: the caller guarantees AVX-512F and in-bounds, non-overlapping operands; every
    // tile below stays inside the `m×n` block the strides describe.
    unsafe {
        let mut p0 = 0;
        loop {
            let kc = KC.min(o.k - p0);
            let acc = accumulate || p0 > 0;
            for j0 in (0..o.n).step_by(NR) {
                let nc = NR.min(o.n - j0);
                let mut i0 = 0;
                while i0 < o.m {
                    let mc = MR.min(o.m - i0);
                    let a = o.a.add(i0 * o.a_rs + p0 * o.a_cs);
                    let b = o.b.add(p0 * o.b_rs + j0);
                    let d = o.d.add(i0 * o.d_rs + j0);
                    let t = Tile {
                        a,
                        a_rs: o.a_rs,
                        a_cs: o.a_cs,
                        b,
                        b_rs: o.b_rs,
                        d,
                        d_rs: o.d_rs,
                        k: kc,
                        masks: masks(nc),
                        accumulate: acc,
                    };
                    match (mc, nc.div_ceil(16)) {
                        (8, 3) => tile::<8, 3>(&t),
                        (8, 2) => tile::<8, 2>(&t),
                        (8, _) => tile::<8, 1>(&t),
                        (7, _) => tile::<7, 3>(&t),
                        (6, _) => tile::<6, 3>(&t),
                        (5, _) => tile::<5, 3>(&t),
                        (4, _) => tile::<4, 3>(&t),
                        (3, _) => tile::<3, 3>(&t),
                        (2, _) => tile::<2, 3>(&t),
                        _ => tile::<1, 3>(&t),
                    }
                    i0 += mc;
                }
            }
            p0 += kc;
            if p0 >= o.k {
                break;
            }
        }
    }
}

/// # Safety
/// Never to be called: [`available`] is false off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn matmul(_o: &Operands, _accumulate: bool) {
    unreachable!("the AVX-512 kernel is only offered on x86_64")
}

/// Lanes of the column vectors that lie inside a tile `nc` columns wide.
fn masks(nc: usize) -> [u16; NR / 16] {
    let mut m = [0u16; NR / 16];
    for (v, mask) in m.iter_mut().enumerate() {
        let lanes = nc.saturating_sub(16 * v).min(16);
        *mask = if lanes == 16 {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        };
    }
    m
}

struct Tile {
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    d: *mut f32,
    d_rs: usize,
    k: usize,
    masks: [u16; NR / 16],
    accumulate: bool,
}

/// One `R×(16·V)` tile of `D`; columns beyond the masks are neither read nor written.
///
/// # Safety
/// The CPU must have AVX-512F, and `R` rows of `t.k` elements of `A`, `t.k` rows of the masked
/// columns of `B`, and `R` rows of the masked columns of `D` must be in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize, const V: usize>(t: &Tile) {
    // SAFETY: the caller guarantees AVX-512F and that the tile's rows and masked columns lie
    // inside `A`, `B` and `D`.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..t.k {
            let bp = t.b.add(p * t.b_rs);
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, b) in bv.iter_mut().enumerate() {
                *b = _mm512_maskz_loadu_ps(t.masks[v], bp.add(16 * v));
            }
            let ap = t.a.add(p * t.a_cs);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*ap.add(i * t.a_rs));
                for (c, b) in row.iter_mut().zip(&bv) {
                    *c = _mm512_fmadd_ps(ai, *b, *c);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let dp = t.d.add(i * t.d_rs);
            for (v, c) in row.iter().enumerate() {
                let at = dp.add(16 * v);
                let mut c = *c;
                if t.accumulate {
                    c = _mm512_add_ps(c, _mm512_maskz_loadu_ps(t.masks[v], at));
                }
                _mm512_mask_storeu_ps(at, t.masks[v], c);
            }
        }
    }
}
