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
    /// A task context (CAVIA) enters a conv net through FiLM after a chosen block, not at its
    /// input.
    #[error("a task context enters a conv net through FiLM after one of its blocks, and none is chosen\n  fix: add film_block: N to the Cavia arm (N from 1, the first block, to the number of blocks)")]
    NoFilmBlock,
    /// FiLM conditions a conv block; an MLP takes its context at the input.
    #[error("film_block applies to conv nets, and this model is an MLP (its context is concatenated to the input)\n  fix: remove film_block from the Cavia arm")]
    FilmNeedsConv,
    #[error("film_block: {block}, and the conv net has blocks 1 to {blocks}\n  fix: use film_block: {blocks} (or any block from 1 to {blocks})")]
    FilmBlock { block: usize, blocks: usize },
}

impl ModelError {
    pub fn unsupported(op: CustomOp, device: DeviceKind) -> ModelError {
        ModelError::Unsupported { op, device }
    }
}
