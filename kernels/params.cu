// Arithmetic on parameter handles, so what the algorithms do to a task's parameters between its
// batched calls stays on the device. Each op rounds as the CPU path's f32 arithmetic does (one
// rounding per operation, no fused multiply-add), so results equal the CPU path's bit for bit.

// y = x − lr·g, one thread per element: an SGD step (`algo::inner::sgd_step`).
extern "C" __global__ void ml_sgd_step(const float *x, const float *g, float *y, float lr, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(x[i], -__fmul_rn(lr, g[i]));
}

// The second-order MAML backward vector `v` (f64, as `model::hvp` keeps it on the host) and the
// finite-difference HVP's arithmetic on it, each rounding as the host's f64 code does.

// y = (double)x: a query gradient widened into a backward vector (exact).
extern "C" __global__ void ml_widen(const float *x, double *y, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = (double)x[i];
}

// partial[b] = the sum of v[i]² over block b (`block` elements), in index order: one thread per
// block, so the sum's order is `model::hvp::sum_sq`'s and the host adds the partials in order.
extern "C" __global__ void ml_sumsq_blocks(const double *v, double *partial, int block, int n) {
    const long long blocks = (n + (long long)block - 1) / block;
    for (long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x; b < blocks;
         b += (long long)gridDim.x * blockDim.x) {
        const long long end = (b + 1) * block < n ? (b + 1) * block : n;
        double s = 0.0;
        for (long long i = b * block; i < end; ++i)
            s = __dadd_rn(s, __dmul_rn(v[i], v[i]));
        partial[b] = s;
    }
}

// y = (float)((double)x + s·v): a shifted point θ ± r·v of the HVP (s = ±r).
extern "C" __global__ void ml_shift(const float *x, const double *v, float *y, double s, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = __double2float_rn(__dadd_rn((double)x[i], __dmul_rn(s, v[i])));
}

// v = v − lr·(gp − gm)/two_r: one step back through an inner SGD step, H·v by central
// differences of the gradients at θ ± r·v.
extern "C" __global__ void ml_step_back(double *v, const float *gp, const float *gm, double two_r,
                                        double lr, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const double h = __ddiv_rn(__dsub_rn((double)gp[i], (double)gm[i]), two_r);
        v[i] = __dsub_rn(v[i], __dmul_rn(lr, h));
    }
}
