//! The GPU engine as a backend of the lock-step contract (`model::lockstep`): [`GpuTasks`] runs
//! a meta-batch's tasks together, one batched launch per layer op (per-task strided-batched
//! SGEMM, then one kernel over every task for the bias, activation, norm or pool), on any
//! [`Kernels`] backend: [`super::Cuda`] on a GPU, [`super::Host`] (the same kernels on the CPU)
//! in the tests.
//!
//! What stays on the device: every parameter handle ([`LockStepModel::Params`] is a device
//! buffer), the activations, kink codes and gradients of a call. What the contract forces across
//! the bus, per batched call: the batches' inputs and targets (host [`Batch`]es), the losses,
//! every gradient a job asks for (`StepOut::grad` is a host vector), recorded kink codes (a
//! host [`KinkPattern`]) and replayed ones, and for `features` the features and ∂loss/∂features
//! (the loss is a host closure). `read` downloads a handle, `load` uploads one: the algorithms'
//! host arithmetic (Meta-SGD's and CAVIA's HVPs, Meta-SGD's steps, Adam) goes through them; an
//! SGD step runs on the device (`sgd_step`: the gradient goes up, θ does not come down), and a
//! whole inner step (`descend`) does not move the gradient at all: the backward pass writes it
//! into a device buffer per task (`super::grads`), the step applies it there, and only the
//! losses come back. Second-order MAML's backward pass runs there too: the query gradients are
//! widened into f64 vectors on the device (`gradient_vectors`), and each step back
//! (`step_back`) records the kinks at θ, makes the shifted points θ ± r·v, their gradients
//! (replaying those kinks) and the update of v there, so per task one f64 vector comes down at
//! the end, whatever the inner steps. Every task's start is one upload (`replicate`).
//!
//! The contract's methods return no errors, so a device error (out of memory, a failed launch)
//! panics with the [`GpuError`] itself as the payload; the worker pool turns that into a typed
//! `PoolError` (`OutOfMemory` for the one a run can recover from by resuming).
//!
//! Memory: each batched call is cut into calls of as many tasks as fit in the engine's budget
//! (`gpu::memory::DEFAULT_BUDGET` unless set) less what is already allocated, and in what the
//! device has free, by `gpu::memory`'s estimate of a call's working set. Jobs are independent
//! (the contract), so the cut changes no result. A call's buffers are freed when it returns: the
//! memory a meta-iteration needs does not grow with its inner steps, but for the parameter
//! handles the algorithm holds.
//!
//! Both models run: the MLP as dense layers, the conv net as its blocks (`super::conv`: im2col,
//! per-task SGEMM, transductive batch norm, fused norm + ReLU + pool with kink codes in the CPU
//! path's encoding) in front of the head, which runs as a one-layer MLP on their features.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::conv::{BodyPass, ConvBody};
use super::grads::{Grads, Place};
use super::memory::{self, Call};
use super::ops::{self, Act, DenseGeom, ReluKinks};
use super::replay::Replay;
use super::{Backend, GpuError, Kernels};
use crate::experiment::{Activation, ModelSpec};
use crate::model::hvp;
use crate::model::{
    EmbedJob, Kinks, LockStepModel, LossOut, ModelError, Network, StepJob, StepOut,
};
use crate::tasks::{Batch, Targets};

/// A model's tasks in lock-step on backend `B`. See the module documentation.
pub struct GpuTasks<B: Kernels> {
    b: B,
    /// (in, out) of each dense layer; the last is the head. After a conv body, the head alone.
    dims: Vec<(usize, usize)>,
    /// Where the dense layers' parameters start in θ: 0 for the MLP, the head's offset for the
    /// conv net.
    at: usize,
    act: Act,
    input_len: usize,
    /// The conv net's blocks, in front of the dense layers.
    conv: Option<ConvBody>,
    /// For the memory estimate (`gpu::memory`).
    net: Network,
    /// Bytes the engine's buffers may take in all (see the module documentation).
    budget: u64,
}

/// A device error inside a contract method, which has no error to return, as a panic whose
/// payload is the error (see the module documentation).
fn ok<T>(r: Result<T, GpuError>) -> T {
    r.unwrap_or_else(|e| std::panic::panic_any(e))
}

/// How one batched call's kinks go: the mode every job of the group shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Free,
    Record,
    Replay,
}

fn mode_of(k: &Kinks) -> Mode {
    match k {
        Kinks::Free => Mode::Free,
        Kinks::Record(_) => Mode::Record,
        Kinks::Replay(_) => Mode::Replay,
    }
}

/// The forward pass of a group's dense layers: `inputs[l]` is layer `l`'s input (the last, the
/// output).
struct Forward<B: Backend> {
    inputs: Vec<B::F32>,
    ws: Vec<B::F32>,
    bs: Vec<B::F32>,
    codes: Vec<B::U8>,
}

/// Every task's gradient (θ-long) and, where asked, ∂L/∂(the first dense layer's input).
type DenseGrads<B> = (Grads<B>, Option<<B as Backend>::F32>);

impl<B: Kernels> GpuTasks<B> {
    /// The engine for `net` on `b`: the MLP, or the conv net (its blocks, then the head).
    pub fn new(b: B, net: &Network) -> Result<GpuTasks<B>, ModelError> {
        let (act, conv, at) = match &net.spec {
            ModelSpec::Mlp(m) => {
                let act = match m.activation {
                    Activation::Relu => Act::Relu,
                    Activation::Tanh => Act::Tanh,
                };
                (act, None, 0)
            }
            ModelSpec::Conv(c) => {
                let body = ConvBody::new(c, &net.shape.input, &net.layout)?;
                // The head is the only dense layer: no activation applies.
                (Act::Identity, Some(body), net.layout.head_start)
            }
        };
        let dims = net
            .layout
            .tensors
            .iter()
            .filter(|t| t.offset >= at && t.name.ends_with(".weight"))
            .map(|t| (t.shape[0], t.shape[1]))
            .collect();
        Ok(GpuTasks {
            b,
            dims,
            at,
            act,
            input_len: net.shape.input_len(),
            conv,
            net: net.clone(),
            budget: memory::DEFAULT_BUDGET,
        })
    }

    pub fn backend(&self) -> &B {
        &self.b
    }

    /// Bytes the engine's buffers may take in all, the parameter handles included.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn set_budget(&mut self, bytes: u64) {
        self.budget = bytes;
    }

    /// Tasks per batched `call` on `n` examples, for a group of `tasks`: as many as fit in the
    /// budget less what is allocated, and in nine tenths of what the device has free (a margin
    /// for what the estimate does not see: the driver's own, fragmentation). An inner step's
    /// calls each return new handles, which stay alive through the calls after them: the room
    /// is less all of them.
    fn tasks_per_call(&self, tasks: usize, n: usize, call: Call) -> usize {
        let used = self.b.used_memory().unwrap_or(0);
        let returned = match call {
            Call::Descend => (tasks * self.net.num_params() * 4) as u64,
            Call::Vectors => (tasks * self.net.num_params() * 8) as u64,
            _ => 0,
        };
        let mut room = self.budget.saturating_sub(used + returned);
        if let Some(free) = self.b.free_memory() {
            room = room.min(free - free / 10);
        }
        memory::tasks_per_call(memory::per_task_bytes(&self.net, n, call), tasks, room)
    }

    /// `run` on the jobs cut into calls that fit (see [`GpuTasks::tasks_per_call`]); results
    /// in job order. A call that runs out of memory panics with the error naming what fits.
    fn in_calls<J, O>(
        &self,
        jobs: &mut [&mut J],
        n: usize,
        call: Call,
        mut run: impl FnMut(&mut [&mut J]) -> Result<Vec<O>, GpuError>,
    ) -> Vec<O> {
        let per_call = self.tasks_per_call(jobs.len(), n, call);
        let mut outs = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks_mut(per_call.max(1)) {
            let tasks = chunk.len();
            outs.extend(ok(
                run(chunk).map_err(|e| self.out_of_memory(e, tasks, n, call))
            ));
        }
        outs
    }

    /// A device that ran out of memory in a call of `tasks` tasks × `n` examples, as the error
    /// naming the tasks per call that fit (`gpu::memory`'s estimate against what is free once
    /// the call's buffers are gone); any other error as it is.
    fn out_of_memory(&self, e: GpuError, tasks: usize, n: usize, call: Call) -> GpuError {
        let free = match (e.is_out_of_memory(), self.b.free_memory()) {
            (true, Some(free)) => free,
            _ => return e,
        };
        GpuError::OutOfMemory {
            tasks,
            examples: n,
            needed_mib: memory::call_bytes(&self.net, tasks, n, call).div_ceil(1 << 20),
            free_mib: free >> 20,
            fits: memory::tasks_that_fit(&self.net, n, call, free),
        }
    }

    /// A gradient job with free kinks for each `params[i]` on `batches[i]`, grouped by batch
    /// size and target kind, each group run by `run` in calls of `call` that fit; results in
    /// task order.
    fn gradient_calls<O>(
        &self,
        params: &[&B::F32],
        batches: &[&Batch],
        call: Call,
        mut run: impl FnMut(&mut [&mut StepJob<'_, B::F32>]) -> Result<Vec<O>, GpuError>,
    ) -> Vec<O> {
        let mut jobs: Vec<_> = params
            .iter()
            .zip(batches)
            .map(|(p, b)| StepJob::gradient(*p, b))
            .collect();
        let key = |j: &StepJob<'_, B::F32>| (j.batch.n, matches!(j.batch.y, Targets::Classes(_)));
        grouped(&mut jobs, key, |group, (n, _)| {
            self.in_calls(group, n, call, &mut run)
        })
    }

    /// Offsets in θ of dense layer `l`'s weight and bias.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let at = self.at
            + self.dims[..l]
                .iter()
                .map(|&(i, o)| i * o + o)
                .sum::<usize>();
        let (i, o) = self.dims[l];
        (at, at + i * o)
    }

    /// The activation and kinks layer `l` of `layers` runs with (the head: none).
    fn layer_act(&self, l: usize, layers: usize, mode: Mode) -> (Act, ReluKinks) {
        if l + 1 == layers && layers == self.dims.len() {
            return (Act::Identity, ReluKinks::Free);
        }
        match (self.act, mode) {
            (Act::Relu, Mode::Record) => (Act::Relu, ReluKinks::Record),
            (Act::Relu, Mode::Replay) => (Act::Relu, ReluKinks::Replay),
            (act, _) => (act, ReluKinks::Free),
        }
    }

    /// Layers whose units have kinks, each one list of codes in a [`KinkPattern`]: the conv
    /// net's blocks, or a ReLU MLP's hidden layers (a tanh MLP has none, as on the CPU).
    fn kinked_layers(&self) -> usize {
        match &self.conv {
            Some(c) => c.blocks(),
            None if self.act == Act::Relu => self.dims.len() - 1,
            None => 0,
        }
    }

    /// The body in front of the dense layers on every task's `x` (stacked): the conv blocks'
    /// pass (kept for a backward pass with `keep`) and their features, or for the MLP the
    /// input itself.
    fn body_forward(
        &self,
        params: &[&B::F32],
        n: usize,
        x: &[f32],
        replay: Replay<'_, B>,
        keep: bool,
    ) -> Result<(Option<BodyPass<B>>, B::F32), GpuError> {
        match &self.conv {
            Some(c) => {
                let (pass, features) = c.forward(&self.b, params, n, x, replay, keep)?;
                Ok((Some(pass), features))
            }
            None => Ok((None, self.b.upload_f32(x)?)),
        }
    }

    /// The first `layers` dense layers on `n` rows of every task's `input` (stacked), kinks as
    /// `mode` says (`replay`: each layer's codes stacked, for `Replay`).
    fn forward(
        &self,
        params: &[&B::F32],
        layers: usize,
        n: usize,
        input: B::F32,
        mode: Mode,
        mut replay: Replay<'_, B>,
    ) -> Result<Forward<B>, GpuError> {
        let tasks = params.len();
        let mut f = Forward {
            inputs: vec![input],
            ws: vec![],
            bs: vec![],
            codes: vec![],
        };
        for l in 0..layers {
            let (i, o) = self.dims[l];
            let g = DenseGeom {
                tasks,
                rows: n,
                inputs: i,
                outputs: o,
            };
            let (wo, bo) = self.offsets(l);
            let w = ops::gather(&self.b, params, wo, i * o)?;
            let bias = ops::gather(&self.b, params, bo, o)?;
            let act = self.layer_act(l, layers, mode);
            let mut code = match act.1 {
                ReluKinks::Replay => replay.take(&self.b, l)?.expect("codes to replay"),
                ReluKinks::Record => self.b.zeros_u8(g.out_len())?,
                ReluKinks::Free => self.b.zeros_u8(0)?,
            };
            let mut z = self.b.zeros_f32(g.out_len())?;
            let mut h = self.b.zeros_f32(g.out_len())?;
            let input = f.inputs.last().expect("the input");
            ops::dense_forward(
                &self.b, &g, input, &w, &bias, &mut z, &mut h, &mut code, act,
            )?;
            f.inputs.push(h);
            f.ws.push(w);
            f.bs.push(bias);
            f.codes.push(code);
        }
        Ok(f)
    }

    /// Backward through the first `layers` dense layers of `f` from `dout = ∂L/∂output`: every
    /// task's gradient at `place`, θ-long up to those layers' end (the conv body's part left to
    /// it), and with `input_grad` ∂L/∂(the first layer's input).
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        f: &Forward<B>,
        (tasks, layers, n): (usize, usize, usize),
        mode: Mode,
        dout: B::F32,
        input_grad: bool,
        place: Place,
    ) -> Result<DenseGrads<B>, GpuError> {
        let len: usize = self.dims[..layers].iter().map(|&(i, o)| i * o + o).sum();
        let mut grads = Grads::zeros(&self.b, place, tasks, self.at + len)?;
        let mut dh = dout;
        for l in (0..layers).rev() {
            let (i, o) = self.dims[l];
            let g = DenseGeom {
                tasks,
                rows: n,
                inputs: i,
                outputs: o,
            };
            // The codes recorded on the way forward are replayed on the way back.
            let act = match self.layer_act(l, layers, mode) {
                (a, ReluKinks::Record) => (a, ReluKinks::Replay),
                a => a,
            };
            let mut dz = self.b.zeros_f32(g.out_len())?;
            let mut dw = self.b.zeros_f32(g.weight_len())?;
            let mut db = self.b.zeros_f32(g.bias_len())?;
            let mut dx = if l > 0 || input_grad {
                Some(self.b.zeros_f32(g.in_len())?)
            } else {
                None
            };
            ops::dense_backward(
                &self.b,
                &g,
                &f.inputs[l],
                &f.ws[l],
                &f.inputs[l + 1],
                &f.codes[l],
                &dh,
                act,
                &mut dz,
                &mut dw,
                &mut db,
                dx.as_mut(),
            )?;
            let (wo, bo) = self.offsets(l);
            grads.put(&self.b, &dw, wo)?;
            grads.put(&self.b, &db, bo)?;
            if let Some(dx) = dx {
                dh = dx;
            }
        }
        Ok((grads, input_grad.then_some(dh)))
    }

    /// The loss of every task's outputs on its targets (all of one kind), and ∂loss/∂outputs.
    fn loss(
        &self,
        out: &B::F32,
        n: usize,
        targets: &[&Targets],
    ) -> Result<(Vec<LossOut>, B::F32), GpuError> {
        let tasks = targets.len();
        let classes = self.dims.last().expect("a head").1;
        let mut dout = self.b.zeros_f32(tasks * n * classes)?;
        let mut loss = self.b.zeros_f32(tasks)?;
        let values: Option<Vec<f32>> = targets
            .iter()
            .map(|t| match t {
                Targets::Values(v) => Some(v.clone()),
                Targets::Classes(_) => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        let correct = if let Some(y) = values {
            let y = self.b.upload_f32(&y)?;
            ops::mse(&self.b, tasks, n * classes, out, &y, &mut dout, &mut loss)?;
            None
        } else {
            let labels: Vec<i32> = targets
                .iter()
                .flat_map(|t| match t {
                    Targets::Classes(c) => c.iter().map(|&c| c as i32).collect::<Vec<_>>(),
                    Targets::Values(_) => unreachable!("jobs are grouped by target kind"),
                })
                .collect();
            let labels = self.b.upload_i32(&labels)?;
            let mut correct = self.b.zeros_f32(tasks)?;
            ops::softmax_xent(
                &self.b,
                tasks,
                n,
                classes,
                out,
                &labels,
                &mut dout,
                &mut loss,
                &mut correct,
            )?;
            Some(self.b.download_f32(&correct)?)
        };
        let loss = self.b.download_f32(&loss)?;
        let outs = (0..tasks)
            .map(|t| LossOut {
                loss: loss[t],
                correct: correct.as_ref().map(|c| c[t].round() as usize),
            })
            .collect();
        Ok((outs, dout))
    }

    /// The recorded codes of every kinked layer (`codes`, each stacked over the tasks) into
    /// each job's pattern, one list per layer.
    fn record(
        &self,
        codes: &[&B::U8],
        jobs: &mut [&mut StepJob<'_, B::F32>],
    ) -> Result<(), GpuError> {
        for c in codes {
            let codes = self.b.download_u8(c)?;
            let per = codes.len() / jobs.len();
            for (t, j) in jobs.iter_mut().enumerate() {
                if let Kinks::Record(p) = &mut j.kinks {
                    p.codes.push(codes[t * per..(t + 1) * per].to_vec());
                }
            }
        }
        Ok(())
    }

    /// One batched call over jobs that share a batch size, target kind, kink mode and whether
    /// they want gradients.
    fn step_group(
        &self,
        jobs: &mut [&mut StepJob<'_, B::F32>],
        mode: Mode,
        grad: bool,
    ) -> Result<Vec<StepOut>, GpuError> {
        let (outs, grads) = self.pass(jobs, mode, grad.then_some(Place::Host), None)?;
        let grads: Vec<Option<Vec<f32>>> = match grads {
            Some(g) => g.into_host().into_iter().map(Some).collect(),
            None => vec![None; jobs.len()],
        };
        Ok(outs
            .into_iter()
            .zip(grads)
            .map(|(out, grad)| StepOut { out, grad })
            .collect())
    }

    /// One inner SGD step over gradient jobs with free kinks that share a batch size and target
    /// kind: each job's loss and a handle holding `params − lr·∇`. The gradients are made,
    /// applied and freed on the device.
    fn descend_group(
        &self,
        jobs: &mut [&mut StepJob<'_, B::F32>],
        lr: f32,
    ) -> Result<Vec<(LossOut, B::F32)>, GpuError> {
        let (outs, grads) = self.pass(jobs, Mode::Free, Some(Place::Device), None)?;
        let grads = grads.expect("a gradient pass").into_device();
        let mut next = Vec::with_capacity(jobs.len());
        for (j, g) in jobs.iter().zip(&grads) {
            next.push(self.stepped(j.params, g, lr)?);
        }
        Ok(outs.into_iter().zip(next).collect())
    }

    /// Each job's loss and its gradient widened into an f64 vector, over gradient jobs with free
    /// kinks that share a batch size and target kind; the gradients never leave the device.
    fn vectors_group(
        &self,
        jobs: &mut [&mut StepJob<'_, B::F32>],
    ) -> Result<Vec<(LossOut, B::F64)>, GpuError> {
        let (outs, grads) = self.pass(jobs, Mode::Free, Some(Place::Device), None)?;
        let mut vs = Vec::with_capacity(jobs.len());
        for g in grads.expect("a gradient pass").into_device() {
            let mut v = self.b.zeros_f64(B::len_f32(&g))?;
            ops::widen(&self.b, &g, &mut v)?;
            vs.push(v);
        }
        Ok(outs.into_iter().zip(vs).collect())
    }

    /// `ε/‖v‖` for each vector (`None` for a zero or not finite one), the squared norm summed
    /// on the device in `hvp::sum_sq`'s blocks and its block sums added by `hvp::add_blocks`: one f64
    /// per block comes down.
    fn radii(&self, vs: &[B::F64], eps: f64) -> Result<Vec<Option<f64>>, GpuError> {
        vs.iter()
            .map(|v| {
                let mut partial = self.b.zeros_f64(B::len_f64(v).div_ceil(hvp::SUM_BLOCK))?;
                ops::sumsq_blocks(&self.b, v, hvp::SUM_BLOCK, &mut partial)?;
                let sums = self.b.download_f64(&partial)?;
                Ok(hvp::radius(hvp::add_blocks(&sums), eps))
            })
            .collect()
    }

    /// Each kinked layer's codes at `params` on `batches`, stacked over the tasks, chosen and
    /// kept on the device: a forward pass as far as the last kinked layer, nothing else kept.
    fn record_codes(&self, params: &[&B::F32], batches: &[&Batch]) -> Result<Vec<B::U8>, GpuError> {
        let kinked = self.kinked_layers();
        if kinked == 0 {
            return Ok(vec![]);
        }
        let n = batches[0].n;
        let x = stacked(batches.iter().copied(), self.input_len);
        let (body, input) = self.body_forward(params, n, &x, Replay::None, false)?;
        Ok(match body {
            Some(pass) => pass.codes,
            None => {
                self.forward(params, kinked, n, input, Mode::Record, Replay::None)?
                    .codes
            }
        })
    }

    /// One step back for tasks that share a batch size and target kind, all on the device: the
    /// kinks recorded at each task's θ (and doubled, one copy for each shifted point), the
    /// shifted points θ ± r·v, one gradient pass over all of them replaying those kinks, and
    /// `v ← v − lr·(g₊ − g₋)/2r`. Nothing comes back but the losses, which are dropped.
    fn step_back_group(
        &self,
        tasks: &mut [&mut Back<'_, B>],
        lr: f64,
    ) -> Result<Vec<()>, GpuError> {
        let thetas: Vec<&B::F32> = tasks.iter().map(|t| t.theta).collect();
        let batches: Vec<&Batch> = tasks.iter().map(|t| t.batch).collect();
        let codes = self.record_codes(&thetas, &batches)?;
        let mut both = Vec::with_capacity(codes.len());
        for c in &codes {
            let len = B::len_u8(c);
            let mut d = self.b.zeros_u8(2 * len)?;
            self.b.copy_u8(c, 0, &mut d, 0, len)?;
            self.b.copy_u8(c, 0, &mut d, len, len)?;
            both.push(d);
        }
        drop(codes);
        let mut shifted = Vec::with_capacity(2 * tasks.len());
        for sign in [1.0, -1.0] {
            for t in tasks.iter() {
                let mut y = self.b.zeros_f32(B::len_f32(t.theta))?;
                ops::shift(&self.b, t.theta, t.v, sign * t.r, &mut y)?;
                shifted.push(y);
            }
        }
        let mut jobs: Vec<StepJob<'_, B::F32>> = shifted
            .iter()
            .zip(batches.iter().chain(&batches))
            .map(|(p, b)| StepJob::gradient(p, b))
            .collect();
        let mut refs: Vec<&mut StepJob<'_, B::F32>> = jobs.iter_mut().collect();
        let (_, grads) = self.pass(&mut refs, Mode::Replay, Some(Place::Device), Some(both))?;
        let grads = grads.expect("a gradient pass").into_device();
        let (plus, minus) = grads.split_at(tasks.len());
        for ((t, gp), gm) in tasks.iter_mut().zip(plus).zip(minus) {
            ops::step_back(&self.b, t.v, gp, gm, 2.0 * t.r, lr)?;
        }
        Ok(vec![(); tasks.len()])
    }

    /// A new handle holding `params − lr·g`, both on the device.
    fn stepped(&self, params: &B::F32, g: &B::F32, lr: f32) -> Result<B::F32, GpuError> {
        let mut next = self.b.zeros_f32(B::len_f32(params))?;
        ops::sgd_step(&self.b, params, g, &mut next, lr)?;
        Ok(next)
    }

    /// The batched pass of [`GpuTasks::step_group`]: every job's loss, and with `grad` its
    /// gradient at that place.
    fn pass(
        &self,
        jobs: &mut [&mut StepJob<'_, B::F32>],
        mode: Mode,
        grad: Option<Place>,
        codes: Option<Vec<B::U8>>,
    ) -> Result<(Vec<LossOut>, Option<Grads<B>>), GpuError> {
        let layers = self.dims.len();
        let n = jobs[0].batch.n;
        let params: Vec<&B::F32> = jobs.iter().map(|j| j.params).collect();
        let x = stacked(jobs.iter().map(|j| j.batch), self.input_len);
        let replay: Vec<Vec<u8>> = match mode {
            Mode::Replay if codes.is_none() => (0..self.kinked_layers())
                .map(|l| {
                    jobs.iter()
                        .flat_map(|j| match &j.kinks {
                            Kinks::Replay(p) => p.codes[l].clone(),
                            _ => unreachable!("jobs are grouped by kink mode"),
                        })
                        .collect()
                })
                .collect(),
            _ => vec![],
        };
        let codes = match (mode, codes) {
            (Mode::Replay, Some(device)) => Replay::device(device),
            (Mode::Replay, None) => Replay::Host(&replay),
            _ => Replay::None,
        };
        // The conv net's kinks are its blocks'; the MLP's, its hidden layers'.
        let (body_replay, dense_replay) = match self.conv {
            Some(_) => (codes, Replay::None),
            None => (Replay::None, codes),
        };
        let (body, input) = self.body_forward(&params, n, &x, body_replay, grad.is_some())?;
        let f = self.forward(&params, layers, n, input, mode, dense_replay)?;
        if mode == Mode::Record {
            let codes: Vec<&B::U8> = match &body {
                Some(pass) => pass.codes.iter().collect(),
                None => f.codes[..self.kinked_layers()].iter().collect(),
            };
            self.record(&codes, jobs)?;
        }
        let targets: Vec<&Targets> = jobs.iter().map(|j| &j.batch.y).collect();
        let (outs, dout) = self.loss(f.inputs.last().expect("output"), n, &targets)?;
        let grads = match grad {
            Some(place) => {
                let shape = (jobs.len(), layers, n);
                Some(self.gradients(&f, body.as_ref(), shape, mode, dout, place)?)
            }
            None => None,
        };
        Ok((outs, grads))
    }

    /// Every task's gradient at `place` from `dout = ∂L/∂output`: through the first `layers`
    /// dense layers of `f` (`shape` is tasks, layers, examples), then the conv body's `pass`
    /// (kept) where there is one.
    fn gradients(
        &self,
        f: &Forward<B>,
        body: Option<&BodyPass<B>>,
        shape: (usize, usize, usize),
        mode: Mode,
        dout: B::F32,
        place: Place,
    ) -> Result<Grads<B>, GpuError> {
        let input_grad = body.is_some();
        let (mut grads, dfeat) = self.backward(f, shape, mode, dout, input_grad, place)?;
        if let (Some(conv), Some(pass), Some(dfeat)) = (&self.conv, body, dfeat) {
            conv.backward(&self.b, pass, &dfeat, &mut grads)?;
        }
        Ok(grads)
    }

    /// Width of the body's features: the conv blocks', the last hidden layer's, or the input.
    fn feature_dim(&self) -> usize {
        match (&self.conv, self.dims.len()) {
            (Some(c), _) => c.feature_dim(),
            (None, 1) => self.input_len,
            (None, l) => self.dims[l - 2].1,
        }
    }

    /// One batched `features` call over jobs that share `n` and whether they want gradients.
    fn features_group(
        &self,
        jobs: &mut [&mut EmbedJob<'_, B::F32>],
        grad: bool,
    ) -> Result<Vec<StepOut>, GpuError> {
        let layers = self.dims.len() - 1;
        let n = jobs[0].n;
        let x: Vec<f32> = jobs.iter().flat_map(|j| j.x.iter().copied()).collect();
        let params: Vec<&B::F32> = jobs.iter().map(|j| j.body).collect();
        let (body, input) = self.body_forward(&params, n, &x, Replay::None, grad)?;
        let f = self.forward(&params, layers, n, input, Mode::Free, Replay::None)?;
        let d = self.feature_dim();
        let feats = self.b.download_f32(f.inputs.last().expect("features"))?;
        let mut outs = vec![];
        let mut dfeats = Vec::with_capacity(feats.len());
        for (t, j) in jobs.iter_mut().enumerate() {
            let (out, df) = (j.head)(&feats[t * n * d..(t + 1) * n * d], d);
            outs.push(out);
            dfeats.extend(df);
        }
        let grads: Vec<Option<Vec<f32>>> = if !grad {
            vec![None; jobs.len()]
        } else if layers == 0 && body.is_none() {
            vec![Some(vec![]); jobs.len()]
        } else {
            let dout = self.b.upload_f32(&dfeats)?;
            let shape = (jobs.len(), layers, n);
            self.gradients(&f, body.as_ref(), shape, Mode::Free, dout, Place::Host)?
                .into_host()
                .into_iter()
                .map(Some)
                .collect()
        };
        Ok(outs
            .into_iter()
            .zip(grads)
            .map(|(out, grad)| StepOut { out, grad })
            .collect())
    }
}

/// One task of a device `step_back`: where its inner step started, on what, its vector and the
/// HVP's radius.
struct Back<'a, B: Backend> {
    theta: &'a B::F32,
    batch: &'a Batch,
    v: &'a mut B::F64,
    r: f64,
}

/// The batches' inputs, stacked task-major.
fn stacked<'a>(batches: impl Iterator<Item = &'a Batch>, input_len: usize) -> Vec<f32> {
    let mut x = vec![];
    for b in batches {
        debug_assert_eq!(b.x.len(), b.n * input_len, "batch input size");
        x.extend_from_slice(&b.x);
    }
    x
}

/// Indices of `keys` grouped by equal key, groups in key order, each in job order; a call's
/// jobs are independent (the contract), so grouping changes no result.
fn groups<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, Vec<usize>> {
    let mut g: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.enumerate() {
        g.entry(k).or_default().push(i);
    }
    g
}

/// Runs `run` on each group of `items` (by `key`) and puts the results back in item order.
fn grouped<T, K: Ord + Copy, O>(
    items: &mut [T],
    key: impl Fn(&T) -> K,
    mut run: impl FnMut(&mut [&mut T], K) -> Vec<O>,
) -> Vec<O> {
    let gs = groups(items.iter().map(&key));
    let mut slots: Vec<Option<&mut T>> = items.iter_mut().map(Some).collect();
    let mut out: Vec<Option<O>> = (0..slots.len()).map(|_| None).collect();
    for (k, idx) in gs {
        let mut group: Vec<&mut T> = idx
            .iter()
            .map(|&i| slots[i].take().expect("each job in one group"))
            .collect();
        for (i, r) in idx.iter().zip(run(&mut group, k)) {
            out[*i] = Some(r);
        }
    }
    out.into_iter()
        .map(|o| o.expect("every job answered"))
        .collect()
}

impl<B: Kernels> LockStepModel for GpuTasks<B> {
    type Params = B::F32;
    type Vector = B::F64;

    fn vector(&mut self, values: Vec<f64>) -> B::F64 {
        ok(self.b.upload_f64(&values))
    }

    fn read_vector(&mut self, v: B::F64) -> Vec<f64> {
        ok(self.b.download_f64(&v))
    }

    /// On the device: the gradients are made and widened there; only the losses come back.
    fn gradient_vectors(
        &mut self,
        params: &[&B::F32],
        batches: &[&Batch],
    ) -> Vec<(LossOut, B::F64)> {
        self.gradient_calls(params, batches, Call::Vectors, |c| self.vectors_group(c))
    }

    /// On the device: the vectors, the kink codes recorded at θ, the shifted points and their
    /// gradients stay there; what crosses the bus is the norms' block sums, the batches and the
    /// losses.
    fn step_back(
        &mut self,
        thetas: &[&B::F32],
        batches: &[&Batch],
        mut vs: Vec<B::F64>,
        lr: f64,
        eps: f64,
    ) -> Vec<B::F64> {
        let radii = ok(self.radii(&vs, eps));
        let mut tasks: Vec<Back<'_, B>> = vs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, v)| {
                radii[i].map(|r| Back {
                    theta: thetas[i],
                    batch: batches[i],
                    v,
                    r,
                })
            })
            .collect();
        let key = |t: &Back<'_, B>| (t.batch.n, matches!(t.batch.y, Targets::Classes(_)));
        grouped(&mut tasks, key, |group, (n, _)| {
            self.in_calls(group, n, Call::StepBack, |c| self.step_back_group(c, lr))
        });
        drop(tasks);
        vs
    }

    fn load(&mut self, values: Vec<f32>) -> B::F32 {
        ok(self.b.upload_f32(&values))
    }

    /// One upload, then copies on the device.
    fn replicate(&mut self, values: Vec<f32>, n: usize) -> Vec<B::F32> {
        if n == 0 {
            return vec![];
        }
        ok((|| {
            let first = self.b.upload_f32(&values)?;
            let mut out = Vec::with_capacity(n);
            for _ in 1..n {
                let mut copy = self.b.zeros_f32(values.len())?;
                self.b.copy_f32(&first, 0, &mut copy, 0, values.len())?;
                out.push(copy);
            }
            out.push(first);
            Ok(out)
        })())
    }

    /// A download: the contract's host arithmetic pays one transfer per handle read.
    fn read<'p>(&'p self, params: &'p B::F32) -> Cow<'p, [f32]> {
        Cow::Owned(ok(self.b.download_f32(params)))
    }

    /// On the device: the gradient goes up, `params` does not come down.
    fn sgd_step(&mut self, params: &B::F32, grad: &[f32], lr: f64) -> B::F32 {
        ok((|| {
            let g = self.b.upload_f32(grad)?;
            self.stepped(params, &g, lr as f32)
        })())
    }

    /// On the device: each task's gradient is made, applied and freed there; only the losses
    /// come back.
    fn descend(
        &mut self,
        params: &[&B::F32],
        batches: &[&Batch],
        lr: f64,
    ) -> Vec<(LossOut, B::F32)> {
        self.gradient_calls(params, batches, Call::Descend, |c| {
            self.descend_group(c, lr as f32)
        })
    }

    fn step(&mut self, jobs: &mut [StepJob<'_, B::F32>]) -> Vec<StepOut> {
        let key = |j: &StepJob<'_, B::F32>| {
            let classes = matches!(j.batch.y, Targets::Classes(_));
            (j.batch.n, classes, mode_of(&j.kinks), j.grad)
        };
        grouped(jobs, key, |group, (n, _, mode, grad)| {
            let call = if grad { Call::Gradient } else { Call::Loss };
            self.in_calls(group, n, call, |c| self.step_group(c, mode, grad))
        })
    }

    fn features(&mut self, jobs: &mut [EmbedJob<'_, B::F32>]) -> Vec<StepOut> {
        grouped(
            jobs,
            |j| (j.n, j.grad),
            |group, (n, grad)| {
                let call = Call::Features { grad };
                self.in_calls(group, n, call, |c| self.features_group(c, grad))
            },
        )
    }
}
