//! Strided-batched SGEMM with cuBLAS's semantics (column-major, `op` per operand, leading
//! dimensions and batch strides), the host's reference implementation of it, and the mapping
//! of the row-major per-task products the ops need onto it.

use super::GpuError;

/// One `cublasSgemmStridedBatched` call: per batch entry `i`,
/// `C_i ← α·op(A_i)·op(B_i) + β·C_i`, with `op(A_i)` `m×k`, `op(B_i)` `k×n`, `C_i` `m×n`, all
/// column-major, `X_i` starting at `i·stride_x`. With `β = 0`, `C` is not read (cuBLAS's rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub lda: usize,
    pub stride_a: usize,
    pub ldb: usize,
    pub stride_b: usize,
    pub beta: f32,
    pub ldc: usize,
    pub stride_c: usize,
    pub batch: usize,
}

/// A row-major matrix operand of a per-task product: `rows×cols` as stored, used transposed
/// or not.
#[derive(Debug, Clone, Copy)]
pub struct RowMajor {
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl RowMajor {
    pub fn new(rows: usize, cols: usize) -> RowMajor {
        RowMajor {
            rows,
            cols,
            transposed: false,
        }
    }
    pub fn t(self) -> RowMajor {
        RowMajor {
            transposed: !self.transposed,
            ..self
        }
    }
    /// Rows and columns as used.
    fn used(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }
}

impl Gemm {
    /// `C_t = α·A_t·B_t + β·C_t` for `batch` tasks, each operand row-major and contiguous per task
    /// (`A_t` at `t·|A|`). A row-major matrix is its transpose in column-major, so this is
    /// cuBLAS's `Cᵀ = Bᵀ·Aᵀ`: the call takes the operands swapped, `(B, A)` (see `ops::matmul`).
    pub fn row_major(batch: usize, a: RowMajor, b: RowMajor, alpha: f32, beta: f32) -> Gemm {
        let (m, k) = a.used();
        let (kb, n) = b.used();
        assert_eq!(k, kb, "inner dimensions of a per-task product");
        Gemm {
            trans_a: b.transposed,
            trans_b: a.transposed,
            m: n,
            n: m,
            k,
            alpha,
            lda: b.cols,
            stride_a: b.rows * b.cols,
            ldb: a.cols,
            stride_b: a.rows * a.cols,
            beta,
            ldc: n,
            stride_c: m * n,
            batch,
        }
    }

    /// Floats each operand must hold: `(A, B, C)`.
    pub fn spans(&self) -> (usize, usize, usize) {
        let span = |ld: usize, stride: usize, rows: usize, cols: usize| {
            if self.batch == 0 || rows == 0 || cols == 0 {
                0
            } else {
                (self.batch - 1) * stride + (cols - 1) * ld + rows
            }
        };
        let (ar, ac) = if self.trans_a {
            (self.k, self.m)
        } else {
            (self.m, self.k)
        };
        let (br, bc) = if self.trans_b {
            (self.n, self.k)
        } else {
            (self.k, self.n)
        };
        (
            span(self.lda, self.stride_a, ar, ac),
            span(self.ldb, self.stride_b, br, bc),
            span(self.ldc, self.stride_c, self.m, self.n),
        )
    }

    /// Refuses operands shorter than the call reads or writes, or leading dimensions below the
    /// rows stored (cuBLAS's own rule).
    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<(), GpuError> {
        let (ar, br) = (
            if self.trans_a { self.k } else { self.m },
            if self.trans_b { self.n } else { self.k },
        );
        let (sa, sb, sc) = self.spans();
        let bad = if self.lda < ar.max(1) || self.ldb < br.max(1) || self.ldc < self.m.max(1) {
            Some("a leading dimension is below its matrix's rows".to_string())
        } else if a < sa || b < sb || c < sc {
            Some(format!(
                "operands of {a}, {b}, {c} floats; the call needs {sa}, {sb}, {sc}"
            ))
        } else {
            None
        };
        match bad {
            Some(detail) => Err(GpuError::Size {
                op: "sgemm",
                detail,
            }),
            None => Ok(()),
        }
    }
}

/// The host's strided-batched SGEMM: cuBLAS's column-major semantics, accumulating each dot
/// product in order in f32.
pub fn reference(g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) -> Result<(), GpuError> {
    g.check(a.len(), b.len(), c.len())?;
    for i in 0..g.batch {
        let (a, b) = (&a[i * g.stride_a..], &b[i * g.stride_b..]);
        let c = &mut c[i * g.stride_c..];
        for col in 0..g.n {
            for row in 0..g.m {
                let mut s = 0.0f32;
                for p in 0..g.k {
                    let x = if g.trans_a {
                        a[p + row * g.lda]
                    } else {
                        a[row + p * g.lda]
                    };
                    let y = if g.trans_b {
                        b[col + p * g.ldb]
                    } else {
                        b[p + col * g.ldb]
                    };
                    s += x * y;
                }
                let out = &mut c[row + col * g.ldc];
                *out = if g.beta == 0.0 {
                    g.alpha * s
                } else {
                    g.alpha * s + g.beta * *out
                };
            }
        }
    }
    Ok(())
}
