//! A bounds-checked front door to the `gemm` crate.
//!
//! Each worker thread owns one evaluator and the machine's cores are shared out between workers,
//! so every product here runs on the calling thread only (`Parallelism::None`).

use gemm::Parallelism;

/// Where a matrix's elements sit in its slice: element `(i, j)` is at `i·rs + j·cs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strided {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Strided {
    pub fn row_major(rows: usize, cols: usize) -> Strided {
        Strided {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The same memory read as its transpose.
    pub fn t(self) -> Strided {
        Strided {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Elements of the slice the matrix reaches (one past its last element).
    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `dst = a·b`, or `dst += a·b` when `accumulate`.
///
/// Panics when the shapes disagree or a matrix reaches past its slice, which is what makes the
/// raw-pointer call below sound. `dst` must not overlap `a` or `b` (the borrow rules see to it).
pub fn matmul(
    dst: &mut [f32],
    d: Strided,
    accumulate: bool,
    a: &[f32],
    sa: Strided,
    b: &[f32],
    sb: Strided,
) {
    assert_eq!((d.rows, d.cols), (sa.rows, sb.cols), "gemm: result shape");
    assert_eq!(sa.cols, sb.rows, "gemm: inner dimensions");
    assert!(d.span() <= dst.len(), "gemm: dst out of bounds");
    assert!(sa.span() <= a.len(), "gemm: lhs out of bounds");
    assert!(sb.span() <= b.len(), "gemm: rhs out of bounds");
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    if sa.cols == 0 {
        if !accumulate {
            for i in 0..d.rows {
                for j in 0..d.cols {
                    dst[i * d.rs + j * d.cs] = 0.0;
                }
            }
        }
        return;
    }
    if sb.cs == 1 && d.cs == 1 && super::avx512::available() {
        let o = super::avx512::Operands {
            m: d.rows,
            n: d.cols,
            k: sa.cols,
            a: a.as_ptr(),
            a_rs: sa.rs,
            a_cs: sa.cs,
            b: b.as_ptr(),
            b_rs: sb.rs,
            d: dst.as_mut_ptr(),
            d_rs: d.rs,
        };
        // SAFETY: the CPU has AVX-512F; the spans were checked above and `dst` is exclusive.
        unsafe { super::avx512::matmul(&o, accumulate) };
        return;
    }
    // SAFETY: every index the kernel touches lies inside the spans checked above; a `&mut`
    // destination cannot alias the shared inputs.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            sa.cols,
            dst.as_mut_ptr(),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            a.as_ptr(),
            sa.cs as isize,
            sa.rs as isize,
            b.as_ptr(),
            sb.cs as isize,
            sb.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], sa: Strided, b: &[f32], sb: Strided) -> Vec<f32> {
        let mut out = vec![0.0; sa.rows * sb.cols];
        for i in 0..sa.rows {
            for j in 0..sb.cols {
                out[i * sb.cols + j] = (0..sa.cols)
                    .map(|k| a[i * sa.rs + k * sa.cs] * b[k * sb.rs + j * sb.cs])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_naive() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..42).map(|i| (i as f32 * 0.11).cos()).collect();
        // a is 5×7 row-major; b is read as the transpose of a 6×7 row-major matrix (7×6).
        let sa = Strided::row_major(5, 7);
        let sb = Strided::row_major(6, 7).t();
        let want = naive(&a, sa, &b, sb);
        // Write into every other column of a wider buffer, then accumulate a second time.
        let d = Strided {
            rows: 5,
            cols: 6,
            rs: 13,
            cs: 2,
        };
        let mut dst = vec![7.0f32; 5 * 13];
        matmul(&mut dst, d, false, &a, sa, &b, sb);
        matmul(&mut dst, d, true, &a, sa, &b, sb);
        for i in 0..5 {
            for j in 0..6 {
                let got = dst[i * 13 + j * 2];
                assert!(
                    (got - 2.0 * want[i * 6 + j]).abs() < 1e-5,
                    "({i},{j}) {got}"
                );
            }
        }
        assert_eq!(dst[1], 7.0, "gaps between columns are left alone");
    }

    /// Shapes that hit every tile size of the AVX-512 kernel, a depth beyond one pass, and
    /// strided rows; compared against f64 sums.
    #[test]
    fn contiguous_rows_match_naive_portable() {
        crate::model::ops::simd::portable_only(contiguous_rows_match_naive_across_tile_edges_check);
    }

    #[test]
    fn contiguous_rows_match_naive_across_tile_edges() {
        contiguous_rows_match_naive_across_tile_edges_check();
    }

    fn contiguous_rows_match_naive_across_tile_edges_check() {
        for (m, k, n) in [
            (1, 1, 1),
            (6, 3, 64),
            (7, 5, 17),
            (13, 400, 65),
            (64, 9, 130),
            (5, 800, 49),
            (12, 2, 200),
        ] {
            let a = crate::model::ops::testing::lcg_values(m * k * 2, 1);
            let b = crate::model::ops::testing::lcg_values(k * (n + 3), 2);
            // A read as a transpose with gaps; B rows padded by 3; D rows padded by 5.
            let sa = Strided {
                rows: m,
                cols: k,
                rs: 1,
                cs: 2 * m,
            };
            let sb = Strided {
                rows: k,
                cols: n,
                rs: n + 3,
                cs: 1,
            };
            let d = Strided {
                rows: m,
                cols: n,
                rs: n + 5,
                cs: 1,
            };
            let mut dst = vec![3.0f32; m * (n + 5)];
            matmul(&mut dst, d, true, &a, sa, &b, sb);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| a[i + p * 2 * m] as f64 * b[p * (n + 3) + j] as f64)
                        .sum::<f64>()
                        + 3.0;
                    let got = dst[i * (n + 5) + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{m}x{k}x{n} ({i},{j}): {got} vs {want}"
                    );
                }
                assert!(
                    dst[i * (n + 5) + n..(i + 1) * (n + 5)]
                        .iter()
                        .all(|&v| v == 3.0),
                    "padding untouched"
                );
            }
            matmul(&mut dst, d, false, &a, sa, &b, sb);
            let want0: f64 = (0..k)
                .map(|p| a[p * 2 * m] as f64 * b[p * (n + 3)] as f64)
                .sum();
            assert!((dst[0] as f64 - want0).abs() < 1e-4 * (1.0 + want0.abs()));
        }
    }
}
