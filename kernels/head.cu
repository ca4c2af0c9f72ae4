// The losses on the head's outputs, per task, with their gradients: softmax cross-entropy
// against class labels and mean squared error against values (`src/model/loss.rs`). One block
// per task; rows are summed in a fixed order, so the loss is the same from run to run.

// `logits` per task `[rows, classes]`, `labels` per task `[rows]`. Writes ∂loss/∂logits
// (the mean over rows), and per task the mean loss and the number of rows whose highest logit
// (ties to the lower class) is the label.
extern "C" __global__ void ml_softmax_xent(const float *logits, const int *labels, float *dlogits,
                                           float *loss, float *correct, int tasks, int rows,
                                           int classes) {
    __shared__ double buf[ML_REDUCE_THREADS];
    const int t = blockIdx.x;
    double l = 0.0, right = 0.0;
    for (int r = threadIdx.x; r < rows; r += ML_REDUCE_THREADS) {
        const long long base = ((long long)t * rows + r) * classes;
        const float *z = logits + base;
        const int label = labels[t * rows + r];
        int best = 0;
        float mx = z[0];
        for (int c = 1; c < classes; ++c)
            if (z[c] > mx) { mx = z[c]; best = c; }
        float se = 0.0f;
        for (int c = 0; c < classes; ++c) se += expf(z[c] - mx);
        const float lse = mx + logf(se);
        l += (double)(lse - z[label]);
        right += best == label ? 1.0 : 0.0;
        const float inv_rows = 1.0f / (float)rows;
        for (int c = 0; c < classes; ++c) {
            const float p = expf(z[c] - lse);
            dlogits[base + c] = (p - (c == label ? 1.0f : 0.0f)) * inv_rows;
        }
    }
    l = ml_block_sum(l, buf);
    right = ml_block_sum(right, buf);
    if (threadIdx.x == 0) {
        loss[t] = (float)(l / (double)rows);
        correct[t] = (float)right;
    }
}

// Mean squared error per task over `[rows, outputs]` = `len` values, and its gradient.
extern "C" __global__ void ml_mse(const float *out, const float *target, float *dout, float *loss,
                                  int tasks, int len) {
    __shared__ double buf[ML_REDUCE_THREADS];
    const int t = blockIdx.x;
    double s = 0.0;
    const float k = 2.0f / (float)len;
    for (int i = threadIdx.x; i < len; i += ML_REDUCE_THREADS) {
        const long long j = (long long)t * len + i;
        const float d = out[j] - target[j];
        s += (double)d * (double)d;
        dout[j] = k * d;
    }
    s = ml_block_sum(s, buf);
    if (threadIdx.x == 0) loss[t] = (float)(s / (double)len);
}
