//! The contract between the algorithms and a model backend: the tasks of a meta-batch move in
//! lock-step. An inner loop is written as "step k for every task", one batched call per step,
//! so a device that runs a whole meta-batch per kernel launch (the CUDA engine) needs nothing
//! more from the algorithms than this trait.
//!
//! # For an implementer
//!
//! * **Parameters are handles** ([`LockStepModel::Params`]) that the backend owns. An algorithm
//!   makes one with [`load`](LockStepModel::load) from host values and reads one back with
//!   [`read`](LockStepModel::read) only where it does arithmetic on the host. On the CPU a
//!   handle is the flat `Vec<f32>` itself: `load` moves it in and `read` borrows it, so the
//!   contract costs nothing there. A device backend keeps the values resident and pays a
//!   transfer in `read`/`load`. Arithmetic on handles is a method with a default that goes
//!   through `read`/`load` (the CPU's own arithmetic, bit for bit), which a device backend
//!   overrides to run where the handle lives: so far the SGD step `θ − α·g`
//!   ([`sgd_step`](LockStepModel::sgd_step)) and the whole inner step, gradient and update
//!   ([`descend`](LockStepModel::descend): on a device the gradient never leaves it), and
//!   second-order MAML's backward pass: its f64 vectors are handles too
//!   ([`Vector`](LockStepModel::Vector)), made from the query gradients
//!   ([`gradient_vectors`](LockStepModel::gradient_vectors)) and carried back through each
//!   inner step ([`step_back`](LockStepModel::step_back): the kinks at θ, the HVP's shifted
//!   points `θ ± r·v` and their gradients made where θ lives); every task's start is one
//!   upload ([`replicate`](LockStepModel::replicate)). Meta-SGD's and CAVIA's HVPs ([`hvps`] on host
//!   vectors), Meta-SGD's `θ − α ⊙ g` and Adam still go through `read`/`load`.
//! * **[`step`](LockStepModel::step)** is the one batched call of an inner step: every job has
//!   its own parameters, batch and kink mode, and asks for the gradient or not. Jobs are
//!   independent: a job's result must not depend on the other jobs in the call, on their order
//!   or on how a caller cut a meta-batch into calls (the CPU's worker pool cuts it into one
//!   chunk per worker). Results come back in job order.
//! * **Kink modes** ([`Kinks`]): `Record` writes the branch of every ReLU and max-pool unit into
//!   the job's [`KinkPattern`](super::KinkPattern); `Replay` takes them from a pattern recorded on
//!   the same batch; `Free` decides them from the inputs. Second-order MAML's finite-difference
//!   Hessian-vector products record at θ and replay at θ ± r·v.
//! * **[`features`](LockStepModel::features)** runs the body only (every layer but the head) and
//!   hands each job's `n × d` features to the job's own host-side loss ([`FeatureLoss`]), then
//!   backpropagates the ∂loss/∂features that loss returns. The metric arms and ANIL use it.
//! * Losses are f32 means over the batch; accuracy counts come back as `correct`. Gradients
//!   are the length of the job's parameters.
//!
//! [`SerialTasks`] is the CPU backend (and any [`Evaluator`]'s): it runs the jobs one after the
//! other on one worker's evaluator. `WorkerPool::lockstep` runs the chunks of a meta-batch on
//! its workers, each chunk through a `SerialTasks`.

use std::borrow::Cow;

use super::hvp;
use super::{Evaluator, FeatureLoss, KinkPattern, Kinks, LossOut};
use crate::tasks::Batch;

/// One task's share of a batched [`LockStepModel::step`].
pub struct StepJob<'a, P> {
    pub params: &'a P,
    pub batch: &'a Batch,
    pub kinks: Kinks<'a>,
    /// Whether ∂loss/∂params is wanted.
    pub grad: bool,
}

impl<'a, P> StepJob<'a, P> {
    /// Loss only, free kinks.
    pub fn loss(params: &'a P, batch: &'a Batch) -> Self {
        StepJob {
            params,
            batch,
            kinks: Kinks::Free,
            grad: false,
        }
    }

    /// Loss and gradient, free kinks.
    pub fn gradient(params: &'a P, batch: &'a Batch) -> Self {
        StepJob {
            grad: true,
            ..StepJob::loss(params, batch)
        }
    }
}

/// One task's result of a batched call.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOut {
    pub out: LossOut,
    /// ∂loss/∂params (or ∂loss/∂body for [`LockStepModel::features`]) when the job asked.
    pub grad: Option<Vec<f32>>,
}

impl StepOut {
    /// The gradient of a job that asked for one.
    pub fn into_grad(self) -> (LossOut, Vec<f32>) {
        (self.out, self.grad.expect("the job asked for its gradient"))
    }
}

/// One task's share of a batched [`LockStepModel::features`]: the body with parameters `body`
/// (the first `layout.head_start` values of a network's vector) on `n` examples `x`, batch norm
/// seeing them as one batch, and the loss `head` on the features.
pub struct EmbedJob<'a, P> {
    pub body: &'a P,
    pub n: usize,
    pub x: &'a [f32],
    pub head: &'a mut FeatureLoss<'a>,
    pub grad: bool,
}

/// One batched [`LockStepModel::features`] call over `tasks[i]` = (body, examples `n`, inputs
/// `x`), each through its own loss `losses[i]`, with ∂loss/∂body where `grad`; in task order.
/// The jobs borrow the losses only for the call, so what the losses write is readable once they
/// are dropped.
pub fn embed_all<'j, 'f: 'j, M: LockStepModel + ?Sized>(
    m: &mut M,
    tasks: impl IntoIterator<Item = (&'j M::Params, usize, &'j [f32])>,
    losses: &'j mut [Box<FeatureLoss<'f>>],
    grad: bool,
) -> Vec<StepOut>
where
    M::Params: 'j,
{
    let mut jobs: Vec<EmbedJob<'j, M::Params>> = tasks
        .into_iter()
        .zip(losses.iter_mut())
        .map(|((body, n, x), head)| EmbedJob {
            body,
            n,
            x,
            head: &mut **head,
            grad,
        })
        .collect();
    m.features(&mut jobs)
}

/// A model that runs a meta-batch's tasks in lock-step. See the module documentation.
pub trait LockStepModel {
    /// A task's parameter vector as the backend holds it.
    type Params;

    /// A task's f64 vector as the backend holds it: second-order MAML's backward vector (the
    /// query gradient carried back through the inner steps).
    type Vector;

    /// A handle holding `values`.
    fn load(&mut self, values: Vec<f32>) -> Self::Params;

    /// `n` handles each holding `values`: every task of a meta-batch starting from θ. A device
    /// backend uploads the values once and copies them there; by default `n` loads.
    fn replicate(&mut self, values: Vec<f32>, n: usize) -> Vec<Self::Params> {
        (0..n).map(|_| self.load(values.clone())).collect()
    }

    /// The values behind a handle, on the host.
    fn read<'p>(&'p self, params: &'p Self::Params) -> Cow<'p, [f32]>;

    /// A vector holding `values`.
    fn vector(&mut self, values: Vec<f64>) -> Self::Vector;

    /// The values of a vector, on the host.
    fn read_vector(&mut self, v: Self::Vector) -> Vec<f64>;

    /// One batched inner step: every job's loss, and its gradient where asked; in job order.
    fn step(&mut self, jobs: &mut [StepJob<'_, Self::Params>]) -> Vec<StepOut>;

    /// Every job's body features through its own loss, and ∂loss/∂body where asked; in job order.
    fn features(&mut self, jobs: &mut [EmbedJob<'_, Self::Params>]) -> Vec<StepOut>;

    /// A handle holding `params − lr·grad` ([`sgd_step`], the reference every backend's step is
    /// held to). A device backend does the arithmetic where the handle lives; by default it
    /// goes through `read` and `load`.
    fn sgd_step(&mut self, params: &Self::Params, grad: &[f32], lr: f64) -> Self::Params {
        let next = sgd_step(&self.read(params), grad, lr);
        self.load(next)
    }

    /// One batched inner SGD step, free kinks: each task's loss at `params[i]` on `batches[i]`
    /// and a handle holding `params[i] − lr·∇` (the same values as [`sgd_step`] of its
    /// gradient). A device backend makes and applies the gradient where the handles live, so it
    /// never crosses the bus; by default it goes through `gradients` and `sgd_step`.
    fn descend(
        &mut self,
        params: &[&Self::Params],
        batches: &[&Batch],
        lr: f64,
    ) -> Vec<(LossOut, Self::Params)> {
        let grads = self.gradients(params, batches);
        params
            .iter()
            .zip(grads)
            .map(|(p, (out, g))| (out, self.sgd_step(p, &g, lr)))
            .collect()
    }

    /// Loss and gradient of each `params[i]` on `batches[i]`, free kinks, the gradient widened
    /// to f64 as a vector: where second-order MAML's backward pass starts. By default through
    /// `gradients` and `vector`.
    fn gradient_vectors(
        &mut self,
        params: &[&Self::Params],
        batches: &[&Batch],
    ) -> Vec<(LossOut, Self::Vector)> {
        self.gradients(params, batches)
            .into_iter()
            .map(|(out, g)| (out, self.vector(g.iter().map(|&g| g as f64).collect())))
            .collect()
    }

    /// One step back through an inner SGD step of rate `lr` taken from `thetas[i]` on
    /// `batches[i]`, for every task: `vs[i] − lr·H·vs[i]`, the HVP by central differences of
    /// radius `eps/‖v‖` with the kinks recorded at θ ([`hvps`]; the arithmetic in
    /// `model::hvp`). A device backend keeps the vectors, the kink codes, the shifted points
    /// and their gradients where they live; by default it goes through `read_vector`, [`hvps`]
    /// and `vector`.
    fn step_back(
        &mut self,
        thetas: &[&Self::Params],
        batches: &[&Batch],
        vs: Vec<Self::Vector>,
        lr: f64,
        eps: f64,
    ) -> Vec<Self::Vector> {
        let mut host: Vec<Vec<f64>> = vs.into_iter().map(|v| self.read_vector(v)).collect();
        let hs = hvps(self, thetas, batches, &host, eps);
        for (v, h) in host.iter_mut().zip(&hs) {
            hvp::step_back_host(v, h, lr);
        }
        host.into_iter().map(|v| self.vector(v)).collect()
    }

    /// Loss and gradient of each `params[i]` on `batches[i]`, free kinks.
    fn gradients(
        &mut self,
        params: &[&Self::Params],
        batches: &[&Batch],
    ) -> Vec<(LossOut, Vec<f32>)> {
        let mut jobs: Vec<_> = params
            .iter()
            .zip(batches)
            .map(|(p, b)| StepJob::gradient(*p, b))
            .collect();
        self.step(&mut jobs)
            .into_iter()
            .map(StepOut::into_grad)
            .collect()
    }

    /// Loss of each `params[i]` on `batches[i]`, free kinks.
    fn losses(&mut self, params: &[&Self::Params], batches: &[&Batch]) -> Vec<LossOut> {
        let mut jobs: Vec<_> = params
            .iter()
            .zip(batches)
            .map(|(p, b)| StepJob::loss(*p, b))
            .collect();
        self.step(&mut jobs).into_iter().map(|o| o.out).collect()
    }
}

/// For every task, the Hessian of the loss on `batches[i]` at `thetas[i]` times `vs[i]`, by
/// central differences of gradients with the kink pattern frozen at `thetas[i]`: one batched
/// call records the patterns, one replays them at θ ± r·v. A task whose `v` is zero (or not
/// finite) gets zeros and no work.
pub fn hvps<M: LockStepModel + ?Sized>(
    m: &mut M,
    thetas: &[&M::Params],
    batches: &[&Batch],
    vs: &[Vec<f64>],
    eps: f64,
) -> Vec<Vec<f64>> {
    let radii: Vec<Option<f64>> = vs
        .iter()
        .map(|v| hvp::radius(hvp::sum_sq(v), eps))
        .collect();
    let active: Vec<usize> = (0..vs.len()).filter(|&i| radii[i].is_some()).collect();
    let patterns = record_kinks(m, &active, thetas, batches);
    let shifted: Vec<Vec<f32>> = [1.0, -1.0]
        .iter()
        .flat_map(|&sign| active.iter().map(move |&i| (sign, i)))
        .map(|(sign, i)| {
            let r = radii[i].expect("active");
            hvp::shifted(&m.read(thetas[i]), &vs[i], sign * r)
        })
        .collect();
    let shifted: Vec<M::Params> = shifted.into_iter().map(|s| m.load(s)).collect();
    let mut replay: Vec<StepJob<M::Params>> = shifted
        .iter()
        .zip(active.iter().chain(&active))
        .zip(patterns.iter().chain(&patterns))
        .map(|((p, &i), pattern)| StepJob {
            kinks: Kinks::Replay(pattern),
            ..StepJob::gradient(p, batches[i])
        })
        .collect();
    let grads: Vec<Vec<f32>> = m
        .step(&mut replay)
        .into_iter()
        .map(|o| o.into_grad().1)
        .collect();
    let (plus, minus) = grads.split_at(active.len());
    let mut out = vec![vec![]; vs.len()];
    for (j, &i) in active.iter().enumerate() {
        out[i] = hvp::central(&plus[j], &minus[j], 2.0 * radii[i].expect("active"));
    }
    for (o, v) in out.iter_mut().zip(vs) {
        if o.is_empty() {
            *o = vec![0.0; v.len()];
        }
    }
    out
}

/// The kink pattern of each task `i` of `active` at `thetas[i]` on `batches[i]`: one batched
/// loss call that records.
pub fn record_kinks<M: LockStepModel + ?Sized>(
    m: &mut M,
    active: &[usize],
    thetas: &[&M::Params],
    batches: &[&Batch],
) -> Vec<KinkPattern> {
    let mut patterns = vec![KinkPattern::default(); active.len()];
    let mut jobs: Vec<StepJob<M::Params>> = active
        .iter()
        .zip(patterns.iter_mut())
        .map(|(&i, p)| StepJob {
            kinks: Kinks::Record(p),
            ..StepJob::loss(thetas[i], batches[i])
        })
        .collect();
    m.step(&mut jobs);
    drop(jobs);
    patterns
}

/// `θ − lr·g`, in f32 as the parameters are: an inner SGD step on the host.
pub fn sgd_step(theta: &[f32], g: &[f32], lr: f64) -> Vec<f32> {
    theta
        .iter()
        .zip(g)
        .map(|(p, g)| p - (lr as f32) * g)
        .collect()
}

/// The CPU backend: the jobs one after the other on one evaluator, parameters as flat vectors.
pub struct SerialTasks<'e> {
    ev: &'e mut dyn Evaluator,
}

impl<'e> SerialTasks<'e> {
    pub fn new(ev: &'e mut dyn Evaluator) -> Self {
        SerialTasks { ev }
    }
}

impl LockStepModel for SerialTasks<'_> {
    type Params = Vec<f32>;
    type Vector = Vec<f64>;

    fn vector(&mut self, values: Vec<f64>) -> Vec<f64> {
        values
    }

    fn read_vector(&mut self, v: Vec<f64>) -> Vec<f64> {
        v
    }

    fn load(&mut self, values: Vec<f32>) -> Vec<f32> {
        values
    }

    fn read<'p>(&'p self, params: &'p Vec<f32>) -> Cow<'p, [f32]> {
        Cow::Borrowed(params)
    }

    fn step(&mut self, jobs: &mut [StepJob<'_, Vec<f32>>]) -> Vec<StepOut> {
        jobs.iter_mut()
            .map(|j| {
                let mut grad = j.grad.then(|| vec![0.0f32; j.params.len()]);
                let out = self.ev.evaluate_with(
                    j.params,
                    j.batch,
                    grad.as_deref_mut(),
                    j.kinks.reborrow(),
                );
                StepOut { out, grad }
            })
            .collect()
    }

    fn features(&mut self, jobs: &mut [EmbedJob<'_, Vec<f32>>]) -> Vec<StepOut> {
        jobs.iter_mut()
            .map(|j| {
                let mut grad = j.grad.then(|| vec![0.0f32; j.body.len()]);
                let out = self
                    .ev
                    .features(j.body, j.n, j.x, grad.as_deref_mut(), &mut *j.head);
                StepOut { out, grad }
            })
            .collect()
    }
}
