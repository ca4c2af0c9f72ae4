//! Why a model could not be built or run. Apart from `model/mod.rs` so that the device layer
//! (`ops::device`), which the model imports, can name it without importing its parent.

use thiserror::Error;

use crate::device::{CustomOp, DeviceKind};
use crate::experiment::Misfit;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error("CUDA device {ordinal} is there, but a single-task evaluator does not run on it: the GPU engine runs whole meta-batches through the worker pool (`WorkerPool::new`)\n  fix: run the model through the pool, or set device: Cpu")]
    NoGpuBackend { ordinal: usize },
    #[error("{op} has no {device} kernel in this version\n  fix: use device: Cpu for this model")]
    Unsupported { op: CustomOp, device: DeviceKind },
    /// The conv net cannot run on the family's inputs (the same check `metalab check` reports
    /// with the experiment file's position).
    #[error("{}\n  fix: {}", .0.message, .0.fix)]
    Misfit(Misfit),
    /// An evaluator was built for parameters laid out for another network.
    #[error("the parameter layout does not match the conv net's spec and input shape\n  fix: build the evaluator from the same Network that made the parameters")]
    LayoutMismatch,
    /// A task context (CAVIA) enters an MLP at its input; a conv net would need FiLM layers.
    #[error("a task context is concatenated to an MLP's input, and this model is a conv net (FiLM conditioning is not implemented)\n  fix: use model: Mlp(hidden: [40, 40]) for a Cavia arm")]
    ContextNeedsMlp,
}

impl ModelError {
    pub fn unsupported(op: CustomOp, device: DeviceKind) -> ModelError {
        ModelError::Unsupported { op, device }
    }
}
