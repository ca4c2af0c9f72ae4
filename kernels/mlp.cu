// The MLP's element-wise pieces around the per-task matrix products (cuBLAS): bias + activation
// forward with ReLU kinks recorded or replayed, and its backward with the bias gradient reduced
// per task and column in a fixed order. Matrices are per task `[rows, cols]`, row-major.

#define ML_ACT_RELU 0
#define ML_ACT_TANH 1
// No activation (the head): h = x + bias.
#define ML_ACT_NONE 2
// `kinks`: what the ReLU does with `code` (one byte per activation, 1 = passes, as the CPU
// path's `Kinks` patterns): choose freely, record the choice, or replay a recorded one.
#define ML_KINKS_FREE 0
#define ML_KINKS_RECORD 1
#define ML_KINKS_REPLAY 2

// h = act(x + bias), one thread per element. `bias` is per task `[cols]`.
extern "C" __global__ void ml_bias_act_fwd(const float *x, const float *bias, float *h,
                                           unsigned char *code, int tasks, int rows, int cols,
                                           int act, int kinks) {
    const long long total = (long long)tasks * rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int c = (int)(i % cols), t = (int)(i / ((long long)rows * cols));
        const float z = __fadd_rn(x[i], bias[t * cols + c]);
        if (act == ML_ACT_TANH || act == ML_ACT_NONE) {
            h[i] = act == ML_ACT_TANH ? tanhf(z) : z;
            continue;
        }
        bool on = z > 0.0f;
        if (kinks == ML_KINKS_REPLAY) on = code[i] != 0;
        else if (kinks == ML_KINKS_RECORD) code[i] = on ? 1 : 0;
        // Replayed, an "off" unit contributes 0 whatever its value; a free ReLU keeps NaN.
        h[i] = kinks == ML_KINKS_FREE ? (z > 0.0f ? z : (z != z ? z : 0.0f)) : (on ? z : 0.0f);
    }
}

// Backward of `ml_bias_act_fwd` given its output `h` and `dh`: `dz = dh·act'(z)` into `dz`,
// and ∂bias per task and column (block (column, task)), summed over rows in a fixed order.
// With ReLU, `code` (recorded or replayed) decides where the gradient passes when
// `kinks != ML_KINKS_FREE`; a free ReLU passes where its output is positive.
extern "C" __global__ void ml_bias_act_bwd(const float *h, const float *dh, const unsigned char *code,
                                           float *dz, float *dbias, int tasks, int rows, int cols,
                                           int act, int kinks) {
    __shared__ double buf[ML_REDUCE_THREADS];
    const int c = blockIdx.x, t = blockIdx.y;
    double s = 0.0;
    for (int r = threadIdx.x; r < rows; r += ML_REDUCE_THREADS) {
        const long long i = ((long long)t * rows + r) * cols + c;
        float d;
        if (act == ML_ACT_TANH) {
            d = __fmul_rn(dh[i], __fadd_rn(1.0f, -__fmul_rn(h[i], h[i])));
        } else if (act == ML_ACT_NONE) {
            d = dh[i];
        } else {
            const bool on = kinks == ML_KINKS_FREE ? h[i] > 0.0f : code[i] != 0;
            d = on ? dh[i] : 0.0f;
        }
        dz[i] = d;
        s += (double)d;
    }
    s = ml_block_sum(s, buf);
    if (threadIdx.x == 0) dbias[t * cols + c] = (float)s;
}
