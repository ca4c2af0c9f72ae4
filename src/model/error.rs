//! Why a model could not be built or run. Apart from `model/mod.rs` so that the device layer
//! (`ops::device`), which the model imports, can name it without importing its parent.

use thiserror::Error;

use crate::device::{CustomOp, DeviceKind};

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("CUDA requested but this metalab was built without the `cuda` feature\n  fix: rebuild with `cargo build --release --features cuda` or set device: Cpu")]
    NoCudaSupport,
    #[error("CUDA device {ordinal} could not be opened: {reason}\n  fix: check `nvidia-smi`, or set device: Cpu")]
    CudaUnavailable { ordinal: usize, reason: String },
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
