// Shared by every kernel file: put in front of each for NVRTC, included once on the host.
//
// Layouts: every tensor is a stack of `tasks` equal per-task tensors, task-major, so one launch
// serves the whole meta-batch and each task keeps its own weights. Activations are per task
// `[channels, images, h, w]` (the CPU path's CNHW), matrices row-major.
#ifndef ML_COMMON_CUH
#define ML_COMMON_CUH

// The max-pool window's winner was clipped by the ReLU (the CPU path's `maxpool::INACTIVE`).
#define ML_INACTIVE 255
// Threads per block of every reduction kernel; a power of two, a multiple of the warp.
#define ML_REDUCE_THREADS 256
#define ML_FULL_MASK 0xffffffffu

// Block-wide sum in a fixed order (no atomics): strided partial sums, a shared-memory tree down
// to one warp, then shuffles. Every thread gets the total. `buf` holds ML_REDUCE_THREADS values.
__device__ __forceinline__ double ml_block_sum(double v, double *buf) {
    const unsigned tid = threadIdx.x;
    buf[tid] = v;
    __syncthreads();
    for (unsigned s = ML_REDUCE_THREADS / 2; s >= 32; s >>= 1) {
        if (tid < s) buf[tid] += buf[tid + s];
        __syncthreads();
    }
    double x = 0.0;
    if (tid < 32) {
        x = buf[tid];
        for (unsigned d = 16; d > 0; d >>= 1) x += __shfl_down_sync(ML_FULL_MASK, x, d);
        if (tid == 0) buf[0] = x;
    }
    __syncthreads();
    const double total = buf[0];
    // The buffer is reused by the caller's next sum.
    __syncthreads();
    return total;
}

#endif
