//! Why a model could not be built or run. Apart from `model/mod.rs` so that the device layer
//! (`ops::device`), which the model imports, can name it without importing its parent.

use thiserror::Error;

use crate::device::{CustomOp, DeviceKind};

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error("CUDA device {ordinal} is there, but no algorithm runs on the GPU engine yet (its kernels are built; the device backend waits for the lock-step batch contract)\n  fix: set device: Cpu")]
    NoGpuBackend { ordinal: usize },
    #[error("{op} has no {device} kernel in this version\n  fix: use device: Cpu for this model")]
    Unsupported { op: CustomOp, device: DeviceKind },
    #[error("{0}")]
    Shape(String),
}

impl ModelError {
    pub fn unsupported(op: CustomOp, device: DeviceKind) -> ModelError {
        ModelError::Unsupported { op, device }
    }
}
