// Arithmetic on parameter handles, so what the algorithms do to a task's parameters between its
// batched calls stays on the device. Each op rounds as the CPU path's f32 arithmetic does (one
// rounding per operation, no fused multiply-add), so results equal the CPU path's bit for bit.

// y = x − lr·g, one thread per element: an SGD step (`algo::inner::sgd_step`).
extern "C" __global__ void ml_sgd_step(const float *x, const float *g, float *y, float lr, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(x[i], -__fmul_rn(lr, g[i]));
}
