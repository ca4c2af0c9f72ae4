//! The GPU engine as a backend of the lock-step contract (`model::lockstep`): [`GpuTasks`] runs
//! a meta-batch's tasks together, one batched launch per layer (per-task strided-batched SGEMM,
//! then one bias + activation kernel over every task), on any [`Kernels`] backend: [`super::Cuda`]
//! on a GPU, [`super::Host`] (the same kernels on the CPU) in the tests.
//!
//! What stays on the device: every parameter handle ([`LockStepModel::Params`] is a device
//! buffer), the activations, kink codes and gradients of a call. What the contract forces across
//! the bus, per batched call: the batches' inputs and targets (host [`Batch`]es), the losses,
//! every gradient a job asks for (`StepOut::grad` is a host vector), recorded kink codes (a
//! host [`KinkPattern`]) and replayed ones, and for `features` the features and ∂loss/∂features
//! (the loss is a host closure). `read` downloads a handle, `load` uploads one: the algorithms'
//! host arithmetic (SGD steps, the HVP's θ ± r·v) goes through them.
//!
//! The contract's methods return no errors, so a device error (out of memory, a failed launch)
//! panics with the error's message; the worker pool turns that into `PoolError::Panicked`.
//!
//! Built for the MLP; the conv net's blocks have their ops (`ops::conv_forward`, …) but no
//! [`GpuTasks`] yet ([`GpuTasks::new`] refuses it, naming it).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::ops::{self, Act, DenseGeom, ReluKinks};
use super::{Backend, GpuError, Kernels};
use crate::experiment::{Activation, ModelSpec};
use crate::model::{
    EmbedJob, Kinks, LockStepModel, LossOut, ModelError, Network, StepJob, StepOut,
};
use crate::tasks::{Batch, Targets};

/// A model's tasks in lock-step on backend `B`. See the module documentation.
pub struct GpuTasks<B: Kernels> {
    b: B,
    /// (in, out) of each layer; the last is the head.
    dims: Vec<(usize, usize)>,
    act: Act,
    input_len: usize,
}

/// A device error inside a contract method, which has no error to return (see the module
/// documentation).
fn ok<T>(r: Result<T, GpuError>) -> T {
    r.unwrap_or_else(|e| panic!("GPU engine: {e}"))
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

/// The forward pass of a group: `inputs[l]` is layer `l`'s input (the last, the output).
struct Forward<B: Backend> {
    inputs: Vec<B::F32>,
    ws: Vec<B::F32>,
    bs: Vec<B::F32>,
    codes: Vec<B::U8>,
}

impl<B: Kernels> GpuTasks<B> {
    /// The engine for `net` on `b`. Only the MLP is built; the conv net is refused, named.
    pub fn new(b: B, net: &Network) -> Result<GpuTasks<B>, ModelError> {
        let m = match &net.spec {
            ModelSpec::Mlp(m) => m,
            ModelSpec::Conv(_) => {
                return Err(ModelError::NotOnGpu {
                    what: "the conv net (conv4)",
                })
            }
        };
        let dims = net
            .layout
            .tensors
            .iter()
            .filter(|t| t.name.ends_with(".weight"))
            .map(|t| (t.shape[0], t.shape[1]))
            .collect();
        let act = match m.activation {
            Activation::Relu => Act::Relu,
            Activation::Tanh => Act::Tanh,
        };
        Ok(GpuTasks {
            b,
            dims,
            act,
            input_len: net.shape.input_len(),
        })
    }

    pub fn backend(&self) -> &B {
        &self.b
    }

    /// Parameters of the first `layers` layers, offsets of layer `l`'s weight and bias.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let at: usize = self.dims[..l].iter().map(|&(i, o)| i * o + o).sum();
        let (i, o) = self.dims[l];
        (at, at + i * o)
    }

    /// `len` values at `at` of every handle, stacked task-major on the device.
    fn gather(&self, params: &[&B::F32], at: usize, len: usize) -> Result<B::F32, GpuError> {
        let mut out = self.b.zeros_f32(params.len() * len)?;
        for (t, p) in params.iter().enumerate() {
            self.b.copy_f32(p, at, &mut out, t * len, len)?;
        }
        Ok(out)
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

    /// The first `layers` layers on `n` rows of every task's `x` (stacked), kinks as `mode`
    /// says (`replay[l]`: layer `l`'s codes stacked, for `Replay`).
    fn forward(
        &self,
        params: &[&B::F32],
        layers: usize,
        n: usize,
        x: &[f32],
        mode: Mode,
        replay: &[Vec<u8>],
    ) -> Result<Forward<B>, GpuError> {
        let tasks = params.len();
        let mut f = Forward {
            inputs: vec![self.b.upload_f32(x)?],
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
            let w = self.gather(params, wo, i * o)?;
            let bias = self.gather(params, bo, o)?;
            let act = self.layer_act(l, layers, mode);
            let mut code = match act.1 {
                ReluKinks::Replay => self.b.upload_u8(replay.get(l).expect("codes to replay"))?,
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

    /// Backward through the first `layers` layers of `f` from `dout = ∂L/∂output`: every task's
    /// gradient of those layers' parameters, in the layout's order.
    fn backward(
        &self,
        f: &Forward<B>,
        tasks: usize,
        layers: usize,
        n: usize,
        mode: Mode,
        dout: B::F32,
    ) -> Result<Vec<Vec<f32>>, GpuError> {
        let len: usize = self.dims[..layers].iter().map(|&(i, o)| i * o + o).sum();
        let mut grads = vec![vec![0.0f32; len]; tasks];
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
            let mut dx = if l > 0 {
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
            let (dw, db) = (self.b.download_f32(&dw)?, self.b.download_f32(&db)?);
            let (wo, bo) = self.offsets(l);
            for (t, grad) in grads.iter_mut().enumerate() {
                grad[wo..wo + i * o].copy_from_slice(&dw[t * i * o..(t + 1) * i * o]);
                grad[bo..bo + o].copy_from_slice(&db[t * o..(t + 1) * o]);
            }
            if let Some(dx) = dx {
                dh = dx;
            }
        }
        Ok(grads)
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

    /// One batched call over jobs that share a batch size, target kind, kink mode and whether
    /// they want gradients.
    fn step_group(
        &self,
        jobs: &mut [&mut StepJob<'_, B::F32>],
        mode: Mode,
        grad: bool,
    ) -> Result<Vec<StepOut>, GpuError> {
        let layers = self.dims.len();
        let n = jobs[0].batch.n;
        let params: Vec<&B::F32> = jobs.iter().map(|j| j.params).collect();
        let x = stacked(jobs.iter().map(|j| j.batch), self.input_len);
        // Only ReLUs have kinks: a tanh network records none and replays none, as on the CPU.
        let relu = self.act == Act::Relu;
        let replay: Vec<Vec<u8>> = match mode {
            Mode::Replay if relu => (0..layers - 1)
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
        let f = self.forward(&params, layers, n, &x, mode, &replay)?;
        if mode == Mode::Record && relu {
            for l in 0..layers - 1 {
                let codes = self.b.download_u8(&f.codes[l])?;
                let per = n * self.dims[l].1;
                for (t, j) in jobs.iter_mut().enumerate() {
                    if let Kinks::Record(p) = &mut j.kinks {
                        p.codes.push(codes[t * per..(t + 1) * per].to_vec());
                    }
                }
            }
        }
        let targets: Vec<&Targets> = jobs.iter().map(|j| &j.batch.y).collect();
        let (outs, dout) = self.loss(f.inputs.last().expect("output"), n, &targets)?;
        let grads = if grad {
            self.backward(&f, jobs.len(), layers, n, mode, dout)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; jobs.len()]
        };
        Ok(outs
            .into_iter()
            .zip(grads)
            .map(|(out, grad)| StepOut { out, grad })
            .collect())
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
        let f = self.forward(&params, layers, n, &x, Mode::Free, &[])?;
        let d = if layers == 0 {
            self.input_len
        } else {
            self.dims[layers - 1].1
        };
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
        } else if layers == 0 {
            vec![Some(vec![]); jobs.len()]
        } else {
            let dout = self.b.upload_f32(&dfeats)?;
            self.backward(&f, jobs.len(), layers, n, Mode::Free, dout)?
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
fn grouped<T, K: Ord + Copy>(
    items: &mut [T],
    key: impl Fn(&T) -> K,
    mut run: impl FnMut(&mut [&mut T], K) -> Vec<StepOut>,
) -> Vec<StepOut> {
    let gs = groups(items.iter().map(&key));
    let mut slots: Vec<Option<&mut T>> = items.iter_mut().map(Some).collect();
    let mut out: Vec<Option<StepOut>> = (0..slots.len()).map(|_| None).collect();
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

    fn load(&mut self, values: Vec<f32>) -> B::F32 {
        ok(self.b.upload_f32(&values))
    }

    /// A download: the contract's host arithmetic pays one transfer per handle read.
    fn read<'p>(&'p self, params: &'p B::F32) -> Cow<'p, [f32]> {
        Cow::Owned(ok(self.b.download_f32(params)))
    }

    fn step(&mut self, jobs: &mut [StepJob<'_, B::F32>]) -> Vec<StepOut> {
        let key = |j: &StepJob<'_, B::F32>| {
            let classes = matches!(j.batch.y, Targets::Classes(_));
            (j.batch.n, classes, mode_of(&j.kinks), j.grad)
        };
        grouped(jobs, key, |group, (_, _, mode, grad)| {
            ok(self.step_group(group, mode, grad))
        })
    }

    fn features(&mut self, jobs: &mut [EmbedJob<'_, B::F32>]) -> Vec<StepOut> {
        grouped(
            jobs,
            |j| (j.n, j.grad),
            |group, (_, grad)| ok(self.features_group(group, grad)),
        )
    }
}
