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
//!   ([`descend`](LockStepModel::descend): on a device the gradient never leaves it); the HVP's
//!   shifted points `θ ± r·v`, Meta-SGD's `θ − α ⊙ g` and Adam still go through `read`/`load`.
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

use super::{Evaluator, FeatureLoss, Kinks, LossOut};
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

    /// A handle holding `values`.
    fn load(&mut self, values: Vec<f32>) -> Self::Params;

    /// The values behind a handle, on the host.
    fn read<'p>(&'p self, params: &'p Self::Params) -> Cow<'p, [f32]>;

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
