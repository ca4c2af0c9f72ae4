//! How much device memory one batched call of the GPU engine needs, estimated from the shapes
//! alone, and how many tasks would fit in what is free: what an out-of-memory error names as
//! its fix. The estimate counts the buffers `GpuTasks` allocates for a `step` with gradients
//! (the largest call an algorithm makes): every layer's kept forward buffers, plus the largest
//! layer's backward scratch, plus the tasks' parameter handles.

use crate::experiment::ModelSpec;
use crate::model::Network;

const F32: u64 = 4;

/// Parameter handles an algorithm keeps per task during a meta-iteration (θ, the fast weights
/// of the step in flight and the HVP's shifted points): a generous count, as they are small
/// next to the activations.
const HANDLES_PER_TASK: u64 = 4;

/// Bytes one task adds to a batched gradient `step` on `n` examples of `net`.
pub fn per_task_bytes(net: &Network, n: usize) -> u64 {
    let n = n as u64;
    let params = net.num_params() as u64 * F32 * HANDLES_PER_TASK;
    let (kept, scratch) = match &net.spec {
        ModelSpec::Conv(c) => conv_bytes(c.blocks, c.channels as u64, &net.shape.input, n),
        ModelSpec::Mlp(_) => (0, 0),
    };
    // The dense layers (the MLP, or the conv net's head): inputs, pre-activations, outputs and
    // codes kept; ∂z, ∂w, ∂x and a gathered weight per layer in the backward pass.
    let (mut dense_kept, mut dense_scratch) = (0u64, 0u64);
    for t in net
        .layout
        .tensors
        .iter()
        .filter(|t| t.name.ends_with(".weight") && t.shape.len() == 2)
    {
        let (i, o) = (t.shape[0] as u64, t.shape[1] as u64);
        dense_kept += F32 * (n * i + 2 * n * o + i * o + o) + n * o;
        dense_scratch = dense_scratch.max(F32 * (n * o + i * o + n * i));
    }
    params + kept + dense_kept + scratch.max(dense_scratch)
}

/// The conv blocks' bytes per task on `n` images `input = [c, h, w]`: (kept for the backward
/// pass: column matrix, conv output, pooled output, codes, per-channel vectors; the largest
/// block's backward scratch: ∂conv output, ∂column matrix, ∂input).
fn conv_bytes(blocks: usize, channels: u64, input: &[usize], n: u64) -> (u64, u64) {
    let [c, h, w] = match input {
        [c, h, w] => [*c as u64, *h as u64, *w as u64],
        _ => return (0, 0),
    };
    let (mut cin, mut h, mut w) = (c, h, w);
    let (mut kept, mut scratch) = (n * c * h * w * F32 * 2, 0u64);
    for _ in 0..blocks {
        let cols = n * h * w;
        let col = cin * 9 * cols;
        let conv = channels * cols;
        let pooled = channels * n * (h / 2) * (w / 2);
        kept += F32 * (col + conv + pooled + channels * cin * 9 + 6 * channels) + pooled;
        scratch = scratch.max(F32 * (conv + col + cin * cols + channels * cin * 9));
        (cin, h, w) = (channels, h / 2, w / 2);
    }
    (kept, scratch)
}

/// Bytes a batched gradient `step` of `tasks` tasks on `n` examples each needs.
pub fn step_bytes(net: &Network, tasks: usize, n: usize) -> u64 {
    per_task_bytes(net, n) * tasks as u64
}

/// The most tasks of `n` examples whose batched gradient `step` fits in `free` bytes (at least 1:
/// a single task that does not fit is the model's own size, which no meta-batch fixes).
pub fn tasks_that_fit(net: &Network, n: usize, free: u64) -> usize {
    let per = per_task_bytes(net, n).max(1);
    ((free / per) as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{ConvSpec, MlpSpec};
    use crate::tasks::episode::image_classes_shape;

    fn conv4(channels: usize) -> Network {
        let spec = ModelSpec::Conv(ConvSpec {
            blocks: 4,
            channels,
            batch_norm: true,
        });
        Network::new(&spec, &image_classes_shape(28, 5)).unwrap()
    }

    /// The shapes: conv4-64 on 28×28 images, 75 query images per task. Block 1's
    /// column matrix alone is 576 × 75·14·14 floats (33.9 MB) per task, its input block 0's
    /// conv output 64 × 75·28·28 floats (15.1 MB); the estimate holds at least those.
    #[test]
    fn conv4_estimate_counts_the_largest_buffers() {
        let net = conv4(64);
        let per = per_task_bytes(&net, 75);
        let col1 = 576 * 75 * 14 * 14 * 4;
        let conv0 = 64 * 75 * 28 * 28 * 4;
        assert!(per >= (col1 + conv0) as u64, "{per}");
        assert!(
            per <= 4 * (col1 + conv0) as u64,
            "{per}: a loose bound, not a guess"
        );
        assert_eq!(step_bytes(&net, 32, 75), 32 * per);
    }

    #[test]
    fn tasks_that_fit_is_the_largest_meta_batch_within_the_free_memory() {
        let net = conv4(64);
        let per = per_task_bytes(&net, 75);
        assert_eq!(tasks_that_fit(&net, 75, 10 * per), 10);
        assert_eq!(tasks_that_fit(&net, 75, 10 * per + per - 1), 10);
        assert_eq!(tasks_that_fit(&net, 75, per / 2), 1);
        // Twice the channels: about twice the memory per task (activations and column
        // matrices grow with the channels; only the weights with their square, and they are
        // small).
        let wide = per_task_bytes(&conv4(128), 75);
        assert!(wide > 3 * per / 2 && wide < 5 * per / 2, "{wide} vs {per}");
        // Fewer examples, fewer bytes: linear in the examples but for the parameters.
        assert!(per_task_bytes(&net, 5) < per / 5);
    }

    /// What a run that runs out of GPU memory reports: the call, the estimate and the
    /// meta-batch to set. (The out-of-memory path itself needs a GPU; this is its message.)
    #[test]
    fn out_of_memory_names_the_meta_batch_that_fits() {
        use crate::gpu::GpuError;
        let oom = GpuError::Memory(
            "device 0: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        );
        assert!(oom.is_out_of_memory());
        assert!(!GpuError::Memory("device 0: an invalid value".into()).is_out_of_memory());
        let net = conv4(64);
        let free = 3 * per_task_bytes(&net, 75) + 1;
        let e = GpuError::OutOfMemory {
            tasks: 32,
            examples: 75,
            needed_mib: step_bytes(&net, 32, 75) >> 20,
            free_mib: free >> 20,
            fits: tasks_that_fit(&net, 75, free),
        };
        let text = e.to_string();
        assert!(text.contains("32 tasks × 75 examples"), "{text}");
        assert!(text.contains("set train.meta_batch: 3 or lower"), "{text}");
    }

    #[test]
    fn mlp_estimate_counts_its_layers() {
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: vec![40, 40],
            activation: crate::experiment::Activation::Relu,
        });
        let shape = crate::tasks::FamilyShape {
            input: vec![1],
            outputs: 1,
            kind: crate::tasks::TaskKind::Regression,
        };
        let net = Network::new(&spec, &shape).unwrap();
        let per = per_task_bytes(&net, 10);
        // At least the hidden activations (10 × 40 × 2 layers × z and h) and the parameters.
        assert!(
            per >= (10 * 40 * 2 * 2 * 4 + net.num_params() * 4) as u64,
            "{per}"
        );
        assert!(per < 1 << 20, "{per}");
    }
}
