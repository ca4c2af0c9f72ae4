// The conv4 block on the GPU: im2col → (cuBLAS strided-batched SGEMM) → batch-norm statistics →
// fused BN + ReLU + 2×2 max pool, and the backward pieces. Matches `src/model/ops/` of the CPU
// path: the same float roundings where the result selects a branch (kink codes compare exactly),
// f64 accumulation for the channel sums.

// Column matrix per task `[cin·k·k, n·ho·wo]` of the per-task CNHW input `x`, zeros where the
// window reads padding. One thread per column entry.
extern "C" __global__ void ml_im2col(const float *x, float *col, int tasks, int cin, int n, int h,
                                     int w, int k, int pad, int ho, int wo) {
    const long long hw = (long long)ho * wo, cols = n * hw, kdim = (long long)cin * k * k;
    const long long total = tasks * kdim * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long c = i % cols, rt = i / cols;
        const int r = (int)(rt % kdim), t = (int)(rt / kdim);
        const int img = (int)(c / hw), p = (int)(c % hw);
        const int oy = p / wo, ox = p % wo;
        const int kx = r % k, ky = (r / k) % k, ci = r / (k * k);
        const int iy = oy + ky - pad, ix = ox + kx - pad;
        float v = 0.0f;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            v = x[(((long long)t * cin + ci) * n + img) * h * w + (long long)iy * w + ix];
        col[i] = v;
    }
}

// im2col's adjoint, as a gather (no atomics): each input position sums the column entries that
// read it, kernel offsets in ascending order. Writes `dx`.
extern "C" __global__ void ml_col2im(const float *dcol, float *dx, int tasks, int cin, int n, int h,
                                     int w, int k, int pad, int ho, int wo) {
    const long long hw = (long long)ho * wo, cols = n * hw;
    const long long total = (long long)tasks * cin * n * h * w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ix = (int)(i % w), iy = (int)((i / w) % h);
        const long long tci = i / ((long long)h * w);
        const int img = (int)(tci % n), ci = (int)((tci / n) % cin), t = (int)(tci / ((long long)n * cin));
        float s = 0.0f;
        for (int ky = 0; ky < k; ++ky) {
            const int oy = iy - ky + pad;
            if (oy < 0 || oy >= ho) continue;
            for (int kx = 0; kx < k; ++kx) {
                const int ox = ix - kx + pad;
                if (ox < 0 || ox >= wo) continue;
                const long long r = ((long long)t * cin + ci) * k * k + ky * k + kx;
                s += dcol[r * cols + img * hw + (long long)oy * wo + ox];
            }
        }
        dx[i] = s;
    }
}

// Per task and channel (block (channel, task)): mean and 1/√(biased variance + 1e-5) over the
// channel's `m` values, two-pass as the CPU path's `batchnorm::stats`, summed in f64.
extern "C" __global__ void ml_bn_stats(const float *y, float *mean, float *invstd, int tasks,
                                       int channels, int m) {
    __shared__ double buf[ML_REDUCE_THREADS];
    const int ch = blockIdx.x, t = blockIdx.y;
    const float *row = y + ((long long)t * channels + ch) * m;
    double s = 0.0;
    for (int i = threadIdx.x; i < m; i += ML_REDUCE_THREADS) s += (double)row[i];
    const double mm = m > 0 ? (double)m : 1.0;
    const float mu = (float)(ml_block_sum(s, buf) / mm);
    double q = 0.0;
    for (int i = threadIdx.x; i < m; i += ML_REDUCE_THREADS) {
        const double d = (double)(row[i] - mu);
        q += d * d;
    }
    const double var = ml_block_sum(q, buf) / mm;
    if (threadIdx.x == 0) {
        mean[t * channels + ch] = mu;
        invstd[t * channels + ch] = (float)(1.0 / sqrt(var + (double)1e-5f));
    }
}

// The affine map in front of the pool: batch norm's `γ·invstd, β − mean·γ·invstd`, or the bias.
__device__ __forceinline__ void ml_affine(int batch_norm, int i, const float *mean,
                                          const float *invstd, const float *gamma,
                                          const float *beta, const float *bias, float *scale,
                                          float *shift) {
    if (batch_norm) {
        const float sc = __fmul_rn(gamma[i], invstd[i]);
        *scale = sc;
        *shift = __fadd_rn(beta[i], -__fmul_rn(mean[i], sc));
    } else {
        *scale = 1.0f;
        *shift = bias[i];
    }
}

// Fused affine + ReLU + 2×2 max pool (stride 2, a trailing odd row/column dropped) over the conv
// output `y` (per task `[channels, n, h, w]`), one thread per pooled output. `replay == 0`
// chooses each window's branch and records it in `code` (winner `2·dy + dx`, or ML_INACTIVE
// where the ReLU clipped it: `maxpool::forward_plane`); `replay != 0` takes the branch from
// `code` (`maxpool::forward_plane_fixed`).
extern "C" __global__ void ml_bn_relu_pool_fwd(const float *y, const float *mean, const float *invstd,
                                               const float *gamma, const float *beta,
                                               const float *bias, float *out, unsigned char *code,
                                               int tasks, int channels, int n, int h, int w,
                                               int batch_norm, int replay) {
    const int ho = h / 2, wo = w / 2;
    const long long total = (long long)tasks * channels * n * ho * wo;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int px = (int)(i % wo), py = (int)((i / wo) % ho);
        const long long plane_idx = i / ((long long)ho * wo); // (t, ch, img)
        const int tc = (int)(plane_idx / n);                   // t·channels + ch
        float scale, shift;
        ml_affine(batch_norm, tc, mean, invstd, gamma, beta, bias, &scale, &shift);
        const float *p = y + plane_idx * h * w + (long long)(2 * py) * w + 2 * px;
        if (replay) {
            const unsigned char c = code[i];
            out[i] = c == ML_INACTIVE ? 0.0f
                                      : __fadd_rn(__fmul_rn(scale, p[(c >> 1) * w + (c & 1)]), shift);
            continue;
        }
        const float z00 = __fadd_rn(__fmul_rn(scale, p[0]), shift);
        const float z01 = __fadd_rn(__fmul_rn(scale, p[1]), shift);
        const float z10 = __fadd_rn(__fmul_rn(scale, p[w]), shift);
        const float z11 = __fadd_rn(__fmul_rn(scale, p[w + 1]), shift);
        float m0 = z00, m1 = z10, m;
        int k0 = 0, k1 = 2, best;
        if (z01 > z00) { m0 = z01; k0 = 1; }
        if (z11 > z10) { m1 = z11; k1 = 3; }
        if (m1 > m0) { m = m1; best = k1; } else { m = m0; best = k0; }
        const bool active = m > 0.0f || m != m;
        out[i] = active ? m : 0.0f;
        code[i] = active ? (unsigned char)best : (unsigned char)ML_INACTIVE;
    }
}

// Per task and channel (block (channel, task)), from the pooled gradient `g`: Σg and Σg·y over
// the windows' winners (f64, fixed order), then what the element-wise backward needs:
// `coef[3·(t·channels+ch) + {0,1,2}]` = (offset, slope, winner scale) such that
// ∂L/∂y = offset + slope·y (+ scale·g at a winner) — `batchnorm::spread_terms` — and the
// parameter gradients: ∂γ, ∂β with batch norm (∂bias = 0: the mean cancels it), ∂bias without.
extern "C" __global__ void ml_bn_pool_bwd_sums(const float *y, const unsigned char *code,
                                               const float *g, const float *mean,
                                               const float *invstd, const float *gamma,
                                               float *dgamma, float *dbeta, float *dbias,
                                               float *coef, int tasks, int channels, int n, int h,
                                               int w, int batch_norm) {
    __shared__ double buf[ML_REDUCE_THREADS];
    const int ch = blockIdx.x, t = blockIdx.y, tc = t * channels + ch;
    const int ho = h / 2, wo = w / 2;
    const long long pooled = (long long)n * ho * wo;
    const float *yc = y + (long long)tc * n * h * w;
    const unsigned char *kc = code + (long long)tc * pooled;
    const float *gc = g + (long long)tc * pooled;
    double sg = 0.0, sgy = 0.0;
    for (long long i = threadIdx.x; i < pooled; i += ML_REDUCE_THREADS) {
        const unsigned char c = kc[i];
        if (c == ML_INACTIVE) continue;
        const int px = (int)(i % wo), py = (int)((i / wo) % ho), img = (int)(i / ((long long)ho * wo));
        const float v = yc[(long long)img * h * w + (long long)(2 * py + (c >> 1)) * w + 2 * px + (c & 1)];
        sg += (double)gc[i];
        sgy += (double)gc[i] * (double)v;
    }
    sg = ml_block_sum(sg, buf);
    sgy = ml_block_sum(sgy, buf);
    if (threadIdx.x != 0) return;
    if (batch_norm) {
        const float mu = mean[tc], is = invstd[tc], ga = gamma[tc];
        const double dz_xhat = (double)is * (sgy - (double)mu * sg);
        dgamma[tc] = (float)dz_xhat;
        dbeta[tc] = (float)sg;
        dbias[tc] = 0.0f;
        const double m = (double)(n * h * w > 0 ? n * h * w : 1);
        const double kk = (double)__fmul_rn(ga, is);
        const float per_dz = (float)(kk * sg / m);
        const float per_xhat = (float)(kk * dz_xhat / m);
        const float slope = __fmul_rn(-per_xhat, is);
        coef[3 * tc] = __fadd_rn(-per_dz, -__fmul_rn(slope, mu));
        coef[3 * tc + 1] = slope;
        coef[3 * tc + 2] = __fmul_rn(ga, is);
    } else {
        dbias[tc] = (float)sg;
        coef[3 * tc] = 0.0f;
        coef[3 * tc + 1] = 0.0f;
        coef[3 * tc + 2] = 1.0f;
    }
}

// ∂L/∂y for every conv output (one thread each): `offset + slope·y`, plus `scale·g` where this
// position won its window (`maxpool::backward`). Positions in no window get the spread term only.
extern "C" __global__ void ml_bn_pool_bwd(const float *y, const unsigned char *code, const float *g,
                                          const float *coef, float *dy, int tasks, int channels,
                                          int n, int h, int w) {
    const int ho = h / 2, wo = w / 2;
    const long long total = (long long)tasks * channels * n * h * w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ix = (int)(i % w), iy = (int)((i / w) % h);
        const long long plane_idx = i / ((long long)h * w);
        const int tc = (int)(plane_idx / n);
        const float offset = coef[3 * tc], slope = coef[3 * tc + 1], scale = coef[3 * tc + 2];
        float v = __fadd_rn(offset, __fmul_rn(slope, y[i]));
        const int py = iy >> 1, px = ix >> 1;
        if (py < ho && px < wo) {
            const long long o = plane_idx * ho * wo + (long long)py * wo + px;
            const unsigned char c = code[o];
            if (c != ML_INACTIVE && c == (unsigned char)(2 * (iy & 1) + (ix & 1)))
                v = __fadd_rn(v, __fmul_rn(scale, g[o]));
        }
        dy[i] = v;
    }
}

// Swaps the first two axes of every task's `[d0, d1, inner]` tensor `x` into `y` (`[d1, d0,
// inner]`): a batch's images (`[n, c, h·w]`) into the blocks' CNHW and back, and the last block's
// output (`[c, n, h·w]`) into the head's rows (`[n, c·h·w]`, PyTorch's `flatten` order). One
// thread per element of `y`.
extern "C" __global__ void ml_swap01(const float *x, float *y, int tasks, int d0, int d1,
                                     int inner) {
    const long long per = (long long)d0 * d1 * inner, total = tasks * per;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long t = i / per, r = i % per;
        const int k = (int)(r % inner);
        const long long ji = r / inner;
        const int i0 = (int)(ji % d0), i1 = (int)(ji / d0);
        y[i] = x[t * per + ((long long)i0 * d1 + i1) * inner + k];
    }
}
