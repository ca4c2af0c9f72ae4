//! The GPU engine's kernels (`kernels/*.cu`), run on the CPU under `kernels/emu/cuda_emu.hpp`,
//! against the CPU path's ops (`src/model/ops`) on random inputs with several tasks at once.
//!
//! Tolerances: kink codes compare exactly; values computed with the same float ops in the same
//! order compare within 1e-6 relative; sums and products whose order differs (GEMM, f64 channel
//! sums, the gradients built from them) within 1e-5 (forward) and 1e-4 (backward), relative to
//! the norm of the CPU path's result.

use dfdx::prelude::*;
use metalab::gpu::gemm::{reference, Gemm, RowMajor};
use metalab::gpu::ops::{self, Affine, ConvGeom, Kinks, PoolGrads};
use metalab::gpu::{Backend, Host};
use metalab::model::ops::block::{BlockParams, ConvBlock, CpuBlockState};
use metalab::model::ops::conv2d::{self, ConvScratch, ConvShape};
use metalab::model::ops::{batchnorm, maxpool};
use metalab::model::Kinks as CpuKinks;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn normal(r: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(-1.0f32..1.0)).collect()
}

/// Values on a coarse grid, so that max-pool windows hold exact ties (as Omniglot's flat
/// background does) and some windows are all ≤ 0.
fn with_ties(r: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| r.gen_range(-3i32..4) as f32 * 0.25)
        .collect()
}

/// ‖a − b‖ / max(‖b‖, 1e-12).
fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    num.sqrt() / den.sqrt().max(1e-12)
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f64) {
    let e = rel(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

/// Row-major naive product of `a` (`m×k`, or `k×m` transposed) and `b`.
fn naive(a: &[f32], am: RowMajor, b: &[f32], bm: RowMajor) -> Vec<f32> {
    let at = |i: usize, j: usize| {
        if am.transposed {
            a[j * am.cols + i]
        } else {
            a[i * am.cols + j]
        }
    };
    let bt = |i: usize, j: usize| {
        if bm.transposed {
            b[j * bm.cols + i]
        } else {
            b[i * bm.cols + j]
        }
    };
    let (m, k) = if am.transposed {
        (am.cols, am.rows)
    } else {
        (am.rows, am.cols)
    };
    let n = if bm.transposed { bm.rows } else { bm.cols };
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| at(i, p) as f64 * bt(p, j) as f64)
                .sum::<f64>() as f32;
        }
    }
    c
}

#[test]
fn reference_sgemm_has_cublas_column_major_semantics() {
    // A 2×3 column-major A = [[1,3,5],[2,4,6]] times a 3×2 B = [[1,4],[2,5],[3,6]].
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut c = [100.0f32; 4];
    let g = Gemm {
        trans_a: false,
        trans_b: false,
        m: 2,
        n: 2,
        k: 3,
        alpha: 1.0,
        lda: 2,
        stride_a: 6,
        ldb: 3,
        stride_b: 6,
        beta: 0.0,
        ldc: 2,
        stride_c: 4,
        batch: 1,
    };
    reference(&g, &a, &b, &mut c).unwrap();
    // Column-major result [[22, 49], [28, 64]]; β = 0 ignores C's old contents.
    assert_eq!(c, [22.0, 28.0, 49.0, 64.0]);
    // β = 1 accumulates, α scales.
    let mut c2 = [1.0f32; 4];
    reference(
        &Gemm {
            alpha: 2.0,
            beta: 1.0,
            ..g
        },
        &a,
        &b,
        &mut c2,
    )
    .unwrap();
    assert_eq!(c2, [45.0, 57.0, 99.0, 129.0]);
    // A too-short operand is refused, not read past.
    assert!(reference(&g, &a[..5], &b, &mut c).is_err());
}

#[test]
fn row_major_products_map_onto_strided_batched_sgemm() {
    let mut r = rng(1);
    let (tasks, m, k, n) = (3, 5, 7, 4);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let am = if ta {
            RowMajor::new(k, m).t()
        } else {
            RowMajor::new(m, k)
        };
        let bm = if tb {
            RowMajor::new(n, k).t()
        } else {
            RowMajor::new(k, n)
        };
        let a = normal(&mut r, tasks * m * k);
        let b = normal(&mut r, tasks * k * n);
        let mut c = vec![f32::NAN; tasks * m * n];
        // cuBLAS's call takes the row-major operands swapped.
        Host.sgemm(&Gemm::row_major(tasks, am, bm, 1.0, 0.0), &b, &a, &mut c)
            .unwrap();
        let mut c2 = vec![f32::NAN; tasks * m * n];
        ops::matmul(&Host, tasks, &a, am, &b, bm, &mut c2).unwrap();
        assert_eq!(c, c2);
        for t in 0..tasks {
            let want = naive(&a[t * m * k..][..m * k], am, &b[t * k * n..][..k * n], bm);
            close("per-task product", &c[t * m * n..][..m * n], &want, 1e-6);
        }
    }
}

fn geoms() -> Vec<ConvGeom> {
    vec![
        ConvGeom {
            tasks: 2,
            cin: 1,
            cout: 4,
            n: 3,
            h: 8,
            w: 8,
        },
        ConvGeom {
            tasks: 3,
            cin: 3,
            cout: 5,
            n: 2,
            h: 7,
            w: 5,
        },
        ConvGeom {
            tasks: 1,
            cin: 2,
            cout: 3,
            n: 4,
            h: 6,
            w: 9,
        },
    ]
}

fn shape(g: &ConvGeom) -> ConvShape {
    ConvShape::same3(g.cin, g.cout, g.h, g.w)
}

/// Task `t`'s slice of a task-major buffer of `len` values per task.
fn task(v: &[f32], t: usize, len: usize) -> &[f32] {
    &v[t * len..][..len]
}

#[test]
fn conv_forward_and_backward_match_the_cpu_conv() {
    let h = Host;
    for (i, g) in geoms().into_iter().enumerate() {
        let mut r = rng(10 + i as u64);
        let s = shape(&g);
        let (il, wl, ol) = (s.in_len(g.n), s.weight_len(), s.out_len(g.n));
        let x = normal(&mut r, g.in_len());
        let w = normal(&mut r, g.weight_len());
        let dy = normal(&mut r, g.conv_len());
        let mut col = h.zeros_f32(g.col_len()).unwrap();
        let mut y = h.zeros_f32(g.conv_len()).unwrap();
        ops::conv_forward(&h, &g, &x, &w, &mut col, &mut y).unwrap();
        let (mut dw, mut dcol, mut dx) = (
            vec![0.0; g.weight_len()],
            vec![0.0; g.col_len()],
            vec![0.0; g.in_len()],
        );
        ops::conv_backward(&h, &g, &col, &w, &dy, &mut dw, Some((&mut dcol, &mut dx))).unwrap();
        // From the input, recomputing the column matrix into one buffer: the same bits.
        let (mut dw2, mut col2, mut dx2) = (
            vec![0.0; g.weight_len()],
            vec![0.0; g.col_len()],
            vec![0.0; g.in_len()],
        );
        ops::conv_backward_from_input(&h, &g, &x, &w, &dy, &mut col2, &mut dw2, Some(&mut dx2))
            .unwrap();
        assert_eq!((&dw2, &dx2), (&dw, &dx), "{g:?}");
        for t in 0..g.tasks {
            let mut scratch = ConvScratch::default();
            let mut want = vec![0.0; ol];
            conv2d::forward(
                &s,
                g.n,
                task(&x, t, il),
                task(&w, t, wl),
                None,
                &mut want,
                &mut scratch,
            );
            close("conv output", task(&y, t, ol), &want, 1e-5);
            let (mut want_dw, mut want_dx) = (vec![0.0; wl], vec![0.0; il]);
            conv2d::backward(
                &s,
                g.n,
                task(&x, t, il),
                task(&w, t, wl),
                task(&dy, t, ol),
                &mut want_dw,
                None,
                Some(&mut want_dx),
                &mut scratch,
            );
            close("∂weights", task(&dw, t, wl), &want_dw, 1e-5);
            close("∂input", task(&dx, t, il), &want_dx, 1e-5);
        }
    }
}

/// Per task and channel, the CPU path's statistics and pool of `y`, codes included.
struct CpuPool {
    mean: Vec<f32>,
    invstd: Vec<f32>,
    out: Vec<f32>,
    code: Vec<u8>,
}

fn cpu_pool(
    g: &ConvGeom,
    y: &[f32],
    gamma: &[f32],
    beta: &[f32],
    bias: &[f32],
    bn: bool,
) -> CpuPool {
    let (plane, pooled) = (g.h * g.w, (g.h / 2) * (g.w / 2));
    let mut p = CpuPool {
        mean: vec![0.0; g.channel_len()],
        invstd: vec![0.0; g.channel_len()],
        out: vec![0.0; g.pooled_len()],
        code: vec![0; g.pooled_len()],
    };
    for tc in 0..g.channel_len() {
        let row = &y[tc * g.n * plane..][..g.n * plane];
        let (scale, shift) = if bn {
            let (m, is) = batchnorm::stats(row);
            p.mean[tc] = m;
            p.invstd[tc] = is;
            let scale = gamma[tc] * is;
            (scale, beta[tc] - m * scale)
        } else {
            (1.0, bias[tc])
        };
        for img in 0..g.n {
            let o = (tc * g.n + img) * pooled;
            maxpool::forward_plane(
                &row[img * plane..][..plane],
                g.h,
                g.w,
                scale,
                shift,
                &mut p.out[o..o + pooled],
                &mut p.code[o..o + pooled],
            );
        }
    }
    p
}

#[test]
fn norm_relu_pool_records_the_cpu_paths_kink_codes_exactly() {
    let h = Host;
    let mut windows = 0;
    let (mut ties, mut clipped) = (0, 0);
    for (i, g) in geoms().into_iter().enumerate() {
        let mut r = rng(20 + i as u64);
        let y = with_ties(&mut r, g.conv_len());
        let gamma: Vec<f32> = (0..g.channel_len())
            .map(|_| r.gen_range(0.5f32..1.5))
            .collect();
        let beta = normal(&mut r, g.channel_len());
        let bias = normal(&mut r, g.channel_len());
        for bn in [true, false] {
            let want = cpu_pool(&g, &y, &gamma, &beta, &bias, bn);
            let affine = if bn {
                Affine::BatchNorm {
                    gamma: &gamma,
                    beta: &beta,
                }
            } else {
                Affine::Bias(&bias)
            };
            let (mut mean, mut invstd) = (vec![0.0; g.channel_len()], vec![0.0; g.channel_len()]);
            let (mut out, mut code) = (vec![0.0; g.pooled_len()], vec![0u8; g.pooled_len()]);
            ops::norm_relu_pool(
                &h,
                &g,
                &y,
                &affine,
                &mut mean,
                &mut invstd,
                &mut out,
                &mut code,
                Kinks::Record,
            )
            .unwrap();
            if bn {
                close("mean", &mean, &want.mean, 1e-6);
                close("invstd", &invstd, &want.invstd, 1e-6);
            }
            // Codes are compared exactly; with the statistics equal to the last bit the pooled
            // values are too. Where a statistic differs in its last bit a code may legitimately
            // differ only at an exact tie of the affine values, which the grid makes common:
            // so the statistics are handed over from the CPU to make the comparison exact.
            let (mut out2, mut code2) = (vec![0.0; g.pooled_len()], vec![0u8; g.pooled_len()]);
            let (m2, s2) = (want.mean.clone(), want.invstd.clone());
            let cfg_bn = if bn { 1 } else { 0 };
            unsafe {
                use metalab::gpu::Kernels;
                h.ml_bn_relu_pool_fwd(
                    metalab::gpu::Launch::elementwise(g.pooled_len(), 4),
                    &y,
                    &m2,
                    &s2,
                    &gamma,
                    &beta,
                    &bias,
                    &mut out2,
                    &mut code2,
                    g.tasks as i32,
                    g.cout as i32,
                    g.n as i32,
                    g.h as i32,
                    g.w as i32,
                    cfg_bn,
                    0,
                )
                .unwrap();
            }
            assert_eq!(code2, want.code, "kink codes (bn {bn})");
            assert_eq!(out2, want.out, "pooled values (bn {bn})");
            if !bn {
                assert_eq!(code, want.code, "kink codes without batch norm");
            }
            close("pooled values", &out, &want.out, 1e-6);
            windows += code2.len();
            clipped += code2.iter().filter(|&&c| c == ops::INACTIVE).count();
            ties += (0..g.pooled_len())
                .filter(|&o| {
                    let (wo, ho) = (g.w / 2, g.h / 2);
                    let (px, py, pl) = (o % wo, (o / wo) % ho, o / (wo * ho));
                    let b = pl * g.h * g.w + 2 * py * g.w + 2 * px;
                    let v = [y[b], y[b + 1], y[b + g.w], y[b + g.w + 1]];
                    let mx = v.iter().cloned().fold(f32::MIN, f32::max);
                    v.iter().filter(|&&x| x == mx).count() > 1
                })
                .count();
        }
    }
    // The inputs did exercise ties and the ReLU.
    assert!(
        ties > windows / 10 && clipped > windows / 10,
        "{ties} ties, {clipped} clipped of {windows}"
    );
}

#[test]
fn norm_relu_pool_replays_recorded_codes_as_the_cpu_path() {
    let h = Host;
    for (i, g) in geoms().into_iter().enumerate() {
        let mut r = rng(30 + i as u64);
        let y = normal(&mut r, g.conv_len());
        let gamma: Vec<f32> = (0..g.channel_len())
            .map(|_| r.gen_range(0.5f32..1.5))
            .collect();
        let beta = normal(&mut r, g.channel_len());
        let rec = cpu_pool(&g, &y, &gamma, &beta, &beta, true);
        // Replay the codes on moved values: the branches stay those recorded.
        let y2: Vec<f32> = y.iter().map(|v| v + r.gen_range(-0.3f32..0.3)).collect();
        let (plane, pooled) = (g.h * g.w, (g.h / 2) * (g.w / 2));
        let mut want = vec![0.0; g.pooled_len()];
        let mut mean = vec![0.0; g.channel_len()];
        let mut invstd = vec![0.0; g.channel_len()];
        for tc in 0..g.channel_len() {
            let row = &y2[tc * g.n * plane..][..g.n * plane];
            let (m, is) = batchnorm::stats(row);
            (mean[tc], invstd[tc]) = (m, is);
            let scale = gamma[tc] * is;
            for img in 0..g.n {
                let o = (tc * g.n + img) * pooled;
                maxpool::forward_plane_fixed(
                    &row[img * plane..][..plane],
                    g.h,
                    g.w,
                    scale,
                    beta[tc] - m * scale,
                    &mut want[o..o + pooled],
                    &rec.code[o..o + pooled],
                );
            }
        }
        let (mut gm, mut gs) = (vec![0.0; g.channel_len()], vec![0.0; g.channel_len()]);
        let (mut out, mut code) = (vec![0.0; g.pooled_len()], rec.code.clone());
        let affine = Affine::BatchNorm {
            gamma: &gamma,
            beta: &beta,
        };
        ops::norm_relu_pool(
            &h,
            &g,
            &y2,
            &affine,
            &mut gm,
            &mut gs,
            &mut out,
            &mut code,
            Kinks::Replay,
        )
        .unwrap();
        assert_eq!(code, rec.code, "replay leaves the codes as they were");
        close("mean", &gm, &mean, 1e-6);
        close("replayed pool", &out, &want, 1e-5);
    }
}

#[test]
fn pool_backward_matches_the_cpu_paths_backward() {
    let h = Host;
    for (i, g) in geoms().into_iter().enumerate() {
        let mut r = rng(40 + i as u64);
        let y = with_ties(&mut r, g.conv_len());
        let gamma: Vec<f32> = (0..g.channel_len())
            .map(|_| r.gen_range(0.5f32..1.5))
            .collect();
        let beta = normal(&mut r, g.channel_len());
        let gout = normal(&mut r, g.pooled_len());
        for bn in [true, false] {
            let p = cpu_pool(&g, &y, &gamma, &beta, &beta, bn);
            // The CPU path's backward (ConvBlock's, written out per channel).
            let (plane, pooled) = (g.h * g.w, (g.h / 2) * (g.w / 2));
            let mut want_dy = y.clone();
            let (mut want_dg, mut want_db, mut want_dbias) = (
                vec![0.0; g.channel_len()],
                vec![0.0; g.channel_len()],
                vec![0.0; g.channel_len()],
            );
            for tc in 0..g.channel_len() {
                let row = &mut want_dy[tc * g.n * plane..][..g.n * plane];
                let gc = &gout[tc * g.n * pooled..][..g.n * pooled];
                let code = &p.code[tc * g.n * pooled..][..g.n * pooled];
                if bn {
                    let (m, is) = (p.mean[tc], p.invstd[tc]);
                    let (sg, sgy) = maxpool::winner_sums(row, g.h, g.w, code, gc);
                    let sums = batchnorm::GradSums {
                        dz: sg,
                        dz_xhat: is as f64 * (sgy - m as f64 * sg),
                    };
                    want_dg[tc] = sums.dz_xhat as f32;
                    want_db[tc] = sums.dz as f32;
                    let (off, slope) = batchnorm::spread_terms(row.len(), m, is, gamma[tc], sums);
                    maxpool::backward(row, g.h, g.w, code, gc, off, slope, gamma[tc] * is);
                } else {
                    want_dbias[tc] =
                        maxpool::backward(row, g.h, g.w, code, gc, 0.0, 0.0, 1.0) as f32;
                }
            }
            let mut dgamma = vec![9.0; g.channel_len()];
            let mut dbeta = vec![9.0; g.channel_len()];
            let mut dbias = vec![9.0; g.channel_len()];
            let mut coef = vec![0.0; 3 * g.channel_len()];
            let mut dy = vec![0.0; g.conv_len()];
            let affine = if bn {
                Affine::BatchNorm {
                    gamma: &gamma,
                    beta: &beta,
                }
            } else {
                Affine::Bias(&beta)
            };
            ops::norm_relu_pool_backward(
                &h,
                &g,
                &y,
                &affine,
                &p.mean,
                &p.invstd,
                &p.code,
                &gout,
                PoolGrads {
                    dgamma: &mut dgamma,
                    dbeta: &mut dbeta,
                    dbias: &mut dbias,
                    coef: &mut coef,
                    dy: &mut dy,
                },
            )
            .unwrap();
            close("∂conv output", &dy, &want_dy, 1e-5);
            if bn {
                close("∂γ", &dgamma, &want_dg, 1e-5);
                close("∂β", &dbeta, &want_db, 1e-5);
                assert!(
                    dbias.iter().all(|&v| v == 0.0),
                    "batch norm cancels the bias"
                );
            } else {
                close("∂bias", &dbias, &want_dbias, 1e-5);
            }
        }
    }
}

/// The whole conv block composed from the kernels (conv, statistics, fused pool, and their
/// backward passes) against the CPU path's fused `ConvBlock` on dfdx's tape, each task with its
/// own weights: output, kink codes, and the gradients of input, weights, bias, γ and β.
#[test]
fn conv_block_from_kernels_matches_the_cpu_paths_block() {
    let h = Host;
    let dev = Cpu::default();
    for (i, g) in geoms().into_iter().enumerate() {
        for bn in [true, false] {
            let mut r = rng(50 + i as u64);
            let s = shape(&g);
            let (il, wl, ol, pl) = (
                s.in_len(g.n),
                s.weight_len(),
                s.out_len(g.n),
                g.pooled_len() / g.tasks,
            );
            let x = normal(&mut r, g.in_len());
            let w = normal(&mut r, g.weight_len());
            let bias = normal(&mut r, g.channel_len());
            let gamma: Vec<f32> = (0..g.channel_len())
                .map(|_| r.gen_range(0.5f32..1.5))
                .collect();
            let beta = normal(&mut r, g.channel_len());
            let gout = normal(&mut r, g.pooled_len());

            // GPU engine, all tasks at once.
            let affine = if bn {
                Affine::BatchNorm {
                    gamma: &gamma,
                    beta: &beta,
                }
            } else {
                Affine::Bias(&bias)
            };
            let mut col = vec![0.0; g.col_len()];
            let mut y = vec![0.0; g.conv_len()];
            ops::conv_forward(&h, &g, &x, &w, &mut col, &mut y).unwrap();
            let (mut mean, mut invstd) = (vec![0.0; g.channel_len()], vec![0.0; g.channel_len()]);
            let (mut out, mut code) = (vec![0.0; g.pooled_len()], vec![0u8; g.pooled_len()]);
            ops::norm_relu_pool(
                &h,
                &g,
                &y,
                &affine,
                &mut mean,
                &mut invstd,
                &mut out,
                &mut code,
                Kinks::Record,
            )
            .unwrap();
            let c = g.channel_len();
            let (mut dgamma, mut dbeta, mut dbias, mut coef) =
                (vec![0.0; c], vec![0.0; c], vec![0.0; c], vec![0.0; 3 * c]);
            let mut dy = vec![0.0; g.conv_len()];
            ops::norm_relu_pool_backward(
                &h,
                &g,
                &y,
                &affine,
                &mean,
                &invstd,
                &code,
                &gout,
                PoolGrads {
                    dgamma: &mut dgamma,
                    dbeta: &mut dbeta,
                    dbias: &mut dbias,
                    coef: &mut coef,
                    dy: &mut dy,
                },
            )
            .unwrap();
            let (mut dw, mut dcol, mut dx) = (
                vec![0.0; g.weight_len()],
                vec![0.0; g.col_len()],
                vec![0.0; g.in_len()],
            );
            ops::conv_backward(&h, &g, &col, &w, &dy, &mut dw, Some((&mut dcol, &mut dx))).unwrap();

            // The CPU path, task by task.
            let mut mismatched_codes = 0;
            for t in 0..g.tasks {
                let block = ConvBlock::new(s, bn, true);
                let xt = dev.tensor_from_vec(task(&x, t, il).to_vec(), (g.cin, g.n, g.h, g.w));
                let wt = dev.tensor_from_vec(task(&w, t, wl).to_vec(), (wl,));
                let bt = dev.tensor_from_vec(task(&bias, t, g.cout).to_vec(), (g.cout,));
                let gt = dev.tensor_from_vec(task(&gamma, t, g.cout).to_vec(), (g.cout,));
                let et = dev.tensor_from_vec(task(&beta, t, g.cout).to_vec(), (g.cout,));
                let p = BlockParams {
                    weight: &wt,
                    bias: &bt,
                    norm: if bn { Some((&gt, &et)) } else { None },
                };
                let xg = xt.leaky_trace();
                let state = CpuBlockState::default();
                let mut cpu_code = Vec::new();
                let o = state.forward(block, xg, &p, CpuKinks::Record(&mut cpu_code));
                close("block output", task(&out, t, pl), &o.as_vec(), 1e-5);
                mismatched_codes += cpu_code
                    .iter()
                    .zip(&code[t * pl..][..pl])
                    .filter(|(a, b)| a != b)
                    .count();
                let (ph, pw) = block.out_hw();
                let weights =
                    dev.tensor_from_vec(task(&gout, t, pl).to_vec(), (g.cout, g.n, ph, pw));
                let grads = (o * weights).sum::<(), _>().backward();
                close(
                    "block ∂input",
                    task(&dx, t, il),
                    &grads.get(&xt).as_vec(),
                    1e-4,
                );
                close(
                    "block ∂weights",
                    task(&dw, t, wl),
                    &grads.get(&wt).as_vec(),
                    1e-4,
                );
                close(
                    "block ∂bias",
                    task(&dbias, t, g.cout),
                    &grads.get(&bt).as_vec(),
                    1e-4,
                );
                if bn {
                    close(
                        "block ∂γ",
                        task(&dgamma, t, g.cout),
                        &grads.get(&gt).as_vec(),
                        1e-4,
                    );
                    close(
                        "block ∂β",
                        task(&dbeta, t, g.cout),
                        &grads.get(&et).as_vec(),
                        1e-4,
                    );
                }
                let _ = ol;
            }
            // Random real-valued inputs have no ties: the GEMMs' different summation order
            // cannot flip a branch except within rounding of one, which these seeds avoid.
            assert_eq!(
                mismatched_codes, 0,
                "kink codes of the composed block (bn {bn})"
            );
        }
    }
}

/// The SGD step on a parameter handle (`ml_sgd_step`) gives the CPU path's f32 step bit for
/// bit: one rounding for the product, one for the difference.
#[test]
fn sgd_step_on_the_device_is_the_cpu_paths_step_bit_for_bit() {
    let h = Host;
    let mut r = rng(40);
    for (len, lr) in [(1usize, 0.4f64), (1000, 0.01), (4097, 1e-3 / 3.0)] {
        let x = normal(&mut r, len);
        let g = normal(&mut r, len);
        let mut y = h.zeros_f32(len).unwrap();
        ops::sgd_step(&h, &x, &g, &mut y, lr as f32).unwrap();
        assert_eq!(
            y,
            metalab::model::lockstep::sgd_step(&x, &g, lr),
            "{len} values"
        );
    }
    let short = h.zeros_f32(3).unwrap();
    let mut y = h.zeros_f32(4).unwrap();
    assert!(ops::sgd_step(&h, &vec![0.0; 4], &short, &mut y, 0.1).is_err());
}
