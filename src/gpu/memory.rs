//! How much device memory one batched call of the GPU engine needs, from the shapes alone; how
//! many tasks a call may take in the memory at hand (what `GpuTasks` cuts a meta-batch into, and
//! what an out-of-memory error names as its fix); and what a meta-iteration holds in all.
//!
//! The estimate is a ledger of the buffers `GpuTasks` allocates, in the order it allocates and
//! frees them (`tasks`, `conv`, `ops::gather`): the peak of that ledger is the call's working
//! set. It is checked against the real peak of the same call on `Metered<Host>` (see the tests
//! here and tests/gpu_memory.rs), so a change to what the engine allocates that this model
//! misses fails on the CPU. Every buffer of a call is per task, so a call's peak is the tasks
//! times one task's (but for empty kink-code buffers, one byte each whatever the tasks: the
//! ledger counts them per task, a few bytes over).
//!
//! Not in a call's working set: the handles the algorithm holds across its calls (θ per task,
//! the inner loop's trajectory, second-order MAML's f64 backward vectors; for Meta-SGD and
//! CAVIA, whose HVPs go through the host, the shifted points), which are alive before the call
//! starts; [`meta_iteration`] adds them.

use crate::experiment::{Activation, ModelSpec};
use crate::model::Network;
use crate::tasks::TaskKind;

const F32: u64 = 4;

/// What a call of the engine's device memory budget may use by default: the target for
/// a meta-iteration at conv4-64, 5-way 1-shot, 15 queries, meta-batch 32.
pub const DEFAULT_BUDGET: u64 = 1 << 30;

/// What a batched call computes, which decides what its forward pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `step` without gradients: the forward pass only, nothing kept.
    Loss,
    /// `step` with gradients: the forward pass kept for the backward pass.
    Gradient,
    /// `descend`: a gradient pass with free kinks whose gradients stay on the device, each
    /// task's θ-long, then the step into a new handle (held by the caller after the call, but
    /// born inside it beside the gradient).
    Descend,
    /// `gradient_vectors`: a gradient pass with free kinks whose gradients stay on the device,
    /// each widened into an f64 vector (held by the caller after the call).
    Vectors,
    /// `step_back`, per task: its two shifted points θ ± r·v (made inside the call), a gradient
    /// pass at each replaying the kinks recorded at θ, the gradients kept on the device for the
    /// update of the task's vector (alive before the call, so not counted here).
    StepBack,
    /// `features` (the body without the head), with or without ∂loss/∂body.
    Features { grad: bool },
}

/// Bytes alive now and the most alive at once.
#[derive(Debug, Default)]
struct Ledger {
    live: u64,
    peak: u64,
}

impl Ledger {
    fn take(&mut self, bytes: u64) -> u64 {
        self.live += bytes;
        self.peak = self.peak.max(self.live);
        bytes
    }
    fn give(&mut self, bytes: u64) {
        self.live -= bytes;
    }
}

/// One conv block's shapes, as `conv::ConvBody` has them.
struct Block {
    cin: u64,
    cout: u64,
    h: u64,
    w: u64,
    bn: bool,
}

fn conv_blocks(net: &Network) -> Vec<Block> {
    let (ModelSpec::Conv(c), [cin, h, w]) = (&net.spec, net.shape.input.as_slice()) else {
        return vec![];
    };
    let (mut cin, mut h, mut w) = (*cin as u64, *h as u64, *w as u64);
    let mut out = vec![];
    for _ in 0..c.blocks {
        out.push(Block {
            cin,
            cout: c.channels as u64,
            h,
            w,
            bn: c.batch_norm,
        });
        (cin, h, w) = (c.channels as u64, h / 2, w / 2);
    }
    out
}

/// The dense layers `GpuTasks` runs, (inputs, outputs) each: the MLP's, or the conv net's head.
fn dense_dims(net: &Network) -> Vec<(u64, u64)> {
    let at = match net.spec {
        ModelSpec::Mlp(_) => 0,
        ModelSpec::Conv(_) => net.layout.head_start,
    };
    net.layout
        .tensors
        .iter()
        .filter(|t| t.offset >= at && t.name.ends_with(".weight"))
        .map(|t| (t.shape[0] as u64, t.shape[1] as u64))
        .collect()
}

/// `ConvBody::forward` on `n` images: returns the bytes it leaves alive (kept pass, codes,
/// features) and the features' bytes.
fn conv_forward(
    l: &mut Ledger,
    blocks: &[Block],
    n: u64,
    input: u64,
    keep: bool,
    codes_given: bool,
) -> u64 {
    let x = l.take(F32 * n * input);
    let mut act = l.take(x);
    l.give(x);
    for b in blocks {
        let (cols, kdim) = (n * b.h * b.w, b.cin * 9);
        let pooled = b.cout * n * (b.h / 2) * (b.w / 2);
        let w = l.take(F32 * b.cout * kdim);
        let norm = l.take(F32 * b.cout * if b.bn { 2 } else { 1 });
        let col = l.take(F32 * kdim * cols);
        let y = l.take(F32 * b.cout * cols);
        l.give(col);
        let stats = l.take(F32 * 2 * b.cout);
        let out = l.take(F32 * pooled);
        if !codes_given {
            l.take(pooled); // kink codes, kept for the call
        }
        if !keep {
            l.give(act + w + norm + y + stats);
        }
        act = out;
    }
    let features = l.take(act);
    l.give(act);
    features
}

/// `GpuTasks::forward` through `dims`, the first `kinked` layers' kink codes `n·o` bytes (a
/// ReLU MLP's hidden layers, recording or replaying) unless the caller gave them (`codes_given`:
/// alive before), the others' one byte.
fn dense_forward(l: &mut Ledger, dims: &[(u64, u64)], n: u64, kinked: usize, codes_given: bool) {
    for (k, &(i, o)) in dims.iter().enumerate() {
        l.take(F32 * (i * o + o));
        match (k < kinked, codes_given) {
            (true, true) => 0,
            (true, false) => l.take(n * o),
            (false, _) => l.take(1),
        };
        let z = l.take(F32 * n * o);
        l.take(F32 * n * o);
        l.give(z);
    }
}

/// `GpuTasks::backward` from `dout` (alive): returns what stays alive (∂input where asked).
fn dense_backward(l: &mut Ledger, dims: &[(u64, u64)], n: u64, dout: u64, input_grad: bool) {
    let mut dh = dout;
    for (k, &(i, o)) in dims.iter().enumerate().rev() {
        let scratch = l.take(F32 * n * o) + l.take(F32 * i * o) + l.take(F32 * o);
        if k > 0 || input_grad {
            let dx = l.take(F32 * n * i);
            l.give(dh);
            dh = dx;
        }
        l.give(scratch);
    }
}

/// `ConvBody::backward` from ∂features (alive).
fn conv_backward(l: &mut Ledger, blocks: &[Block], n: u64, features: u64) {
    let mut gout = l.take(features);
    for (k, b) in blocks.iter().enumerate().rev() {
        let (cols, kdim) = (n * b.h * b.w, b.cin * 9);
        let small = l.take(F32 * 6 * b.cout);
        let dy = l.take(F32 * b.cout * cols);
        l.give(gout);
        let dw = l.take(F32 * b.cout * kdim);
        let col = l.take(F32 * kdim * cols);
        gout = if k > 0 { l.take(F32 * b.cin * cols) } else { 0 };
        l.give(col + dy);
        l.give(small + dw);
    }
}

/// The peak bytes one task adds to a batched `call` on `n` examples of `net`: the call's own
/// buffers, not the parameter handles the caller holds (see the module documentation).
pub fn per_task_bytes(net: &Network, n: usize, call: Call) -> u64 {
    let n = n as u64;
    if call == Call::StepBack {
        // The kinks recorded at θ; doubled (one copy for each shifted point) beside them; then
        // two jobs, each the gradient pass of one shifted point replaying its copy, beside the
        // point and both copies.
        let theta = F32 * net.num_params() as u64;
        let (record, codes) = record_bytes(net, n);
        let jobs = 2 * codes + 2 * (theta + job_bytes(net, n, call));
        return record.max(3 * codes).max(jobs);
    }
    job_bytes(net, n, call)
}

/// `GpuTasks::record_codes` for one task: its peak, and the codes it leaves alive.
fn record_bytes(net: &Network, n: u64) -> (u64, u64) {
    let blocks = conv_blocks(net);
    let dims = dense_dims(net);
    let relu = matches!(&net.spec, ModelSpec::Mlp(m) if m.activation == Activation::Relu);
    let mut l = Ledger::default();
    if !blocks.is_empty() {
        let features = conv_forward(
            &mut l,
            &blocks,
            n,
            net.shape.input_len() as u64,
            false,
            false,
        );
        l.give(features);
    } else if relu && dims.len() > 1 {
        let hidden = &dims[..dims.len() - 1];
        let x = l.take(F32 * n * net.shape.input_len() as u64);
        let live = l.live;
        dense_forward(&mut l, hidden, n, hidden.len(), false);
        // Everything but the codes goes when the forward pass is dropped.
        let codes: u64 = hidden.iter().map(|&(_, o)| n * o).sum();
        l.give(l.live - live + x - codes);
    }
    (l.peak, l.live)
}

/// [`per_task_bytes`] of one job of the call (a `StepBack` task runs two, each beside its
/// shifted point).
fn job_bytes(net: &Network, n: u64, call: Call) -> u64 {
    let blocks = conv_blocks(net);
    let dims = dense_dims(net);
    let conv = !blocks.is_empty();
    let relu = matches!(&net.spec, ModelSpec::Mlp(m) if m.activation == Activation::Relu);
    let device_grads = matches!(call, Call::Descend | Call::Vectors | Call::StepBack);
    let keep = device_grads || matches!(call, Call::Gradient | Call::Features { grad: true });
    let mut l = Ledger::default();
    let input = net.shape.input_len() as u64;
    if conv {
        conv_forward(&mut l, &blocks, n, input, keep, call == Call::StepBack);
    } else {
        l.take(F32 * n * input);
    }
    let (layers, classes) = match call {
        Call::Loss | Call::Gradient | Call::Descend | Call::Vectors | Call::StepBack => {
            (&dims[..], dims.last().map_or(0, |d| d.1))
        }
        Call::Features { .. } => (&dims[..dims.len().saturating_sub(1)], 0),
    };
    // A step may record or replay a ReLU MLP's hidden layers' codes (counted as if it does);
    // `features` runs with free kinks.
    let kinked = match call {
        Call::Loss | Call::Gradient | Call::StepBack if relu => dims.len() - 1,
        _ => 0,
    };
    dense_forward(&mut l, layers, n, kinked, call == Call::StepBack);
    let feature_dim = match (blocks.last(), layers.last()) {
        (Some(b), _) => b.cout * (b.h / 2) * (b.w / 2),
        (None, Some(&(_, o))) => o,
        (None, None) => input,
    };
    let backward = conv || !layers.is_empty();
    let dout = match call {
        Call::Loss | Call::Gradient | Call::Descend | Call::Vectors | Call::StepBack => {
            let dout = l.take(F32 * n * classes);
            // The losses, and the targets: values for a regression, labels and the count of
            // correct rows for a classification.
            let targets = l.take(F32)
                + match net.shape.kind {
                    TaskKind::Regression => l.take(F32 * n * classes),
                    TaskKind::Classification => l.take(4 * n) + l.take(F32),
                };
            l.give(targets);
            dout
        }
        // ∂loss/∂features from the jobs' host losses, uploaded.
        Call::Features { grad: true } if backward => l.take(F32 * n * feature_dim),
        Call::Features { .. } => 0,
    };
    // The device gradients, alive from the backward pass's start to the step's end.
    let theta = F32 * net.num_params() as u64;
    if device_grads {
        l.take(theta);
    }
    if keep && backward {
        dense_backward(&mut l, layers, n, dout, conv);
        if conv {
            conv_backward(&mut l, &blocks, n, F32 * n * feature_dim);
        }
    }
    // Once the pass's buffers are gone: the gradient beside the new handle (the step), or
    // beside its f64 widening.
    match call {
        Call::Descend => l.peak.max(2 * theta),
        Call::Vectors => l.peak.max(3 * theta),
        _ => l.peak,
    }
}

/// Bytes a batched `call` of `tasks` tasks on `n` examples each needs.
pub fn call_bytes(net: &Network, tasks: usize, n: usize, call: Call) -> u64 {
    per_task_bytes(net, n, call) * tasks as u64
}

/// Bytes a batched gradient `step` of `tasks` tasks on `n` examples each needs (the largest
/// call an algorithm makes).
pub fn step_bytes(net: &Network, tasks: usize, n: usize) -> u64 {
    call_bytes(net, tasks, n, Call::Gradient)
}

/// The most tasks of `n` examples whose batched `call` fits in `free` bytes: 0 when not even
/// one does.
pub fn tasks_that_fit(net: &Network, n: usize, call: Call, free: u64) -> usize {
    (free / per_task_bytes(net, n, call).max(1)) as usize
}

/// Tasks per call when `tasks` tasks of `per_task` bytes each share `room` bytes: the most that
/// fit (at least one: whether one fits, only the allocation can tell), then evened out so the
/// calls are of equal size (32 tasks in calls of 11, 11 and 10, not 15, 15 and 2).
pub fn tasks_per_call(per_task: u64, tasks: usize, room: u64) -> usize {
    let fit = ((room / per_task.max(1)) as usize).clamp(1, tasks.max(1));
    tasks.div_ceil(tasks.div_ceil(fit).max(1))
}

/// What one meta-iteration of a meta-batch holds on the device at its largest, as `GpuTasks`
/// cuts it within `budget` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    /// Bytes one task adds to a gradient call on the query set (the largest call).
    pub per_task_call: u64,
    /// Tasks per call, and calls per batched step.
    pub tasks_per_call: usize,
    pub calls: usize,
    /// The largest call's working set.
    pub call_peak: u64,
    /// What a second-order MAML meta-iteration holds across its calls: per task the
    /// trajectory θ₀ … θ_K (each the size of θ) and the backward vector (f64: twice θ); the
    /// HVP's shifted points live inside the step-back calls, on the support set, smaller than
    /// the query's gradient call at the shapes.
    pub handles: u64,
    /// Both together: what the meta-iteration needs at its largest.
    pub total: u64,
}

/// [`Estimate`] for `tasks` tasks of `n` query examples, `steps` inner steps, within `budget`.
pub fn meta_iteration(
    net: &Network,
    tasks: usize,
    n: usize,
    steps: usize,
    budget: u64,
) -> Estimate {
    let handles = (steps as u64 + 1 + 2) * net.num_params() as u64 * F32 * tasks as u64;
    let per = per_task_bytes(net, n, Call::Gradient);
    let per_call = tasks_per_call(per, tasks, budget.saturating_sub(handles));
    let call_peak = per * per_call as u64;
    Estimate {
        per_task_call: per,
        tasks_per_call: per_call,
        calls: tasks.div_ceil(per_call.max(1)),
        call_peak,
        handles,
        total: handles + call_peak,
    }
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

    /// The shapes: conv4-64 on 28×28 images, 75 query images per task. The largest
    /// buffer of a gradient call is block 1's column matrix, 576 × 75·14·14 floats (33.9 MB),
    /// rebuilt in the backward pass next to block 0's kept conv output 64 × 75·28·28 floats
    /// (15.1 MB); the estimate holds at least those, and no more than twice.
    #[test]
    fn conv4_estimate_counts_the_largest_buffers() {
        let net = conv4(64);
        let per = per_task_bytes(&net, 75, Call::Gradient);
        let col1 = 576 * 75 * 14 * 14 * 4;
        let conv0 = 64 * 75 * 28 * 28 * 4;
        assert!(per >= (col1 + conv0) as u64, "{per}");
        assert!(per <= 2 * (col1 + conv0) as u64, "{per}");
        assert_eq!(step_bytes(&net, 32, 75), 32 * per);
        // A forward pass keeps nothing: its peak is one block's, below a gradient call's.
        let loss = per_task_bytes(&net, 75, Call::Loss);
        assert!(loss < per && loss >= col1 as u64, "{loss} vs {per}");
    }

    /// The target: meta-batch 32 within 1 GB, and the working set flat in the inner
    /// steps (only the θ-sized handles grow with them).
    #[test]
    fn the_target_meta_iteration_fits_the_default_budget() {
        let net = conv4(64);
        let one = meta_iteration(&net, 32, 75, 1, DEFAULT_BUDGET);
        let five = meta_iteration(&net, 32, 75, 5, DEFAULT_BUDGET);
        for e in [one, five] {
            assert!(e.total <= DEFAULT_BUDGET, "{e:?}");
            assert!(e.calls * e.tasks_per_call >= 32, "{e:?}");
        }
        assert_eq!(five.call_peak, one.call_peak, "{one:?} {five:?}");
        assert_eq!(
            five.handles - one.handles,
            4 * 32 * net.num_params() as u64 * 4
        );
    }

    #[test]
    fn tasks_that_fit_is_the_largest_call_within_the_free_memory() {
        let net = conv4(64);
        let g = Call::Gradient;
        let per = per_task_bytes(&net, 75, g);
        assert_eq!(tasks_that_fit(&net, 75, g, 10 * per), 10);
        assert_eq!(tasks_that_fit(&net, 75, g, 10 * per + per - 1), 10);
        assert_eq!(tasks_that_fit(&net, 75, g, per / 2), 0);
        // Twice the channels: about twice the memory per task (activations and column
        // matrices grow with the channels; only the weights with their square, and they are
        // small).
        let wide = per_task_bytes(&conv4(128), 75, g);
        assert!(wide > 3 * per / 2 && wide < 5 * per / 2, "{wide} vs {per}");
        // Fewer examples, fewer bytes: linear in the examples but for the parameters.
        assert!(per_task_bytes(&net, 5, g) < per / 5);
    }

    #[test]
    fn calls_are_as_large_as_fit_and_even() {
        assert_eq!(
            tasks_per_call(10, 32, 150),
            11,
            "15 fit: 3 calls of 11, 11, 10"
        );
        assert_eq!(tasks_per_call(10, 32, 1000), 32);
        assert_eq!(
            tasks_per_call(10, 32, 5),
            1,
            "one task is tried even if it seems not to fit"
        );
        assert_eq!(tasks_per_call(10, 0, 100), 0);
    }

    /// What a run that runs out of GPU memory reports: the call, the estimate and the
    /// meta-batch to set, or, when not one task fits, what to change instead.
    #[test]
    fn out_of_memory_names_the_meta_batch_that_fits() {
        use crate::gpu::GpuError;
        let oom = GpuError::Memory(
            "device 0: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        );
        assert!(oom.is_out_of_memory());
        assert!(!GpuError::Memory("device 0: an invalid value".into()).is_out_of_memory());
        let net = conv4(64);
        let free = 3 * per_task_bytes(&net, 75, Call::Gradient) + 1;
        let e = GpuError::OutOfMemory {
            tasks: 32,
            examples: 75,
            needed_mib: step_bytes(&net, 32, 75) >> 20,
            free_mib: free >> 20,
            fits: tasks_that_fit(&net, 75, Call::Gradient, free),
        };
        let text = e.to_string();
        assert!(text.contains("32 tasks × 75 examples"), "{text}");
        assert!(text.contains("set train.meta_batch: 3 or lower"), "{text}");
        let none = GpuError::OutOfMemory {
            tasks: 1,
            examples: 75,
            needed_mib: 60,
            free_mib: 10,
            fits: 0,
        };
        let text = none.to_string();
        assert!(text.contains("not one task"), "{text}");
        assert!(!text.contains("meta_batch"), "{text}");
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
        let per = per_task_bytes(&net, 10, Call::Gradient);
        // At least the hidden activations (10 × 40 × 2 layers, kept) and the weights gathered.
        assert!(
            per >= (10 * 40 * 2 * 4 + net.num_params() * 4) as u64,
            "{per}"
        );
        assert!(per < 1 << 20, "{per}");
    }
}
