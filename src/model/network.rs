//! [`Network`]: a model spec bound to a family's shape — its layout, initialisation and the
//! evaluator for a device. Apart from `mod.rs`, which holds the vocabulary the evaluators share,
//! so they do not import the module that builds them.

use super::ops::device::{self, ModelDevice};
use super::{conv, init, mlp, BatchNormMode, Evaluator, Layout, ModelError};
use crate::device::CustomOp;
use crate::experiment::{DeviceSpec, ModelSpec};
use crate::tasks::FamilyShape;

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
        device::require::<D>(self.custom_ops())?;
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
