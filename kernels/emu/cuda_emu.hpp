// CUDA on the CPU: just enough of the CUDA C++ dialect for metalab's kernels to compile with g++
// (C++20) and run with the semantics that matter for their correctness.
//
// - A block's threads are OS threads (a crew kept between launches), so a missing barrier is a real data race (ThreadSanitizer
//   reports it; see tests/gpu_tsan.rs).
// - `__syncthreads()` is a std::barrier over the block; warp shuffles go through a per-warp
//   exchange buffer between two warp-wide barriers, so every lane must take part, as the full
//   mask of `__shfl_down_sync` demands on the GPU.
// - `__shared__` variables are function-local statics: blocks run one after another, so each
//   block sees the storage alone, and launches are serialised by one lock, so two host threads
//   never share it.
// - Rounding intrinsics (`__fmul_rn`, `__fadd_rn`, their double forms) are plain float ops: x86-64 SSE rounds each
//   op to nearest and g++ is told not to contract (-ffp-contract=off), as on the GPU they forbid.
#pragma once

#include <barrier>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace emu {

constexpr unsigned WARP = 32;

struct Block {
    dim3 idx;
    std::barrier<> *all;
    std::deque<std::barrier<>> *warps;
    // One 8-byte slot per thread: the warp exchange buffer.
    unsigned long long *exchange;
};

inline thread_local const Block *block = nullptr;
inline thread_local dim3 thread_idx;
inline dim3 grid_dim, block_dim;

inline unsigned linear_tid() {
    return thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z);
}

inline std::mutex &launch_lock() {
    static std::mutex m;
    return m;
}

// A block's threads, kept from launch to launch: starting 256 OS threads per block made the
// emulation spend its time in the kernel (clone/exit), not in the kernels. Each crew thread
// is one thread of every block, in turn; the two barriers (with the launching thread as the
// extra party) order a block's start and end, so ThreadSanitizer still sees a block's threads as
// distinct threads, synchronised only by what the kernel does between those two points.
struct Crew {
    unsigned size;
    std::barrier<> start, done;
    const std::function<void(unsigned)> *job = nullptr;

    explicit Crew(unsigned n) : size(n), start(n + 1), done(n + 1) {
        for (unsigned t = 0; t < n; ++t)
            // Detached and never stopped: a crew lives until the process exits (see `crew`).
            std::thread([this, t] {
                for (;;) {
                    start.arrive_and_wait();
                    (*job)(t);
                    done.arrive_and_wait();
                }
            }).detach();
    }

    void run(const std::function<void(unsigned)> &f) {
        job = &f;
        start.arrive_and_wait();
        done.arrive_and_wait();
    }
};

// The crew for blocks of `n` threads (kernels use one block size, so one crew normally lives).
// Crews are leaked on purpose: their threads wait on a barrier until the process exits.
inline Crew &crew(unsigned n) {
    static std::vector<Crew *> crews;
    for (Crew *c : crews)
        if (c->size == n) return *c;
    crews.push_back(new Crew(n));
    return *crews.back();
}

// Runs `kernel` over the grid: blocks in turn, each block's threads at once.
template <class F> void launch(dim3 grid, dim3 blk, F kernel) {
    std::lock_guard<std::mutex> guard(launch_lock());
    grid_dim = grid;
    block_dim = blk;
    const unsigned threads = blk.x * blk.y * blk.z;
    const unsigned warps = (threads + WARP - 1) / WARP;
    std::vector<unsigned long long> exchange(threads);
    Crew &c = crew(threads);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::barrier<> all(threads);
                std::deque<std::barrier<>> warp_bars;
                for (unsigned w = 0; w < warps; ++w) {
                    const unsigned lanes = (w + 1) * WARP <= threads ? WARP : threads - w * WARP;
                    warp_bars.emplace_back(lanes);
                }
                Block b{dim3{bx, by, bz}, &all, &warp_bars, exchange.data()};
                const std::function<void(unsigned)> one = [&b, &kernel, blk](unsigned t) {
                    block = &b;
                    thread_idx = dim3{t % blk.x, (t / blk.x) % blk.y, t / (blk.x * blk.y)};
                    kernel();
                };
                c.run(one);
            }
}

template <class T> T shfl_down(T v, unsigned delta) {
    static_assert(sizeof(T) <= 8);
    const unsigned tid = linear_tid();
    const unsigned lane = tid % WARP, warp = tid / WARP;
    auto &bar = (*block->warps)[warp];
    std::memcpy(&block->exchange[tid], &v, sizeof(T));
    bar.arrive_and_wait();
    T out = v;
    const unsigned lanes = (warp + 1) * WARP <= block_dim.x * block_dim.y * block_dim.z
                               ? WARP
                               : block_dim.x * block_dim.y * block_dim.z - warp * WARP;
    if (lane + delta < lanes) std::memcpy(&out, &block->exchange[tid + delta], sizeof(T));
    // Nobody overwrites the buffer before every lane has read it.
    bar.arrive_and_wait();
    return out;
}

} // namespace emu

#define __global__
#define __device__ inline
#define __forceinline__
#define __shared__ static
#define __restrict__ __restrict

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block->idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

inline void __syncthreads() { emu::block->all->arrive_and_wait(); }
template <class T> T __shfl_down_sync(unsigned, T v, unsigned delta) { return emu::shfl_down(v, delta); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __double2float_rn(double x) { return static_cast<float>(x); }
inline float __expf(float x) { return std::exp(x); }
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;
