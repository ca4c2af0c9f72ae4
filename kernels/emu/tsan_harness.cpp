// Every kernel once on small random inputs, for a ThreadSanitizer build (tests/gpu_tsan.rs):
// under `cuda_emu.hpp` a block's threads are OS threads, so a missing `__syncthreads` is a data
// race that TSan reports. The test also builds it against a copy of `common.cuh` with one
// barrier removed and expects the report. Prints a checksum so nothing is optimised away.
#include "emu/cuda_emu.hpp"
#include "common.cuh"
#include "conv4.cu"
#include "head.cu"
#include "mlp.cu"

#include <cstdio>
#include <random>

namespace {

std::vector<float> rnd(std::mt19937 &g, size_t n) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto &x : v) x = d(g);
    return v;
}

double sum(const std::vector<float> &v) {
    double s = 0.0;
    for (float x : v) s += x;
    return s;
}

} // namespace

int main() {
    std::mt19937 g(7);
    const dim3 ew{2, 1, 1}, threads{ML_REDUCE_THREADS, 1, 1};
    const int tasks = 2, cin = 2, cout = 3, n = 2, h = 6, w = 6, k = 3, pad = 1;
    double check = 0.0;

    // Conv block: im2col, col2im, batch-norm statistics, fused pool forward and backward.
    auto x = rnd(g, tasks * cin * n * h * w);
    std::vector<float> col(tasks * cin * k * k * n * h * w), dx(x.size());
    emu::launch(ew, threads, [&] { ml_im2col(x.data(), col.data(), tasks, cin, n, h, w, k, pad, h, w); });
    emu::launch(ew, threads, [&] { ml_col2im(col.data(), dx.data(), tasks, cin, n, h, w, k, pad, h, w); });
    const int m = n * h * w, tc = tasks * cout, pooled = n * (h / 2) * (w / 2);
    auto y = rnd(g, tc * m), gamma = rnd(g, tc), beta = rnd(g, tc), bias = rnd(g, tc);
    std::vector<float> mean(tc), invstd(tc), out(tc * pooled), gp = rnd(g, tc * pooled);
    std::vector<unsigned char> code(tc * pooled);
    emu::launch(dim3{(unsigned)cout, (unsigned)tasks, 1}, threads,
                [&] { ml_bn_stats(y.data(), mean.data(), invstd.data(), tasks, cout, m); });
    emu::launch(ew, threads, [&] {
        ml_bn_relu_pool_fwd(y.data(), mean.data(), invstd.data(), gamma.data(), beta.data(),
                            bias.data(), out.data(), code.data(), tasks, cout, n, h, w, 1, 0);
    });
    std::vector<float> dgamma(tc), dbeta(tc), dbias(tc), coef(3 * tc), dy(y.size());
    emu::launch(dim3{(unsigned)cout, (unsigned)tasks, 1}, threads, [&] {
        ml_bn_pool_bwd_sums(y.data(), code.data(), gp.data(), mean.data(), invstd.data(),
                            gamma.data(), dgamma.data(), dbeta.data(), dbias.data(), coef.data(),
                            tasks, cout, n, h, w, 1);
    });
    emu::launch(ew, threads, [&] {
        ml_bn_pool_bwd(y.data(), code.data(), gp.data(), coef.data(), dy.data(), tasks, cout, n, h, w);
    });
    check += sum(dx) + sum(mean) + sum(invstd) + sum(out) + sum(dgamma) + sum(dy);

    // MLP pieces and the losses; 300 rows so the strided loops take more than one pass.
    const int rows = 300, cols = 4, classes = 5;
    auto z = rnd(g, tasks * rows * cols), b = rnd(g, tasks * cols), dh = rnd(g, z.size());
    std::vector<float> hh(z.size()), dz(z.size()), db(tasks * cols);
    std::vector<unsigned char> kinks(z.size());
    emu::launch(ew, threads, [&] {
        ml_bias_act_fwd(z.data(), b.data(), hh.data(), kinks.data(), tasks, rows, cols, ML_ACT_RELU, ML_KINKS_RECORD);
    });
    emu::launch(dim3{(unsigned)cols, (unsigned)tasks, 1}, threads, [&] {
        ml_bias_act_bwd(hh.data(), dh.data(), kinks.data(), dz.data(), db.data(), tasks, rows, cols, ML_ACT_RELU, ML_KINKS_REPLAY);
    });
    auto logits = rnd(g, tasks * rows * classes);
    std::vector<int> labels(tasks * rows);
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = (int)(g() % classes);
    std::vector<float> dlogits(logits.size()), loss(tasks), correct(tasks), dout(z.size());
    emu::launch(dim3{(unsigned)tasks, 1, 1}, threads, [&] {
        ml_softmax_xent(logits.data(), labels.data(), dlogits.data(), loss.data(), correct.data(), tasks, rows, classes);
    });
    emu::launch(dim3{(unsigned)tasks, 1, 1}, threads, [&] {
        ml_mse(z.data(), hh.data(), dout.data(), loss.data(), tasks, rows * cols);
    });
    check += sum(hh) + sum(dz) + sum(db) + sum(dlogits) + sum(loss) + sum(correct) + sum(dout);
    std::printf("checksum %.6f\n", check);
    return 0;
}
