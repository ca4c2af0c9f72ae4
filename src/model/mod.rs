//! Networks with run-time shapes, written as functions over flat parameter vectors.
//!
//! dfdx 0.13's `nn` modules are const-generic, so a shape read from a file cannot use them. Here a
//! model is a [`Layout`] (named tensors inside one flat `Vec<f32>`) plus an [`Evaluator`] that runs
//! the forward and backward pass on a dfdx device. Algorithms only ever see flat vectors, which
//! keeps them device-agnostic and makes checkpointing trivial.

pub mod context;
pub mod conv;
mod error;
pub mod head;
pub mod init;
mod kinks;
pub mod lockstep;
pub mod loss;
pub mod metric;
pub mod mlp;
pub mod ops;
mod top;

use crate::device::CustomOp;
use crate::experiment::{DeviceSpec, ModelSpec};
use crate::tasks::{Batch, FamilyShape};
use ops::device::ModelDevice;

pub use error::ModelError;
pub use kinks::{KinkPattern, Kinks};
pub use lockstep::{EmbedJob, LockStepModel, SerialTasks, StepJob, StepOut};

/// One named tensor inside the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl ParamTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Where every tensor lives in the flat vector. The head (the final linear layer) comes last,
/// starting at `head_start`, so a multi-task model is `trunk ++ head` without copies of the trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub tensors: Vec<ParamTensor>,
    pub total: usize,
    pub head_start: usize,
}

impl Layout {
    pub(crate) fn push(&mut self, name: impl Into<String>, shape: Vec<usize>) {
        let t = ParamTensor {
            name: name.into(),
            shape,
            offset: self.total,
        };
        self.total += t.len();
        self.tensors.push(t);
    }

    pub(crate) fn mark_head(&mut self) {
        self.head_start = self.total;
    }

    pub fn head_len(&self) -> usize {
        self.total - self.head_start
    }

    /// Width of the features the head reads: the body's output per example.
    pub fn feature_dim(&self) -> usize {
        self.tensors
            .iter()
            .find(|t| t.offset == self.head_start)
            .map_or(0, |t| t.shape[0])
    }
}

// Recorded with every evaluation's protocol, so it lives with the metric records.
pub use crate::metrics::BatchNormMode;

/// A loss on body features that the caller computes: given the `n × d` features (row-major),
/// it returns the loss and ∂loss/∂features (same layout). Metric-based arms (prototypes,
/// attention, relation module) and ANIL's head on cached features are such losses.
pub type FeatureLoss<'a> = dyn FnMut(&[f32], usize) -> (LossOut, Vec<f32>) + 'a;

/// Loss of one batch: mean squared error (regression) or mean cross-entropy (classification).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOut {
    pub loss: f32,
    /// Correctly classified examples, for classification.
    pub correct: Option<usize>,
}

/// Runs a model on one device. Created inside the worker thread that uses it (a CUDA device is
/// not `Send`), so implementations need not be `Send`.
pub trait Evaluator {
    /// Loss of `params` on `batch`; when `grad` is given, ∂loss/∂params is written into it.
    /// `kinks` says how piecewise-linear units choose their branch; evaluators of smooth
    /// networks may ignore it.
    fn evaluate_with(
        &mut self,
        params: &[f32],
        batch: &Batch,
        grad: Option<&mut [f32]>,
        kinks: Kinks,
    ) -> LossOut;

    /// [`Evaluator::evaluate_with`] with free kinks.
    fn evaluate(&mut self, params: &[f32], batch: &Batch, grad: Option<&mut [f32]>) -> LossOut {
        self.evaluate_with(params, batch, grad, Kinks::Free)
    }

    /// Run the body (every layer but the head) with parameters `body` (the first
    /// `layout.head_start` values) on `x`, `n` examples; give its `n × d` features to `head`,
    /// and backpropagate the ∂loss/∂features it returns into `grad` (length `body.len()`) when
    /// given. The loss is `head`'s. Batch norm sees the `n` examples as one batch.
    fn features(
        &mut self,
        body: &[f32],
        n: usize,
        x: &[f32],
        grad: Option<&mut [f32]>,
        head: &mut FeatureLoss,
    ) -> LossOut;
}

/// A model spec bound to a family's input/output shape.
#[derive(Debug, Clone)]
pub struct Network {
    pub spec: ModelSpec,
    pub shape: FamilyShape,
    pub layout: Layout,
}

impl Network {
    pub fn new(spec: &ModelSpec, shape: &FamilyShape) -> Result<Network, ModelError> {
        let layout = match spec {
            ModelSpec::Mlp(m) => mlp::layout(m, shape),
            ModelSpec::Conv(c) => conv::layout(c, shape)?,
        };
        Ok(Network {
            spec: spec.clone(),
            shape: shape.clone(),
            layout,
        })
    }

    pub fn batch_norm(&self) -> BatchNormMode {
        match &self.spec {
            ModelSpec::Conv(c) if c.batch_norm => BatchNormMode::Transductive,
            _ => BatchNormMode::None,
        }
    }

    pub fn num_params(&self) -> usize {
        self.layout.total
    }

    /// PyTorch-default initialisation (uniform ±1/√fan_in; batch-norm scale 1, shift 0).
    pub fn init(&self, rng: &mut crate::tasks::Rng) -> Vec<f32> {
        init::init_params(&self.layout, rng)
    }

    /// A fresh head for a new task: zeros, so a new task starts from the trunk's features alone.
    pub fn fresh_head(&self) -> Vec<f32> {
        vec![0.0; self.layout.head_len()]
    }

    /// The custom ops this model needs from its device.
    pub fn custom_ops(&self) -> &'static [CustomOp] {
        self.spec.custom_ops()
    }

    /// Build an evaluator on `device`. Call it in the thread that will use it.
    pub fn evaluator(
        &self,
        device: DeviceSpec,
        seed: u64,
    ) -> Result<Box<dyn Evaluator>, ModelError> {
        match device {
            DeviceSpec::Cpu => self.evaluator_on(dfdx::tensor::Cpu::seed_from_u64(seed)),
            DeviceSpec::Cuda(ordinal) => cuda::evaluator(self, ordinal, seed),
        }
    }

    /// The evaluator for this model on `dev`; a device that lacks one of the model's ops is
    /// refused here, naming it.
    fn evaluator_on<D: ModelDevice + 'static>(
        &self,
        dev: D,
    ) -> Result<Box<dyn Evaluator>, ModelError> {
        ops::device::require::<D>(self.custom_ops())?;
        Ok(match &self.spec {
            ModelSpec::Mlp(m) => Box::new(mlp::MlpEval::new(dev, m, &self.shape, &self.layout)),
            ModelSpec::Conv(c) => Box::new(conv::ConvEval::new(dev, c, &self.shape, &self.layout)?),
        })
    }
}

/// `Cuda(n)` for one task at a time: the GPU engine (`crate::gpu::GpuTasks`) runs whole
/// meta-batches in lock-step, and the worker pool (`crate::pool::WorkerPool::new`) chooses it
/// for `device: Cuda(n)`; a per-task [`Evaluator`] on the GPU is not built. After checking
/// that the device could be opened (a missing driver, NVRTC or ordinal is named with its fix)
/// it refuses plainly.
mod cuda {
    use super::{Evaluator, ModelError, Network};

    pub fn evaluator(
        _net: &Network,
        ordinal: usize,
        _seed: u64,
    ) -> Result<Box<dyn Evaluator>, ModelError> {
        crate::gpu::probe::check(ordinal)?;
        Err(ModelError::NoGpuBackend { ordinal })
    }
}
